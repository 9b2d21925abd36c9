//! What the proxy found, kept, and what operators exclude at run time.
//!
//! - [`record`]: one finding as stored, its bounds, the readers' filter.
//! - [`codec`]: the store's frames (length, checksum, JSON record).
//! - [`store`]: segment files under `state_dir/findings/` with a cap,
//!   written by a thread of its own, read newest first a page at a time.
//! - [`keep`]: which findings the store keeps (`[findings] keep`): blocked
//!   ones always, passed ones sampled by default.
//! - [`live`] and [`sketch`]: the last hour's top sources, paths, rules and
//!   categories in fixed memory, for the dashboard's overview.
//! - [`exclusions`]: rule × path × parameter exclusions added through the
//!   API, validated, kept in `state_dir/exclusions.json`, swapped in
//!   atomically for the next request; drafts from a finding.
//!
//! The proxy and the mirror hand each verdict to [`Findings::record`]
//! (counted, ranked live, sampled, queued); the proxy reads the exclusion
//! set in force; the API pages, drafts and changes. Nothing here blocks a
//! request.

pub mod codec;
pub mod exclusions;
pub mod keep;
pub mod live;
pub mod record;
pub mod sketch;
pub mod store;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_keep;

use std::{path::Path, sync::atomic::Ordering};

use serde::Deserialize;

pub use self::{
    exclusions::{ExclusionError, ExclusionSpec, RuntimeExclusion, RuntimeExclusions, Widen},
    keep::{Keep, Sampler},
    live::{Live, LiveTops},
    record::{Filter, FindingRecord, Origin, RequestFacts},
    store::Store,
};
use crate::{
    detect::Verdict,
    values::{ConfigError, invalid},
};

/// Now, in Unix milliseconds (the records' time).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// `[findings]`: the findings store.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct FindingsConfig {
    /// Keep the proxy's findings in `state_dir/findings/`. Default true.
    pub enabled: bool,
    /// The store's cap in MiB (1 to 4096; default 32): the oldest segment
    /// files are deleted past it.
    pub max_size_mb: u64,
    /// Which findings are kept: `"sampled"` (default: every finding of a
    /// blocked request, passed ones sampled), `"blocked"` or `"all"`.
    pub keep: Keep,
    /// Under `keep = "sampled"`: passed findings kept per minute at most
    /// (1 to 100000; default 120).
    pub passed_per_minute: u32,
}

impl Default for FindingsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            max_size_mb: 128,
            keep: Keep::Sampled,
            passed_per_minute: 120,
        }
    }
}

impl FindingsConfig {
    /// Checks the cap and the sampling budget.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=4096).contains(&self.max_size_mb) {
            return Err(invalid(
                "findings.max_size_mb",
                self.max_size_mb,
                "1 to 4096 (MiB)",
            ));
        }
        if !(1..=100_000).contains(&self.passed_per_minute) {
            return Err(invalid(
                "findings.passed_per_minute",
                self.passed_per_minute,
                "1 to 100000 passed findings a minute (to keep none, set keep = \"blocked\")",
            ));
        }
        Ok(())
    }
}

/// The store (none: `[findings] enabled = false`), its keep policy, the
/// live tops and the runtime exclusions, as the daemon shares them with
/// the proxy, the mirror, the API and the dashboard.
pub struct Findings {
    /// The store.
    pub store: Option<Store>,
    /// The runtime exclusions.
    pub exclusions: RuntimeExclusions,
    /// Which findings the store keeps, and what it skipped.
    pub keep: Sampler,
    /// The last hour's tops and the inspection counters (kept whether the
    /// store is on or not).
    pub live: Live,
}

impl Findings {
    /// Opens both under `state_dir`.
    pub fn open(cfg: &FindingsConfig, state_dir: &Path) -> std::io::Result<Findings> {
        let store = if cfg.enabled {
            Some(Store::open(
                &state_dir.join("findings"),
                cfg.max_size_mb << 20,
            )?)
        } else {
            None
        };
        Ok(Findings {
            store,
            exclusions: RuntimeExclusions::load(&state_dir.join("exclusions.json")),
            keep: Sampler::new(cfg.keep, cfg.passed_per_minute),
            live: Live::default(),
        })
    }

    /// One inspected request: counted; its findings (if any) ranked in the
    /// live tops and, as the keep policy says, queued for the store. Never
    /// waits on the store. `time_ms` is Unix milliseconds.
    pub fn record(&self, v: &Verdict, req: &RequestFacts, time_ms: u64) {
        self.live.inspected(req.origin);
        if v.attacks.is_empty() {
            return;
        }
        let verdict = record::verdict_label(v, req.origin);
        let source = req.source.to_string();
        self.live.add(
            time_ms / 1000,
            &live::Seen {
                source: &source,
                path: req.path,
                findings: v
                    .attacks
                    .iter()
                    .map(|f| (f.rule.as_str(), f.kind.name()))
                    .collect(),
                verdict,
            },
        );
        let Some(store) = &self.store else { return };
        let mut records = FindingRecord::from_verdict(v, req, time_ms);
        self.keep.admit(&mut records, time_ms / 60_000);
        if !records.is_empty() {
            store.record(records);
        }
    }
}

impl crate::telemetry::Telemetry for Findings {
    fn section(&self) -> &'static str {
        "findings"
    }

    fn families(&self) -> Vec<crate::telemetry::Family> {
        let n = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        let mut out = vec![crate::telemetry::Family::by(
            "waf_inspected_requests",
            "Requests the detection engine inspected, by who sent them to it.",
            crate::telemetry::MetricKind::Counter,
            "origin",
            [
                ("proxy", n(&self.live.inspected_proxy)),
                ("mirror", n(&self.live.inspected_mirror)),
            ],
        )];
        if let Some(s) = &self.store {
            out.push(crate::telemetry::Family::by(
                "waf_findings_records",
                "Findings the store wrote, skipped ([findings] keep), dropped (writer \
                 behind), found damaged (segments).",
                crate::telemetry::MetricKind::Counter,
                "outcome",
                [
                    ("written", n(&s.stats.written)),
                    ("skipped", n(&self.keep.skipped)),
                    ("dropped", n(&s.stats.dropped)),
                    ("corrupt_segments", n(&s.stats.corrupt)),
                    ("write_errors", n(&s.stats.write_errors)),
                ],
            ));
        }
        out
    }

    fn json(&self) -> serde_json::Value {
        let n = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        let mut v = serde_json::json!({
            "runtime_exclusions": self.exclusions.list().len(),
            "inspected": {
                "proxy": n(&self.live.inspected_proxy),
                "mirror": n(&self.live.inspected_mirror),
            },
        });
        if let Some(s) = &self.store {
            v["written"] = n(&s.stats.written).into();
            v["skipped"] = n(&self.keep.skipped).into();
            v["dropped"] = n(&s.stats.dropped).into();
            v["corrupt_segments"] = n(&s.stats.corrupt).into();
            v["write_errors"] = n(&s.stats.write_errors).into();
        }
        v
    }
}
