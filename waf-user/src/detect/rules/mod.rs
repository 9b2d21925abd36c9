//! The built-in signature rules, one module per attack family. Each rule is a
//! regular expression (the `regex` crate: linear time, no backtracking) over
//! one normalized [`View`] of a value, for some [`targets`] only, with a
//! severity and the lowest paranoia level at which it runs.

pub(super) mod cmdi;
pub(super) mod code;
mod java;
mod lfi;
mod misc;
mod sqli;
#[cfg(test)]
pub(crate) use sqli::quoted_prose;
mod xss;

use super::kind::{Kind, Severity};

/// Which normalized form of a value a rule reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// Decoded, case kept.
    Dec,
    /// Decoded, lowercased, whitespace folded.
    Low,
    /// `Low` without SQL comments.
    Sql,
    /// `Low` without shell quoting tricks.
    Cmd,
}

impl View {
    /// All views, in matching order.
    pub const ALL: [View; 4] = [View::Dec, View::Low, View::Sql, View::Cmd];

    /// Index into per-view tables.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// Where a value comes from, as bit flags a rule selects.
pub mod targets {
    /// Values of query, form, JSON, XML and multipart fields, and cookies.
    pub const ARGS: u16 = 1;
    /// Names of those fields, JSON keys, cookie names.
    pub const NAMES: u16 = 2;
    /// The request path.
    pub const PATH: u16 = 4;
    /// The User-Agent and Referer headers.
    pub const UA_REF: u16 = 8;
    /// Other header values.
    pub const HEADERS: u16 = 16;
    /// A body inspected as one text (not parsed into fields).
    pub const BODY: u16 = 32;
    /// Upload file names.
    pub const FILENAME: u16 = 64;
    /// Uploaded file contents and binary bodies (only a few rules look there).
    pub const FILE: u16 = 128;
    /// String values of JSON and XML bodies.
    pub const DOC: u16 = 256;
    /// Every place a client puts free text.
    pub const INPUT: u16 = ARGS | NAMES | UA_REF | BODY | DOC;
    /// Everywhere.
    pub const ALL: u16 = INPUT | PATH | HEADERS | FILENAME;
    /// Number of target classes.
    pub const COUNT: usize = 9;
}

/// One signature rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Stable identifier, used in findings and exclusions.
    pub id: &'static str,
    /// The attack family.
    pub kind: Kind,
    /// Points it adds.
    pub severity: Severity,
    /// Lowest paranoia level (1-4) at which it runs.
    pub paranoia: u8,
    /// The view it reads.
    pub view: View,
    /// Bit set of [`targets`].
    pub targets: u16,
    /// Whether it can match a value of only `[A-Za-z0-9_.-]` (such values
    /// skip every other rule).
    pub plain: bool,
    /// The paranoia level from which a match counts as critical (blocks
    /// alone), if any: one pattern, a weak signal at low levels.
    pub critical_from: Option<u8>,
    /// The regular expression (bytes, ASCII, written for the view).
    pub pattern: String,
    /// A test of the whole view a match is dropped on: the shapes of
    /// prose no regex without look-ahead can tell from the attack.
    pub unless: Option<fn(&[u8]) -> bool>,
}

/// Shorthand to declare a rule.
fn rule(
    id: &'static str,
    kind: Kind,
    severity: Severity,
    paranoia: u8,
    view: View,
    targets: u16,
    pattern: impl Into<String>,
) -> Rule {
    Rule {
        id,
        kind,
        severity,
        paranoia,
        view,
        targets,
        plain: false,
        critical_from: None,
        pattern: pattern.into(),
        unless: None,
    }
}

impl Rule {
    /// Marks the rule as able to match plain values.
    fn plain(mut self) -> Rule {
        self.plain = true;
        self
    }

    /// Drops a match when `test` holds for the whole view.
    fn unless(mut self, test: fn(&[u8]) -> bool) -> Rule {
        self.unless = Some(test);
        self
    }

    /// Whether a match of the rule on `text` stands.
    pub fn stands(&self, text: &[u8]) -> bool {
        self.unless.is_none_or(|t| !t(text))
    }

    /// Makes a match count as critical from paranoia `level` on.
    fn critical_from(mut self, level: u8) -> Rule {
        self.critical_from = Some(level);
        self
    }

    /// The severity a match counts at, at paranoia `paranoia`.
    pub fn severity_at(&self, paranoia: u8) -> Severity {
        match self.critical_from {
            Some(level) if paranoia >= level => Severity::Critical,
            _ => self.severity,
        }
    }
}

/// Joins words into a regex alternation, escaping each.
fn alt(words: &[&str]) -> String {
    words
        .iter()
        .map(|w| regex::escape(w))
        .collect::<Vec<_>>()
        .join("|")
}

/// Every built-in rule.
pub fn all() -> Vec<Rule> {
    let mut v = Vec::new();
    v.extend(sqli::rules());
    v.extend(xss::rules());
    v.extend(cmdi::rules());
    v.extend(lfi::rules());
    v.extend(code::rules());
    v.extend(java::rules());
    v.extend(misc::rules());
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The upper bounds of `{n,m}` and `{n}` in a pattern.
    fn counted_repetitions(p: &str) -> Vec<u32> {
        let re = regex::Regex::new(r"\{(\d*),?(\d*)\}").unwrap();
        re.captures_iter(p)
            .filter_map(|c| {
                let hi = c.get(2).map_or("", |m| m.as_str());
                let lo = c.get(1).map_or("", |m| m.as_str());
                if hi.is_empty() { lo } else { hi }.parse().ok()
            })
            .collect()
    }

    #[test]
    fn alone_signals_block_only_from_paranoia_3() {
        let rules = all();
        let r = rules
            .iter()
            .find(|r| r.id == "sqli-fragment-alone")
            .unwrap();
        assert_eq!(r.severity_at(1), Severity::Notice);
        assert_eq!(r.severity_at(2), Severity::Notice);
        assert_eq!(r.severity_at(3), Severity::Critical);
        assert_eq!(r.severity_at(4), Severity::Critical);
    }

    #[test]
    fn ids_are_unique_and_patterns_compile() {
        let rules = all();
        let mut ids: Vec<_> = rules.iter().map(|r| r.id).collect();
        ids.sort_unstable();
        let n = ids.len();
        ids.dedup();
        assert_eq!(ids.len(), n, "duplicate rule ids");
        for r in &rules {
            assert!(
                regex::bytes::RegexBuilder::new(&r.pattern)
                    .unicode(false)
                    .build()
                    .is_ok(),
                "{}: {}",
                r.id,
                r.pattern
            );
            assert!((1..=4).contains(&r.paranoia), "{}", r.id);
            // A counted repetition is unrolled into that many NFA states,
            // which the lazy DFA multiplies with every other rule of the
            // set (`[^\n:]{0,200}` once made the whole engine 1.8x slower).
            for cap in counted_repetitions(&r.pattern) {
                assert!(cap <= 100, "{}: counted repetition {{..{cap}}}", r.id);
            }
            assert!(
                !r.pattern.bytes().any(|b| b < 0x20),
                "{}: control byte in pattern (a `\\b` lost to an escape?)",
                r.id
            );
        }
    }
}
