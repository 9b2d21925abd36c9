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
use super::matcher::Compiled;
use super::operator::Operator;
use super::protocol;
use super::rules;
use super::scanner::Scanners;
use super::verdict::{Action, Finding, Risk, Verdict};
use crate::http::{Limits, Request};

mod encoding;
mod parts;
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
}

impl Engine {
    /// Validates the configuration and compiles the rules for its paranoia.
    pub fn new(cfg: &DetectConfig) -> Result<Engine, EngineError> {
        cfg.validate().map_err(EngineError::Config)?;
        let compiled = Compiled::new(rules::all(), cfg.paranoia).map_err(EngineError::Rules)?;
        let operator = Operator::new(cfg).map_err(EngineError::Config)?;
        let scanners = Scanners::new(cfg.builtin_bad_user_agents, &cfg.bad_user_agents)
            .map_err(EngineError::Config)?;
        Ok(Engine {
            cfg: cfg.clone(),
            compiled,
            operator,
            scanners,
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

    /// Inspects a request from `remote` (if known).
    pub fn inspect(&self, req: &Request, remote: Option<IpAddr>) -> Verdict {
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
        if self.operator.exempt(&req.path) {
            return Verdict::pass();
        }
        let path = req.path.as_str();
        let excluded =
            |kind: Kind, rule: &str, loc: &str| self.operator.excluded(path, kind, rule, loc);
        let mut c = Collector::new(self.cfg.paranoia, &excluded);
        for (id, w) in &decision.weights {
            c.weigh(id, i64::from(*w), "request", "");
        }
        protocol::anomalies(req, &mut c);
        protocol::headers(req, &self.cfg.allowed_methods, &mut c);
        protocol::session_fixation(req, &mut c);
        protocol::rfi_parameters(req, &mut c);
        self.scan_request(req, &mut c);
        let (score, findings) = c.finish();
        self.verdict(score, findings, false)
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
        }
    }
}
