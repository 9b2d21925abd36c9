//! `[sources]`: which source policies the XDP program enforces and the
//! offline files they are read from. Checked here for consistency; the
//! files themselves are read by [`super::SourcePolicy::load`].

use std::path::PathBuf;

use ipnet::IpNet;
use serde::Deserialize;

use super::cloud::Format;
use crate::values::{ConfigError, invalid, parse_net};

/// What happens to addresses the country database does not know.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Unknown {
    /// Passed (the default).
    #[default]
    Pass,
    /// Dropped (counted as `country:unknown`).
    Drop,
}

/// One provider's range file.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CloudRanges {
    /// The file as the provider ships it.
    pub file: PathBuf,
    /// The provider's name as `block_cloud` and counters name it (`aws`,
    /// `gcp`, `azure`, or any name with `format`).
    pub provider: String,
    /// `aws`, `google`, `azure` or `cidr` (a plain list); defaults from
    /// the provider's name.
    pub format: Option<String>,
    /// Only these regions (case-insensitive); absent: all.
    pub regions: Option<Vec<String>>,
    /// Only these services (case-insensitive); absent: all.
    pub services: Option<Vec<String>>,
}

impl CloudRanges {
    /// The file format: `format`, else the provider's own.
    pub fn format(&self) -> Option<Format> {
        match self.format.as_deref() {
            Some("aws") => Some(Format::Aws),
            Some("google") | Some("gcp") => Some(Format::Google),
            Some("azure") => Some(Format::Azure),
            Some("cidr") => Some(Format::Cidr),
            Some(_) => None,
            None => Format::for_provider(&self.provider),
        }
    }
}

/// The policies a `monitor` entry can name.
pub const POLICIES: [&str; 4] = ["countries", "asns", "cloud", "bogons"];

/// `[sources]`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct SourcesConfig {
    /// A MaxMind-format country database (GeoLite2-Country, DB-IP lite).
    pub country_db: Option<PathBuf>,
    /// A MaxMind-format ASN database (GeoLite2-ASN, DB-IP ASN lite).
    pub asn_db: Option<PathBuf>,
    /// Countries (ISO 3166 alpha-2) whose sources are dropped.
    pub block_countries: Vec<String>,
    /// Allow-only mode: every country but these is dropped (the allowlist
    /// still wins; refused while the allowlist is empty).
    pub allow_countries: Vec<String>,
    /// Addresses the country database does not know: pass or drop.
    pub unknown_country: Unknown,
    /// Autonomous systems whose sources are dropped.
    pub block_asns: Vec<u32>,
    /// Providers' range files.
    pub cloud_ranges: Vec<CloudRanges>,
    /// Providers (by `cloud_ranges` provider name) whose ranges are dropped.
    pub block_cloud: Vec<String>,
    /// Interfaces on which bogon sources (RFC 6890 special-purpose,
    /// unallocated) are dropped; none by default.
    pub block_bogons: Vec<String>,
    /// Networks never treated as bogons.
    pub bogon_exceptions: Vec<String>,
    /// Policies that only count what they would drop: `countries`,
    /// `asns`, `cloud`, `bogons`.
    pub monitor: Vec<String>,
}

/// An ISO 3166 alpha-2 code, upper-cased; None when it is not two ASCII
/// letters.
pub fn country_code(s: &str) -> Option<[u8; 2]> {
    match s.trim().as_bytes() {
        [a, b] if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => {
            Some([a.to_ascii_uppercase(), b.to_ascii_uppercase()])
        }
        _ => None,
    }
}

impl SourcesConfig {
    /// True when nothing is configured: no policy and no file (databases
    /// alone still name countries and networks in logs and lookups).
    pub fn is_empty(&self) -> bool {
        self.country_db.is_none()
            && self.asn_db.is_none()
            && self.cloud_ranges.is_empty()
            && self.block_countries.is_empty()
            && self.allow_countries.is_empty()
            && self.unknown_country == Unknown::Pass
            && self.block_asns.is_empty()
            && self.block_cloud.is_empty()
            && self.block_bogons.is_empty()
    }

    /// Whether policy `name` (one of [`POLICIES`]) runs in monitor mode.
    pub fn monitored(&self, name: &str) -> bool {
        self.monitor.iter().any(|m| m == name)
    }

    /// The bogon exceptions as networks.
    pub fn exceptions(&self) -> Result<Vec<IpNet>, ConfigError> {
        self.bogon_exceptions
            .iter()
            .map(|s| {
                parse_net(s).map_err(|e| invalid("sources.bogon_exceptions", format!("{s:?}"), &e))
            })
            .collect()
    }

