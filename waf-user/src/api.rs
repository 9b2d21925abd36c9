//! The local control API (axum): bans, allow and block lists, modes, stats,
//! health, Prometheus metrics, export and import. Every request needs
//! `Authorization: Bearer <token>`; every error is JSON `{"error": "..."}`.
//! The OpenAPI description is served at `/v1/openapi.json`.

use std::{
    fmt::Write as _,
    sync::{Arc, Mutex},
    time::{Duration, Instant, UNIX_EPOCH},
};

use axum::{
    Json, Router,
    extract::{FromRequest, Path, Request, State, rejection::JsonRejection},
    http::{HeaderValue, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post, put},
};
use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Value, json};

use crate::{
    config::{Dur, parse_net},
    dataplane::Attachment,
    detect::{Engine, Risk},
    firewall::{BanDuration, Firewall, FirewallError, ListView, named_counters, unix_now},
    journal::{Ban, BanSource, ListKind},
    mirror::Mirror,
    proxy::Proxy,
};

/// What the handlers share.
pub struct AppState {
    /// The firewall (short critical sections only).
    pub fw: Mutex<Firewall>,
    /// The bearer token.
    pub token: String,
    /// When the daemon started.
    pub started: Instant,
    /// Where the program is attached.
    pub attachments: Vec<Attachment>,
    /// The detection engine (for `/v1/inspect`).
    pub engine: Arc<Engine>,
    /// The proxy, when one runs (set once at start).
    pub proxy: std::sync::OnceLock<Arc<Proxy>>,
    /// The mirror, when it runs.
    pub mirror: Option<Mutex<Mirror>>,
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
            | FirewallError::LockoutRisk => StatusCode::CONFLICT,
            FirewallError::NotFound(..) => StatusCode::NOT_FOUND,
            FirewallError::Full(_) => StatusCode::INSUFFICIENT_STORAGE,
            FirewallError::Dataplane(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError(code, e.to_string())
    }
}

fn bad_request(msg: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, msg.into())
}

/// A JSON body whose rejections are JSON 400s.
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
            Err(rej) => Err(bad_request(format!(
                "invalid request body: {}",
                rej.body_text()
            ))),
        }
    }
}

type Shared = Arc<AppState>;

fn lock(s: &AppState) -> std::sync::MutexGuard<'_, Firewall> {
    // A handler that panicked while holding the lock leaves the data as it
    // was; keep serving.
    s.fw.lock().unwrap_or_else(|p| p.into_inner())
}

fn rfc3339(unix: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(unix)).to_string()
}

/// An address prints bare; a prefix with its length.
fn show_net(n: &IpNet) -> String {
    if n.prefix_len() == n.max_prefix_len() {
        n.addr().to_string()
    } else {
        n.to_string()
    }
}

/// A ban as the API shows it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct BanView {
    /// Address or prefix.
    pub addr: String,
    /// Why.
    pub reason: String,
    /// manual, detection, rate-limit, import, adopted.
    pub source: String,
    /// RFC 3339.
    pub created: String,
    /// RFC 3339, or null for permanent.
    pub expires: Option<String>,
    /// Seconds left, or null for permanent.
    pub remaining_s: Option<u64>,
    /// Offence number (escalation).
    pub offence: u32,
}

impl From<&Ban> for BanView {
    fn from(b: &Ban) -> Self {
        let now = unix_now();
        BanView {
            addr: show_net(&b.net),
            reason: b.reason.clone(),
            source: b.source.as_str().into(),
            created: rfc3339(b.created),
            expires: b.expires.map(rfc3339),
            remaining_s: b.expires.map(|e| e.saturating_sub(now)),
            offence: b.offence,
        }
    }
}

/// The duration field of a ban request: absent (the policy's escalating
/// duration), null (permanent), seconds or a duration string.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DurationField {
    /// Not given: the policy decides.
    #[default]
    Policy,
    /// null: permanent.
    Permanent,
    /// This long.
    For(Dur),
}

fn duration_field<'de, D: Deserializer<'de>>(d: D) -> Result<DurationField, D::Error> {
    Ok(match Option::<Dur>::deserialize(d)? {
        None => DurationField::Permanent,
        Some(x) => DurationField::For(x),
    })
}

/// POST /v1/bans body.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct BanRequest {
    /// Address or prefix.
    pub addr: String,
    /// See [`DurationField`].
    #[serde(default, deserialize_with = "duration_field")]
    pub duration: DurationField,
    /// Why.
    #[serde(default)]
    pub reason: Option<String>,
}

