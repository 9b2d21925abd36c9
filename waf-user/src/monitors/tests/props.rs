//! Invariants against reference models, and hostile input.

use std::{
    collections::{HashMap, VecDeque},
    time::Instant,
};

use proptest::prelude::*;

use super::{ms, src};
use crate::monitors::{
    Monitors, MonitorsConfig, RequestFacts, headers,
    table::{Counter, Distinct, PAGES, Pages, SLOTS, Ticks},
};

fn monitors(text: &str) -> Monitors {
    let cfg: MonitorsConfig = toml::from_str(text).expect("toml");
    Monitors::new(&cfg).expect("valid")
}

/// The exact sliding window: per source, the times of the events since
/// its last hit; an event `window` old has left.
#[derive(Default)]
struct Reference {
    times: HashMap<u32, VecDeque<u64>>,
}

impl Reference {
    fn event(&mut self, s: u32, now: u64, window: u64, threshold: usize) -> bool {
        let q = self.times.entry(s).or_default();
        let now = now.max(q.back().copied().unwrap_or(0));
        while q.front().is_some_and(|&t| now - t >= window) {
            q.pop_front();
        }
        q.push_back(now);
        if q.len() >= threshold {
            q.clear();
            return true;
        }
        false
    }
}

/// Exact distinct paths per source: path -> last seen.
#[derive(Default)]
struct DistinctReference {
    seen: HashMap<u32, (u64, HashMap<u8, u64>)>,
}

impl DistinctReference {
    fn event(&mut self, s: u32, now: u64, path: u8, window: u64, threshold: usize) -> bool {
        let (last, m) = self.seen.entry(s).or_default();
        let now = now.max(*last);
        *last = now;
        m.retain(|_, &mut t| now - t < window);
        m.insert(path, now);
        if m.len() >= threshold {
            m.clear();
            return true;
        }
        false
    }
}

