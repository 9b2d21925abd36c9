//! Reads the proxy's access log (`proxy/log.rs`, `format_line`) in its
//! three formats, exactly as it writes them:
//!
//! - JSON, one object a line: `time` (RFC 3339), `remote`, `method`,
//!   `target`, `status` (number), `user_agent` (missing: empty), `bytes`
//!   (number, optional: 0); other keys are ignored.
//! - common: `REMOTE - - [TIME] "METHOD TARGET HTTP/1.1" STATUS -
//!   verdict=V score=N reason="R" id=ID[ bytes=N][ country=C asn=A]`
//! - combined: the same with `"REFERER" "USER-AGENT"` after `STATUS -`.
//!
//! Quoted fields are Rust's `escape_default` (`\"`, `\\`, `\'`, `\t`, `\r`,
//! `\n`, `\u{..}`), undone here. After `id=` come space-separated
//! `key=value` tokens: `bytes=` (a whole number) is read, any other key
//! skipped, so fields added later do not break the reader.

use std::net::IpAddr;

use serde::Deserialize;

/// One request of the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Unix seconds.
    pub time: u64,
    /// The client.
    pub remote: IpAddr,
    /// The method as sent.
    pub method: String,
    /// The target as sent (path and query).
    pub target: String,
    /// The status the client got.
    pub status: u16,
    /// Its user agent (empty in the common format).
    pub user_agent: String,
    /// The request body's declared length (0 when the line has none).
    pub bytes: u64,
    /// The proxy's verdict (`pass`, `block`, `challenged`...; empty when
    /// the line has none).
    pub verdict: String,
}

/// The longest line read.
pub const MAX_LINE: usize = 64 * 1024;

#[derive(Deserialize)]
struct JsonLine {
    time: String,
    remote: String,
    method: String,
    target: String,
    status: u16,
    #[serde(default)]
    user_agent: String,
    #[serde(default)]
    bytes: u64,
    #[serde(default)]
    verdict: String,
}

/// Reads a line of any of the three formats; None when it is none of them.
pub fn parse(line: &str) -> Option<Record> {
    let line = line.trim_end_matches(['\n', '\r']);
    if line.len() > MAX_LINE {
        return None;
    }
    if line.starts_with('{') {
        let j: JsonLine = serde_json::from_str(line).ok()?;
        return Some(Record {
            time: crate::values::parse_rfc3339(&j.time).ok()?,
            remote: j.remote.parse().ok()?,
            method: j.method,
            target: j.target,
            status: j.status,
            user_agent: j.user_agent,
            bytes: j.bytes,
            verdict: j.verdict,
        });
    }
    parse_text(line)
}

fn parse_text(line: &str) -> Option<Record> {
    let (remote, rest) = line.split_once(" - - [")?;
    let remote: IpAddr = remote.parse().ok()?;
    let (time, rest) = rest.split_once("] \"")?;
    let time = crate::values::parse_rfc3339(time).ok()?;
    let (request, rest) = quoted(rest)?;
    // The method is a token (escape_default leaves it without spaces);
    // the target is everything up to " HTTP/1.1".
    let (method, target) = request.split_once(' ')?;
    let target = target.strip_suffix(" HTTP/1.1")?;
    let (method, target) = (unescape(method)?, unescape(target)?);
    let rest = rest.strip_prefix(' ')?;
    let (status, rest) = rest.split_once(" - ")?;
    let status: u16 = status.parse().ok()?;
    let (user_agent, rest) = match rest.strip_prefix('"') {
        Some(r) => {
            let (_referer, r) = quoted(r)?;
            let r = r.strip_prefix(" \"")?;
            let (ua, r) = quoted(r)?;
            (unescape(ua)?, r.strip_prefix(' ')?)
        }
        None => (String::new(), rest),
    };
    let rest = rest.strip_prefix("verdict=")?;
    let (verdict, rest) = rest.split_once(" score=")?;
    let (score, rest) = rest.split_once(" reason=\"")?;
    score.parse::<u64>().ok()?;
    let (_reason, rest) = quoted(rest)?;
    let rest = rest.strip_prefix(" id=")?;
    let mut bytes = 0;
    for (i, token) in rest.split(' ').enumerate() {
        if i == 0 {
            continue; // the request id
        }
        let (k, v) = token.split_once('=')?;
        if k == "bytes" {
            bytes = v.parse().ok()?;
        }
    }
    Some(Record {
        time,
        remote,
        method,
        target,
        status,
        user_agent,
        bytes,
        verdict: verdict.to_string(),
    })
}

/// Splits `s` (just after an opening quote) at its closing quote: the
/// escaped text inside, and what follows the quote.
fn quoted(s: &str) -> Option<(&str, &str)> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return Some((&s[..i], &s[i + 1..])),
            _ => i += 1,
        }
    }
    None
}

