//! The monitors' memory: bounded, sharded tables of per-key state, and the
//! three states they hold (a sliding-window counter, a set of distinct
//! paths, the pages a source got lately).
//!
//! Times are kept as `u32` ticks since a per-state base instant (a tick is
//! 1 ms, or window / 2^20 for windows longer than about 17 minutes), so an
//! event costs 8 bytes; the base moves forward when the ticks grow large,
//! dropping what left the window. A time earlier than the state's newest
//! is read as that newest time (no time passed).
//!
//! A table holds at most its capacity of keys (16 shards, each behind its
//! own lock). A full shard takes a new key in the slot of the key with the
//! least evidence (the fewest events held; ties: the one seen least
//! lately; idle keys first) among [`EVICTION_SAMPLE`] drawn at random: an
//! attacker rotating addresses mostly evicts his own one-event keys, and to
//! flush a key holding `k` events he must hold more than `k` events in
//! most keys of its shard, within the window, which brings them to their
//! own threshold. Drawing at random keeps it O(1) and unpredictable.

use std::{
    collections::{HashMap, VecDeque},
    hash::{BuildHasher, Hash, RandomState},
    sync::{Mutex, MutexGuard},
    time::{Duration, Instant},
};

/// Shards per table (each behind its own lock).
const SHARDS: usize = 16;
/// Keys drawn when a full shard takes a new key.
pub const EVICTION_SAMPLE: usize = 8;
/// The most slots of a counter: exact up to a threshold of this many
/// events, grouped in steps of window / `SLOTS` beyond.
pub const SLOTS: usize = 16;
/// The most pages remembered per source for the form timing check.
pub const PAGES: usize = 16;
/// Ticks past which a state moves its base forward.
const REBASE_AT: u64 = 1 << 30;
/// Windows are cut in at most this many ticks.
const MAX_WINDOW_TICKS: u128 = 1 << 20;

/// How a monitor measures time: the tick and its window in ticks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Ticks {
    tick: Duration,
    window: u64,
}

impl Ticks {
    /// For a window (at least 1 ms; longer than 10 years is cut there).
    pub fn new(window: Duration) -> Ticks {
        let window = window.clamp(Duration::from_millis(1), crate::values::MAX_DURATION);
        let nanos = window.as_nanos();
        let tick = Duration::from_nanos(
            u64::try_from(nanos.div_ceil(MAX_WINDOW_TICKS).max(1_000_000)).unwrap_or(u64::MAX),
        );
        let window = u64::try_from(nanos / tick.as_nanos()).unwrap_or(1).max(1);
        Ticks { tick, window }
    }

    /// `ticks` as a duration.
    pub fn duration(&self, ticks: u64) -> Duration {
        self.tick
            .checked_mul(u32::try_from(ticks).unwrap_or(u32::MAX))
            .unwrap_or(Duration::MAX)
    }
}

/// A state's time base.
#[derive(Clone, Copy, Debug)]
struct Clock {
    base: Instant,
    last: u32,
}

impl Clock {
    fn new(now: Instant) -> Clock {
        Clock { base: now, last: 0 }
    }

    /// `now` in ticks since the base, never before the newest time seen.
    /// When the ticks grow large the base moves forward: `shift(d)` must
    /// subtract `d` from every time held and drop those below it (they
    /// left the window); `u32::MAX` means drop everything.
    fn at(&mut self, now: Instant, t: &Ticks, mut shift: impl FnMut(u32)) -> u32 {
        let since = now.saturating_duration_since(self.base).as_nanos() / t.tick.as_nanos();
        let mut n = u64::try_from(since).unwrap_or(u64::MAX);
        if n >= REBASE_AT {
            let delta = n - t.window;
            if delta >= u64::from(self.last) || delta > u64::from(u32::MAX) {
                shift(u32::MAX);
                *self = Clock::new(now);
                return 0;
            }
            let Some(base) = self.base.checked_add(t.duration(delta)) else {
                shift(u32::MAX);
                *self = Clock::new(now);
                return 0;
            };
            let d = delta as u32;
            shift(d);
            self.base = base;
            self.last -= d;
            n -= delta;
        }
        let n = (n as u32).max(self.last);
        self.last = n;
        n
    }
}

/// Whether a time held is still in the window at `now` (both in ticks).
fn live(now: u32, at: u32, t: &Ticks) -> bool {
    u64::from(now.saturating_sub(at)) < t.window
}

/// What a table's eviction reads of a state: the events it holds.
pub(super) trait Weighed {
    fn weight(&self) -> u64;
}

/// Events within a sliding window. Up to [`SLOTS`] events each has its own
/// slot (exact); with a larger threshold, events less than window /
/// `SLOTS` after the newest slot's first join it, and a slot leaves the
/// window with its first event: the count never holds an event older than
/// the window (a monitor never fires early), and may forget at most one
/// step's events at the window's trailing edge.
#[derive(Debug)]
pub(super) struct Counter {
    clock: Clock,
    slots: VecDeque<(u32, u32)>,
    total: u64,
}

