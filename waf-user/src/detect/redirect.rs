//! Open redirects: a value written so that a redirect check reads it as a
//! path on this site (it starts with `/` but not with `//`, or it starts
//! with `https://` and the site's name) while a browser's URL parser (the
//! WHATWG URL standard) reads another host:
//!
//! - a backslash among the leading slashes (`/\evil.example`,
//!   `\/evil.example`): browsers read `\` as `/` in `http(s)` URLs;
//! - a tab or a line break between them (`/%09/evil.example`): the parser
//!   removes them anywhere;
//! - three or more (`////evil.example`), or a scheme with other than two
//!   (`https:/evil.example`, `https:evil.example`, `https:\\evil.example`):
//!   the parser skips any number of slashes after a special scheme, none
//!   included (a check that reads the value as a path or finds no host
//!   in it lets it through);
//! - a user name that is a host name (`https://good.example@evil.example`):
//!   the host is what follows the `@`;
//! - two backslashes alone before a host that ends the value or begins a
//!   URL's path (`\\evil.example`, `\\evil.example/x`).
//!
//! A plain protocol-relative URL (`//cdn.example/app.js`), a Windows share
//! (`\\server\share`), JSON's escaped slashes (`\/\/cdn.example\/x.js`) and
//! a regular expression (`/\w+\.\w+/`) are none of these.

use super::kind::Severity;
use super::normalize::FULL_STOPS;

/// What a value is, when it is an open redirect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trick {
    /// Slashes a browser reads as the start of another host.
    Slashes,
    /// A user name that is a host name before the `@`.
    Userinfo,
}

impl Trick {
    /// Rule id of a finding.
    pub fn rule(self) -> &'static str {
        match self {
            Trick::Slashes => "open-redirect-slashes",
            Trick::Userinfo => "open-redirect-userinfo",
        }
    }

    /// Severity at paranoia 1 (the ladder, `ladder.rs`, makes a host name
    /// as user name critical from 2).
    pub fn severity(self) -> Severity {
        match self {
            Trick::Userinfo => Severity::Error,
            Trick::Slashes => Severity::Critical,
        }
    }
}

/// Checks a decoded value (case kept, whitespace not folded); returns the
/// trick and the host a browser would go to.
pub fn check(dec: &[u8]) -> Option<(Trick, &[u8])> {
    // Leading C0 controls and spaces are stripped by the parser.
    let mut i = dec.iter().position(|&b| b > b' ')?;
    let scheme = scheme_len(&dec[i..]);
    i += scheme;
    let run_start = i;
    let (mut slashes, mut forward, mut breaks) = (0usize, 0usize, false);
    while let Some(&b) = dec.get(i) {
        match b {
            b'/' => {
                slashes += 1;
                forward += 1;
            }
            b'\\' => slashes += 1,
            b'\t' | b'\n' | b'\r' => breaks = true,
            _ => break,
        }
        i += 1;
    }
    let run = &dec[run_start..i];
    let back = slashes > forward;
    // `\/\/cdn.example\/x.js`: JSON's escaped slashes, data rather than
    // a URL (one `\/` alone before a host is the trick).
    let json_escaped = !run.is_empty()
        && run.chunks(2).all(|p| p == b"\\/")
        && (run.len() >= 4 || memchr::memmem::find(&dec[i..], b"\\/").is_some());
    let tricked = if scheme > 0 {
        (back || breaks || slashes != 2) && !json_escaped
    } else {
        slashes >= 2 && ((back && forward >= 1) || breaks || slashes >= 3) && !json_escaped
    };
    let (host, rest) = host_at(&dec[i..])?;
    // `https:evil.example`: no slash at all, a host name right after the
    // scheme (a version, `HTTP:1.1`, is none).
    let tricked = tricked && (slashes > 0 || is_name_or_address(host));
    // `\\evil.example`: two backslashes alone, then a host that ends the
    // value or a URL's path, query or fragment begins (a Windows share
    // goes on with a backslash: `\\server.example\share`).
    let back_only = scheme == 0 && slashes == 2 && forward == 0 && !json_escaped;
    let tricked = tricked || (back_only && rest.first().is_none_or(|c| b"/?#".contains(c)));
    if tricked {
        return Some((Trick::Slashes, host));
    }
    // `https://good.example@evil.example/`, `//good.example@evil.example`:
    // a user name with a dot and no password, then a host.
    if slashes == 2 && forward == 2 && !breaks {
        let (user, rest) = host_at(&dec[i..])?;
        if rest.first() == Some(&b'@') && user.contains(&b'.') {
            let (host, _) = host_at(&rest[1..])?;
            return Some((Trick::Userinfo, host));
        }
    }
    None
}

