//! What `waf gen` reports: the summary of a run ([`GenSummary`], printed
//! for people or as JSON) and the progress line while it runs.

use std::{
    fmt,
    io::{self, IsTerminal as _, Write as _},
    sync::atomic::{AtomicBool, Ordering},
    time::{Duration, Instant},
};

use super::{args::Engine, pacing::Budget};

/// The outcome of a run.
#[derive(Clone, Debug, serde::Serialize)]
pub struct GenSummary {
    /// The engine that sent.
    pub engine: Engine,
    /// Frames sent (handed to the interface).
    pub frames: u64,
    /// Frame size in bytes (without FCS).
    pub frame_bytes: usize,
    /// Seconds from the first to the last frame (the sending time, without
    /// loading and setting up the engine).
    pub seconds: f64,
    /// Frames per second.
    pub pps: f64,
    /// Bits per second of frame data.
    pub bits_per_second: f64,
    /// Frames per source pool, attacking pools first.
    pub per_pool: Vec<(String, u64)>,
    /// Frames from the legitimate pools.
    pub legit_frames: u64,
    /// Frames the interface reported as transmitted to its peer
    /// (`*xdp_xmit` ethtool counters of the live engine; None: not known).
    pub xmit_ok: Option<u64>,
    /// Frames the interface reported it could not transmit (a full peer
    /// ring, or a peer that cannot take XDP frames).
    pub xmit_errors: Option<u64>,
    /// True when stopped early by a signal.
    pub interrupted: bool,
}

impl fmt::Display for GenSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "sent {} frames of {} bytes in {:.3} s ({} engine): {} pps, {}",
            self.frames,
            self.frame_bytes,
            self.seconds,
            match self.engine {
                Engine::Live => "live-frames",
                Engine::Packet => "AF_PACKET",
                Engine::Auto => "auto",
            },
            human(self.pps, ""),
            human(self.bits_per_second, "bit/s"),
        )?;
        if let (Some(ok), Some(err)) = (self.xmit_ok, self.xmit_errors) {
            writeln!(
                f,
                "interface: {ok} frames accepted by the peer, {err} not transmitted"
            )?;
        }
        if self.legit_frames > 0 {
            writeln!(
                f,
                "legitimate sources: {} frames ({:.1}%)",
                self.legit_frames,
                100.0 * self.legit_frames as f64 / self.frames.max(1) as f64
            )?;
        }
        for (pool, n) in &self.per_pool {
            writeln!(f, "  {pool:<24} {n} frames")?;
        }
        if self.interrupted {
            writeln!(f, "interrupted")?;
        }
        Ok(())
    }
}

/// `1234567.0` -> `1.23 M` + unit.
pub fn human(v: f64, unit: &str) -> String {
    let (d, p) = if v >= 1e9 {
        (1e9, "G")
    } else if v >= 1e6 {
        (1e6, "M")
    } else if v >= 1e3 {
        (1e3, "k")
    } else {
        (1.0, "")
    };
    format!("{:.2} {p}{unit}", v / d).trim_end().to_string()
}

/// Prints a progress line on stderr every second (rewritten in place on a
/// terminal) until `done`.
pub(super) fn progress(budget: &Budget, done: &AtomicBool, size: usize) {
    let tty = io::stderr().is_terminal();
    let mut last = (Instant::now(), 0u64);
    let mut printed = false;
    while !done.load(Ordering::Relaxed) {
        for _ in 0..20 {
            if done.load(Ordering::Relaxed) {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if done.load(Ordering::Relaxed) {
            break;
        }
        let now = Instant::now();
        let sent = budget.sent.load(Ordering::Relaxed);
        let dt = now.duration_since(last.0).as_secs_f64().max(1e-6);
        let pps = (sent - last.1) as f64 / dt;
        last = (now, sent);
        let line = format!(
            "{:6.1} s  {:>12} frames  {:>12}  {:>14}",
            // Sending time: the clock starts with the first frame.
            budget.started().map_or(0.0, |s| s.elapsed().as_secs_f64()),
            sent,
            human(pps, "pps"),
            human(pps * size as f64 * 8.0, "bit/s")
        );
        let mut err = io::stderr().lock();
        if tty {
            let _ = write!(err, "\r{line}");
        } else {
            let _ = writeln!(err, "{line}");
        }
        printed = true;
    }
    if printed && tty {
        let _ = writeln!(io::stderr());
    }
}
