//! multipart/form-data bodies (RFC 7578), parsed tolerantly and bounded:
//! file contents are inspected up to `max_file_inspect` bytes each (the
//! head, and the tail where scripts get appended to images), everything
//! else up to `max_body`.

use super::{Anomaly, Header, Limits};

/// One part of a multipart body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// The `name` of the Content-Disposition header.
    pub name: String,
    /// The `filename`, for file uploads: the first one given (as busboy
    /// reads it).
    pub filename: Option<String>,
    /// Other file names the part gives (a second `filename`, a `filename*`,
    /// a second Content-Disposition): parsers differ on which they read
    /// (PHP and Werkzeug the last), so each is inspected too.
    pub other_filenames: Vec<String>,
    /// The part's Content-Type, if any.
    pub content_type: Option<String>,
    /// All the part's headers, in order.
    pub headers: Vec<Header>,
    /// The part's content as inspected: for a file part, its first bytes
    /// (all of it when it fits in `max_file_inspect`).
    pub data: Vec<u8>,
    /// For a file part longer than `max_file_inspect`: its last bytes.
    pub tail: Vec<u8>,
    /// The real length of the content.
    pub data_len: usize,
}

/// A parsed multipart body.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Multipart {
    /// The parts, in order.
    pub parts: Vec<Part>,
    /// Whether non-file content past `max_body` (or file contents past the
    /// total file budget) was left out.
    pub cut: bool,
}

/// Whether a part's header block makes it a file upload (a `filename` or
/// `filename*` with a value in its Content-Disposition). With two
/// Content-Dispositions of which one only names a file it is read as a
/// field too, as [`part`] reads it.
pub fn is_file_head(head: &str) -> bool {
    let mut files = head.lines().filter_map(|line| {
        line.split_once(':')
            .filter(|(n, _)| n.trim().eq_ignore_ascii_case("content-disposition"))
            .map(|(_, v)| names_a_file(&params(v)))
    });
    files.next().is_some_and(|first| first && files.all(|f| f))
}

/// Whether a Content-Disposition's [`params`] give a file name. A bare
/// `filename` (no `=`) does not: PHP and Werkzeug skip it and read the
/// part as a field.
fn names_a_file(params: &[(String, Option<String>)]) -> bool {
    params
        .iter()
        .skip(1)
        .any(|(k, v)| is_filename_key(k) && v.is_some())
}

fn is_filename_key(k: &str) -> bool {
    k.eq_ignore_ascii_case("filename") || k.eq_ignore_ascii_case("filename*")
}

/// Total file content inspected per request, in `max_file_inspect` units.
const FILE_BUDGET_FILES: usize = 16;

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
/// pairs, honouring quoted strings and backslash escapes; a bare name
/// (no `=`) has an empty value.
pub fn split_params(s: &str) -> Vec<(String, String)> {
    params(s)
        .into_iter()
        .map(|(k, v)| (k, v.unwrap_or_default()))
        .collect()
}

/// [`split_params`], with a bare name's value None.
fn params(s: &str) -> Vec<(String, Option<String>)> {
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
            out.push((p.to_owned(), Some(String::new())));
            continue;
        }
        match p.split_once('=') {
            Some((k, v)) => out.push((k.trim().to_owned(), Some(unquote(v.trim())))),
            None => out.push((p.to_owned(), None)),
        }
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

/// Offsets of the delimiter lines (`--boundary` at the start of the body
/// or of a line).
pub fn delimiters(body: &[u8], boundary: &str) -> Vec<usize> {
    let delim = format!("--{boundary}");
    memchr::memmem::Finder::new(delim.as_bytes())
        .find_iter(body)
        .filter(|&p| p == 0 || body[p - 1] == b'\n')
        .collect()
}

