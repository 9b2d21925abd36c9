//! `[monitors.*]` as written in the config file: one table per monitor,
//! absent = off. Every key but `usage.routes` has a default (the module
//! doc of [`super`] has the table).

use serde::Deserialize;

use crate::{http::PathGlob, values::Dur};

/// What a monitor does when it fires.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum MonitorAction {
    /// One strike against the source (`[ban_policy] strikes` within
    /// `window` ban it).
    Strike,
    /// A ban at once (the ban policy's length; the allowlist still wins).
    Ban,
}

impl MonitorAction {
    /// The name as written in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            MonitorAction::Strike => "strike",
            MonitorAction::Ban => "ban",
        }
    }
}

/// The most globs in `usage.routes` and in `honeypot.paths`.
pub const MAX_GLOBS: usize = 64;
/// The most names in `honeypot.fields`.
pub const MAX_FIELDS: usize = 64;
/// The largest `not_found.count`: the distinct paths of a source are held
/// one by one, so this bounds its memory.
pub const MAX_DISTINCT: u32 = 64;
/// The largest `honeypot.min_form_seconds`.
pub const MAX_FORM_SECONDS: f64 = 3600.0;

/// `[monitors]`: every monitor, each off unless its table is present.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct MonitorsConfig {
    /// Calls to chosen routes.
    pub usage: Option<UsageConfig>,
    /// 404 answers, counted by distinct path.
    pub not_found: Option<StatusConfig>,
    /// 401 and 403 answers.
    pub auth_failures: Option<StatusConfig>,
    /// 5xx answers (502, 503 and 504 aside).
    pub server_errors: Option<StatusConfig>,
    /// Trap paths, hidden form fields, forms posted too fast.
    pub honeypot: Option<HoneypotConfig>,
    /// Browser user agents with headers no such browser sends.
    pub headers: Option<HeadersConfig>,
}

/// `[monitors.usage]`: more than `count` calls to one of `routes` within
/// `window` (default 100 per 1m, strike).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct UsageConfig {
    /// Path globs (`*` any run of characters, `/` included; case
    /// ignored), each counted on its own. Required.
    pub routes: Vec<String>,
    /// Calls allowed per window and glob (default 100).
    pub count: Option<u32>,
    /// Default 1m.
    pub window: Option<Dur>,
    /// Default `strike`.
    pub action: Option<MonitorAction>,
}

/// `[monitors.not_found]`, `[monitors.auth_failures]`,
/// `[monitors.server_errors]`: `count` answers within `window`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct StatusConfig {
    /// Default 30 (distinct paths, at most 64) for `not_found`, 10 for
    /// the others.
    pub count: Option<u32>,
    /// Default 1m.
    pub window: Option<Dur>,
    /// Default `strike`.
    pub action: Option<MonitorAction>,
}

/// `[monitors.honeypot]`: `count` hits within `window` (default 1 per 1h,
/// ban).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct HoneypotConfig {
    /// A form posted sooner than this after the source got the page it
    /// came from (seconds, default 2; 0: off).
    pub min_form_seconds: f64,
    /// Names of hidden form fields a person never fills (exact, as
    /// decoded).
    pub fields: Vec<String>,
    /// Trap path globs (case ignored): `"/wp-admin*"`, `"/.env"`.
    pub paths: Vec<String>,
    /// Default 1.
    pub count: Option<u32>,
    /// Default 1h.
    pub window: Option<Dur>,
    /// Default `ban`.
    pub action: Option<MonitorAction>,
}

impl Default for HoneypotConfig {
    fn default() -> Self {
        HoneypotConfig {
            min_form_seconds: 2.0,
            fields: Vec::new(),
            paths: Vec::new(),
            count: None,
            window: None,
            action: None,
        }
    }
}

/// `[monitors.headers]`: `count` requests with impossible browser headers
/// within `window` (default 3 per 10m, strike).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct HeadersConfig {
    /// Default 3.
    pub count: Option<u32>,
    /// Default 10m.
    pub window: Option<Dur>,
    /// Default `strike`.
    pub action: Option<MonitorAction>,
}

/// A monitor's threshold, resolved: the event that makes `threshold`
/// events within `window` fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Limit {
    /// Events that fire (`count`, or `count + 1` for `usage`).
    pub threshold: u64,
    /// The sliding window.
    pub window: Dur,
    /// What a hit does.
    pub action: MonitorAction,
}

/// The defaults of one monitor.
struct Defaults {
    count: u32,
    window: Dur,
    action: MonitorAction,
}

fn resolve(
    key: &str,
    count: Option<u32>,
    window: Option<Dur>,
    action: Option<MonitorAction>,
    d: Defaults,
) -> Result<(u32, Limit), String> {
    let count = count.unwrap_or(d.count);
    if count == 0 {
        return Err(format!("monitors.{key}.count: must be at least 1"));
    }
    let window = window.unwrap_or(d.window);
    if window.0.as_millis() == 0 {
        return Err(format!(
            "monitors.{key}.window: must be at least 1ms (got {window})"
        ));
    }
    let limit = Limit {
        threshold: u64::from(count),
        window,
        action: action.unwrap_or(d.action),
    };
    Ok((count, limit))
}

