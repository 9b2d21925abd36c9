//! Protocol anomalies noticed while parsing a request.

use serde::Serialize;

/// Something unusual about the framing or encoding of a request that the
/// parser tolerated. The detector turns these into `protocol` findings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "anomaly", content = "detail")]
pub enum Anomaly {
    /// The method holds characters that are not token characters.
    InvalidMethod(String),
    /// The request line has no `HTTP/x.y` version, or an unknown one.
    InvalidVersion(String),
    /// A `#` in the request target: clients never send fragments.
    FragmentInTarget,
    /// Bytes in the request target that are not valid UTF-8 (clients
    /// percent-encode them).
    InvalidUtf8Target,
    /// An HTTP/1.1 request without a Host header.
    MissingHost,
    /// A Host header with an empty value.
    EmptyHost,
    /// More than one Host header.
    DuplicateHost,
    /// Both Content-Length and Transfer-Encoding.
    ContentLengthWithTransferEncoding,
    /// Several Content-Length headers with different values.
    ConflictingContentLength,
    /// A Content-Length that is not a decimal number.
    InvalidContentLength(String),
    /// A Transfer-Encoding other than `chunked` (possibly after other codings).
    UnsupportedTransferEncoding(String),
    /// Malformed chunked encoding.
    InvalidChunked,
    /// The bytes after the body look like a second request.
    SmuggledRequest,
    /// A header field line without a colon.
    MalformedHeaderLine(String),
    /// Whitespace between a header name and its colon.
    WhitespaceBeforeColon(String),
    /// A header line continued on the next line (obsolete folding).
    ObsoleteLineFolding,
    /// The body was longer than the inspected limit: only a prefix is inspected.
    BodyTruncated,
    /// JSON nesting deeper than the limit: deeper values are inspected as text.
    JsonTooDeep,
    /// A body whose Content-Type says JSON but which does not parse.
    InvalidJson,
    /// A multipart body without a boundary, or without any part.
    MultipartMalformed(String),
    /// A multipart name or file name with quotes, `;`, `=` or backslashes.
    MultipartSuspiciousName(String),
    /// A multipart part with a Content-Transfer-Encoding header.
    MultipartTransferEncoding,
    /// A Content-Encoding the inspector cannot undo (not gzip or deflate,
    /// or more than three): the body is inspected as sent.
    UnsupportedContentEncoding(String),
    /// A gzip or deflate body that does not decode.
    InvalidContentEncoding(String),
    /// A compressed body that decompresses past `max_body`: its end would
    /// go uninspected (a small body can hide a payload behind a megabyte
    /// of zeros).
    ContentEncodingOverflow,
    /// More parameters than the limit: the rest are not inspected.
    TooManyParams,
    /// A JSON, XML or form body (or one without a Content-Type) whose
    /// first bytes are those of UTF-16, UTF-32 or EBCDIC text (a byte
    /// order mark, NUL bytes, EBCDIC `<?xm`), which JSON and XML readers
    /// detect and decode by themselves.
    BodyCharset(String),
    /// A trusted proxy's forwarding header (`X-Forwarded-For`,
    /// `Forwarded`) holds a hop that is not an address (added by the proxy,
    /// which then does not believe it).
    MalformedForwarding,
}
