//! Cloud providers' published range files, read as they ship them: AWS
//! `ip-ranges.json`, Google Cloud `cloud.json` (and `goog.json`), Azure
//! Service Tags JSON; or a plain CIDR list for any other provider.
//!
//! Filters, both case-insensitive and both optional:
//! - regions: AWS `region` or `network_border_group` (so a Local Zone can be
//!   named), Google `scope`, Azure `properties.region`;
//! - services: AWS `service`, Google `service`, Azure
//!   `properties.systemService`, the tag's `name` or the name before its
//!   first `.` (`AzureCloud` matches `AzureCloud.eastus`).
//!
//! A record whose region (service) is empty or absent matches only when no
//! region (service) filter is given: AWS `GLOBAL` is a region like any
//! other, but a global Azure tag has none and so is left out by any region
//! filter. A filter that is an empty list matches no record.
//!
//! Prefixes with host bits set (`10.0.0.1/8`) are accepted and truncated
//! (`10.0.0.0/8`): a provider's file means the network, and refusing a whole
//! provider for one sloppy record would lift the policy. Every record is
//! checked, filtered out or not; unknown fields are ignored.

use std::path::Path;

use ipnet::IpNet;
use serde_json::{Map, Value};

use super::{SourceError, cidrfile};

/// The layout of a range file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// AWS `ip-ranges.json`: `prefixes[].ip_prefix`,
    /// `ipv6_prefixes[].ipv6_prefix`.
    Aws,
    /// Google `cloud.json` / `goog.json`: `prefixes[].ipv4Prefix` or
    /// `.ipv6Prefix`.
    Google,
    /// Azure Service Tags: `values[].properties.addressPrefixes[]`.
    Azure,
    /// A plain CIDR list ([`cidrfile`]), for any other provider.
    Cidr,
}

impl Format {
    /// The format a provider publishes in, by the provider's name (ASCII
    /// case-insensitive): `aws`, `gcp` or `google`, `azure`; `None` for
    /// any other name (whose file format must then be given).
    pub fn for_provider(name: &str) -> Option<Format> {
        match name.to_ascii_lowercase().as_str() {
            "aws" => Some(Format::Aws),
            "gcp" | "google" => Some(Format::Google),
            "azure" => Some(Format::Azure),
            _ => None,
        }
    }
}

/// The networks of range file `file` (its text `text`) in `format` that
/// match the filters (see the module documentation), sorted and without
/// duplicates (AWS lists most ranges twice: `AMAZON` and the service).
///
/// # Errors
///
/// Text that is not JSON of the format's shape, a record that is not an
/// object, a missing or malformed prefix, a field of the wrong type: named
/// by record (`record 12 (prefixes[12])`) or by line and column. Filters
/// with [`Format::Cidr`], which has no regions or services to match.
pub fn parse(
    file: &Path,
    text: &str,
    format: Format,
    regions: Option<&[String]>,
    services: Option<&[String]>,
) -> Result<Vec<IpNet>, SourceError> {
    let filter = Filter { regions, services };
    let mut out = match format {
        Format::Cidr if regions.is_some() || services.is_some() => {
            return Err(SourceError::new(
                file,
                "file",
                "region and service filters need a provider's format (aws, google, azure): \
                 a CIDR list has neither",
            ));
        }
        Format::Cidr => return cidrfile::parse(file, text),
        Format::Aws => aws(&Doc::new(file, text)?, &filter)?,
        Format::Google => google(&Doc::new(file, text)?, &filter)?,
        Format::Azure => azure(&Doc::new(file, text)?, &filter)?,
    };
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// The region and service filters.
struct Filter<'a> {
    regions: Option<&'a [String]>,
    services: Option<&'a [String]>,
}

impl Filter<'_> {
    /// Whether a record with these region and service names passes.
    fn passes(&self, regions: &[&str], services: &[&str]) -> bool {
        fn any(filter: Option<&[String]>, names: &[&str]) -> bool {
            filter.is_none_or(|f| {
                names
                    .iter()
                    .any(|n| !n.is_empty() && f.iter().any(|x| x.eq_ignore_ascii_case(n)))
            })
        }
        any(self.regions, regions) && any(self.services, services)
    }
}

/// A parsed file: its name (for errors) and top-level object.
struct Doc<'a> {
    file: &'a Path,
    root: Map<String, Value>,
}

