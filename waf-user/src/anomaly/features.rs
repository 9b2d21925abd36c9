//! A source's window and the features read from it.
//!
//! A window starts at a source's first request and lasts `window` seconds;
//! the first request after it starts the next one. It is read (a
//! *checkpoint*) when its count reaches `min_requests`, then each time the
//! count doubles (10, 20, 40, ...): a source is scored a handful of times a
//! window, never on every request, and a burst is scored while it lasts.
//! Training (`waf learn`) reads windows at the same checkpoints, so the
//! model knows what a window looks like at each of them.
//!
//! A window is about 150 bytes whatever the source sends: distinct paths
//! and user agents are counted in bitmaps (linear counting), sections in 16
//! hashed counters. The hasher is the caller's: the tracker keys it at
//! random, so a client cannot choose paths that collide.

use std::hash::BuildHasher;

use super::Observation;

/// Number of features.
pub const N: usize = 9;

/// A window's features, in [`NAMES`] order, in their own units.
pub type Vector = [f64; N];

/// The features' names, as the baseline file and evidence write them.
pub const NAMES: [&str; N] = [
    "rate_per_min",
    "distinct_paths",
    "share_4xx",
    "share_404",
    "section_entropy",
    "user_agents",
    "share_non_get",
    "mean_bytes",
    "share_static",
];

/// Features that count something: the model reads them as `ln(1 + x)`, so
/// 10 against 100 weighs as 100 against 1,000.
const LOG_SCALED: [bool; N] = [true, true, false, false, false, true, false, true, false];

/// The largest value a feature takes (a bound for the model, far above
/// anything real).
const MAX_VALUE: f64 = 1e12;

/// Extensions of the files a browser fetches for a page.
const STATIC: &[&str] = &[
    "css", "js", "mjs", "map", "png", "jpg", "jpeg", "gif", "svg", "ico", "webp", "avif", "woff",
    "woff2", "ttf", "otf", "eot", "mp4", "webm",
];

/// Bits of the distinct-path bitmap.
const PATH_BITS: usize = 512;
/// Bits of the distinct-user-agent bitmap.
const AGENT_BITS: usize = 64;
/// Hashed counters of first path segments.
const SECTIONS: usize = 16;

/// The window and the checkpoints, shared by training and scoring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Params {
    /// The window's length in seconds.
    pub window_secs: u64,
    /// The first checkpoint's count.
    pub min_requests: u32,
}

/// A source's current window.
#[derive(Clone, Debug)]
pub struct Window {
    start: u64,
    count: u32,
    next_check: u32,
    c4xx: u32,
    c404: u32,
    non_get: u32,
    statics: u32,
    bytes: u64,
    paths: [u64; PATH_BITS / 64],
    agents: u64,
    sections: [u16; SECTIONS],
    /// Counted, never read: the source is another window's to read.
    muted: bool,
    /// Checkpoints read so far.
    checks: u32,
}

impl Window {
    /// An empty window starting at `now` (seconds on the caller's clock).
    pub fn new(p: &Params, now: u64) -> Self {
        Self {
            start: now,
            count: 0,
            next_check: p.min_requests.max(1),
            c4xx: 0,
            c404: 0,
            non_get: 0,
            statics: 0,
            bytes: 0,
            paths: [0; PATH_BITS / 64],
            agents: 0,
            sections: [0; SECTIONS],
            muted: false,
            checks: 0,
        }
    }

    /// When the window started.
    pub fn start(&self) -> u64 {
        self.start
    }

    /// Requests counted so far.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// Checkpoints read so far (1 at the window's first).
    pub fn checks(&self) -> u32 {
        self.checks
    }

    /// Whether the window is over at `now`.
    pub fn expired(&self, p: &Params, now: u64) -> bool {
        now >= self.start.saturating_add(p.window_secs)
    }

    /// Counts one request at `now`, starting a new window first if this one
    /// is over; returns the features when this request is a checkpoint.
    pub fn observe(
        &mut self,
        p: &Params,
        now: u64,
        obs: &Observation<'_>,
        hasher: &impl BuildHasher,
    ) -> Option<Vector> {
        self.observe_muted(p, now, obs, hasher, false, 0)
    }

