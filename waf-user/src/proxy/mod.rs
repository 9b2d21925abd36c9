//! The inline reverse proxy: every request goes through the detection
//! engine before it reaches the application. A blocked request gets a 403
//! with a small JSON body (error and request id) and never reaches the
//! upstream; detections are strikes sent to the firewall's owner, which
//! turns them into XDP bans. Also: per-source request limits (429), a
//! user-agent blocklist, a stated policy for bodies past the inspection
//! limit (413 or partial inspection), security headers, and an access log.
//!
//! HTTP/1.1 with keep-alive (hyper). The proxy knows a strike sink, not the
//! API or the firewall.

mod behave;
mod challenge;
mod client;
pub mod config;
pub mod crawler;
mod decide;
mod forward;
mod limiter;
pub mod log;
mod respond;
mod route;
mod workers;

use std::{
    convert::Infallible,
    net::{IpAddr, SocketAddr},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant, SystemTime},
};

use bytes::Bytes;
use hyper::{Request, Response, StatusCode, body::Incoming, header, service::service_fn};
use hyper_util::{
    client::legacy::{Client as HttpClient, connect::HttpConnector},
    rt::{TokioExecutor, TokioIo, TokioTimer},
};
use ipnet::IpNet;
use serde::Serialize;

pub use self::config::{
    AccessLog, AccessLogFormat, BodyOverflow, ClientHeader, HttpLimit, OnError, ProxyConfig,
    Upstream,
};
pub use self::forward::{BoxError, ProxyBody};
pub use self::workers::Workers;
use self::{
    client::Client,
    forward::{json_error, strip_hop_by_hop},
    limiter::HttpLimiter,
    log::{AccessLogger, Entry},
};
use crate::{
    detect::Engine,
    firewall::{Strike, StrikeKind, StrikeSink},
    http::CanonicalPath,
    routes::Routes,
};

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
    /// Inspection errors, and budget overruns under `on_error = "closed"`.
    pub inspect_errors: AtomicU64,
    /// Inspections that ran over `inspect_budget` (under `on_error =
    /// "open"` the verdict is still awaited: a slow request is never
    /// forwarded uninspected).
    pub inspect_over_budget: AtomicU64,
    /// Upstream failures (502/504).
    pub upstream_errors: AtomicU64,
    /// Requests forwarded without inspection (`[detect] exempt_paths`).
    pub exempt: AtomicU64,
    /// Requests the parser refused (400, or 431 over the header limits):
    /// never forwarded.
    pub unparsable: AtomicU64,
    /// Bodies past the inspection limit refused (413).
    pub body_too_large: AtomicU64,
    /// Bodies past the inspection limit inspected in part (forwarded).
    pub inspected_partially: AtomicU64,
    /// Trusted peers' forwarding headers with a hop that does not parse.
    pub malformed_forwarding: AtomicU64,
    /// Connections closed for a malformed or oversized request head.
    pub bad_request_heads: AtomicU64,
    /// Access log lines dropped (the writer fell behind).
    pub log_dropped: AtomicU64,
    /// Requests refused outside their route's hours or days (403).
    pub route_closed: AtomicU64,
    /// Requests with a method their route does not take (405).
    pub method_not_allowed: AtomicU64,
    /// CORS preflights answered (204).
    pub cors_preflights: AtomicU64,
    /// CORS preflights refused (403).
    pub cors_refused: AtomicU64,
    /// Challenge pages served (or challenge refusals of non-GET requests).
    pub challenged: AtomicU64,
    /// Solutions accepted (a pass cookie given).
    pub challenge_passed: AtomicU64,
    /// Solutions refused: forged, expired, moved, replayed, wrong work.
    pub challenge_failed: AtomicU64,
    /// Pass cookies refused: forged, expired, moved.
    pub token_refused: AtomicU64,
    /// Requests refused for their bot score on a `block` route.
    pub bot_blocked: AtomicU64,
    /// Requests from crawlers verified by forward-confirmed reverse DNS.
    pub crawlers_verified: AtomicU64,
    /// Requests naming a crawler that did not verify.
    pub crawlers_unverified: AtomicU64,
    /// Behaviour monitor hits (each a strike, or a ban).
    pub monitor_hits: AtomicU64,
    /// Requests refused because a monitor banned their source.
    pub behavior_refused: AtomicU64,
    /// Windows the anomaly model flagged (strikes in `enforce`).
    pub anomaly_flagged: AtomicU64,
    /// Responses read for data leaks.
    pub responses_inspected: AtomicU64,
    /// Responses withheld for a data leak (502).
    pub response_blocked: AtomicU64,
}