/// POST /v1/allowlist and /v1/blocklist body.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct ListRequest {
    /// Address or CIDR.
    #[serde(alias = "addr")]
    pub cidr: String,
    /// Free text.
    #[serde(default)]
    pub comment: String,
}

/// PUT /v1/mode body.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct ModeRequest {
    /// Monitor mode on or off (absent: unchanged).
    pub monitor: Option<bool>,
    /// Emergency mode on or off (absent: unchanged).
    pub emergency: Option<bool>,
    /// Allow emergency mode with an empty allowlist.
    #[serde(default)]
    pub force: bool,
}

/// Export/import document.
#[derive(Serialize, Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct Export {
    /// Format version (1).
    pub version: u32,
    /// When it was written (RFC 3339).
    #[serde(default)]
    pub exported: String,
    /// Bans.
    #[serde(default)]
    pub bans: Vec<BanView>,
    /// Allowlist entries.
    #[serde(default)]
    pub allowlist: Vec<ListView>,
    /// Blocklist entries.
    #[serde(default)]
    pub blocklist: Vec<ListView>,
}

fn parse_addr(s: &str) -> Result<IpNet, ApiError> {
    parse_net(s).map_err(bad_request)
}

async fn auth(State(s): State<Shared>, req: Request, next: Next) -> Response {
    let ok = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| constant_time_eq(t.trim().as_bytes(), s.token.as_bytes()));
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

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The API's router.
pub fn router(state: Shared) -> Router {
    Router::new()
        .route("/v1/health", get(health))
        .route("/v1/stats", get(stats))
        .route("/metrics", get(metrics))
        .route("/v1/bans", get(list_bans).post(add_ban))
        .route("/v1/bans/{*addr}", get(get_ban).delete(delete_ban))
        .route("/v1/allowlist", get(list_allow).post(add_allow))
        .route("/v1/allowlist/{*cidr}", axum::routing::delete(delete_allow))
        .route("/v1/blocklist", get(list_block).post(add_block))
        .route("/v1/blocklist/{*cidr}", axum::routing::delete(delete_block))
        .route("/v1/mode", put(set_mode).get(get_mode))
        .route("/v1/export", get(export))
        .route("/v1/import", post(import))
        .route("/v1/openapi.json", get(openapi))
        .route("/v1/inspect", post(inspect))
        .fallback(|| async { ApiError(StatusCode::NOT_FOUND, "no such endpoint".into()) })
        .layer(middleware::from_fn_with_state(state.clone(), auth))
        .with_state(state)
}

async fn health(State(s): State<Shared>) -> Json<Value> {
    let fw = lock(&s);
    let alarms = fw.alarms();
    let modes = fw.modes();
    Json(json!({
        "status": if alarms.is_empty() { "ok" } else { "alarm" },
        "alarms": alarms,
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_s": s.started.elapsed().as_secs(),
        "interfaces": s.attachments.iter().map(|a| json!({
            "interface": a.interface, "mode": a.mode.to_string(), "adopted": a.adopted
        })).collect::<Vec<_>>(),
        "bans": fw.bans().len(),
        "mode": {"monitor": modes.monitor, "emergency": modes.emergency},
    }))
}

async fn stats(State(s): State<Shared>) -> Result<Json<Value>, ApiError> {
    let fw = lock(&s);
    let counters = fw
        .counters()
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let named: serde_json::Map<String, Value> = named_counters(&counters)
        .into_iter()
        .map(|(k, c)| {
            (
                k.to_string(),
                json!({"packets": c.packets, "bytes": c.bytes}),
            )
        })
        .collect();
    let bans = fw.bans();
    let prefixes = bans
        .iter()
        .filter(|b| b.net.prefix_len() != b.net.max_prefix_len())
        .count();
    let v6 = bans
        .iter()
        .filter(|b| matches!(b.net, IpNet::V6(_)))
        .count();
    let modes = fw.modes();
    Ok(Json(json!({
        "counters": named,
        "bans": {"total": bans.len(), "ipv6": v6, "prefixes": prefixes},
        "strikes_pending": fw.pending_strikes(),
        "daemon": fw.stats,
        "mode": {"monitor": modes.monitor, "emergency": modes.emergency},
        "alarms": fw.alarms(),
        "uptime_s": s.started.elapsed().as_secs(),
        "proxy": s.proxy.get().map(|p| serde_json::to_value(&p.stats).unwrap_or_default()),
        "mirror": s.mirror.as_ref().map(|m| {
            serde_json::to_value(&m.lock().unwrap_or_else(|p| p.into_inner()).stats)
                .unwrap_or_default()
        }),
    })))
}

