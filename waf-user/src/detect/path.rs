//! Findings about the request path itself: the evasions its canonical view
//! exposes (an encoded slash, a `..` that climbs above the root).

use super::collect::Collector;
use super::kind::{Kind, Severity};
use crate::http::Request;

/// Adds `protocol-path-encoded-slash` and `protocol-path-above-root`
/// findings; the canonical path is the matched text, the raw path the value.
/// They add to other findings' score; the ladder (`ladder.rs`) makes them
/// block alone from the level it names.
pub fn findings(req: &Request, c: &mut Collector) {
    let p = &req.canonical;
    if p.flags.encoded_slash {
        c.add(
            Kind::Protocol,
            "protocol-path-encoded-slash",
            Severity::Error,
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
            Severity::Error,
            1,
            "path",
            &p.path,
            &p.raw,
        );
    }
}
