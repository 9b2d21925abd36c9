//! The parsed view of a body, chosen by Content-Type (or sniffed without one).

use super::{Anomaly, JsonItems, Limits, Param, Part, XmlItems, lenient, multipart, target, xml};

/// What the body was parsed as.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Body {
    /// No body.
    #[default]
    None,
    /// `application/x-www-form-urlencoded` fields.
    Form(Vec<Param>),
    /// `multipart/form-data` parts.
    Multipart(Vec<Part>),
    /// JSON keys and string values, walked recursively.
    Json(JsonItems),
    /// XML text nodes and attribute values.
    Xml(XmlItems),
    /// Anything else: only the raw bytes.
    Raw,
}

/// A body made ready for inspection: the bytes kept, the real length,
/// whether the inspection misses part of it, and the multipart parts.
pub(super) struct Prepared {
    /// At most [`Limits::max_body`] bytes.
    pub bytes: Vec<u8>,
    /// The real (or declared) length.
    pub len: u64,
    /// Some of what counts against `max_body` is not inspected: cut at the
    /// limit, or not there (a server stopped reading, a flow ended).
    pub truncated: bool,
    /// The parts of a multipart body, read over the whole body.
    pub parts: Option<Vec<Part>>,
}

/// Bounds a full body for inspection. A multipart body is parsed whole:
/// file contents do not count against `max_body` (each is inspected up to
/// `max_file_inspect` bytes); anything else is cut at `max_body`, which is
/// flagged (`BodyTruncated`) and marks the request truncated.
pub(super) fn prepare(
    content_type: Option<&str>,
    full: &[u8],
    total: u64,
    incomplete: bool,
    limits: &Limits,
    anomalies: &mut Vec<Anomaly>,
) -> Prepared {
    let keep = full.len().min(limits.max_body);
    let boundary = content_type
        .filter(|c| mime_of(c).starts_with("multipart/"))
        .and_then(multipart::boundary);
    let (parts, cut) = match boundary {
        Some(b) => {
            let m = multipart::parse(full, &b, limits, anomalies);
            (Some(m.parts), m.cut)
        }
        None => (
            None,
            total > limits.max_body as u64 || full.len() > limits.max_body,
        ),
    };
    if cut {
        anomalies.push(Anomaly::BodyTruncated);
    }
    Prepared {
        bytes: full[..keep].to_vec(),
        len: total.max(full.len() as u64),
        truncated: cut || incomplete,
        parts,
    }
}

/// The media type of a Content-Type value, lowercased, without parameters.
pub fn mime_of(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Parses `body` according to its Content-Type header value.
pub fn parse(
    content_type: Option<&str>,
    body: &[u8],
    limits: &Limits,
    anomalies: &mut Vec<Anomaly>,
) -> Body {
    let mime = content_type.map(mime_of);
    // The types a server reads as text itself (a body without one is
    // binary as often as not).
    let text_type = mime
        .as_deref()
        .is_some_and(|m| m == "application/x-www-form-urlencoded" || is_json(m) || is_xml(m));
    if let Some(cs) = wide_charset(body).filter(|_| text_type || wide_document(body)) {
        anomalies.push(Anomaly::BodyCharset(cs.to_owned()));
    } else if let Some(cs) = xml_encoding(body).filter(|cs| !super::ascii_compatible_charset(cs)) {
        // An XML declaration that switches to another charset after its
        // own ASCII bytes (`encoding="UTF-16LE"`, `"UTF-7"`, `"IBM037"`):
        // XML readers follow it, whatever the Content-Type says.
        anomalies.push(Anomaly::BodyCharset(format!("xml encoding {cs}")));
    }
    match mime.as_deref() {
        Some("application/x-www-form-urlencoded") => form(body, limits, anomalies),
        Some(m) if m.starts_with("multipart/") => {
            match content_type.and_then(multipart::boundary) {
                Some(b) => Body::Multipart(multipart::parse(body, &b, limits, anomalies).parts),
                None => {
                    anomalies.push(Anomaly::MultipartMalformed("no boundary".into()));
                    Body::Raw
                }
            }
        }
        Some(m) if is_json(m) => match json_body(body, limits, anomalies) {
            Some(b) => b,
            None => {
                anomalies.push(Anomaly::InvalidJson);
                Body::Raw
            }
        },
        Some(m) if is_xml(m) => Body::Xml(xml::scan(&super::lossy(body), limits.max_json_depth)),
        None | Some("") => sniff(body, limits, anomalies),
        // Other types (text/plain beacons...) often carry JSON.
        Some(_) => {
            let first = body.iter().find(|b| !b.is_ascii_whitespace()).copied();
            if matches!(first, Some(b'{' | b'['))
                && let Some(b) = json_body(body, limits, anomalies)
            {
                return b;
            }
            Body::Raw
        }
    }
}

/// The charset a body's first bytes give away when it is not an
/// ASCII-compatible one: a UTF-16 or UTF-32 byte order mark, a NUL among
/// the first four bytes (how JSON (RFC 4627) and XML readers detect UTF-16
/// and UTF-32 without one), or `<?xm` in EBCDIC.
fn wide_charset(body: &[u8]) -> Option<&'static str> {
    let head = &body[..body.len().min(4)];
    if head.starts_with(&[0, 0, 0xFE, 0xFF]) || head.starts_with(&[0xFF, 0xFE, 0, 0]) {
        Some("utf-32 (byte order mark)")
    } else if head.starts_with(&[0xFE, 0xFF]) || head.starts_with(&[0xFF, 0xFE]) {
        Some("utf-16 (byte order mark)")
    } else if head.len() >= 2 && head.contains(&0) {
        Some("utf-16 or utf-32 (nul bytes)")
    } else if head == [0x4C, 0x6F, 0xA7, 0x94] {
        Some("ebcdic")
    } else {
        None
    }
}

