//! The decision on one request: its routes (see `route.rs`), exempt paths,
//! the refusals that come before the body (user agent, rate limits), reading the body under the
//! inspection limit and `max_upload`, the engine's verdict (inline or on the
//! blocking pool under a time budget), and what follows from it: block,
//! refuse, or forward.

use std::{net::IpAddr, sync::atomic::Ordering, time::Instant};

use bytes::Bytes;
use hyper::{
    Request, Response, StatusCode,
    body::{Body as _, Incoming},
    header,
};

use super::{
    BodyOverflow, OnError, Proxy, ProxyBody,
    client::Client,
    forward::{header_str, json_error, too_many_requests},
    log::Outcome,
};
use crate::{
    detect::{Action, Verdict},
    firewall::StrikeKind,
    http::{BodyMeter, CanonicalPath, ParseError},
    monitors::Hit,
};

/// Bodies up to this size are inspected on the connection's task; larger
/// ones on the blocking pool, under `inspect_budget`.
const INLINE_INSPECT_BYTES: usize = 16 * 1024;

/// Why a request got no verdict.
enum Refusal {
    /// Our parser refused it (never forwarded, whatever `on_error` says).
    Unparsable(StatusCode, String),
    /// Inspection failed (`on_error` decides), or ran over its budget under
    /// `on_error = "closed"`.
    Failed(String),
}

/// What reading the body gave.
struct BodyHead {
    /// The bytes read (all of the body, unless one of the flags is set).
    buf: Vec<u8>,
    /// More body follows than the inspection limit (`max_body`, file
    /// contents of a multipart body not counted).
    overflow: bool,
    /// The body is longer than `max_upload`.
    too_big: bool,
    /// The body is longer than its route's `max_body`.
    over_route: bool,
}

/// What to do with an inspected request.
enum Decision {
    /// Answer the client here; nothing reaches the upstream.
    Answer(Response<ProxyBody>, Outcome),
    /// Forward it, and log the upstream's status with this verdict.
    Forward {
        /// The verdict the access log shows.
        verdict: &'static str,
        /// Why (the first finding, or the inspection error).
        reason: String,
        /// The anomaly score.
        score: u32,
    },
}

impl Proxy {
    /// Decides one request and carries the decision out: the response the
    /// client gets (ours, or the upstream's) and what the access log says.
    pub(super) async fn decide(
        &self,
        req: Request<Incoming>,
        path: &CanonicalPath,
        peer: IpAddr,
        client: Client,
        id: &str,
    ) -> (Response<ProxyBody>, Outcome) {
        let target = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        if self.is_verify(path) {
            return self.verify_solution(req, &client, id).await;
        }
        if let Some(refused) = self.monitor_request(&req, path, client.addr, id) {
            self.stats.behavior_refused.fetch_add(1, Ordering::Relaxed);
            return refused;
        }
        let sel = self.routes.routes.select(path);
        if let Some(refused) = self.route_refusal(&req, path, &sel, &client, id) {
            return refused;
        }
        let origin = header_str(&req, header::ORIGIN).map(str::to_string);
        let cap = self.routes.routes.max_body(&sel);
        if self.routes.routes.exempt(&sel) {
            self.stats.exempt.fetch_add(1, Ordering::Relaxed);
            let (mut r, st, app) = self.forward(req, Vec::new(), cap, peer, &client, id).await;
            self.cors_response(&sel, origin.as_deref(), r.headers_mut());
            return (r, outcome(st, "exempt", String::new(), 0).from_app(app));
        }
        if let Some(answer) = self.challenge_gate(&req, target, &sel, &client, id).await {
            return answer;
        }
        if let Some(refused) = self.refuse_early(&req, path, &client, id) {
            return refused;
        }
        let max_body = self.engine.limits().max_body;
        let ctype = header_str(&req, header::CONTENT_TYPE).map(str::to_string);
        let (parts, mut body) = req.into_parts();
        let head = match self.read_body(&mut body, ctype.as_deref(), cap).await {
            Ok(h) => h,
            Err(e) => {
                let r = json_error(StatusCode::BAD_REQUEST, "unreadable request body", id);
                return (r, outcome(400, "error", e, 0));
            }
        };
        if let Some(max) = cap
            && head.over_route
        {
            return self.route_too_large(max, id);
        }
        if let Some(refused) = self.refuse_body(&head, max_body, id) {
            return refused;
        }
        let verdict = self.inspect(&parts, &head, &client).await;
        let decided = Instant::now();
        if let Ok((v, _)) = &verdict {
            let host = parts
                .headers
                .get(header::HOST)
                .map(|h| String::from_utf8_lossy(h.as_bytes()))
                .unwrap_or_default();
            self.record_findings(v, parts.method.as_str(), &host, path, client.addr, id);
        }
        let rebuilt = Request::from_parts(parts, body);
        let decision = match verdict {
            Ok((v, hits)) => match self.refuse_on(hits, client.addr, id) {
                Some((r, o)) => {
                    self.stats.behavior_refused.fetch_add(1, Ordering::Relaxed);
                    Decision::Answer(r, o)
                }
                None => self.judge(&v, head.overflow, max_body, client.addr, decided, id),
            },
            Err(refusal) => self.on_refusal(refusal, client.addr, id),
        };
        match decision {
            Decision::Answer(r, o) => (r, o),
            Decision::Forward {
                verdict,
                reason,
                score,
            } => {
                let head_request = rebuilt.method() == hyper::Method::HEAD;
                let (r, st, app) = self
                    .forward(rebuilt, vec![Bytes::from(head.buf)], cap, peer, &client, id)
                    .await;
                let mut seen = outcome(st, verdict, reason, score).from_app(app);
                let mut r = if app {
                    let s = self
                        .screen_response(r, head_request, path, client.addr, id)
                        .await;
                    seen = s.outcome.unwrap_or(seen);
                    s.response
                } else {
                    r
                };
                self.cors_response(&sel, origin.as_deref(), r.headers_mut());
                (r, seen)
            }
        }
    }

