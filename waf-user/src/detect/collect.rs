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
    /// Tokenizer runs left for this request.
    tokenizer_budget: usize,
    /// Findings and weights offered, kept or not (the clean cache's test).
    offered: usize,
    /// Tokenizer runs the budget refused.
    refused: usize,
    /// Tokenizer runs taken so far.
    takes: u32,
}

/// Where a collector stood: [`Collector::mark`], [`Collector::clean_since`].
#[derive(Clone, Copy)]
pub struct Mark {
    offered: usize,
    refused: usize,
    takes: u32,
}

/// Runs of the libinjection tokenizers per request at most (SQL and HTML
/// together, one a value each). Their cost is mostly per run (about 1.6
/// µs for a short value; a long one costs little more: the SQL
/// tokenizer stops at its fifth token, the HTML one reads at most
/// 1 kB), so a count bounds them; the bytes are bounded by the body
/// limit. A value the tokenizers should read past this count is never
/// let through unread: the request gets [`TOKENIZER_LIMIT_RULE`].
pub const TOKENIZER_BUDGET: usize = 4096;

/// The finding of a request with more values worth a tokenizer than
/// [`TOKENIZER_BUDGET`]: padding a request with values the tokenizers
/// read would otherwise turn them off for the payload after it.
pub const TOKENIZER_LIMIT_RULE: &str = "protocol-too-many-tokenized-values";

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
            offered: 0,
            refused: 0,
            takes: 0,
        }
    }

    /// Where the collector stands now.
    pub fn mark(&self) -> Mark {
        Mark {
            offered: self.offered,
            refused: self.refused,
            takes: self.takes,
        }
    }

    /// The tokenizer runs taken since `m` when nothing was offered and the
    /// budget refused nothing since then: a clean scan, and what it cost.
    pub fn clean_since(&self, m: Mark) -> Option<u32> {
        (self.offered == m.offered && self.refused == m.refused).then(|| self.takes - m.takes)
    }

    /// Takes the budget again as a clean scan took it: the runs that are
    /// left, and a refusal (with its finding) for each other one, as the
    /// scan would have met.
    pub fn replay_takes(&mut self, runs: u32) {
        for i in 0..runs {
            if !self.take_tokenizer_budget() {
                // The finding is added once: the rest are counted.
                self.refused += (runs - i - 1) as usize;
                return;
            }
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
        self.offered += 1;
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
        self.offered += 1;
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

    /// Takes one run of the tokenizer budget; false when it is spent, and
    /// then the request has the finding [`TOKENIZER_LIMIT_RULE`] (once).
    pub fn take_tokenizer_budget(&mut self) -> bool {
        if self.tokenizer_budget == 0 {
            self.refused += 1;
            if self.refused == 1 {
                let max = TOKENIZER_BUDGET.to_string();
                self.add(
                    Kind::Protocol,
                    TOKENIZER_LIMIT_RULE,
                    Severity::Critical,
                    1,
                    "request",
                    &max,
                    "",
                );
            }
            return false;
        }
        self.tokenizer_budget -= 1;
        self.takes += 1;
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn none(_: Kind, _: &str, _: &str) -> bool {
        false
    }

    proptest! {
        /// Replaying a clean scan's takes leaves the budget, the refusals
        /// and their finding, and what the next clean-cache test reads, as
        /// running the scan's tokenizer checks again would, whatever the
        /// budget left before.
        #[test]
        fn replayed_takes_leave_the_budget_as_the_scan_would(
            spent in 0usize..=TOKENIZER_BUDGET,
            runs in 0u32..6,
        ) {
            let mut scan = Collector::new(1, &none);
            let mut replay = Collector::new(1, &none);
            for c in [&mut scan, &mut replay] {
                for _ in 0..spent {
                    assert!(c.take_tokenizer_budget());
                }
            }
            let (m1, m2) = (scan.mark(), replay.mark());
            for _ in 0..runs {
                let _ = scan.take_tokenizer_budget();
            }
            replay.replay_takes(runs);
            prop_assert_eq!(scan.tokenizer_budget, replay.tokenizer_budget);
            prop_assert_eq!(scan.refused, replay.refused);
            prop_assert_eq!(scan.clean_since(m1), replay.clean_since(m2));
            let fits = spent + runs as usize <= TOKENIZER_BUDGET;
            prop_assert_eq!(scan.clean_since(m1).is_some(), fits);
            let (s1, f1) = scan.finish();
            let (s2, f2) = replay.finish();
            prop_assert_eq!(s1, s2);
            prop_assert_eq!(f1.len(), usize::from(!fits));
            prop_assert_eq!(f1, f2);
        }
    }

    #[test]
    fn any_finding_offered_makes_a_scan_unclean_kept_or_not() {
        let excluded = |_: Kind, _: &str, _: &str| true;
        let mut c = Collector::new(1, &excluded);
        let m = c.mark();
        assert_eq!(c.clean_since(m), Some(0));
        c.add(Kind::Sqli, "r", Severity::Critical, 1, "q", "x", "x");
        assert!(c.findings.is_empty());
        assert_eq!(c.clean_since(m), None);
        let mut c = Collector::new(1, &none);
        let m = c.mark();
        c.add(Kind::Sqli, "r", Severity::Critical, 4, "q", "x", "x");
        assert_eq!(c.clean_since(m), None, "a rule above the paranoia level");
    }
}
