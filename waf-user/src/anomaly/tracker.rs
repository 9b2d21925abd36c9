//! The live side: every source's current window, scored at its
//! checkpoints; in `monitor` mode, a reservoir of clean-looking windows to
//! relearn from.
//!
//! Two tiers: the window (`window`) and, unless off, the long window
//! (`long_window`), each with its own windows, checkpoints, reservoir and
//! model (the baseline's and its long model), each flagged from its own
//! threshold. A long window stops being read once its source sends
//! `min_requests` within a window: such a source is the window's to read
//! (a busy shared address read over an hour looks like a scraper); its
//! first checkpoint waits until it is a window old, so only slow sources
//! are read over the long window.
//!
//! Memory is bounded: per tier at most [`MAX_SOURCES`] windows (16 shards,
//! each a table and a slot array: about 200 bytes a source, 13 MB at the
//! cap), and [`RESERVOIR`] vectors. When a shard is full, a new source takes the slot
//! of the source with the fewest requests among [`EVICTION_SAMPLE`] drawn
//! at random (ties: the oldest window). A window with few requests has
//! little to lose and is far from a checkpoint, so an attacker rotating
//! addresses mostly evicts his own one-request windows, and sources that
//! sent enough to be scored keep their windows; drawing at random keeps
//! that O(1) and unpredictable.
//!
//! Poisoning: what `monitor` mode learns is what it saw, attackers
//! included. A window enters the reservoir only when the current model
//! scored it below `threshold - 0.05`, so an attacker must already look
//! ordinary to be learned; no source keeps more than 2% of the reservoir at
//! a relearn; and a relearn needs [`super::model::MIN_SOURCES`] sources.
//! An attacker who stays just inside the boundary across many relearns can
//! still push it outwards a step each time: relearn seldom (hours), watch
//! `threshold_hint` move, and keep a baseline learned from a log you
//! checked to go back to. Without a model (the first hours in `monitor`
//! mode with no baseline) every window enters: that first model is only as
//! clean as the traffic was.

use std::{
    collections::HashMap,
    hash::{BuildHasher, RandomState},
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicU64, Ordering},
    },
    time::Instant,
};

use arc_swap::ArcSwapOption;
use ipnet::IpNet;

use super::{
    AnomalyConfig, AnomalyMode, Flag, Model, Observation,
    features::{Params, Vector, Window},
    model::{MIN_SOURCES, TrainedOn},
};

/// The most sources tracked at once.
pub const MAX_SOURCES: usize = 65_536;
/// Shards (each behind its own lock).
const SHARDS: usize = 16;
/// Slots drawn when a full shard takes a new source.
pub const EVICTION_SAMPLE: usize = 8;
/// Vectors kept to relearn from.
pub const RESERVOIR: usize = 8192;
/// How far below the threshold a window must score to enter the
/// reservoir.
const RESERVOIR_MARGIN: f64 = 0.05;
/// The largest share of the reservoir one source keeps at a relearn.
const MAX_SOURCE_SHARE: f64 = 0.02;

#[derive(Default)]
struct Shard {
    index: HashMap<IpNet, u32>,
    slots: Vec<(IpNet, Window)>,
    rng: u64,
    evicted: u64,
}

/// splitmix64: the shard's draws (not for secrets).
fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Shard {
    /// The window of `source`, made (evicting if full) if new.
    fn window(&mut self, source: IpNet, p: &Params, now: u64, cap: usize) -> &mut Window {
        if let Some(&i) = self.index.get(&source) {
            return &mut self.slots[i as usize].1;
        }
        let fresh = Window::new(p, now);
        let i = if self.slots.len() < cap {
            self.slots.push((source, fresh));
            self.slots.len() - 1
        } else {
            let victim = (0..EVICTION_SAMPLE)
                .map(|_| (next(&mut self.rng) % self.slots.len() as u64) as usize)
                .min_by_key(|&i| (self.slots[i].1.count(), self.slots[i].1.start()))
                .unwrap_or(0);
            let old = std::mem::replace(&mut self.slots[victim], (source, fresh));
            self.index.remove(&old.0);
            self.evicted += 1;
            victim
        };
        self.index.insert(source, i as u32);
        &mut self.slots[i].1
    }

    /// Drops windows that are over.
    fn retain(&mut self, p: &Params, now: u64) {
        let mut i = 0;
        while i < self.slots.len() {
            if self.slots[i].1.expired(p, now) {
                let (gone, _) = self.slots.swap_remove(i);
                self.index.remove(&gone);
                if let Some(moved) = self.slots.get(i) {
                    self.index.insert(moved.0, i as u32);
                }
            } else {
                i += 1;
            }
        }
    }
}

/// Windows kept to relearn from (reservoir sampling: each clean window
/// seen has the same chance to be there).
#[derive(Default)]
struct Reservoir {
    items: Vec<(u64, Vector)>,
    seen: u64,
    rng: u64,
}

