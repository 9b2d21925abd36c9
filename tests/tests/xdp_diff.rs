//! Differential test of the XDP program: the real `waf_xdp` under
//! BPF_PROG_TEST_RUN against the model in `waf_tests::xdp_model`, on random
//! frames (`xdp_fuzz::frames`, each also truncated) and random map states
//! (`xdp_fuzz::state`, written through `waf_user::dataplane` as the daemon
//! writes them).
//!
//! Asserted, per frame: the XDP action equals the model's, and a frame
//! whose source is allowlisted is never dropped (checked on its own,
//! whatever the model says). Per map state: the kernel's counter deltas
//! (packets and bytes, every index of `waf_common::counter`; samples sent
//! and lost together) equal the model's counts, and the sample records the
//! program wrote for the mirror equal the model's.
//!
//! `fuzz_xdp` runs with rate limits off: the limiter's state depends on
//! time, which the model does not see. `fuzz_xdp_rate` runs with rate
//! limits on, with bursts no source can exceed in a run (see
//! `state::unreachable_limits`), so every verdict is the same as without
//! them and the limiter's visible effect is its count of new sources; the
//! generator keeps sources out of rate sets that are full (an eviction
//! depends on the clock too).
//!
//! Environment: `WAF_FUZZ_CASES` frames (default 20,000; the limiter case
//! runs a tenth, at least 2,000), `WAF_FUZZ_SECONDS` a time budget,
//! `WAF_FUZZ_SEED` the seed to replay (printed by every run). Each test
//! ends with one line `fuzz xdp: cases N seconds S failures F seed X` (or
//! `fuzz xdp_rate: ...`); disagreements print the frame in hex, the map
//! state that matters for it and both verdicts.
//!
//! The program stays in the XDP dispatcher while the test runs
//! ([`DispatcherHold`]), as in `waf gen` and `bench xdp`.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    time::{Duration, Instant},
};

use aya::{
    maps::{MapData, RingBuf},
    programs::{TestRun as _, TestRunOptions, Xdp},
};
use waf_common::{Counter, HttpSample, counter, event_kind};
use waf_tests::{
    XDP_DROP, delta, require_root,
    xdp_fuzz::{
        frames::{FrameGen, variants},
        report::Disagreement,
        rng::Rng,
        state,
        universe::Universe,
    },
    xdp_model::{Counts, MapState, RateKey, RateTable, Sample, Verdict},
};
use waf_user::{
    dataplane::{Dataplane, LoadOptions, coarse_resolution_ns},
    r#gen::DispatcherHold,
};

/// Frames when `WAF_FUZZ_CASES` is not set.
const DEFAULT_CASES: u64 = 20_000;
/// Disagreements printed in full (all are counted).
const REPORTS: usize = 10;
/// One generated frame in this many is also sent cut at every offset.
const EVERY_OFFSET: usize = 50;

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let v = v.trim();
    match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => v.parse().ok(),
    }
}

#[test]
fn fuzz_xdp() {
    let cases = env_u64("WAF_FUZZ_CASES").unwrap_or(DEFAULT_CASES).max(1);
    Fuzz::new("xdp", false).run(cases);
}

#[test]
fn fuzz_xdp_rate() {
    let cases = env_u64("WAF_FUZZ_CASES").unwrap_or(DEFAULT_CASES) / 10;
    Fuzz::new("xdp_rate", true).run(cases.max(2_000));
}

/// The seed of this run: `WAF_FUZZ_SEED`, else from the clock.
fn seed() -> u64 {
    env_u64("WAF_FUZZ_SEED").unwrap_or_else(|| {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        t.as_nanos() as u64 ^ u64::from(std::process::id()).rotate_left(32)
    })
}

/// One frame sent in a state, with what the model said of it.
struct Sent {
    frame: Vec<u8>,
    src: Option<IpAddr>,
    verdict: Verdict,
    kernel: u32,
}

/// One run of a test: the program, the model's state and the tallies.
struct Fuzz {
    name: &'static str,
    seed: u64,
    rng: Rng,
    dp: Dataplane,
    events: RingBuf<MapData>,
    universe: Universe,
    state: MapState,
    /// With rate limits on: the IPv6 rate prefix and the limiter's table.
    limiter: Option<(u8, RateTable)>,
    tick: u64,
    frames: u64,
    /// The run's number of the current state's first frame.
    first: u64,
    states: u64,
    failures: u64,
    reports: Vec<String>,
}

