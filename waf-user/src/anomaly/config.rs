//! `[anomaly]`: whether the per-source behaviour model runs, which baseline
//! it scores against, from which score a source is flagged, and the window
//! its features are counted over.

use std::{path::PathBuf, time::Duration};

use serde::Deserialize;

use crate::values::Dur;

/// What the model does with a flagged source.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum AnomalyMode {
    /// Nothing is tracked.
    #[default]
    Off,
    /// Flags are logged, never acted on; the daemon keeps learning
    /// ([`super::Tracker::relearn`]).
    Monitor,
    /// Flags are strikes.
    Enforce,
}

impl AnomalyMode {
    /// As written in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            AnomalyMode::Off => "off",
            AnomalyMode::Monitor => "monitor",
            AnomalyMode::Enforce => "enforce",
        }
    }
}

/// The bounds of `threshold` and `long_threshold`. Isolation-forest
/// scores lie in 0..1: about 0.5 and below is ordinary, and a window few
/// training windows resemble scores higher the fewer there were. Unless
/// set, each window's model flags from its baseline's `threshold_hint`
/// (the score 99.8% of the training log's sources stayed under), which
/// `waf learn` prints.
pub const THRESHOLD: (f64, f64) = (0.5, 0.99);

/// The anomaly model's config.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AnomalyConfig {
    /// Off, monitor (log flags, keep learning) or enforce (flags are
    /// strikes).
    pub mode: AnomalyMode,
    /// The baseline `waf learn` wrote (required by `enforce`; in `monitor`
    /// without one the daemon learns one from the traffic it sees).
    pub baseline: Option<PathBuf>,
    /// The isolation-forest score (0.5 to 0.99) from which a source's
    /// window is flagged; unset: the baseline's `threshold_hint`.
    pub threshold: Option<f64>,
    /// The window a source's features are counted over (30s to 1h). A
    /// baseline learned with another window is refused
    /// ([`AnomalyConfig::check_model`]).
    pub window: Dur,
    /// Requests a source sends in a window before it is first scored (5 to
    /// 10,000); it is scored again each time its count doubles.
    pub min_requests: u32,
    /// The long window (10m to 1d, longer than `window`; "0s": none),
    /// for sources too slow to reach `min_requests` in a window.
    pub long_window: Dur,
    /// Requests a source sends in a long window before it is first scored
    /// (5 to 10,000).
    pub long_min_requests: u32,
    /// As `threshold`, for the long window's model.
    pub long_threshold: Option<f64>,
    /// How often the daemon relearns in `monitor` mode (5m to 7d).
    pub relearn: Dur,
}

impl Default for AnomalyConfig {
    fn default() -> Self {
        Self {
            mode: AnomalyMode::Off,
            baseline: None,
            threshold: None,
            window: Dur::secs(300),
            min_requests: 10,
            long_window: Dur::secs(3600),
            long_min_requests: 5,
            long_threshold: None,
            relearn: Dur::secs(3600),
        }
    }
}

/// The bounds of `window`.
pub const WINDOW: (Duration, Duration) = (Duration::from_secs(30), Duration::from_secs(3600));
/// The bounds of `long_window` (when not 0).
pub const LONG_WINDOW: (Duration, Duration) =
    (Duration::from_secs(600), Duration::from_secs(86_400));
/// The bounds of `min_requests`.
pub const MIN_REQUESTS: (u32, u32) = (5, 10_000);
/// The bounds of `relearn`.
const RELEARN: (Duration, Duration) = (Duration::from_secs(300), Duration::from_secs(7 * 86_400));

fn invalid(key: &str, value: impl std::fmt::Display, allowed: &str) -> String {
    format!("anomaly.{key} = {value}: {allowed}")
}

