//! The routes (`[[routes]]`) in the proxy: CORS preflights answered here,
//! time windows (403 when closed), methods (405 with `Allow`), per-route
//! request limits (429), the route's body limit (413), and the CORS headers
//! of the responses. The routes a request meets come from
//! `crate::routes::Routes::select` on the canonical path.

use std::{sync::atomic::Ordering, time::SystemTime};

use hyper::{
    HeaderMap, Method, Request, Response, StatusCode,
    body::Incoming,
    header::{self, HeaderName, HeaderValue},
};

use super::{
    Proxy, ProxyBody,
    client::Client,
    forward::{header_str, json_error, too_many_requests},
    limiter::HttpLimiter,
    log::Outcome,
};
use crate::{
    http::CanonicalPath,
    routes::{Preflight, Routes, Selection},
};

/// The proxy's routes and each route's request limits.
pub struct RouteState {
    /// The routes, compiled.
    pub routes: Routes,
    /// Per route, its limits (empty limiters for routes without).
    pub limits: Vec<HttpLimiter>,
    /// The clock the time windows read: the real one, shifted in debug
    /// builds by `WAF_FAKE_NOW` (see [`clock_shift`]).
    pub shift: i64,
}

/// Debug builds only (the lab tests run them): `WAF_FAKE_NOW=<unix
/// seconds>` makes the routes' windows read a clock that starts there and
/// runs on. A release build ignores it.
pub fn clock_shift() -> i64 {
    if !cfg!(debug_assertions) {
        return 0;
    }
    let Some(fake) = std::env::var("WAF_FAKE_NOW")
        .ok()
        .and_then(|v| v.trim().parse::<i64>().ok())
    else {
        return 0;
    };
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    tracing::warn!(
        fake,
        "WAF_FAKE_NOW: the routes' time windows read a shifted clock (debug build)"
    );
    fake - now
}

impl RouteState {
    /// The state of `routes`.
    pub fn new(routes: Routes) -> Self {
        let limits = routes
            .all()
            .iter()
            .map(|r| {
                let l: Vec<super::HttpLimit> = r
                    .cfg
                    .rate_limits
                    .iter()
                    .map(|l| super::HttpLimit {
                        path: None,
                        requests: l.requests,
                        per: l.per,
                        burst: l.burst,
                    })
                    .collect();
                HttpLimiter::new(&l)
            })
            .collect();
        Self {
            routes,
            limits,
            shift: clock_shift(),
        }
    }

    /// The time the windows read.
    pub fn now(&self) -> SystemTime {
        let now = SystemTime::now();
        let d = std::time::Duration::from_secs(self.shift.unsigned_abs());
        if self.shift >= 0 {
            now.checked_add(d).unwrap_or(now)
        } else {
            now.checked_sub(d).unwrap_or(now)
        }
    }

    /// Forgets sources whose limits are full again.
    pub fn retain_recent(&self) {
        for l in &self.limits {
            l.retain_recent();
        }
    }
}

fn answer(status: u16, verdict: &'static str, reason: String) -> Outcome {
    super::decide::outcome(status, verdict, reason, 0)
}

impl Proxy {
    /// The route refusals that come before anything else: a CORS preflight
    /// (answered here), a closed window (403), a method the route does not
    /// take (405), a route's limit (429), a body announced past the route's
    /// limit (413).
    pub(super) fn route_refusal(
        &self,
        req: &Request<Incoming>,
        path: &CanonicalPath,
        sel: &Selection,
        client: &Client,
        id: &str,
    ) -> Option<(Response<ProxyBody>, Outcome)> {
        let rs = &self.routes;
        let st = &self.stats;
        if req.method() == Method::OPTIONS
            && let (Some(origin), Some(method)) = (
                header_str(req, "origin"),
                header_str(req, "access-control-request-method"),
            )
            && let Some(cors) = rs.routes.cors(sel)
        {
            let asked = header_str(req, "access-control-request-headers");
            return Some(match cors.preflight(origin, method, asked) {
                Preflight::Allowed(h) => {
                    st.cors_preflights.fetch_add(1, Ordering::Relaxed);
                    let mut r = super::forward::full(StatusCode::NO_CONTENT, "", "text/plain");
                    r.headers_mut().remove(header::CONTENT_TYPE);
                    set_headers(r.headers_mut(), &h);
                    (r, answer(204, "cors_preflight", String::new()))
                }
                Preflight::Refused(why) => {
                    st.cors_refused.fetch_add(1, Ordering::Relaxed);
                    let r = json_error(StatusCode::FORBIDDEN, "CORS preflight refused", id);
                    (r, answer(403, "cors_refused", why))
                }
            });
        }
        if let Some(route) = rs.routes.closed(sel, rs.now()) {
            st.route_closed.fetch_add(1, Ordering::Relaxed);
            let why = format!(
                "route {} ({}) closed: open {}",
                route.index,
                route.cfg.path,
                route.window().map(|w| w.describe()).unwrap_or_default()
            );
            let r = json_error(StatusCode::FORBIDDEN, "closed at this time", id);
            return Some((r, answer(403, "route_closed", why)));
        }
        if let Err(allow) = rs.routes.check_method(sel, req.method().as_str()) {
            st.method_not_allowed.fetch_add(1, Ordering::Relaxed);
            let mut r = json_error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed", id);
            if let Ok(v) = HeaderValue::from_str(&allow.join(", ")) {
                r.headers_mut().insert(header::ALLOW, v);
            }
            let why = format!("method {} not allowed", req.method());
            return Some((r, answer(405, "method_not_allowed", why)));
        }
        let source = self.source(client.addr);
        for &i in &sel.routes {
            if let Some(retry) = rs.limits[i].check(source, path) {
                st.rate_limited.fetch_add(1, Ordering::Relaxed);
                let r = too_many_requests(retry, id);
                let why = format!("route {i} ({}) rate limit", rs.routes.get(i).cfg.path);
                return Some((r, answer(429, "rate_limited", why)));
            }
        }
        if let Some(max) = rs.routes.max_body(sel) {
            let announced =
                header_str(req, "content-length").and_then(|v| v.trim().parse::<u64>().ok());
            if announced.is_some_and(|n| n > max) {
                return Some(self.route_too_large(max, id));
            }
        }
        None
    }

    /// 413 for a body past the route's limit.
    pub(super) fn route_too_large(&self, max: u64, id: &str) -> (Response<ProxyBody>, Outcome) {
        self.stats.body_too_large.fetch_add(1, Ordering::Relaxed);
        let r = json_error(StatusCode::PAYLOAD_TOO_LARGE, "request body too large", id);
        let why = format!("body longer than the route's max_body ({max} bytes)");
        (r, answer(413, "too_large", why))
    }

    /// Sets the CORS headers of a forwarded response (the application's
    /// own `Access-Control-*` headers go when the route has a policy).
    pub(super) fn cors_response(&self, sel: &Selection, origin: Option<&str>, h: &mut HeaderMap) {
        let Some(cors) = self.routes.routes.cors(sel) else {
            return;
        };
        let own: Vec<HeaderName> = h
            .keys()
            .filter(|k| k.as_str().starts_with("access-control-"))
            .cloned()
            .collect();
        for k in own {
            h.remove(k);
        }
        if let Some(o) = origin {
            set_headers(h, &cors.response_headers(o));
        }
    }
}

fn set_headers(h: &mut HeaderMap, list: &[(&'static str, String)]) {
    for (k, v) in list {
        if let Ok(v) = HeaderValue::from_str(v) {
            if *k == "vary" {
                h.append(header::VARY, v);
            } else {
                h.insert(*k, v);
            }
        }
    }
}
