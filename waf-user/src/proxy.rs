//! The inline reverse proxy: every request goes through the detection
//! engine before it reaches the application. A blocked request gets a 403
//! with a small JSON body (error and request id) and never reaches the
//! upstream; detections count as strikes against the client, which the
//! firewall turns into XDP bans. Also: per-source request rate limits (429),
//! a user-agent blocklist, exempt paths, optional security headers, and an
//! access log with the verdict and the reason of every request.
//!
//! HTTP/1.1 with keep-alive (hyper). Bodies stream: the first `max_body`
//! bytes are buffered for inspection, the rest follows unbuffered.

use std::{
    collections::HashMap,
    convert::Infallible,
    io::Write as _,
    net::{IpAddr, SocketAddr},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant, SystemTime},
};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, StreamBody, combinators::BoxBody};
use hyper::{
    HeaderMap, Request, Response, StatusCode,
    body::{Body as _, Frame, Incoming},
    header::{self, HeaderName, HeaderValue},
    service::service_fn,
};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::{TokioExecutor, TokioIo},
};
use ipnet::IpNet;
use serde::Serialize;
use tokio::net::TcpListener;

use crate::{
    api::AppState,
    config::{AccessLogFormat, HttpLimit, OnError, ProxyConfig, parse_net},
    detect::{Action, Engine, Verdict},
    firewall::{BanDuration, host},
    journal::BanSource,
};

/// Bodies up to this size are inspected on the connection's task; larger
/// ones on the blocking pool, under `inspect_budget`.
const INLINE_INSPECT_BYTES: usize = 16 * 1024;

/// Errors crossing body streams.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
type ProxyBody = BoxBody<Bytes, BoxError>;

/// Checks an upstream URL: `http://host:port` (no TLS, no path).
pub fn parse_upstream(s: &str) -> Result<String, String> {
    let rest = s.strip_prefix("http://").ok_or_else(|| {
        if s.starts_with("https://") {
            "https upstreams are not supported: talk plain HTTP to the application \
             (terminate TLS in front of waf)"
                .to_string()
        } else {
            "expected http://host:port".to_string()
        }
    })?;
    let authority = rest.trim_end_matches('/');
    if authority.is_empty() || authority.contains('/') || authority.contains('@') {
        return Err("expected http://host:port (no path, no credentials)".into());
    }
    authority
        .parse::<hyper::http::uri::Authority>()
        .map_err(|e| format!("bad host:port: {e}"))?;
    Ok(authority.to_string())
}

/// Proxy counters (exported in stats and metrics).
#[derive(Debug, Default, Serialize)]
pub struct ProxyStats {
    /// Requests received.
    pub requests: AtomicU64,
    /// Requests blocked by the detection engine.
    pub blocked: AtomicU64,
    /// Requests refused for their user agent.
    pub blocked_agent: AtomicU64,
    /// Requests refused by a rate limit.
    pub rate_limited: AtomicU64,
    /// Requests passed to the upstream.
    pub forwarded: AtomicU64,
    /// Requests that would have been blocked (passive mode).
    pub would_block: AtomicU64,
    /// Inspection errors or budget overruns.
    pub inspect_errors: AtomicU64,
    /// Upstream failures (502/504).
    pub upstream_errors: AtomicU64,
    /// Time from a blocking verdict to its ban being in the kernel map, for
    /// the last bans made at once (`ban_policy.immediate_score`).
    #[serde(skip)]
    pub ban_latency: Mutex<std::collections::VecDeque<Duration>>,
}

/// Per-source GCRA limiter for HTTP requests.
struct HttpLimiter {
    limits: Vec<(Option<String>, f64, f64)>,
    tat: HashMap<(IpAddr, usize), f64>,
    epoch: Instant,
}

impl HttpLimiter {
    fn new(limits: &[HttpLimit]) -> Self {
        let limits = limits
            .iter()
            .map(|l| {
                let cost = l.per.0.as_secs_f64() / f64::from(l.requests);
                let burst = f64::from(l.burst.unwrap_or(l.requests));
                (l.path.clone(), cost, cost * burst)
            })
            .collect();
        Self {
            limits,
            tat: HashMap::new(),
            epoch: Instant::now(),
        }
    }

