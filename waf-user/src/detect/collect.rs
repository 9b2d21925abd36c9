//! Collects findings for one request: drops excluded ones and duplicates,
//! and adds up the anomaly score (each rule counts once).

use std::collections::HashMap;

use super::kind::{Kind, Severity};
use super::verdict::{Finding, truncate};

/// Most findings reported per request (all of them count in the score).
const MAX_FINDINGS: usize = 32;
/// Longest snippet reported.
const SNIPPET: usize = 100;

/// Decides whether a finding (kind, rule id, location) is excluded.
pub type ExcludeFn<'a> = dyn Fn(Kind, &str, &str) -> bool + 'a;

/// Findings of one request.
pub struct Collector<'a> {
    paranoia: u8,
    excluded: &'a ExcludeFn<'a>,
    findings: Vec<Finding>,
    /// Highest severity per rule id.
    rules: HashMap<String, Severity>,
    /// Extra weight from operator rules and keywords.
    weight: i64,
    /// Bytes the tokenizers may still read for this request.
    tokenizer_budget: usize,
}

/// Bytes handed to the libinjection tokenizers per request at most: they
/// cost far more per byte than the regex sets, which still read everything.
pub const TOKENIZER_BUDGET: usize = 64 * 1024;

impl<'a> Collector<'a> {
    /// A collector at a paranoia level with an exclusion test.
    pub fn new(paranoia: u8, excluded: &'a ExcludeFn<'a>) -> Collector<'a> {
        Collector {
            paranoia,
            excluded,
            findings: Vec::new(),
            rules: HashMap::new(),
            weight: 0,
            tokenizer_budget: TOKENIZER_BUDGET,
        }
    }

    /// Adds a finding unless its rule runs at a higher paranoia level, it is
    /// excluded, or the same rule already matched at the same location.
    #[allow(clippy::too_many_arguments)]
    pub fn add(
        &mut self,
        kind: Kind,
        rule: &str,
        severity: Severity,
        paranoia: u8,
        location: &str,
        matched: &str,
        value: &str,
    ) {
        if paranoia > self.paranoia || (self.excluded)(kind, rule, location) {
            return;
        }
        let severity = match super::ladder::critical_from(rule) {
            Some(level) if self.paranoia >= level => Severity::Critical,
            _ => severity,
        };
        if self
            .findings
            .iter()
            .any(|f| f.rule == rule && f.location == location)
        {
            return;
        }
        let e = self.rules.entry(rule.to_owned()).or_insert(severity);
        *e = (*e).max(severity);
        if self.findings.len() < MAX_FINDINGS {
            let value = if value == matched {
                String::new()
            } else {
                truncate(value, SNIPPET)
            };
            self.findings.push(Finding {
                kind,
                location: location.to_owned(),
                rule: rule.to_owned(),
                matched: truncate(matched, SNIPPET),
                severity,
                value,
            });
        }
    }

    /// Adds an operator weight (with a finding explaining it).
    pub fn weigh(&mut self, rule: &str, weight: i64, location: &str, matched: &str) {
        if (self.excluded)(Kind::Operator, rule, location) {
            return;
        }
        self.weight += weight;
        if self.findings.len() < MAX_FINDINGS {
            self.findings.push(Finding {
                kind: Kind::Operator,
                location: location.to_owned(),
                rule: rule.to_owned(),
                matched: truncate(matched, SNIPPET),
                severity: if weight >= 5 {
                    Severity::Critical
                } else {
                    Severity::Notice
                },
                value: String::new(),
            });
        }
    }

    /// Whether `n` bytes of the tokenizer budget are left.
    pub fn has_tokenizer_budget(&self, n: usize) -> bool {
        n <= self.tokenizer_budget
    }

    /// Takes `n` bytes of the tokenizer budget; false when it is spent.
    pub fn take_tokenizer_budget(&mut self, n: usize) -> bool {
        if n > self.tokenizer_budget {
            return false;
        }
        self.tokenizer_budget -= n;
        true
    }

    /// Whether any finding of this kind was kept.
    pub fn has_kind(&self, kind: Kind) -> bool {
        self.findings.iter().any(|f| f.kind == kind)
    }

    /// The score and the findings, most severe first.
    pub fn finish(mut self) -> (u32, Vec<Finding>) {
        let points: i64 = self
            .rules
            .values()
            .map(|s| i64::from(s.points()))
            .sum::<i64>()
            + self.weight;
        self.findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
        (
            u32::try_from(points.max(0)).unwrap_or(u32::MAX),
            self.findings,
        )
    }
}

/// A field name fit for a location string: at most 64 characters, control
/// characters shown as `?`.
pub fn short(name: &str) -> String {
    name.chars()
        .take(64)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}
