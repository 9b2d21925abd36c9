//! What the proxy found, kept, and what operators exclude at run time.
//!
//! - [`record`]: one finding as stored, its bounds, the readers' filter.
//! - [`codec`]: the store's frames (length, checksum, JSON record).
//! - [`store`]: segment files under `state_dir/findings/` with a cap,
//!   written by a thread of its own, read newest first a page at a time.
//! - [`exclusions`]: rule × path × parameter exclusions added through the
//!   API, validated, kept in `state_dir/exclusions.json`, swapped in
//!   atomically for the next request; drafts from a finding.
//!
//! The proxy queues findings here and reads the exclusion set in force;
//! the API pages, drafts and changes. Nothing here blocks a request.

pub mod codec;
pub mod exclusions;
pub mod record;
pub mod store;
#[cfg(test)]
mod tests;

use std::{path::Path, sync::atomic::Ordering};

use serde::Deserialize;

pub use self::{
    exclusions::{ExclusionError, ExclusionSpec, RuntimeExclusion, RuntimeExclusions, Widen},
    record::{Filter, FindingRecord, RequestFacts},
    store::Store,
};
use crate::values::{ConfigError, invalid};

/// `[findings]`: the findings store.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct FindingsConfig {
    /// Keep the proxy's findings in `state_dir/findings/`. Default true.
    pub enabled: bool,
    /// The store's cap in MiB (1 to 4096; default 32): the oldest segment
    /// files are deleted past it.
    pub max_size_mb: u64,
}

impl Default for FindingsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            max_size_mb: 32,
        }
    }
}

impl FindingsConfig {
    /// Checks the cap.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=4096).contains(&self.max_size_mb) {
            return Err(invalid(
                "findings.max_size_mb",
                self.max_size_mb,
                "1 to 4096 (MiB)",
            ));
        }
        Ok(())
    }
}

/// The store (none: `[findings] enabled = false`) and the runtime
/// exclusions, as the daemon shares them with the proxy and the API.
pub struct Findings {
    /// The store.
    pub store: Option<Store>,
    /// The runtime exclusions.
    pub exclusions: RuntimeExclusions,
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
        })
    }
}

impl crate::telemetry::Telemetry for Findings {
    fn section(&self) -> &'static str {
        "findings"
    }

    fn families(&self) -> Vec<crate::telemetry::Family> {
        let Some(s) = &self.store else {
            return Vec::new();
        };
        let n = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        vec![crate::telemetry::Family::by(
            "waf_findings_records",
            "Findings the store wrote, dropped (writer behind), found damaged (segments).",
            crate::telemetry::MetricKind::Counter,
            "outcome",
            [
                ("written", n(&s.stats.written)),
                ("dropped", n(&s.stats.dropped)),
                ("corrupt_segments", n(&s.stats.corrupt)),
                ("write_errors", n(&s.stats.write_errors)),
            ],
        )]
    }

    fn json(&self) -> serde_json::Value {
        let n = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        let mut v = serde_json::json!({
            "runtime_exclusions": self.exclusions.list().len(),
        });
        if let Some(s) = &self.store {
            v["written"] = n(&s.stats.written).into();
            v["dropped"] = n(&s.stats.dropped).into();
            v["corrupt_segments"] = n(&s.stats.corrupt).into();
            v["write_errors"] = n(&s.stats.write_errors).into();
        }
        v
    }
}