impl Fuzz {
    fn new(name: &'static str, limiter: bool) -> Self {
        require_root();
        let seed = seed();
        println!("fuzz {name}: seed {seed:#x} (replay with WAF_FUZZ_SEED={seed:#x})");
        let mut rng = Rng::new(seed);
        let mut dp = Dataplane::load(&LoadOptions::default()).expect("load the XDP program");
        let events = dp.maps.events.take().expect("the ring buffer");
        let universe = Universe::new(&mut rng);
        // IPv6 sources counted per prefix: the common ones, or any.
        let prefix = match rng.below(4) {
            0 => 64,
            1 => 128,
            2 => 48,
            _ => rng.range(1, 128) as u8,
        };
        Self {
            name,
            seed,
            rng,
            dp,
            events,
            universe,
            state: MapState::default(),
            limiter: limiter.then(|| (prefix, RateTable::default())),
            tick: coarse_resolution_ns(),
            frames: 0,
            first: 0,
            states: 0,
            failures: 0,
            reports: Vec::new(),
        }
    }

    fn run(mut self, cases: u64) {
        let budget = env_u64("WAF_FUZZ_SECONDS").map(Duration::from_secs);
        let hold = DispatcherHold::new(&mut [self.dp.program().expect("program")]);
        if let Err(e) = &hold {
            println!(
                "fuzz {}: program not held in the XDP dispatcher ({e})",
                self.name
            );
        }
        let start = Instant::now();
        while self.frames < cases && budget.is_none_or(|b| start.elapsed() < b) {
            let n = (self.rng.range(200, 3000) as u64).min(cases - self.frames);
            self.state_round(n, start, budget);
        }
        drop(hold);
        let seconds = start.elapsed().as_secs_f64();
        let summary = format!(
            "fuzz {}: cases {} seconds {seconds:.2} failures {} seed {:#x}",
            self.name, self.frames, self.failures, self.seed
        );
        println!(
            "fuzz {}: {} map states, {:.0} frames/s",
            self.name,
            self.states,
            self.frames as f64 / seconds
        );
        println!("{summary}");
        assert!(
            self.failures == 0,
            "{summary}\n\n{}\nreplay: WAF_FUZZ_SEED={:#x} WAF_FUZZ_CASES={} cargo test --release \
             -p waf-tests --test xdp_diff -- --exact fuzz_{} --nocapture",
            self.reports.join("\n\n"),
            self.seed,
            self.frames,
            self.name
        );
    }