impl AnomalyConfig {
    /// Checks ranges: each message names the key (`anomaly.threshold = 1.5:
    /// ...`) and what is allowed.
    pub fn validate(&self) -> Result<(), String> {
        for (key, t) in [
            ("threshold", self.threshold),
            ("long_threshold", self.long_threshold),
        ] {
            if let Some(t) = t
                && !(THRESHOLD.0..=THRESHOLD.1).contains(&t)
            {
                return Err(invalid(
                    key,
                    t,
                    "0.5 to 0.99 (an isolation-forest score: 0.5 and below is ordinary; `waf \
                     learn` prints the baseline's threshold_hint; leave it out to use it)",
                ));
            }
        }
        if !(WINDOW.0..=WINDOW.1).contains(&self.window.0) || self.window.0.subsec_nanos() != 0 {
            return Err(invalid("window", self.window, "whole seconds, 30s to 1h"));
        }
        if !(MIN_REQUESTS.0..=MIN_REQUESTS.1).contains(&self.min_requests) {
            return Err(invalid("min_requests", self.min_requests, "5 to 10000"));
        }
        if let Some(long) = self.long_params()
            && (!(LONG_WINDOW.0..=LONG_WINDOW.1).contains(&self.long_window.0)
                || self.long_window.0.subsec_nanos() != 0
                || long.window_secs <= self.window_secs())
        {
            return Err(invalid(
                "long_window",
                self.long_window,
                "whole seconds, 10m to 1d and longer than window (or \"0s\": no long window)",
            ));
        }
        if !(MIN_REQUESTS.0..=MIN_REQUESTS.1).contains(&self.long_min_requests) {
            return Err(invalid(
                "long_min_requests",
                self.long_min_requests,
                "5 to 10000",
            ));
        }
        if !(RELEARN.0..=RELEARN.1).contains(&self.relearn.0) {
            return Err(invalid("relearn", self.relearn, "5m to 7d"));
        }
        if let Some(p) = &self.baseline
            && p.as_os_str().is_empty()
        {
            return Err(invalid(
                "baseline",
                "\"\"",
                "a file path (learn one with `waf learn ACCESS_LOG --out FILE`)",
            ));
        }
        if self.mode == AnomalyMode::Enforce && self.baseline.is_none() {
            return Err(invalid(
                "mode",
                "\"enforce\"",
                "enforce needs a baseline: learn one with `waf learn ACCESS_LOG --out FILE` and \
                 set anomaly.baseline, or use mode = \"monitor\" to learn from live traffic",
            ));
        }
        Ok(())
    }

    /// The window in whole seconds.
    pub fn window_secs(&self) -> u64 {
        self.window.0.as_secs()
    }

    /// The window and checkpoints.
    pub fn params(&self) -> super::Params {
        super::Params {
            window_secs: self.window_secs().max(1),
            min_requests: self.min_requests.max(1),
        }
    }

    /// The long window and its checkpoints (None: `long_window = "0s"`).
    pub fn long_params(&self) -> Option<super::Params> {
        (!self.long_window.0.is_zero()).then(|| super::Params {
            window_secs: self.long_window.0.as_secs().max(1),
            min_requests: self.long_min_requests.max(1),
        })
    }

