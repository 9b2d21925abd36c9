//! The JavaScript challenge in the proxy (`crate::challenge` does the
//! cryptography, the page and the bot score): the verification endpoint,
//! where a solved challenge becomes a pass cookie, and the gate, which lets
//! a valid pass through, serves the challenge to whom the route and
//! `[challenge] mode` say, and refuses high bot scores on `block` routes.
//! Every forged, expired, replayed or moved token or solution is a strike
//! (`StrikeKind::Bot`), so a bot that fails here is dropped at XDP after
//! the ban policy's count.

use std::{
    sync::{Arc, atomic::Ordering},
    time::{Instant, SystemTime},
};

use hyper::{
    Request, Response, StatusCode, Version,
    body::Incoming,
    header::{self, HeaderValue},
};

use super::{
    Proxy, ProxyBody,
    client::Client,
    decide::outcome,
    forward::{header_str, json_error},
    log::Outcome,
};
use crate::{
    challenge::{
        self, ChallengeConfig, ChallengeMode, Challenger, Failure, Signals, TokenCheck, VERIFY_PATH,
    },
    firewall::StrikeKind,
    http::CanonicalPath,
    routes::{RouteChallenge, Selection},
};

/// The bot score and the challenge as the proxy runs them.
pub struct ChallengeState {
    /// Issues and checks challenges and passes (None: no challenge is
    /// served; `block` routes still refuse bots).
    pub challenger: Option<Arc<Challenger>>,
    /// `[challenge]`.
    pub cfg: ChallengeConfig,
    /// Verifies crawlers named in user agents (`verify_crawlers`).
    pub crawlers: Option<Arc<super::crawler::CrawlerVerifier>>,
}

/// Every `Cookie` header of the request, joined as one.
fn cookies(req: &Request<Incoming>) -> Option<String> {
    let all: Vec<&str> = req
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    (!all.is_empty()).then(|| all.join("; "))
}

/// The request's bot score signals; `crawler_verified`: the crawler its
/// user agent names was verified by forward-confirmed reverse DNS.
fn signals(req: &Request<Incoming>, crawler_verified: bool) -> Signals<'_> {
    Signals {
        user_agent: header_str(req, header::USER_AGENT),
        accept: header_str(req, header::ACCEPT),
        accept_language: header_str(req, header::ACCEPT_LANGUAGE),
        accept_encoding: header_str(req, header::ACCEPT_ENCODING),
        http10: req.version() <= Version::HTTP_10,
        crawler_verified,
    }
}

impl Proxy {
    /// The challenger, when challenges are served.
    fn challenger(&self) -> Option<&Challenger> {
        self.challenge.as_ref()?.challenger.as_deref()
    }

    /// Whether this is a request to the verification endpoint (every
    /// reading of the path is it).
    pub(super) fn is_verify(&self, path: &CanonicalPath) -> bool {
        self.challenger().is_some() && path.readings().all(|r| r == VERIFY_PATH)
    }

