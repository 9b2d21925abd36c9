//! The value grammars every face shares (config, API, CLI, `waf gen`):
//! durations, ban lengths, addresses and prefixes, and the bounds they obey.
//! One parser each, so a value means the same thing wherever it is written.

use std::{fmt, path::PathBuf, str::FromStr, time::Duration};

use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The longest duration any value may take: ten years. Nothing in this
/// product needs more, and the bound keeps every time computation far from
/// overflow (a ban's expiry is a Unix time in 32 bits: until 2106).
pub const MAX_DURATION: Duration = Duration::from_secs(10 * 365 * 86_400);

/// A duration as operators write it: whole seconds (`600`), or one whole
/// number with one unit (`"500ms"`, `"90s"`, `"10m"`, `"24h"`, `"7d"`). At
/// most [`MAX_DURATION`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
pub struct Dur(pub Duration);

impl Dur {
    /// `secs` seconds.
    pub const fn secs(secs: u64) -> Self {
        Dur(Duration::from_secs(secs))
    }

    /// Checks the bound; `what` names the value in the message.
    pub fn bounded(d: Duration) -> Result<Self, String> {
        if d > MAX_DURATION {
            return Err(format!(
                "{} is longer than the longest duration allowed, 10 years (3650d)",
                Dur(d)
            ));
        }
        Ok(Dur(d))
    }
}

fn duration_help(s: &str) -> String {
    let shown: String = s.chars().take(40).collect();
    format!(
        "invalid duration `{shown}`: use whole seconds (600) or a number with a unit \
         (\"500ms\", \"90s\", \"10m\", \"24h\", \"7d\"), at most 10 years"
    )
}

impl FromStr for Dur {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        // One grammar everywhere: whole seconds, or one whole number with
        // one unit. humantime does the arithmetic (and refuses overflow).
        let digits = t.bytes().take_while(u8::is_ascii_digit).count();
        let unit = &t[digits..];
        if digits == 0 || digits > 20 || !["", "ms", "s", "m", "h", "d"].contains(&unit) {
            return Err(duration_help(s));
        }
        if unit.is_empty() {
            let n: u64 = t.parse().map_err(|_| duration_help(s))?;
            if n > MAX_DURATION.as_secs() {
                return Err(duration_help(s));
            }
            return Ok(Dur(Duration::from_secs(n)));
        }
        let d = humantime::parse_duration(t).map_err(|_| duration_help(s))?;
        Dur::bounded(d).map_err(|_| duration_help(s))
    }
}

impl fmt::Display for Dur {
    /// The shortest exact form with one unit: `90s`, `10m`, `2h`, `7d`,
    /// `250ms`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        let (n, unit) = if ms == 0 {
            (0, "s")
        } else if ms.is_multiple_of(86_400_000) {
            (ms / 86_400_000, "d")
        } else if ms.is_multiple_of(3_600_000) {
            (ms / 3_600_000, "h")
        } else if ms.is_multiple_of(60_000) {
            (ms / 60_000, "m")
        } else if ms.is_multiple_of(1000) {
            (ms / 1000, "s")
        } else {
            (ms, "ms")
        };
        write!(f, "{n}{unit}")
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawDur {
    Secs(u64),
    Text(String),
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match RawDur::deserialize(d)? {
            RawDur::Secs(s) if s <= MAX_DURATION.as_secs() => Ok(Dur::secs(s)),
            RawDur::Secs(s) => Err(serde::de::Error::custom(duration_help(&s.to_string()))),
            RawDur::Text(t) => t.parse().map_err(serde::de::Error::custom),
        }
    }
}

impl Serialize for Dur {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

/// How long a ban lasts when an operator says so: a duration or
/// `permanent`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BanLength {
    /// Until lifted.
    Permanent,
    /// This long (positive, at most [`MAX_DURATION`]).
    For(Dur),
}

impl FromStr for BanLength {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s.trim().eq_ignore_ascii_case("permanent") {
            return Ok(Self::Permanent);
        }
        let d: Dur = s.parse()?;
        if d.0 < Duration::from_secs(1) {
            return Err(format!(
                "ban duration `{}`: at least 1s (or `permanent`)",
                s.trim()
            ));
        }
        Ok(Self::For(d))
    }
}

impl fmt::Display for BanLength {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Permanent => f.write_str("permanent"),
            Self::For(d) => d.fmt(f),
        }
    }
}

