//! The `headers` monitor's rules: a request whose user agent claims a
//! modern browser but whose headers no such browser sends.
//!
//! Judged: a user agent with `Mozilla/5.0` and a browser engine (Chromium:
//! `Chrome/`, `Chromium/`, `Edg/`, `OPR/`; Gecko: `Firefox/` with `Gecko/`;
//! WebKit: `AppleWebKit/` with `Safari/`, and every iPhone, iPad and iPod
//! browser, all WebKit). Not judged: crawlers and tools that describe
//! themselves (`compatible;`, a crawler's name, `bot`, `spider`, `crawl`),
//! old browsers, anything else. Matching is ASCII case-insensitive on the
//! first 512 bytes of a value.
//!
//! | reason | rule | why real browsers never match |
//! |---|---|---|
//! | `no_accept_language` | no `Accept-Language` (or a blank one) | Chrome, Firefox and Safari add it to every request they make: navigations, subresources, fetch, WebSocket handshakes, CORS preflights, report uploads |
//! | `navigate_without_accept` | `Sec-Fetch-Mode: navigate` without `Accept` | a navigation always carries `Accept: text/html,...` |
//! | `client_hints_not_chromium` | a Firefox, Safari or iOS user agent with a `Sec-CH-*` header | only Chromium sends client hints (every iOS browser is WebKit) |
//! | `platform_mismatch` | `Sec-CH-UA-Platform` `"Windows"`, `"macOS"`, `"Linux"` or `"Chrome OS"` contradicting the user agent's system (Linux, Chrome OS and Android are one family) | Chromium fills both from the same system; `"Android"` is never judged (mobile browsers asking for the desktop site send a desktop user agent with it) |
//! | `http10` | HTTP/1.0 | every modern browser speaks HTTP/1.1 or later |
//!
//! Not rules, on purpose: a missing `Accept` outside navigations (Chrome
//! sends none on WebSocket handshakes, Reporting API uploads, DevTools
//! source-map fetches and its own background requests: 1,070 of the 16,632
//! real browser requests of the development corpus), a missing
//! `Accept-Encoding` (proxies and antivirus products strip or mangle it),
//! missing `Sec-Fetch-*` and `Sec-CH-UA` (Chromium sends them over HTTPS
//! only; the proxy may be plain HTTP).
//!
//! Known false positives: a browser whose user agent an extension rewrites
//! (Chrome posing as Firefox still sends client hints; Chrome on a Mac
//! posing as Windows contradicts its platform hint), DevTools device
//! emulation, Firefox with its language list emptied (no
//! `Accept-Language`), and a forward proxy that downgrades to HTTP/1.0.

use crate::challenge::crawler_name;

/// The most bytes of a header value read.
const MAX_READ: usize = 512;

/// The rule names, in the order of the table.
pub const RULES: &[&str] = &[
    "no_accept_language",
    "navigate_without_accept",
    "client_hints_not_chromium",
    "platform_mismatch",
    "http10",
];

/// A browser engine a user agent claims.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Engine {
    Chromium,
    Gecko,
    WebKit,
}

/// An operating system family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Os {
    Windows,
    Mac,
    /// Linux, Android, Chrome OS.
    Linux,
    Ios,
}

/// What a judged user agent claims.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Claim {
    pub engine: Engine,
    pub os: Option<Os>,
}

fn folded(s: &str) -> Vec<u8> {
    s.as_bytes()[..s.len().min(MAX_READ)].to_ascii_lowercase()
}

fn has(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// What a user agent claims, when it is judged (see the module doc).
pub(super) fn claim(ua: &str) -> Option<Claim> {
    let u = folded(ua);
    if !has(&u, "mozilla/5.0") {
        return None;
    }
    if ["compatible;", "bot", "spider", "crawl"]
        .iter()
        .any(|n| has(&u, n))
        || crawler_name(ua).is_some()
    {
        return None;
    }
    let ios = ["iphone", "ipad", "ipod"].iter().any(|n| has(&u, n));
    let engine = if ios {
        Engine::WebKit
    } else if ["chrome/", "chromium/", "edg/", "opr/"]
        .iter()
        .any(|n| has(&u, n))
    {
        Engine::Chromium
    } else if has(&u, "firefox/") && has(&u, "gecko/") {
        Engine::Gecko
    } else if has(&u, "applewebkit/") && has(&u, "safari/") {
        Engine::WebKit
    } else {
        return None;
    };
    let os = if ios {
        Some(Os::Ios)
    } else if has(&u, "windows nt") {
        Some(Os::Windows)
    } else if ["android", "cros ", "linux", "x11"]
        .iter()
        .any(|n| has(&u, n))
    {
        Some(Os::Linux)
    } else if has(&u, "macintosh") || has(&u, "mac os x") {
        Some(Os::Mac)
    } else {
        None
    };
    Some(Claim { engine, os })
}

/// The system a `Sec-CH-UA-Platform` value names, when it is judged.
fn hinted(platform: &str) -> Option<Os> {
    let p = platform.trim().trim_matches('"').trim();
    if p.len() > 32 {
        return None;
    }
    match p.to_ascii_lowercase().as_str() {
        "windows" => Some(Os::Windows),
        "macos" => Some(Os::Mac),
        "linux" | "chrome os" | "chromium os" => Some(Os::Linux),
        _ => None,
    }
}

/// The first value of a header (ASCII case-insensitive name).
pub(super) fn header<'a>(headers: &[(&str, &'a str)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|&(_, v)| v)
}

fn present(v: Option<&str>) -> bool {
    v.is_some_and(|v| !v.trim().is_empty())
}

/// The rules a request breaks (names from [`RULES`], in that order); empty
/// for a user agent that is not judged.
pub fn judge(headers: &[(&str, &str)], http10: bool) -> Vec<&'static str> {
    let mut out = Vec::new();
    let Some(c) = header(headers, "user-agent").and_then(claim) else {
        return out;
    };
    if !present(header(headers, "accept-language")) {
        out.push(RULES[0]);
    }
    let navigate = header(headers, "sec-fetch-mode")
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("navigate"));
    if navigate && !present(header(headers, "accept")) {
        out.push(RULES[1]);
    }
    let hints = headers
        .iter()
        .any(|(n, _)| n.len() >= 7 && n.as_bytes()[..7].eq_ignore_ascii_case(b"sec-ch-"));
    if hints && c.engine != Engine::Chromium {
        out.push(RULES[2]);
    }
    if let (Some(os), Some(hint)) = (c.os, header(headers, "sec-ch-ua-platform").and_then(hinted))
        && os != hint
    {
        out.push(RULES[3]);
    }
    if http10 {
        out.push(RULES[4]);
    }
    out
}
