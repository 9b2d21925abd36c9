//! The daemon's configuration: one TOML file, parsed and validated here and
//! nowhere else. Every error names the key, the value and what is allowed.
//!
//! See `waf-user/dist/waf.toml` for every key with its default.

use std::{
    fmt,
    net::SocketAddr,
    path::{Path, PathBuf},
    str::FromStr,
    time::Duration,
};

use ipnet::IpNet;
use serde::{Deserialize, Deserializer};

use crate::dataplane::{AttachMode, DEFAULT_BPF_DIR, RateLimits, Settings};

/// A configuration error, ready to print.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("config {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this schema.
    #[error("config {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What toml said (it names the key, line and column).
        message: String,
    },
    /// A value is out of range or inconsistent.
    #[error("config: {key} = {value}: {allowed}")]
    Invalid {
        /// The key, dotted (`rate_limit.burst`).
        key: String,
        /// The offending value.
        value: String,
        /// What is allowed.
        allowed: String,
    },
    /// A list file could not be used.
    #[error("{path}:{line}: {message}")]
    ListFile {
        /// The file.
        path: PathBuf,
        /// 1-based line (0: the whole file).
        line: usize,
        /// What is wrong.
        message: String,
    },
}

fn invalid(key: &str, value: impl fmt::Display, allowed: &str) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        value: value.to_string(),
        allowed: allowed.into(),
    }
}

/// A duration as operators write it: integer seconds, or a number with a
/// unit: `"500ms"`, `"90s"`, `"10m"`, `"24h"`, `"7d"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Dur(pub Duration);

impl FromStr for Dur {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let help = || {
            format!(
                "invalid duration `{s}`: use whole seconds (600) or a number with ms, s, m, h \
                 or d (\"90s\", \"10m\", \"24h\")"
            )
        };
        let n: u64 = num.parse().map_err(|_| help())?;
        let ms = match unit.trim() {
            "" | "s" => n.checked_mul(1000),
            "ms" => Some(n),
            "m" => n.checked_mul(60_000),
            "h" => n.checked_mul(3_600_000),
            "d" => n.checked_mul(86_400_000),
            _ => None,
        }
        .ok_or_else(help)?;
        Ok(Dur(Duration::from_millis(ms)))
    }
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        let (n, unit) = if ms.is_multiple_of(86_400_000) && ms > 0 {
            (ms / 86_400_000, "d")
        } else if ms.is_multiple_of(3_600_000) && ms > 0 {
            (ms / 3_600_000, "h")
        } else if ms.is_multiple_of(60_000) && ms > 0 {
            (ms / 60_000, "m")
        } else if ms.is_multiple_of(1000) {
            (ms / 1000, "s")
        } else {
            (ms, "ms")
        };
        write!(f, "{n}{unit}")
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Secs(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Secs(s) => Ok(Dur(Duration::from_secs(s))),
            Raw::Text(t) => t.parse().map_err(serde::de::Error::custom),
        }
    }
}

impl serde::Serialize for Dur {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

/// One interface or a list of them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Interfaces(pub Vec<String>);

impl<'de> Deserialize<'de> for Interfaces {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            One(String),
            Many(Vec<String>),
        }
        Ok(match Raw::deserialize(d)? {
            Raw::One(s) => Interfaces(vec![s]),
            Raw::Many(v) => Interfaces(v),
        })
    }
}

/// `[api]`: the local control API.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// Address to listen on (keep it on loopback).
    pub listen: SocketAddr,
    /// Bearer token; else `WAF_API_TOKEN`, else generated into
    /// `state_dir/api.token`.
    pub token: Option<String>,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 9876)),
            token: None,
        }
    }
}

/// `[modes]`.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct Modes {
    /// Count what would be dropped; drop nothing.
    pub monitor: bool,
    /// Drop everything that is not allowlisted.
    pub emergency: bool,
}

/// `[allowlist]` and `[blocklist]`: inline CIDRs and files of one CIDR (or
/// address) a line, `#` comments allowed.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ListConfig {
    /// Inline entries.
    pub cidrs: Vec<String>,
    /// Files to read entries from.
    pub files: Vec<PathBuf>,
}

