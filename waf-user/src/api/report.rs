//! `GET /v1/report`: the findings store, the access log and the bans over
//! a window, ranked (see `crate::report`).

use axum::{
    Json,
    extract::{Query, State},
    http::StatusCode,
};
use serde::Deserialize;
use utoipa::IntoParams;

use super::{ApiError, Shared, bad_request, types::ErrorBody};
use crate::{
    report::{Report, Sources, build, parse_since},
    values::unix_now,
};

/// `GET /v1/report` query.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ReportQuery {
    /// The window back from now (`24h`, `7d`; 1s to 31d; default 24h).
    pub since: Option<String>,
}

/// A report over the window: top sources, rules, categories, paths;
/// blocked and passed per hour; bans by reason and repeat offenders.
#[utoipa::path(get, path = "/v1/report", operation_id = "get_report", params(ReportQuery), responses(
    (status = 200, body = Report), (status = 400, body = ErrorBody)))]
pub async fn get(
    State(s): State<Shared>,
    q: Result<Query<ReportQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Report>, ApiError> {
    let q = q
        .map(|Query(v)| v)
        .map_err(|e| bad_request(format!("invalid query: {}", e.body_text())))?;
    let window = parse_since(q.since.as_deref().unwrap_or("24h")).map_err(bad_request)?;
    let until = unix_now();
    let since = until.saturating_sub(window.as_secs());
    let st = s.clone();
    let report = tokio::task::spawn_blocking(move || {
        let view = st.fw.view();
        // Bans in chunks, so a million bans are never cloned at once;
        // `cursor` is None once the last page was read.
        let mut cursor = Some(None);
        let mut bans = std::iter::from_fn(move || {
            let after = cursor?;
            let (page, next) = view.bans_page(after, 4096);
            cursor = next.map(Some);
            (!page.is_empty()).then_some(page)
        })
        .flatten();
        let geo_view = st.fw.view();
        let geo = move |ip| {
            geo_view
                .sources
                .as_ref()
                .map_or((None, None), |p| p.geo(ip))
        };
        build(Sources {
            since,
            until,
            findings: st.findings.as_ref().and_then(|f| f.store.as_ref()),
            access_log: st.access_log.as_deref(),
            ledger: st.ledger.as_deref(),
            bans: &mut bans,
            geo: &geo,
        })
    })
    .await
    .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(Json(report))
}