/// Parses an address (a host prefix) or a CIDR; the host bits of a CIDR are
/// cleared (`203.0.113.7/24` is `203.0.113.0/24`). Zone ids, ports and
/// anything else are refused with an example of what is accepted.
pub fn parse_net(s: &str) -> Result<IpNet, String> {
    let t = s.trim();
    if t.len() <= 64 {
        if let Ok(n) = t.parse::<IpNet>() {
            return Ok(n.trunc());
        }
        if let Ok(a) = t.parse::<std::net::IpAddr>() {
            return Ok(IpNet::from(a));
        }
    }
    let shown: String = s.chars().take(64).flat_map(char::escape_default).collect();
    Err(format!(
        "`{shown}` is not an IPv4/IPv6 address or CIDR (e.g. 198.51.100.7, 203.0.113.0/24, \
         2001:db8::/64)"
    ))
}

/// An address or prefix as people read it: a host bare, a prefix with its
/// length.
pub fn show_net(n: &IpNet) -> String {
    if n.prefix_len() == n.max_prefix_len() {
        n.addr().to_string()
    } else {
        n.to_string()
    }
}

/// Checks free text an operator attaches (a reason, a comment): at most
/// `max` bytes, no control characters (they would forge log lines).
pub fn check_text(what: &str, s: &str, max: usize) -> Result<(), String> {
    if s.len() > max {
        return Err(format!("{what}: at most {max} bytes (got {})", s.len()));
    }
    if let Some(c) = s.chars().find(|c| c.is_control()) {
        return Err(format!(
            "{what}: control characters are not allowed (found {:?})",
            c
        ));
    }
    Ok(())
}

/// Unix seconds now.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A Unix time as RFC 3339 (seconds).
pub fn rfc3339(unix: u64) -> String {
    let t = std::time::UNIX_EPOCH + Duration::from_secs(unix.min(MAX_UNIX));
    humantime::format_rfc3339_seconds(t).to_string()
}

/// The last Unix second a 32-bit expiry can hold (2106-02-07).
pub const MAX_UNIX: u64 = u32::MAX as u64;

/// Parses an RFC 3339 time to Unix seconds, within 1970..=2106.
pub fn parse_rfc3339(s: &str) -> Result<u64, String> {
    let t = humantime::parse_rfc3339_weak(s.trim())
        .map_err(|e| format!("`{s}` is not an RFC 3339 time ({e})"))?;
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|_| format!("`{s}` is before 1970"))?
        .as_secs();
    if secs > MAX_UNIX {
        return Err(format!("`{s}` is after 2106"));
    }
    Ok(secs)
}

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
    /// A key that moved: the message names where.
    #[error("config: {key} is no longer read: {instead}")]
    Moved {
        /// The old key.
        key: String,
        /// What to write instead.
        instead: String,
    },
    /// A source-policy file (`[sources]`) could not be used.
    #[error("sources: {file}: {location}: {message}")]
    Source {
        /// The file.
        file: PathBuf,
        /// Where in it: a line, a record, a network.
        location: String,
        /// What is wrong.
        message: String,
    },
    /// A section's own check refused it; the message names the key
    /// (`anomaly.threshold = 1.5: ...`).
    #[error("config: {0}")]
    Refused(String),
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

/// An "invalid value" error.
pub fn invalid(key: &str, value: impl fmt::Display, allowed: &str) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        value: value.to_string(),
        allowed: allowed.into(),
    }
}

/// Refuses a key that moved, when the file still has it.
pub fn moved<T>(v: &Option<T>, key: &str, instead: &str) -> Result<(), ConfigError> {
    match v {
        Some(_) => Err(ConfigError::Moved {
            key: key.into(),
            instead: instead.into(),
        }),
        None => Ok(()),
    }
}

/// A config value given as one string or a list of them (`iface`,
/// `[fleet] url`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OneOrMany(pub Vec<String>);

impl<'de> serde::Deserialize<'de> for OneOrMany {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Raw {
            One(String),
            Many(Vec<String>),
        }
        Ok(OneOrMany(match Raw::deserialize(d)? {
            Raw::One(s) => vec![s],
            Raw::Many(v) => v,
        }))
    }
}

