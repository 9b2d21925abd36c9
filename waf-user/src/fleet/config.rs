//! `[fleet]`: where the shared bans live (the NATS servers, the bucket),
//! who this host is in the fleet, and what it shares and accepts. Parsed
//! and validated once, with the rest of the config file.

use std::path::PathBuf;

use serde::Deserialize;

use crate::{
    firewall::BanSource,
    values::{ConfigError, invalid},
};

/// One NATS server URL or a list of them.
pub type Urls = crate::values::OneOrMany;

/// `[fleet]`: bans shared across hosts through a NATS JetStream key-value
/// bucket. Absent: the host stands alone.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct FleetConfig {
    /// NATS server URLs (`nats://host:4222`, `tls://host:4222`).
    pub url: Urls,
    /// The key-value bucket holding the bans.
    pub bucket: String,
    /// Copies of the bucket a NATS cluster keeps (1 to 5; 3 survives the
    /// loss of one server). Used when the bucket is made.
    pub replicas: u8,
    /// This host's name in the fleet (default: the host name).
    pub node: String,
    /// Token authentication.
    pub token: Option<String>,
    /// A NATS credentials file (JWT and NKey seed).
    pub creds: Option<PathBuf>,
    /// CA certificate to verify the servers with (turns TLS on).
    pub tls_ca: Option<PathBuf>,
    /// Client certificate (with `tls_key`).
    pub tls_cert: Option<PathBuf>,
    /// Client key (with `tls_cert`).
    pub tls_key: Option<PathBuf>,
    /// Ban sources published to the fleet (default: every local source
    /// but `adopted`).
    pub share: Vec<BanSource>,
    /// Apply the other hosts' bans here.
    pub accept: bool,
    /// Share strikes too: each host sums the fleet's strikes per source.
    pub share_strikes: bool,
    /// Write a snapshot of the bucket for joining hosts once it holds this
    /// many keys (0: never). Below it, a watch reads the bucket fast
    /// enough.
    pub snapshot_min_keys: u32,
}

/// The bucket's name unless `[fleet] bucket` says otherwise.
pub const DEFAULT_BUCKET: &str = "waf-bans";

/// Keys in the bucket from which snapshots are written, unless
/// `[fleet] snapshot_min_keys` says otherwise.
pub const DEFAULT_SNAPSHOT_MIN_KEYS: u32 = 10_000;

/// This host's name: the kernel's host name.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "waf".into())
}

impl Default for FleetConfig {
    fn default() -> Self {
        Self {
            url: Urls::default(),
            bucket: DEFAULT_BUCKET.into(),
            replicas: 1,
            node: host_name(),
            token: None,
            creds: None,
            tls_ca: None,
            tls_cert: None,
            tls_key: None,
            // Not `adopted`: bans found in the kernel map with no record
            // (a host that lost its journal) would spread what the fleet
            // may have lifted meanwhile.
            share: BanSource::ALL
                .into_iter()
                .filter(|s| !matches!(s, BanSource::Fleet | BanSource::Adopted))
                .collect(),
            accept: true,
            share_strikes: true,
            snapshot_min_keys: DEFAULT_SNAPSHOT_MIN_KEYS,
        }
    }
}