impl Counter {
    pub fn new(now: Instant) -> Counter {
        Counter {
            clock: Clock::new(now),
            slots: VecDeque::new(),
            total: 0,
        }
    }

    /// Counts one event at `now`. When the window holds `threshold`
    /// events, forgets them all and returns how many there were.
    pub fn record(&mut self, now: Instant, t: &Ticks, threshold: u64) -> Option<u64> {
        let slots = &mut self.slots;
        let total = &mut self.total;
        let n = self.clock.at(now, t, |d| {
            while slots.front().is_some_and(|&(at, _)| at <= d) {
                if let Some((_, c)) = slots.pop_front() {
                    *total -= u64::from(c);
                }
            }
            for s in slots.iter_mut() {
                s.0 -= d;
            }
        });
        while let Some(&(at, c)) = self.slots.front() {
            if live(n, at, t) {
                break;
            }
            self.slots.pop_front();
            self.total -= u64::from(c);
        }
        let step = t.window / SLOTS as u64;
        let merge = threshold > SLOTS as u64 && step > 0;
        match self.slots.back_mut() {
            Some((at, c)) if merge && u64::from(n - *at) < step && *c < u32::MAX => *c += 1,
            _ => {
                if self.slots.len() >= SLOTS
                    && let Some((_, c)) = self.slots.pop_front()
                {
                    self.total -= u64::from(c);
                }
                self.slots.push_back((n, 1));
            }
        }
        self.total += 1;
        if self.total >= threshold {
            let fired = self.total;
            self.slots.clear();
            self.total = 0;
            return Some(fired);
        }
        None
    }

    /// Events held (tests: never more than the threshold - 1).
    #[cfg(test)]
    pub fn held(&self) -> u64 {
        self.total
    }

    /// Slots held.
    #[cfg(test)]
    pub fn slots(&self) -> usize {
        self.slots.len()
    }
}

impl Weighed for Counter {
    fn weight(&self) -> u64 {
        self.total
    }
}

/// Distinct keys (path hashes) within a sliding window, each with the
/// last time it was seen: a key seen again stays one key.
#[derive(Debug)]
pub(super) struct Distinct {
    clock: Clock,
    seen: Vec<(u32, u32)>,
}

impl Distinct {
    pub fn new(now: Instant) -> Distinct {
        Distinct {
            clock: Clock::new(now),
            seen: Vec::new(),
        }
    }

    /// Counts `key` at `now`. When the window holds `threshold` (at most
    /// `cap`) distinct keys, forgets them all and returns how many.
    pub fn record(
        &mut self,
        now: Instant,
        t: &Ticks,
        key: u32,
        threshold: u64,
        cap: usize,
    ) -> Option<u64> {
        let seen = &mut self.seen;
        let n = self.clock.at(now, t, |d| {
            seen.retain(|&(_, at)| at > d);
            for s in seen.iter_mut() {
                s.1 -= d;
            }
        });
        self.seen.retain(|&(_, at)| live(n, at, t));
        if let Some(s) = self.seen.iter_mut().find(|s| s.0 == key) {
            s.1 = n;
            return None;
        }
        if self.seen.len() >= cap.max(1)
            && let Some(oldest) = (0..self.seen.len()).min_by_key(|&i| self.seen[i].1)
        {
            self.seen.swap_remove(oldest);
        }
        self.seen.push((key, n));
        let held = self.seen.len() as u64;
        if held >= threshold {
            self.seen.clear();
            return Some(held);
        }
        None
    }

    /// Keys held.
    #[cfg(test)]
    pub fn held(&self) -> usize {
        self.seen.len()
    }
}

impl Weighed for Distinct {
    fn weight(&self) -> u64 {
        self.seen.len() as u64
    }
}

/// The pages a source got lately (path hashes), for the form timing check.
#[derive(Debug)]
pub(super) struct Pages {
    clock: Clock,
    pages: VecDeque<(u32, u32)>,
}

impl Pages {
    pub fn new(now: Instant) -> Pages {
        Pages {
            clock: Clock::new(now),
            pages: VecDeque::new(),
        }
    }

    fn now(&mut self, now: Instant, t: &Ticks) -> u32 {
        let pages = &mut self.pages;
        let n = self.clock.at(now, t, |d| {
            pages.retain(|&(_, at)| at > d);
            for p in pages.iter_mut() {
                p.1 -= d;
            }
        });
        self.pages.retain(|&(_, at)| live(n, at, t));
        n
    }

    /// Notes that the source got page `key` at `now`.
    pub fn record(&mut self, now: Instant, t: &Ticks, key: u32) {
        let n = self.now(now, t);
        self.pages.retain(|&(k, _)| k != key);
        if self.pages.len() >= PAGES {
            self.pages.pop_front();
        }
        self.pages.push_back((key, n));
    }

    /// How long ago the source got page `key`, if within the window.
    pub fn since(&mut self, now: Instant, t: &Ticks, key: u32) -> Option<Duration> {
        let n = self.now(now, t);
        let &(_, at) = self.pages.iter().rev().find(|&&(k, _)| k == key)?;
        Some(t.duration(u64::from(n - at)))
    }

