//! How the sending threads of `waf gen` share a run: the frame budget and
//! the run's clock ([`Budget`]), each thread's pacing ([`Pacer`]), and
//! where the threads run (CPU pinning, timer slack).

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use nix::{
    sched::{CpuSet, sched_getcpu, sched_setaffinity},
    unistd::Pid,
};

use super::args::{GenOptions, Rate};

/// The frames left to send, shared by the sending threads, and the run's
/// clock.
///
/// The clock starts when the first frame is about to be sent, not when the
/// run is set up: loading the eBPF object and making the dispatcher hold can
/// take hundreds of milliseconds on a busy machine, and `--duration` is the
/// time spent sending.
pub(super) struct Budget {
    left: AtomicU64,
    /// Frames sent so far (the progress line reads it).
    pub(super) sent: AtomicU64,
    /// Set by a signal (or the caller): every thread stops.
    pub(super) stop: Arc<AtomicBool>,
    /// An engine failed: the other threads stop too.
    pub(super) abort: AtomicBool,
    /// How long to send, counted from the first frame.
    duration: Option<Duration>,
    /// The fixed point `started_ns` and `last_ns` count from.
    origin: Instant,
    /// When sending started, in ns after `origin` plus one (0: not yet).
    started_ns: AtomicU64,
    /// When the last frames were handed over, in ns after `origin`.
    last_ns: AtomicU64,
}

impl Budget {
    pub(super) fn new(
        count: Option<u64>,
        duration: Option<Duration>,
        stop: Arc<AtomicBool>,
    ) -> Self {
        Self {
            left: AtomicU64::new(count.unwrap_or(u64::MAX)),
            sent: AtomicU64::new(0),
            stop,
            abort: AtomicBool::new(false),
            duration,
            origin: Instant::now(),
            started_ns: AtomicU64::new(0),
            last_ns: AtomicU64::new(0),
        }
    }

    fn since_origin(&self) -> u64 {
        self.origin
            .elapsed()
            .as_nanos()
            .min(u128::from(u64::MAX - 1)) as u64
    }

    /// When sending started; the first call starts the clock.
    pub(super) fn start(&self) -> Instant {
        let now = self.since_origin() + 1;
        let t = match self
            .started_ns
            .compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed)
        {
            Ok(_) => now,
            Err(earlier) => earlier,
        };
        self.origin + Duration::from_nanos(t - 1)
    }

    /// When sending started, if it has.
    pub(super) fn started(&self) -> Option<Instant> {
        match self.started_ns.load(Ordering::Relaxed) {
            0 => None,
            t => Some(self.origin + Duration::from_nanos(t - 1)),
        }
    }

    /// Takes up to `want` frames from the budget (0: done). The first take
    /// starts the clock: the caller sends right after it.
    pub(super) fn take(&self, want: u64) -> u64 {
        self.start();
        if self.stop.load(Ordering::Relaxed) || self.time_left().is_some_and(|l| l.is_zero()) {
            return 0;
        }
        let mut got = 0;
        let _ = self
            .left
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |l| {
                got = l.min(want);
                Some(l - got)
            });
        got
    }

    /// Counts `n` frames as sent (now).
    pub(super) fn record_sent(&self, n: u64) {
        self.sent.fetch_add(n, Ordering::Relaxed);
        self.last_ns
            .fetch_max(self.since_origin(), Ordering::Relaxed);
    }

    /// Gives back `n` frames taken but not sent.
    pub(super) fn give_back(&self, n: u64) {
        self.left.fetch_add(n, Ordering::Relaxed);
    }

    /// Back to the state before the first frame, after an engine failed
    /// without sending any (the fallback engine gets the whole duration).
    pub(super) fn restart(&self) {
        self.abort.store(false, Ordering::Relaxed);
        self.started_ns.store(0, Ordering::Relaxed);
        self.last_ns.store(0, Ordering::Relaxed);
    }

    /// The time spent sending: from the first frame to the last one.
    pub(super) fn sending_time(&self) -> Duration {
        match self.started_ns.load(Ordering::Relaxed) {
            0 => Duration::ZERO,
            t => Duration::from_nanos(self.last_ns.load(Ordering::Relaxed).saturating_sub(t - 1)),
        }
    }

    pub(super) fn halted(&self) -> bool {
        self.stop.load(Ordering::Relaxed) || self.abort.load(Ordering::Relaxed)
    }

    /// The sending time left (all of it before the first frame).
    pub(super) fn time_left(&self) -> Option<Duration> {
        let d = self.duration?;
        Some(match self.started() {
            Some(s) => d.saturating_sub(s.elapsed()),
            None => d,
        })
    }
}