/// `[rate_limit]`: per-source limits enforced in XDP.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Packets per second per source.
    pub pps: Option<u64>,
    /// Packets above the rate a source may send at once (default: one
    /// second's worth).
    pub burst: Option<u64>,
    /// Bytes per second per source.
    pub bps: Option<u64>,
    /// Bytes above the byte rate a source may send at once (default: one
    /// second's worth).
    pub burst_bytes: Option<u64>,
    /// TCP SYNs per second per source.
    pub syn_pps: Option<u64>,
    /// SYN burst (default: one second's worth).
    pub syn_burst: Option<u64>,
    /// IPv6 sources are limited per prefix of this length.
    pub ipv6_prefix: u8,
    /// At most one rate event (strike) per source per interval.
    pub event_interval: Dur,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            pps: None,
            burst: None,
            bps: None,
            burst_bytes: None,
            syn_pps: None,
            syn_burst: None,
            ipv6_prefix: 64,
            event_interval: Dur(Duration::from_secs(1)),
        }
    }
}

/// What to do when the kernel ban map is full.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnFull {
    /// Evict the ban closest to its expiry (logged, counted, alarmed).
    #[default]
    EvictSoonest,
    /// Refuse the new ban (logged, counted, alarmed; the API answers 507).
    Reject,
}

/// `[ban_policy]`: how strikes become bans, and how bans escalate.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BanPolicy {
    /// Strikes within `window` that make a ban.
    pub strikes: u32,
    /// The window strikes are counted in.
    pub window: Dur,
    /// First ban duration.
    pub duration: Dur,
    /// Each repeat ban lasts `factor` times the previous one...
    pub factor: f64,
    /// ...up to this.
    pub max_duration: Dur,
    /// How long a ban is remembered for escalation after it ends.
    pub remember: Dur,
    /// Policy when the kernel map is full.
    pub on_full: OnFull,
    /// Ban at once when one request scores at least this (no waiting for
    /// `strikes`); unset: never.
    pub immediate_score: Option<u32>,
}

impl Default for BanPolicy {
    fn default() -> Self {
        Self {
            strikes: 5,
            window: Dur(Duration::from_secs(600)),
            duration: Dur(Duration::from_secs(3600)),
            factor: 2.0,
            max_duration: Dur(Duration::from_secs(7 * 86400)),
            remember: Dur(Duration::from_secs(7 * 86400)),
            on_full: OnFull::EvictSoonest,
            immediate_score: None,
        }
    }
}

/// `[mirror]`: passive HTTP inspection of sampled TCP payloads, for hosts
/// where the proxy cannot sit in front. It can ban, not block.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MirrorConfig {
    /// On or off.
    pub enabled: bool,
    /// TCP destination ports to sample (at most 8).
    pub ports: Vec<u16>,
    /// Payload bytes sampled per segment (at most 1536).
    pub sample_bytes: u32,
    /// A flow with no segment for this long is forgotten.
    pub flow_timeout: Dur,
    /// Flows reassembled at once (oldest dropped first, counted).
    pub max_flows: usize,
    /// Bytes buffered per flow while a request is incomplete.
    pub max_request_bytes: usize,
}

impl Default for MirrorConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            ports: vec![80],
            sample_bytes: waf_common::SAMPLE_MAX as u32,
            flow_timeout: Dur(Duration::from_secs(10)),
            max_flows: 10_000,
            max_request_bytes: 64 * 1024,
        }
    }
}

/// What the proxy does when inspection fails or runs over its budget.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum OnError {
    /// Forward the request (availability first).
    #[default]
    Open,
    /// Refuse it with 503 (security first).
    Closed,
}

/// Access log format.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum AccessLogFormat {
    /// NCSA combined, plus verdict and reason.
    #[default]
    Combined,
    /// NCSA common, plus verdict and reason.
    Common,
    /// One JSON object a line.
    Json,
}

/// A per-source HTTP request rate limit.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HttpLimit {
    /// Applies to paths starting with this (absent: every path).
    #[serde(default)]
    pub path: Option<String>,
    /// Requests allowed per `per`.
    pub requests: u32,
    /// The period.
    pub per: Dur,
    /// Requests a source may make at once above the rate (default:
    /// `requests`).
    #[serde(default)]
    pub burst: Option<u32>,
}

