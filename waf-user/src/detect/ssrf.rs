//! Server-side request forgery: URLs (or bare hosts) in parameters that
//! point at loopback, link-local, cloud metadata, private or internal
//! addresses, including numeric obfuscations (`http://2852039166/`,
//! `0x7f.1`, `[::ffff:127.0.0.1]`) and userinfo tricks (`a@127.0.0.1`).

use std::net::{Ipv4Addr, Ipv6Addr};

use super::kind::Severity;

/// Why a host is dangerous.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Cloud metadata service.
    Metadata,
    /// Loopback or unspecified address.
    Loopback,
    /// Link-local address.
    LinkLocal,
    /// Private range (RFC 1918, ULA, CGNAT), in text or a bare host.
    Private,
    /// A private address as the host of a value that is a URL alone,
    /// scheme and all (`http://10.0.0.5:8080/manager`): what a server
    /// fetches (webhooks, imports, previews) rather than text about one.
    PrivateUrl,
    /// A private address in a URL parsers read two ways (`10.0.0.5#@x`).
    Confused,
    /// An internal DNS name (`*.internal`, cluster names).
    Internal,
    /// An IPv4 address written in a non-standard numeric form.
    Obfuscated,
}

impl Class {
    /// Rule id of a finding of this class.
    pub fn rule(self) -> &'static str {
        match self {
            Class::Metadata => "ssrf-metadata",
            Class::Loopback => "ssrf-loopback",
            Class::LinkLocal => "ssrf-link-local",
            Class::Private => "ssrf-private-range",
            Class::PrivateUrl => "ssrf-private-url",
            Class::Confused => "ssrf-parser-confusion",
            Class::Internal => "ssrf-internal-host",
            Class::Obfuscated => "ssrf-obfuscated-ip",
        }
    }

    /// Severity at paranoia 1 (the ladder, `ladder.rs`, makes a private
    /// range critical from 2).
    pub fn severity(self) -> Severity {
        match self {
            Class::Private => Severity::Error,
            _ => Severity::Critical,
        }
    }
}

/// Checks the URLs in a lowercased, decoded value; returns the worst class
/// and the host it is about.
pub fn check(low: &[u8]) -> Option<(Class, String)> {
    // URL parsers map the ideographic, full-width and half-width full
    // stops to `.` in a host (UTS #46): `169。254。169。254/latest` is the
    // metadata address. They are folded before anything else reads the
    // value.
    let low = &*fold_full_stops(low);
    let bare_host = low.len() < 300
        && !low.iter().any(u8::is_ascii_whitespace)
        && (low.contains(&b'.')
            || low.contains(&b':')
            || memchr::memmem::find(low, b"localhost").is_some()
            || memchr::memmem::find(low, b"loopback").is_some());
    let worth = bare_host
        || low.starts_with(b"//")
        || memchr::memchr_iter(b':', low).any(|i| low[i + 1..].starts_with(b"//"));
    if !worth {
        return None;
    }
    let mut s = crate::http::lossy(&low[..low.len().min(8192)]);
    // `http://\l\o\c\a\l\h\o\s\t/`: escaped host characters (the
    // backslashes doubled as a string literal writes them too). No host
    // is written so but to pass a filter: an escaped host is obfuscated
    // whatever it names, and is read unescaped as well.
    let mut escaped = None;
    if s.contains("\\") && s.contains(":/") {
        escaped = escaped_host(&s);
        s = std::borrow::Cow::Owned(unescape_host(&s));
    }
    let mut worst: Option<(Class, String)> = None;
    let mut consider = |found: Option<(Class, String)>| {
        if let Some(f) = found
            && worst.as_ref().is_none_or(|w| rank(f.0) > rank(w.0))
        {
            worst = Some(f);
        }
    };
    consider(escaped.map(|h| (Class::Obfuscated, h)));
    for (i, _) in s.match_indices("://").take(8) {
        consider(authority(&s[i + 3..]));
    }
    for scheme in ["http:", "https:", "gopher:", "ftp:"] {
        if let Some(rest) = s
            .trim_start()
            .strip_prefix(scheme)
            .filter(|r| !r.starts_with("//"))
        {
            consider(authority(rest.trim_start_matches(['/', '\\'])));
        }
    }
    let trimmed = s.trim_start();
    if let Some(rest) = trimmed.strip_prefix("//") {
        consider(authority(rest));
    } else if !s.contains("://") && looks_like_bare_host(trimmed) {
        // A network in CIDR notation (`0.0.0.0/0`, `127.0.0.0/8`: firewall
        // and cloud console settings) is no address with a path.
        // A bracketed IPv6 host (`[::1]/admin`) holds colons of its own.
        let with_path = trimmed.find('/').is_some_and(|i| {
            (!trimmed[..i].contains(':') || trimmed.starts_with('['))
                && !is_cidr(&trimmed[..i], &trimmed[i + 1..])
        });
        consider(authority(trimmed).filter(|(c, host)| {
            matches!(c, Class::Metadata | Class::Internal)
                || (with_path && *c == Class::Loopback)
                || (matches!(c, Class::Loopback | Class::LinkLocal) && pointing_name(host))
        }));
    }
    match worst {
        Some((Class::Private, host)) if lone_url(trimmed.trim_end()) => {
            Some((Class::PrivateUrl, host))
        }
        w => w,
    }
}