    /// [`Window::observe`]; with `mute`, this window (the one this request
    /// counts in, new if the last is over) is never read again: a long
    /// window is muted once the source sends enough for the short window
    /// to read it (the long window is for the sources too slow for it).
    /// A checkpoint waits until the window is `min_age` seconds old (the
    /// next request from then is read): the long window waits out the
    /// short one, so a fast source is muted before its long window is ever
    /// read, and the long window learns and scores the slow sources only.
    pub fn observe_muted(
        &mut self,
        p: &Params,
        now: u64,
        obs: &Observation<'_>,
        hasher: &impl BuildHasher,
        mute: bool,
        min_age: u64,
    ) -> Option<Vector> {
        if self.expired(p, now) {
            *self = Window::new(p, now);
        }
        self.muted |= mute;
        self.count = self.count.saturating_add(1);
        if (400..500).contains(&obs.status) {
            self.c4xx += 1;
            if obs.status == 404 {
                self.c404 += 1;
            }
        }
        if !matches!(obs.method, "GET" | "HEAD") {
            self.non_get += 1;
        }
        if is_static(obs.path) {
            self.statics += 1;
        }
        self.bytes = self.bytes.saturating_add(obs.bytes);
        let h = hasher.hash_one(obs.path);
        let bit = (h % PATH_BITS as u64) as usize;
        self.paths[bit / 64] |= 1 << (bit % 64);
        self.agents |= 1 << (hasher.hash_one(obs.user_agent) % AGENT_BITS as u64);
        let si = (hasher.hash_one(section(obs.path)) % SECTIONS as u64) as usize;
        if self.sections[si] == u16::MAX {
            // Halve them all: the proportions (what entropy reads) stay.
            self.sections.iter_mut().for_each(|c| *c /= 2);
        }
        self.sections[si] += 1;
        if self.count >= self.next_check
            && self.count < u32::MAX
            && now.saturating_sub(self.start) >= min_age
        {
            self.next_check = self.count.saturating_mul(2);
            if self.muted {
                return None;
            }
            self.checks += 1;
            return Some(self.features(p, now));
        }
        None
    }

    /// The features as they stand at `now`.
    pub fn features(&self, p: &Params, now: u64) -> Vector {
        let n = f64::from(self.count.max(1));
        // At least a minute (or the window, if shorter): a browser loads a
        // page and its assets within a second, which is no rate.
        let floor = p.window_secs.clamp(1, 60);
        let elapsed = now.saturating_sub(self.start).max(floor) as f64;
        let paths_zero: u32 = self.paths.iter().map(|w| w.count_zeros()).sum();
        let mut v = [
            n * 60.0 / elapsed,
            linear_count(PATH_BITS, paths_zero).min(n),
            f64::from(self.c4xx) / n,
            f64::from(self.c404) / n,
            entropy(&self.sections),
            linear_count(AGENT_BITS, self.agents.count_zeros()).min(n),
            f64::from(self.non_get) / n,
            self.bytes as f64 / n,
            f64::from(self.statics) / n,
        ];
        for x in &mut v {
            *x = if x.is_finite() {
                x.clamp(0.0, MAX_VALUE)
            } else {
                0.0
            };
        }
        v
    }
}

/// The distinct items a bitmap of `bits` bits with `zeros` bits unset saw
/// (linear counting: `-m ln(zeros / m)`, rounded; a full bitmap reads as
/// `m ln m`).
fn linear_count(bits: usize, zeros: u32) -> f64 {
    let m = bits as f64;
    let z = f64::from(zeros.max(1)).min(m);
    (-m * (z / m).ln()).round()
}

/// Shannon entropy (bits) of counters.
fn entropy(counts: &[u16]) -> f64 {
    let total: f64 = counts.iter().map(|&c| f64::from(c)).sum();
    if total <= 0.0 {
        return 0.0;
    }
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / total;
            -p * p.log2()
        })
        .sum()
}

