//! The one HTTP request model shared by the inline proxy, the passive mirror
//! and `waf inspect`: method, target, decoded and canonical path, query
//! parameters, headers (in order, with duplicates), cookies, and the body
//! both as bytes and as a parsed view (form, multipart, JSON, XML or raw).
//!
//! - [`Request::parse`] reads an HTTP/1.1 request from raw bytes.
//! - [`Request::from_parts`] builds one from parts a server already parsed
//!   ([`Request::from_parts_partial`] when it stopped reading the body).
//! - [`framing::frame`] says whether buffered bytes hold a complete request
//!   (the parser and the mirror share it).
//! - [`CanonicalPath`] is what exemptions, exclusions and path rules read;
//!   [`PathGlob`] / [`PathGlobSet`] are their patterns.
//! - [`BodyMeter`] counts the body bytes that count against `max_body`.
//!
//! All are bounded by [`Limits`] and never panic; what they tolerate but
//! find odd is kept as [`Anomaly`] values for the detector.

mod anomaly;
mod body;
pub mod canonical;
pub mod coding;
mod error;
pub mod framing;
pub mod glob;
pub mod json;
pub mod lenient;
pub mod meter;
pub mod multipart;
mod parse;
pub mod paths;
pub mod target;
pub mod xml;

pub use anomaly::Anomaly;
pub use body::{Body, is_json, is_xml, mime_of};
pub use canonical::{CanonicalPath, PathFlags};
pub use error::ParseError;
pub use glob::{PathGlob, PathGlobSet};
pub use json::{JsonItem, JsonItems};
pub use meter::{BodyMeter, counted_len};
pub use multipart::Part;
pub use xml::{XmlItem, XmlItems};

use serde::Deserialize;

/// `bytes` as text, invalid UTF-8 replaced by U+FFFD: what
/// `String::from_utf8_lossy` returns, but valid text (nearly all of it) is
/// checked by `str::from_utf8`, which reads ASCII a word at a time, rather
/// than byte by byte.
pub fn lossy(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(s) => std::borrow::Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

/// Charsets that read ASCII bytes as ASCII (lowercase names): what an
/// XML declaration may name without switching how its own bytes were
/// read, and the known charsets of the detector's checks.
pub fn ascii_compatible_charset(cs: &str) -> bool {
    matches!(
        cs,
        "utf-8"
            | "utf8"
            | "us-ascii"
            | "ascii"
            | "latin1"
            | "latin-1"
            | "gbk"
            | "gb2312"
            | "gb18030"
            | "big5"
            | "big5-hkscs"
            | "shift_jis"
            | "shift-jis"
            | "sjis"
            | "euc-jp"
            | "euc-kr"
            | "koi8-r"
            | "koi8-u"
            | "tis-620"
            | "windows-31j"
            | "x-sjis"
    ) || cs.starts_with("iso-8859-")
        || cs.starts_with("iso8859-")
        || cs.starts_with("windows-125")
        || cs.starts_with("cp125")
}

/// Bounds on what is parsed and inspected.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Most header fields accepted: more is [`ParseError::TooManyHeaders`]
    /// (the proxy answers 431).
    pub max_headers: usize,
    /// Most bytes in the request line and header section (blank lines
    /// before it and the empty line after it included): more is
    /// [`ParseError::HeadersTooLarge`] (431).
    pub max_header_bytes: usize,
    /// Most body bytes inspected, file contents of multipart bodies apart.
    /// A longer body is inspected up to here, flagged (`BodyTruncated`) and
    /// marked truncated (the verdict is `partial`).
    pub max_body: usize,
    /// Most bytes of each multipart file part inspected (its head, and its
    /// tail for a longer file); they do not count against `max_body`.
    pub max_file_inspect: usize,
    /// Deepest JSON (and XML) nesting whose members get paths of their own
    /// (a JSON subtree below it is read at the path of the level that
    /// reached it).
    pub max_json_depth: usize,
    /// Most parameters read from a query string, a form or cookies.
    pub max_params: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_headers: 128,
            max_header_bytes: 64 * 1024,
            max_body: 1024 * 1024,
            max_file_inspect: 64 * 1024,
            max_json_depth: 32,
            max_params: 1024,
        }
    }
}