impl<'a> Doc<'a> {
    fn new(file: &'a Path, text: &str) -> Result<Self, SourceError> {
        let value: Value = serde_json::from_str(text).map_err(|e| {
            let shown = e.to_string();
            let suffix = format!(" at line {} column {}", e.line(), e.column());
            let message = shown.strip_suffix(&suffix).unwrap_or(&shown).to_string();
            SourceError::new(
                file,
                format!("line {} column {}", e.line(), e.column()),
                message,
            )
        })?;
        match value {
            Value::Object(root) => Ok(Self { file, root }),
            other => Err(SourceError::new(
                file,
                "file",
                format!("the top level is {}, not an object", kind(&other)),
            )),
        }
    }

    /// The records of array `key`: `None` when the key is absent.
    fn records(&self, key: &str) -> Result<Option<&[Value]>, SourceError> {
        match self.root.get(key) {
            None => Ok(None),
            Some(Value::Array(a)) => Ok(Some(a)),
            Some(other) => Err(self.error(key, format!("is {}, not an array", kind(other)))),
        }
    }

    /// The error "none of `keys`": the file is not in this format.
    fn missing(&self, keys: &str, what: &str) -> SourceError {
        self.error("file", format!("none of the keys {keys}: is this {what}?"))
    }

    fn error(&self, location: impl Into<String>, message: impl Into<String>) -> SourceError {
        SourceError::new(self.file, location, message)
    }
}

/// What a JSON value is, for messages.
fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A record as an object.
fn object(v: &Value) -> Result<&Map<String, Value>, String> {
    v.as_object()
        .ok_or_else(|| format!("is {}, not an object", kind(v)))
}

/// Text field `name`: `None` when absent or null.
fn text<'v>(rec: &'v Map<String, Value>, name: &str) -> Result<Option<&'v str>, String> {
    match rec.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(format!("{name:?} is {}, not a string", kind(other))),
    }
}

/// Field `name` as a CIDR, host bits cleared.
fn cidr(name: &str, s: &str) -> Result<IpNet, String> {
    s.parse::<IpNet>().map(|n| n.trunc()).map_err(|_| {
        let shown: String = s.chars().take(80).flat_map(char::escape_default).collect();
        format!("{name:?} is not a CIDR: \"{shown}\"")
    })
}

/// AWS `ip-ranges.json`.
fn aws(doc: &Doc, filter: &Filter) -> Result<Vec<IpNet>, SourceError> {
    let mut out = Vec::new();
    let mut found = false;
    for (key, field) in [("prefixes", "ip_prefix"), ("ipv6_prefixes", "ipv6_prefix")] {
        let Some(records) = doc.records(key)? else {
            continue;
        };
        found = true;
        for (i, rec) in records.iter().enumerate() {
            let net = aws_record(rec, field, filter)
                .map_err(|m| doc.error(format!("record {i} ({key}[{i}])"), m))?;
            out.extend(net);
        }
    }
    if !found {
        return Err(doc.missing("\"prefixes\", \"ipv6_prefixes\"", "an AWS ip-ranges.json"));
    }
    Ok(out)
}

/// One AWS record: its network if it passes the filters.
fn aws_record(rec: &Value, field: &str, filter: &Filter) -> Result<Option<IpNet>, String> {
    let rec = object(rec)?;
    let prefix = text(rec, field)?.ok_or_else(|| format!("no {field:?}"))?;
    let region = text(rec, "region")?.unwrap_or("");
    let border = text(rec, "network_border_group")?.unwrap_or("");
    let service = text(rec, "service")?.unwrap_or("");
    let net = cidr(field, prefix)?;
    Ok(filter.passes(&[region, border], &[service]).then_some(net))
}

/// Google `cloud.json` (or `goog.json`, whose records have no scope or
/// service).
fn google(doc: &Doc, filter: &Filter) -> Result<Vec<IpNet>, SourceError> {
    let records = doc
        .records("prefixes")?
        .ok_or_else(|| doc.missing("\"prefixes\"", "a Google cloud.json"))?;
    let mut out = Vec::new();
    for (i, rec) in records.iter().enumerate() {
        let net = google_record(rec, filter)
            .map_err(|m| doc.error(format!("record {i} (prefixes[{i}])"), m))?;
        out.extend(net);
    }
    Ok(out)
}