/// Undoes `str::escape_default`.
pub fn unescape(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next()? {
            't' => out.push('\t'),
            'r' => out.push('\r'),
            'n' => out.push('\n'),
            c @ ('\'' | '"' | '\\') => out.push(c),
            'u' => {
                if chars.next()? != '{' {
                    return None;
                }
                let mut hex = String::new();
                for c in chars.by_ref() {
                    if c == '}' {
                        break;
                    }
                    if hex.len() == 6 {
                        return None;
                    }
                    hex.push(c);
                }
                out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
            }
            _ => return None,
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::anomaly::tests::format_line;

    fn rec() -> Record {
        Record {
            time: 1_780_000_000,
            remote: "2001:db8::7".parse().unwrap(),
            method: "POST".into(),
            target: "/login?next=/a b\"c\\d\n".into(),
            status: 401,
            user_agent: "Mozilla/5.0 \"x\" ünï\u{1}".into(),
            bytes: 512,
            verdict: "would_block".into(),
        }
    }

    #[test]
    fn reads_what_the_proxy_writes_in_every_format() {
        let r = rec();
        for f in ["json", "common", "combined"] {
            for geo in ["", " country=DE asn=64500", " country=- asn=7"] {
                let line = format_line(f, &r, "https://a/\" verdict=x", "sqli \"x\"", geo);
                let mut want = r.clone();
                if f == "common" {
                    want.user_agent.clear();
                }
                assert_eq!(parse(&line), Some(want), "{f}: {line}");
            }
        }
    }

    #[test]
    fn lines_without_bytes_read_as_zero() {
        let json = r#"{"time":"2026-05-28T20:26:40Z","remote":"192.0.2.1","method":"GET","target":"/","status":200,"user_agent":"a"}"#;
        let j = parse(json).unwrap();
        assert_eq!((j.bytes, j.verdict.as_str()), (0, ""));
        let text = "192.0.2.1 - - [2026-05-28T20:26:40Z] \"GET / HTTP/1.1\" 200 - \"-\" \"a\" verdict=pass score=0 reason=\"\" id=1 country=DE asn=1";
        let r = parse(text).unwrap();
        assert_eq!((r.bytes, r.status, r.user_agent.as_str()), (0, 200, "a"));
        assert_eq!(r.time, 1_780_000_000);
    }

    #[test]
    fn malformed_lines_are_refused() {
        let good = format_line("combined", &rec(), "", "", "");
        assert!(parse(&good).is_some());
        for bad in [
            String::new(),
            "garbage".into(),
            "{\"time\": 1}".into(),
            good.replace("2001:db8::7", "nohost"),
            good.replace("401", "4010000"),
            good.replace(" HTTP/1.1", ""),
            good.replace("bytes=512", "bytes=x"),
            good.replace(" id=", " ib="),
            good[..good.len() / 2].to_string(),
            good.replace("\\\"", "\\q"),
            "x".repeat(MAX_LINE + 1),
        ] {
            assert_eq!(parse(&bad), None, "{bad}");
        }
    }

    #[test]
    fn unescape_undoes_escape_default() {
        for s in ["", "a b", "\"'\\", "\t\r\n", "\u{0}\u{7f}é😀", "\\u{41}"] {
            assert_eq!(
                unescape(&s.escape_default().to_string()).as_deref(),
                Some(s)
            );
        }
        for bad in [
            "\\",
            "\\x",
            "\\u41",
            "\\u{110000}",
            "\\u{1234567}",
            "\\u{zz}",
        ] {
            assert_eq!(unescape(bad), None, "{bad}");
        }
    }

    proptest! {
        #[test]
        fn round_trips_any_request(
            method in "[A-Z]{1,8}", target in "\\PC{0,60}", ua in "\\PC{0,60}", referer in "\\PC{0,30}",
            reason in "\\PC{0,30}", status in 100u16..600, bytes in any::<u64>(), v6 in any::<bool>(),
            time in 0u64..4_000_000_000, verdict in "[a-z_]{1,16}",
        ) {
            let remote: IpAddr = if v6 { "2001:db8::1".parse().unwrap() } else { "198.51.100.2".parse().unwrap() };
            let r = Record { time, remote, method, target, status, user_agent: ua, bytes, verdict };
            for f in ["json", "common", "combined"] {
                let mut want = r.clone();
                if f == "common" { want.user_agent.clear(); }
                prop_assert_eq!(parse(&format_line(f, &r, &referer, &reason, "")), Some(want));
            }
        }

        #[test]
        fn never_panics(line in "\\PC{0,200}", cut in any::<usize>()) {
            let _ = parse(&line);
            let good = format_line("combined", &rec(), "r", "x", "");
            let mut s = good.into_bytes();
            let at = cut % s.len();
            s[at] = b'"';
            let _ = parse(&String::from_utf8_lossy(&s));
            s.truncate(at);
            let _ = parse(&String::from_utf8_lossy(&s));
        }
    }
}