/// Whether a body of another type (`text/plain`, none) is JSON or XML in
/// UTF-16 or UTF-32: its first character other than a byte order mark,
/// NULs and blanks is `{`, `[` or `<` (readers that sniff, such as
/// Python's `json.loads`, decode it).
fn wide_document(body: &[u8]) -> bool {
    let head = &body[..body.len().min(16)];
    let skip = if head.starts_with(&[0xFF, 0xFE]) || head.starts_with(&[0xFE, 0xFF]) {
        2
    } else {
        0
    };
    head[skip..]
        .iter()
        .find(|&&b| b != 0 && !b.is_ascii_whitespace())
        .is_some_and(|b| matches!(b, b'{' | b'[' | b'<'))
}

/// The `encoding` of an XML declaration at the start of a body.
fn xml_encoding(body: &[u8]) -> Option<String> {
    let head = &body[..body.len().min(256)];
    let start = head.iter().position(|b| !b.is_ascii_whitespace())?;
    let decl = head[start..].strip_prefix(b"<?xml")?;
    let end = memchr::memmem::find(decl, b"?>").unwrap_or(decl.len());
    let decl = String::from_utf8_lossy(&decl[..end]).to_ascii_lowercase();
    let rest = &decl[decl.find("encoding")? + 8..];
    let rest = rest.trim_start().strip_prefix('=')?.trim_start();
    let rest = rest.trim_start_matches(['"', '\'']);
    let cs = rest.split(['"', '\'', ' ', '?']).next().unwrap_or("");
    Some(cs.to_owned())
}

/// Whether a media type is JSON's.
pub fn is_json(m: &str) -> bool {
    m == "application/json"
        || m == "text/json"
        || m.ends_with("+json")
        || m == "application/csp-report"
}

/// Whether a media type is XML's.
pub fn is_xml(m: &str) -> bool {
    m == "application/xml" || m == "text/xml" || m.ends_with("+xml")
}

fn form(body: &[u8], limits: &Limits, anomalies: &mut Vec<Anomaly>) -> Body {
    Body::Form(target::parse_pairs(&super::lossy(body), limits, anomalies))
}

/// A JSON body; one with comments or trailing commas, which lenient
/// readers take, is read as they read it and counted invalid.
fn json_body(body: &[u8], limits: &Limits, anomalies: &mut Vec<Anomaly>) -> Option<Body> {
    let doc = lenient::parse_lenient(body, limits.max_json_depth, true)?;
    if doc.rewritten {
        anomalies.push(Anomaly::InvalidJson);
    }
    if doc.too_deep {
        anomalies.push(Anomaly::JsonTooDeep);
    }
    Some(Body::Json(doc.items))
}