/// Parses a multipart body, bounded by `limits`. Anomalies: missing parts,
/// suspicious names, Content-Transfer-Encoding, too many parts.
pub fn parse(
    body: &[u8],
    boundary: &str,
    limits: &Limits,
    anomalies: &mut Vec<Anomaly>,
) -> Multipart {
    let delim_len = boundary.len() + 2;
    let starts = delimiters(body, boundary);
    let mut out = Multipart::default();
    let mut room = limits.max_body;
    let mut file_room = limits.max_file_inspect.saturating_mul(FILE_BUDGET_FILES);
    for (k, &s) in starts.iter().enumerate() {
        let after = s + delim_len;
        if body[after..].starts_with(b"--") {
            break;
        }
        if out.parts.len() >= limits.max_params {
            anomalies.push(Anomaly::TooManyParams);
            out.cut = true;
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
        let mut p = part(content, anomalies);
        room = room.saturating_sub(content.len() - p.data_len);
        if p.filename.is_some() {
            let budget = limits.max_file_inspect.min(file_room);
            file_room -= bound_file(&mut p, budget);
            out.cut |= budget < limits.max_file_inspect && p.data.len() < p.data_len;
        } else {
            if p.data.len() > room {
                p.data.truncate(room);
                out.cut = true;
            }
            room -= p.data.len();
        }
        out.parts.push(p);
    }
    if out.parts.is_empty() {
        anomalies.push(Anomaly::MultipartMalformed("no part found".into()));
    }
    out
}

/// Keeps the head and the tail of a file part's content within `budget`
/// bytes (a quarter for the tail); returns the bytes kept.
fn bound_file(p: &mut Part, budget: usize) -> usize {
    if p.data.len() <= budget {
        return p.data.len();
    }
    let tail_len = budget / 4;
    let head_len = budget - tail_len;
    p.tail = p.data[p.data.len() - tail_len..].to_vec();
    p.data.truncate(head_len);
    budget
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
        other_filenames: Vec::new(),
        content_type: None,
        headers: Vec::new(),
        data: data.to_vec(),
        tail: Vec::new(),
        data_len: data.len(),
    };
    let mut named = false;
    // Whether the first disposition names a file, and whether another
    // disagrees.
    let mut file: Option<bool> = None;
    let mut split = false;
    for line in head.lines() {
        let Some((n, v)) = line.split_once(':') else {
            continue;
        };
        let (n, v) = (n.trim(), v.trim());
        if n.eq_ignore_ascii_case("content-disposition") {
            // Two dispositions, one naming a file: PHP and Werkzeug read
            // the first, others the last.
            // `name="cv.p\\d\\f"`: read here as `cv.pdf`, by PHP (which
            // unescapes only a quote) with its backslashes. No form names
            // a field so.
            if let Some(raw) = escaped_field_name(v) {
                anomalies.push(Anomaly::MultipartSuspiciousName(short_name(raw)));
            }
            let params = params(v);
            let names_file = names_a_file(&params);
            if *file.get_or_insert(names_file) != names_file {
                split = true;
                anomalies.push(Anomaly::MultipartMalformed(
                    "two content dispositions in one part, one naming a file".into(),
                ));
            }
            for (k, val) in params.into_iter().skip(1) {
                if k.eq_ignore_ascii_case("name") {
                    let val = val.unwrap_or_default();
                    // Two names: the back end reads one field, the
                    // inspector (and an exclusion naming a field) another.
                    if named && p.name != val {
                        anomalies.push(two("names", &p.name, &val));
                    }
                    named = true;
                    p.name = val;
                } else if is_filename_key(&k) {
                    let Some(val) = val else {
                        // A bare `filename`: a field to PHP and Werkzeug.
                        anomalies.push(Anomaly::MultipartMalformed(
                            "a file name without a value".into(),
                        ));
                        continue;
                    };
                    match &p.filename {
                        None => p.filename = Some(val),
                        Some(f) if *f != val && !p.other_filenames.contains(&val) => {
                            p.other_filenames.push(val);
                        }
                        Some(_) => {}
                    }
                }
            }
            check_names(&p, anomalies);
        } else if n.eq_ignore_ascii_case("content-type") {
            // Two types: readers take the first (commons-fileupload) or
            // the last, and read the content as JSON or as a file.
            if let Some(first) = p.content_type.as_deref().filter(|t| *t != v) {
                anomalies.push(two("content types", first, v));
            }
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
    // A part that is a file to some readers only is read as a field (its
    // file names are still inspected), as `is_file_head` tells the meter.
    if split {
        p.other_filenames.extend(p.filename.take());
    }
    p
}

/// Two different values of what a part gives once (`names`, `content
/// types`): readers differ on which one they take.
fn two(what: &str, first: &str, second: &str) -> Anomaly {
    Anomaly::MultipartMalformed(format!(
        "two {what} in one part: {} and {}",
        short_name(first),
        short_name(second)
    ))
}

/// The first 80 characters of a name, for an anomaly's message.
fn short_name(s: &str) -> String {
    s.chars().take(80).collect()
}

/// The quoted `name` of a Content-Disposition value, as sent, when a
/// backslash escapes a character in it that needs no escape (anything
/// but `"` and `\\`): readers that unescape and readers that do not see
/// two names.
fn escaped_field_name(v: &str) -> Option<&str> {
    let lower = v.to_ascii_lowercase();
    let at = lower.match_indices("name").find_map(|(i, _)| {
        let before = lower[..i].trim_end_matches([' ', '\t']);
        (before.ends_with(';')).then_some(i + 4)
    })?;
    let rest = v[at..].trim_start_matches([' ', '\t']).strip_prefix('=')?;
    let quoted = rest.trim_start_matches([' ', '\t']).strip_prefix('"')?;
    let mut chars = quoted.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return None,
            '\\' => match chars.next() {
                Some((_, '"' | '\\')) => {}
                Some(_) => {
                    return Some(&quoted[..quoted[i..].find('"').map_or(quoted.len(), |e| i + e)]);
                }
                None => return None,
            },
            _ => {}
        }
    }
    None
}