    /// Refuses a baseline whose features were counted otherwise (another
    /// window or `min_requests`, or another long window when both have
    /// one): its scores would mean nothing here. A baseline without a long
    /// window's model leaves the long window unscored (`monitor` mode
    /// learns one); with `long_window = "0s"` a baseline's long model is
    /// not used.
    pub fn check_model(&self, model: &super::Model) -> Result<(), String> {
        let file = self
            .baseline
            .as_deref()
            .map_or("(none)".into(), |p| p.display().to_string());
        let m = model.params();
        if m != self.params() {
            return Err(format!(
                "anomaly.baseline {file}: learned with window = \"{}\" and min_requests = {}, \
                 but [anomaly] says window = \"{}\" and min_requests = {}: set them alike, or \
                 relearn with `waf learn --window {} --min-requests {}`",
                Dur::secs(m.window_secs),
                m.min_requests,
                self.window,
                self.min_requests,
                self.window,
                self.min_requests
            ));
        }
        if let (Some(want), Some(long)) = (self.long_params(), model.long()) {
            let l = long.params();
            if l != want {
                return Err(format!(
                    "anomaly.baseline {file}: its long window was learned with long_window = \
                     \"{}\" and long_min_requests = {}, but [anomaly] says long_window = \
                     \"{}\" and long_min_requests = {}: set them alike, or relearn with `waf \
                     learn --long-window {} --long-min-requests {}`",
                    Dur::secs(l.window_secs),
                    l.min_requests,
                    self.long_window,
                    self.long_min_requests,
                    self.long_window,
                    self.long_min_requests
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<AnomalyConfig, String> {
        let c: AnomalyConfig = toml::from_str(s).map_err(|e| e.to_string())?;
        c.validate()?;
        Ok(c)
    }

    #[test]
    fn defaults_are_valid_and_off() {
        let c = parse("").unwrap();
        assert_eq!(c, AnomalyConfig::default());
        assert_eq!(c.mode, AnomalyMode::Off);
        assert_eq!(c.threshold, None);
        assert_eq!(c.window_secs(), 300);
        assert_eq!(
            c.long_params(),
            Some(crate::anomaly::Params {
                window_secs: 3600,
                min_requests: 5
            })
        );
        assert_eq!(c.min_requests, 10);
        assert_eq!(c.relearn, Dur::secs(3600));
    }

    #[test]
    fn a_full_section() {
        let c = parse(
            r#"
            mode = "enforce"
            baseline = "/var/lib/waf/anomaly.json"
            threshold = 0.7
            window = "10m"
            min_requests = 20
            relearn = "6h"
            long_window = "6h"
            long_min_requests = 8
            long_threshold = 0.68
            "#,
        )
        .unwrap();
        assert_eq!(c.mode, AnomalyMode::Enforce);
        assert_eq!(c.mode.as_str(), "enforce");
        assert_eq!(
            c.baseline.as_deref(),
            Some("/var/lib/waf/anomaly.json".as_ref())
        );
        assert_eq!(c.threshold, Some(0.7));
        assert_eq!(c.long_threshold, Some(0.68));
        assert_eq!(
            c.long_params().map(|p| (p.window_secs, p.min_requests)),
            Some((21_600, 8))
        );
        assert_eq!(parse("long_window = \"0s\"").unwrap().long_params(), None);
        assert_eq!(c.window_secs(), 600);
        assert_eq!(c.min_requests, 20);
        let m = parse("mode = \"monitor\"").unwrap();
        assert_eq!(m.mode, AnomalyMode::Monitor);
        assert!(m.baseline.is_none());
    }

    #[test]
    fn out_of_range_values_name_the_key_and_the_range() {
        for (text, key, range) in [
            ("threshold = 0.49", "anomaly.threshold", "0.5 to 0.99"),
            ("threshold = 1.0", "anomaly.threshold", "0.5 to 0.99"),
            ("threshold = nan", "anomaly.threshold", "0.5 to 0.99"),
            ("window = \"29s\"", "anomaly.window", "30s to 1h"),
            ("window = \"2h\"", "anomaly.window", "30s to 1h"),
            ("window = \"90500ms\"", "anomaly.window", "whole seconds"),
            ("min_requests = 4", "anomaly.min_requests", "5 to 10000"),
            (
                "long_threshold = 0.3",
                "anomaly.long_threshold",
                "0.5 to 0.99",
            ),
            ("long_window = \"9m\"", "anomaly.long_window", "10m to 1d"),
            ("long_window = \"2d\"", "anomaly.long_window", "10m to 1d"),
            (
                "window = \"1h\"\nlong_window = \"1h\"",
                "anomaly.long_window",
                "longer than window",
            ),
            (
                "long_min_requests = 4",
                "anomaly.long_min_requests",
                "5 to 10000",
            ),
            ("min_requests = 10001", "anomaly.min_requests", "5 to 10000"),
            ("relearn = \"1m\"", "anomaly.relearn", "5m to 7d"),
            ("relearn = \"8d\"", "anomaly.relearn", "5m to 7d"),
            ("baseline = \"\"", "anomaly.baseline", "file path"),
            ("mode = \"enforce\"", "anomaly.mode", "needs a baseline"),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.contains(key) && e.contains(range), "{text}: {e}");
        }
    }

    #[test]
    fn unknown_keys_and_modes_are_refused() {
        assert!(parse("treshold = 0.7").is_err());
        assert!(parse("mode = \"on\"").is_err());
        assert!(parse("min_requests = -1").is_err());
    }
}