    /// Charges a request; `Some(retry_after)` when over a limit.
    fn check(&mut self, src: IpAddr, path: &str) -> Option<Duration> {
        let now = self.epoch.elapsed().as_secs_f64();
        if self.tat.len() > 100_000 {
            self.tat.retain(|_, t| *t > now);
        }
        let mut charges = Vec::new();
        for (i, (prefix, cost, window)) in self.limits.iter().enumerate() {
            if prefix.as_deref().is_some_and(|p| !path.starts_with(p)) {
                continue;
            }
            let tat = self.tat.get(&(src, i)).copied().unwrap_or(now).max(now) + cost;
            if tat - now > *window {
                return Some(Duration::from_secs_f64(tat - now - window));
            }
            charges.push((i, tat));
        }
        for (i, tat) in charges {
            self.tat.insert((src, i), tat);
        }
        None
    }
}

/// The proxy.
pub struct Proxy {
    cfg: ProxyConfig,
    upstream: String,
    client: Client<HttpConnector, ProxyBody>,
    engine: Arc<Engine>,
    state: Arc<AppState>,
    trusted: Vec<IpNet>,
    agents: Vec<String>,
    limiter: Mutex<HttpLimiter>,
    log: Option<Mutex<Box<dyn std::io::Write + Send>>>,
    immediate_score: Option<u32>,
    next_id: AtomicU64,
    /// Counters.
    pub stats: ProxyStats,
}

fn glob(pattern: &str, s: &str) -> bool {
    // `*` matches any run of characters.
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == s;
    }
    let mut rest = s;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            match rest.strip_prefix(part) {
                Some(r) => rest = r,
                None => return false,
            }
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            match rest.find(part) {
                Some(at) => rest = &rest[at + part.len()..],
                None => return false,
            }
        }
    }
    true
}

fn full(status: StatusCode, body: impl Into<Bytes>, ctype: &'static str) -> Response<ProxyBody> {
    let mut r = Response::new(
        Full::new(body.into())
            .map_err(|never: Infallible| match never {})
            .boxed(),
    );
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    r
}

fn json_error(status: StatusCode, error: &str, id: &str) -> Response<ProxyBody> {
    let body = serde_json::json!({"error": error, "request_id": id}).to_string();
    let mut r = full(status, body, "application/json");
    if let Ok(v) = HeaderValue::from_str(id) {
        r.headers_mut().insert("x-request-id", v);
    }
    r
}

const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

fn strip_hop_by_hop(h: &mut HeaderMap) {
    let listed: Vec<HeaderName> = h
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
        .collect();
    for n in listed {
        h.remove(n);
    }
    for n in HOP_BY_HOP {
        h.remove(n);
    }
}

/// What happened to a request, for the access log.
struct Outcome {
    status: u16,
    verdict: &'static str,
    reason: String,
    score: u32,
}