impl Reservoir {
    fn offer(&mut self, source: u64, v: Vector) {
        self.seen += 1;
        if self.items.len() < RESERVOIR {
            self.items.push((source, v));
        } else {
            let j = next(&mut self.rng) % self.seen;
            if (j as usize) < RESERVOIR {
                self.items[j as usize] = (source, v);
            }
        }
    }
}

/// Counters, for metrics.
#[derive(Debug, Default)]
pub struct TrackerStats {
    /// Checkpoints scored.
    pub scored: AtomicU64,
    /// Checkpoints flagged.
    pub flagged: AtomicU64,
    /// Windows evicted for a new source.
    pub evicted: AtomicU64,
}

/// One window length's state: windows, reservoir.
struct Tier {
    params: Params,
    shards: Box<[Mutex<Shard>]>,
    reservoir: Mutex<Reservoir>,
}

impl Tier {
    fn new(params: Params, seed: u64) -> Self {
        Self {
            params,
            shards: (0..SHARDS)
                .map(|i| {
                    Mutex::new(Shard {
                        rng: seed ^ i as u64,
                        ..Shard::default()
                    })
                })
                .collect(),
            reservoir: Mutex::new(Reservoir {
                rng: seed.rotate_left(17),
                ..Reservoir::default()
            }),
        }
    }

    /// Learns from the reservoir; None when it holds too little.
    fn relearn(&self, long: bool) -> Option<Model> {
        let mut items = lock(&self.reservoir).items.clone();
        // No source keeps more than its share.
        let cap = ((items.len() as f64 * MAX_SOURCE_SHARE).ceil() as usize).max(1);
        let mut per: HashMap<u64, usize> = HashMap::new();
        items.retain(|(s, _)| {
            let n = per.entry(*s).or_default();
            *n += 1;
            *n <= cap
        });
        if per.len() < MIN_SOURCES {
            return None;
        }
        let on = TrainedOn {
            sources: per.len() as u64,
            ..TrainedOn::default()
        };
        if long {
            Model::train_long(&items, self.params, on).ok()
        } else {
            Model::train(&items, self.params, on).ok()
        }
    }
}

/// Every source's windows, scored at checkpoints. `Send + Sync`; the proxy
/// shares one.
pub struct Tracker {
    mode: AnomalyMode,
    /// `threshold`, `long_threshold` (None: the model's hint).
    thresholds: [Option<f64>; 2],
    epoch: Instant,
    hasher: RandomState,
    /// The window's, then the long window's.
    tiers: Vec<Tier>,
    model: ArcSwapOption<Model>,
    /// Counters.
    pub stats: TrackerStats,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Tracker {
    /// A tracker for `cfg`, scoring with `model` if given. The model's
    /// windows and `min_requests` win over the config's (its features were
    /// counted so; [`AnomalyConfig::check_model`] refuses a mismatch); the
    /// long window is tracked when the config has one.
    pub fn new(cfg: &AnomalyConfig, model: Option<Model>) -> Self {
        let params = model.as_ref().map_or(cfg.params(), Model::params);
        let long = cfg.long_params().map(|p| {
            model
                .as_ref()
                .and_then(|m| m.long())
                .map_or(p, |l| l.params())
        });
        let hasher = RandomState::new();
        let seed = hasher.hash_one(0u64);
        let mut tiers = vec![Tier::new(params, seed)];
        if let Some(l) = long {
            tiers.push(Tier::new(l, seed.rotate_left(29)));
        }
        Self {
            mode: cfg.mode,
            thresholds: [cfg.threshold, cfg.long_threshold],
            epoch: Instant::now(),
            hasher,
            tiers,
            model: ArcSwapOption::new(model.map(Arc::new)),
            stats: TrackerStats::default(),
        }
    }

    fn secs(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.epoch).as_secs()
    }

    /// The shard a source's windows are in (the same index in each tier).
    fn shard_of(&self, source: &IpNet) -> usize {
        (self.hasher.hash_one(source) % SHARDS as u64) as usize
    }

    /// The threshold a tier's model flags from.
    fn threshold(&self, tier: usize, model: &Model) -> f64 {
        self.thresholds
            .get(tier)
            .copied()
            .flatten()
            .unwrap_or(model.threshold_hint())
    }

    /// Counts one request of `source` (an address, or its IPv6 /64) in
    /// each window; at a checkpoint, scores the window and returns a flag
    /// at or above its threshold (the higher score if both windows flag).
    /// Off mode: nothing.
    pub fn observe(&self, source: IpNet, now: Instant, obs: &Observation<'_>) -> Option<Flag> {
        if self.mode == AnomalyMode::Off {
            return None;
        }
        let t = self.secs(now);
        let mut flag: Option<Flag> = None;
        // Whether the window reads this source now: then the long window
        // does not, for the rest of its length.
        let mut fast = false;
        let at = self.shard_of(&source);
        for (i, tier) in self.tiers.iter().enumerate() {
            let v = {
                let mut shard = lock(&tier.shards[at]);
                let w = shard.window(source, &tier.params, t, MAX_SOURCES / SHARDS);
                // The long window waits out the window (see
                // `Window::observe_muted`).
                let min_age = if i == 0 {
                    0
                } else {
                    self.tiers[0].params.window_secs
                };
                let v = w.observe_muted(&tier.params, t, obs, &self.hasher, fast, min_age);
                fast = w.count() >= tier.params.min_requests;
                v
            };
            let Some(v) = v else { continue };
            if let Some(f) = self.score(i, tier, source, v)
                && flag.as_ref().is_none_or(|g| f.score > g.score)
            {
                flag = Some(f);
            }
        }
        flag
    }

