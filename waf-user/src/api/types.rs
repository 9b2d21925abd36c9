//! The API's request and response bodies, shared by the API, its OpenAPI
//! description and the CLI (no field names as strings anywhere else). Every
//! bound the handlers enforce is stated in the schema, so what the schema
//! allows the API accepts, and the reverse.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use utoipa::{
    PartialSchema, ToSchema,
    openapi::{
        RefOr,
        schema::{
            AnyOfBuilder, KnownFormat, ObjectBuilder, OneOfBuilder, Schema, SchemaFormat, Type,
        },
    },
};

pub use crate::telemetry::FleetStatus;
use crate::{
    firewall::{Ban, ListView},
    values::{Dur, MAX_DURATION, rfc3339, show_net, unix_now},
};

/// Longest reason a ban may carry.
pub const MAX_REASON: usize = 256;
/// Longest comment a list entry may carry.
pub const MAX_COMMENT: usize = 512;
/// Most entries a page holds.
pub const MAX_PAGE: usize = 10_000;
/// Entries a page holds unless asked otherwise.
pub const DEFAULT_PAGE: usize = 1_000;
/// Duration strings the API takes: one number of at most three digits with
/// a unit (longer durations as whole seconds).
pub const DURATION_PATTERN: &str = "^[1-9][0-9]{0,2}(s|m|h|d)$";
/// Text without control characters.
pub const TEXT_PATTERN: &str = "^[^\\u0000-\\u001f\\u007f]*$";
/// An IPv4 address or CIDR.
pub const V4_PATTERN: &str = "^((25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\\.){3}\
(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])(/(3[0-2]|[12]?[0-9]))?$";
/// An IPv6 CIDR (hexadecimal groups, `::` once, a prefix length).
pub const V6_CIDR_PATTERN: &str = "^(([0-9a-fA-F]{1,4}:){7}[0-9a-fA-F]{1,4}|\
([0-9a-fA-F]{1,4}:){1,7}:|([0-9a-fA-F]{1,4}:){1,6}:[0-9a-fA-F]{1,4}|\
([0-9a-fA-F]{1,4}:){1,5}(:[0-9a-fA-F]{1,4}){1,2}|([0-9a-fA-F]{1,4}:){1,4}(:[0-9a-fA-F]{1,4}){1,3}|\
([0-9a-fA-F]{1,4}:){1,3}(:[0-9a-fA-F]{1,4}){1,4}|([0-9a-fA-F]{1,4}:){1,2}(:[0-9a-fA-F]{1,4}){1,5}|\
[0-9a-fA-F]{1,4}:(:[0-9a-fA-F]{1,4}){1,6}|:((:[0-9a-fA-F]{1,4}){1,7}|:))\
/(12[0-8]|1[01][0-9]|[1-9]?[0-9])$";

fn string_schema(pattern: Option<&str>, max: Option<usize>) -> ObjectBuilder {
    let mut b = ObjectBuilder::new().schema_type(Type::String);
    if let Some(p) = pattern {
        b = b.pattern(Some(p));
    }
    if let Some(m) = max {
        b = b.max_length(Some(m));
    }
    b
}

/// An address or prefix in a body or a path.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Addr(pub String);

impl PartialSchema for Addr {
    fn schema() -> RefOr<Schema> {
        AnyOfBuilder::new()
            .item(string_schema(Some(V4_PATTERN), Some(18)))
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::Ipv6))),
            )
            .item(string_schema(Some(V6_CIDR_PATTERN), Some(43)))
            .description(Some(
                "an IPv4 or IPv6 address, or a CIDR (203.0.113.0/24, 2001:db8::/64)",
            ))
            .into()
    }
}

impl ToSchema for Addr {}

/// Free text: bounded, no control characters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Reason(pub String);

impl PartialSchema for Reason {
    fn schema() -> RefOr<Schema> {
        string_schema(Some(TEXT_PATTERN), Some(MAX_REASON)).into()
    }
}

impl ToSchema for Reason {}

/// A list entry's comment: bounded, no control characters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Comment(pub String);

impl PartialSchema for Comment {
    fn schema() -> RefOr<Schema> {
        string_schema(Some(TEXT_PATTERN), Some(MAX_COMMENT)).into()
    }
}

