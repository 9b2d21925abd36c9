//! The daemon's configuration: one TOML file, composed of the parts' own
//! config types (the firewall's ban policy, the proxy's, the detection
//! engine's...), parsed and validated here and nowhere else. Values are
//! typed at load (durations, addresses, enums): nothing is parsed again
//! later. Every error names the key, the value and what is allowed.
//!
//! See `waf-user/dist/waf.toml` for every key with its default.

mod lists;
mod xdp;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use self::{
    lists::{ListConfig, read_list_file},
    xdp::RateLimitConfig,
};
pub use crate::values::{ConfigError, Dur, invalid, moved, parse_net};
pub use crate::{
    api::ApiConfig,
    firewall::{BanPolicy, Modes, OnFull},
    fleet::FleetConfig,
    mirror::MirrorConfig,
    proxy::ProxyConfig,
};
use crate::{
    dataplane::{AttachMode, Capacity, DEFAULT_BPF_DIR, Settings},
    firewall::{FirewallConfig, ListItem},
};

/// One interface or a list of them.
pub type Interfaces = crate::values::OneOrMany;

/// Log output format.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object a line.
    Json,
}

/// `[log]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// text or json.
    pub format: LogFormat,
    /// error, warn, info, debug or trace (or a tracing filter directive).
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

