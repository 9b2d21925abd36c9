//! `/v1/findings` (the findings store, newest first, paged and filtered)
//! and `/v1/exclusions` (the runtime exclusions: list with the config's,
//! add, delete, draft from a finding). Reads and changes run on the
//! blocking pool: they touch files.

use axum::{
    Json,
    extract::{Path, Query, State},
    http::StatusCode,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{ApiError, Body, Shared, bad_request, types::ErrorBody};
use crate::{
    findings::{
        ExclusionError, ExclusionSpec, Filter, FindingRecord, RuntimeExclusion, Widen,
        exclusions::draft as draft_of,
    },
    values::{parse_rfc3339, unix_now},
};

/// Findings a page holds at most.
const MAX_LIMIT: usize = 1000;

/// `GET /v1/findings` query.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FindingsQuery {
    /// At most this many (1 to 1000; default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
    /// Only ids below this one (the `next` of the previous page).
    #[param(minimum = 1)]
    pub before: Option<u64>,
    /// The client address, exactly.
    pub source: Option<String>,
    /// The rule id, exactly.
    #[param(max_length = 64)]
    pub rule: Option<String>,
    /// A prefix of the canonical path.
    #[param(max_length = 512)]
    pub path: Option<String>,
    /// The category (`sqli`, `xss`...).
    #[param(max_length = 32)]
    pub kind: Option<String>,
    /// A window back from now (`24h`, `7d`) or an RFC 3339 time.
    pub since: Option<String>,
    /// The request's verdict: `block`, `would_block` or `pass`.
    #[param(max_length = 16)]
    pub verdict: Option<String>,
    /// Who inspected the request: `proxy` or `mirror` (sampled packets).
    #[param(max_length = 8)]
    pub origin: Option<String>,
}

/// `GET /v1/findings`: a page of findings, newest first.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct FindingsPage {
    /// The findings, newest first.
    pub findings: Vec<FindingRecord>,
    /// Pass as `before` for the next page; null: this was the last.
    pub next: Option<u64>,
}

fn bounded(what: &str, v: Option<String>, max: usize) -> Result<Option<String>, ApiError> {
    match v {
        Some(s) if s.is_empty() || s.len() > max || s.chars().any(char::is_control) => {
            Err(bad_request(format!(
                "{what}: 1 to {max} bytes without control characters"
            )))
        }
        v => Ok(v),
    }
}

/// A `since` value: a duration back from now, or an RFC 3339 time; Unix ms.
fn since_ms(s: &str) -> Result<u64, ApiError> {
    if let Ok(d) = s.parse::<crate::values::Dur>() {
        return Ok(unix_now().saturating_sub(d.0.as_secs()) * 1000);
    }
    parse_rfc3339(s)
        .map(|t| t * 1000)
        .map_err(|e| bad_request(format!("since: a duration (24h) or an RFC 3339 time: {e}")))
}

impl FindingsQuery {
    fn checked(self) -> Result<(Filter, usize, Option<u64>), ApiError> {
        let limit = self.limit.unwrap_or(100);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(bad_request(format!("limit {limit}: 1 to {MAX_LIMIT}")));
        }
        let source = self
            .source
            .map(|s| {
                s.trim()
                    .parse::<std::net::IpAddr>()
                    .map(|ip| ip.to_string())
                    .map_err(|_| {
                        bad_request(format!("source: `{}` is not an address", s.escape_debug()))
                    })
            })
            .transpose()?;
        let filter = Filter {
            source,
            rule: bounded("rule", self.rule, 64)?,
            path: bounded("path", self.path, 512)?,
            kind: bounded("kind", self.kind, 32)?,
            since_ms: self.since.as_deref().map(since_ms).transpose()?,
            verdict: match self.verdict.as_deref() {
                None => None,
                Some(v @ ("block" | "would_block" | "pass")) => Some(v.to_string()),
                Some(v) => {
                    return Err(bad_request(format!(
                        "verdict `{}`: block, would_block or pass",
                        v.escape_debug()
                    )));
                }
            },
            origin: match self.origin.as_deref() {
                None => None,
                Some(o @ ("proxy" | "mirror")) => Some(o.to_string()),
                Some(o) => {
                    return Err(bad_request(format!(
                        "origin `{}`: proxy or mirror",
                        o.escape_debug()
                    )));
                }
            },
        };
        Ok((filter, limit, self.before))
    }
}