/// Per-thread pacing: how many frames to send next, sleeping as needed.
pub(super) struct Pacer {
    /// When the run's sending started (the budget's clock), from the first
    /// paced call on.
    start: Option<Instant>,
    pps: Option<f64>,
    /// Frames this thread sent.
    pub(super) sent: u64,
    /// Frames per call at max rate, adapted to about 20 ms per call.
    chunk: u64,
    quantum: u64,
    /// Seconds per frame over all calls so far (max rate).
    per_frame: Option<f64>,
    /// Time spent in calls.
    busy: Duration,
}

impl Pacer {
    /// `cheap_calls`: the program is held in the XDP dispatcher (see
    /// [`DispatcherHold`](super::DispatcherHold)), so a call costs tens of microseconds instead of
    /// milliseconds and a paced rate can be sent in small, even bursts.
    pub(super) fn new(rate: Rate, threads: usize, batch: u32, cheap_calls: bool) -> Self {
        let pps = match rate {
            Rate::Max => None,
            Rate::Pps(r) => Some((r as f64 / threads as f64).max(1e-3)),
        };
        let quantum = match pps {
            // Cheap calls: one batch, or 50 us of frames when that is more
            // (a receiver's ring, 256 frames on a veth, absorbs such a
            // burst; a long burst at full speed would overflow it and make
            // the flood look lighter than its rate to the receiver).
            Some(p) if cheap_calls => ((p / 20_000.0) as u64).clamp(u64::from(batch), 4096),
            // Otherwise about 5 ms of frames per call (calls have a fixed
            // cost), at least 1, at most 64 batches.
            Some(p) => ((p / 200.0) as u64).clamp(1, 64 * u64::from(batch)),
            None => 0,
        };
        Self {
            start: None,
            pps,
            sent: 0,
            chunk: 65_536,
            quantum,
            per_frame: None,
            busy: Duration::ZERO,
        }
    }

    /// Frames to send now (after sleeping until they are due).
    pub(super) fn next(&mut self, budget: &Budget) -> u64 {
        match self.pps {
            None => {
                let mut n = self.chunk;
                // Do not run far past the deadline: at most the frames the
                // speed so far sends in the time left.
                if let (Some(left), Some(per)) = (budget.time_left(), self.per_frame) {
                    n = n.min((left.as_secs_f64() / per) as u64 + 1);
                }
                n.max(1)
            }
            Some(pps) => loop {
                let start = *self.start.get_or_insert_with(|| budget.start());
                let due = (start.elapsed().as_secs_f64() * pps) as u64;
                if due >= self.sent + self.quantum {
                    // Catch up after a slow call, but by at most 50 ms of frames.
                    return (due - self.sent).min(self.quantum.max((pps / 20.0) as u64));
                }
                let at = start + Duration::from_secs_f64((self.sent + self.quantum) as f64 / pps);
                let wait = at.saturating_duration_since(Instant::now());
                if let Some(left) = budget.time_left()
                    && left < wait
                {
                    std::thread::sleep(left);
                    return 0;
                }
                if budget.halted() {
                    return 0;
                }
                std::thread::sleep(wait.min(Duration::from_millis(100)));
            },
        }
    }

    pub(super) fn sent(&mut self, n: u64, took: Duration) {
        self.sent += n;
        self.busy += took;
        if self.pps.is_none() && self.sent > 0 {
            // Every BPF_PROG_TEST_RUN call of an XDP program swaps it into
            // the XDP dispatcher and back (two RCU grace periods, often
            // milliseconds): calls must be long. Aim at about 200 ms each,
            // from the speed over all calls so far (overhead included).
            let per = self.busy.as_secs_f64() / self.sent as f64;
            if per > 0.0 {
                self.chunk = ((0.2 / per) as u64).clamp(4096, 1 << 24);
                self.per_frame = Some(per);
            }
        }
    }
}

/// Sleeps of the pacing threads wake within microseconds of their deadline
/// (the default timer slack is 50 us, as long as a whole paced burst).
pub(super) fn fine_timer_slack() {
    // Best effort: without it bursts are a little less even.
    let _ = nix::sys::prctl::set_timerslack(1000);
}

fn pin_to_cpu(cpu: usize) {
    let mut set = CpuSet::new();
    // Best effort: a CPU out of range or not allowed leaves the thread
    // where the scheduler puts it.
    if set.set(cpu).is_ok() {
        let _ = sched_setaffinity(Pid::from_raw(0), &set);
    }
}

/// Pins sending thread `t`: to the CPUs given, else (several threads) to
/// CPU `t`, else to the CPU it runs on. A thread that stays on one CPU keeps
/// the program's per-CPU sequence whole, so a pool is covered evenly.
pub(super) fn pin_thread(opts: &GenOptions, t: usize) {
    if !opts.cpus.is_empty() {
        pin_to_cpu(opts.cpus[t % opts.cpus.len()]);
    } else if opts.threads > 1 {
        let ncpu = std::thread::available_parallelism().map_or(1, |n| n.get());
        pin_to_cpu(t % ncpu);
    } else if let Ok(cpu) = sched_getcpu() {
        pin_to_cpu(cpu);
    }
}