/// Whether a trimmed value is a URL alone: a scheme (`http:`, `gopher:`)
/// and no blank after it. A URL in a sentence (`see http://10.0.0.1 for
/// the router`) is text about a network.
fn lone_url(s: &str) -> bool {
    let scheme = s
        .bytes()
        .take(16)
        .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
        .count();
    scheme >= 2
        && s.as_bytes()[0].is_ascii_alphabetic()
        && s.as_bytes().get(scheme) == Some(&b':')
        && !s.bytes().any(|b| b.is_ascii_whitespace())
}

/// `low` with every U+3002, U+FF0E and U+FF61 (full stops) as `.`;
/// borrowed when it has none (their UTF-8 forms start with 0xE3 or 0xEF).
pub(super) fn fold_full_stops(low: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    // Only the full stops are looked at: CJK text has many other
    // characters that start with the same bytes.
    let next = |from: usize| {
        memchr::memchr2_iter(0xE3, 0xEF, &low[from..])
            .map(|i| from + i)
            .find(|&i| {
                low.get(i..i + 3)
                    .is_some_and(|w| crate::detect::normalize::FULL_STOPS.iter().any(|s| s == w))
            })
            .map(|i| (i, 3))
    };
    crate::detect::normalize::replace_finds(low, b".", next)
        .map_or(std::borrow::Cow::Borrowed(low), std::borrow::Cow::Owned)
}

/// Whether `host/len` is a network in CIDR notation: an address in its
/// standard form and a prefix length (1 to 3 digits, at most 128).
fn is_cidr(host: &str, len: &str) -> bool {
    host.parse::<std::net::IpAddr>().is_ok()
        && (1..=3).contains(&len.len())
        && len.bytes().all(|b| b.is_ascii_digit())
        && len.parse::<u8>().is_ok_and(|n| n <= 128)
}

fn rank(c: Class) -> u8 {
    match c {
        Class::Private | Class::PrivateUrl => 0,
        Class::Confused => 1,
        Class::Internal => 2,
        Class::Obfuscated => 3,
        Class::LinkLocal => 4,
        Class::Loopback => 5,
        Class::Metadata => 6,
    }
}

/// `localhost/x`, `127.0.0.1:8080`, `gateway.docker.internal/`: a value that
/// starts with a host name followed by a port or a path.
fn looks_like_bare_host(s: &str) -> bool {
    let host_end = s.find(['/', ':', '?']).unwrap_or(s.len());
    let host = &s[..host_end];
    !host.is_empty()
        && host.len() < 100
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'[' || b == b']')
        && (host.contains('.')
            || host.contains("localhost")
            || host.contains("loopback")
            || host.starts_with('['))
}

/// A name (not an address, not `localhost` itself) that exists to point
/// inside: a wildcard DNS name spelling an inside address
/// (`127.0.0.1.nip.io`), a public name that resolves to loopback
/// (`localtest.me`). Alone as a value it is a probe, not a setting.
fn pointing_name(host: &str) -> bool {
    !host.starts_with("localhost")
        && !host.starts_with('[')
        && parse_ipv4_loose(host).is_none()
        && host.parse::<Ipv6Addr>().is_err()
}