/// Names and file names with characters that parsers disagree about.
fn check_names(p: &Part, anomalies: &mut Vec<Anomaly>) {
    let names = std::iter::once(&p.name)
        .chain(p.filename.as_ref())
        .chain(&p.other_filenames);
    for s in names {
        if s.contains(['"', '\'', ';', '=', '\\']) {
            anomalies.push(Anomaly::MultipartSuspiciousName(short_name(s)));
        }
    }
}

/// (end of headers, start of content) at the first blank line (CRLF or
/// bare LF, whichever comes first); the body meter reads parts with it too.
pub(super) fn find_blank_line(b: &[u8]) -> Option<(usize, usize)> {
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
        let parts = parse(body, "XX", &Limits::default(), &mut an).parts;
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
            &Limits::default(),
            &mut an,
        )
        .parts;
        assert_eq!(parts[0].name, "fi;le");
        assert!(matches!(an[0], Anomaly::MultipartSuspiciousName(_)));
        let mut an = Vec::new();
        assert!(
            parse(b"garbage", "b", &Limits::default(), &mut an)
                .parts
                .is_empty()
        );
        assert!(matches!(an[0], Anomaly::MultipartMalformed(_)));
    }

    #[test]
    fn flags_field_names_with_needless_escapes() {
        for (disposition, flagged) in [
            (r#"form-data; name="cv.p\d\f"; filename="cv.pdf""#, true),
            (r#"form-data;name="a\dmin""#, true),
            (r#"form-data; name="cv"; filename="cv.pdf""#, false),
            (r#"form-data; name="say \"hi\"""#, false),
            (r#"form-data; name="up"; filename="C:\docs\cv.pdf""#, false),
        ] {
            assert_eq!(
                escaped_field_name(disposition).is_some(),
                flagged,
                "{disposition}"
            );
        }
    }

    #[test]
    fn bounds_files_and_fields() {
        let limits = Limits {
            max_body: 10,
            max_file_inspect: 8,
            ..Limits::default()
        };
        let body = b"--b\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a.jpg\"\r\n\r\n0123456789ABCDEF<?php\r\n--b\r\nContent-Disposition: form-data; name=\"q\"\r\n\r\n0123456789' or 1=1\r\n--b--\r\n";
        let mut an = Vec::new();
        let m = parse(body, "b", &limits, &mut an);
        let (f, q) = (&m.parts[0], &m.parts[1]);
        assert_eq!(
            (f.data.as_slice(), f.tail.as_slice(), f.data_len),
            (&b"012345"[..], &b"hp"[..], 21)
        );
        assert!(q.data.len() < 18);
        assert!(m.cut);
        assert!(is_file_head(
            "Content-Disposition: form-data; name=x; filename=\"a\""
        ));
        assert!(!is_file_head("Content-Disposition: form-data; name=x"));
    }

    #[test]
    fn keeps_every_file_name_and_flags_two_names() {
        let mut an = Vec::new();
        let body = b"--b\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a.jpg\"; filename*=utf-8''a.php\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a.jpg\"\r\n\r\nx\r\n--b--\r\n";
        let p = &parse(body, "b", &Limits::default(), &mut an).parts[0];
        assert_eq!(p.filename.as_deref(), Some("a.jpg"));
        assert_eq!(p.other_filenames, ["utf-8''a.php"]);
        assert!(
            !an.iter()
                .any(|a| matches!(a, Anomaly::MultipartMalformed(_)))
        );
        // A bare `filename`, or a second disposition naming a file: a
        // field to PHP and Werkzeug, so read as one (and flagged).
        for head in [
            "Content-Disposition: form-data; name=\"id\"; filename",
            "Content-Disposition: form-data; name=\"id\"\r\nContent-Disposition: form-data; name=\"id\"; filename=\"a.txt\"",
            "Content-Disposition: form-data; name=\"id\"; filename=\"a.txt\"\r\nContent-Disposition: form-data; name=\"id\"",
        ] {
            let mut an = Vec::new();
            let body = format!("--b\r\n{head}\r\n\r\n1 union select\r\n--b--\r\n");
            let p = &parse(body.as_bytes(), "b", &Limits::default(), &mut an).parts[0];
            assert_eq!(
                (p.name.as_str(), p.filename.as_deref()),
                ("id", None),
                "{head}"
            );
            assert_eq!(p.data, b"1 union select", "{head}");
            assert!(!is_file_head(head), "{head}");
            assert!(
                matches!(&an[..], [Anomaly::MultipartMalformed(_)]),
                "{head}: {an:?}"
            );
        }
        assert!(is_file_head(
            "Content-Disposition: form-data; name=\"f\"; filename=\"\""
        ));
        let mut an = Vec::new();
        let body =
            b"--b\r\nContent-Disposition: form-data; name=\"a\"; name=\"b\"\r\n\r\nx\r\n--b--\r\n";
        assert_eq!(
            parse(body, "b", &Limits::default(), &mut an).parts[0].name,
            "b"
        );
        assert_eq!(
            an,
            [Anomaly::MultipartMalformed(
                "two names in one part: a and b".into()
            )]
        );
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