/// Calls `f` with each line of `r` (without its `\n`), or None for a line
/// longer than `max` bytes; a last line without its end is handed over
/// too. Memory stays bounded whatever the input: a line is buffered up to
/// `max` bytes, the rest of a longer one skipped.
pub fn each_line(
    r: impl std::io::Read,
    max: usize,
    mut f: impl FnMut(Option<&[u8]>),
) -> std::io::Result<()> {
    use std::io::BufRead as _;
    let mut r = std::io::BufReader::with_capacity(64 * 1024, r);
    let mut line = Vec::with_capacity(1024);
    let mut too_long = false;
    loop {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            if !line.is_empty() || too_long {
                f((!too_long).then_some(&line[..]));
            }
            return Ok(());
        }
        let (chunk, end) = match memchr::memchr(b'\n', buf) {
            Some(i) => (&buf[..i], Some(i + 1)),
            None => (buf, None),
        };
        if !too_long {
            if line.len() + chunk.len() > max {
                too_long = true;
                line.clear();
            } else {
                line.extend_from_slice(chunk);
            }
        }
        let used = end.unwrap_or(buf.len());
        r.consume(used);
        if end.is_some() {
            f((!too_long).then_some(&line[..]));
            line.clear();
            too_long = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_seconds_or_with_units() {
        for (s, secs) in [
            ("90s", 90),
            ("10m", 600),
            ("24h", 86400),
            ("7d", 604_800),
            ("45", 45),
            (" 3650d ", 3650 * 86400),
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
        for bad in [
            "",
            "10x",
            "m",
            "-5s",
            "+5s",
            "1.5h",
            "1h 30m",
            "10 m",
            "2days",
            "99999999999d",
            "12976323942248012",
            "18446744073709551615",
            "3651d",
            "1e9",
        ] {
            let e = bad.parse::<Dur>().unwrap_err();
            assert!(e.contains("invalid duration"), "{bad}: {e}");
        }
        assert_eq!(Dur::secs(7200).to_string(), "2h");
        assert_eq!(Dur::secs(0).to_string(), "0s");
        assert_eq!(Dur(Duration::from_millis(1500)).to_string(), "1500ms");
    }

    #[test]
    fn every_duration_prints_in_a_form_that_parses_back() {
        for secs in [1u64, 59, 60, 61, 3599, 3600, 86_399, 86_400, 3650 * 86_400] {
            let d = Dur::secs(secs);
            assert_eq!(d.to_string().parse::<Dur>().unwrap(), d, "{secs}");
        }
    }

    #[test]
    fn json_seconds_are_bounded_too() {
        let d: Dur = serde_json::from_str("600").unwrap();
        assert_eq!(d, Dur::secs(600));
        assert!(serde_json::from_str::<Dur>("12976323942248012").is_err());
        assert!(serde_json::from_str::<Dur>("18446744073709551615").is_err());
        assert!(serde_json::from_str::<Dur>("-1").is_err());
        assert!(serde_json::from_str::<Dur>("\"99999999999d\"").is_err());
    }

    #[test]
    fn ban_lengths() {
        assert_eq!(
            "permanent".parse::<BanLength>().unwrap(),
            BanLength::Permanent
        );
        assert_eq!(
            "10m".parse::<BanLength>().unwrap(),
            BanLength::For(Dur::secs(600))
        );
        assert!("0".parse::<BanLength>().is_err());
        assert!("500ms".parse::<BanLength>().is_err());
    }

    #[test]
    fn nets() {
        assert_eq!(
            parse_net("203.0.113.7/24").unwrap().to_string(),
            "203.0.113.0/24"
        );
        assert_eq!(
            parse_net(" 2001:db8::1 ").unwrap().to_string(),
            "2001:db8::1/128"
        );
        for bad in [
            "",
            "1.2.3.4:80",
            "fe80::1%eth0",
            "10.0.0.0/33",
            "x",
            "1.2.3.4/-1",
        ] {
            assert!(parse_net(bad).is_err(), "{bad}");
        }
        let long = "1".repeat(10_000);
        assert!(parse_net(&long).unwrap_err().len() < 400);
        assert_eq!(show_net(&parse_net("192.0.2.1").unwrap()), "192.0.2.1");
        assert_eq!(
            show_net(&parse_net("192.0.2.0/24").unwrap()),
            "192.0.2.0/24"
        );
    }

    #[test]
    fn text_is_bounded_and_has_no_control_characters() {
        assert!(check_text("reason", "credential stuffing", 256).is_ok());
        assert!(check_text("reason", &"x".repeat(257), 256).is_err());
        assert!(check_text("reason", "a\nforged log line", 256).is_err());
        assert!(check_text("reason", "a\u{7f}", 256).is_err());
    }

    #[test]
    fn times() {
        assert_eq!(
            parse_rfc3339("2026-12-02T00:00:00Z").unwrap(),
            1_796_169_600
        );
        assert!(parse_rfc3339("2200-01-01T00:00:00Z").is_err());
        assert!(parse_rfc3339("soon").is_err());
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(u64::MAX), "2106-02-07T06:28:15Z");
    }
}