    /// The refusals that come before the body: user agent, rate limits.
    fn refuse_early(
        &self,
        req: &Request<Incoming>,
        path: &CanonicalPath,
        client: &Client,
        id: &str,
    ) -> Option<(Response<ProxyBody>, Outcome)> {
        if !self.agents.is_empty() {
            let ua = header_str(req, header::USER_AGENT)
                .unwrap_or("")
                .to_ascii_lowercase();
            if let Some(bad) = self.agents.iter().find(|a| ua.contains(a.as_str())) {
                self.stats.blocked_agent.fetch_add(1, Ordering::Relaxed);
                let reason = format!("blocked user agent ({bad})");
                self.strike(
                    client.addr,
                    StrikeKind::BadAgent,
                    0,
                    &reason,
                    Instant::now(),
                );
                let r = json_error(StatusCode::FORBIDDEN, "blocked by waf", id);
                return Some((r, outcome(403, "block", reason, 0)));
            }
        }
        if !self.limiter.is_empty()
            && let Some(retry) = self.limiter.check(self.source(client.addr), path)
        {
            self.stats.rate_limited.fetch_add(1, Ordering::Relaxed);
            let r = too_many_requests(retry, id);
            return Some((r, outcome(429, "rate_limited", "http rate limit".into(), 0)));
        }
        None
    }

    /// Reads the body until its end, or until the bytes that count against
    /// the inspection limit pass it (`overflow`), or until `max_upload`
    /// (`too_big`).
    async fn read_body(
        &self,
        body: &mut Incoming,
        ctype: Option<&str>,
        route_max: Option<u64>,
    ) -> Result<BodyHead, String> {
        let limits = self.engine.limits();
        let mut meter = BodyMeter::new(ctype, limits);
        let multipart = ctype.is_some_and(|c| {
            c.trim_start()
                .to_ascii_lowercase()
                .starts_with("multipart/")
        });
        let mut head = BodyHead {
            buf: Vec::new(),
            overflow: false,
            too_big: false,
            over_route: false,
        };
        let announced = body.size_hint().lower();
        if announced > self.cfg.max_upload as u64 {
            head.too_big = true;
            return Ok(head);
        }
        if !multipart && announced > limits.max_body as u64 {
            head.overflow = true;
            if self.cfg.body_overflow == BodyOverflow::Reject {
                return Ok(head);
            }
        }
        while !body.is_end_stream() {
            match http_body_util::BodyExt::frame(body).await {
                Some(Ok(f)) => {
                    if let Ok(data) = f.into_data() {
                        head.buf.extend_from_slice(&data);
                    }
                }
                Some(Err(e)) => return Err(format!("body: {e}")),
                None => break,
            }
            if head.buf.len() > self.cfg.max_upload {
                head.too_big = true;
                break;
            }
            if route_max.is_some_and(|m| head.buf.len() as u64 > m) {
                head.over_route = true;
                break;
            }
            if meter.over_limit(&head.buf) {
                head.overflow = true;
                break;
            }
        }
        Ok(head)
    }