async fn metrics(State(s): State<Shared>) -> Result<Response, ApiError> {
    let fw = lock(&s);
    let counters = fw
        .counters()
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let mut out = String::new();
    let named = named_counters(&counters);
    let _ = writeln!(
        out,
        "# HELP waf_xdp_packets_total Packets seen by the XDP program, by verdict or event.\n\
         # TYPE waf_xdp_packets_total counter"
    );
    for (k, c) in &named {
        let _ = writeln!(
            out,
            "waf_xdp_packets_total{{verdict=\"{k}\"}} {}",
            c.packets
        );
    }
    let _ = writeln!(
        out,
        "# HELP waf_xdp_bytes_total Bytes seen by the XDP program, by verdict or event.\n\
         # TYPE waf_xdp_bytes_total counter"
    );
    for (k, c) in &named {
        let _ = writeln!(out, "waf_xdp_bytes_total{{verdict=\"{k}\"}} {}", c.bytes);
    }
    let bans = fw.bans();
    let count = |v6: bool, prefix: bool| {
        bans.iter()
            .filter(|b| {
                matches!(b.net, IpNet::V6(_)) == v6
                    && (b.net.prefix_len() != b.net.max_prefix_len()) == prefix
            })
            .count()
    };
    let _ = writeln!(out, "# HELP waf_bans Bans in force.\n# TYPE waf_bans gauge");
    for (fam, v6) in [("ipv4", false), ("ipv6", true)] {
        for (kind, p) in [("address", false), ("prefix", true)] {
            let _ = writeln!(
                out,
                "waf_bans{{family=\"{fam}\",kind=\"{kind}\"}} {}",
                count(v6, p)
            );
        }
    }
    let st = &fw.stats;
    let _ = writeln!(
        out,
        "# HELP waf_bans_added_total Bans made, by source.\n# TYPE waf_bans_added_total counter"
    );
    for (k, v) in &st.bans_added {
        let _ = writeln!(out, "waf_bans_added_total{{source=\"{k}\"}} {v}");
    }
    for (name, help, v) in [
        (
            "waf_bans_removed_total",
            "Bans lifted by an operator.",
            st.bans_removed,
        ),
        (
            "waf_bans_expired_total",
            "Bans that ran out.",
            st.bans_expired,
        ),
        (
            "waf_bans_evicted_total",
            "Bans evicted because the map was full.",
            st.bans_evicted,
        ),
        (
            "waf_bans_refused_full_total",
            "Bans refused because the map was full.",
            st.bans_refused_full,
        ),
        (
            "waf_journal_errors_total",
            "Failed journal writes.",
            st.journal_errors,
        ),
    ] {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
        );
    }
    let _ = writeln!(
        out,
        "# HELP waf_strikes_total Strikes counted, by kind.\n# TYPE waf_strikes_total counter"
    );
    for (k, v) in &st.strikes {
        let _ = writeln!(out, "waf_strikes_total{{kind=\"{k}\"}} {v}");
    }
    let modes = fw.modes();
    let _ = writeln!(
        out,
        "# HELP waf_mode Modes in force (1 = on).\n# TYPE waf_mode gauge\n\
         waf_mode{{mode=\"monitor\"}} {}\nwaf_mode{{mode=\"emergency\"}} {}",
        u8::from(modes.monitor),
        u8::from(modes.emergency)
    );
    let _ = writeln!(
        out,
        "# HELP waf_alarm Raised alarms.\n# TYPE waf_alarm gauge"
    );
    for a in fw.alarms() {
        let _ = writeln!(out, "waf_alarm{{kind=\"{}\"}} 1", a.kind);
    }
    let _ = writeln!(
        out,
        "# HELP waf_uptime_seconds Daemon uptime.\n# TYPE waf_uptime_seconds gauge\n\
         waf_uptime_seconds {}",
        s.started.elapsed().as_secs()
    );
    if let Some(p) = s.proxy.get() {
        let st = &p.stats;
        let _ = writeln!(
            out,
            "# HELP waf_http_requests_total Requests through the proxy, by outcome.\n\
             # TYPE waf_http_requests_total counter"
        );
        for (k, v) in [
            ("forwarded", &st.forwarded),
            ("blocked", &st.blocked),
            ("blocked_agent", &st.blocked_agent),
            ("rate_limited", &st.rate_limited),
            ("would_block", &st.would_block),
            ("inspect_error", &st.inspect_errors),
            ("upstream_error", &st.upstream_errors),
        ] {
            let _ = writeln!(
                out,
                "waf_http_requests_total{{outcome=\"{k}\"}} {}",
                v.load(std::sync::atomic::Ordering::Relaxed)
            );
        }
    }
    if let Some(m) = &s.mirror {
        let st = m.lock().unwrap_or_else(|p| p.into_inner()).stats.clone();
        let _ = writeln!(
            out,
            "# HELP waf_mirror_requests_total Requests reassembled by the mirror.\n\
             # TYPE waf_mirror_requests_total counter\nwaf_mirror_requests_total {}\n\
             # HELP waf_mirror_detections_total Mirror requests the engine flags.\n\
             # TYPE waf_mirror_detections_total counter\nwaf_mirror_detections_total {}",
            st.requests, st.detections
        );
    }
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
        .into_response())
}

