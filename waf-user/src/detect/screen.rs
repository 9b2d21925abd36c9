//! The literal screen of `matcher.rs`: which rule units are worth running
//! on a text. Units and their factors come from `prefilter.rs`; one
//! Aho-Corasick pass over the text finds the factors with literals longer
//! than a byte, and factors of single bytes are looked for with `memchr`
//! only once a unit's other factors are all there.

use std::collections::HashMap;

use aho_corasick::automaton::Automaton as _;
use aho_corasick::{Anchored, MatchKind, StartKind, dfa::DFA};
use regex::bytes::Regex;

use super::prefilter;

/// One branch of a rule.
pub struct Unit {
    /// Index into `Compiled::rules`.
    pub rule: usize,
    /// The branch alone; None: the rule's regex.
    pub regex: Option<Regex>,
    /// How many factors the automaton must find before it runs.
    pub multi: usize,
    /// Factors of single bytes: each needs one of its bytes in the text.
    pub masks: Vec<ByteFactor>,
}

/// A factor of single bytes.
pub struct ByteFactor {
    /// Its bytes in either case.
    bytes: Vec<u8>,
    /// The same as a set of lowercase bytes.
    set: ByteSet,
}

impl ByteFactor {
    /// The factor `factor` (literals of one byte each).
    pub fn new(factor: &[Vec<u8>]) -> ByteFactor {
        let set = byte_set(factor);
        let mut bytes: Vec<u8> = set
            .iter()
            .flat_map(|b| [b, b.to_ascii_uppercase()])
            .collect();
        bytes.dedup();
        ByteFactor { bytes, set }
    }

    /// Whether `text` holds one of its bytes; `present` computes the bytes
    /// of the text (once) when there are too many to search for.
    fn occurs(&self, text: &[u8], present: &mut dyn FnMut() -> ByteSet) -> bool {
        match self.bytes[..] {
            [a] => memchr::memchr(a, text).is_some(),
            [a, b] => memchr::memchr2(a, b, text).is_some(),
            [a, b, c] => memchr::memchr3(a, b, c, text).is_some(),
            _ => self.set.meets(&present()),
        }
    }
}

impl Unit {
    /// Whether the screen picks it (else it runs on every text).
    pub fn screened(&self) -> bool {
        self.multi > 0 || !self.masks.is_empty()
    }

    fn bytes_ok(&self, text: &[u8], present: &mut dyn FnMut() -> ByteSet) -> bool {
        self.masks.iter().all(|m| m.occurs(text, present))
    }
}

/// A set of bytes.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct ByteSet([u64; 4]);

impl ByteSet {
    fn insert(&mut self, b: u8) {
        self.0[usize::from(b >> 6)] |= 1 << (b & 63);
    }

    fn meets(&self, other: &ByteSet) -> bool {
        self.0.iter().zip(other.0).any(|(a, b)| a & b != 0)
    }

    /// The lowercase bytes of `text`.
    fn of(text: &[u8]) -> ByteSet {
        // Byte stores, then one pass over the table: setting bits in place
        // would chain every byte through the same few words.
        let mut seen = [0u8; 256];
        for &b in text {
            seen[usize::from(b)] = 1;
        }
        for b in b'A'..=b'Z' {
            seen[usize::from(b | 0x20)] |= seen[usize::from(b)];
            seen[usize::from(b)] = 0;
        }
        let mut set = ByteSet::default();
        for (w, chunk) in set.0.iter_mut().zip(seen.chunks_exact(64)) {
            *w = chunk
                .iter()
                .enumerate()
                .fold(0u64, |acc, (i, &s)| acc | (u64::from(s) << i));
        }
        set
    }

    fn iter(&self) -> impl Iterator<Item = u8> + '_ {
        self.0.iter().enumerate().flat_map(|(w, &word)| {
            let mut word = word;
            std::iter::from_fn(move || {
                (word != 0).then(|| {
                    let bit = word.trailing_zeros();
                    word &= word - 1;
                    (w * 64) as u8 + bit as u8
                })
            })
        })
    }
}