    /// 413 for a body over `max_upload`, or over the inspection limit when
    /// the policy rejects those.
    fn refuse_body(
        &self,
        head: &BodyHead,
        max_body: usize,
        id: &str,
    ) -> Option<(Response<ProxyBody>, Outcome)> {
        let why = if head.too_big {
            format!(
                "body longer than proxy.max_upload ({} bytes)",
                self.cfg.max_upload
            )
        } else if head.overflow && self.cfg.body_overflow == BodyOverflow::Reject {
            format!(
                "body longer than the inspection limit ({max_body} bytes; \
                 proxy.body_overflow = reject)"
            )
        } else {
            if head.overflow {
                self.stats
                    .inspected_partially
                    .fetch_add(1, Ordering::Relaxed);
            }
            return None;
        };
        self.stats.body_too_large.fetch_add(1, Ordering::Relaxed);
        let r = json_error(StatusCode::PAYLOAD_TOO_LARGE, "request body too large", id);
        Some((r, outcome(413, "too_large", why, 0)))
    }

    /// Runs the engine on the head and the buffered body, and the
    /// monitors on its form fields.
    async fn inspect(
        &self,
        parts: &hyper::http::request::Parts,
        head: &BodyHead,
        client: &Client,
    ) -> Result<(Verdict, Vec<Hit>), Refusal> {
        let (remote, malformed) = (client.addr, client.malformed);
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
        let excluded = self.findings.as_ref().map(|f| f.exclusions.current());
        let monitors = self.behaviour.monitors.clone();
        let source = self.source(remote);
        let method = parts.method.to_string();
        let body = head.buf.clone();
        let partial = head.overflow;
        let len = body.len();
        let inspect = move || {
            let req = if partial {
                crate::http::Request::from_parts_partial(
                    &method,
                    &target,
                    headers,
                    body,
                    engine.limits(),
                )
            } else {
                crate::http::Request::from_parts(&method, &target, headers, body, engine.limits())
            };
            match req {
                Ok(mut r) => {
                    if malformed {
                        r.anomalies.push(crate::http::Anomaly::MalformedForwarding);
                    }
                    let hits = monitors.map_or_else(Vec::new, |m| {
                        m.on_form(source, Instant::now(), &r.parsed_body)
                    });
                    Ok((
                        engine.inspect_with(&r, Some(remote), excluded.as_deref()),
                        hits,
                    ))
                }
                Err(
                    e @ (ParseError::TooManyHeaders { .. } | ParseError::HeadersTooLarge { .. }),
                ) => Err(Refusal::Unparsable(
                    StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                    e.to_string(),
                )),
                Err(e) => Err(Refusal::Unparsable(StatusCode::BAD_REQUEST, e.to_string())),
            }
        };
        // Small requests (nearly all) are inspected right here: a few tens
        // of microseconds, cheaper than a thread hand-off. Large bodies go
        // to the blocking pool under the time budget.
        if len <= INLINE_INSPECT_BYTES {
            return inspect();
        }
        // Past the budget, `on_error = "closed"` answers 503 at once; "open"
        // waits for the verdict. Forwarding then would let through,
        // uninspected, whatever an attacker makes slow to inspect (a large
        // body of costly text, or many at once); and the inspection runs
        // to its end on the blocking pool either way.
        let budget = self.cfg.inspect_budget;
        let mut task = tokio::task::spawn_blocking(inspect);
        let done = match tokio::time::timeout(budget.0, &mut task).await {
            Ok(done) => done,
            Err(_) => {
                self.stats
                    .inspect_over_budget
                    .fetch_add(1, Ordering::Relaxed);
                if self.cfg.on_error == OnError::Closed {
                    return Err(Refusal::Failed(format!(
                        "inspection over its budget ({budget})"
                    )));
                }
                task.await
            }
        };
        done.unwrap_or_else(|e| Err(Refusal::Failed(format!("inspection failed: {e}"))))
    }

