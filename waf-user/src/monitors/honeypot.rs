//! The honeypot's readings of a request: is it a form, which page did it
//! come from, is a hidden field filled, may an answer be a page.

use crate::http::{Body, CanonicalPath};

/// Extensions of the last path segment that may name a page (besides
/// none at all).
const PAGE_EXTENSIONS: &[&str] = &[
    "html", "htm", "xhtml", "shtml", "php", "asp", "aspx", "jsp", "jspx", "cfm", "cgi", "pl", "do",
    "action",
];

/// The longest `Referer` read.
const MAX_REFERER: usize = 4096;

/// Whether a 2xx answer to a GET of `path` (canonical) may be a page with
/// a form: its last segment has no extension, or a page's. Assets (`.js`,
/// `.css`, images, fonts) are not remembered, so they cannot push the page
/// out of the source's recent pages.
pub(super) fn page_like(path: &str) -> bool {
    let last = path.rsplit('/').next().unwrap_or("");
    match last.rsplit_once('.') {
        None => true,
        Some((_, ext)) => PAGE_EXTENSIONS.iter().any(|e| ext.eq_ignore_ascii_case(e)),
    }
}

/// Whether a Content-Type names a form (urlencoded or multipart).
pub(super) fn is_form(content_type: Option<&str>) -> bool {
    let Some(ct) = content_type else {
        return false;
    };
    let mime = ct.split(';').next().unwrap_or("").trim();
    mime.eq_ignore_ascii_case("application/x-www-form-urlencoded")
        || mime.eq_ignore_ascii_case("multipart/form-data")
}

/// The canonical path of a `Referer` (an absolute URL, or a path), None
/// when it has none we can read.
pub(super) fn referer_path(referer: &str) -> Option<String> {
    let r = referer.trim();
    if r.is_empty() || r.len() > MAX_REFERER {
        return None;
    }
    let rest = match r.find("://") {
        Some(i)
            if i > 0
                && r[..i]
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.')) =>
        {
            let after = &r[i + 3..];
            let end = after.find(['/', '?', '#']).unwrap_or(after.len());
            &after[end..]
        }
        _ if r.starts_with('/') => r,
        _ => return None,
    };
    let end = rest.find(['?', '#']).unwrap_or(rest.len());
    let raw = &rest[..end];
    Some(CanonicalPath::from_raw_path(if raw.is_empty() { "/" } else { raw }).path)
}

/// The first of `fields` that the form body fills, by name as decoded,
/// compared exactly. Any value but the empty one fills it, blanks
/// included: a browser sends the field's value from the page untouched
/// (empty, for a honeypot field), so whatever else is in it came from the
/// client. Query parameters are not a form; other bodies have no fields.
pub(super) fn filled_field<'a>(body: &'a Body, fields: &[String]) -> Option<&'a str> {
    let named = |n: &str| fields.iter().any(|f| f == n);
    match body {
        Body::Form(params) => params
            .iter()
            .find(|p| !p.value.is_empty() && named(&p.name))
            .map(|p| p.name.as_str()),
        Body::Multipart(parts) => parts
            .iter()
            .find(|p| (p.data_len > 0 || !p.data.is_empty()) && named(&p.name))
            .map(|p| p.name.as_str()),
        _ => None,
    }
}
