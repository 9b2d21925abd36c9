//! `[proxy]`: the inline reverse proxy's config, typed at load: the
//! upstream, trusted peers, limits, what happens to bodies past the
//! inspection limit, the access log.

use std::{net::SocketAddr, path::PathBuf, str::FromStr};

use ipnet::IpNet;
use serde::{Deserialize, Deserializer};

use crate::values::{ConfigError, Dur, invalid, moved, parse_net};

/// Where the application listens: `http://host:port` (plain HTTP, no
/// path, no credentials).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Upstream(pub String);

impl FromStr for Upstream {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let rest = s.strip_prefix("http://").ok_or_else(|| {
            if s.starts_with("https://") {
                "https upstreams are not supported: talk plain HTTP to the application \
                 (terminate TLS in front of waf)"
                    .to_string()
            } else {
                "expected http://host:port".to_string()
            }
        })?;
        let authority = rest.trim_end_matches('/');
        if authority.is_empty() || authority.contains('/') || authority.contains('@') {
            return Err("expected http://host:port (no path, no credentials)".into());
        }
        authority
            .parse::<hyper::http::uri::Authority>()
            .map_err(|e| format!("bad host:port: {e}"))?;
        Ok(Upstream(authority.to_string()))
    }
}

impl<'de> Deserialize<'de> for Upstream {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// An address or CIDR from the config.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr(pub IpNet);

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_net(&s).map(Cidr).map_err(serde::de::Error::custom)
    }
}

/// What the proxy does when inspection fails or runs over its budget.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum OnError {
    /// Forward the request when inspection fails; wait for the verdict
    /// when it runs over its budget (availability first, never a request
    /// forwarded uninspected for being slow).
    #[default]
    Open,
    /// Refuse it with 503 (security first).
    Closed,
}

/// What happens to a body longer than the inspection limit
/// (`[detect.limits] max_body`).
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum BodyOverflow {
    /// 413 with the JSON error body, counted and logged.
    #[default]
    Reject,
    /// Inspect the first `max_body` bytes, forward the rest, and mark the
    /// verdict partial (access log, counters).
    InspectPartial,
}

/// Which header a trusted peer names the client in.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum ClientHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2`.
    #[default]
    XForwardedFor,
    /// `Forwarded: for=client, for=proxy1` (RFC 7239).
    Forwarded,
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

/// Where the access log goes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum AccessLog {
    /// Nowhere.
    Off,
    /// Standard output.
    #[default]
    Stdout,
    /// A file, appended to.
    File(PathBuf),
}

impl<'de> Deserialize<'de> for AccessLog {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(match s.as_str() {
            "off" => AccessLog::Off,
            "-" => AccessLog::Stdout,
            "" => {
                return Err(serde::de::Error::custom(
                    "an empty path: give a file, \"-\" for stdout, or \"off\"",
                ));
            }
            p => AccessLog::File(PathBuf::from(p)),
        })
    }
}

/// A per-source HTTP request rate limit.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HttpLimit {
    /// The paths it applies to, on the canonical path: a glob (`*` any run
    /// of characters, `/` included), or, without `*`, a prefix (absent:
    /// every path). A request counts when any reading of its path matches.
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

/// The most serving threads `[proxy] workers` takes.
pub const MAX_WORKERS: usize = 256;

