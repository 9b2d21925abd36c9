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
use crate::{
    firewall::view::View,
    telemetry::{Family, MetricKind},
};

/// Kernel counters by name (for stats and metrics).
pub fn named_counters(c: &[Counter]) -> BTreeMap<&'static str, Counter> {
    (0..counter::COUNT as usize)
        .filter_map(|i| c.get(i).map(|v| (counter::NAMES[i], *v)))
        .collect()
}

/// The source-policy tags that counted packets, with their counters (for
/// stats and metrics).
pub fn source_tag_counters<'a>(
    s: &ApiState,
    p: &'a crate::sources::SourcePolicy,
) -> Result<Vec<(&'a crate::sources::Tag, Counter)>, String> {
    let c = s
        .counters
        .read_sources(p.tags().len())
        .map_err(|e| e.to_string())?;
    Ok(p.tags()
        .iter()
        .zip(c)
        .filter(|(_, c)| c.packets > 0)
        .collect())
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
    let counters = s.counters.read().map_err(|e| e.to_string())?;
    let v = s.fw.view();
    let mut fams = kernel_families(&named_counters(&counters));
    fams.extend(firewall_families(&v));
    fams.extend(source_families(s, &v)?);
    fams.extend(scalar_families(s, &v));
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

/// The XDP program's verdict counters.
fn kernel_families(named: &BTreeMap<&'static str, Counter>) -> Vec<Family> {
    vec![
        Family::by(
            "waf_xdp_packets",
            "Packets seen by the XDP program, by verdict or event.",
            MetricKind::Counter,
            "verdict",
            named.iter().map(|(k, c)| (*k, c.packets)),
        ),
        Family::by(
            "waf_xdp_bytes",
            "Bytes seen by the XDP program, by verdict or event.",
            MetricKind::Counter,
            "verdict",
            named.iter().map(|(k, c)| (*k, c.bytes)),
        ),
    ]
}

/// What each source policy's tags (a country, a network, a provider,
/// bogons) dropped or, in monitor mode, would have.
fn source_families(s: &ApiState, v: &View) -> Result<Vec<Family>, String> {
    let Some(p) = &v.sources else {
        return Ok(Vec::new());
    };
    let counted = source_tag_counters(s, p)?;
    let fam = |name, help, f: fn(&Counter) -> u64| Family {
        name,
        help,
        kind: MetricKind::Counter,
        values: counted
            .iter()
            .map(|(t, c)| {
                (
                    vec![("policy", t.policy), ("tag", leak_label(&t.name))],
                    f(c),
                )
            })
            .collect(),
    };
    Ok(vec![
        fam(
            "waf_source_policy_packets",
            "Packets a source policy dropped (or, in monitor mode, would have), by tag.",
            |c| c.packets,
        ),
        fam(
            "waf_source_policy_bytes",
            "Bytes a source policy dropped (or would have), by tag.",
            |c| c.bytes,
        ),
    ])
}

/// The firewall's labelled families: bans made and in force, strikes,
/// modes, alarms.
fn firewall_families(v: &View) -> Vec<Family> {
    use MetricKind::{Counter as C, Gauge as G};
    let st = &v.stats;
    let c = v.counts;
    vec![
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
        Family {
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
        },
    ]
}

/// Families of one value: the firewall's totals, the API's panics, the
/// pending strikes and the uptime.
fn scalar_families(s: &ApiState, v: &View) -> Vec<Family> {
    use MetricKind::{Counter as C, Gauge as G};
    let st = &v.stats;
    [
        (
            "waf_bans_removed",
            "Bans lifted by an operator.",
            C,
            st.bans_removed,
        ),
        ("waf_bans_expired", "Bans that ran out.", C, st.bans_expired),
        (
            "waf_bans_evicted",
            "Bans evicted because the map was full.",
            C,
            st.bans_evicted,
        ),
        (
            "waf_bans_refused_full",
            "Bans refused because the map was full.",
            C,
            st.bans_refused_full,
        ),
        (
            "waf_journal_errors",
            "Failed journal writes.",
            C,
            st.journal_errors,
        ),
        (
            "waf_strikes_dropped",
            "Strikes dropped: the owner's queue was full.",
            C,
            st.strikes_dropped,
        ),
        (
            "waf_strikes_protected",
            "Strikes against allowlisted sources (ignored).",
            C,
            st.strikes_protected,
        ),
        (
            "waf_api_panics",
            "API handlers that panicked (answered 500).",
            C,
            s.panics.load(Ordering::Relaxed),
        ),
        (
            "waf_strikes_pending",
            "Strikes pending over all sources.",
            G,
            v.strikes_pending as u64,
        ),
        (
            "waf_uptime_seconds",
            "Daemon uptime.",
            G,
            s.started.elapsed().as_secs(),
        ),
    ]
    .into_iter()
    .map(|(name, help, kind, n)| Family::one(name, help, kind, n))
    .collect()
}
