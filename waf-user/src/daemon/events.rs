//! The XDP program's ring buffer: rate-limit trips become strikes; sampled
//! HTTP payloads go to the mirror's thread, which reassembles and inspects
//! them, strikes what it finds and hands every verdict to the findings
//! (origin `mirror`). Nothing here blocks an async worker: the
//! ring is read on readiness, and the mirror (detection included) runs on a
//! thread of its own behind a bounded queue (what it cannot take is
//! counted).

use std::{
    net::{IpAddr, Ipv6Addr},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
        mpsc,
    },
    time::{Duration, Instant},
};

use anyhow::Result;
use aya::maps::{MapData, RingBuf};
use tokio::io::{Interest, unix::AsyncFd};
use waf_common::{HttpSample, RateEvent, event_kind};

use crate::{
    config::MirrorConfig,
    detect::{Action, Engine},
    findings::{Findings, Origin, RequestFacts},
    firewall::{Strike, StrikeKind, StrikeSink},
    mirror::{Mirror, MirrorStats},
    telemetry::{Family, MetricKind, Telemetry},
};

/// Samples waiting for the mirror at most.
const MIRROR_QUEUE: usize = 16_384;

/// The mirror's thread and its counters.
pub struct MirrorFace {
    tx: mpsc::SyncSender<HttpSample>,
    stats: Arc<Mutex<MirrorStats>>,
    /// Samples dropped because the mirror fell behind.
    pub dropped: AtomicU64,
}

impl MirrorFace {
    /// Starts the mirror's thread; its verdicts go to `findings` as well as
    /// its strikes.
    pub fn start(
        cfg: &MirrorConfig,
        engine: Arc<Engine>,
        strikes: StrikeSink,
        findings: Option<Arc<Findings>>,
    ) -> Result<Self> {
        let (tx, rx) = mpsc::sync_channel::<HttpSample>(MIRROR_QUEUE);
        let stats = Arc::new(Mutex::new(MirrorStats::default()));
        let mut mirror = Mirror::new(cfg, engine);
        let shared = stats.clone();
        std::thread::Builder::new()
            .name("waf-mirror".into())
            .spawn(move || {
                let mut last_expire = Instant::now();
                loop {
                    let sinks = (&strikes, findings.as_deref());
                    match rx.recv_timeout(Duration::from_secs(1)) {
                        Ok(s) => strike_all(mirror.feed(&s), sinks),
                        Err(mpsc::RecvTimeoutError::Timeout) => {}
                        Err(mpsc::RecvTimeoutError::Disconnected) => break,
                    }
                    if last_expire.elapsed() >= Duration::from_secs(1) {
                        // Requests stalled at the end of their flow are
                        // inspected as they are.
                        let flushed = mirror.expire();
                        strike_all(flushed, sinks);
                        last_expire = Instant::now();
                    }
                    *shared.lock().unwrap_or_else(|p| p.into_inner()) = mirror.stats.clone();
                }
            })?;
        Ok(Self {
            tx,
            stats,
            dropped: AtomicU64::new(0),
        })
    }