fn store_off() -> ApiError {
    ApiError(
        StatusCode::SERVICE_UNAVAILABLE,
        "the findings store is off ([findings] enabled = false)".into(),
    )
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}

/// The findings of the proxy's requests, newest first, a page at a time.
#[utoipa::path(get, path = "/v1/findings", operation_id = "list_findings", params(FindingsQuery), responses(
    (status = 200, body = FindingsPage), (status = 400, body = ErrorBody),
    (status = 503, description = "the store is off", body = ErrorBody)))]
pub async fn list(
    State(s): State<Shared>,
    q: Result<Query<FindingsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<FindingsPage>, ApiError> {
    let q = q
        .map(|Query(v)| v)
        .map_err(|e| bad_request(format!("invalid query: {}", e.body_text())))?;
    let (filter, limit, before) = q.checked()?;
    let f = s.findings.clone().ok_or_else(store_off)?;
    let (findings, next) = tokio::task::spawn_blocking(move || {
        f.store.as_ref().map(|st| st.page(&filter, limit, before))
    })
    .await
    .map_err(internal)?
    .ok_or_else(store_off)?;
    Ok(Json(FindingsPage { findings, next }))
}

/// An exclusion in force, from the config or added at run time.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ExclusionView {
    /// The runtime exclusion's id (null for the config's).
    pub id: Option<u64>,
    /// `runtime` (the API's, in `state_dir/exclusions.json`) or `config`.
    pub source: String,
    /// Rule id or glob.
    pub rule: Option<String>,
    /// Path glob on the canonical path.
    pub path: Option<String>,
    /// Parameter name or glob (runtime exclusions).
    pub param: Option<String>,
    /// Location glob (config exclusions).
    pub location: Option<String>,
    /// Category (config exclusions).
    pub kind: Option<String>,
    /// The operator's comment.
    pub comment: String,
    /// When it was added (runtime; Unix seconds).
    pub created: Option<u64>,
}

impl From<RuntimeExclusion> for ExclusionView {
    fn from(e: RuntimeExclusion) -> Self {
        Self {
            id: Some(e.id),
            source: "runtime".into(),
            rule: e.rule,
            path: e.path,
            param: e.param,
            location: None,
            kind: None,
            comment: e.comment,
            created: Some(e.created),
        }
    }
}

/// `GET /v1/exclusions`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ExclusionList {
    /// The config's exclusions, then the runtime ones (oldest first).
    pub exclusions: Vec<ExclusionView>,
}

fn runtime(s: &Shared) -> Result<std::sync::Arc<crate::findings::Findings>, ApiError> {
    s.findings.clone().ok_or_else(|| {
        ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            "runtime exclusions are not available in this process".into(),
        )
    })
}

/// Every exclusion in force: the config's (`source: config`) and those
/// added through the API (`source: runtime`).
#[utoipa::path(get, path = "/v1/exclusions", operation_id = "list_exclusions", responses((status = 200, body = ExclusionList)))]
pub async fn list_exclusions(State(s): State<Shared>) -> Json<ExclusionList> {
    let mut out: Vec<ExclusionView> = s
        .engine
        .config()
        .exclusions
        .iter()
        .map(|e| ExclusionView {
            id: None,
            source: "config".into(),
            rule: e.rule.clone(),
            path: e.path.clone(),
            param: None,
            location: e.location.clone(),
            kind: e.kind.map(|k| k.name().to_string()),
            comment: String::new(),
            created: None,
        })
        .collect();
    if let Some(f) = &s.findings {
        out.extend(f.exclusions.list().into_iter().map(ExclusionView::from));
    }
    Json(ExclusionList { exclusions: out })
}