    /// Hands the verdict to the findings (counted, ranked on the overview,
    /// queued for the store as `[findings] keep` says); never waits.
    pub(super) fn record_findings(
        &self,
        v: &Verdict,
        method: &str,
        host: &str,
        path: &CanonicalPath,
        client: IpAddr,
        id: &str,
    ) {
        let Some(findings) = self.findings.as_ref() else {
            return;
        };
        let facts = crate::findings::RequestFacts {
            origin: crate::findings::Origin::Proxy,
            source: client,
            method,
            host,
            path: &path.path,
            request_id: id,
        };
        findings.record(v, &facts, crate::findings::now_ms());
    }

    /// What the engine's verdict means for the request: a 403 and a strike
    /// against `client` when it blocks, else forwarding under the verdict
    /// the log shows (`would_block` in passive mode, `pass_partial` when
    /// only the first `max_body` bytes were inspected).
    fn judge(
        &self,
        verdict: &Verdict,
        partial: bool,
        max_body: usize,
        client: IpAddr,
        decided: Instant,
        id: &str,
    ) -> Decision {
        let mut reason = verdict
            .attacks
            .first()
            .map(|f| {
                format!(
                    "{:?} at {} (rule {}): {}",
                    f.kind, f.location, f.rule, f.matched
                )
            })
            .unwrap_or_default();
        if partial {
            reason = format!("partial inspection (first {max_body} bytes) {reason}");
        }
        if verdict.action == Action::Block {
            self.stats.blocked.fetch_add(1, Ordering::Relaxed);
            self.strike(
                client,
                StrikeKind::Detection,
                verdict.score,
                &reason,
                decided,
            );
            let r = json_error(StatusCode::FORBIDDEN, "blocked by waf", id);
            return Decision::Answer(r, outcome(403, "block", reason, verdict.score));
        }
        let label = match (verdict.would_block, partial) {
            (true, _) => {
                self.stats.would_block.fetch_add(1, Ordering::Relaxed);
                "would_block"
            }
            (false, true) => "pass_partial",
            (false, false) => "pass",
        };
        Decision::Forward {
            verdict: label,
            reason,
            score: verdict.score,
        }
    }

    /// A request without a verdict: unparsable ones are refused (400 or
    /// 431); on an inspection failure `on_error` decides between 503 and
    /// forwarding.
    fn on_refusal(&self, refusal: Refusal, client: IpAddr, id: &str) -> Decision {
        match refusal {
            Refusal::Unparsable(status, why) => {
                self.stats.unparsable.fetch_add(1, Ordering::Relaxed);
                let r = json_error(status, "request could not be parsed", id);
                Decision::Answer(r, outcome(status.as_u16(), "unparsable", why, 0))
            }
            Refusal::Failed(why) => {
                self.stats.inspect_errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(remote = %client, request_id = id, error = %why, policy = ?self.cfg.on_error, "inspection error");
                if self.cfg.on_error == OnError::Closed {
                    let r = json_error(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "request could not be inspected",
                        id,
                    );
                    return Decision::Answer(r, outcome(503, "error", why, 0));
                }
                Decision::Forward {
                    verdict: "error_open",
                    reason: why,
                    score: 0,
                }
            }
        }
    }
}

/// What the access log says of a request.
pub(super) fn outcome(status: u16, verdict: &'static str, reason: String, score: u32) -> Outcome {
    Outcome {
        status,
        verdict,
        reason,
        score,
        upstream: false,
    }
}