    fn send(&self, s: HttpSample) {
        if self.tx.try_send(s).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn stats(&self) -> MirrorStats {
        self.stats.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// Detections of the mirror become strikes; would-blocks are logged; every
/// verdict goes to the findings.
fn strike_all(
    inspected: Vec<crate::mirror::Inspected>,
    (strikes, findings): (&StrikeSink, Option<&Findings>),
) {
    for r in inspected {
        if let Some(f) = findings {
            let facts = RequestFacts {
                origin: Origin::Mirror,
                source: r.flow.src,
                method: &r.method,
                host: &r.host,
                path: &r.path,
                request_id: "",
            };
            f.record(&r.verdict, &facts, crate::findings::now_ms());
        }
        if r.verdict.action == Action::Block {
            let reason = r
                .verdict
                .attacks
                .first()
                .map(|f| {
                    format!(
                        "{:?} at {} (rule {}), seen by the mirror",
                        f.kind, f.location, f.rule
                    )
                })
                .unwrap_or_else(|| "detection (mirror)".into());
            tracing::warn!(remote = %r.flow.src, request = %r.line, score = r.verdict.score, reason = %reason, "mirror detection");
            strikes.strike(Strike {
                source: r.flow.src,
                kind: StrikeKind::Detection,
                score: r.verdict.score,
                evidence: reason,
                decided: Some(Instant::now()),
                ban: false,
            });
        } else if r.verdict.would_block {
            tracing::info!(remote = %r.flow.src, request = %r.line, score = r.verdict.score, "mirror: would block (passive)");
        }
    }
}

impl Telemetry for MirrorFace {
    fn section(&self) -> &'static str {
        "mirror"
    }

    fn families(&self) -> Vec<Family> {
        let st = self.stats();
        let c = MetricKind::Counter;
        vec![
            Family::one(
                "waf_mirror_requests",
                "Requests reassembled by the mirror.",
                c,
                st.requests,
            ),
            Family::one(
                "waf_mirror_detections",
                "Mirror requests the engine flags.",
                c,
                st.detections,
            ),
            Family::one(
                "waf_mirror_samples_dropped",
                "Samples dropped: the mirror fell behind.",
                c,
                self.dropped.load(Ordering::Relaxed),
            ),
        ]
    }

    fn json(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self.stats()).unwrap_or_default();
        v["samples_dropped"] = self.dropped.load(Ordering::Relaxed).into();
        v
    }
}

fn rate_strike(ev: &RateEvent) -> Strike {
    let source = match ev.family {
        4 => IpAddr::from([ev.addr[0], ev.addr[1], ev.addr[2], ev.addr[3]]),
        _ => IpAddr::V6(Ipv6Addr::from(ev.addr)),
    };
    let (kind, what) = match ev.kind {
        event_kind::RATE_BPS => (StrikeKind::RateBps, format!("{} B/s", ev.observed_bps)),
        event_kind::RATE_SYN => (StrikeKind::RateSyn, format!("{} SYN/s", ev.observed_pps)),
        _ => (
            StrikeKind::RatePps,
            format!("{} packets/s", ev.observed_pps),
        ),
    };
    Strike {
        source,
        kind,
        score: 0,
        evidence: format!("{what} observed, {} dropped", ev.dropped),
        decided: None,
        ban: false,
    }
}

/// Reads the ring buffer until it fails: rate events to the owner,
/// samples to the mirror.
pub async fn consume(
    rb: RingBuf<MapData>,
    strikes: StrikeSink,
    mirror: Option<Arc<MirrorFace>>,
) -> Result<()> {
    // SAFETY: the ring buffer owns its map fd for as long as the AsyncFd
    // owns the ring buffer, and always reports the same fd.
    let mut afd = unsafe { AsyncFd::register_with_interest(rb, Interest::READABLE) }
        .map_err(|e| anyhow::anyhow!("watching the ring buffer: {e}"))?;
    loop {
        let mut guard = afd.readable_mut().await?;
        let rb = guard.get_inner_mut();
        while let Some(item) = rb.next() {
            if item.len() < 4 {
                continue;
            }
            // SAFETY: every record starts with its u32 kind.
            let kind = unsafe { std::ptr::read_unaligned(item.as_ptr().cast::<u32>()) };
            if kind == event_kind::HTTP_SAMPLE && item.len() >= std::mem::size_of::<HttpSample>() {
                if let Some(m) = &mirror {
                    // SAFETY: the kernel wrote an HttpSample; read it unaligned.
                    m.send(unsafe { std::ptr::read_unaligned(item.as_ptr().cast::<HttpSample>()) });
                }
            } else if kind != event_kind::HTTP_SAMPLE
                && item.len() >= std::mem::size_of::<RateEvent>()
            {
                // SAFETY: the kernel wrote a RateEvent; read it unaligned.
                let ev = unsafe { std::ptr::read_unaligned(item.as_ptr().cast::<RateEvent>()) };
                strikes.strike(rate_strike(&ev));
            }
        }
        guard.clear_ready();
    }
}