impl ToSchema for Comment {}

/// The duration of a ban request: absent (the policy's escalating
/// duration), `null` or `"permanent"` (permanent), whole seconds (1 to ten
/// years), or a short duration string (`"90s"`, `"10m"`, `"24h"`, `"7d"`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DurationField {
    /// Not given: the policy decides.
    #[default]
    Policy,
    /// Until lifted.
    Permanent,
    /// This long.
    For(Dur),
}

impl DurationField {
    /// Whether the field was left out.
    pub fn is_policy(&self) -> bool {
        *self == Self::Policy
    }
}

impl<'de> Deserialize<'de> for DurationField {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Secs(u64),
            Text(String),
        }
        let help = || {
            format!(
                "duration: whole seconds from 1 to {} (ten years), a string like \"90s\", \
                 \"10m\", \"24h\", \"7d\" (at most three digits), \"permanent\", or null",
                MAX_DURATION.as_secs()
            )
        };
        match Option::<Raw>::deserialize(d).map_err(|_| D::Error::custom(help()))? {
            None => Ok(Self::Permanent),
            Some(Raw::Secs(s)) if (1..=MAX_DURATION.as_secs()).contains(&s) => {
                Ok(Self::For(Dur::secs(s)))
            }
            Some(Raw::Secs(_)) => Err(D::Error::custom(help())),
            Some(Raw::Text(t)) if t == "permanent" => Ok(Self::Permanent),
            Some(Raw::Text(t)) => {
                // Compiled once: building it per request cost more than
                // the rest of a ban.
                static RE: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
                    regex::Regex::new(DURATION_PATTERN).expect("DURATION_PATTERN compiles")
                });
                if !RE.is_match(&t) {
                    return Err(D::Error::custom(help()));
                }
                t.parse::<Dur>()
                    .map(Self::For)
                    .map_err(|_| D::Error::custom(help()))
            }
        }
    }
}

impl Serialize for DurationField {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Policy | Self::Permanent => s.serialize_none(),
            Self::For(d) => s.serialize_u64(d.0.as_secs()),
        }
    }
}

impl PartialSchema for DurationField {
    fn schema() -> RefOr<Schema> {
        OneOfBuilder::new()
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(1))
                    .maximum(Some(MAX_DURATION.as_secs() as f64)),
            )
            .item(string_schema(Some(DURATION_PATTERN), None))
            .item(string_schema(Some("^permanent$"), None))
            .item(ObjectBuilder::new().schema_type(Type::Null))
            .description(Some(
                "whole seconds, a short duration string, \"permanent\" or null; absent: the \
                 ban policy's escalating duration",
            ))
            .into()
    }
}

impl ToSchema for DurationField {}

/// `POST /v1/bans`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BanRequest {
    /// Address or prefix.
    pub addr: Addr,
    /// How long (see [`DurationField`]).
    #[serde(default, skip_serializing_if = "DurationField::is_policy")]
    pub duration: DurationField,
    /// Why (default "manual").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
    /// Ban a prefix wider than `ban_policy.max_prefix_v4`/`v6` allow.
    #[serde(default)]
    pub force: bool,
}

/// Who made a ban.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum SourceName {
    /// An operator.
    Manual,
    /// The detection engine.
    Detection,
    /// Rate limits.
    RateLimit,
    /// `waf import`.
    Import,
    /// Found in the kernel map.
    Adopted,
    /// Made on another host of the fleet (see `origin`).
    Fleet,
}

impl From<crate::firewall::BanSource> for SourceName {
    fn from(s: crate::firewall::BanSource) -> Self {
        use crate::firewall::BanSource as B;
        match s {
            B::Manual => Self::Manual,
            B::Detection => Self::Detection,
            B::RateLimit => Self::RateLimit,
            B::Import => Self::Import,
            B::Adopted => Self::Adopted,
            B::Fleet => Self::Fleet,
        }
    }
}

