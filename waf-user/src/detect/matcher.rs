//! Rules compiled into one `RegexSet` per (target class, view), so each view
//! of a value is scanned once for all the rules that apply to it.

use regex::bytes::{Regex, RegexBuilder, RegexSet, RegexSetBuilder};

use super::normalize::Normalized;
use super::rules::{Rule, View, targets};

/// Compiled-automaton size bound for one set.
const SET_SIZE_LIMIT: usize = 64 << 20;
/// Lazy-DFA cache bound for one set.
const DFA_SIZE_LIMIT: usize = 16 << 20;

/// A set of rules over one view for one target class.
struct Group {
    set: RegexSet,
    /// Indexes into `Compiled::rules` of the set's patterns.
    members: Vec<usize>,
}

/// The active rules, compiled.
pub struct Compiled {
    rules: Vec<Rule>,
    regexes: Vec<Regex>,
    /// `[target bit][view]`: every active rule.
    full: Vec<[Option<Group>; 4]>,
    /// `[target bit][view]`: rules that can match plain values.
    plain: Vec<[Option<Group>; 4]>,
}

/// A rule that matched, and the text it matched.
pub struct Hit<'a> {
    /// The rule.
    pub rule: &'a Rule,
    /// The matched bytes of the view.
    pub matched: &'a [u8],
}

impl Compiled {
    /// Compiles the rules that run at `paranoia`.
    pub fn new(all: Vec<Rule>, paranoia: u8) -> Result<Compiled, String> {
        let rules: Vec<Rule> = all.into_iter().filter(|r| r.paranoia <= paranoia).collect();
        let regexes = rules
            .iter()
            .map(|r| {
                RegexBuilder::new(&r.pattern)
                    .unicode(false)
                    .size_limit(SET_SIZE_LIMIT)
                    .dfa_size_limit(DFA_SIZE_LIMIT)
                    .build()
                    .map_err(|e| format!("rule {}: {e}", r.id))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut full = Vec::new();
        let mut plain = Vec::new();
        for bit in 0..targets::COUNT {
            let mask = 1u16 << bit;
            full.push(groups(&rules, |r| r.targets & mask != 0)?);
            plain.push(groups(&rules, |r| r.targets & mask != 0 && r.plain)?);
        }
        Ok(Compiled {
            rules,
            regexes,
            full,
            plain,
        })
    }

    /// Runs every rule for target `bit` over the views of `n`, calling `hit`
    /// for each match (once per rule). `plain` restricts to plain rules.
    pub fn scan<'a>(
        &'a self,
        bit: usize,
        n: &'a Normalized,
        plain: bool,
        hit: &mut dyn FnMut(Hit<'a>),
    ) {
        let table = if plain { &self.plain } else { &self.full };
        let Some(row) = table.get(bit) else { return };
        for view in View::ALL {
            let Some(group) = &row[view.index()] else {
                continue;
            };
            let text: &[u8] = match view {
                View::Dec => &n.dec,
                View::Low => &n.low,
                View::Sql => n.sql(),
                View::Cmd => n.cmd(),
            };
            for i in group.set.matches(text).iter() {
                let idx = group.members[i];
                let matched = self.regexes[idx]
                    .find(text)
                    .map_or(&text[..0], |m| m.as_bytes());
                hit(Hit {
                    rule: &self.rules[idx],
                    matched,
                });
            }
        }
    }

    /// Runs one rule by id over a view of `n`.
    pub fn find<'a>(&'a self, id: &str, n: &'a Normalized) -> Option<Hit<'a>> {
        let idx = self.rules.iter().position(|r| r.id == id)?;
        let rule = &self.rules[idx];
        let text: &[u8] = match rule.view {
            View::Dec => &n.dec,
            View::Low => &n.low,
            View::Sql => n.sql(),
            View::Cmd => n.cmd(),
        };
        self.regexes[idx].find(text).map(|m| Hit {
            rule,
            matched: m.as_bytes(),
        })
    }

    /// The active rules.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }
}

fn groups(rules: &[Rule], keep: impl Fn(&Rule) -> bool) -> Result<[Option<Group>; 4], String> {
    let mut out: [Option<Group>; 4] = [None, None, None, None];
    for view in View::ALL {
        let members: Vec<usize> = (0..rules.len())
            .filter(|&i| rules[i].view == view && keep(&rules[i]))
            .collect();
        if members.is_empty() {
            continue;
        }
        let set = RegexSetBuilder::new(members.iter().map(|&i| rules[i].pattern.as_str()))
            .unicode(false)
            .size_limit(SET_SIZE_LIMIT)
            .dfa_size_limit(DFA_SIZE_LIMIT)
            .build()
            .map_err(|e| format!("rule set: {e}"))?;
        out[view.index()] = Some(Group { set, members });
    }
    Ok(out)
}