/// Length of a leading special scheme and its colon (`https:`), or 0.
fn scheme_len(b: &[u8]) -> usize {
    for s in [&b"https:"[..], b"http:", b"wss:", b"ws:", b"ftp:"] {
        if b.len() >= s.len() && b[..s.len()].eq_ignore_ascii_case(s) {
            return s.len();
        }
    }
    0
}

/// A host name at the start of `b` (letters, digits, `-`, `_` and dots,
/// or the full stops URL parsers map to a dot, with at least one of them;
/// or a bracketed IPv6 address), when what follows it may end a host; the
/// host and the rest.
fn host_at(b: &[u8]) -> Option<(&[u8], &[u8])> {
    if b.first() == Some(&b'[') {
        // `[]` names no host: the parser refuses the URL.
        let end = b.iter().position(|&c| c == b']').filter(|&e| e > 1)?;
        return Some((&b[..=end], &b[end + 1..]));
    }
    let mut i = 0;
    let mut dots = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_alphanumeric() || c == b'-' || c == b'_' {
            i += 1;
        } else if c == b'.' {
            dots += 1;
            i += 1;
        } else if let Some(n) = full_stop_at(&b[i..]) {
            dots += 1;
            i += n;
        } else if c >= 0x80 {
            // A name in another script (IDNA).
            i += 1;
        } else {
            break;
        }
    }
    let (host, rest) = b.split_at(i);
    let ends = rest
        .first()
        .is_none_or(|c| matches!(c, b'/' | b'\\' | b'?' | b'#' | b':' | b'@'));
    let named = (dots > 0
        && host
            .first()
            .is_some_and(|c| c.is_ascii_alphanumeric() || *c >= 0x80))
        || integer_ipv4(host);
    (ends && named && host.len() > 2).then_some((host, rest))
}

/// A host with a letter in it, a dotted quad, a bracketed IPv6 address
/// or an address written as one number.
fn is_name_or_address(h: &[u8]) -> bool {
    h.iter().any(|c| c.is_ascii_alphabetic() || *c >= 0x80)
        || h.iter().filter(|&&c| c == b'.').count() == 3
        || h.first() == Some(&b'[')
        || integer_ipv4(h)
}

/// An IPv4 address written as one number (`3405803785`, `0xcb007109`),
/// as browsers read a host of digits alone: at least 2^24, so that a
/// page or year number is none.
fn integer_ipv4(h: &[u8]) -> bool {
    let s = std::str::from_utf8(h).unwrap_or("");
    let n = match s.get(..2) {
        Some("0x" | "0X") => u32::from_str_radix(&s[2..], 16).ok(),
        _ if s.bytes().all(|c| c.is_ascii_digit()) => s.parse::<u32>().ok(),
        _ => None,
    };
    n.is_some_and(|n| n >= 1 << 24)
}