fn status_of(e: ExclusionError) -> ApiError {
    let code = match &e {
        ExclusionError::Invalid(_) => StatusCode::BAD_REQUEST,
        ExclusionError::NotFound(_) => StatusCode::NOT_FOUND,
        ExclusionError::Full => StatusCode::INSUFFICIENT_STORAGE,
        ExclusionError::Io(..) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    ApiError(code, e.to_string())
}

/// Adds a runtime exclusion: in force from the next request, kept across
/// restarts; the config file is not written.
#[utoipa::path(post, path = "/v1/exclusions", operation_id = "add_exclusion", request_body = ExclusionSpec, responses(
    (status = 201, body = RuntimeExclusion), (status = 400, body = ErrorBody),
    (status = 507, description = "too many exclusions", body = ErrorBody)))]
pub async fn add(
    State(s): State<Shared>,
    Body(spec): Body<ExclusionSpec>,
) -> Result<(StatusCode, Json<RuntimeExclusion>), ApiError> {
    spec.validate().map_err(bad_request)?;
    let f = runtime(&s)?;
    let e = tokio::task::spawn_blocking(move || f.exclusions.add(spec))
        .await
        .map_err(internal)?
        .map_err(status_of)?;
    Ok((StatusCode::CREATED, Json(e)))
}

/// Removes a runtime exclusion (config exclusions stay: edit the file).
#[utoipa::path(delete, path = "/v1/exclusions/{id}", operation_id = "delete_exclusion", params(("id" = u64, Path, minimum = 1)),
    responses((status = 200, body = RuntimeExclusion), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn remove(
    State(s): State<Shared>,
    Path(id): Path<String>,
) -> Result<Json<RuntimeExclusion>, ApiError> {
    let id: u64 = id.parse().map_err(|_| {
        bad_request(format!(
            "`{}`: an exclusion id is a whole number",
            id.escape_debug()
        ))
    })?;
    let f = runtime(&s)?;
    let e = tokio::task::spawn_blocking(move || f.exclusions.remove(id))
        .await
        .map_err(internal)?
        .map_err(status_of)?;
    Ok(Json(e))
}

/// `POST /v1/exclusions/draft`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DraftRequest {
    /// The finding's id.
    #[schema(minimum = 1)]
    pub finding: u64,
    /// Leave the rule out (any rule).
    #[serde(default)]
    pub any_rule: bool,
    /// Leave the path out (any path).
    #[serde(default)]
    pub any_path: bool,
    /// Leave the parameter out (any place).
    #[serde(default)]
    pub any_param: bool,
}

/// The allowlist entry that would let a finding's source through.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct AllowDraft {
    /// The source's address (`POST /v1/allowlist` takes this body).
    pub cidr: String,
    /// A comment naming the finding.
    pub comment: String,
}

/// What a draft would add, not applied.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Draft {
    /// The exclusion (`POST /v1/exclusions` takes this body).
    pub exclusion: ExclusionSpec,
    /// The same as TOML lines for the config file.
    pub toml: String,
    /// The allowlist entry for the finding's source instead.
    pub allowlist: AllowDraft,
}

/// The exclusion (and the config lines, and the allowlist entry) that
/// would stop a finding; nothing is applied.
#[utoipa::path(post, path = "/v1/exclusions/draft", operation_id = "draft_exclusion", request_body = DraftRequest, responses(
    (status = 200, body = Draft), (status = 400, body = ErrorBody),
    (status = 404, description = "no such finding", body = ErrorBody),
    (status = 503, description = "the store is off", body = ErrorBody)))]
pub async fn draft(
    State(s): State<Shared>,
    Body(req): Body<DraftRequest>,
) -> Result<Json<Draft>, ApiError> {
    let f = s.findings.clone().ok_or_else(store_off)?;
    let id = req.finding;
    let found = tokio::task::spawn_blocking(move || f.store.as_ref().map(|st| st.get(id)))
        .await
        .map_err(internal)?
        .ok_or_else(store_off)?
        .ok_or_else(|| {
            ApiError(
                StatusCode::NOT_FOUND,
                format!("no finding {id} in the store"),
            )
        })?;
    let widen = Widen {
        any_rule: req.any_rule,
        any_path: req.any_path,
        any_param: req.any_param,
    };
    let exclusion = draft_of(&found, widen).map_err(bad_request)?;
    Ok(Json(Draft {
        toml: exclusion.toml(),
        exclusion,
        allowlist: AllowDraft {
            cidr: found.source.clone(),
            comment: format!("from finding {id}"),
        },
    }))
}
