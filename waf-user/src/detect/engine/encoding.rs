//! Findings about how a value was encoded: NUL bytes, overlong UTF-8,
//! bytes that are no UTF-8, malformed `%` escapes, full-width and `%u`
//! forms, letters of a name written as JavaScript escapes, control
//! characters.

use super::value::Encoding;
use crate::detect::collect::Collector;
use crate::detect::kind::{Kind, Severity};
use crate::detect::normalize::Normalized;
use crate::detect::rules::targets;

/// Targets where an encoding trick is an evasion, not the data's format.
const STRICT: u16 =
    targets::ARGS | targets::NAMES | targets::PATH | targets::HEADERS | targets::UA_REF;

/// Adds the findings for the tricks the normaliser noted in a value.
pub(super) fn findings(
    c: &mut Collector,
    n: &Normalized,
    target: u16,
    enc: Encoding,
    loc: &mut dyn FnMut() -> String,
    value: &str,
) {
    let f = &n.flags;
    let strict = target & STRICT != 0;
    let url_encoded = matches!(enc, Encoding::Form | Encoding::Url);
    let mut add = |rule: &str, severity: Severity, paranoia: u8, matched: &str| {
        let l = loc();
        c.add(Kind::Protocol, rule, severity, paranoia, &l, matched, value);
    };
    if f.null_byte && strict {
        let header = target & (targets::HEADERS | targets::UA_REF) != 0 || enc == Encoding::Referer;
        let sev = if header {
            Severity::Error
        } else {
            Severity::Critical
        };
        add("protocol-null-byte", sev, 1, "\\0");
    }
    if f.overlong_meta {
        add(
            "protocol-overlong-utf8",
            Severity::Critical,
            1,
            "overlong UTF-8",
        );
    } else if f.overlong && url_encoded {
        add(
            "protocol-overlong-utf8-other",
            Severity::Warning,
            1,
            "overlong UTF-8",
        );
    }
    if url_encoded {
        if f.invalid_percent {
            add("protocol-invalid-url-encoding", Severity::Warning, 1, "%");
        }
        if f.fullwidth {
            add("protocol-unicode-fullwidth", Severity::Warning, 1, "%uFFxx");
        }
        if f.percent_u_ascii {
            add("protocol-percent-u-ascii", Severity::Error, 1, "%u00xx");
        }
        // Bytes that decode to no UTF-8 (`%C0` alone, `%FF`, a cut
        // sequence): browsers encode every parameter and path as UTF-8.
        // Blocks alone from paranoia 2 (`detect::ladder`).
        if strict && n.dec.iter().any(|&b| b >= 0x80) && std::str::from_utf8(&n.dec).is_err() {
            add(
                "protocol-invalid-utf8",
                Severity::Warning,
                1,
                "invalid UTF-8",
            );
        }
    }
    // `\u0061lert`, `\u0076\u0061l\u0075e\u004F\u0066`: a letter of a
    // name escaped, which JavaScript reads as the letter and no client
    // writes but to pass a filter (escapes of `<` or `é` do not count).
    if f.escaped_letter && strict {
        add(
            "protocol-js-escaped-letter",
            Severity::Critical,
            1,
            "\\u escaped letter",
        );
    }
    if f.control && strict {
        add(
            "protocol-control-character",
            Severity::Warning,
            2,
            "control character",
        );
    }
}
