//! Protocol anomalies: framing and encoding problems noticed by the parser,
//! and checks of the method, Host, Range, Connection, Content-Type and other
//! headers.

use super::collect::Collector;
use super::kind::{Kind, Severity};
use crate::http::{Anomaly, Body, Request, multipart};
use Severity::{Critical, Error, Notice, Warning};

const K: Kind = Kind::Protocol;

/// Severity of a text body sent without a Content-Type.
const MISSING_TYPE_TEXT: Severity = Severity::Error;

/// Charsets used to smuggle payloads past filters (UTF-7, UTF-16/32, EBCDIC).
fn evasion_charset(c: &str) -> bool {
    let c = c.trim().trim_matches('"').to_ascii_lowercase();
    c.starts_with("utf-7")
        || c == "utf7"
        || c.starts_with("utf-16")
        || c.starts_with("utf-32")
        || c.starts_with("ucs-")
        || c.starts_with("ebcdic")
        || c.starts_with("ibm")
        || (c.starts_with("cp")
            && matches!(
                c.get(2..),
                Some(
                    "037"
                        | "500"
                        | "875"
                        | "1026"
                        | "1140"
                        | "273"
                        | "277"
                        | "278"
                        | "280"
                        | "284"
                        | "285"
                        | "297"
                        | "420"
                        | "424"
                        | "870"
                        | "871"
                        | "1047"
                )
            ))
        || c.starts_with("x-mac-")
}

/// Charsets seen in real traffic.
fn known_charset(c: &str) -> bool {
    let c = c.trim().trim_matches('"').to_ascii_lowercase();
    matches!(
        c.as_str(),
        "utf-8"
            | "utf8"
            | "us-ascii"
            | "ascii"
            | "latin1"
            | "latin-1"
            | "gbk"
            | "gb2312"
            | "gb18030"
            | "big5"
            | "big5-hkscs"
            | "shift_jis"
            | "shift-jis"
            | "sjis"
            | "euc-jp"
            | "euc-kr"
            | "koi8-r"
            | "koi8-u"
            | "iso-2022-jp"
            | "tis-620"
            | "windows-31j"
            | "x-sjis"
            | "binary"
    ) || c.starts_with("iso-8859-")
        || c.starts_with("iso8859-")
        || c.starts_with("windows-125")
        || c.starts_with("cp125")
}

/// Adds findings for the parser's anomalies.
pub fn anomalies(req: &Request, c: &mut Collector) {
    for a in &req.anomalies {
        let (rule, sev, detail): (&str, Severity, String) = match a {
            Anomaly::FragmentInTarget => {
                c.add(
                    K,
                    "protocol-fragment-in-target",
                    Notice,
                    2,
                    "request",
                    "#",
                    "",
                );
                continue;
            }
            Anomaly::InvalidMethod(m) => ("protocol-invalid-method", Critical, m.clone()),
            Anomaly::InvalidVersion(v) => ("protocol-invalid-version", Critical, v.clone()),
            Anomaly::InvalidUtf8Target => ("protocol-invalid-utf8-target", Critical, String::new()),
            Anomaly::MissingHost => ("protocol-missing-host", Warning, String::new()),
            Anomaly::EmptyHost => ("protocol-empty-host", Warning, String::new()),
            Anomaly::DuplicateHost => ("protocol-duplicate-host", Critical, String::new()),
            Anomaly::ContentLengthWithTransferEncoding => {
                ("protocol-cl-te-conflict", Critical, String::new())
            }
            Anomaly::ConflictingContentLength => (
                "protocol-conflicting-content-length",
                Critical,
                String::new(),
            ),
            Anomaly::InvalidContentLength(v) => {
                ("protocol-invalid-content-length", Critical, v.clone())
            }
            Anomaly::UnsupportedTransferEncoding(v) => {
                ("protocol-transfer-encoding", Critical, v.clone())
            }
            Anomaly::InvalidChunked => ("protocol-invalid-chunked", Error, String::new()),
            Anomaly::SmuggledRequest => ("protocol-smuggled-request", Critical, String::new()),
            Anomaly::MalformedHeaderLine(l) => ("protocol-malformed-header", Error, l.clone()),
            Anomaly::WhitespaceBeforeColon(n) => {
                ("protocol-header-whitespace", Critical, n.clone())
            }
            Anomaly::ObsoleteLineFolding => ("protocol-line-folding", Error, String::new()),
            Anomaly::BodyTruncated => ("protocol-body-truncated", Notice, String::new()),
            Anomaly::JsonTooDeep => ("protocol-json-too-deep", Warning, String::new()),
            Anomaly::InvalidJson => ("protocol-invalid-json", Warning, String::new()),
            Anomaly::MultipartMalformed(m) => ("protocol-multipart-malformed", Critical, m.clone()),
            Anomaly::MultipartSuspiciousName(n) => ("protocol-multipart-name", Critical, n.clone()),
            Anomaly::MultipartTransferEncoding => (
                "protocol-multipart-transfer-encoding",
                Critical,
                String::new(),
            ),
            Anomaly::TooManyParams => ("protocol-too-many-params", Error, String::new()),
        };
        c.add(K, rule, sev, 1, "request", &detail, "");
    }
}

