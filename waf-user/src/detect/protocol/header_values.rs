//! Single headers: Host given as an IP address, Connection with repeated
//! or conflicting tokens, headers that have no business in requests to a
//! web application, fetch metadata only browsers send (and then well
//! formed), odd Accept-Encoding, missing User-Agent and Accept.

use super::K;
use crate::detect::collect::Collector;
use crate::detect::kind::Severity::{self, Critical, Error, Warning};
use crate::http::Request;

/// Longest Accept-Encoding a browser sends.
const ACCEPT_ENCODING_MAX: usize = 100;

/// A Host that is an IP address (scanners and bots, not browsers following
/// links).
pub(super) fn host_is_ip(req: &Request, c: &mut Collector) {
    let Some(host) = req.header("host") else {
        return;
    };
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

/// Connection headers with a token twice, or both `close` and
/// `keep-alive`.
pub(super) fn connection(req: &Request, c: &mut Collector) {
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
}

/// Headers that have no business in requests to a web application.
pub(super) fn restricted(req: &Request, c: &mut Collector) {
    const RESTRICTED: &[(&str, Severity)] = &[
        ("proxy", Critical),
        ("x-middleware-subrequest", Critical),
        ("lock-token", Critical),
        ("if", Critical),
        ("content-range", Critical),
        ("request-range", Critical),
        ("x-http-method-override", Error),
        ("x-http-method", Error),
        ("x-method-override", Error),
    ];
    for h in &req.headers {
        let Some(&(n, sev)) = RESTRICTED
            .iter()
            .find(|(n, _)| h.name.eq_ignore_ascii_case(n))
        else {
            continue;
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

/// Sec-Fetch-User and Sec-Ch-Ua-Mobile with a value no browser sends
/// (they are structured booleans).
pub(super) fn fetch_metadata(req: &Request, c: &mut Collector) {
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
}

/// An Accept-Encoding too long or holding characters no coding list has.
pub(super) fn accept_encoding(req: &Request, c: &mut Collector) {
    let Some(v) = req.header("accept-encoding") else {
        return;
    };
    let weird = v.len() > ACCEPT_ENCODING_MAX
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

/// No (or an empty) User-Agent or Accept: every browser sends both.
pub(super) fn missing_user_agent_and_accept(req: &Request, c: &mut Collector) {
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