/// The proxy.
pub struct Proxy {
    cfg: ProxyConfig,
    upstream: hyper::http::uri::Authority,
    /// One pool of upstream connections per worker thread.
    clients: Vec<HttpClient<HttpConnector, ProxyBody>>,
    engine: Arc<Engine>,
    strikes: StrikeSink,
    v6_prefix: u8,
    trusted: Vec<IpNet>,
    agents: Vec<String>,
    limiter: HttpLimiter,
    routes: route::RouteState,
    challenge: Option<challenge::ChallengeState>,
    behaviour: behave::Behaviour,
    log: AccessLogger,
    geo: Option<log::GeoLookup>,
    findings: Option<Arc<crate::findings::Findings>>,
    next_id: AtomicU64,
    /// The serving threads' connection counts, once they run.
    workers: std::sync::OnceLock<Arc<[workers::Peer]>>,
    /// Counters.
    pub stats: ProxyStats,
}

impl Proxy {
    /// Builds the proxy (the config was validated). `v6_prefix` is the ban
    /// policy's IPv6 aggregation, which the request limits key by too.
    pub fn new(
        cfg: &ProxyConfig,
        routes: Routes,
        engine: Arc<Engine>,
        strikes: StrikeSink,
        v6_prefix: u8,
    ) -> anyhow::Result<Self> {
        let upstream = cfg
            .upstream
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("proxy.upstream: not set"))?
            .0
            .parse::<hyper::http::uri::Authority>()
            .map_err(|e| anyhow::anyhow!("proxy.upstream: {e}"))?;
        let log = AccessLogger::open(&cfg.access_log, cfg.access_log_format)?;
        let clients = (0..cfg.workers())
            .map(|_| {
                let mut connector = HttpConnector::new();
                connector.set_nodelay(true);
                HttpClient::builder(TokioExecutor::new())
                    .pool_idle_timeout(Duration::from_secs(30))
                    .build(connector)
            })
            .collect();
        Ok(Self {
            cfg: cfg.clone(),
            upstream,
            clients,
            engine,
            strikes,
            v6_prefix,
            trusted: cfg.trusted(),
            agents: cfg
                .blocked_user_agents
                .iter()
                .map(|a| a.to_ascii_lowercase())
                .collect(),
            limiter: HttpLimiter::new(&cfg.rate_limits),
            routes: route::RouteState::new(routes),
            challenge: None,
            behaviour: behave::Behaviour::default(),
            log,
            geo: None,
            findings: None,
            next_id: AtomicU64::new(
                SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(0)
                    << 16,
            ),
            workers: std::sync::OnceLock::new(),
            stats: ProxyStats::default(),
        })
    }

    fn request_id(&self) -> String {
        format!("{:016x}", self.next_id.fetch_add(1, Ordering::Relaxed))
    }

    /// Scores bots with `[challenge]` (its threshold, `crawlers` to verify
    /// crawlers), and runs the JavaScript challenge with `challenger` (None:
    /// no challenge is served, `block` routes still refuse bots).
    pub fn with_challenge(
        mut self,
        challenger: Option<Arc<crate::challenge::Challenger>>,
        cfg: crate::challenge::ChallengeConfig,
        crawlers: Option<Arc<crawler::CrawlerVerifier>>,
    ) -> Self {
        self.challenge = Some(challenge::ChallengeState {
            challenger,
            cfg,
            crawlers,
        });
        self
    }

    /// Logs each client's country and ASN as `geo` gives them (the source
    /// policies' databases).
    pub fn with_geo(mut self, geo: log::GeoLookup) -> Self {
        self.geo = Some(geo);
        self
    }

    /// Keeps each request's findings in the store and applies the
    /// runtime exclusions in force (`crate::findings`).
    pub fn with_findings(mut self, findings: Arc<crate::findings::Findings>) -> Self {
        self.findings = Some(findings);
        self
    }

    /// The source a client counts as (its /64 for IPv6, by default).
    fn source(&self, addr: IpAddr) -> IpNet {
        match addr {
            IpAddr::V4(_) => IpNet::from(addr),
            IpAddr::V6(a) => ipnet::Ipv6Net::new(a, self.v6_prefix)
                .map(|n| IpNet::V6(n.trunc()))
                .unwrap_or_else(|_| IpNet::from(addr)),
        }
    }

    fn strike(&self, addr: IpAddr, kind: StrikeKind, score: u32, reason: &str, decided: Instant) {
        self.strikes.strike(Strike {
            source: addr,
            kind,
            score,
            evidence: reason.chars().take(256).collect(),
            decided: Some(decided),
            ban: false,
        });
    }

    /// Forgets sources whose limits are full again, every 10 s, off the
    /// workers; stops when the returned guard is dropped.
    fn janitor(self: &Arc<Self>) -> AbortOnDrop {
        let me = self.clone();
        AbortOnDrop(tokio::spawn(async move {
            let mut t = tokio::time::interval(Duration::from_secs(10));
            loop {
                t.tick().await;
                let me = me.clone();
                let _ = tokio::task::spawn_blocking(move || {
                    me.limiter.retain_recent();
                    me.routes.retain_recent();
                    me.behaviour_retain();
                })
                .await;
            }
        }))
    }

    /// The HTTP/1.1 server settings every connection gets.
    fn conn_builder(&self) -> hyper::server::conn::http1::Builder {
        let limits = self.engine.limits();
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .keep_alive(true)
            .timer(TokioTimer::new())
            .header_read_timeout(Duration::from_secs(30))
            .max_headers(limits.max_headers.max(1))
            .max_buf_size(limits.max_header_bytes.max(8192));
        builder
    }

    /// Serves one client connection until it closes.
    fn connection(
        self: Arc<Self>,
        builder: &hyper::server::conn::http1::Builder,
        stream: tokio::net::TcpStream,
        peer: SocketAddr,
    ) -> impl std::future::Future<Output = ()> + use<> {
        let _ = stream.set_nodelay(true);
        let conn = builder.clone();
        async move {
            let me = self.clone();
            let svc = service_fn(move |req| {
                let me = me.clone();
                async move { Ok::<_, Infallible>(me.handle(req, peer).await) }
            });
            if let Err(e) = conn.serve_connection(TokioIo::new(stream), svc).await
                && (e.is_parse() || e.is_parse_too_large())
            {
                self.stats.bad_request_heads.fetch_add(1, Ordering::Relaxed);
                tracing::info!(peer = %peer, error = %e, "proxy: bad request head");
            }
        }
    }

    /// Handles one request from socket peer `peer`.
    pub async fn handle(&self, req: Request<Incoming>, peer: SocketAddr) -> Response<ProxyBody> {
        let started = Instant::now();
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        let client = client::resolve(
            peer.ip(),
            req.headers(),
            &self.trusted,
            self.cfg.trusted_depth,
            self.cfg.client_header,
        );
        if client.malformed {
            self.stats
                .malformed_forwarding
                .fetch_add(1, Ordering::Relaxed);
        }
        let id = self.request_id();
        let method = req.method().to_string();
        let target = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/".into());
        let header = |n| forward::header_str(&req, n).unwrap_or("").to_string();
        let (ua, referer) = (header(header::USER_AGENT), header(header::REFERER));
        let bytes = forward::header_str(&req, header::CONTENT_LENGTH)
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0);
        let path = CanonicalPath::from_target(&target);
        let (resp, outcome) = self.decide(req, &path, peer.ip(), client, &id).await;
        self.observe(
            &behave::Seen {
                client: client.addr,
                method: &method,
                path: &path,
                ua: &ua,
                bytes,
            },
            &outcome,
        );
        self.log.log(&Entry {
            remote: client.addr,
            geo: self.geo.as_ref().map_or((None, None), |g| g(client.addr)),
            method: &method,
            target: &target,
            ua: &ua,
            referer: &referer,
            bytes,
            id: &id,
            outcome: &outcome,
            started,
        });
        let dropped = self.log.dropped.load(Ordering::Relaxed);
        self.stats.log_dropped.store(dropped, Ordering::Relaxed);
        resp
    }

    /// Sends the request upstream: the buffered head of the body, then the
    /// rest as it comes (the whole body cut off past `cap` bytes, the
    /// route's `max_body`: the upstream request then fails). Returns the
    /// response, its status, and whether the application gave it (not a
    /// 502/504 of ours).
    async fn forward(
        &self,
        req: Request<Incoming>,
        head: Vec<Bytes>,
        cap: Option<u64>,
        peer: IpAddr,
        client: &Client,
        id: &str,
    ) -> (Response<ProxyBody>, u16, bool) {
        let (mut parts, rest) = req.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        if self.cfg.response_inspect_bytes > 0 {
            respond::limit_accept_encoding(&mut parts.headers);
        }
        forward::set_forwarding(&mut parts.headers, peer, client, id);
        let mut up = Request::from_parts(parts, forward::body_upstream(head, rest, cap));
        if forward::retarget(&mut up, &self.upstream).is_err() {
            return (
                json_error(StatusCode::BAD_REQUEST, "bad request target", id),
                400,
                false,
            );
        }
        let pool = &self.clients[workers::index() % self.clients.len()];
        let fut = pool.request(up);
        match tokio::time::timeout(self.cfg.upstream_timeout.0, fut).await {
            Ok(Ok(resp)) => {
                self.stats.forwarded.fetch_add(1, Ordering::Relaxed);
                let (mut parts, body) = resp.into_parts();
                strip_hop_by_hop(&mut parts.headers);
                if self.cfg.security_headers {
                    forward::add_security_headers(
                        &mut parts.headers,
                        self.cfg.hsts_max_age,
                        &self.cfg.content_security_policy,
                    );
                }
                let status = parts.status.as_u16();
                let body = http_body_util::BodyExt::boxed(http_body_util::BodyExt::map_err(
                    body,
                    |e| -> BoxError { Box::new(e) },
                ));
                (Response::from_parts(parts, body), status, true)
            }
            Ok(Err(e)) => {
                self.stats.upstream_errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, upstream = %self.upstream, "upstream request failed");
                (
                    json_error(StatusCode::BAD_GATEWAY, "upstream unavailable", id),
                    502,
                    false,
                )
            }
            Err(_) => {
                self.stats.upstream_errors.fetch_add(1, Ordering::Relaxed);
                (
                    json_error(StatusCode::GATEWAY_TIMEOUT, "upstream timed out", id),
                    504,
                    false,
                )
            }
        }
    }
}