    /// Scores a tier's checkpoint; keeps it to relearn from in `monitor`
    /// mode when it looks clean.
    fn score(&self, i: usize, tier: &Tier, source: IpNet, v: Vector) -> Option<Flag> {
        let learn = self.mode == AnomalyMode::Monitor;
        let top = self.model.load_full();
        let model = match (&top, i) {
            (Some(m), 0) => Some(m.as_ref()),
            (Some(m), _) => m.long().map(Arc::as_ref),
            (None, _) => None,
        };
        let Some(model) = model else {
            if learn {
                lock(&tier.reservoir).offer(self.hasher.hash_one(source), v);
            }
            return None;
        };
        self.stats.scored.fetch_add(1, Ordering::Relaxed);
        let score = model.score(&v);
        let threshold = self.threshold(i, model);
        if score >= threshold {
            self.stats.flagged.fetch_add(1, Ordering::Relaxed);
            return Some(model.explain(&v, score));
        }
        if learn && score < threshold - RESERVOIR_MARGIN {
            lock(&tier.reservoir).offer(self.hasher.hash_one(source), v);
        }
        None
    }

    /// Drops the windows that are over (call it every few seconds to a
    /// minute: a window over is also restarted by its source's next
    /// request).
    pub fn retain_recent(&self, now: Instant) {
        let t = self.secs(now);
        for tier in &self.tiers {
            for s in tier.shards.iter() {
                lock(s).retain(&tier.params, t);
            }
        }
    }

    /// Sources with a window (the long window's, if any: it holds every
    /// source the short one does, and longer).
    pub fn tracked(&self) -> usize {
        self.tiers.iter().map(Self::count).max().unwrap_or(0)
    }

    fn count(tier: &Tier) -> usize {
        tier.shards.iter().map(|s| lock(s).slots.len()).sum()
    }

    /// Windows evicted for a new source, so far (both windows).
    pub fn evicted(&self) -> u64 {
        self.tiers
            .iter()
            .flat_map(|t| t.shards.iter())
            .map(|s| lock(s).evicted)
            .sum()
    }

    /// The model in use.
    pub fn model(&self) -> Option<Arc<Model>> {
        self.model.load_full()
    }

    /// The windows tracked: the window's, and the long window's if any.
    pub fn params(&self) -> Vec<Params> {
        self.tiers.iter().map(|t| t.params).collect()
    }

    /// Scores with `model` from now on. Refused when its features were
    /// counted with another window or `min_requests` (its long model's
    /// against the long window, when both have one).
    pub fn set_model(&self, model: Model) -> Result<(), String> {
        let mismatch = |what: &str, m: Params, t: Params| {
            format!(
                "the model's {what} ({}s, min_requests {}) is not the tracker's ({}s, {})",
                m.window_secs, m.min_requests, t.window_secs, t.min_requests
            )
        };
        if model.params() != self.tiers[0].params {
            return Err(mismatch("window", model.params(), self.tiers[0].params));
        }
        if let (Some(l), Some(tier)) = (model.long(), self.tiers.get(1))
            && l.params() != tier.params
        {
            return Err(mismatch("long window", l.params(), tier.params));
        }
        self.model.store(Some(Arc::new(model)));
        Ok(())
    }

    /// Vectors in the reservoirs (the window's, the long window's).
    pub fn reservoir_len(&self) -> usize {
        self.tiers
            .iter()
            .map(|t| lock(&t.reservoir).items.len())
            .sum()
    }

    /// Learns a model from the reservoirs (`monitor` mode), or None when
    /// the window's holds too little (fewer than 64 windows or 16
    /// sources); the long window's model is learned when its reservoir
    /// holds enough, else the current one is kept. Takes a second or so:
    /// call it off the async workers, then [`Tracker::set_model`] and
    /// [`Model::save`] it. The reservoirs are kept (the next relearn sees
    /// old and new windows alike).
    pub fn relearn(&self) -> Option<Model> {
        let short = self.tiers[0].relearn(false)?;
        let long = match self.tiers.get(1) {
            Some(t) => t
                .relearn(true)
                .map(Arc::new)
                .or_else(|| self.model().and_then(|m| m.long().cloned())),
            None => None,
        };
        Some(short.with_long(long))
    }
}