/// A name NATS accepts for a bucket and that reads well as a node name:
/// 1 to 64 of `A-Z a-z 0-9 - _`.
fn plain_name(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl FleetConfig {
    /// Checks every key; errors name the key, the value and what is
    /// allowed.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.url.0.is_empty() {
            return Err(invalid(
                "fleet.url",
                "[]",
                "one NATS server URL or a list (e.g. \"nats://192.0.2.10:4222\"); leave out \
                 [fleet] to run alone",
            ));
        }
        for u in &self.url.0 {
            if u.parse::<async_nats::ServerAddr>().is_err() {
                return Err(invalid(
                    "fleet.url",
                    format!("{u:?}"),
                    "a NATS URL: nats://host:port, tls://host:port or host:port",
                ));
            }
        }
        if !plain_name(&self.bucket) {
            return Err(invalid(
                "fleet.bucket",
                format!("{:?}", self.bucket),
                "1 to 64 of A-Z a-z 0-9 - _ (default \"waf-bans\")",
            ));
        }
        if !(1..=5).contains(&self.replicas) {
            return Err(invalid(
                "fleet.replicas",
                self.replicas,
                "1 to 5 copies of the bucket (3 in a three-server cluster)",
            ));
        }
        if !plain_name(&self.node) {
            return Err(invalid(
                "fleet.node",
                format!("{:?}", self.node),
                "1 to 64 of A-Z a-z 0-9 - _, unique in the fleet (default: the host name)",
            ));
        }
        if let Some(t) = &self.token
            && (t.is_empty() || t.len() > 1024 || !t.bytes().all(|b| b.is_ascii_graphic()))
        {
            return Err(invalid(
                "fleet.token",
                "(hidden)",
                "1 to 1024 printable ASCII characters without spaces",
            ));
        }
        if self.token.is_some() && self.creds.is_some() {
            return Err(invalid(
                "fleet.creds",
                "(with fleet.token)",
                "one way to authenticate: a token or a credentials file, not both",
            ));
        }
        self.validate_paths()?;
        if self.share.contains(&BanSource::Fleet) {
            return Err(invalid(
                "fleet.share",
                "\"fleet\"",
                "local sources only (manual, detection, rate-limit, import, adopted): bans \
                 from the fleet are never published again",
            ));
        }
        Ok(())
    }

    fn validate_paths(&self) -> Result<(), ConfigError> {
        let paths = [
            ("fleet.creds", &self.creds),
            ("fleet.tls_ca", &self.tls_ca),
            ("fleet.tls_cert", &self.tls_cert),
            ("fleet.tls_key", &self.tls_key),
        ];
        for (key, p) in paths {
            if let Some(p) = p
                && !p.is_absolute()
            {
                return Err(invalid(key, p.display(), "an absolute path"));
            }
        }
        match (&self.tls_cert, &self.tls_key) {
            (Some(_), None) => Err(invalid(
                "fleet.tls_cert",
                "(without fleet.tls_key)",
                "a client certificate needs its key: set both or neither",
            )),
            (None, Some(_)) => Err(invalid(
                "fleet.tls_key",
                "(without fleet.tls_cert)",
                "a client key needs its certificate: set both or neither",
            )),
            _ => Ok(()),
        }
    }

    /// The sources shared, as [`crate::firewall::fleet::source_bit`]s.
    pub fn shared_bits(&self) -> u16 {
        self.share
            .iter()
            .filter(|s| self.shares(**s))
            .fold(0, |m, s| m | crate::firewall::fleet::source_bit(*s))
    }

    /// Whether bans of `source` go to the fleet.
    pub fn shares(&self, source: BanSource) -> bool {
        source != BanSource::Fleet && self.share.contains(&source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<FleetConfig, String> {
        let c: FleetConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        c.validate().map_err(|e| e.to_string())?;
        Ok(c)
    }

    #[test]
    fn defaults_and_lists() {
        let c = parse("url = \"nats://192.0.2.1:4222\"\nnode = \"a\"").unwrap();
        assert_eq!(c.bucket, "waf-bans");
        assert!(c.accept && c.share_strikes);
        assert!(c.shares(BanSource::Manual) && !c.shares(BanSource::Fleet));
        let c = parse("url = [\"192.0.2.1:4222\", \"nats://192.0.2.2\"]\nshare = [\"manual\"]")
            .unwrap();
        assert_eq!(c.url.0.len(), 2);
        assert!(c.shares(BanSource::Manual) && !c.shares(BanSource::Detection));
    }

    #[test]
    fn errors_name_the_key() {
        for (text, key) in [
            ("url = []", "fleet.url"),
            ("url = \"nats://a\"\nbucket = \"a.b\"", "fleet.bucket"),
            ("url = \"nats://a\"\nnode = \"\"", "fleet.node"),
            ("url = \"nats://a\"\nreplicas = 0", "fleet.replicas"),
            ("url = \"nats://a\"\nreplicas = 6", "fleet.replicas"),
            ("url = \"nats://a\"\nshare = [\"fleet\"]", "fleet.share"),
            ("url = \"nats://a\"\ntls_cert = \"/c\"", "fleet.tls_cert"),
            ("url = \"nats://a\"\ncreds = \"rel\"", "fleet.creds"),
            (
                "url = \"nats://a\"\ntoken = \"t\"\ncreds = \"/c\"",
                "fleet.creds",
            ),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.contains(key), "{text}: {e}");
            assert!(!e.contains('\n'), "{e}");
        }
        let e = parse("url = \"nats://a\"\nshare = [\"nobody\"]").unwrap_err();
        assert!(e.contains("unknown variant"), "{e}");
        let e = parse("url = \"nats://a\"\nsecret = 1").unwrap_err();
        assert!(e.contains("unknown field"), "{e}");
    }
}