impl crate::telemetry::Telemetry for Proxy {
    fn section(&self) -> &'static str {
        "proxy"
    }

    fn families(&self) -> Vec<crate::telemetry::Family> {
        let st = &self.stats;
        let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let cache = self.engine.clean_cache_stats();
        let mut out = vec![
            crate::telemetry::Family::by(
                "waf_http_requests",
                "Requests through the proxy, by outcome.",
                crate::telemetry::MetricKind::Counter,
                "outcome",
                [
                    ("forwarded", n(&st.forwarded)),
                    ("blocked", n(&st.blocked)),
                    ("blocked_agent", n(&st.blocked_agent)),
                    ("rate_limited", n(&st.rate_limited)),
                    ("would_block", n(&st.would_block)),
                    ("inspect_error", n(&st.inspect_errors)),
                    ("inspect_over_budget", n(&st.inspect_over_budget)),
                    ("upstream_error", n(&st.upstream_errors)),
                    ("body_too_large", n(&st.body_too_large)),
                    ("exempt", n(&st.exempt)),
                    ("unparsable", n(&st.unparsable)),
                    ("inspected_partially", n(&st.inspected_partially)),
                    ("bad_request_head", n(&st.bad_request_heads)),
                    ("route_closed", n(&st.route_closed)),
                    ("method_not_allowed", n(&st.method_not_allowed)),
                    ("cors_preflight", n(&st.cors_preflights)),
                    ("cors_refused", n(&st.cors_refused)),
                    ("challenged", n(&st.challenged)),
                    ("challenge_passed", n(&st.challenge_passed)),
                    ("challenge_failed", n(&st.challenge_failed)),
                    ("token_refused", n(&st.token_refused)),
                    ("bot_blocked", n(&st.bot_blocked)),
                    ("crawler_verified", n(&st.crawlers_verified)),
                    ("crawler_unverified", n(&st.crawlers_unverified)),
                    ("behavior_refused", n(&st.behavior_refused)),
                    ("response_blocked", n(&st.response_blocked)),
                ],
            ),
            crate::telemetry::Family::one(
                "waf_http_responses_inspected",
                "Responses read for data leaks (proxy.response_inspect_bytes).",
                crate::telemetry::MetricKind::Counter,
                n(&st.responses_inspected),
            ),
            crate::telemetry::Family::one(
                "waf_http_malformed_forwarding",
                "Trusted peers' forwarding headers with a hop that does not parse.",
                crate::telemetry::MetricKind::Counter,
                n(&st.malformed_forwarding),
            ),
            crate::telemetry::Family::one(
                "waf_http_strikes_dropped",
                "Strikes the owner's queue could not take.",
                crate::telemetry::MetricKind::Counter,
                self.strikes.dropped(),
            ),
            crate::telemetry::Family::by(
                "waf_detect_clean_cache_lookups",
                "Header, cookie, name and parameter values looked up in the engine's \
                 caches of values found clean (a hit skips the scan).",
                crate::telemetry::MetricKind::Counter,
                "outcome",
                [("hit", cache.hits), ("miss", cache.misses)],
            ),
            crate::telemetry::Family::one(
                "waf_http_connections",
                "Client connections the proxy's workers serve now.",
                crate::telemetry::MetricKind::Gauge,
                self.workers
                    .get()
                    .map_or(0, |p| workers::serving(p).iter().sum::<usize>() as u64),
            ),
        ];
        out.extend(self.behaviour.families());
        out
    }

    fn json(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(&self.stats).unwrap_or_default();
        v["clean_cache"] =
            serde_json::to_value(self.engine.clean_cache_stats()).unwrap_or_default();
        v["limited_sources"] = self.limiter.sources().into();
        v["strikes_dropped"] = self.strikes.dropped().into();
        v["behavior"] = self.behaviour.json();
        v["workers"] = self
            .workers
            .get()
            .map_or_else(Vec::new, |p| workers::serving(p))
            .into();
        v
    }
}

/// Aborts a task when dropped (the proxy's janitor ends with `serve`).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