impl Proxy {
    /// Builds the proxy (the config was validated).
    pub fn new(
        cfg: &ProxyConfig,
        engine: Arc<Engine>,
        state: Arc<AppState>,
        immediate_score: Option<u32>,
    ) -> anyhow::Result<Self> {
        let upstream = parse_upstream(cfg.upstream.as_deref().unwrap_or(""))
            .map_err(|e| anyhow::anyhow!("proxy.upstream: {e}"))?;
        let trusted = cfg
            .trusted_proxies
            .iter()
            .map(|c| parse_net(c).map_err(|e| anyhow::anyhow!("proxy.trusted_proxies: {e}")))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let log: Option<Box<dyn std::io::Write + Send>> = match cfg.access_log.as_str() {
            "off" => None,
            "-" => Some(Box::new(std::io::stdout())),
            path => Some(Box::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| anyhow::anyhow!("proxy.access_log {path}: {e}"))?,
            )),
        };
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Ok(Self {
            cfg: cfg.clone(),
            upstream,
            client,
            engine,
            state,
            trusted,
            agents: cfg
                .blocked_user_agents
                .iter()
                .map(|a| a.to_ascii_lowercase())
                .collect(),
            limiter: Mutex::new(HttpLimiter::new(&cfg.rate_limits)),
            log: log.map(Mutex::new),
            immediate_score,
            next_id: AtomicU64::new(
                SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(0)
                    << 16,
            ),
            stats: ProxyStats::default(),
        })
    }

    /// The client's address: the peer, or, when the peer is a trusted
    /// proxy, the `trusted_depth`-th address from the right of
    /// X-Forwarded-For (never an address a client could forge past the
    /// trusted hops).
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.trusted.iter().any(|n| n.contains(&peer)) {
            return peer;
        }
        let hops: Vec<IpAddr> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|a| a.trim().parse().ok())
            .collect();
        let mut client = peer;
        for (i, a) in hops.iter().rev().enumerate() {
            client = *a;
            if i + 1 >= self.cfg.trusted_depth || !self.trusted.iter().any(|n| n.contains(a)) {
                break;
            }
        }
        client
    }

    fn request_id(&self) -> String {
        format!("{:016x}", self.next_id.fetch_add(1, Ordering::Relaxed))
    }

    fn strike(&self, remote: IpAddr, verdict: &Verdict, reason: &str, decided: Instant) {
        let mut fw = self.state.fw.lock().unwrap_or_else(|p| p.into_inner());
        if self.immediate_score.is_some_and(|s| verdict.score >= s) {
            match fw.ban(
                host(remote),
                BanDuration::Escalate,
                reason.to_string(),
                BanSource::Detection,
            ) {
                Ok(_) => {
                    let took = decided.elapsed();
                    let mut l = self
                        .stats
                        .ban_latency
                        .lock()
                        .unwrap_or_else(|p| p.into_inner());
                    if l.len() >= 4096 {
                        l.pop_front();
                    }
                    l.push_back(took);
                }
                Err(e) => tracing::warn!(remote = %remote, error = %e, "immediate ban refused"),
            }
        } else {
            fw.strike(
                host(remote),
                "detection",
                reason.to_string(),
                BanSource::Detection,
            );
        }
    }

    /// Serves connections from `listener` until the task is dropped.
    pub async fn serve(self: Arc<Self>, listener: TcpListener) {
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "proxy accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let me = self.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req| {
                    let me = me.clone();
                    async move { Ok::<_, Infallible>(me.handle(req, peer).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .keep_alive(true)
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    }

    /// Handles one request.
    pub async fn handle(&self, req: Request<Incoming>, peer: SocketAddr) -> Response<ProxyBody> {
        let started = Instant::now();
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        let remote = self.client_ip(peer.ip(), req.headers());
        let id = self.request_id();
        let method = req.method().to_string();
        let target = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/".into());
        let path = req.uri().path().to_string();
        let ua = req
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let referer = req
            .headers()
            .get(header::REFERER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let (resp, outcome) = self.decide(req, remote, &id, &path).await;
        self.access_log(
            &remote, &method, &target, &ua, &referer, &id, &outcome, started,
        );
        resp
    }

    async fn decide(
        &self,
        req: Request<Incoming>,
        remote: IpAddr,
        id: &str,
        path: &str,
    ) -> (Response<ProxyBody>, Outcome) {
        let outcome = |status: u16, verdict: &'static str, reason: String, score: u32| Outcome {
            status,
            verdict,
            reason,
            score,
        };
        if self.cfg.exempt_paths.iter().any(|p| glob(p, path)) {
            let (r, st) = self.forward(req, Vec::new(), remote, id).await;
            return (r, outcome(st, "exempt", String::new(), 0));
        }
        if !self.agents.is_empty() {
            let ua = req
                .headers()
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_ascii_lowercase();
            if let Some(a) = self.agents.iter().find(|a| ua.contains(a.as_str())) {
                self.stats.blocked_agent.fetch_add(1, Ordering::Relaxed);
                let reason = format!("user agent contains {a:?}");
                let mut fw = self.state.fw.lock().unwrap_or_else(|p| p.into_inner());
                fw.strike(
                    host(remote),
                    "bad_agent",
                    reason.clone(),
                    BanSource::Detection,
                );
                drop(fw);
                return (
                    json_error(StatusCode::FORBIDDEN, "blocked by waf", id),
                    outcome(403, "block", reason, 0),
                );
            }
        }
        let limited = self
            .limiter
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .check(remote, path);
        if let Some(retry) = limited {
            self.stats.rate_limited.fetch_add(1, Ordering::Relaxed);
            let mut r = json_error(StatusCode::TOO_MANY_REQUESTS, "rate limited", id);
            let secs = retry.as_secs().max(1).to_string();
            if let Ok(v) = HeaderValue::from_str(&secs) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            return (r, outcome(429, "rate_limited", "http rate limit".into(), 0));
        }

        // Buffer the head of the body for inspection.
        let max_body = self.engine.limits().max_body;
        let (parts, mut body) = req.into_parts();
        let mut head: Vec<Bytes> = Vec::new();
        let mut head_len = 0usize;
        let mut body_done = body.is_end_stream();
        while !body_done && head_len < max_body {
            match body.frame().await {
                Some(Ok(f)) => {
                    if let Ok(data) = f.into_data() {
                        head_len += data.len();
                        head.push(data);
                    }
                }
                Some(Err(e)) => {
                    return (
                        json_error(StatusCode::BAD_REQUEST, "unreadable request body", id),
                        outcome(400, "error", format!("body: {e}"), 0),
                    );
                }
                None => body_done = true,
            }
        }
        let mut prefix = Vec::with_capacity(head_len.min(max_body));
        for b in &head {
            let room = max_body.saturating_sub(prefix.len());
            prefix.extend_from_slice(&b[..b.len().min(room)]);
        }
        let headers: Vec<(String, String)> = parts
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let target = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/".into());
        let engine = self.engine.clone();
        let method = parts.method.to_string();
        let inspect = move || {
            crate::http::Request::from_parts(&method, &target, headers, prefix, engine.limits())
                .map(|r| engine.inspect(&r, Some(remote)))
        };
        // Small requests (nearly all) are inspected right here: a few tens of
        // microseconds, cheaper than a thread hand-off. Large bodies go to
        // the blocking pool under the time budget.
        let verdict = if head_len <= INLINE_INSPECT_BYTES {
            inspect().map_err(|e| format!("unparsable request: {e}"))
        } else {
            match tokio::time::timeout(
                self.cfg.inspect_budget.0,
                tokio::task::spawn_blocking(inspect),
            )
            .await
            {
                Ok(Ok(Ok(v))) => Ok(v),
                Ok(Ok(Err(e))) => Err(format!("unparsable request: {e}")),
                Ok(Err(e)) => Err(format!("inspection failed: {e}")),
                Err(_) => Err(format!(
                    "inspection over its budget ({})",
                    self.cfg.inspect_budget
                )),
            }
        };
        let decided = Instant::now();
        let rebuilt = Request::from_parts(parts, body);
        let verdict = match verdict {
            Ok(v) => v,
            Err(why) => {
                self.stats.inspect_errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(remote = %remote, request_id = id, error = %why, policy = ?self.cfg.on_error, "inspection error");
                if self.cfg.on_error == OnError::Closed {
                    return (
                        json_error(
                            StatusCode::SERVICE_UNAVAILABLE,
                            "request could not be inspected",
                            id,
                        ),
                        outcome(503, "error", why, 0),
                    );
                }
                let (r, st) = self.forward(rebuilt, head, remote, id).await;
                return (r, outcome(st, "error_open", why, 0));
            }
        };
        let reason = verdict
            .attacks
            .first()
            .map(|f| {
                format!(
                    "{:?} at {} (rule {}): {}",
                    f.kind, f.location, f.rule, f.matched
                )
            })
            .unwrap_or_default();
        if verdict.action == Action::Block {
            self.stats.blocked.fetch_add(1, Ordering::Relaxed);
            self.strike(remote, &verdict, &reason, decided);
            return (
                json_error(StatusCode::FORBIDDEN, "blocked by waf", id),
                outcome(403, "block", reason, verdict.score),
            );
        }
        let label = if verdict.would_block {
            self.stats.would_block.fetch_add(1, Ordering::Relaxed);
            "would_block"
        } else {
            "pass"
        };
        let (r, st) = self.forward(rebuilt, head, remote, id).await;
        (r, outcome(st, label, reason, verdict.score))
    }

    /// Sends the request upstream: the buffered head of the body, then the
    /// rest as it comes.
    async fn forward(
        &self,
        req: Request<Incoming>,
        head: Vec<Bytes>,
        remote: IpAddr,
        id: &str,
    ) -> (Response<ProxyBody>, u16) {
        let (mut parts, rest) = req.into_parts();
        let peer_trusted = self.trusted.iter().any(|n| n.contains(&remote));
        let xff = match parts
            .headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
        {
            Some(prev) if peer_trusted => format!("{prev}, {remote}"),
            _ => remote.to_string(),
        };
        strip_hop_by_hop(&mut parts.headers);
        if let Ok(v) = HeaderValue::from_str(&xff) {
            parts.headers.insert("x-forwarded-for", v);
        }
        if !(peer_trusted && parts.headers.contains_key("x-forwarded-proto")) {
            parts
                .headers
                .insert("x-forwarded-proto", HeaderValue::from_static("http"));
        }
        if let Ok(v) = HeaderValue::from_str(id) {
            parts.headers.insert("x-request-id", v);
        }
        let pq = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/".into());
        parts.uri = match format!("http://{}{pq}", self.upstream).parse() {
            Ok(u) => u,
            Err(_) => {
                return (
                    json_error(StatusCode::BAD_REQUEST, "bad request target", id),
                    400,
                );
            }
        };
        let head_stream = futures_stream(head);
        let body: ProxyBody = StreamBody::new(head_stream)
            .boxed()
            .map_err(|e: BoxError| e)
            .boxed();
        let body = ChainBody::new(body, rest.map_err(|e| -> BoxError { Box::new(e) }).boxed());
        let up = Request::from_parts(parts, body.boxed());
        let fut = self.client.request(up);
        match tokio::time::timeout(self.cfg.upstream_timeout.0, fut).await {
            Ok(Ok(resp)) => {
                self.stats.forwarded.fetch_add(1, Ordering::Relaxed);
                let (mut parts, body) = resp.into_parts();
                strip_hop_by_hop(&mut parts.headers);
                if self.cfg.security_headers {
                    self.add_security_headers(&mut parts.headers);
                }
                let status = parts.status.as_u16();
                let body = body.map_err(|e| -> BoxError { Box::new(e) }).boxed();
                (Response::from_parts(parts, body), status)
            }
            Ok(Err(e)) => {
                self.stats.upstream_errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, upstream = %self.upstream, "upstream request failed");
                (
                    json_error(StatusCode::BAD_GATEWAY, "upstream unavailable", id),
                    502,
                )
            }
            Err(_) => {
                self.stats.upstream_errors.fetch_add(1, Ordering::Relaxed);
                (
                    json_error(StatusCode::GATEWAY_TIMEOUT, "upstream timed out", id),
                    504,
                )
            }
        }
    }

    fn add_security_headers(&self, h: &mut HeaderMap) {
        let mut set = |name: &'static str, value: &str| {
            if !h.contains_key(name)
                && let Ok(v) = HeaderValue::from_str(value)
            {
                h.insert(name, v);
            }
        };
        if self.cfg.hsts_max_age > 0 {
            set(
                "strict-transport-security",
                &format!("max-age={}; includeSubDomains", self.cfg.hsts_max_age),
            );
        }
        set("content-security-policy", &self.cfg.content_security_policy);
        set("x-frame-options", "DENY");
        set("x-content-type-options", "nosniff");
        set("referrer-policy", "strict-origin-when-cross-origin");
    }

    #[allow(clippy::too_many_arguments)]
    fn access_log(
        &self,
        remote: &IpAddr,
        method: &str,
        target: &str,
        ua: &str,
        referer: &str,
        id: &str,
        o: &Outcome,
        started: Instant,
    ) {
        let Some(log) = &self.log else { return };
        let now = humantime::format_rfc3339_seconds(SystemTime::now());
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        let q = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
        let line = match self.cfg.access_log_format {
            AccessLogFormat::Json => serde_json::json!({
                "time": now.to_string(), "remote": remote.to_string(), "method": method,
                "target": target, "status": o.status, "verdict": o.verdict, "score": o.score,
                "reason": o.reason, "user_agent": ua, "referer": referer, "request_id": id,
                "ms": (ms * 1000.0).round() / 1000.0,
            })
            .to_string(),
            AccessLogFormat::Common => format!(
                "{remote} - - [{now}] \"{} {} HTTP/1.1\" {} - verdict={} score={} reason=\"{}\" id={id}",
                q(method),
                q(target),
                o.status,
                o.verdict,
                o.score,
                q(&o.reason)
            ),
            AccessLogFormat::Combined => format!(
                "{remote} - - [{now}] \"{} {} HTTP/1.1\" {} - \"{}\" \"{}\" verdict={} score={} reason=\"{}\" id={id}",
                q(method),
                q(target),
                o.status,
                q(referer),
                q(ua),
                o.verdict,
                o.score,
                q(&o.reason)
            ),
        };
        let mut w = log.lock().unwrap_or_else(|p| p.into_inner());
        // One write per line (then flush): concurrent requests never interleave.
        let _ = w.write_all(format!("{line}\n").as_bytes());
        let _ = w.flush();
    }
}

