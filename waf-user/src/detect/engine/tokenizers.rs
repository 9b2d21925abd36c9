//! libinjection's SQL and HTML5 tokenizers on one value, within the
//! request's tokenizer budget (a run costs far more than the regex sets
//! on a short value).

use crate::detect::collect::Collector;
use crate::detect::kind::{Kind, Severity};
use crate::detect::libinj::{self, Outcome};
use crate::detect::normalize::Normalized;
use crate::detect::rules::targets;

/// Longest value handed to libinjection's HTML5 tokenizer: on long texts
/// (rich content, logs) it mostly finds markup, not attacks; the XSS rules
/// still read them.
const XSS_TOKENIZER_MAX: usize = 1024;

/// Targets the tokenizers read (the path only when it holds a quote, for
/// SQL, or a `<`, for HTML).
const TOKENIZED: u16 = targets::ARGS
    | targets::NAMES
    | targets::UA_REF
    | targets::BODY
    | targets::FILENAME
    | targets::DOC;

/// Runs the SQL tokenizer, then the HTML5 one. `json`: the value is a
/// JSON document whose keys and strings are read alone.
pub(super) fn run(
    c: &mut Collector,
    n: &Normalized,
    (target, json): (u16, bool),
    loc: &mut dyn FnMut() -> String,
    value: &str,
) {
    sqli(c, n, (target, json), loc, value);
    xss(c, n, target, loc, value);
}

/// The SQL tokenizer, on a value that its prefilter finds worth it (for a
/// JSON document's whole text, a double quote, its syntax, does not count).
fn sqli(
    c: &mut Collector,
    n: &Normalized,
    (target, json): (u16, bool),
    loc: &mut dyn FnMut() -> String,
    value: &str,
) {
    let in_path = target == targets::PATH;
    // JavaScript source in JSON documents (error reports, replay
    // beacons) is code by design: the SQL tokenizer misreads it.
    let js_source = target == targets::DOC && n.low.trim_ascii_start().starts_with(b"function");
    if !((target & TOKENIZED != 0 || (in_path && n.dec.contains(&b'\'')))
        && !js_source
        && (if json {
            libinj::sqli_candidate_in_json(&n.low)
        } else {
            libinj::sqli_candidate(&n.low)
        })
        && c.take_tokenizer_budget())
    {
        return;
    }
    match libinj::sqli(&n.dec) {
        Outcome::Injection(fp) => {
            let Some(severity) = libinj::severity(&fp, &n.dec) else {
                return;
            };
            let m = format!(
                "(fingerprint {fp}) {}",
                String::from_utf8_lossy(&n.dec[..n.dec.len().min(80)])
            );
            c.add(
                Kind::Sqli,
                "sqli-libinjection",
                severity,
                1,
                &loc(),
                &m,
                value,
            );
        }
        Outcome::Failed => c.add(
            Kind::Sqli,
            "sqli-libinjection-error",
            Severity::Warning,
            1,
            &loc(),
            "",
            value,
        ),
        Outcome::Clean => {}
    }
}

/// The HTML5 tokenizer, on a short value that its prefilter finds worth it.
fn xss(
    c: &mut Collector,
    n: &Normalized,
    target: u16,
    loc: &mut dyn FnMut() -> String,
    value: &str,
) {
    let in_path = target == targets::PATH;
    if !(n.dec.len() <= XSS_TOKENIZER_MAX
        && (target & TOKENIZED != 0 || (in_path && n.dec.contains(&b'<')))
        && libinj::xss_candidate(&n.dec)
        && c.take_tokenizer_budget())
    {
        return;
    }
    match libinj::xss(&n.dec) {
        Outcome::Injection(_) => {
            let m = String::from_utf8_lossy(&n.dec[..n.dec.len().min(80)]).into_owned();
            c.add(
                Kind::Xss,
                "xss-libinjection",
                Severity::Critical,
                1,
                &loc(),
                &m,
                value,
            );
        }
        Outcome::Failed => c.add(
            Kind::Xss,
            "xss-libinjection-error",
            Severity::Warning,
            1,
            &loc(),
            "",
            value,
        ),
        Outcome::Clean => {}
    }
}