/// A ban as the API shows it.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct BanView {
    /// Address or prefix.
    pub addr: String,
    /// Why.
    pub reason: String,
    /// Who made it.
    pub source: SourceName,
    /// When (RFC 3339).
    pub created: String,
    /// Until when (RFC 3339); null: permanent.
    pub expires: Option<String>,
    /// Seconds left; null: permanent.
    pub remaining_s: Option<u64>,
    /// Which offence of the source (escalation).
    pub offence: u32,
    /// The fleet host that made it (fleet bans); null: this host.
    #[serde(default)]
    pub origin: Option<String>,
}

impl From<&Ban> for BanView {
    fn from(b: &Ban) -> Self {
        let now = unix_now();
        let expires = b.meta.expires_at();
        BanView {
            addr: show_net(&b.net),
            reason: b.meta.reason.to_string(),
            source: b.meta.source.into(),
            created: rfc3339(u64::from(b.meta.created)),
            expires: expires.map(rfc3339),
            remaining_s: expires.map(|e| e.saturating_sub(now)),
            offence: u32::from(b.meta.offence),
            origin: b.meta.origin.name().map(|o| o.to_string()),
        }
    }
}

/// `GET /v1/bans`: a page of bans in address order.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct BanPage {
    /// The bans.
    pub bans: Vec<BanView>,
    /// Bans in force in all.
    pub total: u64,
    /// Pass as `after` for the next page; null: this was the last.
    pub next: Option<String>,
}

/// `POST /v1/allowlist`, `POST /v1/blocklist`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ListRequest {
    /// Address or CIDR.
    pub cidr: Addr,
    /// Free text kept with the entry.
    #[serde(default)]
    pub comment: Comment,
}

/// A list entry as the API shows it.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct ListEntry {
    /// Address or CIDR.
    pub cidr: String,
    /// `config`, `path:line` of a list file, or `api`.
    pub origin: String,
    /// The operator's comment.
    #[serde(default)]
    pub comment: String,
    /// When it was added (API entries; Unix seconds).
    #[serde(default)]
    pub created: Option<u64>,
}

impl From<&ListView> for ListEntry {
    fn from(v: &ListView) -> Self {
        Self {
            cidr: v.cidr.to_string(),
            origin: v.origin.clone(),
            comment: v.comment.clone(),
            created: v.created,
        }
    }
}

/// `GET /v1/allowlist`, `GET /v1/blocklist`: a page of entries.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ListPage {
    /// The entries, in address order.
    pub entries: Vec<ListEntry>,
    /// Entries in all.
    pub total: u64,
    /// Pass as `after` for the next page; null: this was the last.
    pub next: Option<String>,
}

/// `PUT /v1/mode`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ModeRequest {
    /// Monitor mode on or off (absent: unchanged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitor: Option<bool>,
    /// Emergency mode on or off (absent: unchanged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emergency: Option<bool>,
    /// Allow emergency mode with an empty allowlist.
    #[serde(default)]
    pub force: bool,
}

/// The modes in force.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct ModeView {
    /// Monitor mode.
    pub monitor: bool,
    /// Emergency mode.
    pub emergency: bool,
}

/// A ban in an export document (other fields, as version 1 wrote them,
/// are ignored).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct ExportBan {
    /// Address or prefix.
    pub addr: Addr,
    /// Why.
    #[serde(default)]
    pub reason: Reason,
    /// Until when (RFC 3339, 1970 to 2106); null: permanent.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires: Option<String>,
}

/// A list entry in an export document (other fields are ignored).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct ExportEntry {
    /// Address or CIDR.
    pub cidr: Addr,
    /// The operator's comment.
    #[serde(default)]
    pub comment: Comment,
}

/// `GET /v1/export`, `POST /v1/import`: bans and API list entries.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Export {
    /// Format version: 2 (1, the earlier one, is read too).
    #[schema(minimum = 1, maximum = 2)]
    pub version: u32,
    /// When it was written (RFC 3339).
    #[serde(default)]
    pub exported: String,
    /// Bans.
    #[serde(default)]
    pub bans: Vec<ExportBan>,
    /// Allowlist entries added through the API.
    #[serde(default)]
    pub allowlist: Vec<ExportEntry>,
    /// Blocklist entries added through the API.
    #[serde(default)]
    pub blocklist: Vec<ExportEntry>,
}

