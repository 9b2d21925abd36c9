//! What the engine found lately, for the dashboard's overview: the
//! requests with findings over the last hour and the last five minutes, by
//! source, canonical path, rule and category, and the requests inspected
//! per origin. Fed where findings are recorded (the proxy and the mirror),
//! read by the overview every second; no store scan.
//!
//! Sixty one-minute sketches per key kind ([`sketch`](super::sketch)), each
//! window the sum of its minutes: a minute leaving a window is subtracted
//! from it. Memory is fixed (at most 4 MiB, whatever the keys); counts are
//! estimates once the window has counted more than a few hundred requests
//! (`approximate`). Each request counts once per key (a request with two
//! findings of one rule counts once for that rule).

use std::{
    hash::RandomState,
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

use serde::Serialize;

use super::{
    record::Origin,
    sketch::{self, Sketch, Window},
};

/// Minutes in the long window.
pub const HOUR: u64 = 60;
/// Minutes in the short window.
pub const SHORT: u64 = 5;
/// Longest key counted, in characters (paths are cut there).
pub const MAX_KEY: usize = 128;

/// The kinds of key, in the order of [`Ring::dims`].
const SOURCES: usize = 0;
const PATHS: usize = 1;
const RULES: usize = 2;
const KINDS: usize = 3;

/// One request with findings, as the tops count it.
pub struct Seen<'a> {
    /// The client address.
    pub source: &'a str,
    /// The canonical path.
    pub path: &'a str,
    /// The rule and category of each finding.
    pub findings: Vec<(&'a str, &'a str)>,
    /// The verdict label (`block`, `would_block`, `pass`).
    pub verdict: &'a str,
}

/// One kind of key: its minutes and its two windows.
#[derive(Debug, Default)]
struct Dim {
    minutes: Vec<Sketch>,
    hour: Window,
    short: Window,
}

/// Exact counts of one minute: requests with findings, blocked, would_block.
type Counts = [u64; 3];

#[derive(Debug)]
struct Ring {
    /// The newest minute counted (Unix minutes).
    now: Option<u64>,
    /// The minute each slot holds (slot = minute % [`HOUR`]).
    minute_of: Vec<Option<u64>>,
    counts: Vec<Counts>,
    dims: [Dim; 4],
}

/// Ranked keys of one kind: `(key, estimated requests)`, heaviest first.
pub type Ranked = Vec<(String, u64)>;

/// The tops of one window.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct WindowTops {
    /// The window's length in minutes (the current minute included).
    pub minutes: u64,
    /// Requests with findings (exact).
    pub requests: u64,
    /// Of them, blocked (exact).
    pub blocked: u64,
    /// Of them, `would_block` (passive mode, or the mirror; exact).
    pub would_block: u64,
    /// Sources with the most requests with findings.
    pub sources: Ranked,
    /// Canonical paths likewise (cut at [`MAX_KEY`] characters).
    pub paths: Ranked,
    /// Rules likewise.
    pub rules: Ranked,
    /// Categories (`sqli`, `xss`...) likewise.
    pub kinds: Ranked,
    /// The ranked counts are estimates (keys may share the sketch's cells).
    pub approximate: bool,
}

/// The tops of both windows.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct LiveTops {
    /// The last hour.
    pub hour: WindowTops,
    /// The last five minutes.
    pub short: WindowTops,
}

/// The live tops and the inspection counters.
#[derive(Debug)]
pub struct Live {
    hasher: RandomState,
    ring: Mutex<Ring>,
    /// Requests inspected by the proxy.
    pub inspected_proxy: AtomicU64,
    /// Requests inspected by the mirror.
    pub inspected_mirror: AtomicU64,
}

impl Default for Live {
    fn default() -> Self {
        Live {
            hasher: RandomState::new(),
            ring: Mutex::new(Ring {
                now: None,
                minute_of: vec![None; HOUR as usize],
                counts: vec![[0; 3]; HOUR as usize],
                dims: Default::default(),
            }),
            inspected_proxy: AtomicU64::new(0),
            inspected_mirror: AtomicU64::new(0),
        }
    }
}

