//! Rules compiled for matching. Each rule is split into units (the
//! branches of its top-level alternation); a literal screen
//! (`prefilter.rs`) over all of them picks the units whose literal factors
//! all occur in a view, each of which then runs as its own regex; the few
//! units without factors run as one pattern set (`set.rs`) per (target
//! class, view).

use std::collections::HashMap;
use std::sync::Arc;

use regex::bytes::{Regex, RegexBuilder};

use super::normalize::Normalized;
use super::prefilter;
use super::rules::{Rule, View, targets};
use super::screen::{ByteFactor, Screen, Unit, screen};
use super::set::PatternMatcher;

/// Compiled-automaton size bound for one set or rule.
const SET_SIZE_LIMIT: usize = 64 << 20;
/// Lazy-DFA cache bound for one set or rule.
const DFA_SIZE_LIMIT: usize = 16 << 20;
/// Most units active at once (the size of the candidate bit sets).
const MAX_UNITS: usize = 4096;

/// A set of unit indexes.
#[derive(Clone, PartialEq, Eq)]
struct Bits(Box<[u64; MAX_UNITS / 64]>);

impl Bits {
    fn new() -> Bits {
        Bits(Box::new([0; MAX_UNITS / 64]))
    }

    fn set(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }

    fn get(&self, i: usize) -> bool {
        self.0[i / 64] & (1 << (i % 64)) != 0
    }
}

/// The units of one view for one target class.
struct Group {
    /// Units with factors: run when the screen selects them.
    screened: Bits,
    /// Whether `screened` has any.
    any_screened: bool,
    /// Units without: one set over all of them, and their indexes.
    rest: Option<(PatternMatcher, Vec<usize>)>,
}

/// Rule groups of one target class. When a value has no SQL comment and no
/// shell quoting, its `Sql` and `Cmd` views equal `Low`, and one merged
/// group scans it for the rules of all three views.
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
    units: Vec<Unit>,
    /// The screen of the case-sensitive (`Dec`) rules' units, and of the
    /// others: each view is searched for its own rules' literals only.
    screen_dec: Screen,
    screen_low: Screen,
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

fn compile(pattern: &str) -> Result<Regex, regex::Error> {
    RegexBuilder::new(pattern)
        .unicode(false)
        .size_limit(SET_SIZE_LIMIT)
        .dfa_size_limit(DFA_SIZE_LIMIT)
        .build()
}

impl Compiled {
    /// Compiles the rules that run at `paranoia`. The regexes, the two
    /// screens and the groups' sets are independent: they compile on every
    /// core ([`par_map`]).
    pub fn new(all: Vec<Rule>, paranoia: u8) -> Result<Compiled, String> {
        let rules: Vec<Rule> = all.into_iter().filter(|r| r.paranoia <= paranoia).collect();
        // Per rule: its regex, and its units with their own regexes.
        type Compiled1 = (Regex, Vec<(Option<Regex>, prefilter::Unit)>);
        let per_rule = par_map(&rules, |r| -> Result<Compiled1, String> {
            let at = |e: &dyn std::fmt::Display| format!("rule {}: {e}", r.id);
            let regex = compile(&r.pattern).map_err(|e| at(&e))?;
            let units = prefilter::units(&r.pattern)
                .map_err(|e| at(&e))?
                .into_iter()
                .map(|u| match &u.pattern {
                    Some(p) => Ok((Some(compile(p).map_err(|e| at(&e))?), u)),
                    None => Ok((None, u)),
                })
                .collect::<Result<_, String>>()?;
            Ok((regex, units))
        });
        let mut regexes = Vec::with_capacity(rules.len());
        let mut units = Vec::new();
        let mut factors = Vec::new();
        for (i, compiled) in per_rule.into_iter().enumerate() {
            let (regex, rule_units) = compiled?;
            regexes.push(regex);
            for (regex, u) in rule_units {
                let (bytes, multi): (Vec<_>, Vec<_>) = u
                    .factors
                    .into_iter()
                    .partition(|f| prefilter::is_byte_factor(f));
                units.push(Unit {
                    rule: i,
                    regex,
                    multi: multi.len(),
                    masks: bytes.iter().map(|f| ByteFactor::new(f)).collect(),
                });
                factors.push((multi, bytes));
            }
        }
        if units.len() > MAX_UNITS {
            return Err(format!("{} rule units, at most {MAX_UNITS}", units.len()));
        }
        let dec = |u: usize| rules[units[u].rule].view == View::Dec;
        let mut screens = par_map(&[true, false], |&d| screen(&factors, |u| dec(u) == d));
        let screen_low = screens.pop().ok_or("no screen")??;
        let screen_dec = screens.pop().ok_or("no screen")??;
        let build = Build {
            rules: &rules,
            units: &units,
        };
        // Each row names its groups by their members; the distinct ones
        // are built once each, on every core, and shared.
        let (full_plans, plain_plans): (Vec<_>, Vec<_>) = (0..targets::COUNT)
            .map(|bit| {
                let mask = 1u16 << bit;
                (
                    build.plan(|r| r.targets & mask != 0, true),
                    // Plain values are short and meet few rules: one set
                    // over them costs less than a screen, even one over the
                    // plain rules' literals only (measured: the automaton's
                    // start on a short value costs more than the set's
                    // whole walk).
                    build.plan(|r| r.targets & mask != 0 && r.plain, false),
                )
            })
            .unzip();
        let mut keys: Vec<&Key> = full_plans
            .iter()
            .chain(&plain_plans)
            .flatten()
            .flatten()
            .collect();
        keys.sort_unstable();
        keys.dedup();
        let groups = par_map(&keys, |k| build.group(k));
        let mut cache: HashMap<&Key, Arc<Group>> = HashMap::new();
        for (k, g) in keys.iter().zip(groups) {
            cache.insert(k, Arc::new(g?));
        }
        let get = |k: &Option<Key>| k.as_ref().and_then(|k| cache.get(k)).map(Arc::clone);
        let row = |p: &[Option<Key>; 5]| Row {
            dec: get(&p[0]),
            low: get(&p[1]),
            sql: get(&p[2]),
            cmd: get(&p[3]),
            low_sql_cmd: get(&p[4]),
        };
        let full = full_plans.iter().map(row).collect();
        let plain = plain_plans.iter().map(row).collect();
        Ok(Compiled {
            rules,
            regexes,
            units,
            screen_dec,
            screen_low,
            full,
            plain,
        })
    }