/// Removes backslashes (one or a run of them) that escape letters, digits
/// and dots.
fn unescape_host(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    for (i, c) in s.char_indices() {
        let escapes = c == '\\'
            && b[i..]
                .iter()
                .find(|&&n| n != b'\\')
                .is_some_and(|n| n.is_ascii_alphanumeric() || *n == b'.');
        if !escapes {
            out.push(c);
        }
    }
    out
}

/// The host of a URL whose authority (right after `://`) escapes two or
/// more of its characters one by one with backslashes (`http://\\g\\o\\o\\g\\l\\e.com/`),
/// unescaped.
fn escaped_host(s: &str) -> Option<String> {
    s.match_indices("://").take(8).find_map(|(i, _)| {
        let rest = &s[i + 3..];
        let end = rest
            .find(['/', '?', '#', '@', ' ', '\n', '"', '\''])
            .unwrap_or(rest.len());
        let auth = &rest[..end.min(256)];
        let b = auth.as_bytes();
        // A character escaped alone: a backslash before it and after it
        // (`\\server\\share` escapes no character alone).
        let escapes = (1..b.len().saturating_sub(1))
            .filter(|&j| {
                b[j - 1] == b'\\'
                    && (b[j].is_ascii_alphanumeric() || b[j] == b'.')
                    && matches!(b[j + 1], b'\\' | b'.')
            })
            .count();
        (escapes >= 2).then(|| unescape_host(auth).chars().take(80).collect())
    })
}

/// Classifies the host of the authority at the start of `rest`.
fn authority(rest: &str) -> Option<(Class, String)> {
    // Parsers disagree on where the authority ends when it holds `@`, `#`
    // or spaces: take the host after the last `@` before the path.
    let end = rest
        .find(['/', '?', '\\', '\n', '"', '\'', '<', '>'])
        .unwrap_or(rest.len());
    let auth = &rest[..end.min(256)];
    // `http://127.0.0.1:6379#@good.example/`: a parser that ends the
    // authority at `#` (browsers, WHATWG) reaches the first host, one that
    // takes the last `@` the second: both are read, the worse counts.
    let first = auth.split(['#', ' ']).next().unwrap_or("");
    let a = classify_authority(auth);
    let b = if first.len() < auth.len() {
        classify_authority(first)
    } else {
        None
    };
    // `http://e.com\@127.0.0.1/`: WHATWG ends the authority at the
    // backslash, Python's urllib at the next `/`: both are read.
    let past_backslash = rest[end..].starts_with('\\').then(|| {
        let end = rest
            .find(['/', '?', '#', '\n', '"', '\'', '<', '>'])
            .unwrap_or(rest.len());
        classify_authority(&rest[..end.min(256)])
    });
    let worse = [b, past_backslash.flatten()]
        .into_iter()
        .flatten()
        .fold(a, |w, f| match w {
            Some(w) if rank(w.0) >= rank(f.0) => Some(w),
            _ => Some(f),
        });
    // `#...@` with no space between: the two readings differ by design.
    let two_ways = (auth[first.len()..].split(' ').next())
        .is_some_and(|r| r.starts_with('#') && r.contains('@'));
    worse.map(|(c, h)| match c {
        Class::Private if two_ways => (Class::Confused, h),
        _ => (c, h),
    })
}

/// Classifies the host of one reading of an authority (`user@host:port`).
fn classify_authority(auth: &str) -> Option<(Class, String)> {
    let host_port = match auth.rsplit_once('@') {
        Some((_, h)) => h,
        None => auth,
    };
    // `127.1.1.1:80:` (`http://127.1.1.1:80:\@@127.2.2.2:80/` read up to
    // the backslash): empty ports and colons after the port go.
    let host_port = host_port.split(['#', ' ', '&']).next().unwrap_or("");
    let host_port = host_port.trim_end_matches(':');
    let host_port = match host_port.split_once(':') {
        Some((h, rest))
            if !h.is_empty()
                && !host_port.starts_with('[')
                && rest.split(':').next().is_some_and(|p| !p.is_empty())
                && rest
                    .split(':')
                    .all(|p| p.bytes().all(|b| b.is_ascii_digit()))
                && parse_ipv4_loose(h).is_some() =>
        {
            h
        }
        _ => host_port,
    };
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        match host_port.rsplit_once(':') {
            Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => host_port,
        }
    };
    let host = host.trim_end_matches('.');
    classify(host).map(|c| (c, host.chars().take(80).collect()))
}