    /// Moves to a new map state, sends about `n` frames against it and
    /// compares.
    fn state_round(&mut self, n: u64, start: Instant, budget: Option<Duration>) {
        let now = self.dp.kernel_now_ns().expect("the program's clock");
        // The settings first: the exact IPv6 bans the ops write are keyed
        // by the prefix in force (a new prefix moves the ones there).
        let settings = state::settings(&mut self.rng, self.limiter.as_ref().map(|l| l.0));
        self.dp.maps.apply(&settings).expect("apply settings");
        let cfg = settings.to_config().expect("settings");
        self.state.monitor = settings.monitor;
        self.state.emergency = settings.emergency;
        self.state.rate = self.limiter.as_ref().map(|l| l.0);
        self.state.v6_prefix = settings.rate.v6_prefix;
        assert_eq!(self.dp.maps.v6_exact(), settings.rate.v6_prefix);
        let ops = state::ops(&mut self.rng, &self.universe, &self.state, now, self.tick);
        for op in &ops {
            state::write(&mut self.dp.maps, op).unwrap_or_else(|e| panic!("writing {op:?}: {e}"));
            state::apply(&mut self.state, op);
        }
        self.state.sample_ports = cfg.sample_ports;
        self.state.sample_bytes = cfg.sample_bytes;
        self.state.now = now;
        self.states += 1;
        self.first = self.frames;

        // Samples of frames run again by the checks of the last state.
        self.drain_samples();
        let before = self.dp.maps.counters().expect("counters");
        let mut model = Counts::default();
        let mut samples = Vec::new();
        let mut sent: Vec<Sent> = Vec::new();
        while (sent.len() as u64) < n && budget.is_none_or(|b| start.elapsed() < b) {
            let frame = self.next_frame();
            let left = (n as usize).saturating_sub(sent.len());
            for bytes in variants(&mut self.rng, &frame.bytes, EVERY_OFFSET)
                .into_iter()
                .take(left)
            {
                let verdict = self.state.verdict(&bytes);
                let new_source = match (&mut self.limiter, verdict.rate_key) {
                    (Some((_, table)), Some(key)) => table
                        .charge(key)
                        .unwrap_or_else(|e| panic!("the generator let a rate set fill: {e}")),
                    _ => false,
                };
                model.count(&verdict, bytes.len() as u64, new_source);
                if verdict.sampled {
                    samples.extend(Sample::expected(&bytes, self.state.sample_bytes));
                }
                let kernel = run(self.dp.program().expect("program"), &bytes);
                sent.push(Sent {
                    frame: bytes,
                    src: frame.src,
                    verdict,
                    kernel,
                });
            }
        }
        let after = self.dp.maps.counters().expect("counters");
        let kernel = delta(&before, &after);
        self.check_clock(now);
        self.frames += sent.len() as u64;
        // Samples first: the checks below run frames again.
        self.check_samples(&samples, &kernel);
        self.check_frames(&sent);
        self.check_counters(&model, &kernel, &sent);
    }

    /// A frame whose source, with the limiter on, keeps the rate table
    /// free of evictions.
    fn next_frame(&mut self) -> waf_tests::xdp_fuzz::frames::Frame {
        let g = FrameGen {
            universe: &self.universe,
            state: &self.state,
        };
        match &self.limiter {
            None => g.frame(&mut self.rng, |_, a| a),
            Some((prefix, table)) => g.frame(&mut self.rng, |rng, a| {
                let key = RateKey::of(a, *prefix);
                if !table.would_evict(key) {
                    return a;
                }
                match *rng.pick(table.set_members(key)) {
                    RateKey::V4(k) => IpAddr::V4(Ipv4Addr::from(k.to_ne_bytes())),
                    // Any address of the prefix has the same key.
                    RateKey::V6(k) => {
                        IpAddr::V6(Ipv6Addr::from(k | (rng.u128() & host_bits(*prefix))))
                    }
                }
            }),
        }
    }

    /// Expiries are chosen away from the run's clock: none may fall inside
    /// the state's run, or the model's answers would not hold.
    fn check_clock(&mut self, start: u64) {
        let end = self.dp.kernel_now_ns().expect("the program's clock");
        let inside = |e: u64| start < e && e <= end;
        let bad: Vec<String> = (self.state.bans.iter().map(|(a, e)| (a.to_string(), *e)))
            .chain(
                self.state
                    .prefix_bans
                    .iter()
                    .map(|(n, e)| (n.to_string(), *e)),
            )
            .filter(|(_, e)| inside(*e))
            .map(|(what, e)| format!("{what} expires at {e}"))
            .collect();
        assert!(
            bad.is_empty(),
            "bans expired while the state ran ({start}..={end}): {bad:?}"
        );
    }

    fn at(&self, frame: Option<usize>) -> String {
        let mut s = format!("seed {:#x}, map state {}", self.seed, self.states);
        if let Some(i) = frame {
            s += &format!(
                ", frame {i} of the state, {} of the run",
                self.first as usize + i
            );
        }
        s
    }

    fn fail(&mut self, report: String) {
        self.failures += 1;
        if self.reports.len() < REPORTS {
            println!("\n{report}\n");
            self.reports.push(report);
        }
    }

    /// Per frame: the action, and the allowlist invariant.
    fn check_frames(&mut self, sent: &[Sent]) {
        for (i, s) in sent.iter().enumerate() {
            let allowlisted = s.src.is_some_and(|a| self.state.allowed(a));
            let what = if allowlisted && s.kernel == XDP_DROP {
                "invariant broken: an allowlisted source was dropped"
            } else if s.kernel != s.verdict.action {
                "action differs"
            } else {
                continue;
            };
            let d = self.single(&s.frame);
            let report = Disagreement {
                what,
                frame: &s.frame,
                src: s.src,
                state: &self.state,
                model: &s.verdict,
                kernel_action: s.kernel,
                kernel_counters: Some(&d),
                at: self.at(Some(i)),
            }
            .to_string();
            self.fail(report);
        }
    }

