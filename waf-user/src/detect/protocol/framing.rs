//! Body framing and ranges: a body on GET or HEAD, a body-carrying method
//! without Content-Length or Transfer-Encoding, and the syntax, order and
//! count of `Range: bytes=` specs.

use super::K;
use crate::detect::collect::Collector;
use crate::detect::kind::Severity::{Critical, Notice};
use crate::http::Request;

/// Most ranges in one Range header.
const MAX_RANGES: usize = 5;

/// A GET or HEAD with a body (or announcing one by Transfer-Encoding).
pub(super) fn get_with_body(req: &Request, c: &mut Collector) {
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
}

/// A POST, PUT or PATCH without Content-Length or Transfer-Encoding.
pub(super) fn missing_length(req: &Request, c: &mut Collector) {
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
}

/// The first Range (or Request-Range) header.
pub(super) fn range(req: &Request, c: &mut Collector) {
    if let Some(range) = req.header("range").or_else(|| req.header("request-range")) {
        range_check(range, c);
    }
}

/// `Range: bytes=a-b,...`: syntax, order and count.
fn range_check(v: &str, c: &mut Collector) {
    let Some(spec) = v.trim().strip_prefix("bytes=") else {
        invalid(v, c);
        return;
    };
    let ranges: Vec<&str> = spec.split(',').map(str::trim).collect();
    if !ranges.iter().all(|r| valid_range(r)) {
        invalid(v, c);
        return;
    }
    if ranges.len() > MAX_RANGES {
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

/// One `a-b` spec: digits on either side, at least one side, `a <= b`.
fn valid_range(r: &str) -> bool {
    let Some((a, b)) = r.split_once('-') else {
        return false;
    };
    let (a, b) = (a.trim(), b.trim());
    let num = |s: &str| s.bytes().all(|x| x.is_ascii_digit()) && s.len() < 19;
    if (a.is_empty() && b.is_empty()) || !num(a) || !num(b) {
        return false;
    }
    match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(x), Ok(y)) => x <= y,
        _ => true,
    }
}

/// The finding for a Range header that is not `bytes=` specs.
fn invalid(v: &str, c: &mut Collector) {
    c.add(
        K,
        "protocol-range-invalid",
        Critical,
        1,
        "header:range",
        v,
        "",
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_ranges_are_ordered_digit_pairs() {
        for r in ["0-499", "500-", "-500", "7-7", "0 - 1"] {
            assert!(valid_range(r), "{r}");
        }
        for r in [
            "",
            "-",
            "a-b",
            "5-1",
            "1-2-3",
            "10",
            "0x1-2",
            "1234567890123456789-",
        ] {
            assert!(!valid_range(r), "{r}");
        }
    }
}