/// Classifies a host name or address.
pub fn classify(host: &str) -> Option<Class> {
    if host.is_empty() {
        return None;
    }
    if let Ok(v6) = host.split('%').next().unwrap_or(host).parse::<Ipv6Addr>() {
        return classify_v6(v6);
    }
    if let Some((v4, standard)) = parse_ipv4_loose(host) {
        let c = classify_v4(v4);
        return match c {
            Some(c) => Some(c),
            // A public address: its hex, octal or integer form hides
            // where it goes, but two or three decimal parts (`1.1`,
            // `2.0.1`) are how versions are written (`HTTP:1.1`).
            None if !standard && !short_decimal(host) => Some(Class::Obfuscated),
            None => None,
        }
        .map(|c| {
            if !standard && c == Class::Private {
                Class::Obfuscated
            } else {
                c
            }
        });
    }
    classify_name(host)
}

/// A name that spells an address in its labels, as wildcard DNS services
/// answer (`169.254.169.254.nip.io`, `app-127-0-0-1.sslip.io`): the class
/// of that address, when it is not public.
fn embedded_address(h: &str) -> Option<Class> {
    let labels: Vec<&str> = h.split('.').collect();
    // Four decimal octets (`010` too: resolvers read it as 10).
    let quad = |parts: &[&str]| -> Option<Ipv4Addr> {
        let mut o = [0u8; 4];
        for (o, p) in o.iter_mut().zip(parts) {
            *o = p.parse().ok().filter(|_| p.len() <= 3)?;
        }
        Some(Ipv4Addr::from(o))
    };
    let inside = |ip: Option<Ipv4Addr>| ip.and_then(classify_v4);
    if labels.len() > 4
        && let Some(c) = labels.windows(4).find_map(|w| inside(quad(w)))
    {
        return Some(c);
    }
    for l in &labels[..labels.len().saturating_sub(1)] {
        // `7f000001.nip.io`, `app-0xa9fea9fe.nip.io`: the address in hex.
        let last = l.rsplit('-').next().unwrap_or(l);
        let hex = last.strip_prefix("0x").unwrap_or(last);
        if labels.len() > 2
            && hex.len() == 8
            && let Some(c) = inside(u32::from_str_radix(hex, 16).ok().map(Ipv4Addr::from))
        {
            return Some(c);
        }
        // `app-127-0-0-1.sslip.io`: the last four dashed parts.
        let parts: Vec<&str> = l.split('-').collect();
        if parts.len() >= 4
            && let Some(c) = inside(quad(&parts[parts.len() - 4..]))
        {
            return Some(c);
        }
    }
    None
}

fn classify_name(h: &str) -> Option<Class> {
    if let Some(c) = embedded_address(h) {
        return Some(c);
    }
    const METADATA: &[&str] = &[
        "metadata.packet.net",
        "metadata.platformequinix.com",
        "metadata.google.internal",
        "metadata.goog",
        "metadata",
        "instance-data",
        "instance-data.ec2.internal",
        "metadata.azure.com",
        "metadata.tencentyun.com",
        "100-100-100-200",
    ];
    if METADATA.contains(&h) {
        return Some(Class::Metadata);
    }
    let loopback_domains = ["localtest.me", "lvh.me", "vcap.me", "lacolhost.com"];
    if h == "localhost"
        || h.starts_with("localhost4")
        || h.starts_with("localhost6")
        || h.ends_with(".localhost")
        || matches!(
            h,
            "ip6-localhost" | "ip6-loopback" | "ipv6-localhost" | "ipv6-loopback"
        )
        || h == "localhost.localdomain"
        || loopback_domains
            .iter()
            .any(|d| h == *d || h.strip_suffix(d).is_some_and(|p| p.ends_with('.')))
    {
        return Some(Class::Loopback);
    }
    let internal_suffixes = [
        ".internal",
        ".svc.cluster.local",
        ".cluster.local",
        ".svc",
        ".consul",
        ".intranet",
        ".corp",
        ".lan",
        ".home.arpa",
    ];
    let internal_names = [
        "kubernetes",
        "kubernetes.default",
        "host.docker.internal",
        "gateway.docker.internal",
        "docker",
        "consul",
        "vault",
        "etcd",
    ];
    if internal_names.contains(&h) || internal_suffixes.iter().any(|s| h.ends_with(s)) {
        return Some(Class::Internal);
    }
    None
}

