//! HTTP/1.1 framing: request line, header fields, body by Content-Length or
//! chunked encoding; and the construction shared with `from_parts`.

use super::{
    Anomaly, Body, CanonicalPath, Header, Limits, ParseError, Request, body, coding, framing,
    target,
};

/// The longest method accepted at all (longer ones are an error).
const MAX_METHOD: usize = 64;

pub(super) fn parse(raw: &[u8], limits: &Limits) -> Result<Request, ParseError> {
    // Blank lines before the request line are tolerated (RFC 9112 2.2).
    let start = raw
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .ok_or(ParseError::Empty)?;
    // One request per input: a head without its empty line is read whole.
    let body_start = framing::head_end(raw).map_or(raw.len(), |(_, b)| b);
    if body_start > limits.max_header_bytes {
        return Err(ParseError::HeadersTooLarge {
            limit: limits.max_header_bytes,
        });
    }
    let head = &raw[start..body_start];
    let first_line = &head[..memchr::memchr(b'\n', head).unwrap_or(head.len())];
    let utf8_line = std::str::from_utf8(first_line).is_ok();
    let head = crate::http::lossy(head);
    let mut lines = framing::lines(&head);
    let line = lines.next().unwrap_or("");
    let line = line.strip_suffix('\r').unwrap_or(line);
    let mut anomalies = Vec::new();
    let (method, target, version) = request_line(line, &mut anomalies)?;
    if !utf8_line || target.contains('\u{FFFD}') {
        anomalies.push(Anomaly::InvalidUtf8Target);
    }
    let headers = framing::fields(lines, &mut anomalies);
    check_header_count(&headers, limits)?;
    check_header_names(&headers)?;
    let length = framing::body_length(&headers, &mut anomalies);
    let framed = frame_body(&raw[body_start..], length, &mut anomalies);
    let seen = framed.bytes.len() as u64;
    let body = prepare_decoded(
        &headers,
        &framed.bytes,
        framed.declared.max(seen),
        framed.incomplete,
        limits,
        &mut anomalies,
    );
    build(method, target, version, headers, body, limits, anomalies)
}

/// [`body::prepare`] on the body with its content codings undone
/// ([`coding::decode`], at most one byte past `max_body`), or as sent.
fn prepare_decoded(
    headers: &[Header],
    bytes: &[u8],
    total: u64,
    incomplete: bool,
    limits: &Limits,
    anomalies: &mut Vec<Anomaly>,
) -> body::Prepared {
    let cap = limits.max_body.saturating_add(1);
    let decoded = coding::decode(headers, bytes, cap, incomplete, anomalies);
    // Decoded: its own length (one more when cut at the cap, so the body
    // reads as longer than max_body), cut short when capped.
    let (bytes, len, incomplete) = match &decoded {
        Some(d) => (
            &d.bytes[..],
            d.bytes.len() as u64 + u64::from(d.capped),
            incomplete || d.capped,
        ),
        None => (bytes, total, incomplete),
    };
    let body = body::prepare(
        content_type(headers),
        bytes,
        len,
        incomplete,
        limits,
        anomalies,
    );
    // The length sent stands when it is the longer.
    body::Prepared {
        len: total.max(body.len),
        ..body
    }
}

/// `s` without the whitespace around it; the same allocation when there
/// is none (the proxy's header values, nearly always).
fn trimmed(s: String) -> String {
    if s.trim().len() == s.len() {
        s
    } else {
        s.trim().to_owned()
    }
}

pub(super) fn from_parts(
    method: &str,
    uri: &str,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    complete: bool,
    limits: &Limits,
) -> Result<Request, ParseError> {
    let mut anomalies = Vec::new();
    let method = check_method(method, &mut anomalies)?;
    if uri.is_empty() {
        return Err(ParseError::EmptyTarget);
    }
    if headers.len() > limits.max_headers {
        return Err(ParseError::TooManyHeaders {
            limit: limits.max_headers,
        });
    }
    let size = headers.iter().fold(uri.len(), |acc, (n, v)| {
        acc.saturating_add(n.len() + v.len() + 4)
    });
    if size > limits.max_header_bytes {
        return Err(ParseError::HeadersTooLarge {
            limit: limits.max_header_bytes,
        });
    }
    let headers: Vec<Header> = headers
        .into_iter()
        .map(|(name, value)| Header {
            name: trimmed(name),
            value: trimmed(value),
        })
        .collect();
    check_header_names(&headers)?;
    let length = framing::body_length(&headers, &mut anomalies);
    let seen = body.len() as u64;
    // A body shorter than its Content-Length is one the server stopped
    // reading (whatever the caller says): it is at least as long as declared.
    let (total, incomplete) = match length {
        framing::BodyLength::Fixed(n) => (n.max(seen), !complete || n > seen),
        _ => (seen, !complete),
    };
    let body = prepare_decoded(&headers, &body, total, incomplete, limits, &mut anomalies);
    build(
        method,
        uri.to_owned(),
        "HTTP/1.1".to_owned(),
        headers,
        body,
        limits,
        anomalies,
    )
}