async fn list_bans(State(s): State<Shared>) -> Json<Vec<BanView>> {
    Json(lock(&s).bans().iter().map(BanView::from).collect())
}

async fn get_ban(
    State(s): State<Shared>,
    Path(addr): Path<String>,
) -> Result<Json<BanView>, ApiError> {
    let net = parse_addr(&addr)?;
    lock(&s)
        .ban_of(net)
        .map(|b| Json(BanView::from(b)))
        .ok_or_else(|| ApiError(StatusCode::NOT_FOUND, format!("{net} is not banned")))
}

async fn add_ban(
    State(s): State<Shared>,
    Body(req): Body<BanRequest>,
) -> Result<(StatusCode, Json<BanView>), ApiError> {
    let net = parse_addr(&req.addr)?;
    let duration = match req.duration {
        DurationField::Policy => BanDuration::Escalate,
        DurationField::Permanent => BanDuration::Permanent,
        DurationField::For(d) if d.0.is_zero() => {
            return Err(bad_request(
                "duration 0: give a positive duration, or null for permanent",
            ));
        }
        DurationField::For(d) => BanDuration::For(d.0),
    };
    let reason = req.reason.unwrap_or_else(|| "manual".into());
    if reason.len() > 512 {
        return Err(bad_request("reason: at most 512 characters"));
    }
    let ban = lock(&s).ban(net, duration, reason, BanSource::Manual)?;
    Ok((StatusCode::CREATED, Json(BanView::from(&ban))))
}

async fn delete_ban(
    State(s): State<Shared>,
    Path(addr): Path<String>,
) -> Result<Json<BanView>, ApiError> {
    let net = parse_addr(&addr)?;
    let b = lock(&s).unban(net)?;
    Ok(Json(BanView::from(&b)))
}

async fn list_allow(State(s): State<Shared>) -> Json<Vec<ListView>> {
    Json(lock(&s).list(ListKind::Allow))
}

async fn list_block(State(s): State<Shared>) -> Json<Vec<ListView>> {
    Json(lock(&s).list(ListKind::Block))
}

async fn add_to(
    s: &AppState,
    kind: ListKind,
    req: ListRequest,
) -> Result<(StatusCode, Json<ListView>), ApiError> {
    let net = parse_addr(&req.cidr)?;
    if req.comment.len() > 512 {
        return Err(bad_request("comment: at most 512 characters"));
    }
    let v = lock(s).list_add(kind, net, req.comment)?;
    Ok((StatusCode::CREATED, Json(v)))
}

async fn add_allow(
    State(s): State<Shared>,
    Body(req): Body<ListRequest>,
) -> Result<(StatusCode, Json<ListView>), ApiError> {
    add_to(&s, ListKind::Allow, req).await
}

async fn add_block(
    State(s): State<Shared>,
    Body(req): Body<ListRequest>,
) -> Result<(StatusCode, Json<ListView>), ApiError> {
    add_to(&s, ListKind::Block, req).await
}

async fn delete_allow(
    State(s): State<Shared>,
    Path(cidr): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let net = parse_addr(&cidr)?;
    lock(&s).list_remove(ListKind::Allow, net)?;
    Ok(Json(json!({"removed": net.to_string()})))
}