/// The proxy's config.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProxyConfig {
    /// Where clients connect (no proxy when unset).
    pub listen: Option<SocketAddr>,
    /// The application.
    pub upstream: Option<Upstream>,
    /// Peers whose forwarding headers are believed (load balancers, CDNs):
    /// decided on the socket peer, never on a header.
    pub trusted_proxies: Vec<Cidr>,
    /// How many hops (from the right) to believe when the peer is trusted.
    pub trusted_depth: usize,
    /// The header trusted peers name the client in.
    pub client_header: ClientHeader,
    /// On inspection error: open (forward) or closed (503). On a budget
    /// overrun: open waits for the verdict (never forwarding uninspected),
    /// closed answers 503.
    pub on_error: OnError,
    /// Time inspection may take per request (bodies over 16 kB).
    pub inspect_budget: Dur,
    /// Bodies longer than the inspection limit: reject (413) or inspect
    /// the first part.
    pub body_overflow: BodyOverflow,
    /// The most body bytes buffered before the verdict (multipart file
    /// contents do not count against the inspection limit, but are held
    /// until the verdict too); a longer body is refused with 413.
    pub max_upload: usize,
    /// Per-source request rate limits (429).
    pub rate_limits: Vec<HttpLimit>,
    /// User-Agent substrings refused with 403 (case-insensitive).
    pub blocked_user_agents: Vec<String>,
    /// Moved to `[detect] exempt_paths`; refused with a message.
    pub exempt_paths: Option<toml::Value>,
    /// Add HSTS, CSP, X-Frame-Options, nosniff and Referrer-Policy to
    /// responses that lack them.
    pub security_headers: bool,
    /// HSTS max-age when security headers are on (0: no HSTS, e.g. plain HTTP).
    pub hsts_max_age: u64,
    /// Content-Security-Policy value added by security headers.
    pub content_security_policy: String,
    /// Access log: a file path, `-` for stdout, or `off`.
    pub access_log: AccessLog,
    /// Access log format.
    pub access_log_format: AccessLogFormat,
    /// Time the upstream may take to answer.
    pub upstream_timeout: Dur,
    /// Serving threads, each with its own event loop and upstream
    /// connections (unset: one per CPU the daemon may run on).
    pub workers: Option<usize>,
    /// The first bytes of each textual response read for data leaks
    /// (database errors, stack traces, web shells, system files); 0: off.
    pub response_inspect_bytes: usize,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        Self {
            listen: None,
            upstream: None,
            trusted_proxies: Vec::new(),
            trusted_depth: 1,
            client_header: ClientHeader::XForwardedFor,
            on_error: OnError::Open,
            inspect_budget: Dur(std::time::Duration::from_millis(50)),
            body_overflow: BodyOverflow::Reject,
            max_upload: 64 << 20,
            rate_limits: Vec::new(),
            blocked_user_agents: Vec::new(),
            exempt_paths: None,
            security_headers: false,
            hsts_max_age: 0,
            content_security_policy: "default-src 'self'".into(),
            access_log: AccessLog::Stdout,
            access_log_format: AccessLogFormat::Combined,
            upstream_timeout: Dur::secs(60),
            workers: None,
            response_inspect_bytes: crate::detect::leak::DEFAULT_READ,
        }
    }
}