/// The whole configuration.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Interfaces to attach to.
    pub interface: Interfaces,
    /// auto, native or skb.
    pub xdp_mode: AttachMode,
    /// Journal, token and other state.
    pub state_dir: PathBuf,
    /// bpffs directory for pins.
    pub bpf_dir: PathBuf,
    /// The control API.
    pub api: ApiConfig,
    /// Monitor and emergency modes at start.
    pub modes: Modes,
    /// Never dropped, never banned.
    pub allowlist: ListConfig,
    /// Always dropped.
    pub blocklist: ListConfig,
    /// Per-source packet limits in XDP.
    pub rate_limit: RateLimitConfig,
    /// Strikes, bans, escalation.
    pub ban_policy: BanPolicy,
    /// Logging.
    pub log: LogConfig,
    /// The detection engine.
    pub detect: crate::detect::DetectConfig,
    /// The inline reverse proxy.
    pub proxy: ProxyConfig,
    /// The passive mirror.
    pub mirror: MirrorConfig,
    /// Bans shared across hosts (absent: this host stands alone).
    pub fleet: Option<FleetConfig>,
    /// Sizes of the XDP program's CIDR tries.
    pub capacity: Capacity,
    /// Source policies: countries, networks, cloud ranges, bogons.
    pub sources: crate::sources::SourcesConfig,
    /// Per-path policy, tried in file order (`[[routes]]`).
    pub routes: Vec<crate::routes::RouteConfig>,
    /// The JavaScript challenge.
    pub challenge: crate::challenge::ChallengeConfig,
    /// Behaviour monitors (`[monitors.*]`).
    pub monitors: crate::monitors::MonitorsConfig,
    /// Anomaly scoring of each source's behaviour.
    pub anomaly: crate::anomaly::AnomalyConfig,
    /// The findings store (`[findings]`).
    pub findings: crate::findings::FindingsConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            interface: Interfaces::default(),
            xdp_mode: AttachMode::Auto,
            state_dir: PathBuf::from("/var/lib/waf"),
            bpf_dir: PathBuf::from(DEFAULT_BPF_DIR),
            api: ApiConfig::default(),
            modes: Modes::default(),
            allowlist: ListConfig::default(),
            blocklist: ListConfig::default(),
            rate_limit: RateLimitConfig::default(),
            ban_policy: BanPolicy::default(),
            log: LogConfig::default(),
            detect: crate::detect::DetectConfig::default(),
            proxy: ProxyConfig::default(),
            mirror: MirrorConfig::default(),
            fleet: None,
            capacity: Capacity::default(),
            sources: Default::default(),
            routes: Vec::new(),
            challenge: Default::default(),
            monitors: Default::default(),
            anomaly: Default::default(),
            findings: Default::default(),
        }
    }
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.into(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses and validates config text (`path` is for messages).
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let cfg: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.into(),
            message: e.to_string().trim_end().replace('\n', " | "),
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks ranges and consistency.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for i in &self.interface.0 {
            if i.is_empty() || i.len() > 15 || i.contains(['/', ' ', '\0']) {
                return Err(invalid(
                    "interface",
                    format!("{i:?}"),
                    "an interface name of 1 to 15 characters without '/' or spaces",
                ));
            }
        }
        if !self.bpf_dir.is_absolute() {
            return Err(invalid(
                "bpf_dir",
                self.bpf_dir.display(),
                "an absolute path on (or to mount) a bpf filesystem",
            ));
        }
        if !self.state_dir.is_absolute() {
            return Err(invalid(
                "state_dir",
                self.state_dir.display(),
                "an absolute path",
            ));
        }
        self.api.validate()?;
        self.allowlist.validate("allowlist")?;
        self.blocklist.validate("blocklist")?;
        self.settings()?;
        self.ban_policy
            .validate()
            .map_err(|(k, v, a)| invalid(&k, v, &a))?;
        crate::values::moved(
            &self.detect.moved_exempt_paths,
            "detect.exempt_paths",
            "give each path a route: [[routes]] path = \"/health\" with exempt = true (the \
             mirror and `waf inspect` honour exempt routes too)",
        )?;
        if let Some(i) = self.proxy.rate_limits.iter().position(|l| l.path.is_some()) {
            return Err(ConfigError::Moved {
                key: format!("proxy.rate_limits[{i}].path"),
                instead: "a limit on a path belongs to its route: [[routes]] path = \"/login\" \
                          with rate_limits = [{ requests = 5, per = \"1m\" }] ([proxy] \
                          rate_limits keeps the limits on every path)"
                    .into(),
            });
        }
        crate::routes::Routes::new(&self.routes)?;
        self.challenge.validate()?;
        self.monitors.validate().map_err(ConfigError::Refused)?;
        self.anomaly.validate().map_err(ConfigError::Refused)?;
        self.engine_config()
            .validate()
            .map_err(|e| invalid("detect", "(see message)", &e))?;
        self.mirror.validate()?;
        self.findings.validate()?;
        self.proxy.validate()?;
        if let Some(f) = &self.fleet {
            f.validate()?;
        }
        self.capacity.validate()?;
        self.sources.validate()?;
        Ok(())
    }

    /// The detection engine's config: `[detect]`, with the routes' paths
    /// (which of them are exempt: the mirror and `waf inspect` exempt what
    /// the proxy does).
    pub fn engine_config(&self) -> crate::detect::DetectConfig {
        let mut d = self.detect.clone();
        d.exempt_paths = self
            .routes
            .iter()
            .map(|r| (r.path.clone(), r.exempt))
            .collect();
        d
    }

    /// Whether the proxy runs the challenge: `[challenge] mode` is not off,
    /// or a route asks for it.
    pub fn challenge_on(&self) -> bool {
        self.challenge.mode != crate::challenge::ChallengeMode::Off
            || self
                .routes
                .iter()
                .any(|r| r.challenge == crate::routes::RouteChallenge::Challenge)
    }

    /// Whether the proxy scores bots: the challenge is on, or a route
    /// blocks bots (with `[challenge] threshold` and crawler verification
    /// either way).
    pub fn bot_score_on(&self) -> bool {
        self.challenge_on()
            || self
                .routes
                .iter()
                .any(|r| r.challenge == crate::routes::RouteChallenge::Block)
    }

    /// The challenge's key file: `[challenge] key_file`, or
    /// `<state_dir>/challenge.key`.
    pub fn challenge_key_file(&self) -> PathBuf {
        self.challenge
            .key_file
            .clone()
            .unwrap_or_else(|| self.state_dir.join("challenge.key"))
    }

    /// The routes, compiled (the config was validated).
    pub fn routes(&self) -> Result<crate::routes::Routes, ConfigError> {
        crate::routes::Routes::new(&self.routes)
    }

    /// The XDP settings this config asks for.
    pub fn settings(&self) -> Result<Settings, ConfigError> {
        self.rate_limit
            .settings(&self.modes, &self.mirror, self.ban_policy.ipv6_prefix)
    }

    /// The allowlist entries: inline ones, then each file's.
    pub fn allow_items(&self) -> Result<Vec<ListItem>, ConfigError> {
        self.allowlist.items("allowlist")
    }

    /// The blocklist entries: inline ones, then each file's.
    pub fn block_items(&self) -> Result<Vec<ListItem>, ConfigError> {
        self.blocklist.items("blocklist")
    }

    /// What the firewall core is configured with: this reads the source
    /// policies' files (`[sources]`).
    pub fn firewall(&self) -> Result<FirewallConfig, ConfigError> {
        let sources = if self.sources.is_empty() {
            None
        } else {
            Some(std::sync::Arc::new(crate::sources::SourcePolicy::load(
                &self.sources,
            )?))
        };
        Ok(FirewallConfig {
            sources,
            policy: self.ban_policy.clone(),
            settings: self.settings()?,
            allow: self.allow_items()?,
            block: self.block_items()?,
        })
    }
}