/// A body without Content-Type: JSON or XML if it looks like it, else a form
/// (as most servers read it), else raw.
fn sniff(body: &[u8], limits: &Limits, anomalies: &mut Vec<Anomaly>) -> Body {
    let first = body.iter().find(|b| !b.is_ascii_whitespace()).copied();
    if matches!(first, Some(b'{' | b'['))
        && let Some(b) = json_body(body, limits, anomalies)
    {
        return b;
    }
    if first == Some(b'<') {
        return Body::Xml(xml::scan(&super::lossy(body), limits.max_json_depth));
    }
    if body
        .iter()
        .all(|&b| b >= 0x20 || b == b'\t' || b == b'\r' || b == b'\n')
    {
        return form(body, limits, anomalies);
    }
    Body::Raw
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chooses_by_content_type_and_sniffs() {
        let l = Limits::default();
        let mut a = Vec::new();
        assert!(matches!(
            parse(
                Some("application/x-www-form-urlencoded"),
                b"a=1",
                &l,
                &mut a
            ),
            Body::Form(_)
        ));
        assert!(matches!(
            parse(
                Some("application/vnd.api+json"),
                b"{\"a\":\"b\"}",
                &l,
                &mut a
            ),
            Body::Json(_)
        ));
        assert!(matches!(
            parse(Some("text/xml; charset=utf-8"), b"<a>b</a>", &l, &mut a),
            Body::Xml(_)
        ));
        assert!(matches!(
            parse(Some("application/octet-stream"), b"\x00\x01", &l, &mut a),
            Body::Raw
        ));
        assert!(matches!(parse(None, b"pay=1", &l, &mut a), Body::Form(_)));
        assert!(a.is_empty());
        assert!(matches!(
            parse(Some("application/json"), b"{nope", &l, &mut a),
            Body::Raw
        ));
        assert_eq!(a, [Anomaly::InvalidJson]);
    }

    /// UTF-16, UTF-32 and EBCDIC JSON, XML and form bodies, with a byte
    /// order mark or without, are anomalies; UTF-8 (with its mark too) and
    /// other types' binary bodies are not.
    #[test]
    fn wide_charset_bodies_are_anomalies() {
        let l = Limits::default();
        let utf16le =
            |s: &str| -> Vec<u8> { s.encode_utf16().flat_map(u16::to_le_bytes).collect() };
        let utf16be =
            |s: &str| -> Vec<u8> { s.encode_utf16().flat_map(u16::to_be_bytes).collect() };
        let utf32 =
            |s: &str| -> Vec<u8> { s.chars().flat_map(|c| (c as u32).to_be_bytes()).collect() };
        let json = r#"{"id":"1' or '1'='1"}"#;
        let xml = r#"<?xml version="1.0"?><a>b</a>"#;
        let mut bom16 = vec![0xFF, 0xFE];
        bom16.extend(utf16le(json));
        let mut bom32 = vec![0, 0, 0xFE, 0xFF];
        bom32.extend(utf32(json));
        let ebcdic = [0x4C, 0x6F, 0xA7, 0x94, 0x93, 0x40];
        for (ct, body) in [
            ("application/json", utf16le(json)),
            ("application/json", utf16be(json)),
            ("application/json", utf32(json)),
            ("application/json", bom16.clone()),
            ("application/json", bom32),
            ("text/xml", utf16le(xml)),
            ("application/soap+xml", bom16),
            ("application/xml", ebcdic.to_vec()),
            ("application/x-www-form-urlencoded", utf16be("a=1")),
            (
                "application/xml",
                b"<?xml version=\"1.0\" encoding=\"UTF-16LE\"?>".to_vec(),
            ),
            (
                "text/xml",
                b"<?xml version='1.0' encoding='utf-7'?><a/>".to_vec(),
            ),
            (
                "text/plain",
                b" <?xml version=\"1.0\" encoding=\"IBM037\"?>".to_vec(),
            ),
            ("text/plain", utf16le(json)),
            ("application/octet-stream", utf16be("[1]")),
        ] {
            let mut a = Vec::new();
            parse(Some(ct), &body, &l, &mut a);
            assert!(
                a.iter().any(|a| matches!(a, Anomaly::BodyCharset(_))),
                "{ct} {body:02x?}: {a:?}"
            );
        }
        let mut utf8_bom = vec![0xEF, 0xBB, 0xBF];
        utf8_bom.extend(json.as_bytes());
        for (ct, body) in [
            (Some("application/json"), json.as_bytes().to_vec()),
            (Some("application/json"), utf8_bom),
            (Some("application/octet-stream"), vec![0, 0, 0, 0x18]),
            (Some("image/png"), vec![0xFF, 0xFE, 0]),
            (None, vec![0, 0, 0, 0x18]),
            (Some("application/json"), b"1".to_vec()),
            (
                Some("application/xml"),
                b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><a/>".to_vec(),
            ),
            (Some("text/xml"), b"<?xml version=\"1.0\"?><a/>".to_vec()),
        ] {
            let mut a = Vec::new();
            parse(ct, &body, &l, &mut a);
            assert!(
                !a.iter().any(|a| matches!(a, Anomaly::BodyCharset(_))),
                "{ct:?} {body:02x?}: {a:?}"
            );
        }
    }
}