    /// Pages held.
    #[cfg(test)]
    pub fn held(&self) -> usize {
        self.pages.len()
    }
}

impl Weighed for Pages {
    fn weight(&self) -> u64 {
        0
    }
}

struct Slot<K, S> {
    key: K,
    seen: Instant,
    state: S,
}

struct Shard<K, S> {
    index: HashMap<K, u32>,
    slots: Vec<Slot<K, S>>,
    rng: u64,
}

/// splitmix64: the shard's draws (not for secrets).
fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Per-key state, at most `cap` keys (see the module doc).
pub(super) struct Table<K, S> {
    shards: Box<[Mutex<Shard<K, S>>]>,
    route: RandomState,
    per_shard: usize,
    /// A key not seen for this long is idle: dropped by `retain_recent`,
    /// evicted first.
    idle: Duration,
}

impl<K: Hash + Eq + Clone, S: Weighed> Table<K, S> {
    /// A table of at most `cap` keys (rounded up to a multiple of the
    /// shards), idle after `idle`.
    pub fn new(cap: usize, idle: Duration) -> Self {
        let route = RandomState::new();
        let shards = (0..SHARDS)
            .map(|i| {
                Mutex::new(Shard {
                    index: HashMap::new(),
                    slots: Vec::new(),
                    rng: route.hash_one(i),
                })
            })
            .collect();
        Table {
            shards,
            route,
            per_shard: cap.div_ceil(SHARDS).max(1),
            idle,
        }
    }

    fn shard(&self, key: &K) -> MutexGuard<'_, Shard<K, S>> {
        let i = (self.route.hash_one(key) % SHARDS as u64) as usize;
        // A panic elsewhere cannot leave a shard inconsistent in a way
        // that matters here: keep serving.
        self.shards[i].lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on the state of `key`, made by `make` (evicting if the
    /// shard is full) when new.
    pub fn update<R>(
        &self,
        key: K,
        now: Instant,
        make: impl FnOnce() -> S,
        f: impl FnOnce(&mut S) -> R,
    ) -> R {
        let mut guard = self.shard(&key);
        let sh = &mut *guard;
        let i = match sh.index.get(&key) {
            Some(&i) => i as usize,
            None if sh.slots.len() < self.per_shard => {
                sh.index.insert(key.clone(), sh.slots.len() as u32);
                sh.slots.push(Slot {
                    key,
                    seen: now,
                    state: make(),
                });
                sh.slots.len() - 1
            }
            None => {
                let v = self.victim(sh, now);
                let old = std::mem::replace(
                    &mut sh.slots[v],
                    Slot {
                        key: key.clone(),
                        seen: now,
                        state: make(),
                    },
                );
                sh.index.remove(&old.key);
                sh.index.insert(key, v as u32);
                v
            }
        };
        let slot = &mut sh.slots[i];
        slot.seen = slot.seen.max(now);
        f(&mut slot.state)
    }

    /// Runs `f` on the state of `key` if there is one.
    pub fn get<R>(&self, key: &K, now: Instant, f: impl FnOnce(&mut S) -> R) -> Option<R> {
        let mut guard = self.shard(key);
        let sh = &mut *guard;
        let &i = sh.index.get(key)?;
        let slot = &mut sh.slots[i as usize];
        slot.seen = slot.seen.max(now);
        Some(f(&mut slot.state))
    }

    /// The slot a new key takes in a full shard.
    fn victim(&self, sh: &mut Shard<K, S>, now: Instant) -> usize {
        let len = sh.slots.len() as u64;
        let mut best: Option<(usize, u64, Instant)> = None;
        for _ in 0..EVICTION_SAMPLE {
            let i = (next(&mut sh.rng) % len) as usize;
            let s = &sh.slots[i];
            let idle = now.saturating_duration_since(s.seen) >= self.idle;
            let w = if idle { 0 } else { s.state.weight() };
            if best.is_none_or(|(_, bw, bs)| (w, s.seen) < (bw, bs)) {
                best = Some((i, w, s.seen));
            }
        }
        best.map_or(0, |b| b.0)
    }

    /// Forgets keys not seen for the idle time.
    pub fn retain_recent(&self, now: Instant) {
        for m in self.shards.iter() {
            let mut guard = m.lock().unwrap_or_else(|e| e.into_inner());
            let sh = &mut *guard;
            let before = sh.slots.len();
            sh.slots
                .retain(|s| now.saturating_duration_since(s.seen) < self.idle);
            if sh.slots.len() == before {
                continue;
            }
            sh.index.clear();
            for (i, s) in sh.slots.iter().enumerate() {
                sh.index.insert(s.key.clone(), i as u32);
            }
            if sh.slots.capacity() > 2 * sh.slots.len() + 64 {
                sh.slots.shrink_to_fit();
                sh.index.shrink_to_fit();
            }
        }
    }

    /// Keys held.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|m| m.lock().unwrap_or_else(|e| e.into_inner()).slots.len())
            .sum()
    }
}
