//! The engine: runs operator rules, protocol checks and every signature over
//! every part of a request, and turns the findings into a verdict.
//!
//! `engine/parts.rs` walks the values of a request, `engine/value.rs`
//! normalises one value and runs the checks on it, two of which are
//! `engine/encoding.rs` (how the value was encoded) and
//! `engine/tokenizers.rs` (libinjection).

use std::net::IpAddr;

use super::collect::Collector;
use super::config::DetectConfig;
use super::kind::{Kind, Severity};
use super::leak::Leaks;
use super::matcher::Compiled;
use super::operator::{ExclusionSet, Operator};
use super::rules;
use super::scanner::Scanners;
use super::verdict::{Action, Finding, Risk, Verdict};
use super::{path, protocol};
use crate::http::{CanonicalPath, Limits, ParseError, Request};

mod cache;
mod embedded;
mod encoding;

pub use cache::CleanCacheStats;
#[cfg(test)]
mod lookalikes;
#[cfg(test)]
mod obfuscations;
mod parts;
mod php_pieces;
mod split_command;
mod tokenizers;
mod value;

/// Why an engine could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    /// The configuration is invalid (the message names the key).
    #[error("{0}")]
    Config(String),
    /// A rule did not compile.
    #[error("rule compilation: {0}")]
    Rules(String),
}

/// The detection engine: immutable once built, shared by all threads.
pub struct Engine {
    cfg: DetectConfig,
    compiled: Compiled,
    operator: Operator,
    scanners: Scanners,
    leaks: Leaks,
    clean: cache::CleanCache,
    clean_values: cache::CleanCache,
}

impl Engine {
    /// Validates the configuration and compiles the rules for its paranoia.
    pub fn new(cfg: &DetectConfig) -> Result<Engine, EngineError> {
        cfg.validate().map_err(EngineError::Config)?;
        let compiled = Compiled::new(rules::all(), cfg.paranoia).map_err(EngineError::Rules)?;
        let operator = Operator::new(cfg).map_err(EngineError::Config)?;
        let scanners = Scanners::new(cfg.builtin_bad_user_agents, &cfg.bad_user_agents)
            .map_err(EngineError::Config)?;
        let leaks = Leaks::new().map_err(|e| EngineError::Rules(e.to_string()))?;
        Ok(Engine {
            cfg: cfg.clone(),
            compiled,
            operator,
            scanners,
            leaks,
            clean: cache::CleanCache::default(),
            clean_values: cache::CleanCache::default(),
        })
    }

    /// The configuration the engine was built from.
    pub fn config(&self) -> &DetectConfig {
        &self.cfg
    }

    /// The parser limits of the configuration.
    pub fn limits(&self) -> &Limits {
        &self.cfg.limits
    }

    /// Whether the request's path is exempt from inspection (an exempt
    /// route, on the canonical path). Cheap; false whenever the path carries a
    /// flag that voids exemptions (encoded slash, `..` above the root...).
    pub fn exempt(&self, req: &Request) -> bool {
        self.operator.exempt(&req.canonical)
    }

    /// [`Engine::exempt`] for a path alone, e.g. from
    /// [`CanonicalPath::from_target`] before the body is read.
    pub fn exempt_path(&self, path: &CanonicalPath) -> bool {
        self.operator.exempt(path)
    }

    /// The verdict on a request the parser refused for going over the
    /// header limits (`max_headers`, `max_header_bytes`): a critical
    /// protocol finding, so the mirror counts it as a detection (the proxy
    /// answers 431 itself). None for other parse errors: servers refuse
    /// those requests too.
    pub fn refused(&self, err: &ParseError) -> Option<Verdict> {
        if !matches!(
            err,
            ParseError::TooManyHeaders { .. } | ParseError::HeadersTooLarge { .. }
        ) {
            return None;
        }
        let finding = Finding {
            kind: Kind::Protocol,
            location: "request".into(),
            rule: "protocol-header-limit".into(),
            matched: err.to_string(),
            severity: Severity::Critical,
            value: String::new(),
        };
        Some(self.verdict(Severity::Critical.points(), vec![finding], false))
    }

    /// Inspects a request from `remote` (if known).
    pub fn inspect(&self, req: &Request, remote: Option<IpAddr>) -> Verdict {
        self.inspect_with(req, remote, None)
    }