/// `[proxy]`: the inline reverse proxy in front of the application.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProxyConfig {
    /// Where clients connect (no proxy when unset).
    pub listen: Option<SocketAddr>,
    /// The application: `http://host:port`.
    pub upstream: Option<String>,
    /// Peers whose X-Forwarded-For is believed (load balancers, CDNs).
    pub trusted_proxies: Vec<String>,
    /// How many X-Forwarded-For hops (from the right) to believe when the
    /// peer is trusted.
    pub trusted_depth: usize,
    /// On inspection error or budget overrun: open (forward) or closed (503).
    pub on_error: OnError,
    /// Time inspection may take per request.
    pub inspect_budget: Dur,
    /// Per-source request rate limits (429).
    pub rate_limits: Vec<HttpLimit>,
    /// User-Agent substrings refused with 403 (case-insensitive).
    pub blocked_user_agents: Vec<String>,
    /// Paths forwarded without inspection or limits (`*` globs).
    pub exempt_paths: Vec<String>,
    /// Add HSTS, CSP, X-Frame-Options, nosniff and Referrer-Policy to
    /// responses that lack them.
    pub security_headers: bool,
    /// HSTS max-age when security headers are on (0: no HSTS, e.g. plain HTTP).
    pub hsts_max_age: u64,
    /// Content-Security-Policy value added by security headers.
    pub content_security_policy: String,
    /// Access log: a file path, `-` for stdout, or `off`.
    pub access_log: String,
    /// Access log format.
    pub access_log_format: AccessLogFormat,
    /// Time the upstream may take to answer.
    pub upstream_timeout: Dur,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        Self {
            listen: None,
            upstream: None,
            trusted_proxies: Vec::new(),
            trusted_depth: 1,
            on_error: OnError::Open,
            inspect_budget: Dur(Duration::from_millis(50)),
            rate_limits: Vec::new(),
            blocked_user_agents: Vec::new(),
            exempt_paths: vec!["/health".into(), "/favicon.ico".into()],
            security_headers: false,
            hsts_max_age: 0,
            content_security_policy: "default-src 'self'".into(),
            access_log: "-".into(),
            access_log_format: AccessLogFormat::Combined,
            upstream_timeout: Dur(Duration::from_secs(60)),
        }
    }
}

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
        }
    }
}

/// An allow or block entry with where it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListItem {
    /// The network (an address is a /32 or /128).
    pub net: IpNet,
    /// `config` or `path:line`.
    pub origin: String,
}

