//! Remote file inclusion: a value that is a URL to a public IP address,
//! where inclusion payloads are hosted (private and loopback addresses
//! are [`super::ssrf`]'s business).

/// A value that is a URL to a public IP address (`http://1.2.3.4/x.php`):
/// where remote file inclusion payloads are hosted. Private and loopback
/// addresses are [`super::ssrf::check`]'s business. The host is read as URL parsers
/// read it: full stops folded (`203。0。113。9`), and the forms `inet_aton`
/// takes (`3405803785`, `0xcb.0.0x71.9`). Returns the host.
pub fn public_ip_url(low: &[u8]) -> Option<String> {
    let low = &*super::ssrf::fold_full_stops(&low[..low.len().min(512)]);
    let s = std::str::from_utf8(low).ok()?.trim_start();
    let rest = ["http://", "https://", "ftp://", "ftps://"]
        .iter()
        .find_map(|p| s.strip_prefix(p))?;
    let end = rest.find(['/', '?', '#', '\\']).unwrap_or(rest.len());
    let auth = &rest[..end];
    let host_port = auth.rsplit_once('@').map_or(auth, |(_, h)| h);
    let host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => match host_port.rsplit_once(':') {
            Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) && !h.contains(':') => h,
            _ => host_port,
        },
    };
    let ip = match host.parse::<std::net::IpAddr>() {
        Ok(ip) => ip,
        Err(_) => std::net::IpAddr::V4(super::ssrf::parse_ipv4_loose(host)?.0),
    };
    (super::ssrf::classify(&ip.to_string()).is_none()).then(|| host.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_address_urls_in_every_form_parsers_take() {
        let host = |s: &str| public_ip_url(s.as_bytes());
        for url in [
            "http://203.0.113.9/x.php?",
            "http://203\u{3002}0\u{ff0e}113\u{ff61}9/x.php?",
            "http://3405803785/x.php?",
            "http://0xcb.0.0x71.9/x.php?",
            "ftp://0313.0.0161.011/x.txt",
        ] {
            assert!(host(url).is_some(), "{url}");
        }
        for url in ["http://10.0.0.1/x", "http://0x7f000001/", "http://a.com/"] {
            assert_eq!(host(url), None, "{url}");
        }
    }
}