async fn delete_block(
    State(s): State<Shared>,
    Path(cidr): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let net = parse_addr(&cidr)?;
    lock(&s).list_remove(ListKind::Block, net)?;
    Ok(Json(json!({"removed": net.to_string()})))
}

async fn get_mode(State(s): State<Shared>) -> Json<Value> {
    let m = lock(&s).modes();
    Json(json!({"monitor": m.monitor, "emergency": m.emergency}))
}

async fn set_mode(
    State(s): State<Shared>,
    Body(req): Body<ModeRequest>,
) -> Result<Json<Value>, ApiError> {
    if req.monitor.is_none() && req.emergency.is_none() {
        return Err(bad_request(
            "give `monitor` and/or `emergency` (true or false)",
        ));
    }
    let m = lock(&s).set_modes(req.monitor, req.emergency, req.force)?;
    Ok(Json(
        json!({"monitor": m.monitor, "emergency": m.emergency}),
    ))
}

async fn export(State(s): State<Shared>) -> Json<Export> {
    let fw = lock(&s);
    Json(Export {
        version: 1,
        exported: rfc3339(unix_now()),
        bans: fw.bans().iter().map(BanView::from).collect(),
        allowlist: fw.list(ListKind::Allow),
        blocklist: fw.list(ListKind::Block),
    })
}

async fn import(State(s): State<Shared>, Body(doc): Body<Export>) -> Result<Json<Value>, ApiError> {
    if doc.version != 1 {
        return Err(bad_request(format!(
            "export version {}: this daemon reads version 1",
            doc.version
        )));
    }
    let mut fw = lock(&s);
    let now = unix_now();
    let mut skipped = Vec::new();
    let (mut allow, mut block, mut bans) = (0, 0, 0);
    for (kind, entries, n) in [
        (ListKind::Allow, &doc.allowlist, &mut allow),
        (ListKind::Block, &doc.blocklist, &mut block),
    ] {
        for e in entries {
            if fw.list(kind).iter().any(|v| v.cidr == e.cidr) {
                continue;
            }
            match fw.list_add(kind, e.cidr, e.comment.clone()) {
                Ok(_) => *n += 1,
                Err(err) => {
                    skipped.push(json!({"entry": e.cidr.to_string(), "error": err.to_string()}))
                }
            }
        }
    }
    for b in &doc.bans {
        let net = match parse_net(&b.addr) {
            Ok(n) => n,
            Err(e) => {
                skipped.push(json!({"ban": b.addr, "error": e}));
                continue;
            }
        };
        let duration = match &b.expires {
            None => BanDuration::Permanent,
            Some(t) => match humantime::parse_rfc3339(t) {
                Ok(at) => {
                    let at = at
                        .duration_since(UNIX_EPOCH)
                        .map(|d| d.as_secs())
                        .unwrap_or(0);
                    if at <= now {
                        skipped.push(json!({"ban": b.addr, "error": "expired"}));
                        continue;
                    }
                    BanDuration::For(Duration::from_secs(at - now))
                }
                Err(e) => {
                    skipped.push(json!({"ban": b.addr, "error": format!("expires: {e}")}));
                    continue;
                }
            },
        };
        match fw.ban(net, duration, b.reason.clone(), BanSource::Import) {
            Ok(_) => bans += 1,
            Err(err) => skipped.push(json!({"ban": b.addr, "error": err.to_string()})),
        }
    }
    Ok(Json(
        json!({"bans": bans, "allowlist": allow, "blocklist": block, "skipped": skipped}),
    ))
}

async fn inspect(State(s): State<Shared>, Body(v): Body<Value>) -> Result<Json<Value>, ApiError> {
    let engine = s.engine.clone();
    let (req, remote) = crate::detect::lines::request_of(&v, &engine).map_err(bad_request)?;
    let verdict = tokio::task::spawn_blocking(move || engine.inspect(&req, remote))
        .await
        .map_err(|e| {
            ApiError(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("inspection failed: {e}"),
            )
        })?;
    let risk = match verdict.risk {
        Risk::Low => "low",
        Risk::Medium => "medium",
        Risk::High => "high",
    };
    let mut out = serde_json::to_value(&verdict)
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    out["risk"] = json!(risk);
    if let Some(id) = v.get("id") {
        out["id"] = id.clone();
    }
    Ok(Json(out))
}

async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        include_str!("openapi.json"),
    )
        .into_response()
}