/// Parses a CIDR or a bare address (a host prefix), clearing host bits.
pub fn parse_net(s: &str) -> Result<IpNet, String> {
    let t = s.trim();
    if let Ok(n) = t.parse::<IpNet>() {
        return Ok(n.trunc());
    }
    if let Ok(a) = t.parse::<std::net::IpAddr>() {
        return Ok(IpNet::from(a));
    }
    Err(format!(
        "`{s}` is not an IPv4/IPv6 address or CIDR (e.g. 198.51.100.7, 203.0.113.0/24, 2001:db8::/64)"
    ))
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
        if let Some(t) = &self.api.token
            && t.len() < 16
        {
            return Err(invalid(
                "api.token",
                "(hidden)",
                "at least 16 characters (or leave it out to generate one)",
            ));
        }
        for (key, list) in [
            ("allowlist", &self.allowlist),
            ("blocklist", &self.blocklist),
        ] {
            for c in &list.cidrs {
                parse_net(c).map_err(|e| invalid(&format!("{key}.cidrs"), c, &e))?;
            }
        }
        self.settings()?;
        let p = &self.ban_policy;
        if p.strikes == 0 {
            return Err(invalid(
                "ban_policy.strikes",
                0,
                "at least 1 (1 bans at the first strike)",
            ));
        }
        if p.window.0.is_zero() {
            return Err(invalid(
                "ban_policy.window",
                p.window,
                "a positive duration",
            ));
        }
        if p.duration.0.is_zero() {
            return Err(invalid(
                "ban_policy.duration",
                p.duration,
                "a positive duration",
            ));
        }
        if p.immediate_score == Some(0) {
            return Err(invalid(
                "ban_policy.immediate_score",
                0,
                "a positive anomaly score (or leave it out)",
            ));
        }
        if !(1.0..=100.0).contains(&p.factor) {
            return Err(invalid(
                "ban_policy.factor",
                p.factor,
                "a number from 1 to 100",
            ));
        }
        if p.max_duration < p.duration {
            return Err(invalid(
                "ban_policy.max_duration",
                p.max_duration,
                &format!("at least ban_policy.duration ({})", p.duration),
            ));
        }
        self.detect
            .validate()
            .map_err(|e| invalid("detect", "(see message)", &e))?;
        self.validate_mirror()?;
        self.validate_proxy()?;
        Ok(())
    }

    fn validate_mirror(&self) -> Result<(), ConfigError> {
        let m = &self.mirror;
        if m.ports.is_empty() || m.ports.len() > waf_common::SAMPLE_PORTS || m.ports.contains(&0) {
            return Err(invalid(
                "mirror.ports",
                format!("{:?}", m.ports),
                "1 to 8 TCP ports, none of them 0",
            ));
        }
        if !(64..=waf_common::SAMPLE_MAX as u32).contains(&m.sample_bytes) {
            return Err(invalid("mirror.sample_bytes", m.sample_bytes, "64 to 1536"));
        }
        if m.max_flows == 0 || m.max_request_bytes < 1024 {
            return Err(invalid(
                "mirror.max_flows / mirror.max_request_bytes",
                format!("{} / {}", m.max_flows, m.max_request_bytes),
                "at least 1 flow and 1024 bytes",
            ));
        }
        Ok(())
    }

    fn validate_proxy(&self) -> Result<(), ConfigError> {
        let p = &self.proxy;
        match (&p.listen, &p.upstream) {
            (None, None) => {}
            (Some(_), None) | (None, Some(_)) => {
                return Err(invalid(
                    "proxy",
                    "listen without upstream (or the reverse)",
                    "both proxy.listen and proxy.upstream, or neither",
                ));
            }
            (Some(_), Some(u)) => {
                crate::proxy::parse_upstream(u).map_err(|e| invalid("proxy.upstream", u, &e))?;
            }
        }
        for c in &p.trusted_proxies {
            parse_net(c).map_err(|e| invalid("proxy.trusted_proxies", c, &e))?;
        }
        if p.trusted_depth == 0 {
            return Err(invalid("proxy.trusted_depth", 0, "at least 1"));
        }
        for (i, l) in p.rate_limits.iter().enumerate() {
            if l.requests == 0 || l.per.0.is_zero() || l.burst == Some(0) {
                return Err(invalid(
                    &format!("proxy.rate_limits[{i}]"),
                    format!("{} per {}", l.requests, l.per),
                    "a positive number of requests per a positive period, burst at least 1",
                ));
            }
        }
        if p.inspect_budget.0.is_zero() {
            return Err(invalid(
                "proxy.inspect_budget",
                p.inspect_budget,
                "a positive duration",
            ));
        }
        Ok(())
    }

    /// The XDP settings this config asks for.
    pub fn settings(&self) -> Result<Settings, ConfigError> {
        let r = &self.rate_limit;
        let pos = |key: &str, v: Option<u64>| -> Result<(), ConfigError> {
            match v {
                Some(0) => Err(invalid(key, 0, "a positive number (or leave it out)")),
                _ => Ok(()),
            }
        };
        pos("rate_limit.pps", r.pps)?;
        pos("rate_limit.burst", r.burst)?;
        pos("rate_limit.bps", r.bps)?;
        pos("rate_limit.syn_pps", r.syn_pps)?;
        pos("rate_limit.syn_burst", r.syn_burst)?;
        if let Some(b) = r.burst_bytes
            && b < 1514
        {
            return Err(invalid(
                "rate_limit.burst_bytes",
                b,
                "at least 1514 (one full Ethernet frame)",
            ));
        }
        if !(1..=128).contains(&r.ipv6_prefix) {
            return Err(invalid("rate_limit.ipv6_prefix", r.ipv6_prefix, "1 to 128"));
        }
        if r.event_interval.0 < Duration::from_millis(10) {
            return Err(invalid(
                "rate_limit.event_interval",
                r.event_interval,
                "at least 10ms",
            ));
        }
        let mut sample_ports = [0u16; waf_common::SAMPLE_PORTS];
        if self.mirror.enabled {
            for (slot, p) in sample_ports.iter_mut().zip(&self.mirror.ports) {
                *slot = *p;
            }
        }
        let settings = Settings {
            monitor: self.modes.monitor,
            emergency: self.modes.emergency,
            sample_ports,
            sample_bytes: self.mirror.sample_bytes,
            rate: RateLimits {
                pps: r.pps,
                burst: r.burst.or(r.pps).unwrap_or(0),
                bps: r.bps,
                burst_bytes: r.burst_bytes.or(r.bps.map(|b| b.max(1514))).unwrap_or(0),
                syn_pps: r.syn_pps,
                syn_burst: r.syn_burst.or(r.syn_pps).unwrap_or(0),
                v6_prefix: r.ipv6_prefix,
                event_interval: r.event_interval.0,
            },
        };
        settings
            .to_config()
            .map_err(|e| invalid("rate_limit", "(see message)", &e.to_string()))?;
        Ok(settings)
    }

    /// The allowlist entries: inline ones, then each file's.
    pub fn allow_items(&self) -> Result<Vec<ListItem>, ConfigError> {
        list_items("allowlist", &self.allowlist)
    }

    /// The blocklist entries: inline ones, then each file's.
    pub fn block_items(&self) -> Result<Vec<ListItem>, ConfigError> {
        list_items("blocklist", &self.blocklist)
    }
}

