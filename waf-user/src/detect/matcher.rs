//! Rules compiled into one pattern set (`set.rs`) per (target class, view),
//! so each view of a value is scanned once for all the rules that apply to
//! it.

use std::collections::HashMap;
use std::sync::Arc;

use regex::bytes::{Regex, RegexBuilder};

use super::normalize::Normalized;
use super::rules::{Rule, View, targets};
use super::set::PatternMatcher;

/// Compiled-automaton size bound for one set.
const SET_SIZE_LIMIT: usize = 64 << 20;
/// Lazy-DFA cache bound for one set.
const DFA_SIZE_LIMIT: usize = 16 << 20;

/// A set of rules over one view for one target class.
struct Group {
    set: PatternMatcher,
    /// Indexes into `Compiled::rules` of the set's patterns.
    members: Vec<usize>,
}

/// Rule groups of one target class. When a value has no SQL comment and no
/// shell quoting, its `Sql` and `Cmd` views equal `Low`, and one merged set
/// scans it for the rules of all three views.
#[derive(Default)]
struct Row {
    dec: Option<Arc<Group>>,
    low: Option<Arc<Group>>,
    sql: Option<Arc<Group>>,
    cmd: Option<Arc<Group>>,
    low_sql_cmd: Option<Arc<Group>>,
}

/// The active rules, compiled.
pub struct Compiled {
    rules: Vec<Rule>,
    regexes: Vec<Regex>,
    /// Per target bit: every active rule.
    full: Vec<Row>,
    /// Per target bit: rules that can match plain values.
    plain: Vec<Row>,
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
        let mut cache = Cache::new();
        for bit in 0..targets::COUNT {
            let mask = 1u16 << bit;
            full.push(row(&rules, |r| r.targets & mask != 0, &mut cache)?);
            plain.push(row(
                &rules,
                |r| r.targets & mask != 0 && r.plain,
                &mut cache,
            )?);
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
        let mut run = |group: &Option<Arc<Group>>, text: &'a [u8]| {
            let Some(group) = group else { return };
            for i in group.set.matches(text) {
                let idx = group.members[i];
                let matched = self.regexes[idx]
                    .find(text)
                    .map_or(&text[..0], |m| m.as_bytes());
                hit(Hit {
                    rule: &self.rules[idx],
                    matched,
                });
            }
        };
        if needs_case(&n.dec) {
            run(&row.dec, &n.dec);
        }
        if n.has_sql_view() || n.has_cmd_view() {
            run(&row.low, &n.low);
            run(&row.sql, n.sql());
            run(&row.cmd, n.cmd());
        } else {
            run(&row.low_sql_cmd, &n.low);
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

/// Whether the case-sensitive rules can match: they need a non-ASCII byte
/// (`\xbc`, `\xac\xed`), a `+` (`+ADw-`), a `:` (`O:8:"`), or an uppercase
/// letter inside a word (base64 such as `rO0AB`, `cnVudGlt`). Prose, whose
/// capitals start words, skips them.
fn needs_case(dec: &[u8]) -> bool {
    let mut prev_alnum = false;
    for &b in dec {
        if b >= 0x80 || b == b'+' || b == b':' || (prev_alnum && b.is_ascii_uppercase()) {
            return true;
        }
        prev_alnum = b.is_ascii_alphanumeric();
    }
    false
}

/// Compiled sets shared between rows with the same members.
type Cache = HashMap<Vec<usize>, Arc<Group>>;

fn row(rules: &[Rule], keep: impl Fn(&Rule) -> bool, cache: &mut Cache) -> Result<Row, String> {
    let mut build = |views: &[View]| group(rules, |r| views.contains(&r.view) && keep(r), cache);
    Ok(Row {
        dec: build(&[View::Dec])?,
        low: build(&[View::Low])?,
        sql: build(&[View::Sql])?,
        cmd: build(&[View::Cmd])?,
        low_sql_cmd: build(&[View::Low, View::Sql, View::Cmd])?,
    })
}

fn group(
    rules: &[Rule],
    keep: impl Fn(&Rule) -> bool,
    cache: &mut Cache,
) -> Result<Option<Arc<Group>>, String> {
    let members: Vec<usize> = (0..rules.len()).filter(|&i| keep(&rules[i])).collect();
    if members.is_empty() {
        return Ok(None);
    }
    if let Some(g) = cache.get(&members) {
        return Ok(Some(Arc::clone(g)));
    }
    let patterns: Vec<&str> = members.iter().map(|&i| rules[i].pattern.as_str()).collect();
    let set = PatternMatcher::new(&patterns, SET_SIZE_LIMIT, DFA_SIZE_LIMIT)
        .map_err(|e| format!("rule set: {e}"))?;
    let g = Arc::new(Group {
        set,
        members: members.clone(),
    });
    cache.insert(members, Arc::clone(&g));
    Ok(Some(g))
}