/// One Google record: its network if it passes the filters.
fn google_record(rec: &Value, filter: &Filter) -> Result<Option<IpNet>, String> {
    let rec = object(rec)?;
    let (field, prefix) = match (text(rec, "ipv4Prefix")?, text(rec, "ipv6Prefix")?) {
        (Some(p), None) => ("ipv4Prefix", p),
        (None, Some(p)) => ("ipv6Prefix", p),
        (None, None) => return Err("no \"ipv4Prefix\" or \"ipv6Prefix\"".into()),
        (Some(_), Some(_)) => return Err("both \"ipv4Prefix\" and \"ipv6Prefix\"".into()),
    };
    let region = text(rec, "scope")?.unwrap_or("");
    let service = text(rec, "service")?.unwrap_or("");
    let net = cidr(field, prefix)?;
    Ok(filter.passes(&[region], &[service]).then_some(net))
}

/// Azure Service Tags (`ServiceTags_Public_*.json`).
fn azure(doc: &Doc, filter: &Filter) -> Result<Vec<IpNet>, SourceError> {
    let records = doc
        .records("values")?
        .ok_or_else(|| doc.missing("\"values\"", "an Azure Service Tags file"))?;
    let mut out = Vec::new();
    for (i, rec) in records.iter().enumerate() {
        let at = |path: &str| format!("record {i} (values[{i}]{path})");
        let rec = object(rec).map_err(|m| doc.error(at(""), m))?;
        let name = text(rec, "name")
            .map_err(|m| doc.error(at(""), m))?
            .unwrap_or("");
        let props = match rec.get("properties") {
            Some(p) => object(p).map_err(|m| doc.error(at(".properties"), m))?,
            None => return Err(doc.error(at(""), "no \"properties\"")),
        };
        let field = |f: &str| text(props, f).map_err(|m| doc.error(at(".properties"), m));
        let region = field("region")?.unwrap_or("");
        let service = field("systemService")?.unwrap_or("");
        let prefixes = match props.get("addressPrefixes") {
            Some(Value::Array(a)) => a.as_slice(),
            None | Some(Value::Null) => &[],
            Some(other) => {
                let m = format!("\"addressPrefixes\" is {}, not an array", kind(other));
                return Err(doc.error(at(".properties"), m));
            }
        };
        let family = name.split('.').next().unwrap_or("");
        let pass = filter.passes(&[region], &[service, name, family]);
        for (j, p) in prefixes.iter().enumerate() {
            let net = match p {
                Value::String(s) => cidr("addressPrefixes", s),
                other => Err(format!("is {}, not a string", kind(other))),
            }
            .map_err(|m| doc.error(at(&format!(".properties.addressPrefixes[{j}]")), m))?;
            if pass {
                out.push(net);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const AWS: &str = r#"{
      "syncToken": "1700000000", "createDate": "2024-01-01-00-00-00",
      "prefixes": [
        {"ip_prefix": "3.2.34.0/26", "region": "af-south-1", "service": "AMAZON",
         "network_border_group": "af-south-1"},
        {"ip_prefix": "3.2.34.0/26", "region": "af-south-1", "service": "EC2",
         "network_border_group": "af-south-1"},
        {"ip_prefix": "15.181.232.0/21", "region": "us-west-2", "service": "EC2",
         "network_border_group": "us-west-2-lax-1", "extra": [1, {"x": null}]},
        {"ip_prefix": "52.94.76.1/22", "region": "GLOBAL", "service": "CLOUDFRONT",
         "network_border_group": "GLOBAL"}
      ],
      "ipv6_prefixes": [
        {"ipv6_prefix": "2600:1f14::/35", "region": "us-west-2", "service": "EC2",
         "network_border_group": "us-west-2"}
      ]
    }"#;

    const GOOGLE: &str = r#"{
      "syncToken": "1", "creationTime": "2024-01-01T00:00:00",
      "prefixes": [
        {"ipv4Prefix": "34.1.208.0/20", "service": "Google Cloud", "scope": "africa-south1"},
        {"ipv6Prefix": "2600:1900:8000::/44", "service": "Google Cloud", "scope": "us-east1"},
        {"ipv4Prefix": "8.8.4.0/24"}
      ]
    }"#;

    const AZURE: &str = r#"{
      "changeNumber": 1, "cloud": "Public",
      "values": [
        {"name": "AzureCloud.eastus", "id": "AzureCloud.eastus",
         "properties": {"changeNumber": 1, "region": "eastus", "regionId": 32,
           "platform": "Azure", "systemService": "",
           "addressPrefixes": ["13.68.128.0/17", "2603:1030:20c::/47"],
           "networkFeatures": ["API"]}},
        {"name": "AzureFrontDoor.Backend", "id": "AzureFrontDoor.Backend",
         "properties": {"region": "", "systemService": "AzureFrontDoor",
           "addressPrefixes": ["147.243.0.0/16"]}},
        {"name": "AzureCloud", "properties": {"region": "", "systemService": "",
           "addressPrefixes": ["13.64.0.0/11"]}}
      ]
    }"#;

    fn file() -> &'static Path {
        Path::new("/var/lib/waf/ranges.json")
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    fn run(text: &str, f: Format, r: Option<&[&str]>, sv: Option<&[&str]>) -> Vec<String> {
        let (r, sv) = (r.map(s), sv.map(s));
        parse(file(), text, f, r.as_deref(), sv.as_deref())
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    fn fail(text: &str, f: Format) -> SourceError {
        parse(file(), text, f, None, None).unwrap_err()
    }

    #[test]
    fn providers_by_name() {
        assert_eq!(Format::for_provider("aws"), Some(Format::Aws));
        assert_eq!(Format::for_provider("GCP"), Some(Format::Google));
        assert_eq!(Format::for_provider("google"), Some(Format::Google));
        assert_eq!(Format::for_provider("azure"), Some(Format::Azure));
        assert_eq!(Format::for_provider("oracle"), None);
    }

    #[test]
    fn aws_all_and_filtered() {
        let all = run(AWS, Format::Aws, None, None);
        // Sorted, the duplicate gone, host bits cleared.
        assert_eq!(
            all,
            [
                "3.2.34.0/26",
                "15.181.232.0/21",
                "52.94.76.0/22",
                "2600:1f14::/35"
            ]
        );
        let west = run(AWS, Format::Aws, Some(&["US-WEST-2"]), None);
        assert_eq!(west, ["15.181.232.0/21", "2600:1f14::/35"]);
        let lax = run(AWS, Format::Aws, Some(&["us-west-2-lax-1"]), Some(&["ec2"]));
        assert_eq!(lax, ["15.181.232.0/21"]);
        let cf = run(AWS, Format::Aws, None, Some(&["cloudfront", "nope"]));
        assert_eq!(cf, ["52.94.76.0/22"]);
        assert!(run(AWS, Format::Aws, Some(&[]), None).is_empty());
        let v6_only = r#"{"ipv6_prefixes": [{"ipv6_prefix": "2600::/48"}]}"#;
        assert_eq!(run(v6_only, Format::Aws, None, None), ["2600::/48"]);
        // No region in the record: only without a region filter.
        assert!(run(v6_only, Format::Aws, Some(&["us-east-1"]), None).is_empty());
    }

    #[test]
    fn google_all_and_filtered() {
        let all = run(GOOGLE, Format::Google, None, None);
        assert_eq!(all, ["8.8.4.0/24", "34.1.208.0/20", "2600:1900:8000::/44"]);
        let east = run(
            GOOGLE,
            Format::Google,
            Some(&["us-east1"]),
            Some(&["google cloud"]),
        );
        assert_eq!(east, ["2600:1900:8000::/44"]);
        assert_eq!(
            run(GOOGLE, Format::Google, None, Some(&["Google Cloud"])).len(),
            2
        );
    }

    #[test]
    fn azure_all_and_filtered() {
        let all = run(AZURE, Format::Azure, None, None);
        assert_eq!(
            all,
            [
                "13.64.0.0/11",
                "13.68.128.0/17",
                "147.243.0.0/16",
                "2603:1030:20c::/47"
            ]
        );
        let east = run(
            AZURE,
            Format::Azure,
            Some(&["EastUS"]),
            Some(&["AzureCloud"]),
        );
        assert_eq!(east, ["13.68.128.0/17", "2603:1030:20c::/47"]);
        let cloud = run(AZURE, Format::Azure, None, Some(&["azurecloud"]));
        assert_eq!(cloud.len(), 3);
        let fd = run(AZURE, Format::Azure, None, Some(&["AzureFrontDoor"]));
        assert_eq!(fd, ["147.243.0.0/16"]);
        let fd = run(
            AZURE,
            Format::Azure,
            None,
            Some(&["AzureFrontDoor.Backend"]),
        );
        assert_eq!(fd, ["147.243.0.0/16"]);
    }

    #[test]
    fn cidr_lists_and_their_filters() {
        let got = run("# list\n192.0.2.0/24\n", Format::Cidr, None, None);
        assert_eq!(got, ["192.0.2.0/24"]);
        let e = parse(file(), "", Format::Cidr, Some(&s(&["x"])), None).unwrap_err();
        assert!(e.message.contains("filters"), "{e}");
    }

    #[test]
    fn errors_name_the_file_and_the_record() {
        let e = fail(
            &AWS.replace(
                "3.2.34.0/26\", \"region\": \"af-south-1\", \"service\": \"EC2",
                "3.2.34.0/33\", \"region\": \"x\", \"service\": \"EC2",
            ),
            Format::Aws,
        );
        assert_eq!(e.location, "record 1 (prefixes[1])");
        assert_eq!(e.message, r#""ip_prefix" is not a CIDR: "3.2.34.0/33""#);
        assert!(
            e.to_string()
                .starts_with("/var/lib/waf/ranges.json: record 1")
        );

        let e = fail(
            r#"{"prefixes": [{"ip_prefix": "10.0.0.0/8"}, 7]}"#,
            Format::Aws,
        );
        assert_eq!(
            (e.location.as_str(), e.message.as_str()),
            ("record 1 (prefixes[1])", "is a number, not an object")
        );
        let e = fail(r#"{"ipv6_prefixes": [{"ip_prefix": "::/0"}]}"#, Format::Aws);
        assert_eq!(e.message, "no \"ipv6_prefix\"");
        let e = fail(
            r#"{"prefixes": [{"ip_prefix": "10.0.0.0/8", "region": 3}]}"#,
            Format::Aws,
        );
        assert_eq!(e.message, "\"region\" is a number, not a string");
        let e = fail(r#"{"prefixes": {}}"#, Format::Aws);
        assert_eq!(
            (e.location.as_str(), e.message.as_str()),
            ("prefixes", "is an object, not an array")
        );

        // The wrong format, or not JSON at all.
        let e = fail(AZURE, Format::Aws);
        assert_eq!(e.location, "file");
        assert!(e.message.contains("AWS ip-ranges.json"), "{e}");
        assert!(fail(AWS, Format::Azure).message.contains("Azure"));
        assert!(fail(AZURE, Format::Google).message.contains("Google"));
        let e = fail("[1, 2]", Format::Google);
        assert_eq!(e.message, "the top level is an array, not an object");
        let e = fail("{\n  \"prefixes\": [,]\n}", Format::Google);
        assert_eq!(e.location, "line 2 column 16");
        assert!(!e.message.contains("line"), "{e}");

        let e = fail(
            r#"{"prefixes": [{"ipv4Prefix": "1.2.3.4/8", "ipv6Prefix": "::/0"}]}"#,
            Format::Google,
        );
        assert_eq!(e.message, "both \"ipv4Prefix\" and \"ipv6Prefix\"");
        let e = fail(
            r#"{"prefixes": [{"ipv4Prefix": "1.2.3.4/8"}, {"scope": "x"}]}"#,
            Format::Google,
        );
        assert_eq!(e.location, "record 1 (prefixes[1])");

        let bad = AZURE.replace("\"147.243.0.0/16\"", "\"147.243.0.0/16\", 5");
        let e = fail(&bad, Format::Azure);
        assert_eq!(
            e.location,
            "record 1 (values[1].properties.addressPrefixes[1])"
        );
        assert_eq!(e.message, "is a number, not a string");
        let bad = AZURE.replace("13.64.0.0/11", "13.64.0.0/1\\u001b[2J");
        let e = fail(&bad, Format::Azure);
        assert_eq!(
            e.location,
            "record 2 (values[2].properties.addressPrefixes[0])"
        );
        assert!(
            e.message.contains("\\u{1b}") && !e.message.contains('\u{1b}'),
            "{e}"
        );
        let e = fail(r#"{"values": [{"name": "x"}]}"#, Format::Azure);
        assert_eq!(
            (e.location.as_str(), e.message.as_str()),
            ("record 0 (values[0])", "no \"properties\"")
        );
        let e = fail(
            r#"{"values": [{"properties": {"region": []}}]}"#,
            Format::Azure,
        );
        assert_eq!(e.location, "record 0 (values[0].properties)");
    }

    #[test]
    fn hostile_text_gives_errors() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(fail(&deep, Format::Aws).message.contains("recursion"));
        let deep = format!(
            "{{\"prefixes\": {}1{}}}",
            "[".repeat(5000),
            "]".repeat(5000)
        );
        assert!(parse(file(), &deep, Format::Google, None, None).is_err());
        for cut in 0..AWS.len() {
            if AWS.is_char_boundary(cut) {
                let _ = parse(file(), &AWS[..cut], Format::Aws, None, None);
            }
        }
    }
}