/// An error.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong, and what to do.
    pub error: String,
}

/// `DELETE` on a list entry.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Removed {
    /// The entry removed.
    pub removed: String,
}

/// `POST /v1/inspect`: a raw request, or its parts.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum InspectRequest {
    /// The request as sent on the wire.
    Raw {
        /// `GET /?q=1 HTTP/1.1\r\nHost: a\r\n\r\n`.
        #[schema(max_length = 65536)]
        raw: String,
        /// The client address (for operator rules).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schema(value_type = Option<String>, format = Ipv4)]
        remote: Option<String>,
        /// Echoed in the answer.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<u64>,
    },
    /// The request's parts.
    Parts {
        /// The method.
        #[schema(pattern = "^[A-Z]{1,16}$")]
        method: String,
        /// The target: path and query.
        #[schema(pattern = "^/[!-~]{0,2000}$")]
        uri: String,
        /// Header fields as `[name, value]` pairs.
        #[serde(default)]
        headers: Vec<(String, String)>,
        /// The body as text.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schema(max_length = 65536)]
        body: Option<String>,
        /// The client address (for operator rules).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schema(value_type = Option<String>, format = Ipv4)]
        remote: Option<String>,
        /// Echoed in the answer.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<u64>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duration_fields() {
        let d = |s: &str| serde_json::from_str::<BanRequest>(s).map(|r| r.duration);
        assert_eq!(d(r#"{"addr":"192.0.2.1"}"#).unwrap(), DurationField::Policy);
        assert_eq!(
            d(r#"{"addr":"192.0.2.1","duration":null}"#).unwrap(),
            DurationField::Permanent
        );
        assert_eq!(
            d(r#"{"addr":"192.0.2.1","duration":"permanent"}"#).unwrap(),
            DurationField::Permanent
        );
        assert_eq!(
            d(r#"{"addr":"192.0.2.1","duration":"10m"}"#).unwrap(),
            DurationField::For(Dur::secs(600))
        );
        assert_eq!(
            d(r#"{"addr":"192.0.2.1","duration":315360000}"#).unwrap(),
            DurationField::For(Dur::secs(315_360_000))
        );
        for bad in [
            "0",
            "315360001",
            "12976323942248012",
            "18446744073709551615",
            "-1",
            "1.5",
            "\"99999999999d\"",
            "\"1000d\"",
            "\"0s\"",
            "\"1h 30m\"",
            "\"\"",
            "true",
        ] {
            let body = format!(r#"{{"addr":"192.0.2.1","duration":{bad}}}"#);
            let e = serde_json::from_str::<BanRequest>(&body)
                .unwrap_err()
                .to_string();
            assert!(e.contains("duration"), "{bad}: {e}");
        }
    }

    #[test]
    fn the_v6_cidr_pattern_takes_what_the_api_prints() {
        let re = regex::Regex::new(V6_CIDR_PATTERN).unwrap();
        for ok in [
            "::2/128",
            "2001:db8::/32",
            "::/0",
            "2001:db8:1:2:3:4:5:6/64",
            "fe80::1/10",
        ] {
            assert!(re.is_match(ok), "{ok}");
            assert!(crate::values::parse_net(ok).is_ok(), "{ok}");
        }
        for bad in [
            "2001:db8::",
            "2001:db8::/129",
            "1.2.3.4/8",
            "2001:::1/64",
            "g::/8",
        ] {
            assert!(!re.is_match(bad), "{bad}");
        }
    }

    #[test]
    fn the_v4_pattern_is_exact() {
        let re = regex::Regex::new(V4_PATTERN).unwrap();
        for ok in [
            "192.0.2.1",
            "0.0.0.0",
            "255.255.255.255",
            "10.0.0.0/8",
            "1.2.3.4/32",
        ] {
            assert!(re.is_match(ok), "{ok}");
            assert!(crate::values::parse_net(ok).is_ok(), "{ok}");
        }
        for bad in ["256.0.0.1", "1.2.3", "01.2.3.4", "1.2.3.4/33", "1.2.3.4/08"] {
            assert!(!re.is_match(bad), "{bad}");
        }
    }
}
