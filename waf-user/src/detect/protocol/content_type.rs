//! The Content-Type header: its charset and boundary parameters, bare
//! words among its parameters, the characters and syntax of its media
//! type, and text bodies sent without one.

use super::{K, charset};
use crate::detect::collect::Collector;
use crate::detect::kind::Severity::{self, Critical, Error, Warning};
use crate::detect::normalize::is_text;
use crate::http::{Request, multipart};

/// Severity of a text body sent without a Content-Type.
const MISSING_TYPE_TEXT: Severity = Severity::Error;

/// Where the findings of this file are.
const LOC: &str = "header:content-type";

/// Checks the parameters and the media type of every Content-Type header.
pub(super) fn parameters(req: &Request, c: &mut Collector) {
    for v in req.header_all("content-type") {
        let params = multipart::split_params(v);
        let mime = params
            .first()
            .map(|(m, _)| m.to_ascii_lowercase())
            .unwrap_or_default();
        charsets(v, &params, c);
        boundary(v, &mime, &params, c);
        bare_words(v, &params, c);
        if mime.contains(['%', '{', '(', '#', '$']) {
            c.add(K, "protocol-content-type-invalid", Critical, 1, LOC, v, "");
        }
    }
}

/// `charset` parameters: more than one, or one that smuggles or that no
/// real client sends.
fn charsets(v: &str, params: &[(String, String)], c: &mut Collector) {
    let charsets: Vec<&String> = params
        .iter()
        .skip(1)
        .filter(|(k, _)| k.eq_ignore_ascii_case("charset"))
        .map(|(_, v)| v)
        .collect();
    if charsets.len() > 1 {
        c.add(K, "protocol-charset-repeated", Critical, 1, LOC, v, "");
    }
    // Every `charset` the raw value names, quoted, escaped or in RFC
    // 2231's `charset*=''utf-7` form too: a reader of its own may find one
    // the parameter split does not (`x=\"; charset=utf-7`).
    let raw = charset::named_in(v);
    for cs in charsets
        .iter()
        .map(|s| s.as_str())
        .chain(raw.iter().map(String::as_str))
    {
        if charset::is_evasion(cs) {
            c.add(K, "protocol-charset-evasion", Critical, 1, LOC, v, "");
        } else if !charset::is_known(cs) {
            c.add(K, "protocol-charset-unknown", Critical, 1, LOC, v, "");
        }
    }
}

/// A `boundary` on a type that is not multipart, and a multipart boundary
/// that starts with a space (parsers disagree on it).
fn boundary(v: &str, mime: &str, params: &[(String, String)], c: &mut Collector) {
    let boundary = params
        .iter()
        .skip(1)
        .any(|(k, _)| k.eq_ignore_ascii_case("boundary"));
    if boundary && !mime.starts_with("multipart/") {
        c.add(K, "protocol-stray-boundary", Critical, 1, LOC, v, "");
    }
    if mime.starts_with("multipart/") && v.to_ascii_lowercase().contains("boundary= ") {
        c.add(K, "protocol-multipart-boundary", Error, 1, LOC, v, "");
    }
}

/// Parameters are `name=value`; a bare word (`text/xml; blah`) is no
/// browser's doing. A trailing `;` is tolerated.
fn bare_words(v: &str, params: &[(String, String)], c: &mut Collector) {
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
            LOC,
            v,
            "",
        );
    }
}

/// Whether the parameter `name` of a header value is followed by `=`.
fn has_equals(header: &str, name: &str) -> bool {
    header
        .split(';')
        .skip(1)
        .any(|p| p.trim().starts_with(name.trim()) && p.contains('='))
}

/// A first Content-Type whose media type is not `token/token`.
pub(super) fn malformed(req: &Request, c: &mut Collector) {
    let Some(ct) = req.header("content-type") else {
        return;
    };
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
            LOC,
            ct,
            "",
        );
    }
}

/// A body without a Content-Type. Browsers label every text body (forms,
/// strings, JSON); only binary beacons (Blob, ArrayBuffer) go without a
/// type. A text body without one comes from a script: it blocks alone from
/// paranoia 2 (`detect::ladder`; the CoreRuleSet's 920340 does from 1).
/// A binary one is a finding of its own that only adds to others.
pub(super) fn missing(req: &Request, c: &mut Collector) {
    if req.body_len > 0 && req.header("content-type").is_none() {
        let (rule, severity) = if is_text(&req.body) {
            ("protocol-missing-content-type", MISSING_TYPE_TEXT)
        } else {
            ("protocol-untyped-binary-body", Warning)
        };
        c.add(K, rule, severity, 1, LOC, "", "");
    }
}