    /// The verification endpoint: a solution POSTed by the page becomes a
    /// pass cookie and a redirect to where the visitor was going; a bad
    /// one is a strike.
    pub(super) async fn verify_solution(
        &self,
        req: Request<Incoming>,
        client: &Client,
        id: &str,
    ) -> (Response<ProxyBody>, Outcome) {
        let Some(challenger) = self.challenger() else {
            let r = json_error(StatusCode::NOT_FOUND, "not found", id);
            return (r, outcome(404, "error", String::new(), 0));
        };
        if req.method() != hyper::Method::POST {
            let mut r = json_error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed", id);
            r.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("POST"));
            return (r, outcome(405, "method_not_allowed", String::new(), 0));
        }
        let ua = header_str(&req, header::USER_AGENT)
            .unwrap_or("")
            .to_string();
        let body = http_body_util::Limited::new(req.into_body(), challenge::page::MAX_FORM);
        let form = match http_body_util::BodyExt::collect(body).await {
            Ok(b) => challenge::page::parse_form(&b.to_bytes()),
            Err(_) => None,
        };
        let now = SystemTime::now();
        let result = match &form {
            Some((c, n, _)) => challenger.verify(c, n, client.addr, &ua, now),
            None => Err(Failure::Malformed),
        };
        match result {
            Ok(pass) => {
                self.stats.challenge_passed.fetch_add(1, Ordering::Relaxed);
                let to = form
                    .as_ref()
                    .map_or("/", |(_, _, r)| challenge::page::safe_return_to(r));
                let mut r = super::forward::full(StatusCode::SEE_OTHER, "", "text/plain");
                let h = r.headers_mut();
                if let Ok(v) = HeaderValue::from_str(to) {
                    h.insert(header::LOCATION, v);
                }
                if let Ok(v) = HeaderValue::from_str(&pass.set_cookie) {
                    h.insert(header::SET_COOKIE, v);
                }
                h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                (r, outcome(303, "challenge_passed", String::new(), 0))
            }
            Err(Failure::Busy) => {
                let r = json_error(StatusCode::SERVICE_UNAVAILABLE, "try again later", id);
                (
                    r,
                    outcome(503, "challenge_busy", "replay set full".into(), 0),
                )
            }
            Err(f) => {
                self.stats.challenge_failed.fetch_add(1, Ordering::Relaxed);
                let reason = format!("challenge solution {}", f.as_str());
                self.strike(client.addr, StrikeKind::Bot, 0, &reason, Instant::now());
                let r = json_error(StatusCode::FORBIDDEN, "challenge failed", id);
                (r, outcome(403, "challenge_failed", reason, 0))
            }
        }
    }

    /// Whether the crawler the request's user agent names (if any) is
    /// verified: reverse DNS into the crawler's domains, confirmed forward.
    async fn crawler_verified(&self, req: &Request<Incoming>, client: &Client) -> bool {
        let Some(v) = self.challenge.as_ref().and_then(|c| c.crawlers.as_ref()) else {
            return false;
        };
        let Some(name) = header_str(req, header::USER_AGENT).and_then(challenge::crawler_name)
        else {
            return false;
        };
        let ok = v.verify(client.addr, name).await;
        let counter = if ok {
            &self.stats.crawlers_verified
        } else {
            &self.stats.crawlers_unverified
        };
        counter.fetch_add(1, Ordering::Relaxed);
        ok
    }

    /// The gate: `None` lets the request on; else the answer (the
    /// challenge page, or a refusal). A verified crawler is let on (except
    /// on a `block` route, where it scores as what it is: 0).
    pub(super) async fn challenge_gate(
        &self,
        req: &Request<Incoming>,
        target: &str,
        sel: &Selection,
        client: &Client,
        id: &str,
    ) -> Option<(Response<ProxyBody>, Outcome)> {
        let rc = self.routes.routes.challenge(sel);
        if rc == RouteChallenge::Skip
            || (self.challenger().is_none() && rc != RouteChallenge::Block)
        {
            return None;
        }
        let threshold = self
            .challenge
            .as_ref()
            .map_or(challenge::config::DEFAULT_THRESHOLD, |c| c.cfg.threshold);
        let verified = self.crawler_verified(req, client).await;
        let score = challenge::bot_score(&signals(req, verified));
        if rc == RouteChallenge::Block && score.score >= threshold {
            self.stats.bot_blocked.fetch_add(1, Ordering::Relaxed);
            let reason = format!("bot score {} ({})", score.score, score.reasons.join(", "));
            self.strike(client.addr, StrikeKind::Bot, 0, &reason, Instant::now());
            let r = json_error(StatusCode::FORBIDDEN, "blocked by waf", id);
            return Some((r, outcome(403, "bot_blocked", reason, score.score)));
        }
        let (cs, challenger) = (self.challenge.as_ref()?, self.challenger()?);
        if verified {
            return None;
        }
        let ua = header_str(req, header::USER_AGENT).unwrap_or("");
        let now = SystemTime::now();
        match challenger.check(cookies(req).as_deref(), client.addr, ua, now) {
            TokenCheck::Valid => return None,
            TokenCheck::Missing => {}
            bad => {
                self.stats.token_refused.fetch_add(1, Ordering::Relaxed);
                let reason = format!("challenge token {}", bad.as_str());
                self.strike(client.addr, StrikeKind::Bot, 0, &reason, Instant::now());
            }
        }
        let serve = match rc {
            RouteChallenge::Challenge => true,
            RouteChallenge::Protect => match cs.cfg.mode {
                ChallengeMode::All => true,
                ChallengeMode::Auto => score.score >= threshold,
                ChallengeMode::Off => false,
            },
            RouteChallenge::Block | RouteChallenge::Skip => false,
        };
        if !serve {
            return None;
        }
        self.stats.challenged.fetch_add(1, Ordering::Relaxed);
        let reason = format!("bot score {} ({})", score.score, score.reasons.join(", "));
        if !matches!(*req.method(), hyper::Method::GET | hyper::Method::HEAD) {
            let r = json_error(
                StatusCode::FORBIDDEN,
                "challenge required: load a page of this site in a browser first",
                id,
            );
            return Some((r, outcome(403, "challenged", reason, score.score)));
        }
        let issued = challenger.issue(client.addr, ua, target, now);
        let mut r = super::forward::full(
            StatusCode::FORBIDDEN,
            issued.html,
            "text/html; charset=utf-8",
        );
        let h = r.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&issued.csp) {
            h.insert(header::CONTENT_SECURITY_POLICY, v);
        }
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Ok(v) = HeaderValue::from_str(id) {
            h.insert("x-request-id", v);
        }
        Some((r, outcome(403, "challenged", reason, score.score)))
    }
}