/// Checks the method and headers.
pub fn headers(req: &Request, allowed_methods: &[String], c: &mut Collector) {
    if !allowed_methods
        .iter()
        .any(|m| m.eq_ignore_ascii_case(&req.method))
    {
        c.add(
            K,
            "protocol-method-not-allowed",
            Critical,
            1,
            "method",
            &req.method,
            "",
        );
    }
    if let Some(host) = req.header("host") {
        let h = host
            .rsplit_once(':')
            .filter(|(_, p)| p.bytes().all(|b| b.is_ascii_digit()))
            .map_or(host, |(h, _)| h);
        let h = h.trim_start_matches('[').trim_end_matches(']');
        if h.parse::<std::net::IpAddr>().is_ok() {
            c.add(
                K,
                "protocol-host-is-ip",
                Warning,
                1,
                "header:host",
                host,
                "",
            );
        }
    }
    let has_body = req.body_len > 0 || req.header("transfer-encoding").is_some();
    if has_body
        && (req.method.eq_ignore_ascii_case("GET") || req.method.eq_ignore_ascii_case("HEAD"))
    {
        c.add(
            K,
            "protocol-get-with-body",
            Critical,
            1,
            "request",
            &req.method,
            "",
        );
    }
    let needs_length = matches!(req.method.as_str(), "POST" | "PUT" | "PATCH");
    if needs_length
        && req.header("content-length").is_none()
        && req.header("transfer-encoding").is_none()
    {
        c.add(
            K,
            "protocol-missing-content-length",
            Notice,
            1,
            "request",
            &req.method,
            "",
        );
    }
    if let Some(range) = req.header("range").or_else(|| req.header("request-range")) {
        range_check(range, c);
    }
    for v in req.header_all("connection") {
        let tokens: Vec<String> = v
            .split(',')
            .map(|t| t.trim().to_ascii_lowercase())
            .filter(|t| !t.is_empty())
            .collect();
        let mut sorted = tokens.clone();
        sorted.sort();
        sorted.dedup();
        let conflicting =
            tokens.iter().any(|t| t == "close") && tokens.iter().any(|t| t == "keep-alive");
        if sorted.len() != tokens.len() || conflicting {
            c.add(
                K,
                "protocol-connection-header",
                Critical,
                1,
                "header:connection",
                v,
                "",
            );
        }
    }
    content_type(req, c);
    restricted(req, c);
    more_headers(req, c);
    if let Some(v) = req.header("sec-fetch-user").filter(|v| *v != "?1") {
        c.add(
            K,
            "protocol-sec-fetch-user",
            Critical,
            1,
            "header:sec-fetch-user",
            v,
            "",
        );
    }
    if let Some(v) = req
        .header("sec-ch-ua-mobile")
        .filter(|v| *v != "?0" && *v != "?1")
    {
        c.add(
            K,
            "protocol-sec-ch-ua-mobile",
            Critical,
            1,
            "header:sec-ch-ua-mobile",
            v,
            "",
        );
    }
    if let Some(v) = req.header("accept-encoding") {
        let weird = v.len() > 100
            || !v
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b" ,;=.*-_".contains(&b));
        if weird {
            c.add(
                K,
                "protocol-accept-encoding",
                Critical,
                1,
                "header:accept-encoding",
                v,
                "",
            );
        }
    }
    if req.header("user-agent").is_none_or(str::is_empty) {
        c.add(
            K,
            "protocol-missing-user-agent",
            Warning,
            2,
            "header:user-agent",
            "",
            "",
        );
    }
    if req.header("accept").is_none_or(str::is_empty) {
        c.add(
            K,
            "protocol-missing-accept",
            Warning,
            2,
            "header:accept",
            "",
            "",
        );
    }
}