    /// Runs `frame` once more alone and returns its counter delta.
    fn single(&mut self, frame: &[u8]) -> Vec<Counter> {
        let before = self.dp.maps.counters().expect("counters");
        run(self.dp.program().expect("program"), frame);
        delta(&before, &self.dp.maps.counters().expect("counters"))
    }

    /// Per state: the counter deltas. On a difference, the frames are run
    /// again one by one to find the first whose counters differ.
    fn check_counters(&mut self, model: &Counts, kernel: &[Counter], sent: &[Sent]) {
        let diff = model.differences(&Counts::from_kernel(kernel));
        if diff.is_empty() {
            return;
        }
        let mut report = format!(
            "counters differ ({}):\n  {}",
            self.at(None),
            diff.join("\n  ")
        );
        for (i, s) in sent.iter().enumerate() {
            let mut one = Counts::default();
            one.count(&s.verdict, s.frame.len() as u64, false);
            let mut k = self.single(&s.frame);
            // The limiter knows the source by now.
            k[counter::RATE_NEW_SOURCES as usize] = Counter::default();
            if one.differences(&Counts::from_kernel(&k)).is_empty() {
                continue;
            }
            let d = Disagreement {
                what: "first frame whose counters differ, run alone",
                frame: &s.frame,
                src: s.src,
                state: &self.state,
                model: &s.verdict,
                kernel_action: s.kernel,
                kernel_counters: Some(&k),
                at: self.at(Some(i)),
            };
            report += &format!("\n{d}");
            break;
        }
        self.fail(report);
    }

    /// The sample records in the ring buffer, which is left empty.
    fn drain_samples(&mut self) -> Vec<Sample> {
        let mut got = Vec::new();
        while let Some(item) = self.events.next() {
            if item.len() >= size_of::<HttpSample>() {
                // SAFETY: a record of HttpSample size; read unaligned.
                let r: HttpSample = unsafe { std::ptr::read_unaligned(item.as_ptr().cast()) };
                if r.kind == event_kind::HTTP_SAMPLE {
                    got.push(Sample::from_record(&r));
                }
            }
        }
        got
    }

    /// Per state: the sample records, in order (the ring buffer was drained
    /// before the state; if it filled, the program kept the first ones).
    fn check_samples(&mut self, model: &[Sample], kernel_delta: &[Counter]) {
        let got = self.drain_samples();
        let sent = kernel_delta[counter::SAMPLES_SENT as usize].packets as usize;
        let lost = kernel_delta[counter::SAMPLES_LOST as usize].packets as usize;
        let expected = &model[..sent.min(model.len())];
        if got.len() == sent && got == expected && sent + lost == model.len() {
            return;
        }
        let first = got.iter().zip(expected).position(|(g, e)| g != e);
        let report = format!(
            "samples differ ({}): kernel wrote {} (sent {sent}, lost {lost}), model {}; first \
             difference at {first:?}:\n  kernel {:?}\n  model  {:?}",
            self.at(None),
            got.len(),
            model.len(),
            first.and_then(|i| got.get(i)),
            first.and_then(|i| expected.get(i)),
        );
        self.fail(report);
    }
}

/// The bits of an IPv6 address below the rate prefix (none for 0 and 128,
/// which key the whole address).
fn host_bits(prefix: u8) -> u128 {
    if prefix == 0 || prefix >= 128 {
        0
    } else {
        u128::MAX >> prefix
    }
}

/// Runs the program once on `frame` and returns its action.
fn run(prog: &Xdp, frame: &[u8]) -> u32 {
    prog.test_run(TestRunOptions {
        data_in: Some(frame),
        repeat: 1,
        ..Default::default()
    })
    .unwrap_or_else(|e| panic!("BPF_PROG_TEST_RUN on a {}-byte frame: {e}", frame.len()))
    .return_value
}
