//! The request method: methods the configuration does not allow, and
//! method overrides sent as a `_method` parameter.

use super::K;
use crate::detect::collect::Collector;
use crate::detect::kind::Severity::{Critical, Warning};
use crate::http::{Body, Request};

/// A method outside `allowed_methods` (any case).
pub(super) fn not_allowed(req: &Request, allowed_methods: &[String], c: &mut Collector) {
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
}

/// `_method` in the query or a form body: frameworks honour it as the
/// method. An ordinary method is worth a warning, anything else more.
pub(super) fn overrides(req: &Request, c: &mut Collector) {
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
}