/// `Range: bytes=a-b,...`: syntax, order and count.
fn range_check(v: &str, c: &mut Collector) {
    let Some(spec) = v.trim().strip_prefix("bytes=") else {
        c.add(
            K,
            "protocol-range-invalid",
            Critical,
            1,
            "header:range",
            v,
            "",
        );
        return;
    };
    let ranges: Vec<&str> = spec.split(',').map(str::trim).collect();
    for r in &ranges {
        let Some((a, b)) = r.split_once('-') else {
            c.add(
                K,
                "protocol-range-invalid",
                Critical,
                1,
                "header:range",
                v,
                "",
            );
            return;
        };
        let (a, b) = (a.trim(), b.trim());
        let num = |s: &str| s.bytes().all(|x| x.is_ascii_digit()) && s.len() < 19;
        if (a.is_empty() && b.is_empty()) || !num(a) || !num(b) {
            c.add(
                K,
                "protocol-range-invalid",
                Critical,
                1,
                "header:range",
                v,
                "",
            );
            return;
        }
        if let (Ok(x), Ok(y)) = (a.parse::<u64>(), b.parse::<u64>())
            && x > y
        {
            c.add(
                K,
                "protocol-range-invalid",
                Critical,
                1,
                "header:range",
                v,
                "",
            );
            return;
        }
    }
    if ranges.len() > 5 {
        c.add(
            K,
            "protocol-range-too-many",
            Critical,
            1,
            "header:range",
            v,
            "",
        );
    }
}

/// Content-Type parameters: charsets and stray boundaries.
fn content_type(req: &Request, c: &mut Collector) {
    for v in req.header_all("content-type") {
        let params = multipart::split_params(v);
        let mime = params
            .first()
            .map(|(m, _)| m.to_ascii_lowercase())
            .unwrap_or_default();
        let charsets: Vec<&String> = params
            .iter()
            .skip(1)
            .filter(|(k, _)| k.eq_ignore_ascii_case("charset"))
            .map(|(_, v)| v)
            .collect();
        if charsets.len() > 1 {
            c.add(
                K,
                "protocol-charset-repeated",
                Critical,
                1,
                "header:content-type",
                v,
                "",
            );
        }
        for cs in charsets {
            if evasion_charset(cs) {
                c.add(
                    K,
                    "protocol-charset-evasion",
                    Critical,
                    1,
                    "header:content-type",
                    v,
                    "",
                );
            } else if !known_charset(cs) {
                c.add(
                    K,
                    "protocol-charset-unknown",
                    Critical,
                    1,
                    "header:content-type",
                    v,
                    "",
                );
            }
        }
        let boundary = params
            .iter()
            .skip(1)
            .any(|(k, _)| k.eq_ignore_ascii_case("boundary"));
        if boundary && !mime.starts_with("multipart/") {
            c.add(
                K,
                "protocol-stray-boundary",
                Critical,
                1,
                "header:content-type",
                v,
                "",
            );
        }
        if mime.starts_with("multipart/") && v.to_ascii_lowercase().contains("boundary= ") {
            c.add(
                K,
                "protocol-multipart-boundary",
                Error,
                1,
                "header:content-type",
                v,
                "",
            );
        }
        // Parameters are `name=value`; a bare word (`text/xml; blah`) is
        // no browser's doing. A trailing `;` is tolerated.
        let bare = params
            .iter()
            .skip(1)
            .any(|(k, val)| !k.trim().is_empty() && val.is_empty() && !has_equals(v, k));
        if bare {
            c.add(
                K,
                "protocol-content-type-parameter",
                Critical,
                1,
                "header:content-type",
                v,
                "",
            );
        }
        if mime.contains(['%', '{', '(', '#', '$']) {
            c.add(
                K,
                "protocol-content-type-invalid",
                Critical,
                1,
                "header:content-type",
                v,
                "",
            );
        }
    }
    for v in req.header_all("x-up-devcap-post-charset") {
        if evasion_charset(v) || !known_charset(v) {
            c.add(
                K,
                "protocol-charset-evasion",
                Critical,
                1,
                "header:x-up-devcap-post-charset",
                v,
                "",
            );
        }
    }
    if let Body::Multipart(parts) = &req.parsed_body {
        for p in parts {
            let loc = format!("multipart:{}", super::collect::short(&p.name));
            if let Some(cs) = p
                .content_type
                .as_deref()
                .and_then(|ct| multipart::param(ct, "charset"))
            {
                if evasion_charset(&cs) {
                    c.add(K, "protocol-multipart-charset", Critical, 1, &loc, &cs, "");
                } else if !known_charset(&cs) {
                    c.add(K, "protocol-multipart-charset", Error, 1, &loc, &cs, "");
                }
            }
            if p.name == "_charset_" {
                let v = String::from_utf8_lossy(&p.data);
                if !known_charset(&v) {
                    c.add(K, "protocol-multipart-charset", Critical, 1, &loc, &v, "");
                }
            }
        }
    }
}

