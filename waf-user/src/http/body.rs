//! The parsed view of a body, chosen by Content-Type (or sniffed without one).

use super::{Anomaly, JsonItem, Limits, Param, Part, XmlItem, json, multipart, target, xml};

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
    Json(Vec<JsonItem>),
    /// XML text nodes and attribute values.
    Xml(Vec<XmlItem>),
    /// Anything else: only the raw bytes.
    Raw,
}

/// Parses `body` according to its Content-Type header value.
pub fn parse(
    content_type: Option<&str>,
    body: &[u8],
    limits: &Limits,
    anomalies: &mut Vec<Anomaly>,
) -> Body {
    let mime = content_type.map(|c| {
        c.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    });
    match mime.as_deref() {
        Some("application/x-www-form-urlencoded") => form(body, limits, anomalies),
        Some(m) if m.starts_with("multipart/") => {
            match content_type.and_then(multipart::boundary) {
                Some(b) => Body::Multipart(multipart::parse(body, &b, anomalies)),
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
        Some(m) if is_xml(m) => Body::Xml(xml::scan(
            &String::from_utf8_lossy(body),
            limits.max_json_depth,
        )),
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

fn is_json(m: &str) -> bool {
    m == "application/json"
        || m == "text/json"
        || m.ends_with("+json")
        || m == "application/csp-report"
}

fn is_xml(m: &str) -> bool {
    m == "application/xml" || m == "text/xml" || m.ends_with("+xml")
}

fn form(body: &[u8], limits: &Limits, anomalies: &mut Vec<Anomaly>) -> Body {
    Body::Form(target::parse_pairs(
        &String::from_utf8_lossy(body),
        limits,
        anomalies,
    ))
}

fn json_body(body: &[u8], limits: &Limits, anomalies: &mut Vec<Anomaly>) -> Option<Body> {
    let doc: serde_json::Value = serde_json::from_slice(body).ok()?;
    let (items, too_deep) = json::walk(&doc, limits.max_json_depth);
    if too_deep {
        anomalies.push(Anomaly::JsonTooDeep);
    }
    Some(Body::Json(items))
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
        return Body::Xml(xml::scan(
            &String::from_utf8_lossy(body),
            limits.max_json_depth,
        ));
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
}