/// A `name=value` pair from a query string, a form body or a cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    /// The name, percent-decoded once.
    pub name: String,
    /// The value, percent-decoded once.
    pub value: String,
    /// The name as sent.
    pub raw_name: String,
    /// The value as sent.
    pub raw_value: String,
    /// Whether there was an `=` (`?flag` has none).
    pub has_value: bool,
}

/// A header field as sent (name case kept, value trimmed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The field name.
    pub name: String,
    /// The field value (invalid UTF-8 replaced by U+FFFD).
    pub value: String,
}

/// One HTTP request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The method as sent (`GET`, or anything a client made up).
    pub method: String,
    /// The request target as sent.
    pub target: String,
    /// `HTTP/1.1`, or what stood in its place (empty for HTTP/0.9 style).
    pub version: String,
    /// The path of the target as sent.
    pub raw_path: String,
    /// The path, percent-decoded once (not resolved: evidence only).
    pub path: String,
    /// The canonical path and its flags: what exemptions, exclusions and
    /// path rules read.
    pub canonical: CanonicalPath,
    /// The query string as sent, without `?`.
    pub raw_query: Option<String>,
    /// Query parameters in order, with duplicates.
    pub query: Vec<Param>,
    /// Header fields in order, with duplicates.
    pub headers: Vec<Header>,
    /// Cookies from every Cookie header, in order.
    pub cookies: Vec<Param>,
    /// The body (de-chunked), at most [`Limits::max_body`] bytes of it.
    pub body: Vec<u8>,
    /// The full body length (declared or seen), which may exceed
    /// `body.len()`.
    pub body_len: usize,
    /// Part of the body that counts against `max_body` is not inspected:
    /// cut at the limit, or never read. The verdict says `partial`.
    pub body_truncated: bool,
    /// The parsed view of the body.
    pub parsed_body: Body,
    /// Oddities tolerated while parsing.
    pub anomalies: Vec<Anomaly>,
}

impl Request {
    /// Parses an HTTP/1.1 request (request line, headers, body by
    /// Content-Length or chunked encoding) from raw bytes holding one request.
    pub fn parse(raw: &[u8], limits: &Limits) -> Result<Request, ParseError> {
        parse::parse(raw, limits)
    }

    /// Builds a request from parts already parsed by a server; `body` is
    /// the whole (de-chunked) body. A body longer than `max_body` (file
    /// contents of a multipart body apart) is inspected up to the limit and
    /// flagged.
    pub fn from_parts(
        method: &str,
        uri: &str,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
        limits: &Limits,
    ) -> Result<Request, ParseError> {
        parse::from_parts(method, uri, headers, body, true, limits)
    }

    /// Like [`Request::from_parts`], for a server that stopped reading the
    /// body: `body` is what it read, more followed. The request is marked
    /// truncated, and `body_len` is the Content-Length when one was given.
    pub fn from_parts_partial(
        method: &str,
        uri: &str,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
        limits: &Limits,
    ) -> Result<Request, ParseError> {
        parse::from_parts(method, uri, headers, body, false, limits)
    }

    /// The value of the first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str())
    }

    /// All values of the headers with this name, in order.
    pub fn header_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str())
    }

    /// The Content-Type without parameters, lowercased.
    pub fn content_type(&self) -> Option<String> {
        self.header("content-type").map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn lossy_is_from_utf8_lossy(b in proptest::collection::vec(
            prop_oneof![any::<u8>(), Just(b'a'), Just(0xc3), Just(0xa9), Just(0xe2)],
            0..64,
        )) {
            prop_assert_eq!(super::lossy(&b), String::from_utf8_lossy(&b));
        }
    }
}
