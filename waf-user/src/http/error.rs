//! Errors of the HTTP request parser.

/// Why a request could not be turned into a [`super::Request`].
///
/// Anything the parser can still make sense of (odd methods, bad encodings,
/// conflicting lengths...) is not an error but an [`super::Anomaly`] kept on
/// the request, so the detector can score it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The input holds no request at all.
    #[error("empty request")]
    Empty,
    /// The first line is not `METHOD TARGET [VERSION]`.
    #[error("invalid request line: {0:?}")]
    RequestLine(String),
    /// The method is empty or longer than any real method.
    #[error("invalid method: {0:?}")]
    Method(String),
    /// The request target is empty.
    #[error("empty request target")]
    EmptyTarget,
    /// More header fields than [`super::Limits::max_headers`].
    #[error("too many header fields: more than {limit}")]
    TooManyHeaders {
        /// The configured limit.
        limit: usize,
    },
    /// The header section is longer than [`super::Limits::max_header_bytes`].
    #[error("header section too large: more than {limit} bytes")]
    HeadersTooLarge {
        /// The configured limit.
        limit: usize,
    },
    /// A header name is empty or holds characters a token cannot hold.
    #[error("invalid header name: {0:?}")]
    HeaderName(String),
}