fn globs(key: &str, patterns: &[String]) -> Result<Vec<PathGlob>, String> {
    if patterns.len() > MAX_GLOBS {
        return Err(format!("monitors.{key}: at most {MAX_GLOBS} globs"));
    }
    patterns
        .iter()
        .map(|p| {
            if !p.starts_with(['/', '*']) {
                return Err(format!(
                    "monitors.{key}: {:?} must start with / or *",
                    p.chars().take(80).collect::<String>()
                ));
            }
            PathGlob::case_insensitive(p).map_err(|e| format!("monitors.{key}: {e}"))
        })
        .collect()
}

/// `[monitors.usage]`, checked and compiled.
pub(super) struct Usage {
    pub limit: Limit,
    pub globs: Vec<PathGlob>,
}

/// `[monitors.honeypot]`, checked and compiled.
pub(super) struct Honeypot {
    pub limit: Limit,
    pub traps: Vec<PathGlob>,
    pub fields: Vec<String>,
    /// None: the timing check is off.
    pub min_form: Option<std::time::Duration>,
}

/// Every monitor, checked and compiled (None: off).
pub(super) struct Compiled {
    pub usage: Option<Usage>,
    pub not_found: Option<Limit>,
    pub auth_failures: Option<Limit>,
    pub server_errors: Option<Limit>,
    pub honeypot: Option<Honeypot>,
    pub headers: Option<Limit>,
}

const MINUTE: Dur = Dur::secs(60);

impl MonitorsConfig {
    /// Whether every monitor is off.
    pub fn is_empty(&self) -> bool {
        self.usage.is_none()
            && self.not_found.is_none()
            && self.auth_failures.is_none()
            && self.server_errors.is_none()
            && self.honeypot.is_none()
            && self.headers.is_none()
    }

    /// Checks every key; the message names it (`monitors.usage.count:
    /// must be at least 1`).
    pub fn validate(&self) -> Result<(), String> {
        self.compile().map(|_| ())
    }

    pub(super) fn compile(&self) -> Result<Compiled, String> {
        let strike = MonitorAction::Strike;
        let usage = match &self.usage {
            None => None,
            Some(u) => {
                let d = Defaults {
                    count: 100,
                    window: MINUTE,
                    action: strike,
                };
                let (_, mut limit) = resolve("usage", u.count, u.window, u.action, d)?;
                // "More than count": the call after the allowance fires.
                limit.threshold += 1;
                if u.routes.is_empty() {
                    return Err("monitors.usage.routes: name at least one path glob".into());
                }
                let globs = globs("usage.routes", &u.routes)?;
                Some(Usage { limit, globs })
            }
        };
        let status = |key: &str, c: &Option<StatusConfig>, count: u32| {
            c.as_ref()
                .map(|c| {
                    let d = Defaults {
                        count,
                        window: MINUTE,
                        action: strike,
                    };
                    resolve(key, c.count, c.window, c.action, d).map(|(_, l)| l)
                })
                .transpose()
        };
        let not_found = status("not_found", &self.not_found, 30)?;
        if let Some(l) = &not_found
            && l.threshold > u64::from(MAX_DISTINCT)
        {
            return Err(format!(
                "monitors.not_found.count: at most {MAX_DISTINCT} distinct paths (got {})",
                l.threshold
            ));
        }
        let auth_failures = status("auth_failures", &self.auth_failures, 10)?;
        let server_errors = status("server_errors", &self.server_errors, 10)?;
        let honeypot = match &self.honeypot {
            None => None,
            Some(h) => Some(honeypot(h)?),
        };
        let headers = match &self.headers {
            None => None,
            Some(h) => {
                let d = Defaults {
                    count: 3,
                    window: Dur::secs(600),
                    action: strike,
                };
                Some(resolve("headers", h.count, h.window, h.action, d)?.1)
            }
        };
        Ok(Compiled {
            usage,
            not_found,
            auth_failures,
            server_errors,
            honeypot,
            headers,
        })
    }
}

fn honeypot(h: &HoneypotConfig) -> Result<Honeypot, String> {
    let d = Defaults {
        count: 1,
        window: Dur::secs(3600),
        action: MonitorAction::Ban,
    };
    let (_, limit) = resolve("honeypot", h.count, h.window, h.action, d)?;
    let secs = h.min_form_seconds;
    if !secs.is_finite() || !(0.0..=MAX_FORM_SECONDS).contains(&secs) {
        return Err(format!(
            "monitors.honeypot.min_form_seconds: 0 (off) to {MAX_FORM_SECONDS} seconds (got {secs})"
        ));
    }
    let traps = globs("honeypot.paths", &h.paths)?;
    if h.fields.len() > MAX_FIELDS {
        return Err(format!(
            "monitors.honeypot.fields: at most {MAX_FIELDS} names"
        ));
    }
    if let Some(f) = h.fields.iter().find(|f| f.is_empty() || f.len() > 256) {
        return Err(format!(
            "monitors.honeypot.fields: {:?} must be 1 to 256 bytes",
            f.chars().take(80).collect::<String>()
        ));
    }
    let min_form = std::time::Duration::from_secs_f64(secs);
    let min_form = (min_form.as_millis() > 0).then_some(min_form);
    if traps.is_empty() && h.fields.is_empty() && min_form.is_none() {
        return Err(
            "monitors.honeypot: set paths, fields or a min_form_seconds of at least 0.001".into(),
        );
    }
    Ok(Honeypot {
        limit,
        traps,
        fields: h.fields.clone(),
        min_form,
    })
}