fn list_items(key: &str, list: &ListConfig) -> Result<Vec<ListItem>, ConfigError> {
    let mut out = Vec::new();
    for c in &list.cidrs {
        let net = parse_net(c).map_err(|e| invalid(&format!("{key}.cidrs"), c, &e))?;
        out.push(ListItem {
            net,
            origin: "config".into(),
        });
    }
    for path in &list.files {
        out.extend(read_list_file(path)?);
    }
    Ok(out)
}

/// Reads a list file: one address or CIDR a line; `#` starts a comment;
/// blank lines are skipped.
pub fn read_list_file(path: &Path) -> Result<Vec<ListItem>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::ListFile {
        path: path.into(),
        line: 0,
        message: e.to_string(),
    })?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let body = line.split('#').next().unwrap_or("").trim();
        // Some published lists put a comment after a semicolon.
        let body = body.split(';').next().unwrap_or("").trim();
        if body.is_empty() {
            continue;
        }
        let net = parse_net(body).map_err(|message| ConfigError::ListFile {
            path: path.into(),
            line: i + 1,
            message,
        })?;
        out.push(ListItem {
            net,
            origin: format!("{}:{}", path.display(), i + 1),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Config, ConfigError> {
        Config::parse(s, Path::new("test.toml"))
    }

    #[test]
    fn the_shipped_example_config_is_valid() {
        let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/dist/waf.toml"));
        let cfg = Config::load(path).unwrap();
        assert_eq!(cfg.interface.0, ["eth0"]);
        assert_eq!(cfg.allow_items().unwrap().len(), 2);
    }

    #[test]
    fn durations_in_seconds_or_with_units() {
        for (s, secs) in [
            ("90s", 90),
            ("10m", 600),
            ("24h", 86400),
            ("7d", 604800),
            ("45", 45),
        ] {
            assert_eq!(
                s.parse::<Dur>().unwrap().0,
                Duration::from_secs(secs),
                "{s}"
            );
        }
        assert_eq!(
            "250ms".parse::<Dur>().unwrap().0,
            Duration::from_millis(250)
        );
        for bad in ["", "10x", "m", "-5s", "1.5h"] {
            let e = bad.parse::<Dur>().unwrap_err();
            assert!(e.contains("invalid duration"), "{bad}: {e}");
        }
        let cfg = parse("[ban_policy]\nwindow = 120\nduration = \"2h\"\n").unwrap();
        assert_eq!(cfg.ban_policy.window.0, Duration::from_secs(120));
        assert_eq!(cfg.ban_policy.duration.0, Duration::from_secs(7200));
        assert_eq!(Dur(Duration::from_secs(7200)).to_string(), "2h");
    }

    #[test]
    fn defaults_are_sane_and_valid() {
        let cfg = parse("").unwrap();
        assert_eq!(cfg.api.listen.to_string(), "127.0.0.1:9876");
        assert_eq!(cfg.bpf_dir, PathBuf::from("/sys/fs/bpf/waf"));
        assert_eq!(cfg.state_dir, PathBuf::from("/var/lib/waf"));
        assert!(cfg.interface.0.is_empty());
        assert_eq!(cfg.ban_policy.strikes, 5);
    }

    #[test]
    fn interface_is_one_or_a_list() {
        assert_eq!(
            parse("interface = \"eth0\"").unwrap().interface.0,
            vec!["eth0"]
        );
        assert_eq!(
            parse("interface = [\"eth0\", \"eth1\"]")
                .unwrap()
                .interface
                .0,
            vec!["eth0", "eth1"]
        );
    }

    #[test]
    fn errors_name_key_value_and_what_is_allowed() {
        let e = parse("[rate_limit]\npps = 0\n").unwrap_err().to_string();
        assert!(
            e.contains("rate_limit.pps") && e.contains("positive"),
            "{e}"
        );
        let e = parse("[ban_policy]\nfactor = 0.5\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("ban_policy.factor = 0.5") && e.contains("1 to 100"),
            "{e}"
        );
        let e = parse("[allowlist]\ncidrs = [\"10.0.0.0/33\"]\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("allowlist.cidrs") && e.contains("10.0.0.0/33"),
            "{e}"
        );
        let e = parse("xdp_mode = \"turbo\"").unwrap_err().to_string();
        assert!(e.contains("turbo") && e.contains("auto"), "{e}");
        let e = parse("[api]\nlisten = \"nowhere\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("listen"), "{e}");
        let e = parse("bogus = 1").unwrap_err().to_string();
        assert!(e.contains("bogus"), "{e}");
        let e = parse("[ban_policy]\nwindow = \"soon\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("soon") && e.contains("10m"), "{e}");
        let e = parse("bpf_dir = \"relative\"").unwrap_err().to_string();
        assert!(e.contains("bpf_dir") && e.contains("absolute"), "{e}");
        let e = parse("interface = \"a-very-long-interface-name\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("15 characters"), "{e}");
    }

    #[test]
    fn burst_defaults_to_one_second_of_rate() {
        let s = parse("[rate_limit]\npps = 500\nsyn_pps = 20\n")
            .unwrap()
            .settings()
            .unwrap();
        assert_eq!(s.rate.pps, Some(500));
        assert_eq!(s.rate.burst, 500);
        assert_eq!(s.rate.syn_burst, 20);
        assert_eq!(s.rate.bps, None);
    }

    #[test]
    fn list_files_with_comments() {
        let dir = std::env::temp_dir().join(format!("waf-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("block.txt");
        std::fs::write(
            &f,
            "# spamhaus style\n203.0.113.0/24 ; SBL123\n\n198.51.100.7  # one host\n2001:db8:bad::/48\n",
        )
        .unwrap();
        let cfg = Config {
            blocklist: ListConfig {
                cidrs: vec!["192.0.2.9".into()],
                files: vec![f.clone()],
            },
            ..Default::default()
        };
        let items = cfg.block_items().unwrap();
        let nets: Vec<String> = items.iter().map(|i| i.net.to_string()).collect();
        assert_eq!(
            nets,
            [
                "192.0.2.9/32",
                "203.0.113.0/24",
                "198.51.100.7/32",
                "2001:db8:bad::/48"
            ]
        );
        assert_eq!(items[2].origin, format!("{}:4", f.display()));
        std::fs::write(&f, "10.0.0.0/8\nnot-an-address\n").unwrap();
        let e = cfg.block_items().unwrap_err().to_string();
        assert!(
            e.contains("block.txt:2") && e.contains("not-an-address"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
