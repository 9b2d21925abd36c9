//! The parser's anomalies (framing, encoding, smuggling, malformed bodies)
//! as protocol findings, each with its severity.

use super::K;
use crate::detect::collect::Collector;
use crate::detect::kind::Severity::{self, Critical, Error, Notice, Warning};
use crate::http::{Anomaly, Request};

/// Adds findings for the parser's anomalies.
pub fn anomalies(req: &Request, c: &mut Collector) {
    for a in &req.anomalies {
        let (rule, sev, detail) = finding(a);
        // A fragment is sent by broken clients more than by attackers; a
        // compressed body that does not decode hides nothing (the
        // application cannot read it either).
        let paranoia = match a {
            Anomaly::FragmentInTarget => 2,
            Anomaly::InvalidContentEncoding(_) => 3,
            _ => 1,
        };
        c.add(K, rule, sev, paranoia, "request", &detail, "");
    }
}

/// The rule, severity and detail of an anomaly.
fn finding(a: &Anomaly) -> (&'static str, Severity, String) {
    match a {
        Anomaly::FragmentInTarget => ("protocol-fragment-in-target", Notice, "#".to_owned()),
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
        Anomaly::WhitespaceBeforeColon(n) => ("protocol-header-whitespace", Critical, n.clone()),
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
        Anomaly::UnsupportedContentEncoding(v) => {
            ("protocol-content-encoding", Critical, v.clone())
        }
        Anomaly::InvalidContentEncoding(v) => {
            ("protocol-invalid-content-encoding", Notice, v.clone())
        }
        Anomaly::ContentEncodingOverflow => (
            "protocol-content-encoding-overflow",
            Critical,
            String::new(),
        ),
        Anomaly::TooManyParams => ("protocol-too-many-params", Critical, String::new()),
        Anomaly::BodyCharset(cs) => ("protocol-charset-evasion", Critical, cs.clone()),
        Anomaly::MalformedForwarding => ("protocol-malformed-forwarding", Warning, String::new()),
    }
}
