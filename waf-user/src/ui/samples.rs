//! What the overview charts and lists: a ring of the last hour of the
//! kernel's verdict counters, the proxy's request counters and the
//! detection engine's (requests inspected by the proxy and the mirror), sampled
//! every second by a task of its own (so a page opened now shows the hour
//! before it), and the last ban changes the firewall's owner told (made,
//! lifted, strikes), from which the overview's live list and its top
//! sources and reasons are drawn.

use std::{
    collections::{BTreeMap, VecDeque},
    sync::{Mutex, Weak},
    time::Duration,
};

use serde::Serialize;
use tokio::sync::broadcast::{self, error::RecvError};
use waf_common::counter;

use super::UiState;
use crate::{
    api::ApiState,
    firewall::{BanChange, BanSource},
    values::{show_net, unix_now},
};

/// Samples kept: one an second for an hour (and the one before, for the
/// first rate).
pub const RING: usize = 3601;
/// Ban changes kept for the live list and the tops.
pub const RECENT: usize = 500;
/// Verdict counters (every packet is in exactly one).
const VERDICTS: usize = counter::VERDICTS as usize;
/// Verdicts that drop the packet (the others pass it).
const DROPS: [u32; 6] = [
    counter::BANNED,
    counter::BLOCKLISTED,
    counter::RATE_LIMITED,
    counter::SYN_LIMITED,
    counter::EMERGENCY,
    counter::SOURCE_POLICY,
];
/// The proxy's counters charted: their `/v1/stats` names.
pub const REQUESTS: [&str; 3] = ["requests", "blocked", "challenged"];
/// The inspection counters charted: the proxy's requests inspected and
/// `would_block` (passive mode), the mirror's requests inspected and
/// detections.
pub const INSPECTION: [&str; 4] = [
    "inspected",
    "would_block",
    "mirror_inspected",
    "mirror_detections",
];

/// The counters at one second.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sample {
    /// Unix seconds.
    pub t: u64,
    /// Packets per verdict since the program was loaded.
    pub packets: [u64; VERDICTS],
    /// The proxy's requests, blocked and challenged since it started.
    pub requests: [u64; 3],
}

/// The [`INSPECTION`] counters since the daemon started, at one second
/// (kept beside its [`Sample`]).
pub type Inspection = [u64; 4];

/// One point of a chart: the rates between two samples.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Point {
    /// Unix seconds (of the later sample).
    pub t: u64,
    /// Packets per second per verdict.
    pub packets: Vec<f64>,
    /// Requests, blocked and challenged per second.
    pub requests: Vec<f64>,
    /// The [`INSPECTION`] counters per second.
    pub inspection: Vec<f64>,
}

/// A verdict's name and whether it drops.
#[derive(Clone, Debug, Serialize)]
pub struct Verdict {
    /// Its counter's name (`banned`, `monitor_rate_limited`...).
    pub name: &'static str,
    /// Whether the packet is dropped.
    pub dropped: bool,
}

/// The verdicts in the order of [`Point::packets`].
pub fn verdicts() -> Vec<Verdict> {
    (0..VERDICTS as u32)
        .map(|i| Verdict {
            name: counter::NAMES[i as usize],
            dropped: DROPS.contains(&i),
        })
        .collect()
}

/// A ban change as the overview lists it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Change {
    /// Rising number (the page asks for those after the last it saw).
    pub seq: u64,
    /// Unix seconds.
    pub t: u64,
    /// `banned`, `lifted (expired)`, `strike (rate)`...
    pub what: String,
    /// Address or prefix.
    pub addr: String,
    /// The ban's reason (empty for strikes).
    pub reason: String,
    /// Who made the ban (`manual`, `detection`, `fleet (web-2)`...).
    pub source: String,
}

/// A name (an address, a reason) and how often it was seen.
pub type Counted = (String, u64);

/// The ring of samples and the last ban changes.
#[derive(Debug, Default)]
pub struct Recorder {
    samples: Mutex<VecDeque<(Sample, Inspection)>>,
    changes: Mutex<(u64, VecDeque<Change>)>,
}

fn source_name(s: BanSource, origin: Option<&str>) -> String {
    let name = serde_json::to_value(crate::api::types::SourceName::from(s))
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    match origin {
        Some(o) => format!("{name} ({o})"),
        None => name,
    }
}

impl Recorder {
    /// Adds a sample (the oldest goes past [`RING`]), without inspection
    /// counters.
    pub fn push(&self, s: Sample) {
        self.push_with(s, Inspection::default());
    }

    /// Adds a sample and the inspection counters of the same second.
    pub fn push_with(&self, s: Sample, inspection: Inspection) {
        let mut ring = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        if ring.len() >= RING {
            ring.pop_front();
        }
        ring.push_back((s, inspection));
    }

    /// Reads the counters now and adds them.
    pub fn sample(&self, api: &ApiState) {
        let mut s = Sample {
            t: unix_now(),
            ..Sample::default()
        };
        if let Ok(c) = api.counters.read() {
            for (slot, c) in s.packets.iter_mut().zip(c) {
                *slot = c.packets;
            }
        }
        let face = |name: &str| {
            api.faces
                .iter()
                .find(|f| f.section() == name)
                .map(|f| f.json())
                .unwrap_or_default()
        };
        let (proxy, mirror) = (face("proxy"), face("mirror"));
        for (slot, name) in s.requests.iter_mut().zip(REQUESTS) {
            *slot = proxy[name].as_u64().unwrap_or(0);
        }
        let inspected = api.findings.as_ref().map_or(0, |f| {
            f.live
                .inspected_proxy
                .load(std::sync::atomic::Ordering::Relaxed)
        });
        let inspection = [
            inspected,
            proxy["would_block"].as_u64().unwrap_or(0),
            mirror["requests"].as_u64().unwrap_or(0),
            mirror["detections"].as_u64().unwrap_or(0),
        ];
        self.push_with(s, inspection);
    }