/// The first segment of a path: `/blog/a` is `blog`, `/` is empty.
pub fn section(path: &str) -> &str {
    let p = path.strip_prefix('/').unwrap_or(path);
    p.split('/').next().unwrap_or("")
}

/// Whether a path names a static asset (by its last segment's extension).
pub fn is_static(path: &str) -> bool {
    let last = path.rsplit('/').next().unwrap_or("");
    match last.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() && ext.len() <= 5 => {
            STATIC.iter().any(|s| s.eq_ignore_ascii_case(ext))
        }
        _ => false,
    }
}

/// The grid the model's values lie on (1/64: exact in binary).
const GRID: f64 = 64.0;

/// The features as the model reads them: counts log-scaled, everything
/// finite, bounded (0 to 28) and on a grid of 1/64.
///
/// The grid matters: growing a tree draws each cut with rand 0.8's
/// `Uniform::new(low, high)`, which loops about `high / (high - low)`
/// times, so two values a few ULPs apart (a rate of 2 against
/// 2.0000000000000004) would stall training for years. On the grid, two
/// distinct values are at least 1/64 apart: at most about 900 rounds.
pub fn to_model(raw: &Vector) -> Vector {
    let mut v = *raw;
    for (x, log) in v.iter_mut().zip(LOG_SCALED) {
        let c = if x.is_finite() {
            x.clamp(0.0, MAX_VALUE)
        } else {
            0.0
        };
        let y = if log { c.ln_1p() } else { c };
        *x = (y * GRID).round() / GRID;
    }
    v
}

/// Formats a feature's value for people: counts whole, shares and entropy
/// with two decimals, rates with one.
pub fn show(i: usize, x: f64) -> String {
    match NAMES.get(i).copied() {
        Some("distinct_paths" | "user_agents" | "mean_bytes") => format!("{x:.0}"),
        Some("rate_per_min") => format!("{x:.1}"),
        _ => format!("{x:.2}"),
    }
}

#[cfg(test)]
mod tests {
    use std::hash::BuildHasherDefault;

    use proptest::prelude::*;

    use super::*;

    type Fixed = BuildHasherDefault<std::collections::hash_map::DefaultHasher>;

    const P: Params = Params {
        window_secs: 300,
        min_requests: 10,
    };