    /// [`Engine::inspect`] with exclusions added at run time on top of the
    /// config's (`crate::findings`: the proxy passes the set in force).
    pub fn inspect_with(
        &self,
        req: &Request,
        remote: Option<IpAddr>,
        extra: Option<&ExclusionSet>,
    ) -> Verdict {
        let mut v = self.inspect_whole(req, remote, extra.filter(|x| !x.is_empty()));
        v.partial = req.body_truncated;
        v
    }

    fn inspect_whole(
        &self,
        req: &Request,
        remote: Option<IpAddr>,
        extra: Option<&ExclusionSet>,
    ) -> Verdict {
        let decision = self.operator.decide(req, remote);
        if decision.allow.is_some() {
            return Verdict::pass();
        }
        if let Some(id) = decision.deny {
            let finding = Finding {
                kind: Kind::Operator,
                location: "request".into(),
                rule: id,
                matched: String::new(),
                severity: Severity::Critical,
                value: String::new(),
            };
            return self.verdict(self.cfg.threshold.max(5), vec![finding], true);
        }
        if self.operator.exempt(&req.canonical) {
            return Verdict::pass();
        }
        let scope = self.operator.exclusion_scope(&req.canonical);
        let extra_scope = extra.map(|x| (x, x.scope(&req.canonical)));
        let excluded = |kind: Kind, rule: &str, loc: &str| {
            self.operator.excluded(&scope, kind, rule, loc)
                || extra_scope
                    .as_ref()
                    .is_some_and(|(x, s)| x.excluded(s, kind, rule, loc))
        };
        let mut c = Collector::new(self.cfg.paranoia, &excluded);
        for (id, w) in &decision.weights {
            c.weigh(id, i64::from(*w), "request", "");
        }
        path::findings(req, &mut c);
        protocol::anomalies(req, &mut c);
        protocol::headers(req, &self.cfg.allowed_methods, &mut c);
        protocol::session_fixation(req, &mut c);
        protocol::rfi_parameters(req, &mut c);
        self.scan_request(req, &mut c);
        let (score, findings) = c.finish();
        self.verdict(score, findings, false)
    }

    /// Inspects the body of a response to a request for `path` (what the
    /// proxy read of it: at most `proxy.response_inspect_bytes`, codings
    /// undone) for data leaks; the config's exclusions apply, at location
    /// `response.body`. Exempt paths are not inspected.
    pub fn inspect_response(&self, path: &CanonicalPath, body: &[u8]) -> Verdict {
        if self.operator.exempt(path) {
            return Verdict::pass();
        }
        let scope = self.operator.exclusion_scope(path);
        let excluded =
            |kind: Kind, rule: &str, loc: &str| self.operator.excluded(&scope, kind, rule, loc);
        let mut c = Collector::new(self.cfg.paranoia, &excluded);
        for leak in self.leaks.scan(body, self.cfg.paranoia) {
            let r = leak.rule;
            c.add(
                Kind::DataLeak,
                r.id,
                r.severity,
                r.paranoia,
                "response.body",
                &leak.matched,
                &leak.matched,
            );
        }
        let (score, findings) = c.finish();
        self.verdict(score, findings, false)
    }

    /// A request's verdict joined with its response's
    /// ([`Engine::inspect_response`]): the scores add up, the findings
    /// follow one another (`waf inspect` with a `response`).
    pub fn join_response(&self, request: Verdict, response: Verdict) -> Verdict {
        if response.attacks.is_empty() {
            return request;
        }
        let denied = request.action == Action::Block || request.would_block;
        let mut attacks = request.attacks;
        attacks.extend(response.attacks);
        let mut v = self.verdict(request.score + response.score, attacks, denied);
        v.partial = request.partial;
        v
    }

    fn verdict(&self, score: u32, attacks: Vec<Finding>, denied: bool) -> Verdict {
        let t = self.cfg.threshold;
        let block = denied || score >= t;
        let risk = if block {
            Risk::High
        } else if score.saturating_mul(2) >= t && score > 0 {
            Risk::Medium
        } else {
            Risk::Low
        };
        let action = if block && !self.cfg.passive {
            Action::Block
        } else {
            Action::Pass
        };
        Verdict {
            action,
            score,
            risk,
            attacks,
            would_block: block && self.cfg.passive,
            partial: false,
        }
    }
}