/// The first Content-Type value.
fn content_type(headers: &[Header]) -> Option<&str> {
    headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-type"))
        .map(|h| h.value.as_str())
}

fn check_header_count(headers: &[Header], limits: &Limits) -> Result<(), ParseError> {
    if headers.len() > limits.max_headers {
        return Err(ParseError::TooManyHeaders {
            limit: limits.max_headers,
        });
    }
    Ok(())
}

fn request_line(
    line: &str,
    anomalies: &mut Vec<Anomaly>,
) -> Result<(String, String, String), ParseError> {
    let line = line.trim();
    let Some((method, rest)) = line.split_once([' ', '\t']) else {
        return Err(ParseError::RequestLine(line.chars().take(120).collect()));
    };
    let method = check_method(method, anomalies)?;
    let rest = rest.trim();
    // The target may hold raw spaces: the version is the last word.
    let (target, version) = match rest.rsplit_once([' ', '\t']) {
        Some((t, v)) if v.starts_with("HTTP/") => (t.trim(), v),
        _ => (rest, ""),
    };
    if !matches!(version, "HTTP/1.1" | "HTTP/1.0") {
        anomalies.push(Anomaly::InvalidVersion(version.chars().take(40).collect()));
    }
    if target.is_empty() {
        return Err(ParseError::EmptyTarget);
    }
    Ok((method, target.to_owned(), version.to_owned()))
}

fn check_method(method: &str, anomalies: &mut Vec<Anomaly>) -> Result<String, ParseError> {
    if method.is_empty() || method.len() > MAX_METHOD {
        return Err(ParseError::Method(
            method.chars().take(MAX_METHOD).collect(),
        ));
    }
    if !method.bytes().all(is_tchar) {
        anomalies.push(Anomaly::InvalidMethod(method.to_owned()));
    }
    Ok(method.to_owned())
}

/// RFC 9110 token characters.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn check_header_names(headers: &[Header]) -> Result<(), ParseError> {
    match headers
        .iter()
        .find(|h| h.name.is_empty() || !h.name.bytes().all(is_tchar))
    {
        Some(h) => Err(ParseError::HeaderName(h.name.chars().take(80).collect())),
        None => Ok(()),
    }
}

/// The body bytes after the head, framed as `framing` says. The input
/// holds one request, so bytes past the declared length are kept (clients
/// miscount) unless they look like a second request.
struct Framed<'a> {
    bytes: std::borrow::Cow<'a, [u8]>,
    /// The declared length (Content-Length), 0 otherwise.
    declared: u64,
    /// Bytes the framing promised are missing.
    incomplete: bool,
}

fn frame_body<'a>(
    rest: &'a [u8],
    length: framing::BodyLength,
    anomalies: &mut Vec<Anomaly>,
) -> Framed<'a> {
    use std::borrow::Cow;
    let whole = |declared, incomplete| Framed {
        bytes: Cow::Borrowed(rest),
        declared,
        incomplete,
    };
    let end = match length {
        framing::BodyLength::None => 0,
        framing::BodyLength::Fixed(n) => match usize::try_from(n) {
            Ok(n) if n <= rest.len() => n,
            _ => return whole(n, true),
        },
        framing::BodyLength::Chunked => {
            let mut data = Vec::new();
            let mut dec = framing::Chunked::new();
            match dec.feed(rest, &mut data, rest.len()) {
                framing::Step::Done(used) => {
                    if looks_like_request(&rest[used..]) {
                        anomalies.push(Anomaly::SmuggledRequest);
                    }
                }
                framing::Step::More => {
                    return Framed {
                        bytes: Cow::Owned(data),
                        declared: 0,
                        incomplete: !dec.data_complete(),
                    };
                }
                framing::Step::Malformed(_) => {
                    anomalies.push(Anomaly::InvalidChunked);
                    return whole(0, false);
                }
            }
            return Framed {
                bytes: Cow::Owned(data),
                declared: 0,
                incomplete: false,
            };
        }
    };
    if end < rest.len() && looks_like_request(&rest[end..]) {
        anomalies.push(Anomaly::SmuggledRequest);
        return Framed {
            bytes: Cow::Borrowed(&rest[..end]),
            declared: end as u64,
            incomplete: false,
        };
    }
    whole(end as u64, false)
}

/// Whether bytes start like a request line (`GET /x HTTP/1.1`).
fn looks_like_request(b: &[u8]) -> bool {
    let b = &b[..b.len().min(200)];
    let s = String::from_utf8_lossy(b);
    let s = s.trim_start();
    let line = s.lines().next().unwrap_or("");
    let mut words = line.split(' ');
    let (Some(m), Some(_), Some(v)) = (words.next(), words.next(), words.next()) else {
        return false;
    };
    !m.is_empty() && m.bytes().all(|c| c.is_ascii_uppercase()) && v.starts_with("HTTP/")
}