    /// Runs every rule for target `bit` over the views of `n`, calling `hit`
    /// for each match (once per rule, in rule order). `plain` restricts to
    /// plain rules.
    pub fn scan<'a>(
        &'a self,
        bit: usize,
        n: &'a Normalized,
        plain: bool,
        hit: &mut dyn FnMut(Hit<'a>),
    ) {
        let table = if plain { &self.plain } else { &self.full };
        let Some(row) = table.get(bit) else { return };
        // One walk of a screen over `text` for the rules of every group
        // that reads it (a view equal to `low` is not walked again).
        let mut run = |groups: &[&Option<Arc<Group>>], text: &'a [u8], screen: &Screen| {
            let mut rules: Vec<usize> = Vec::new();
            if groups
                .iter()
                .any(|g| g.as_ref().is_some_and(|g| g.any_screened))
            {
                screen.candidates(&self.units, text, |u| {
                    if !groups
                        .iter()
                        .any(|g| g.as_ref().is_some_and(|g| g.screened.get(u)))
                    {
                        return;
                    }
                    let unit = &self.units[u];
                    if rules.contains(&unit.rule) {
                        return;
                    }
                    let re = unit.regex.as_ref().unwrap_or(&self.regexes[unit.rule]);
                    if re.is_match(text) {
                        rules.push(unit.rule);
                    }
                });
            }
            for group in groups.iter().copied().flatten() {
                if let Some((set, members)) = &group.rest {
                    set.for_each_match(text, &mut |i| rules.push(self.units[members[i]].rule));
                }
            }
            rules.sort_unstable();
            rules.dedup();
            for idx in rules {
                if !self.rules[idx].stands(text) {
                    continue;
                }
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
            run(&[&row.dec], &n.dec, &self.screen_dec);
        }
        match (n.has_sql_view(), n.has_cmd_view()) {
            (true, true) => {
                run(&[&row.low], &n.low, &self.screen_low);
                run(&[&row.sql], n.sql(), &self.screen_low);
                run(&[&row.cmd], n.cmd(), &self.screen_low);
            }
            (true, false) => {
                run(&[&row.low, &row.cmd], &n.low, &self.screen_low);
                run(&[&row.sql], n.sql(), &self.screen_low);
            }
            (false, true) => {
                run(&[&row.low, &row.sql], &n.low, &self.screen_low);
                run(&[&row.cmd], n.cmd(), &self.screen_low);
            }
            (false, false) => run(&[&row.low_sql_cmd], &n.low, &self.screen_low),
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
        if !rule.stands(text) {
            return None;
        }
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

/// Whether the case-sensitive rules can match: they need `O:`, `C:` or
/// `a:` before a digit or `+` (`O:8:"`), `+A` (`+ADw-`), a line feed (a
/// pickle's `cos\nsystem\n`), `0001000000` (BinaryFormatter in hex),
/// `\xc2\xbc`, `\xc2\xbe` or `\xac\xed`, or an uppercase letter inside a
/// word (base64 such as `rO0AB`, `cnVudGlt`, and .NET type names). Prose,
/// whose capitals start words, skips them, and so do URLs, times and
/// text in other scripts.
fn needs_case(dec: &[u8]) -> bool {
    // The bytes that start a test of their own: one table load a byte.
    const RARE: [bool; 256] = crate::detect::normalize::byte_set(b":+\n\xc2\xac");
    let mut prev_alnum = false;
    for (i, &b) in dec.iter().enumerate() {
        if (prev_alnum && b.is_ascii_uppercase()) || (RARE[usize::from(b)] && wakes(dec, i)) {
            return true;
        }
        prev_alnum = b.is_ascii_alphanumeric();
    }
    memchr::memmem::find(dec, b"0001000000").is_some()
}

/// [`needs_case`] at a rare byte.
#[cold]
fn wakes(dec: &[u8], i: usize) -> bool {
    let next = dec.get(i + 1).copied().unwrap_or(0);
    match dec[i] {
        b':' => {
            i > 0
                && matches!(dec[i - 1], b'O' | b'C' | b'a')
                && (next == b'+' || next.is_ascii_digit())
        }
        b'+' => next == b'A',
        b'\n' => true,
        0xc2 => matches!(next, 0xbc | 0xbe),
        _ => next == 0xed,
    }
}

/// A group: the units of its members, and whether it is behind the
/// screen (else all in one set).
type Key = (Vec<usize>, bool);

/// Maps `f` over `items` on up to `available_parallelism` threads (at most
/// 8), each taking the next item when done with one, and returns the
/// results in order.
fn par_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(8)
        .min(items.len());
    if threads <= 1 {
        return items.iter().map(f).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let work = || {
        let mut done = Vec::new();
        loop {
            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let Some(item) = items.get(i) else {
                return done;
            };
            done.push((i, f(item)));
        }
    };
    let mut out: Vec<(usize, R)> = std::thread::scope(|s| {
        let helpers: Vec<_> = (1..threads).map(|_| s.spawn(work)).collect();
        let mut all = work();
        for h in helpers {
            // A panic in `f` is the caller's, as it would be on one thread.
            all.extend(h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)));
        }
        all
    });
    out.sort_unstable_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, r)| r).collect()
}