    fn obs<'a>(method: &'a str, path: &'a str, status: u16, ua: &'a str) -> Observation<'a> {
        Observation {
            method,
            path,
            status,
            user_agent: ua,
            bytes: 0,
        }
    }

    #[test]
    fn checkpoints_at_min_requests_then_each_doubling() {
        let mut w = Window::new(&P, 0);
        let h = Fixed::default();
        let mut at = vec![];
        for i in 1..=100u32 {
            if w.observe(&P, u64::from(i), &obs("GET", "/", 200, "a"), &h)
                .is_some()
            {
                at.push(i);
            }
        }
        assert_eq!(at, [10, 20, 40, 80]);
        // The next request after the window is over starts a new one.
        assert!(w.observe(&P, 301, &obs("GET", "/", 200, "a"), &h).is_none());
        assert_eq!((w.start(), w.count()), (301, 1));
    }

    #[test]
    fn a_scanner_and_a_browser_read_differently() {
        let h = Fixed::default();
        let mut scan = Window::new(&P, 0);
        let paths: Vec<String> = (0..40).map(|i| format!("/probe{i}/x.php")).collect();
        let mut last = None;
        for (i, p) in paths.iter().enumerate() {
            let status = if i % 10 == 0 { 403 } else { 404 };
            last = scan
                .observe(&P, i as u64, &obs("GET", p, status, "zgrab"), &h)
                .or(last);
        }
        let v = last.unwrap();
        assert_eq!(v[0], 40.0, "40 requests in the first minute: {v:?}");
        assert!((35.0..=40.0).contains(&v[1]), "{v:?}");
        assert_eq!((v[2], v[3]), (1.0, 0.9));
        assert!(v[4] > 3.0, "probes spread over sections: {v:?}");
        assert_eq!(v[5], 1.0);

        let mut page = Window::new(&P, 0);
        let assets = [
            "/blog/post",
            "/static/app.css",
            "/static/app.js",
            "/static/logo.svg",
            "/favicon.ico",
            "/img/a.webp",
            "/img/b.webp",
            "/api/session",
            "/api/events",
            "/fonts/x.woff2",
        ];
        let mut v = None;
        for (i, p) in assets.iter().enumerate() {
            let m = if p.ends_with("events") { "POST" } else { "GET" };
            v = page.observe(&P, i as u64 / 5, &obs(m, p, 200, "Mozilla"), &h);
        }
        let v = v.unwrap();
        assert_eq!((v[2], v[3], v[6]), (0.0, 0.0, 0.1));
        assert_eq!(v[8], 0.7, "seven assets of ten: {v:?}");
        assert!(v[4] < 2.6, "{v:?}");
    }

    #[test]
    fn the_rate_has_a_floor_of_a_minute() {
        let h = Fixed::default();
        let mut w = Window::new(&P, 1000);
        let mut v = None;
        for i in 0..20 {
            v = w
                .observe(&P, 1000 + i * 12, &obs("GET", "/", 200, "a"), &h)
                .or(v);
        }
        // The 20th request came 228 s in: 20 / 3.8 min.
        let v = v.unwrap();
        assert!((v[0] - 20.0 * 60.0 / 228.0).abs() < 1e-9, "{v:?}");
    }

    #[test]
    fn static_and_sections() {
        assert!(is_static("/static/app.9f3c.js"));
        assert!(is_static("/a/B.PNG"));
        assert!(!is_static("/.css"));
        assert!(!is_static("/a.php"));
        assert!(!is_static("/css/"));
        assert_eq!(section("/blog/a/b"), "blog");
        assert_eq!(section("/"), "");
        assert_eq!(section("x"), "x");
    }

    #[test]
    fn linear_counting_is_close() {
        let h = Fixed::default();
        for n in [1usize, 10, 100, 1000] {
            let mut w = Window::new(&P, 0);
            for i in 0..n {
                let p = format!("/p/{i}");
                w.observe(&P, 0, &obs("GET", &p, 200, "a"), &h);
            }
            let est = w.features(&P, 0)[1];
            let err = (est - n as f64).abs() / n as f64;
            assert!(err < 0.1, "{n}: {est}");
        }
    }

    #[test]
    fn section_counters_halve_rather_than_overflow() {
        let h = Fixed::default();
        let p = Params {
            window_secs: 3600,
            min_requests: 5,
        };
        let mut w = Window::new(&p, 0);
        for i in 0..200_000u32 {
            let path = if i % 2 == 0 { "/a" } else { "/b/c" };
            w.observe(&p, 1, &obs("GET", path, 200, "a"), &h);
        }
        let v = w.features(&p, 1);
        assert!((v[4] - 1.0).abs() < 0.01 || v[4] == 0.0, "{v:?}");
    }

    proptest! {
        #[test]
        fn any_traffic_gives_finite_bounded_features(
            reqs in proptest::collection::vec(
                (".{0,12}", "\\PC{0,30}", any::<u16>(), ".{0,20}", any::<u64>(), 0u64..4000),
                1..300),
            window in 1u64..4000, min in 1u32..50,
        ) {
            let p = Params { window_secs: window, min_requests: min };
            let h = Fixed::default();
            let mut w = Window::new(&p, 0);
            for (m, path, status, ua, bytes, t) in &reqs {
                let o = Observation { method: m, path, status: *status, user_agent: ua, bytes: *bytes };
                let raw = w.observe(&p, *t, &o, &h).unwrap_or_else(|| w.features(&p, *t));
                let v = to_model(&raw);
                prop_assert!(raw.iter().chain(v.iter()).all(|x| x.is_finite() && *x >= 0.0));
                prop_assert!(raw[2] <= 1.0 && raw[3] <= raw[2] && raw[6] <= 1.0 && raw[8] <= 1.0);
                prop_assert!(raw[4] <= 4.0 + 1e-9);
            }
        }
    }
}
