//! Access logs replayed: the windows of a log, for learning (`waf learn`),
//! and a log scored by the [`Tracker`] the proxy uses (`waf anomaly`).
//! Time is the lines' (seconds); sources are addresses, IPv6 ones
//! aggregated to their /64 as the proxy does.

use std::{
    collections::{HashMap, hash_map::DefaultHasher},
    hash::BuildHasherDefault,
    net::IpAddr,
    time::{Duration, Instant},
};

use ipnet::IpNet;

use super::{
    Flag, Observation, Tracker,
    features::{Params, Vector, Window},
    logline::{self, Record},
};

/// The most checkpoints kept to learn from (a uniform sample beyond).
pub const MAX_SAMPLES: usize = 100_000;
/// How often (log seconds) windows that are over are dropped.
const SWEEP_SECS: u64 = 60;
/// How far back lines may go before the first line's time (the writer logs
/// a request when it completes).
const DISORDER_SECS: u64 = 3600;

/// What a replay read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Lines read.
    pub lines: u64,
    /// Lines that are none of the formats (or not UTF-8, or too long).
    pub skipped: u64,
    /// Distinct sources.
    pub sources: u64,
    /// Windows that reached a checkpoint.
    pub windows: u64,
    /// Checkpoints.
    pub checkpoints: u64,
}

impl Summary {
    /// Counts a line that could not be read (not UTF-8, too long).
    fn skip(&mut self) {
        self.lines += 1;
        self.skipped += 1;
    }

    /// Counts a line and parses it (None, counted as skipped: none of the
    /// formats).
    fn read(&mut self, line: &str) -> Option<logline::Record> {
        self.lines += 1;
        let r = logline::parse(line);
        if r.is_none() {
            self.skipped += 1;
        }
        r
    }
}

/// A client's source: the address, or its /64 for IPv6.
pub fn source_of(ip: IpAddr) -> IpNet {
    let prefix = if ip.is_ipv4() { 32 } else { 64 };
    IpNet::new(ip, prefix).map_or(IpNet::from(ip), |n| n.trunc())
}

/// A record as the tracker reads it (the canonical path).
fn observation<'a>(r: &'a Record, path: &'a str) -> Observation<'a> {
    Observation {
        method: &r.method,
        path,
        status: r.status,
        user_agent: &r.user_agent,
        bytes: r.bytes,
    }
}

/// Each source's short window: its start and count.
type Starts = HashMap<IpNet, (u64, u32)>;

/// Gathers a log's checkpoints to learn from. Memory: the windows of the
/// sources active in the last window (older ones are dropped every minute
/// of log time), a number per distinct source (about 40 bytes each), and
/// at most [`MAX_SAMPLES`] checkpoints.
pub struct Learner {
    params: Params,
    /// The short window a long window's learner mutes by (see
    /// [`Window::observe_muted`]): each source's window start and count.
    gate: Option<(Params, Starts)>,
    hasher: BuildHasherDefault<DefaultHasher>,
    ids: HashMap<IpNet, u64>,
    windows: HashMap<IpNet, Window>,
    samples: Vec<(u64, Vector)>,
    summary: Summary,
    last_sweep: u64,
    rng: u64,
}

impl Learner {
    /// A learner counting windows with `params`.
    pub fn new(params: Params) -> Self {
        Self {
            params,
            gate: None,
            hasher: Default::default(),
            ids: HashMap::new(),
            windows: HashMap::new(),
            samples: Vec::new(),
            summary: Summary::default(),
            last_sweep: 0,
            rng: 0x5eed,
        }
    }

    /// A learner of the long window `params`, whose windows are muted as
    /// the tracker mutes them: once the source sends `short.min_requests`
    /// within a `short` window.
    pub fn long(params: Params, short: Params) -> Self {
        Self {
            gate: Some((short, HashMap::new())),
            ..Self::new(params)
        }
    }

    /// Counts a line that could not be read (not UTF-8, too long).
    pub fn skip(&mut self) {
        self.summary.skip();
    }

