//! What the engine says about a request.

use serde::Serialize;

use super::kind::{Kind, Severity};

/// Block or pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Let the request through.
    Pass,
    /// Reject the request.
    Block,
}

/// A coarse risk level: `high` at or over the threshold, `medium` at half
/// of it or more, `low` below.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Risk {
    /// Below half the threshold.
    Low,
    /// Half the threshold or more.
    Medium,
    /// The threshold or more.
    High,
}

/// One reason for the score: which rule matched what, where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The attack family.
    pub kind: Kind,
    /// Where: `path`, `query:id`, `json:$.user.name`, `header:user-agent`...
    pub location: String,
    /// Stable rule id, usable in exclusions.
    pub rule: String,
    /// The matched text (normalized), truncated.
    pub matched: String,
    /// The severity of the rule.
    pub severity: Severity,
    /// The value as received (before normalization), truncated.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub value: String,
}

/// The verdict on one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// Block or pass (always pass in passive mode).
    pub action: Action,
    /// The anomaly score.
    pub score: u32,
    /// The risk level.
    pub risk: Risk,
    /// The findings, most severe first.
    pub attacks: Vec<Finding>,
    /// In passive mode: whether the request would have been blocked.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub would_block: bool,
    /// Part of the body was not inspected (longer than `max_body`, or not
    /// all read): the verdict covers what was.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub partial: bool,
}

impl Verdict {
    /// A clean pass.
    pub fn pass() -> Verdict {
        Verdict {
            action: Action::Pass,
            score: 0,
            risk: Risk::Low,
            attacks: Vec::new(),
            would_block: false,
            partial: false,
        }
    }
}

/// Truncates to at most `max` characters, marking the cut with `…`.
pub fn truncate(s: &str, max: usize) -> String {
    let mut out: String = s
        .chars()
        .take(max)
        .map(|c| if c.is_control() && c != ' ' { ' ' } else { c })
        .collect();
    if s.chars().nth(max).is_some() {
        out.push('…');
    }
    out
}
