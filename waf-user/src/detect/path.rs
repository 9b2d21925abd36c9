//! Findings about the request path itself: the evasions its canonical view
//! exposes (an encoded slash, a `..` that climbs above the root).

use super::collect::Collector;
use super::kind::{Kind, Severity};
use crate::http::Request;

/// Severity of a path evasion: alone it blocks from paranoia 2 on; at
/// paranoia 1 (APIs send `%2F` in identifiers) it only adds to the score
/// of other findings.
fn severity(paranoia: u8) -> Severity {
    if paranoia >= 2 {
        Severity::Critical
    } else {
        Severity::Error
    }
}

/// Adds `protocol-path-encoded-slash` and `protocol-path-above-root`
/// findings; the canonical path is the matched text, the raw path the value.
pub fn findings(req: &Request, paranoia: u8, c: &mut Collector) {
    let p = &req.canonical;
    let sev = severity(paranoia);
    if p.flags.encoded_slash {
        c.add(
            Kind::Protocol,
            "protocol-path-encoded-slash",
            sev,
            1,
            "path",
            &p.path,
            &p.raw,
        );
    }
    if p.flags.climbs_above_root {
        c.add(
            Kind::Protocol,
            "protocol-path-above-root",
            sev,
            1,
            "path",
            &p.path,
            &p.raw,
        );
    }
}
