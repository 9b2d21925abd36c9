//! The local control API (axum): bans, allow and block lists, modes, stats,
//! health, Prometheus metrics, export and import, inspection. Every request
//! needs `Authorization: Bearer <token>`; every error is JSON
//! `{"error": "..."}`. Writes go to the firewall's owner through its
//! handle; reads take the view it published, never waiting on a write. The
//! OpenAPI description (`/v1/openapi.json`) is generated from the handlers
//! and the types they validate with.

pub(crate) mod bans;
pub(crate) mod findings;
pub(crate) mod lists;
mod lookup;
pub mod metrics;
mod openapi;
mod report;
pub(crate) mod status;
pub mod types;

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Instant,
};

use axum::{
    Json, Router,
    extract::{DefaultBodyLimit, FromRequest, Request, State, rejection::JsonRejection},
    http::{HeaderValue, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{delete, get, post, put},
};
use serde::Deserialize;
use serde_json::json;

pub use self::openapi::document;
use crate::{
    dataplane::{Attachment, CountersReader},
    detect::Engine,
    firewall::{FirewallError, Handle},
    telemetry::{FleetReport, Telemetry},
    values::{ConfigError, invalid},
};

/// `[api]`: the local control API.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// Address to listen on (keep it on loopback).
    pub listen: SocketAddr,
    /// Bearer token; else `WAF_API_TOKEN`, else generated into
    /// `state_dir/api.token`.
    pub token: Option<String>,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 9876)),
            token: None,
        }
    }
}

impl ApiConfig {
    /// Checks the token's length and alphabet.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(t) = &self.token
            && (t.len() < 16 || t.len() > 256 || !t.bytes().all(|b| b.is_ascii_graphic()))
        {
            return Err(invalid(
                "api.token",
                "(hidden)",
                "16 to 256 printable ASCII characters without spaces (or leave it out to \
                 generate one)",
            ));
        }
        Ok(())
    }
}

/// What the handlers share: handles, never the faces themselves.
pub struct ApiState {
    /// The firewall's owner.
    pub fw: Handle,
    /// The bearer token.
    pub token: String,
    /// When the daemon started.
    pub started: Instant,
    /// Where the program is attached.
    pub attachments: Vec<Attachment>,
    /// The kernel's counters (read-only).
    pub counters: CountersReader,
    /// The detection engine (for `/v1/inspect`).
    pub engine: Arc<Engine>,
    /// The faces' counters (proxy, mirror, fleet link).
    pub faces: Vec<Arc<dyn Telemetry>>,
    /// The fleet link's status (none: `[fleet]` is off).
    pub fleet: Option<Arc<dyn FleetReport>>,
    /// Handlers that panicked (answered 500; tests assert it stays 0).
    pub panics: Arc<AtomicU64>,
    /// The findings store and the runtime exclusions (none: no proxy).
    pub findings: Option<Arc<crate::findings::Findings>>,
    /// The proxy's access log file, for reports (none: off or stdout).
    pub access_log: Option<std::path::PathBuf>,
    /// The directory of the ban ledger (`state_dir`), for reports.
    pub ledger: Option<std::path::PathBuf>,
}

/// An API error: status and message.
#[derive(Debug)]
pub struct ApiError(pub StatusCode, pub String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

impl From<FirewallError> for ApiError {
    fn from(e: FirewallError) -> Self {
        let code = match &e {
            FirewallError::Protected { .. }
            | FirewallError::FromConfig { .. }
            | FirewallError::LockoutRisk
            | FirewallError::AllowOnlyLockout => StatusCode::CONFLICT,
            FirewallError::TooWide { .. } => StatusCode::BAD_REQUEST,
            FirewallError::NotFound(..) => StatusCode::NOT_FOUND,
            FirewallError::Full(_) => StatusCode::INSUFFICIENT_STORAGE,
            FirewallError::Stopped => StatusCode::SERVICE_UNAVAILABLE,
            FirewallError::Dataplane(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError(code, e.to_string())
    }
}

/// A 400.
pub fn bad_request(msg: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, msg.into())
}

/// A JSON body whose rejections are JSON 400s (413 when too large).
pub struct Body<T>(pub T);

impl<S, T> FromRequest<S> for Body<T>
where
    Json<T>: FromRequest<S, Rejection = JsonRejection>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(Body(v)),
            Err(rej) => {
                let status = match rej.status() {
                    StatusCode::PAYLOAD_TOO_LARGE => StatusCode::PAYLOAD_TOO_LARGE,
                    StatusCode::UNSUPPORTED_MEDIA_TYPE => StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    _ => StatusCode::BAD_REQUEST,
                };
                Err(ApiError(
                    status,
                    format!("invalid request body: {}", rej.body_text()),
                ))
            }
        }
    }
}

type Shared = Arc<ApiState>;

async fn auth(State(s): State<Shared>, req: Request, next: Next) -> Response {
    use subtle::ConstantTimeEq as _;
    let ok = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| bool::from(t.trim().as_bytes().ct_eq(s.token.as_bytes())));
    if !ok {
        let mut r = ApiError(
            StatusCode::UNAUTHORIZED,
            "missing or wrong bearer token (Authorization: Bearer <token>; see state_dir/api.token)"
                .into(),
        )
        .into_response();
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return r;
    }
    next.run(req).await
}

/// Bodies up to this size, except imports.
const BODY_LIMIT: usize = 64 * 1024;
/// Import documents up to this size.
const IMPORT_LIMIT: usize = 256 << 20;

/// The API's router.
pub fn router(state: Shared) -> Router {
    let panics = state.panics.clone();
    Router::new()
        .route("/v1/health", get(status::health))
        .route("/v1/stats", get(status::stats))
        .route("/metrics", get(status::metrics))
        .route("/v1/bans", get(bans::list).post(bans::add))
        .route("/v1/bans/{*addr}", get(bans::get_one).delete(bans::remove))
        .route(
            "/v1/allowlist",
            get(lists::list_allow).post(lists::add_allow),
        )
        .route("/v1/allowlist/{*cidr}", delete(lists::delete_allow))
        .route(
            "/v1/blocklist",
            get(lists::list_block).post(lists::add_block),
        )
        .route("/v1/blocklist/{*cidr}", delete(lists::delete_block))
        .route("/v1/mode", put(status::set_mode).get(status::get_mode))
        .route("/v1/export", get(bans::export))
        .route(
            "/v1/import",
            post(bans::import).layer(DefaultBodyLimit::max(IMPORT_LIMIT)),
        )
        .route("/v1/openapi.json", get(openapi::serve))
        .route("/v1/inspect", post(status::inspect))
        .route("/v1/lookup/{*addr}", get(lookup::get))
        .route("/v1/fleet", get(status::fleet))
        .route("/v1/findings", get(findings::list))
        .route(
            "/v1/exclusions",
            get(findings::list_exclusions).post(findings::add),
        )
        .route("/v1/exclusions/draft", post(findings::draft))
        .route("/v1/exclusions/{id}", delete(findings::remove))
        .route("/v1/report", get(report::get))
        .fallback(|| async { ApiError(StatusCode::NOT_FOUND, "no such endpoint".into()) })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn_with_state(state.clone(), auth))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            move |_: Box<dyn std::any::Any + Send>| {
                panics.fetch_add(1, Ordering::Relaxed);
                tracing::error!("an API handler panicked; answered 500");
                ApiError(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error (logged)".into(),
                )
                .into_response()
            },
        ))
        .with_state(state)
}
