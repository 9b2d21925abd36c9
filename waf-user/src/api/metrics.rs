//! `/metrics`: the kernel's verdict counters, the firewall's view and the
//! faces' counters in the Prometheus/OpenMetrics text format, through
//! prometheus-client (typed families, label escaping), read at scrape time.

use std::{collections::BTreeMap, sync::atomic::Ordering};

use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeMetric as _},
    metrics::{MetricType, counter::ConstCounter, gauge::ConstGauge},
    registry::Registry,
};
use waf_common::{Counter, counter};

use super::ApiState;
use crate::telemetry::{Family, MetricKind};

/// Kernel counters by name (for stats and metrics).
pub fn named_counters(c: &[Counter]) -> BTreeMap<&'static str, Counter> {
    (0..counter::COUNT as usize)
        .filter_map(|i| c.get(i).map(|v| (counter::NAMES[i], *v)))
        .collect()
}

/// Everything one scrape shows, taken before encoding.
#[derive(Debug)]
struct Scrape {
    families: Vec<Family>,
}

fn encode_one(enc: &mut DescriptorEncoder<'_>, f: &Family) -> Result<(), std::fmt::Error> {
    let ty = match f.kind {
        MetricKind::Counter => MetricType::Counter,
        MetricKind::Gauge => MetricType::Gauge,
    };
    let mut m = enc.encode_descriptor(f.name, f.help, None, ty)?;
    for (labels, v) in &f.values {
        let fam = m.encode_family(labels)?;
        match f.kind {
            MetricKind::Counter => ConstCounter::new(*v).encode(fam)?,
            MetricKind::Gauge => ConstGauge::new(*v as i64).encode(fam)?,
        }
    }
    Ok(())
}

impl Collector for Scrape {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for f in &self.families {
            encode_one(&mut enc, f)?;
        }
        Ok(())
    }
}

fn leak_label(s: &str) -> &'static str {
    // Alarm kinds and counter names come from a small fixed set; interned
    // so the family can borrow them for the whole scrape.
    static SEEN: std::sync::Mutex<Vec<&'static str>> = std::sync::Mutex::new(Vec::new());
    let mut seen = SEEN.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(x) = seen.iter().find(|x| **x == s) {
        return x;
    }
    if seen.len() >= 1024 {
        return "other";
    }
    let x: &'static str = Box::leak(s.to_string().into_boxed_str());
    seen.push(x);
    x
}

/// The text of one scrape.
pub fn render(s: &ApiState) -> Result<String, String> {
    use MetricKind::{Counter as C, Gauge as G};
    let counters = s.counters.read().map_err(|e| e.to_string())?;
    let named = named_counters(&counters);
    let v = s.fw.view();
    let st = &v.stats;
    let mut fams = vec![
        Family::by(
            "waf_xdp_packets",
            "Packets seen by the XDP program, by verdict or event.",
            C,
            "verdict",
            named.iter().map(|(k, c)| (*k, c.packets)),
        ),
        Family::by(
            "waf_xdp_bytes",
            "Bytes seen by the XDP program, by verdict or event.",
            C,
            "verdict",
            named.iter().map(|(k, c)| (*k, c.bytes)),
        ),
        Family::by(
            "waf_bans_added",
            "Bans made, by source.",
            C,
            "source",
            st.bans_added.iter().map(|(k, n)| (*k, *n)),
        ),
        Family::by(
            "waf_strikes",
            "Strikes counted, by kind.",
            C,
            "kind",
            st.strikes.iter().map(|(k, n)| (*k, *n)),
        ),
        Family::by(
            "waf_mode",
            "Modes in force (1 = on).",
            G,
            "mode",
            [
                ("monitor", u64::from(v.modes.monitor)),
                ("emergency", u64::from(v.modes.emergency)),
            ],
        ),
        Family::by(
            "waf_alarm",
            "Raised alarms.",
            G,
            "kind",
            v.alarms.iter().map(|a| (leak_label(&a.kind), 1)),
        ),
    ];
    let c = v.counts;
    fams.push(Family {
        name: "waf_bans",
        help: "Bans in force, by family and kind.",
        kind: G,
        values: [
            ("ipv4", "address", c.v4_hosts),
            ("ipv4", "prefix", c.v4_prefixes),
            ("ipv6", "address", c.v6_hosts),
            ("ipv6", "prefix", c.v6_prefixes),
        ]
        .into_iter()
        .map(|(f, k, n)| (vec![("family", f), ("kind", k)], n))
        .collect(),
    });
    for (name, help, n) in [
        (
            "waf_bans_removed",
            "Bans lifted by an operator.",
            st.bans_removed,
        ),
        ("waf_bans_expired", "Bans that ran out.", st.bans_expired),
        (
            "waf_bans_evicted",
            "Bans evicted because the map was full.",
            st.bans_evicted,
        ),
        (
            "waf_bans_refused_full",
            "Bans refused because the map was full.",
            st.bans_refused_full,
        ),
        (
            "waf_journal_errors",
            "Failed journal writes.",
            st.journal_errors,
        ),
        (
            "waf_strikes_dropped",
            "Strikes dropped: the owner's queue was full.",
            st.strikes_dropped,
        ),
        (
            "waf_strikes_protected",
            "Strikes against allowlisted sources (ignored).",
            st.strikes_protected,
        ),
        (
            "waf_api_panics",
            "API handlers that panicked (answered 500).",
            s.panics.load(Ordering::Relaxed),
        ),
    ] {
        fams.push(Family::one(name, help, C, n));
    }
    for (name, help, n) in [
        (
            "waf_strikes_pending",
            "Strikes pending over all sources.",
            v.strikes_pending as u64,
        ),
        (
            "waf_uptime_seconds",
            "Daemon uptime.",
            s.started.elapsed().as_secs(),
        ),
    ] {
        fams.push(Family::one(name, help, G, n));
    }
    fams.retain(|f| !f.values.is_empty());
    for face in &s.faces {
        fams.extend(face.families());
    }
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Scrape { families: fams }));
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &registry).map_err(|e| e.to_string())?;
    Ok(out)
}
