//! The one HTTP request model shared by the inline proxy, the passive mirror
//! and `waf inspect`: method, target, decoded path, query parameters, headers
//! (in order, with duplicates), cookies, and the body both as bytes and as a
//! parsed view (form, multipart, JSON, XML or raw).
//!
//! - [`Request::parse`] reads an HTTP/1.1 request from raw bytes.
//! - [`Request::from_parts`] builds one from parts a server already parsed.
//!
//! Both are bounded by [`Limits`] and never panic; what they tolerate but
//! find odd is kept as [`Anomaly`] values for the detector.

mod anomaly;
mod body;
mod error;
pub mod json;
pub mod multipart;
mod parse;
pub mod target;
pub mod xml;

pub use anomaly::Anomaly;
pub use body::Body;
pub use error::ParseError;
pub use json::JsonItem;
pub use multipart::Part;
pub use xml::XmlItem;

use serde::Deserialize;

/// Bounds on what is parsed and inspected.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Most header fields accepted (more is a [`ParseError`]).
    pub max_headers: usize,
    /// Most bytes in the request line and header section.
    pub max_header_bytes: usize,
    /// Most body bytes kept and inspected; the rest is counted, not read.
    pub max_body: usize,
    /// Deepest JSON (and XML) nesting walked value by value.
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
    /// The path, percent-decoded once.
    pub path: String,
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
    /// The full body length, which may exceed `body.len()`.
    pub body_len: usize,
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

    /// Builds a request from parts already parsed by a server.
    pub fn from_parts(
        method: &str,
        uri: &str,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
        limits: &Limits,
    ) -> Result<Request, ParseError> {
        parse::from_parts(method, uri, headers, body, limits)
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
