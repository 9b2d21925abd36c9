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

/// Truncates to at most `max` characters, marking the cut with `…`;
/// control characters (C0, DEL, C1) become spaces.
pub fn truncate(s: &str, max: usize) -> String {
    // At most `max` characters when the bytes are no more; otherwise the
    // byte where character `max` starts, if there is one.
    let cut = if s.len() <= max {
        None
    } else {
        s.char_indices().nth(max).map(|(i, _)| i)
    };
    let head = &s[..cut.unwrap_or(s.len())];
    let mut out = String::with_capacity(head.len() + if cut.is_some() { 3 } else { 0 });
    // C1 controls are U+0080..U+009F, encoded 0xC2 0x80..0x9F.
    if head.bytes().any(|b| b < 0x20 || b == 0x7f || b == 0xc2) {
        out.extend(head.chars().map(|c| if c.is_control() { ' ' } else { c }));
    } else {
        out.push_str(head);
    }
    if cut.is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::truncate;
    use proptest::prelude::*;

    /// The definition, a character at a time.
    fn reference(s: &str, max: usize) -> String {
        let mut out: String = s
            .chars()
            .take(max)
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        if s.chars().nth(max).is_some() {
            out.push('…');
        }
        out
    }

    #[test]
    fn cuts_at_characters_and_blanks_controls() {
        assert_eq!(truncate("abc", 3), "abc");
        assert_eq!(truncate("abcd", 3), "abc…");
        assert_eq!(truncate("ééé", 3), "ééé");
        assert_eq!(truncate("éééé", 3), "ééé…");
        assert_eq!(truncate("a\r\nb\u{7f}\u{85}c", 10), "a  b  c");
        assert_eq!(truncate("\u{a0}Â", 5), "\u{a0}Â");
    }

    proptest! {
        #[test]
        fn matches_the_definition(s in "(?s).{0,40}|[a-z\\x00-\\x1f\\x7f\\u{80}-\\u{a0}é]{0,40}", max in 0usize..45) {
            prop_assert_eq!(truncate(&s, max), reference(&s, max));
        }
    }
}