fn build(
    method: String,
    target: String,
    version: String,
    headers: Vec<Header>,
    body: body::Prepared,
    limits: &Limits,
    mut anomalies: Vec<Anomaly>,
) -> Result<Request, ParseError> {
    if target.contains('#') {
        anomalies.push(Anomaly::FragmentInTarget);
    }
    let (raw_path, raw_query) = target::split_target(&target);
    let (raw_path, raw_query) = (raw_path.to_owned(), raw_query.map(str::to_owned));
    let canonical = CanonicalPath::from_raw_path(&raw_path);
    let path = canonical.decoded.clone();
    let query = raw_query
        .as_deref()
        .map(|q| target::parse_pairs(q, limits, &mut anomalies))
        .unwrap_or_default();
    let mut cookies = Vec::new();
    for h in headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("cookie"))
    {
        target::parse_cookies(&h.value, &mut cookies);
    }
    if cookies.len() > limits.max_params {
        // The rest are not inspected: say so (a payload after 1,024
        // decoys must not pass unseen).
        cookies.truncate(limits.max_params);
        anomalies.push(Anomaly::TooManyParams);
    }
    let hosts: Vec<&Header> = headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("host"))
        .collect();
    match hosts.as_slice() {
        [] if version != "HTTP/1.0" => anomalies.push(Anomaly::MissingHost),
        [] => {}
        [h] if h.value.is_empty() => anomalies.push(Anomaly::EmptyHost),
        [_] => {}
        _ => anomalies.push(Anomaly::DuplicateHost),
    }
    let parsed_body = match body.parts {
        Some(parts) => Body::Multipart(parts),
        None if body.bytes.is_empty() => Body::None,
        None => body::parse(content_type(&headers), &body.bytes, limits, &mut anomalies),
    };
    Ok(Request {
        method,
        target,
        version,
        raw_path,
        path,
        canonical,
        raw_query,
        query,
        headers,
        cookies,
        body: body.bytes,
        body_len: usize::try_from(body.len).unwrap_or(usize::MAX),
        body_truncated: body.truncated,
        parsed_body,
        anomalies,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(raw: &str) -> Request {
        parse(raw.as_bytes(), &Limits::default()).unwrap()
    }

    #[test]
    fn parses_a_simple_get() {
        let r = req("GET /a%20b?x=1&y=%27 HTTP/1.1\r\nHost: h\r\nCookie: s=1; t=2\r\n\r\n");
        assert_eq!(
            (r.method.as_str(), r.path.as_str(), r.version.as_str()),
            ("GET", "/a b", "HTTP/1.1")
        );
        assert_eq!(r.query[1].value, "'");
        assert_eq!(r.cookies.len(), 2);
        assert!(r.anomalies.is_empty(), "{:?}", r.anomalies);
    }

    #[test]
    fn tolerates_spaces_in_target() {
        let r = req("GET /item?id=A IS FOR ADORABLE HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!(r.query[0].value, "A IS FOR ADORABLE");
    }

    #[test]
    fn dechunks_bodies() {
        let r = req(
            "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nHi \r\n3\r\nCRS\r\n0\r\n\r\n",
        );
        assert_eq!(r.body, b"Hi CRS");
    }

    #[test]
    fn flags_framing_conflicts() {
        let r = req(
            "POST / HTTP/1.1\r\nHost: h\r\nHost: i\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        );
        assert!(r.anomalies.contains(&Anomaly::DuplicateHost));
        assert!(
            r.anomalies
                .contains(&Anomaly::ContentLengthWithTransferEncoding)
        );
        let r = req(
            "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nabcdGET /x HTTP/1.1\r\n\r\n",
        );
        assert!(r.anomalies.contains(&Anomaly::SmuggledRequest));
        assert_eq!(r.body, b"abcd");
    }

    #[test]
    fn enforces_limits() {
        let l = Limits {
            max_headers: 1,
            ..Limits::default()
        };
        let e = parse(b"GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\n\r\n", &l).unwrap_err();
        assert_eq!(e, ParseError::TooManyHeaders { limit: 1 });
        let l = Limits {
            max_body: 2,
            ..Limits::default()
        };
        let r = parse(
            b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nabcde",
            &l,
        )
        .unwrap();
        assert_eq!((r.body.as_slice(), r.body_len), (&b"ab"[..], 5));
        assert!(r.anomalies.contains(&Anomaly::BodyTruncated));
    }

    #[test]
    fn rejects_what_is_not_a_request() {
        assert_eq!(
            parse(b"", &Limits::default()).unwrap_err(),
            ParseError::Empty
        );
        assert!(matches!(
            parse(b"garbage", &Limits::default()),
            Err(ParseError::RequestLine(_))
        ));
        assert!(matches!(
            parse(b"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", &Limits::default()),
            Err(ParseError::HeaderName(_))
        ));
    }

    #[test]
    fn builds_from_parts() {
        let r = from_parts(
            "POST",
            "/p?a=1",
            vec![
                ("Host".into(), "h".into()),
                ("Content-Type".into(), "application/json".into()),
            ],
            br#"{"k":"v"}"#.to_vec(),
            true,
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(r.query[0].name, "a");
        assert!(
            matches!(r.parsed_body, Body::Json(ref items) if items.iter().any(|i| i.text == "v"))
        );
    }
}
