//! multipart/form-data bodies (RFC 7578), parsed tolerantly.

use super::{Anomaly, Header};

/// One part of a multipart body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// The `name` of the Content-Disposition header.
    pub name: String,
    /// The `filename`, for file uploads.
    pub filename: Option<String>,
    /// The part's Content-Type, if any.
    pub content_type: Option<String>,
    /// All the part's headers, in order.
    pub headers: Vec<Header>,
    /// The part's content.
    pub data: Vec<u8>,
}

/// The boundary parameter of a multipart Content-Type, unquoted.
pub fn boundary(content_type: &str) -> Option<String> {
    param(content_type, "boundary").filter(|b| !b.is_empty() && b.len() <= 200)
}

/// A parameter (`; name=value`) of a header value, unquoted.
pub fn param(header: &str, name: &str) -> Option<String> {
    split_params(header)
        .into_iter()
        .skip(1)
        .find_map(|(k, v)| k.eq_ignore_ascii_case(name).then_some(v))
}

/// Splits `value; a=1; b="x;y"` into ("value", "") and the (name, value)
/// pairs, honouring quoted strings and backslash escapes.
pub fn split_params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_quotes = false;
    let mut escaped = false;
    let mut pieces = Vec::new();
    for c in s.chars() {
        if escaped {
            cur.push(c);
            escaped = false;
        } else if in_quotes && c == '\\' {
            cur.push(c);
            escaped = true;
        } else if c == '"' {
            in_quotes = !in_quotes;
            cur.push(c);
        } else if c == ';' && !in_quotes {
            pieces.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    pieces.push(cur);
    for (i, p) in pieces.iter().enumerate() {
        let p = p.trim();
        if i == 0 {
            out.push((p.to_owned(), String::new()));
            continue;
        }
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        out.push((k.trim().to_owned(), unquote(v.trim())));
    }
    out
}

fn unquote(v: &str) -> String {
    let Some(inner) = v.strip_prefix('"').and_then(|v| v.strip_suffix('"')) else {
        return v.to_owned();
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Parses a multipart body. Anomalies: missing parts, suspicious names,
/// Content-Transfer-Encoding.
pub fn parse(body: &[u8], boundary: &str, anomalies: &mut Vec<Anomaly>) -> Vec<Part> {
    let delim = format!("--{boundary}");
    let finder = memchr::memmem::Finder::new(delim.as_bytes());
    let starts: Vec<usize> = finder
        .find_iter(body)
        .filter(|&p| p == 0 || body[p - 1] == b'\n')
        .collect();
    let mut parts = Vec::new();
    for (k, &s) in starts.iter().enumerate() {
        let after = s + delim.len();
        if body[after..].starts_with(b"--") {
            break;
        }
        let end = starts.get(k + 1).copied().unwrap_or(body.len());
        let mut content = &body[after..end];
        // Drop the rest of the delimiter line and the CRLF before the next one.
        match memchr::memchr(b'\n', content) {
            Some(nl) => content = &content[nl + 1..],
            None => continue,
        }
        if starts.get(k + 1).is_some() {
            content = content.strip_suffix(b"\n").unwrap_or(content);
            content = content.strip_suffix(b"\r").unwrap_or(content);
        }
        parts.push(part(content, anomalies));
    }
    if parts.is_empty() {
        anomalies.push(Anomaly::MultipartMalformed("no part found".into()));
    }
    parts
}

fn part(content: &[u8], anomalies: &mut Vec<Anomaly>) -> Part {
    let (head, data) = match find_blank_line(content) {
        Some((h, d)) => (&content[..h], &content[d..]),
        None => (content, &content[content.len()..]),
    };
    let head = String::from_utf8_lossy(head);
    let mut p = Part {
        name: String::new(),
        filename: None,
        content_type: None,
        headers: Vec::new(),
        data: data.to_vec(),
    };
    for line in head.lines() {
        let Some((n, v)) = line.split_once(':') else {
            continue;
        };
        let (n, v) = (n.trim(), v.trim());
        if n.eq_ignore_ascii_case("content-disposition") {
            let params = split_params(v);
            for (k, val) in params.iter().skip(1) {
                if k.eq_ignore_ascii_case("name") {
                    p.name = val.clone();
                } else if k.eq_ignore_ascii_case("filename") || k.eq_ignore_ascii_case("filename*")
                {
                    p.filename = Some(val.clone());
                }
            }
            check_names(&p, anomalies);
        } else if n.eq_ignore_ascii_case("content-type") {
            p.content_type = Some(v.to_owned());
        } else if n.eq_ignore_ascii_case("content-transfer-encoding")
            && !anomalies.contains(&Anomaly::MultipartTransferEncoding)
        {
            anomalies.push(Anomaly::MultipartTransferEncoding);
        }
        p.headers.push(Header {
            name: n.to_owned(),
            value: v.to_owned(),
        });
    }
    p
}

/// Names and file names with characters that parsers disagree about.
fn check_names(p: &Part, anomalies: &mut Vec<Anomaly>) {
    for s in std::iter::once(&p.name).chain(p.filename.as_ref()) {
        if s.contains(['"', '\'', ';', '=', '\\']) {
            anomalies.push(Anomaly::MultipartSuspiciousName(
                s.chars().take(80).collect(),
            ));
        }
    }
}

/// (end of headers, start of content) at the first blank line.
fn find_blank_line(b: &[u8]) -> Option<(usize, usize)> {
    let crlf = memchr::memmem::find(b, b"\r\n\r\n").map(|i| (i, i + 4));
    let lf = memchr::memmem::find(b, b"\n\n").map(|i| (i, i + 2));
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_fields_and_files() {
        let body = b"--XX\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\none\r\n--XX\r\nContent-Disposition: form-data; name=\"f\"; filename=\"x.txt\"\r\nContent-Type: text/plain\r\n\r\nhello\nworld\r\n--XX--\r\n";
        let mut an = Vec::new();
        let parts = parse(body, "XX", &mut an);
        assert_eq!(parts.len(), 2);
        assert_eq!(
            (parts[0].name.as_str(), parts[0].data.as_slice()),
            ("a", &b"one"[..])
        );
        assert_eq!(parts[1].filename.as_deref(), Some("x.txt"));
        assert_eq!(parts[1].data, b"hello\nworld");
        assert!(an.is_empty());
    }

    #[test]
    fn flags_suspicious_names_and_missing_parts() {
        let mut an = Vec::new();
        let parts = parse(
            b"--b\nContent-Disposition: form-data; name=\"fi;le\"\n\nx\n--b--\n",
            "b",
            &mut an,
        );
        assert_eq!(parts[0].name, "fi;le");
        assert!(matches!(an[0], Anomaly::MultipartSuspiciousName(_)));
        let mut an = Vec::new();
        assert!(parse(b"garbage", "b", &mut an).is_empty());
        assert!(matches!(an[0], Anomaly::MultipartMalformed(_)));
    }

    #[test]
    fn reads_quoted_params() {
        assert_eq!(
            boundary("multipart/form-data; boundary=\"a;b\"").as_deref(),
            Some("a;b")
        );
        assert_eq!(
            param("text/plain; charset=UTF-8", "charset").as_deref(),
            Some("UTF-8")
        );
    }
}