    /// Checks the keys against each other (the files are read later).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let codes = |key: &str, list: &[String]| {
            for c in list {
                if country_code(c).is_none() {
                    return Err(invalid(
                        key,
                        format!("{c:?}"),
                        "ISO 3166 alpha-2 country codes, such as \"DE\" or \"us\"",
                    ));
                }
            }
            Ok(())
        };
        codes("sources.block_countries", &self.block_countries)?;
        codes("sources.allow_countries", &self.allow_countries)?;
        if !self.block_countries.is_empty() && !self.allow_countries.is_empty() {
            return Err(invalid(
                "sources.block_countries",
                self.block_countries.join(","),
                "either block_countries or allow_countries (allow-only mode already drops \
                 every country it does not list), not both",
            ));
        }
        let countries = !self.block_countries.is_empty()
            || !self.allow_countries.is_empty()
            || self.unknown_country == Unknown::Drop;
        if countries && self.country_db.is_none() {
            return Err(invalid(
                "sources.country_db",
                "(absent)",
                "the path of a MaxMind-format country database (GeoLite2-Country, DB-IP \
                 lite): block_countries, allow_countries and unknown_country need one",
            ));
        }
        if !self.block_asns.is_empty() && self.asn_db.is_none() {
            return Err(invalid(
                "sources.asn_db",
                "(absent)",
                "the path of a MaxMind-format ASN database (GeoLite2-ASN): block_asns needs one",
            ));
        }
        for (i, c) in self.cloud_ranges.iter().enumerate() {
            let key = format!("sources.cloud_ranges[{i}]");
            if c.provider.trim().is_empty() || c.provider.len() > 64 {
                return Err(invalid(
                    &format!("{key}.provider"),
                    format!("{:?}", c.provider),
                    "a provider name of 1 to 64 characters",
                ));
            }
            for (k, f) in [("regions", &c.regions), ("services", &c.services)] {
                match f {
                    Some(list) if list.is_empty() => {
                        return Err(invalid(
                            &format!("{key}.{k}"),
                            "[]",
                            "a list of names, or no key at all for every one (an empty list \
                             would match nothing)",
                        ));
                    }
                    Some(_) if c.format() == Some(Format::Cidr) => {
                        return Err(invalid(
                            &format!("{key}.{k}"),
                            "(set)",
                            "nothing: a plain CIDR list has no regions or services",
                        ));
                    }
                    _ => {}
                }
            }
            if c.format().is_none() {
                return Err(invalid(
                    &format!("{key}.format"),
                    format!("{:?}", c.format.as_deref().unwrap_or("(absent)")),
                    "aws, google, azure or cidr (needed for a provider other than aws, gcp, \
                     google or azure)",
                ));
            }
        }
        for p in &self.block_cloud {
            if !self.cloud_ranges.iter().any(|c| &c.provider == p) {
                return Err(invalid(
                    "sources.block_cloud",
                    format!("{p:?}"),
                    "a provider named by an entry of sources.cloud_ranges",
                ));
            }
        }
        for i in &self.block_bogons {
            if i.is_empty() || i.len() > 15 || i.contains(['/', ' ', '\0']) {
                return Err(invalid(
                    "sources.block_bogons",
                    format!("{i:?}"),
                    "interface names of 1 to 15 characters without '/' or spaces",
                ));
            }
        }
        self.exceptions()?;
        for m in &self.monitor {
            if !POLICIES.contains(&m.as_str()) {
                return Err(invalid(
                    "sources.monitor",
                    format!("{m:?}"),
                    "countries, asns, cloud or bogons",
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(toml_text: &str) -> Result<SourcesConfig, String> {
        let c: SourcesConfig = toml::from_str(toml_text).map_err(|e| e.to_string())?;
        c.validate().map_err(|e| e.to_string())?;
        Ok(c)
    }

    #[test]
    fn consistent_configs_pass_and_codes_are_upper_cased() {
        let c = cfg(r#"
            country_db = "/x.mmdb"
            block_countries = ["de", "FR"]
            cloud_ranges = [{ file = "/r.json", provider = "aws", regions = ["eu-west-1"] },
                            { file = "/h.txt", provider = "hoster", format = "cidr" }]
            block_cloud = ["hoster"]
            block_bogons = ["eth0"]
            bogon_exceptions = ["100.64.0.0/10"]
            monitor = ["cloud"]
        "#)
        .unwrap();
        assert_eq!(country_code(&c.block_countries[0]), Some(*b"DE"));
        assert!(c.monitored("cloud") && !c.monitored("countries"));
        assert!(!c.is_empty());
        assert!(SourcesConfig::default().is_empty());
    }

    #[test]
    fn inconsistent_configs_name_the_key() {
        for (text, key) in [
            (r#"block_countries = ["DEU"]"#, "sources.block_countries"),
            (r#"block_countries = ["DE"]"#, "sources.country_db"),
            (r#"unknown_country = "drop""#, "sources.country_db"),
            (
                r#"country_db = "/x"
                   block_countries = ["DE"]
                   allow_countries = ["FR"]"#,
                "sources.block_countries",
            ),
            ("block_asns = [64500]", "sources.asn_db"),
            (r#"block_cloud = ["aws"]"#, "sources.block_cloud"),
            (
                r#"cloud_ranges = [{ file = "/r", provider = "hoster" }]"#,
                "sources.cloud_ranges[0].format",
            ),
            (
                r#"cloud_ranges = [{ file = "/r", provider = "aws", regions = [] }]"#,
                "sources.cloud_ranges[0].regions",
            ),
            (
                r#"cloud_ranges = [{ file = "/r", provider = "h", format = "cidr", services = ["x"] }]"#,
                "sources.cloud_ranges[0].services",
            ),
            (r#"block_bogons = ["a/b"]"#, "sources.block_bogons"),
            (
                r#"bogon_exceptions = ["10.0.0.0/33"]"#,
                "sources.bogon_exceptions",
            ),
            (r#"monitor = ["everything"]"#, "sources.monitor"),
        ] {
            let err = cfg(text).expect_err(text);
            assert!(err.contains(key), "{text}: {err}");
        }
    }
}
