//! HTTP/1.1 framing: request line, header fields, body by Content-Length or
//! chunked encoding; and the construction shared with `from_parts`.

use super::{Anomaly, Body, Header, Limits, ParseError, Request, body, target};

/// The longest method accepted at all (longer ones are an error).
const MAX_METHOD: usize = 64;

pub(super) fn parse(raw: &[u8], limits: &Limits) -> Result<Request, ParseError> {
    // Tolerate blank lines before the request line (RFC 9112 2.2).
    let start = raw
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .ok_or(ParseError::Empty)?;
    let raw = &raw[start..];
    let (head, body_start) = match split_head(raw) {
        Some((h, b)) => (&raw[..h], b),
        None => (raw, raw.len()),
    };
    if head.len() > limits.max_header_bytes {
        return Err(ParseError::HeadersTooLarge {
            limit: limits.max_header_bytes,
        });
    }
    let first_line = &head[..memchr::memchr(b'\n', head).unwrap_or(head.len())];
    let utf8_line = std::str::from_utf8(first_line).is_ok();
    let head = String::from_utf8_lossy(head);
    let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let line = lines.next().unwrap_or("");
    let mut anomalies = Vec::new();
    let (method, target, version) = request_line(line, &mut anomalies)?;
    if !utf8_line || target.contains('\u{FFFD}') {
        anomalies.push(Anomaly::InvalidUtf8Target);
    }
    let mut headers: Vec<Header> = Vec::new();
    for line in lines {
        if line.starts_with([' ', '\t']) {
            anomalies.push(Anomaly::ObsoleteLineFolding);
            if let Some(last) = headers.last_mut() {
                last.value.push(' ');
                last.value.push_str(line.trim());
            }
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            anomalies.push(Anomaly::MalformedHeaderLine(
                line.chars().take(80).collect(),
            ));
            continue;
        };
        if name.ends_with([' ', '\t']) {
            anomalies.push(Anomaly::WhitespaceBeforeColon(
                name.trim().chars().take(80).collect(),
            ));
        }
        if headers.len() >= limits.max_headers {
            return Err(ParseError::TooManyHeaders {
                limit: limits.max_headers,
            });
        }
        headers.push(Header {
            name: name.trim().to_owned(),
            value: value.trim().to_owned(),
        });
    }
    check_header_names(&headers)?;
    let rest = &raw[body_start..];
    let (body, body_len) = frame_body(rest, &headers, limits, &mut anomalies);
    build(
        method, target, version, headers, body, body_len, limits, anomalies,
    )
}

pub(super) fn from_parts(
    method: &str,
    uri: &str,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
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
    let size: usize = headers
        .iter()
        .map(|(n, v)| n.len() + v.len() + 4)
        .sum::<usize>()
        + uri.len();
    if size > limits.max_header_bytes {
        return Err(ParseError::HeadersTooLarge {
            limit: limits.max_header_bytes,
        });
    }
    let headers: Vec<Header> = headers
        .into_iter()
        .map(|(name, value)| Header {
            name: name.trim().to_owned(),
            value: value.trim().to_owned(),
        })
        .collect();
    check_header_names(&headers)?;
    let body_len = body.len();
    let mut body = body;
    if body.len() > limits.max_body {
        body.truncate(limits.max_body);
        anomalies.push(Anomaly::BodyTruncated);
    }
    length_anomalies(&headers, &mut anomalies);
    build(
        method,
        uri.to_owned(),
        "HTTP/1.1".to_owned(),
        headers,
        body,
        body_len,
        limits,
        anomalies,
    )
}

/// (end of head, start of body) at the first empty line.
fn split_head(raw: &[u8]) -> Option<(usize, usize)> {
    let crlf = memchr::memmem::find(raw, b"\r\n\r\n").map(|i| (i, i + 4));
    let lf = memchr::memmem::find(raw, b"\n\n").map(|i| (i, i + 2));
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
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

/// Content-Length / Transfer-Encoding conflicts.
fn length_anomalies(headers: &[Header], anomalies: &mut Vec<Anomaly>) -> (Option<usize>, bool) {
    let cls: Vec<&str> = headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("content-length"))
        .map(|h| h.value.as_str())
        .collect();
    let tes: Vec<&str> = headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("transfer-encoding"))
        .map(|h| h.value.as_str())
        .collect();
    let mut cl = None;
    for v in &cls {
        // "5, 5" is a list of equal values; anything else non-numeric is invalid.
        for item in v.split(',') {
            let item = item.trim();
            match item.parse::<usize>() {
                Ok(n) if item.bytes().all(|b| b.is_ascii_digit()) => {
                    if cl.is_some_and(|c| c != n)
                        && !anomalies.contains(&Anomaly::ConflictingContentLength)
                    {
                        anomalies.push(Anomaly::ConflictingContentLength);
                    }
                    cl = Some(n);
                }
                _ => anomalies.push(Anomaly::InvalidContentLength(v.chars().take(40).collect())),
            }
        }
    }
    let mut chunked = false;
    if !tes.is_empty() {
        let all = tes.join(",").to_ascii_lowercase();
        let codings: Vec<&str> = all
            .split(',')
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .collect();
        chunked = codings.last() == Some(&"chunked");
        if !chunked || codings.len() > 1 || tes.len() > 1 {
            anomalies.push(Anomaly::UnsupportedTransferEncoding(
                all.chars().take(60).collect(),
            ));
        }
        if !cls.is_empty() {
            anomalies.push(Anomaly::ContentLengthWithTransferEncoding);
        }
    }
    (cl, chunked)
}