    /// The latest sample.
    pub fn last(&self) -> Option<Sample> {
        let ring = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        ring.back().map(|(s, _)| *s)
    }

    /// The latest inspection counters.
    pub fn last_inspection(&self) -> Inspection {
        let ring = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        ring.back().map(|(_, i)| *i).unwrap_or_default()
    }

    /// The rates of the samples after Unix second `since`.
    pub fn points_since(&self, since: u64) -> Vec<Point> {
        let ring = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        let start = ring.partition_point(|(s, _)| s.t <= since).max(1);
        (start..ring.len())
            .map(|i| {
                let ((a, ia), (b, ib)) = (&ring[i - 1], &ring[i]);
                let mut p = rate(a, b);
                p.inspection = rates(ia, ib, a.t, b.t);
                p
            })
            .collect()
    }

    /// Records a change the owner told.
    pub fn record(&self, c: &BanChange) {
        let (what, net, reason, source) = match c {
            BanChange::Banned(b) => (
                "banned".to_string(),
                b.net,
                b.meta.reason.to_string(),
                source_name(b.meta.source, b.meta.origin.name().as_deref()),
            ),
            BanChange::Lifted(b, lift) => (
                format!("lifted ({})", lift.as_str()),
                b.net,
                b.meta.reason.to_string(),
                source_name(b.meta.source, b.meta.origin.name().as_deref()),
            ),
            BanChange::Struck(net, kind) => (
                format!("strike ({kind:?})").to_lowercase(),
                *net,
                String::new(),
                String::new(),
            ),
        };
        let mut g = self.changes.lock().unwrap_or_else(|p| p.into_inner());
        g.0 += 1;
        let seq = g.0;
        if g.1.len() >= RECENT {
            g.1.pop_front();
        }
        g.1.push_back(Change {
            seq,
            t: unix_now(),
            what,
            addr: show_net(&net),
            reason,
            source,
        });
    }

    /// The changes after `seq`, the newest `limit` of them, newest first.
    pub fn changes_after(&self, seq: u64, limit: usize) -> Vec<Change> {
        let g = self.changes.lock().unwrap_or_else(|p| p.into_inner());
        g.1.iter()
            .rev()
            .take_while(|c| c.seq > seq)
            .take(limit)
            .cloned()
            .collect()
    }

    /// The `n` addresses with the most changes (bans and strikes) and the
    /// `n` most frequent ban reasons among the last [`RECENT`] changes.
    pub fn tops(&self, n: usize) -> (Vec<Counted>, Vec<Counted>) {
        let g = self.changes.lock().unwrap_or_else(|p| p.into_inner());
        let mut sources: BTreeMap<&str, u64> = BTreeMap::new();
        let mut reasons: BTreeMap<&str, u64> = BTreeMap::new();
        for c in &g.1 {
            if c.what.starts_with("lifted") {
                continue;
            }
            *sources.entry(&c.addr).or_default() += 1;
            if c.what == "banned" {
                *reasons.entry(&c.reason).or_default() += 1;
            }
        }
        let top = |m: BTreeMap<&str, u64>| {
            let mut v: Vec<Counted> = m.into_iter().map(|(k, c)| (k.into(), c)).collect();
            v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            v.truncate(n);
            v
        };
        (top(sources), top(reasons))
    }
}

/// The rates between two samples (counters that went back, after a
/// reload, count as zero); the inspection rates are left empty
/// ([`Recorder::points_since`] fills them).
pub fn rate(a: &Sample, b: &Sample) -> Point {
    Point {
        t: b.t,
        packets: rates(&a.packets, &b.packets, a.t, b.t),
        requests: rates(&a.requests, &b.requests, a.t, b.t),
        inspection: Vec::new(),
    }
}

/// Per second between counters at `ta` and at `tb`.
fn rates(a: &[u64], b: &[u64], ta: u64, tb: u64) -> Vec<f64> {
    let dt = tb.saturating_sub(ta).max(1) as f64;
    a.iter()
        .zip(b)
        .map(|(x, y)| y.saturating_sub(*x) as f64 / dt)
        .collect()
}

/// Samples every second and records the owner's changes until the
/// dashboard's state is dropped.
pub fn spawn(ui: Weak<UiState>, changes: broadcast::Receiver<BanChange>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut changes = Some(changes);
        loop {
            let got = tokio::select! {
                _ = tick.tick() => None,
                r = async { Some(changes.as_mut()?.recv().await) }, if changes.is_some() => {
                    Some(r)
                }
            };
            let Some(ui) = ui.upgrade() else { return };
            match got {
                None => ui.recorder.sample(&ui.api),
                Some(Some(Ok(c))) => ui.recorder.record(&c),
                Some(Some(Err(RecvError::Lagged(n)))) => {
                    tracing::debug!(lost = n, "dashboard: fell behind the ban changes");
                }
                Some(Some(Err(RecvError::Closed)) | None) => changes = None,
            }
        }
    });
}