/// The literal screen over every unit that has factors.
pub struct Screen {
    /// The factors' literals (of those not of single bytes only), ASCII
    /// case folded, as a DFA walked by `tally` itself: every literal that
    /// ends at each byte, with nothing but a table load a byte between
    /// them (the crate's overlapping iterator keeps its position in
    /// memory and returns at every match).
    ac: Option<DFA>,
    /// Per literal of `ac`: the factors it belongs to.
    factors_of: Vec<Vec<u32>>,
    /// Per (lowercase) byte: the factors it is a literal of, found from the
    /// bytes of the text rather than by the automaton (which would stop at
    /// every occurrence).
    factors_of_byte: Vec<Vec<u32>>,
    /// The bytes with factors.
    byte_literals: ByteSet,
    /// Per factor: the unit that needs it (each factor is one unit's).
    unit_of: Vec<u32>,
    /// Per byte: the units with only single-byte factors whose rarest
    /// factor holds it.
    triggers: Vec<Vec<u32>>,
    /// The bytes with triggers.
    triggered: ByteSet,
}

/// Scratch space of screenings, one per thread, cleared after each use
/// by undoing what it touched (most values touch a few entries).
#[derive(Default)]
struct Tally {
    /// Literals seen (bits).
    literals: Vec<u64>,
    /// Factors seen (bits).
    factors: Vec<u64>,
    /// Per unit: factors seen (for units with single-byte factors only:
    /// whether checked).
    count: Vec<u8>,
    /// Words of `literals` and `factors`, and entries of `count`, touched.
    touched_literals: Vec<u32>,
    touched_factors: Vec<u32>,
    touched_units: Vec<u32>,
}

impl Tally {
    fn fit(&mut self, literals: usize, factors: usize, units: usize) {
        if self.literals.len() < literals.div_ceil(64) {
            self.literals.resize(literals.div_ceil(64), 0);
        }
        if self.factors.len() < factors.div_ceil(64) {
            self.factors.resize(factors.div_ceil(64), 0);
        }
        if self.count.len() < units {
            self.count.resize(units, 0);
        }
    }

    /// Sets a bit; whether it was clear.
    fn first(bits: &mut [u64], touched: &mut Vec<u32>, i: usize) -> bool {
        let (w, b) = (i / 64, 1u64 << (i % 64));
        if bits[w] & b != 0 {
            return false;
        }
        if bits[w] == 0 {
            touched.push(w as u32);
        }
        bits[w] |= b;
        true
    }

    /// Adds one to a unit's count; the new count.
    fn bump(&mut self, u: usize) -> u8 {
        if self.count[u] == 0 {
            self.touched_units.push(u as u32);
        }
        self.count[u] = self.count[u].saturating_add(1);
        self.count[u]
    }

    fn clear(&mut self) {
        for w in self.touched_literals.drain(..) {
            self.literals[w as usize] = 0;
        }
        for w in self.touched_factors.drain(..) {
            self.factors[w as usize] = 0;
        }
        for u in self.touched_units.drain(..) {
            self.count[u as usize] = 0;
        }
    }
}

thread_local! {
    static TALLY: std::cell::RefCell<Tally> = std::cell::RefCell::default();
}

impl Screen {
    /// Calls `each` with every unit all of whose factors occur in `text`,
    /// in no particular order.
    pub fn candidates(&self, units: &[Unit], text: &[u8], mut each: impl FnMut(usize)) {
        TALLY.with(|t| match t.try_borrow_mut() {
            Ok(mut t) => {
                t.fit(self.factors_of.len(), self.unit_of.len(), units.len());
                self.tally(units, text, &mut t, &mut each);
                t.clear();
            }
            // Entered again from `each`: a fresh one.
            Err(_) => {
                let mut t = Tally::default();
                t.fit(self.factors_of.len(), self.unit_of.len(), units.len());
                self.tally(units, text, &mut t, &mut each);
            }
        });
    }