/// Reads the body after the head: de-chunks it or takes Content-Length bytes.
/// The input holds one request, so bytes past the declared length are kept
/// (clients miscount) unless they look like a second request.
fn frame_body(
    rest: &[u8],
    headers: &[Header],
    limits: &Limits,
    anomalies: &mut Vec<Anomaly>,
) -> (Vec<u8>, usize) {
    let (cl, chunked) = length_anomalies(headers, anomalies);
    let (mut body, len) = if chunked {
        match dechunk(rest, limits.max_body) {
            Some(r) => r,
            None => {
                anomalies.push(Anomaly::InvalidChunked);
                (rest.to_vec(), rest.len())
            }
        }
    } else {
        let take = match cl {
            Some(n) if n < rest.len() && looks_like_request(&rest[n..]) => {
                anomalies.push(Anomaly::SmuggledRequest);
                n
            }
            _ => rest.len(),
        };
        (rest[..take.min(limits.max_body)].to_vec(), take)
    };
    if len > limits.max_body || body.len() > limits.max_body {
        body.truncate(limits.max_body);
        anomalies.push(Anomaly::BodyTruncated);
    }
    (body, len)
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

/// De-chunks; returns (at most `max` bytes, total length), None if malformed.
fn dechunk(mut b: &[u8], max: usize) -> Option<(Vec<u8>, usize)> {
    let mut out = Vec::new();
    let mut total = 0usize;
    loop {
        let nl = memchr::memchr(b'\n', b)?;
        let line = std::str::from_utf8(&b[..nl]).ok()?.trim_end_matches('\r');
        let size_hex = line.split(';').next().unwrap_or("").trim();
        if size_hex.is_empty()
            || size_hex.len() > 15
            || !size_hex.bytes().all(|c| c.is_ascii_hexdigit())
        {
            return None;
        }
        let size = usize::from_str_radix(size_hex, 16).ok()?;
        b = &b[nl + 1..];
        if size == 0 {
            return Some((out, total));
        }
        let chunk = b.get(..size)?;
        total = total.saturating_add(size);
        let room = max.saturating_sub(out.len());
        out.extend_from_slice(&chunk[..size.min(room)]);
        b = &b[size..];
        b = b.strip_prefix(b"\r").unwrap_or(b);
        b = b.strip_prefix(b"\n")?;
    }
}

#[allow(clippy::too_many_arguments)]
fn build(
    method: String,
    target: String,
    version: String,
    headers: Vec<Header>,
    body: Vec<u8>,
    body_len: usize,
    limits: &Limits,
    mut anomalies: Vec<Anomaly>,
) -> Result<Request, ParseError> {
    if target.contains('#') {
        anomalies.push(Anomaly::FragmentInTarget);
    }
    let (raw_path, raw_query) = target::split_target(&target);
    let (raw_path, raw_query) = (raw_path.to_owned(), raw_query.map(str::to_owned));
    let path = target::decode_lossy(&raw_path, false);
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
    cookies.truncate(limits.max_params);
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
    let content_type = headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-type"))
        .map(|h| h.value.as_str());
    let parsed_body = if body.is_empty() {
        Body::None
    } else {
        body::parse(content_type, &body, limits, &mut anomalies)
    };
    Ok(Request {
        method,
        target,
        version,
        raw_path,
        path,
        raw_query,
        query,
        headers,
        cookies,
        body,
        body_len,
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
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(r.query[0].name, "a");
        assert!(
            matches!(r.parsed_body, Body::Json(ref items) if items.iter().any(|i| i.text == "v"))
        );
    }
}