/// What building the groups reads.
struct Build<'r> {
    rules: &'r [Rule],
    units: &'r [Unit],
}

impl Build<'_> {
    /// The keys of a row's groups (dec, low, sql, cmd, and low, sql and cmd
    /// together) for the rules `keep` selects; None: no unit.
    fn plan(&self, keep: impl Fn(&Rule) -> bool, screen: bool) -> [Option<Key>; 5] {
        let key = |views: &[View]| {
            let members: Vec<usize> = (0..self.units.len())
                .filter(|&u| {
                    let r = &self.rules[self.units[u].rule];
                    views.contains(&r.view) && keep(r)
                })
                .collect();
            (!members.is_empty()).then_some((members, screen))
        };
        [
            key(&[View::Dec]),
            key(&[View::Low]),
            key(&[View::Sql]),
            key(&[View::Cmd]),
            key(&[View::Low, View::Sql, View::Cmd]),
        ]
    }

    /// The group of `key`'s units.
    fn group(&self, (members, screen): &Key) -> Result<Group, String> {
        let mut screened = Bits::new();
        let mut any_screened = false;
        let mut rest = Vec::new();
        for &u in members {
            if *screen && self.units[u].screened() {
                screened.set(u);
                any_screened = true;
            } else {
                rest.push(u);
            }
        }
        let rest = if rest.is_empty() {
            None
        } else {
            let patterns: Vec<&str> = rest
                .iter()
                .map(|&u| {
                    let unit = &self.units[u];
                    unit.regex
                        .as_ref()
                        .map_or(self.rules[unit.rule].pattern.as_str(), Regex::as_str)
                })
                .collect();
            let set = PatternMatcher::new(&patterns, SET_SIZE_LIMIT, DFA_SIZE_LIMIT)
                .map_err(|e| format!("rule set: {e}"))?;
            Some((set, rest))
        };
        Ok(Group {
            screened,
            any_screened,
            rest,
        })
    }
}

#[cfg(test)]
mod tests;