/// `s` cut to [`MAX_KEY`] characters.
fn cut(s: &str) -> &str {
    match s.char_indices().nth(MAX_KEY) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

impl Ring {
    /// Moves the windows on to minute `to`: the minutes that leave them are
    /// subtracted. A clock that went back keeps counting into the newest
    /// minute.
    fn advance(&mut self, to: u64, hasher: &RandomState) {
        let slots = HOUR as usize;
        let Some(now) = self.now else {
            self.now = Some(to);
            self.minute_of[(to % HOUR) as usize] = Some(to);
            return;
        };
        if to <= now {
            return;
        }
        if to - now >= HOUR {
            for d in &mut self.dims {
                d.hour.clear();
                d.short.clear();
                d.minutes.iter_mut().for_each(Sketch::clear);
            }
            self.minute_of = vec![None; slots];
            self.counts = vec![[0; 3]; slots];
        } else {
            for m in now + 1..=to {
                if let Some(old) = m.checked_sub(SHORT) {
                    let slot = (old % HOUR) as usize;
                    if self.minute_of[slot] == Some(old) {
                        for d in &mut self.dims {
                            if let Some(s) = d.minutes.get(slot) {
                                d.short.subtract(s, hasher);
                            }
                        }
                    }
                }
                let slot = (m % HOUR) as usize;
                if self.minute_of[slot].is_some() {
                    for d in &mut self.dims {
                        if let Some(s) = d.minutes.get_mut(slot) {
                            d.hour.subtract(s, hasher);
                            s.clear();
                        }
                    }
                    self.counts[slot] = [0; 3];
                }
                self.minute_of[slot] = None;
            }
        }
        self.now = Some(to);
        self.minute_of[(to % HOUR) as usize] = Some(to);
    }

    fn add(&mut self, dim: usize, key: &str, hasher: &RandomState) {
        let Some(now) = self.now else { return };
        let key = cut(key);
        let at = sketch::cells(hasher, key);
        let d = &mut self.dims[dim];
        if d.minutes.is_empty() {
            d.minutes = vec![Sketch::default(); HOUR as usize];
        }
        d.minutes[(now % HOUR) as usize].add(&at);
        d.hour.add(key, &at);
        d.short.add(key, &at);
    }

    fn window(&self, short: bool, n: usize, hasher: &RandomState) -> WindowTops {
        let now = self.now.unwrap_or(0);
        let minutes = if short { SHORT } else { HOUR };
        let mut t = WindowTops {
            minutes,
            ..WindowTops::default()
        };
        for (m, c) in self.minute_of.iter().zip(&self.counts) {
            if m.is_some_and(|m| m + minutes > now) {
                t.requests += c[0];
                t.blocked += c[1];
                t.would_block += c[2];
            }
        }
        fn pick(d: &Dim, short: bool) -> &Window {
            if short { &d.short } else { &d.hour }
        }
        t.sources = pick(&self.dims[SOURCES], short).top(n, hasher);
        t.paths = pick(&self.dims[PATHS], short).top(n, hasher);
        t.rules = pick(&self.dims[RULES], short).top(n, hasher);
        t.kinds = pick(&self.dims[KINDS], short).top(n, hasher);
        t.approximate = self
            .dims
            .iter()
            .any(|d| pick(d, short).sketch.approximate());
        t
    }
}

impl Live {
    /// Counts a request inspected by `origin`.
    pub fn inspected(&self, origin: Origin) {
        match origin {
            Origin::Proxy => &self.inspected_proxy,
            Origin::Mirror => &self.inspected_mirror,
        }
        .fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a request with findings at Unix second `now_s`.
    pub fn add(&self, now_s: u64, seen: &Seen) {
        let mut rules: Vec<&str> = seen.findings.iter().map(|(r, _)| *r).collect();
        let mut kinds: Vec<&str> = seen.findings.iter().map(|(_, k)| *k).collect();
        rules.sort_unstable();
        rules.dedup();
        kinds.sort_unstable();
        kinds.dedup();
        let mut ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        ring.advance(now_s / 60, &self.hasher);
        let Some(now) = ring.now else { return };
        let c = &mut ring.counts[(now % HOUR) as usize];
        c[0] += 1;
        match seen.verdict {
            "block" => c[1] += 1,
            "would_block" => c[2] += 1,
            _ => {}
        }
        ring.add(SOURCES, seen.source, &self.hasher);
        ring.add(PATHS, seen.path, &self.hasher);
        for r in rules {
            ring.add(RULES, r, &self.hasher);
        }
        for k in kinds {
            ring.add(KINDS, k, &self.hasher);
        }
    }

    /// The `n` heaviest keys of each kind in both windows, at Unix second
    /// `now_s`.
    pub fn tops(&self, now_s: u64, n: usize) -> LiveTops {
        let mut ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        ring.advance(now_s / 60, &self.hasher);
        LiveTops {
            hour: ring.window(false, n, &self.hasher),
            short: ring.window(true, n, &self.hasher),
        }
    }
}