/// Whether the parameter `name` of a header value is followed by `=`.
fn has_equals(header: &str, name: &str) -> bool {
    header
        .split(';')
        .skip(1)
        .any(|p| p.trim().starts_with(name.trim()) && p.contains('='))
}

/// Headers that have no business in requests to a web application.
fn restricted(req: &Request, c: &mut Collector) {
    for h in &req.headers {
        let n = h.name.to_ascii_lowercase();
        let sev = match n.as_str() {
            "proxy"
            | "x-middleware-subrequest"
            | "lock-token"
            | "if"
            | "content-range"
            | "request-range" => Critical,
            "x-http-method-override" | "x-http-method" | "x-method-override" => Error,
            _ => continue,
        };
        c.add(
            K,
            "protocol-restricted-header",
            sev,
            1,
            &format!("header:{n}"),
            &h.value,
            "",
        );
    }
}

/// Method overrides, charsets in Accept, malformed Content-Type, bodies
/// without a Content-Type.
fn more_headers(req: &Request, c: &mut Collector) {
    let overrides = req.query.iter().chain(match &req.parsed_body {
        Body::Form(params) => params.as_slice(),
        _ => &[],
    });
    for p in overrides.filter(|p| p.name == "_method") {
        let m = p.value.trim().to_ascii_uppercase();
        let sev = if matches!(m.as_str(), "PUT" | "PATCH" | "DELETE" | "POST" | "GET") {
            Warning
        } else {
            Critical
        };
        c.add(
            K,
            "protocol-method-override",
            sev,
            1,
            "query:_method",
            &p.value,
            "",
        );
    }
    for name in ["accept", "accept-charset"] {
        for v in req.header_all(name) {
            let evasive = v
                .split([',', ';'])
                .filter_map(|p| p.trim().split_once('='))
                .any(|(k, val)| {
                    (name == "accept-charset" || k.trim().eq_ignore_ascii_case("charset"))
                        && evasion_charset(val)
                })
                || (name == "accept-charset"
                    && v.split(',')
                        .any(|p| evasion_charset(p.split(';').next().unwrap_or(""))));
            if evasive {
                c.add(
                    K,
                    "protocol-charset-evasion",
                    Critical,
                    1,
                    &format!("header:{name}"),
                    v,
                    "",
                );
            }
        }
    }
    if let Some(ct) = req.header("content-type") {
        let mime = ct.split(';').next().unwrap_or("").trim();
        let token = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b))
        };
        let well_formed = mime
            .split_once('/')
            .is_some_and(|(t, s)| token(t) && token(s));
        if !mime.is_empty() && !well_formed {
            c.add(
                K,
                "protocol-content-type-malformed",
                Critical,
                1,
                "header:content-type",
                ct,
                "",
            );
        }
    }
    if req.body_len > 0 && req.header("content-type").is_none() {
        // Browsers label every text body (forms, strings, JSON); only
        // binary beacons (Blob, ArrayBuffer) go without a type. A text body
        // without one comes from a script.
        let sev = if super::normalize::is_text(&req.body) {
            MISSING_TYPE_TEXT
        } else {
            Warning
        };
        c.add(
            K,
            "protocol-missing-content-type",
            sev,
            1,
            "header:content-type",
            "",
            "",
        );
    }
}

