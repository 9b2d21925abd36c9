//! The live-frames engine of `waf gen`: the `waf_gen` XDP program (from
//! the tools object) run with BPF_PROG_TEST_RUN in live-frames mode. The
//! kernel recycles the frame in a page pool, the program rewrites the
//! source in place and returns `XDP_TX`, which transmits the frame out of
//! the interface named in `ctx_in`: no copy, no skb, no syscall per frame.

use std::{io, sync::atomic::Ordering, time::Instant};

use aya::{
    maps::{Array, MapData, PerCpuArray},
    programs::{ProgramError, TestRun as _, TestRunAttrs, TestRunOptions, Xdp},
};
use waf_common::r#gen::{CONFIG_MAP, GenConfig, GenState, PROGRAM_NAME, STATE_MAP};

use super::{
    DispatcherHold, GenError, Result, Tools,
    args::GenOptions,
    frames::gen_config,
    pacing::{Budget, Pacer, fine_timer_slack, pin_thread},
};

/// Largest live-frames batch the kernel accepts.
pub const MAX_BATCH: u32 = 256;

/// The `waf_gen` program, loaded from the tools object (not the firewall's),
/// and its maps.
pub struct LiveGen {
    tools: Tools,
    config: Array<MapData, GenConfig>,
    state: PerCpuArray<MapData, GenState>,
}

impl LiveGen {
    /// Loads the tools object and its generator program.
    pub fn load() -> Result<Self> {
        let mut tools = Tools::load()?;
        tools.program(PROGRAM_NAME)?;
        let config = tools.take_map(CONFIG_MAP)?;
        let state = tools.take_map(STATE_MAP)?;
        Ok(Self {
            tools,
            config,
            state,
        })
    }

    /// The program (for tests that run it on single frames).
    pub fn program(&self) -> &Xdp {
        self.tools
            .loaded(PROGRAM_NAME)
            .expect("LiveGen::load loaded the generator program")
    }

    /// The program, mutable (to attach it).
    pub fn program_mut(&mut self) -> Result<&mut Xdp> {
        Ok(self.tools.program(PROGRAM_NAME)?)
    }

    /// Writes the configuration and clears the per-CPU state.
    pub fn configure(&mut self, cfg: &GenConfig) -> Result<()> {
        self.config
            .set(0, cfg, 0)
            .map_err(|e| GenError::Live(format!("{CONFIG_MAP}: {e}")))?;
        let ncpu = aya::util::nr_cpus().map_err(|(_, e)| GenError::Live(e.to_string()))?;
        let zero = vec![GenState::default(); ncpu];
        self.state
            .set(
                0,
                aya::maps::PerCpuValues::try_from(zero)
                    .map_err(|e| GenError::Live(e.to_string()))?,
                0,
            )
            .map_err(|e| GenError::Live(format!("{STATE_MAP}: {e}")))
    }

    /// The per-CPU state summed over CPUs.
    pub fn state(&self) -> Result<GenState> {
        let v = self
            .state
            .get(&0, 0)
            .map_err(|e| GenError::Live(format!("{STATE_MAP}: {e}")))?;
        let mut s = GenState::default();
        for c in v.iter() {
            s.frames += c.frames;
            for (a, b) in s.per_pool.iter_mut().zip(c.per_pool) {
                *a += b;
            }
        }
        Ok(s)
    }

    /// Sends `repeat` copies of `frame` (rewritten by the program) out of
    /// the interface with index `ifindex`.
    pub fn send(&self, frame: &[u8], ifindex: u32, repeat: u32, batch: u32) -> io::Result<()> {
        // struct xdp_md: data, data_end, data_meta, ingress_ifindex,
        // rx_queue_index, egress_ifindex.
        let mut ctx = [0u8; 24];
        ctx[4..8].copy_from_slice(&(frame.len() as u32).to_ne_bytes());
        ctx[12..16].copy_from_slice(&ifindex.to_ne_bytes());
        self.program()
            .test_run(TestRunOptions {
                data_in: Some(frame),
                ctx_in: Some(&ctx),
                repeat,
                attrs: TestRunAttrs::new().xdp_live_frames(batch),
                ..Default::default()
            })
            .map(|_| ())
            .map_err(|e| match e {
                ProgramError::SyscallError(s) => s.io_error,
                other => io::Error::other(other.to_string()),
            })
    }
}

/// Sends `frame` out of `ifindex` with the live-frames engine until the
/// budget is spent; returns the program's per-CPU state summed (frames and
/// frames per pool, exact even for a call cut short). With `probe`, thread
/// 0 sends one frame first, so a kernel or an interface that cannot fails
/// before anything else is sent (the caller may fall back).
pub(super) fn run_live(
    opts: &GenOptions,
    frame: &[u8],
    ifindex: u32,
    budget: &Budget,
    probe: bool,
) -> Result<GenState> {
    let mut live = LiveGen::load()?;
    live.configure(&gen_config(opts))?;
    let hold = DispatcherHold::new(&mut [live.program_mut()?])
        .inspect_err(|e| {
            tracing::debug!(error = %e, "generator: long calls (program not held in the XDP dispatcher)")
        })
        .ok();
    let sender = Sender {
        live: &live,
        opts,
        frame,
        ifindex,
        budget,
        cheap_calls: hold.is_some(),
    };
    let errors: Vec<io::Error> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..opts.threads)
            .map(|t| {
                let sender = &sender;
                s.spawn(move || sender.run(t, probe && t == 0))
            })
            .collect();
        handles
            .into_iter()
            .filter_map(|h| h.join().ok().flatten())
            .collect()
    });
    drop(hold);
    if let Some(e) = errors.into_iter().next() {
        return Err(GenError::Live(format!("BPF_PROG_TEST_RUN: {e}")));
    }
    live.state()
}

/// What every sending thread of the live engine shares.
struct Sender<'a> {
    live: &'a LiveGen,
    opts: &'a GenOptions,
    frame: &'a [u8],
    ifindex: u32,
    budget: &'a Budget,
    /// The program is held in the XDP dispatcher: calls are cheap.
    cheap_calls: bool,
}

impl Sender<'_> {
    /// One sending thread (`t`): sends until the budget is spent or the run
    /// stops; returns the error that stopped it, if any.
    fn run(&self, t: usize, probe: bool) -> Option<io::Error> {
        let (opts, budget) = (self.opts, self.budget);
        pin_thread(opts, t);
        let mut pacer = Pacer::new(opts.rate, opts.threads, opts.batch, self.cheap_calls);
        fine_timer_slack();
        if probe && budget.take(1) == 1 {
            // One frame first: an old kernel or an interface that cannot
            // send fails here.
            if let Err(e) = self.live.send(self.frame, self.ifindex, 1, 1) {
                budget.give_back(1);
                budget.abort.store(true, Ordering::Relaxed);
                return Some(e);
            }
            budget.record_sent(1);
            pacer.sent += 1;
        }
        loop {
            let want = pacer.next(budget);
            if want == 0 {
                if budget.halted() || budget.time_left().is_some_and(|l| l.is_zero()) {
                    return None;
                }
                continue;
            }
            let n = budget.take(want.min(u64::from(u32::MAX)));
            if n == 0 {
                return None;
            }
            let t0 = Instant::now();
            match self
                .live
                .send(self.frame, self.ifindex, n as u32, opts.batch)
            {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => {
                    budget.stop.store(true, Ordering::Relaxed);
                    return None;
                }
                Err(e) => {
                    budget.abort.store(true, Ordering::Relaxed);
                    return Some(e);
                }
            }
            budget.record_sent(n);
            pacer.sent(n, t0.elapsed());
        }
    }
}