/// A stream of already-read body chunks.
fn futures_stream(
    chunks: Vec<Bytes>,
) -> impl futures_util::Stream<Item = Result<Frame<Bytes>, BoxError>> + Send + Sync + 'static {
    futures_util::stream::iter(chunks.into_iter().map(|b| Ok(Frame::data(b))))
}

/// Two bodies, one after the other.
struct ChainBody {
    first: Option<ProxyBody>,
    second: ProxyBody,
}

impl ChainBody {
    fn new(first: ProxyBody, second: ProxyBody) -> Self {
        Self {
            first: Some(first),
            second,
        }
    }
}

impl hyper::body::Body for ChainBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        use std::task::Poll;
        if let Some(first) = self.first.as_mut() {
            match std::pin::Pin::new(first).poll_frame(cx) {
                Poll::Ready(None) => self.first = None,
                other => return other,
            }
        }
        std::pin::Pin::new(&mut self.second).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.first.as_ref().is_none_or(|f| f.is_end_stream()) && self.second.is_end_stream()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_urls() {
        assert_eq!(
            parse_upstream("http://127.0.0.1:8000").unwrap(),
            "127.0.0.1:8000"
        );
        assert_eq!(
            parse_upstream("http://app.internal:80/").unwrap(),
            "app.internal:80"
        );
        assert!(
            parse_upstream("https://x:443")
                .unwrap_err()
                .contains("https")
        );
        assert!(parse_upstream("127.0.0.1:80").is_err());
        assert!(parse_upstream("http://x:80/path").is_err());
        assert!(parse_upstream("http://user@x:80").is_err());
    }

    #[test]
    fn globs() {
        assert!(glob("/static/*", "/static/app.js"));
        assert!(glob("*.css", "/a/b.css"));
        assert!(glob("/health", "/health"));
        assert!(!glob("/health", "/healthz"));
        assert!(glob("/a/*/c", "/a/b/c"));
        assert!(!glob("/a/*/c", "/a/b/d"));
    }

    #[test]
    fn http_limiter_per_source_and_path() {
        let mut l = HttpLimiter::new(&[
            HttpLimit {
                path: None,
                requests: 100,
                per: crate::config::Dur(Duration::from_secs(1)),
                burst: Some(100),
            },
            HttpLimit {
                path: Some("/login".into()),
                requests: 2,
                per: crate::config::Dur(Duration::from_secs(60)),
                burst: Some(2),
            },
        ]);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(l.check(a, "/login").is_none());
        assert!(l.check(a, "/login").is_none());
        let retry = l.check(a, "/login").expect("third login refused");
        assert!(retry > Duration::from_secs(20), "{retry:?}");
        assert!(l.check(a, "/home").is_none(), "other paths still fine");
        assert!(
            l.check(b, "/login").is_none(),
            "other sources have their own"
        );
    }
}
