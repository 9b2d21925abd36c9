//! `waf gen`: a packet generator for load-testing the filter. This file
//! owns a run from start to end ([`run`], and [`main`] for the command):
//! set up, pick the engine, sum up.
//!
//! It builds one Ethernet frame (UDP, TCP SYN, or a TCP segment carrying an
//! HTTP GET; IPv4 or IPv6; valid checksums) and sends it over and over with
//! the source address spread over CIDR pools (spoofed floods, as attacks
//! are), optionally mixed with a share of "legitimate" sources, for a
//! bounded duration or count, at a given rate or as fast as it can.
//!
//! Two engines:
//! - **live** (fast path, `live.rs`): the `waf_gen` XDP program run with
//!   BPF_PROG_TEST_RUN in live-frames mode. The kernel recycles the frame in
//!   a page pool, the program rewrites the source in place (incremental
//!   checksums) and returns `XDP_TX`, which transmits the frame out of the
//!   interface named in `ctx_in`: no copy, no skb, no syscall per frame.
//! - **packet** (portable fallback, `af_packet.rs`): an AF_PACKET socket
//!   that bypasses the qdisc and sends batches with `sendmmsg`, the same
//!   rewrite done in userspace ([`Rewriter`]).
//!
//! The other files: `args.rs` (the command line and its checks),
//! `frames.rs` (the template frame, pools and rewrite), `pacing.rs` (frame
//! budget, clock, pacing, CPU placement), `iface.rs` (interface index, MAC,
//! neighbour, driver counters), `summary.rs` (summary and progress line),
//! `tools.rs` (the tools object the `waf_gen` program comes from) and
//! `hold.rs` (keeping a program in the XDP dispatcher, also for `bench
//! xdp`).

mod af_packet;
mod args;
mod frames;
mod hold;
mod iface;
mod live;
mod pacing;
mod summary;
mod tools;

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use ipnet::IpNet;
use waf_common::r#gen::GenState;

use self::{af_packet::run_packet, live::run_live, pacing::Budget, summary::progress};
pub use self::{
    args::{Engine, GenArgs, GenOptions, Proto, Rate, parse_mac, parse_pool, parse_rate},
    frames::{MAX_FRAME, MIN_FRAME, Rewriter, gen_config, min_frame, pool_of, template_frame},
    hold::DispatcherHold,
    iface::{ethtool_stats, ethtool_sum, ifindex, interface_mac, resolve_mac},
    live::{LiveGen, MAX_BATCH},
    summary::{GenSummary, human},
    tools::{TOOLS_OBJECT, Tools, ToolsError},
};

/// A bad argument or a failure to send, with what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum GenError {
    /// An argument is invalid.
    #[error("{0}")]
    Arg(String),
    /// The interface is missing or unusable.
    #[error("interface {interface}: {message}")]
    Interface {
        /// Its name.
        interface: String,
        /// What is wrong.
        message: String,
    },
    /// The live-frames engine failed.
    #[error("live frames: {0}")]
    Live(String),
    /// The tools object (the generator's program) could not be used.
    #[error("live frames: {0}")]
    Tools(#[from] ToolsError),
    /// The AF_PACKET engine failed.
    #[error("AF_PACKET: {0}")]
    Packet(String),
}

type Result<T, E = GenError> = std::result::Result<T, E>;

