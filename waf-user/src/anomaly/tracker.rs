//! The live side: every source's current window, scored at its
//! checkpoints; in `monitor` mode, a reservoir of clean-looking windows to
//! relearn from.
//!
//! Memory is bounded: at most [`MAX_SOURCES`] windows (16 shards, each a
//! table and a slot array: about 200 bytes a source, 13 MB at the cap), and
//! [`RESERVOIR`] vectors. When a shard is full, a new source takes the slot
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

/// Every source's window, scored at checkpoints. `Send + Sync`; the proxy
/// shares one.
pub struct Tracker {
    mode: AnomalyMode,
    params: Params,
    threshold: f64,
    epoch: Instant,
    hasher: RandomState,
    shards: Box<[Mutex<Shard>]>,
    model: ArcSwapOption<Model>,
    reservoir: Mutex<Reservoir>,
    /// Counters.
    pub stats: TrackerStats,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Tracker {
    /// A tracker for `cfg`, scoring with `model` if given. The model's
    /// window and `min_requests` win over the config's (its features were
    /// counted so; [`AnomalyConfig::check_model`] refuses a mismatch).
    pub fn new(cfg: &AnomalyConfig, model: Option<Model>) -> Self {
        let params = model.as_ref().map_or(
            Params {
                window_secs: cfg.window_secs().max(1),
                min_requests: cfg.min_requests.max(1),
            },
            Model::params,
        );
        let hasher = RandomState::new();
        let seed = hasher.hash_one(0u64);
        Self {
            mode: cfg.mode,
            params,
            threshold: cfg.threshold,
            epoch: Instant::now(),
            shards: (0..SHARDS)
                .map(|i| {
                    Mutex::new(Shard {
                        rng: seed ^ i as u64,
                        ..Shard::default()
                    })
                })
                .collect(),
            hasher,
            model: ArcSwapOption::new(model.map(Arc::new)),
            reservoir: Mutex::new(Reservoir {
                rng: seed.rotate_left(17),
                ..Reservoir::default()
            }),
            stats: TrackerStats::default(),
        }
    }

    fn secs(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.epoch).as_secs()
    }

    fn shard(&self, source: &IpNet) -> &Mutex<Shard> {
        &self.shards[(self.hasher.hash_one(source) % SHARDS as u64) as usize]
    }

    /// Counts one request of `source` (an address, or its IPv6 /64); at a
    /// checkpoint, scores the window and returns a flag at or above the
    /// threshold. Off mode: nothing.
    pub fn observe(&self, source: IpNet, now: Instant, obs: &Observation<'_>) -> Option<Flag> {
        if self.mode == AnomalyMode::Off {
            return None;
        }
        let t = self.secs(now);
        let v = {
            let mut shard = lock(self.shard(&source));
            let w = shard.window(source, &self.params, t, MAX_SOURCES / SHARDS);
            w.observe(&self.params, t, obs, &self.hasher)?
        };
        let model = self.model.load_full();
        let learn = self.mode == AnomalyMode::Monitor;
        let Some(model) = model else {
            if learn {
                lock(&self.reservoir).offer(self.hasher.hash_one(source), v);
            }
            return None;
        };
        self.stats.scored.fetch_add(1, Ordering::Relaxed);
        let score = model.score(&v);
        if score >= self.threshold {
            self.stats.flagged.fetch_add(1, Ordering::Relaxed);
            return Some(model.explain(&v, score));
        }
        if learn && score < self.threshold - RESERVOIR_MARGIN {
            lock(&self.reservoir).offer(self.hasher.hash_one(source), v);
        }
        None
    }

    /// Drops the windows that are over (call it every few seconds to a
    /// minute: a window over is also restarted by its source's next
    /// request).
    pub fn retain_recent(&self, now: Instant) {
        let t = self.secs(now);
        for s in self.shards.iter() {
            lock(s).retain(&self.params, t);
        }
    }

    /// Sources with a window.
    pub fn tracked(&self) -> usize {
        self.shards.iter().map(|s| lock(s).slots.len()).sum()
    }

    /// Windows evicted for a new source, so far.
    pub fn evicted(&self) -> u64 {
        self.shards.iter().map(|s| lock(s).evicted).sum()
    }

    /// The model in use.
    pub fn model(&self) -> Option<Arc<Model>> {
        self.model.load_full()
    }

    /// Scores with `model` from now on. Refused when its features were
    /// counted with another window or `min_requests`.
    pub fn set_model(&self, model: Model) -> Result<(), String> {
        if model.params() != self.params {
            return Err(format!(
                "the model's window ({}s, min_requests {}) is not the tracker's ({}s, {})",
                model.params().window_secs,
                model.params().min_requests,
                self.params.window_secs,
                self.params.min_requests
            ));
        }
        self.model.store(Some(Arc::new(model)));
        Ok(())
    }

    /// Vectors in the reservoir.
    pub fn reservoir_len(&self) -> usize {
        lock(&self.reservoir).items.len()
    }

    /// Learns a model from the reservoir (`monitor` mode), or None when it
    /// holds too little (fewer than 64 windows or 16 sources). Takes a
    /// second or so: call it off the async workers, then
    /// [`Tracker::set_model`] and [`Model::save`] it. The reservoir is kept
    /// (the next relearn sees old and new windows alike).
    pub fn relearn(&self) -> Option<Model> {
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
        Model::train(&items, self.params, on).ok()
    }
}