fn classify_v4(ip: Ipv4Addr) -> Option<Class> {
    let o = ip.octets();
    if o == [169, 254, 169, 254]
        || o == [169, 254, 170, 2]
        || o == [100, 100, 100, 200]
        || o == [192, 0, 0, 192]
        || o == [168, 63, 129, 16]
    {
        return Some(Class::Metadata);
    }
    if ip.is_loopback() || ip.is_unspecified() {
        return Some(Class::Loopback);
    }
    if ip.is_link_local() {
        return Some(Class::LinkLocal);
    }
    if ip.is_private() || (o[0] == 100 && (64..128).contains(&o[1])) {
        return Some(Class::Private);
    }
    None
}

fn classify_v6(ip: Ipv6Addr) -> Option<Class> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return classify_v4(v4).or(Some(Class::Obfuscated));
    }
    // IPv4-compatible `::a.b.c.d` (deprecated, still parsed by some).
    let seg = ip.segments();
    if seg[..6].iter().all(|&x| x == 0) && (seg[6] != 0 || seg[7] > 1) {
        let v4 = Ipv4Addr::from((u32::from(seg[6]) << 16) | u32::from(seg[7]));
        return classify_v4(v4).or(Some(Class::Obfuscated));
    }
    let seg = ip.segments();
    if seg == [0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254] {
        return Some(Class::Metadata);
    }
    if ip.is_loopback() || ip.is_unspecified() {
        return Some(Class::Loopback);
    }
    if seg[0] & 0xffc0 == 0xfe80 {
        return Some(Class::LinkLocal);
    }
    if seg[0] & 0xfe00 == 0xfc00 {
        return Some(Class::Private);
    }
    None
}

/// Two or three parts of decimal digits without leading zeros, each at
/// most 255 (`1.1`, `2.0.1`): a version number as much as an address.
fn short_decimal(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    (2..=3).contains(&parts.len())
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.len() <= 3
                && p.bytes().all(|b| b.is_ascii_digit())
                && !(p.len() > 1 && p.starts_with('0'))
                && p.parse::<u16>().is_ok_and(|n| n <= 255)
        })
}

/// Parses IPv4 the way `inet_aton` does (1 to 4 parts, each decimal, octal
/// with a leading 0, or hex with 0x). Returns the address and whether it was
/// written as a standard dotted quad.
pub fn parse_ipv4_loose(s: &str) -> Option<(Ipv4Addr, bool)> {
    if s.is_empty() || s.len() > 64 {
        return None;
    }
    let parts: Vec<&str> = s.split('.').collect();
    if parts.len() > 4 {
        return None;
    }
    let mut nums = Vec::with_capacity(4);
    let mut standard = parts.len() == 4;
    for p in &parts {
        let (digits, radix) = if let Some(h) = p.strip_prefix("0x") {
            standard = false;
            (h, 16)
        } else if p.len() > 1 && p.starts_with('0') {
            standard = false;
            (&p[1..], 8)
        } else {
            (*p, 10)
        };
        if digits.is_empty() && radix == 16 {
            nums.push(0u64);
            continue;
        }
        if digits.is_empty() || digits.len() > 24 {
            return None;
        }
        // inet_aton keeps the low bits of oversized numbers.
        let n = u128::from_str_radix(digits, radix).ok()?;
        if n > u128::from(u32::MAX) {
            standard = false;
        }
        nums.push((n & 0xFFFF_FFFF) as u64);
    }
    let (last, head) = nums.split_last()?;
    let mut value: u64 = 0;
    for (i, n) in head.iter().enumerate() {
        if *n > 255 {
            return None;
        }
        value |= n << (24 - 8 * i);
    }
    let room = 32 - 8 * head.len() as u32;
    if room < 64 && *last >= (1u64 << room) {
        return None;
    }
    value |= last;
    Some((Ipv4Addr::from(u32::try_from(value).ok()?), standard))
}

#[cfg(test)]
mod tests;