/// The UTF-8 length of a full stop URL parsers map to `.` (U+3002,
/// U+FF0E, U+FF61) at the start of `b`.
fn full_stop_at(b: &[u8]) -> Option<usize> {
    FULL_STOPS.iter().any(|s| b.starts_with(s)).then_some(3)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn trick(v: &str) -> Option<Trick> {
        check(v.as_bytes()).map(|(t, _)| t)
    }

    #[test]
    fn slashes_a_browser_reads_as_another_host() {
        for v in [
            "/\\evil.example",
            "\\\\evil.example",
            "\\\\evil.example/login?x=1",
            "\\/evil.example/login",
            "/\\/evil.example",
            "\\\\/evil.example",
            "\\/evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            "///evil.example",
            "////evil.example/x",
            "https:/evil.example",
            "https:\\\\evil.example",
            "https:/\\evil.example",
            "HTTP:///evil.example",
            "https:evil.example",
            "https:evil.example/login?x=1",
            "http:\tevil.example",
            "HTTPS:203.0.113.9/",
            "https:3405803785",
            "ftp:evil\u{3002}example",
            " /\\evil.example",
            "/\\evil\u{3002}example",
            "/\\203.0.113.9/",
            "/\\[2001:db8::1]/",
            "/\\/3405803785/",
            "/\\0xcb007109",
        ] {
            assert_eq!(trick(v), Some(Trick::Slashes), "{v:?}");
        }
    }

    #[test]
    fn a_long_target_is_read_as_a_short_one() {
        let long = format!("/\\evil.example/?pad={}", "x".repeat(100_000));
        assert_eq!(trick(&long), Some(Trick::Slashes));
    }

    #[test]
    fn a_host_name_as_user_name() {
        let (t, host) = check(b"https://good.example@evil.example/").expect("trick");
        assert_eq!((t, host), (Trick::Userinfo, &b"evil.example"[..]));
        assert_eq!(
            trick("http://shop.example.test@203.0.113.9"),
            Some(Trick::Userinfo)
        );
        assert_eq!(
            trick("//shop.example.test@evil.example"),
            Some(Trick::Userinfo)
        );
    }

    #[test]
    fn urls_paths_shares_json_and_patterns_are_no_trick() {
        for v in [
            "//cdn.example/app.js",
            "/account/settings",
            "https://shop.example/cart",
            "https://user:secret@hooks.example/x",
            "https://alice@hooks.example/x",
            "\\\\fileserver\\share\\doc.txt",
            "\\\\fs.corp.example\\share",
            "\\/\\/cdn.example\\/x.js",
            "\\/cdn.example\\/x.js",
            "https:\\/\\/shop.example\\/a",
            "/\\w+\\.\\w+/",
            "/\\d{3}/",
            "/\\2024/",
            "///12345",
            "a/\\b.example",
            "///",
            "/\\",
            "mailto:team@shop.example",
            "see https:/ docs",
            "HTTP:1.1",
            "http:2.0 and http:1.1",
            "https:443",
            "https: evil.example",
            "https:example.com is our site",
        ] {
            assert_eq!(trick(v), None, "{v:?}");
        }
    }

    proptest! {
        /// Any bytes: no panic, and a host found is a slice of the value
        /// with a dot-like separator or brackets.
        #[test]
        fn any_bytes_are_read_safely(v in proptest::collection::vec(
            prop_oneof![
                Just(b'/'), Just(b'\\'), Just(b'\t'), Just(b'.'), Just(b'@'), Just(b':'),
                Just(b'a'), Just(b'['), Just(b']'), Just(0xE3), any::<u8>(),
            ],
            0..40,
        )) {
            if let Some((_, host)) = check(&v) {
                prop_assert!(host.len() > 2);
                let inside = v.windows(host.len()).any(|w| w == host);
                prop_assert!(inside);
            }
        }

        /// Whatever precedes the host, a plain path or plain
        /// protocol-relative URL is no trick.
        #[test]
        fn plain_forms_are_no_trick(host in "[a-z]{1,10}\\.[a-z]{2,5}", path in "[a-z/]{0,10}") {
            let plain_path = format!("/{host}/{path}");
            let relative = format!("//{host}/{path}");
            let absolute = format!("https://{host}/{path}");
            prop_assert_eq!(trick(&plain_path), None);
            prop_assert_eq!(trick(&relative), None);
            prop_assert_eq!(trick(&absolute), None);
            let tricked = format!("/\\{host}/{path}");
            prop_assert_eq!(trick(&tricked), Some(Trick::Slashes));
        }
    }
}