/// Session cookie names of web frameworks. One of them as a query or body
/// parameter name is how a session id is planted in a victim's browser.
const SESSION_NAMES: &[&str] = &[
    "jsessionid",
    "phpsessid",
    "phpsession",
    "asp.net_sessionid",
    "aspsessionid",
    "laravel_session",
    "connect.sid",
    "_flask_session",
    "next-auth.session-token",
    "__host-next-auth.session-token",
    "__secure-next-auth.session-token",
    "meteor_login_token",
    "rack.session",
    "_rails_session",
    "play_session",
    "sails.sid",
    "cakephp",
    "ci_session",
    "koa.sess",
    "koa:sess",
    "zend_session_id",
    "weblogicsession",
    "jservsession",
    "jwsession",
    "shiny-token",
    "cfid",
    "cftoken",
    "cfsid",
    "_session_id",
];

/// The host of a URL (`https://user@host:1/x` gives `host`), lowercased.
fn url_host(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let auth = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = auth.rsplit_once('@').map_or(auth, |(_, h)| h);
    let host = host.rsplit_once(':').map_or(host, |(h, p)| {
        if p.bytes().all(|b| b.is_ascii_digit()) {
            h
        } else {
            host
        }
    });
    Some(host.to_ascii_lowercase())
}

/// Session fixation: a framework's session cookie name given as a
/// parameter, by a request that comes from no page or from another site.
pub fn session_fixation(req: &Request, c: &mut Collector) {
    let is_session = |n: &str| {
        let n = n.trim().to_ascii_lowercase();
        SESSION_NAMES
            .iter()
            .any(|s| n == *s || (s.len() > 8 && n.starts_with(s)))
    };
    let mut names: Vec<&str> = req.query.iter().map(|p| p.name.as_str()).collect();
    match &req.parsed_body {
        Body::Form(params) => names.extend(params.iter().map(|p| p.name.as_str())),
        Body::Json(items) => {
            names.extend(items.iter().filter(|i| i.is_key).map(|i| i.text.as_str()))
        }
        Body::Multipart(parts) => names.extend(parts.iter().map(|p| p.name.as_str())),
        _ => {}
    }
    let Some(name) = names.into_iter().find(|n| is_session(n)) else {
        return;
    };
    let host = req
        .header("host")
        .map(|h| {
            let h = h.trim().to_ascii_lowercase();
            h.rsplit_once(':')
                .filter(|(_, p)| p.bytes().all(|b| b.is_ascii_digit()))
                .map_or(h.clone(), |(h, _)| h.to_owned())
        })
        .unwrap_or_default();
    let off_site = match req.header("referer").and_then(url_host) {
        None => true,
        Some(r) => {
            !(r == host || r.ends_with(&format!(".{host}")) || host.ends_with(&format!(".{r}")))
        }
    };
    if off_site {
        c.add(
            Kind::SessionFixation,
            "session-fixation-parameter",
            Critical,
            1,
            "request",
            name,
            "",
        );
    }
}

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

/// Remote file inclusion through parameters known to be included as code.
pub fn rfi_parameters(req: &Request, c: &mut Collector) {
    let params = req.query.iter().chain(match &req.parsed_body {
        Body::Form(params) => params.as_slice(),
        _ => &[],
    });
    for p in params {
        let name = p.name.trim().to_ascii_lowercase();
        let v = p.value.trim_start().to_ascii_lowercase();
        let url = ["http://", "https://", "ftp://", "ftps://", "file://"]
            .iter()
            .any(|s| v.starts_with(s));
        if url && RFI_NAMES.contains(&name.as_str()) {
            c.add(
                Kind::Rfi,
                "rfi-known-parameter",
                Critical,
                1,
                &format!("query:{}", super::collect::short(&p.name)),
                &p.value,
                "",
            );
        }
    }
}