    /// Reads one line.
    pub fn line(&mut self, line: &str) {
        let Some(r) = self.summary.read(line) else {
            return;
        };
        let source = source_of(r.remote);
        let next_id = self.ids.len() as u64;
        let id = *self.ids.entry(source).or_insert(next_id);
        if r.time >= self.last_sweep + SWEEP_SECS {
            let p = self.params;
            self.windows.retain(|_, w| !w.expired(&p, r.time));
            if let Some((g, starts)) = &mut self.gate {
                let secs = g.window_secs;
                starts.retain(|_, (start, _)| r.time < start.saturating_add(secs));
            }
            self.last_sweep = r.time;
        }
        let fast = self.gate.as_mut().is_some_and(|(g, starts)| {
            let (start, count) = starts.entry(source).or_insert((r.time, 0));
            if r.time >= start.saturating_add(g.window_secs) {
                (*start, *count) = (r.time, 0);
            }
            *count = count.saturating_add(1);
            *count >= g.min_requests
        });
        let path = crate::http::CanonicalPath::from_target(&r.target).path;
        let p = self.params;
        let w = self
            .windows
            .entry(source)
            .or_insert_with(|| Window::new(&p, r.time));
        let min_age = self.gate.as_ref().map_or(0, |(g, _)| g.window_secs);
        let o = observation(&r, &path);
        if let Some(v) = w.observe_muted(&p, r.time, &o, &self.hasher, fast, min_age) {
            if w.checks() == 1 {
                self.summary.windows += 1;
            }
            self.summary.checkpoints += 1;
            self.keep(id, v);
        }
    }

    /// Reservoir sampling past [`MAX_SAMPLES`].
    fn keep(&mut self, id: u64, v: Vector) {
        if self.samples.len() < MAX_SAMPLES {
            self.samples.push((id, v));
            return;
        }
        // xorshift64*: deterministic, so a log learns the same sample.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        let j = self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D) % self.summary.checkpoints;
        if let Some(slot) = self.samples.get_mut(j as usize) {
            *slot = (id, v);
        }
    }

    /// The checkpoints (each with its source's number) and the summary.
    pub fn finish(mut self) -> (Vec<(u64, Vector)>, Summary) {
        self.summary.sources = self.ids.len() as u64;
        (self.samples, self.summary)
    }
}

/// A source of a scored log.
#[derive(Clone, Debug)]
pub struct Scored {
    /// Its requests.
    pub requests: u64,
    /// Its first flag.
    pub first: Option<Flag>,
    /// Its highest-scoring flag.
    pub worst: Option<Flag>,
    /// Flagged checkpoints.
    pub flags: u32,
    /// The highest score flagged over the window, and over the long
    /// window (0: none).
    pub worst_by_window: [f64; 2],
}

/// Replays a log through a tracker.
pub struct Scorer<'t> {
    tracker: &'t Tracker,
    short_secs: u64,
    base: Instant,
    t0: Option<u64>,
    last_sweep: u64,
    /// Per source.
    pub sources: HashMap<IpNet, Scored>,
    /// What was read.
    pub summary: Summary,
}

impl<'t> Scorer<'t> {
    /// A replay through `tracker` (which should be new: its clock starts
    /// at the log's first line).
    pub fn new(tracker: &'t Tracker) -> Self {
        Self {
            tracker,
            short_secs: tracker.params()[0].window_secs,
            base: Instant::now(),
            t0: None,
            last_sweep: 0,
            sources: HashMap::new(),
            summary: Summary::default(),
        }
    }

    /// Counts a line that could not be read.
    pub fn skip(&mut self) {
        self.summary.skip();
    }

    /// Reads one line.
    pub fn line(&mut self, line: &str) {
        let Some(r) = self.summary.read(line) else {
            return;
        };
        let t0 = *self
            .t0
            .get_or_insert_with(|| r.time.saturating_sub(DISORDER_SECS));
        let offset = r.time.saturating_sub(t0);
        let now = self.base + Duration::from_secs(offset);
        if offset >= self.last_sweep + SWEEP_SECS {
            self.tracker.retain_recent(now);
            self.last_sweep = offset;
        }
        let source = source_of(r.remote);
        let path = crate::http::CanonicalPath::from_target(&r.target).path;
        let flag = self.tracker.observe(source, now, &observation(&r, &path));
        let s = self.sources.entry(source).or_insert(Scored {
            requests: 0,
            first: None,
            worst: None,
            flags: 0,
            worst_by_window: [0.0; 2],
        });
        s.requests += 1;
        if let Some(f) = flag {
            s.flags += 1;
            let i = usize::from(f.window_secs != self.short_secs);
            s.worst_by_window[i] = s.worst_by_window[i].max(f.score);
            if s.worst.as_ref().is_none_or(|w| f.score > w.score) {
                s.worst = Some(f.clone());
            }
            s.first.get_or_insert(f);
        }
    }

    /// The summary, with sources counted.
    pub fn summary(&self) -> Summary {
        Summary {
            sources: self.sources.len() as u64,
            checkpoints: self
                .tracker
                .stats
                .scored
                .load(std::sync::atomic::Ordering::Relaxed),
            ..self.summary
        }
    }
}