impl ProxyConfig {
    /// Checks ranges and consistency.
    pub fn validate(&self) -> Result<(), ConfigError> {
        moved(
            &self.exempt_paths,
            "proxy.exempt_paths",
            "list the paths in detect.exempt_paths (one list for the proxy, the mirror and \
             `waf inspect`, matched on the canonical path)",
        )?;
        if self.listen.is_some() != self.upstream.is_some() {
            return Err(invalid(
                "proxy",
                "listen without upstream (or the reverse)",
                "both proxy.listen and proxy.upstream, or neither",
            ));
        }
        if !(1024..=4 << 30).contains(&self.max_upload) {
            return Err(invalid(
                "proxy.max_upload",
                self.max_upload,
                "1024 bytes to 4 GiB",
            ));
        }
        if !(1..=32).contains(&self.trusted_depth) {
            return Err(invalid(
                "proxy.trusted_depth",
                self.trusted_depth,
                "1 to 32",
            ));
        }
        for (i, l) in self.rate_limits.iter().enumerate() {
            if l.requests == 0 || l.per.0.is_zero() || l.burst == Some(0) {
                return Err(invalid(
                    &format!("proxy.rate_limits[{i}]"),
                    format!("{} per {}", l.requests, l.per),
                    "a positive number of requests per a positive period, burst at least 1",
                ));
            }
            if let Some(p) = &l.path
                && (!p.starts_with('/') || crate::http::PathGlob::new(p).is_err())
            {
                return Err(invalid(
                    &format!("proxy.rate_limits[{i}].path"),
                    p,
                    "a path or glob starting with /",
                ));
            }
        }
        if self.response_inspect_bytes > 16 << 20 {
            return Err(invalid(
                "proxy.response_inspect_bytes",
                self.response_inspect_bytes,
                "0 (off) to 16 MiB",
            ));
        }
        if self.inspect_budget.0.is_zero() {
            return Err(invalid(
                "proxy.inspect_budget",
                self.inspect_budget,
                "a positive duration",
            ));
        }
        if self.upstream_timeout.0.is_zero() {
            return Err(invalid(
                "proxy.upstream_timeout",
                self.upstream_timeout,
                "a positive duration",
            ));
        }
        if let Some(w) = self.workers
            && !(1..=MAX_WORKERS).contains(&w)
        {
            return Err(invalid(
                "proxy.workers",
                w,
                &format!("1 to {MAX_WORKERS} (unset: one per CPU)"),
            ));
        }
        for a in &self.blocked_user_agents {
            if a.is_empty() || a.len() > 256 {
                return Err(invalid(
                    "proxy.blocked_user_agents",
                    format!("{a:?}"),
                    "non-empty substrings of at most 256 bytes",
                ));
            }
        }
        Ok(())
    }

    /// How many serving threads: `workers`, else one per CPU this process
    /// may run on (its affinity and cgroup quota), at most [`MAX_WORKERS`].
    pub fn workers(&self) -> usize {
        self.workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
            .clamp(1, MAX_WORKERS)
    }

    /// The trusted peers as networks.
    pub fn trusted(&self) -> Vec<IpNet> {
        self.trusted_proxies.iter().map(|c| c.0).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_urls() {
        let ok = |s: &str| s.parse::<Upstream>().map(|u| u.0);
        assert_eq!(ok("http://127.0.0.1:8000").unwrap(), "127.0.0.1:8000");
        assert_eq!(ok("http://app.internal:80/").unwrap(), "app.internal:80");
        assert!(ok("https://x:443").unwrap_err().contains("https"));
        assert!(ok("127.0.0.1:80").is_err());
        assert!(ok("http://x:80/path").is_err());
        assert!(ok("http://user@x:80").is_err());
    }

    #[test]
    fn response_inspection_is_on_by_default_and_bounded() {
        let d = ProxyConfig::default();
        assert_eq!(d.response_inspect_bytes, 65536);
        let with = |n| ProxyConfig {
            response_inspect_bytes: n,
            ..Default::default()
        };
        assert!(with(0).validate().is_ok());
        assert!(with(16 << 20).validate().is_ok());
        let e = with((16 << 20) + 1).validate().unwrap_err().to_string();
        assert!(
            e.contains("proxy.response_inspect_bytes") && e.contains("16 MiB"),
            "{e}"
        );
        let c: ProxyConfig = toml::from_str("response_inspect_bytes = 0").unwrap();
        assert_eq!(c.response_inspect_bytes, 0);
        assert!(toml::from_str::<ProxyConfig>("response_inspect_bytes = -1").is_err());
    }

    #[test]
    fn workers_default_to_the_cpus_and_refuse_zero_or_too_many() {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(ProxyConfig::default().workers(), cpus.min(MAX_WORKERS));
        let with = |w| ProxyConfig {
            workers: Some(w),
            ..Default::default()
        };
        assert_eq!(with(3).workers(), 3);
        assert!(with(1).validate().is_ok());
        assert!(with(MAX_WORKERS).validate().is_ok());
        for bad in [0, MAX_WORKERS + 1] {
            let e = with(bad).validate().unwrap_err().to_string();
            assert!(e.contains("proxy.workers") && e.contains("1 to 256"), "{e}");
        }
    }
}