fn events() -> impl Strategy<Value = Vec<(u32, u64)>> {
    proptest::collection::vec((0u32..3, 0u64..1500), 1..300)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Up to 16 events a window, the counter is the exact sliding window:
    /// the same hits at the same events, source by source.
    #[test]
    fn counted_monitors_are_exact(
        count in 1u32..=16,
        window in 1u64..5000,
        evs in events(),
    ) {
        let m = monitors(&format!("[auth_failures]\ncount = {count}\nwindow = \"{window}ms\""));
        let t0 = Instant::now();
        let mut r = Reference::default();
        let mut now = 0;
        for (s, dt) in evs {
            now += dt;
            let got = m.on_response(src(s), ms(t0, now), "GET", "/", 401).len();
            let want = r.event(s, now, window, count as usize);
            prop_assert_eq!(got == 1, want, "at {} for {}", now, s);
        }
        prop_assert!(m.tracked() <= 3);
    }

    /// Distinct not-found paths, exactly.
    #[test]
    fn distinct_paths_are_exact(
        count in 1u32..=8,
        window in 1u64..5000,
        evs in proptest::collection::vec((0u32..3, 0u64..1500, 0u8..10), 1..300),
    ) {
        let m = monitors(&format!("[not_found]\ncount = {count}\nwindow = \"{window}ms\""));
        let t0 = Instant::now();
        let mut r = DistinctReference::default();
        let mut now = 0;
        for (s, dt, p) in evs {
            now += dt;
            let path = format!("/p/{p}");
            let got = m.on_response(src(s), ms(t0, now), "GET", &path, 404).len();
            let want = r.event(s, now, p, window, count as usize);
            prop_assert_eq!(got == 1, want, "at {} for {}", now, s);
        }
    }

    /// N calls within one window give floor(N / (count + 1)) hits, and a
    /// source's hits never depend on another source's calls.
    #[test]
    fn usage_hits_within_a_window(
        count in 1u32..50,
        n in 0usize..400,
        noise in proptest::collection::vec(0u32..5, 0..400),
    ) {
        let m = monitors(&format!("[usage]\nroutes = [\"/api/*\"]\ncount = {count}\nwindow = \"1h\""));
        let t0 = Instant::now();
        let mut hits = 0;
        for i in 0..n.max(noise.len()) {
            if i < n {
                let f = RequestFacts { method: "GET", path: "/api/x", http10: false, headers: &[], referer: None };
                hits += m.on_request(src(100), ms(t0, i as u64), &f).len();
            }
            if let Some(&s) = noise.get(i) {
                let f = RequestFacts { method: "GET", path: "/api/y", http10: false, headers: &[], referer: None };
                m.on_request(src(s), ms(t0, i as u64), &f);
            }
        }
        prop_assert_eq!(hits, n / (count as usize + 1));
    }

    /// Events spaced by the window or more never fire when count > 1.
    #[test]
    fn spaced_events_never_fire(
        count in 2u32..1000,
        window in 1u64..100_000,
        gaps in proptest::collection::vec(0u64..100_000, 1..200),
    ) {
        let m = monitors(&format!("[server_errors]\ncount = {count}\nwindow = \"{window}ms\""));
        let t0 = Instant::now();
        let mut now = 0;
        for g in gaps {
            now += window + g;
            prop_assert!(m.on_response(src(1), ms(t0, now), "GET", "/", 500).is_empty());
        }
    }

    /// Beyond 16 events a window the counter merges: it never holds more
    /// than 16 slots nor reaches its threshold without firing, and never
    /// fires before the window really held `threshold` events.
    #[test]
    fn merged_counters_never_fire_early(
        threshold in 17u64..2000,
        window in 16u64..100_000,
        gaps in proptest::collection::vec(0u64..500, 1..3000),
    ) {
        let t0 = Instant::now();
        let t = Ticks::new(std::time::Duration::from_millis(window));
        let mut c = Counter::new(t0);
        let mut real: VecDeque<u64> = VecDeque::new();
        let mut now = 0;
        for g in gaps {
            now += g;
            real.push_back(now);
            while real.front().is_some_and(|&x| now - x >= window) {
                real.pop_front();
            }
            let fired = c.record(ms(t0, now), &t, threshold);
            prop_assert!(c.slots() <= SLOTS);
            prop_assert!(c.held() < threshold);
            if let Some(n) = fired {
                prop_assert_eq!(n, threshold);
                prop_assert!(real.len() as u64 >= threshold, "{} < {}", real.len(), threshold);
                real.clear();
            }
        }
    }

    /// Distinct sets hold fewer keys than their threshold, page lists at
    /// most [`PAGES`].
    #[test]
    fn sets_stay_bounded(
        threshold in 1u64..=64,
        keys in proptest::collection::vec((0u32..200, 0u64..300), 1..500),
    ) {
        let t0 = Instant::now();
        let t = Ticks::new(std::time::Duration::from_secs(60));
        let (mut d, mut p) = (Distinct::new(t0), Pages::new(t0));
        let mut now = 0;
        for (k, dt) in keys {
            now += dt;
            if let Some(n) = d.record(ms(t0, now), &t, k, threshold, 64) {
                prop_assert_eq!(n, threshold);
            }
            prop_assert!((d.held() as u64) < threshold);
            p.record(ms(t0, now), &t, k);
            prop_assert!(p.held() <= PAGES);
            prop_assert!(p.since(ms(t0, now), &t, k).is_some());
        }
    }

    /// Whatever a client sends, nothing panics and evidence stays short.
    #[test]
    fn hostile_input_never_panics(
        path in ".{0,300}",
        method in "[A-Za-z]{0,8}",
        headers in proptest::collection::vec(("[A-Za-z-]{0,20}", ".{0,200}"), 0..12),
        referer in proptest::option::of(".{0,200}"),
        status in any::<u16>(),
        jumps in proptest::collection::vec(any::<i32>(), 1..20),
        http10 in any::<bool>(),
    ) {
        let m = monitors(
            "[usage]\nroutes = [\"*\"]\ncount = 1\n[not_found]\ncount = 1\n\
             [auth_failures]\ncount = 1\n[server_errors]\ncount = 1\n\
             [honeypot]\nfields = [\"f\"]\npaths = [\"/t*\"]\nmin_form_seconds = 3600\n\
             count = 1\n[headers]\ncount = 1",
        );
        let t0 = Instant::now() + std::time::Duration::from_secs(1 << 31);
        let h: Vec<(&str, &str)> = headers.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        let facts = RequestFacts {
            method: &method,
            path: &path,
            http10,
            headers: &h,
            referer: referer.as_deref(),
        };
        let mut at = t0;
        for j in jumps {
            let d = std::time::Duration::from_millis(u64::from(j.unsigned_abs()));
            at = if j < 0 { at - d } else { at + d };
            let mut hits = m.on_request(src(1), at, &facts);
            hits.extend(m.on_response(src(1), at, &method, &path, status));
            hits.extend(m.on_response(src(1), at, "GET", &path, 200));
            for hit in &hits {
                prop_assert!(hit.evidence.chars().count() <= crate::monitors::MAX_EVIDENCE);
                prop_assert!(!hit.evidence.chars().any(char::is_control));
            }
            m.retain_recent(at);
        }
        let _ = headers::judge(&h, http10);
        let _ = crate::monitors::honeypot::referer_path(referer.as_deref().unwrap_or(&path));
    }
}
