//! Remote file inclusion: a parameter that old applications are known to
//! include as code (CRS 931110) holding a URL, and any value that is a URL
//! to a public IP address, where inclusion payloads are hosted (private
//! and loopback addresses are [`crate::detect::ssrf`]'s business).

use crate::detect::collect::{Collector, short};
use crate::detect::kind::{Kind, Severity::Critical};
use crate::detect::ssrf::{classify, fold_full_stops, parse_ipv4_loose};
use crate::http::{Body, Request};

/// Parameter names of classic remote file inclusion holes (CRS 931110).
const RFI_NAMES: &[&str] = &[
    "mosconfig_absolute_path",
    "_conf[path]",
    "_server[document_root]",
    "gallery_basedir",
    "path[docroot]",
    "appserv_root",
    "config[root_dir]",
];

/// URL schemes an include follows.
const SCHEMES: &[&str] = &["http://", "https://", "ftp://", "ftps://", "file://"];

/// Remote file inclusion through parameters known to be included as code.
pub fn rfi_parameters(req: &Request, c: &mut Collector) {
    let form: &[_] = match &req.parsed_body {
        Body::Form(params) => params,
        _ => &[],
    };
    let params = (req.query.iter().map(|p| ("query", p))).chain(form.iter().map(|p| ("form", p)));
    // Compared in place, any ASCII case: nothing copied for each parameter.
    let starts_with = |v: &[u8], p: &str| {
        v.get(..p.len())
            .is_some_and(|h| h.eq_ignore_ascii_case(p.as_bytes()))
    };
    for (kind, p) in params {
        let name = p.name.trim();
        let v = p.value.trim_start().as_bytes();
        if RFI_NAMES.iter().any(|n| name.eq_ignore_ascii_case(n))
            && SCHEMES.iter().any(|s| starts_with(v, s))
        {
            c.add(
                Kind::Rfi,
                "rfi-known-parameter",
                Critical,
                1,
                &format!("{kind}:{}", short(&p.name)),
                &p.value,
                "",
            );
        }
    }
}

/// The host of a value that is a URL to a public IP address
/// (`http://1.2.3.4/x.php`), read as URL parsers read it: full stops
/// folded (`203。0。113。9`), and the forms `inet_aton` takes
/// (`3405803785`, `0xcb.0.0x71.9`).
pub fn public_ip_url(low: &[u8]) -> Option<String> {
    let low = &*fold_full_stops(&low[..low.len().min(512)]);
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
        Err(_) => std::net::IpAddr::V4(parse_ipv4_loose(host)?.0),
    };
    (classify(&ip.to_string()).is_none()).then(|| host.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::collect::ExcludeFn;
    use crate::http::Limits;

    /// The locations `rfi_parameters` reports for a request's query and form.
    fn found(query: &str, form: &str) -> Vec<String> {
        let raw = format!(
            "POST /x?{query} HTTP/1.1\r\nHost: h\r\nContent-Type: \
             application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
            form.len()
        );
        let req = Request::parse(raw.as_bytes(), &Limits::default()).unwrap();
        let none: &ExcludeFn = &|_, _, _| false;
        let mut c = Collector::new(1, none);
        rfi_parameters(&req, &mut c);
        c.finish().1.into_iter().map(|f| f.location).collect()
    }

    #[test]
    fn a_known_parameter_holding_a_url_in_any_case() {
        assert_eq!(
            found("mosConfig_absolute_path=HTTP://evil.example/x", ""),
            ["query:mosConfig_absolute_path"]
        );
        assert_eq!(
            found("a=1", "gallery_basedir=%20%20fTp://evil.example/"),
            ["form:gallery_basedir"]
        );
        assert_eq!(found("_conf%5Bpath%5D=file:///etc/passwd", "").len(), 1);
        // Another name, or no scheme at the start, or a scheme cut short.
        assert!(found("page=http://evil.example/", "").is_empty());
        assert!(found("appserv_root=see%20http://a.example", "").is_empty());
        assert!(found("appserv_root=http:/", "").is_empty());
        assert!(found("appserv_root=", "").is_empty());
    }

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