    fn tally(&self, units: &[Unit], text: &[u8], t: &mut Tally, each: &mut dyn FnMut(usize)) {
        // The bytes of the text: now when bytes are literals of factors,
        // else when first needed.
        let eager = (self.triggered != ByteSet::default()
            || self.byte_literals != ByteSet::default())
        .then(|| ByteSet::of(text));
        let mut present = eager;
        let mut bytes_ok = |u: usize| {
            units[u].bytes_ok(text, &mut || {
                *present.get_or_insert_with(|| ByteSet::of(text))
            })
        };
        let mut factor_seen = |t: &mut Tally, f: u32, each: &mut dyn FnMut(usize)| {
            let f = f as usize;
            if !Tally::first(&mut t.factors, &mut t.touched_factors, f) {
                return;
            }
            let u = self.unit_of[f] as usize;
            if usize::from(t.bump(u)) == units[u].multi && bytes_ok(u) {
                each(u);
            }
        };
        if let Some(present) = eager {
            let mut fired = present;
            for (w, m) in fired.0.iter_mut().zip(self.byte_literals.0) {
                *w &= m;
            }
            for b in fired.iter() {
                for &f in &self.factors_of_byte[usize::from(b)] {
                    factor_seen(t, f, each);
                }
            }
            let mut fired = present;
            for (w, m) in fired.0.iter_mut().zip(self.triggered.0) {
                *w &= m;
            }
            for b in fired.iter() {
                for &u in &self.triggers[usize::from(b)] {
                    let u = u as usize;
                    if t.bump(u) == 1 && units[u].bytes_ok(text, &mut || present) {
                        each(u);
                    }
                }
            }
        }
        let Some(ac) = &self.ac else { return };
        // Built unanchored without a prefilter: the start state is no
        // special state, and an unanchored automaton has no dead one.
        let Ok(mut sid) = ac.start_state(Anchored::No) else {
            return;
        };
        for &b in text {
            sid = ac.next_state(Anchored::No, sid, b);
            if !ac.is_special(sid) || !ac.is_match(sid) {
                continue;
            }
            for k in 0..ac.match_len(sid) {
                let lit = ac.match_pattern(sid, k).as_usize();
                if Tally::first(&mut t.literals, &mut t.touched_literals, lit) {
                    for &f in &self.factors_of[lit] {
                        factor_seen(t, f, each);
                    }
                }
            }
        }
    }
}

/// The literals of a factor of single bytes, as a set.
fn byte_set(factor: &[Vec<u8>]) -> ByteSet {
    let mut set = ByteSet::default();
    for l in factor {
        set.insert(l[0].to_ascii_lowercase());
    }
    set
}

/// A unit's factors: those for the automaton, and those of single bytes.
pub type Factors = (Vec<Vec<Vec<u8>>>, Vec<Vec<Vec<u8>>>);

/// The screen over the factors of the units `keep` selects (the others are
/// never candidates).
pub fn screen(units: &[Factors], keep: impl Fn(usize) -> bool) -> Result<Screen, String> {
    let mut index: HashMap<&[u8], usize> = HashMap::new();
    let mut patterns: Vec<&[u8]> = Vec::new();
    let mut factors_of: Vec<Vec<u32>> = Vec::new();
    let mut unit_of: Vec<u32> = Vec::new();
    let mut triggers: Vec<Vec<u32>> = vec![Vec::new(); 256];
    let mut triggered = ByteSet::default();
    let mut factors_of_byte: Vec<Vec<u32>> = vec![Vec::new(); 256];
    let mut byte_literals = ByteSet::default();
    for (u, (multi, bytes)) in units.iter().enumerate() {
        if !keep(u) {
            continue;
        }
        // Below MAX_UNITS, which the caller checked.
        let u = u32::try_from(u).map_err(|_| "too many units".to_owned())?;
        if multi.is_empty() {
            let odds = |f: &Vec<Vec<u8>>| prefilter::factor_odds(f);
            if let Some(rarest) = bytes.iter().min_by(|a, b| odds(a).total_cmp(&odds(b))) {
                for b in byte_set(rarest).iter() {
                    triggers[usize::from(b)].push(u);
                    triggered.insert(b);
                }
            }
        }
        for factor in multi {
            let f = u32::try_from(unit_of.len()).map_err(|_| "too many factors".to_owned())?;
            unit_of.push(u);
            for l in factor {
                if let [b] = l[..] {
                    let b = b.to_ascii_lowercase();
                    factors_of_byte[usize::from(b)].push(f);
                    byte_literals.insert(b);
                    continue;
                }
                let id = *index.entry(l).or_insert_with(|| {
                    patterns.push(l);
                    factors_of.push(Vec::new());
                    patterns.len() - 1
                });
                factors_of[id].push(f);
            }
        }
    }
    let ac = if patterns.is_empty() {
        None
    } else {
        Some(
            DFA::builder()
                .ascii_case_insensitive(true)
                .match_kind(MatchKind::Standard)
                .start_kind(StartKind::Unanchored)
                .prefilter(false)
                .build(&patterns)
                .map_err(|e| format!("rule literals: {e}"))?,
        )
    };
    Ok(Screen {
        ac,
        factors_of,
        factors_of_byte,
        byte_literals,
        unit_of,
        triggers,
        triggered,
    })
}