/// Runs the generator until its count or duration is reached or `stop` is
/// set. Prints a progress line on stderr when `opts.progress`.
pub fn run(opts: &GenOptions, stop: Arc<AtomicBool>) -> Result<GenSummary> {
    let ifindex = ifindex(&opts.interface)?;
    let src_mac = interface_mac(&opts.interface)?;
    let dst_mac = match opts.dst_mac {
        Some(m) => m,
        None => resolve_mac(&opts.interface, opts.dst)?,
    };
    let frame = template_frame(opts, src_mac, dst_mac);
    let budget = Budget::new(opts.count, opts.duration, stop.clone());
    let xmit = |s: &str| ethtool_sum(&opts.interface, s);
    let before = (xmit("xdp_xmit"), xmit("xdp_xmit_errors"));
    let done = AtomicBool::new(false);
    let (engine, state) = std::thread::scope(|s| {
        if opts.progress {
            let (budget, done) = (&budget, &done);
            s.spawn(move || progress(budget, done, opts.size));
        }
        let r = send(opts, &frame, ifindex, &budget);
        done.store(true, Ordering::Relaxed);
        r
    })?;
    let (xmit_ok, xmit_errors) = if engine == Engine::Live {
        let after = (xmit("xdp_xmit"), xmit("xdp_xmit_errors"));
        (
            before.0.zip(after.0).map(|(b, a)| a.saturating_sub(b)),
            before.1.zip(after.1).map(|(b, a)| a.saturating_sub(b)),
        )
    } else {
        (None, None)
    };
    let frames = match engine {
        // The program's own count: exact even for a call cut short.
        Engine::Live => state.frames,
        _ => budget.sent.load(Ordering::Relaxed),
    };
    // The time spent sending (not loading and setting up).
    let secs = budget.sending_time().as_secs_f64().max(1e-9);
    let (per_pool, legit_frames) = per_pool(opts, &state);
    Ok(GenSummary {
        engine,
        frames,
        frame_bytes: opts.size,
        seconds: secs,
        pps: frames as f64 / secs,
        bits_per_second: frames as f64 * opts.size as f64 * 8.0 / secs,
        per_pool,
        legit_frames,
        xmit_ok,
        xmit_errors,
        interrupted: stop.load(Ordering::Relaxed),
    })
}

/// Sends with the engine `opts` asks for (auto: live frames, else
/// AF_PACKET when live frames failed before sending anything); returns the
/// engine that sent and its state.
fn send(
    opts: &GenOptions,
    frame: &[u8],
    ifindex: u32,
    budget: &Budget,
) -> Result<(Engine, GenState)> {
    match opts.engine {
        Engine::Live => run_live(opts, frame, ifindex, budget, true).map(|r| (Engine::Live, r)),
        Engine::Packet => run_packet(opts, frame, ifindex, budget).map(|r| (Engine::Packet, r)),
        Engine::Auto => match run_live(opts, frame, ifindex, budget, true) {
            Ok(r) => Ok((Engine::Live, r)),
            Err(e) if budget.sent.load(Ordering::Relaxed) == 0 => {
                budget.restart();
                eprintln!("waf gen: live frames unavailable ({e}); using AF_PACKET");
                run_packet(opts, frame, ifindex, budget).map(|r| (Engine::Packet, r))
            }
            Err(e) => Err(e),
        },
    }
}

/// Frames per pool (attacking pools first, legitimate ones tagged) and the
/// frames of the legitimate pools.
fn per_pool(opts: &GenOptions, state: &GenState) -> (Vec<(String, u64)>, u64) {
    let pools: Vec<&IpNet> = opts.src.iter().chain(&opts.legit).collect();
    let per_pool = pools
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let tag = if i >= opts.src.len() { " (legit)" } else { "" };
            (format!("{n}{tag}"), state.per_pool[i])
        })
        .collect();
    let legit_frames = state.per_pool[opts.src.len()..pools.len()].iter().sum();
    (per_pool, legit_frames)
}

/// `waf gen`: checks the arguments, runs, prints the summary. Ctrl-C (or
/// SIGTERM) stops early and still prints it.
pub fn main(args: &GenArgs) -> anyhow::Result<()> {
    let opts = args.resolve()?;
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .map_err(|e| anyhow::anyhow!("cannot handle signal {signal}: {e}"))?;
    }
    let summary = run(&opts, stop)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print!("{summary}");
    }
    if let (Some(0), Some(err)) = (summary.xmit_ok, summary.xmit_errors)
        && summary.frames > 0
        && err > 0
    {
        eprintln!(
            "waf gen: warning: the interface transmitted none of the frames; a veth peer needs \
             an XDP program or GRO on (ethtool -K PEER gro on) to take XDP frames"
        );
    }
    Ok(())
}
