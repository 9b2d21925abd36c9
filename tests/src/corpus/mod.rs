//! Generated detection sets: every attack family crossed with every
//! encoding and every placement (the *evasion* set), and benign requests
//! that look like attacks: natural language with SQL, shell and markup
//! words, addresses, paths, templates, multi-line text (the *look-alike*
//! set). Deterministic: the same cases on every run, so their measured
//! rates mean something from one change to the next.
//!
//! Lines in the format of `../shared/corpus` (`id`, `raw`, `label`,
//! `source`, `category`, `placement`) plus `encoding`; `cargo xtask
//! corpus` writes them to `tests/data/`, `cargo xtask eval` scores them.

pub mod encode;
pub mod external;
mod lookalike;
pub mod payloads;
pub mod responses;

use encode::{ENCODINGS, Rng};
use payloads::FAMILIES;
use serde_json::json;

/// One labeled request.
#[derive(Debug, Clone)]
pub struct Case {
    /// Unique within its set.
    pub id: String,
    /// The whole HTTP/1.1 request.
    pub raw: String,
    /// "attack" or "benign".
    pub label: &'static str,
    /// "evasion" or "lookalike".
    pub source: &'static str,
    /// The attack family (or the family a look-alike imitates).
    pub category: String,
    /// Where the value sits.
    pub placement: &'static str,
    /// How it was encoded.
    pub encoding: &'static str,
}

impl Case {
    /// The JSON line (without newline).
    pub fn line(&self) -> String {
        json!({
            "id": self.id,
            "raw": self.raw,
            "label": self.label,
            "source": self.source,
            "category": self.category,
            "placement": self.placement,
            "encoding": self.encoding,
        })
        .to_string()
    }
}

/// The placements, 14 of them.
pub const PLACEMENTS: &[&str] = &[
    "query",
    "form",
    "json_value",
    "json_key",
    "json_query",
    "json_part",
    "graphql",
    "multipart",
    "cookie",
    "user_agent",
    "referer",
    "header",
    "path",
    "path_plus",
];

const UA: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36";
const HOST: &str = "app.example.test";
const BOUNDARY: &str = "----WebKitFormBoundary7MA4YWxkTrZu0gW";

/// `s` with the bytes a browser would not send raw in a URL (controls,
/// space, quotes, angle brackets, `#`, `&`, `+`, non-ASCII) percent-encoded;
/// `%` is left alone (an encoding may already have put it there). In a
/// form body a space is `+`.
fn transport_url(s: &str, form: bool) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b' ' if form => out.push('+'),
            0..=0x20 | 0x7f..=0xff | b'"' | b'<' | b'>' | b'#' | b'&' | b'+' | b'`' => {
                out.push_str(&format!("%{b:02X}"))
            }
            _ => out.push(b as char),
        }
    }
    out
}

/// `s` fit for a header value: controls and non-ASCII percent-encoded (a
/// raw CR or LF would end the header), and for a cookie also `;` and
/// `,` and spaces.
fn transport_header(s: &str, cookie: bool) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        let escape =
            !(0x20..0x7f).contains(&b) || (cookie && matches!(b, b';' | b',' | b' ' | b'"'));
        if escape {
            out.push_str(&format!("%{b:02X}"));
        } else {
            out.push(b as char);
        }
    }
    out
}

/// A request carrying value `v` (already encoded) in `placement`, under
/// parameter name `param`.
pub fn request(placement: &str, param: &str, v: &str) -> String {
    let get = |target: &str, extra: &str| {
        format!(
            "GET {target} HTTP/1.1\r\nHost: {HOST}\r\nUser-Agent: {UA}\r\n\
             Accept: text/html,application/xhtml+xml,*/*;q=0.8\r\n\
             Accept-Language: en-US,en;q=0.9\r\n{extra}\r\n"
        )
    };
    let post = |ctype: &str, body: &str| {
        format!(
            "POST /api/submit HTTP/1.1\r\nHost: {HOST}\r\nUser-Agent: {UA}\r\n\
             Accept: */*\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    match placement {
        "query" => get(
            &format!("/search?{param}={}&page=1", transport_url(v, false)),
            "",
        ),
        "form" => post(
            "application/x-www-form-urlencoded",
            &format!("{param}={}&submit=Send", transport_url(v, true)),
        ),
        // A payload that is itself a JSON object (NoSQL operators) goes in
        // as an object: under the parameter, or as the whole body (an
        // endpoint that hands its body to the database as a filter).
        "json_value" => post(
            "application/json",
            &json!({ param: json_inner(v), "lang": "en" }).to_string(),
        ),
        // A JSON document as a query parameter (`?filter={...}`, written
        // by encodeURIComponent), a NoSQL filter as an object.
        "json_query" => get(
            &format!(
                "/search?filter={}&page=1",
                component(&json!({ param: json_inner(v), "lang": "en" }).to_string())
            ),
            "",
        ),
        // A JSON part of a multipart body, sent as a file (a `Blob`
        // appended to FormData): Spring's `@RequestPart` reads it by its
        // type.
        "json_part" => post(
            &format!("multipart/form-data; boundary={BOUNDARY}"),
            &format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"meta\"; filename=\"blob\"\r\n\
                 Content-Type: application/json\r\n\r\n{}\r\n--{BOUNDARY}--\r\n",
                json!({ param: json_inner(v), "lang": "en" })
            ),
        ),
        "json_key" => match serde_json::from_str::<serde_json::Value>(v) {
            Ok(o @ (serde_json::Value::Object(_) | serde_json::Value::Array(_))) => {
                post("application/json", &o.to_string())
            }
            _ => {
                let mut m = serde_json::Map::new();
                m.insert(v.to_owned(), json!("1"));
                post(
                    "application/json",
                    &serde_json::Value::Object(m).to_string(),
                )
            }
        },
        // A string argument of a GraphQL query (JSON's string escapes are
        // GraphQL's).
        "graphql" => {
            let lit = serde_json::Value::String(v.to_owned()).to_string();
            let q = format!("{{ search({param}: {lit}) {{ id title }} }}");
            post("application/json", &json!({ "query": q }).to_string())
        }
        "multipart" => post(
            &format!("multipart/form-data; boundary={BOUNDARY}"),
            &format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{param}\"\r\n\r\n{v}\r\n\
                 --{BOUNDARY}\r\nContent-Disposition: form-data; name=\"submit\"\r\n\r\nSend\r\n\
                 --{BOUNDARY}--\r\n"
            ),
        ),
        "cookie" => get(
            "/account",
            &format!(
                "Cookie: theme=dark; {param}={}\r\n",
                transport_header(v, true)
            ),
        ),
        "user_agent" => format!(
            "GET /account HTTP/1.1\r\nHost: {HOST}\r\nUser-Agent: {}\r\nAccept: */*\r\n\r\n",
            transport_header(v, false)
        ),
        "referer" => get(
            "/account",
            &format!(
                "Referer: https://{HOST}/search?q={}\r\n",
                transport_header(&transport_url(v, false), false)
            ),
        ),
        "header" => get(
            "/account",
            &format!("X-Request-Data: {}\r\n", transport_header(v, false)),
        ),
        "path" => get(
            &format!(
                "/api/items/{}/details",
                transport_url(v, false).replace('?', "%3F")
            ),
            "",
        ),
        // A segment a rewrite passes on as a query parameter (`/items/(.*)`
        // to `?id=$1`), its spaces written as `+` as a form writes them.
        "path_plus" => get(
            &format!(
                "/api/items/{}/details",
                transport_url(v, true).replace('?', "%3F")
            ),
            "",
        ),
        _ => unreachable!("unknown placement {placement}"),
    }
}

/// A value as a JSON document holds it: an object or an array when it is
/// one (a NoSQL filter, a document a deep merge walks), else a string.
fn json_inner(v: &str) -> serde_json::Value {
    match serde_json::from_str::<serde_json::Value>(v) {
        Ok(o @ (serde_json::Value::Object(_) | serde_json::Value::Array(_))) => o,
        _ => json!(v),
    }
}

/// `s` as JavaScript's encodeURIComponent writes it.
fn component(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The evasion set: every payload of every family, in every encoding that
/// makes sense for it, in every placement.
pub fn evasion() -> Vec<Case> {
    let mut out = Vec::new();
    let mut rng = Rng(0x5eed_e7a5_1011);
    for f in FAMILIES {
        for (pi, p) in f.payloads.iter().enumerate() {
            for &enc in ENCODINGS {
                let Some(v) = encode::encode(enc, p, f, &mut rng) else {
                    continue;
                };
                // A payload that is a JSON object or array (a NoSQL filter,
                // a polluting document) works in a JSON body as one;
                // encoded into a string it is no filter for the database
                // (the JSON-level `\u0024` escapes of `obfuscated` still
                // parse to one).
                let object = serde_json::from_str::<serde_json::Value>(p)
                    .is_ok_and(|v| v.is_object() || v.is_array());
                for &placement in PLACEMENTS {
                    if object
                        && placement.starts_with("json")
                        && !matches!(enc, "plain" | "obfuscated")
                    {
                        continue;
                    }
                    // A redirect target is a value the application sends
                    // back in Location, a token one it reads as a
                    // credential: a field, a cookie or its own header, not
                    // a name, what a browser writes itself or the middle
                    // of a path. A polluting path is a document's or a
                    // form's, sent by a script.
                    if matches!(f.name, "open_redirect" | "jwt")
                        && matches!(
                            placement,
                            "json_key" | "user_agent" | "referer" | "path" | "path_plus"
                        )
                        || f.name == "prototype_pollution"
                            && matches!(placement, "user_agent" | "referer" | "path" | "path_plus")
                    {
                        continue;
                    }
                    out.push(Case {
                        id: format!("evasion:{}:{pi}:{enc}:{placement}", f.name),
                        raw: request(placement, f.param, &v),
                        label: "attack",
                        source: "evasion",
                        category: f.name.to_owned(),
                        placement,
                        encoding: enc,
                    });
                }
            }
        }
    }
    out
}

/// The look-alike set: benign values that share words and characters with
/// attacks, in every placement, as a browser sends them.
pub fn lookalikes() -> Vec<Case> {
    let mut out = Vec::new();
    for (category, values) in lookalike::VALUES {
        for (vi, v) in values.iter().enumerate() {
            for &placement in PLACEMENTS {
                // Multi-line text comes from a text area: a field value,
                // never a name, path, cookie or header.
                let multiline = v.contains('\n');
                if multiline
                    && !matches!(
                        placement,
                        "query" | "form" | "json_value" | "json_part" | "graphql" | "multipart"
                    )
                {
                    continue;
                }
                // A page puts text into its URL path with
                // encodeURIComponent (a browser resolves any `..` left raw).
                let v = match placement {
                    "path" => component(v),
                    // Spaces left for `request` to write as `+`.
                    "path_plus" => component(v).replace("%20", " "),
                    _ => (*v).to_owned(),
                };
                out.push(Case {
                    id: format!("lookalike:{category}:{vi}:{placement}"),
                    raw: request(placement, lookalike::param(category), &v),
                    label: "benign",
                    source: "lookalike",
                    category: (*category).to_owned(),
                    placement,
                    encoding: "plain",
                });
            }
        }
    }
    out
}

/// The JSON lines of a set.
pub fn lines(cases: &[Case]) -> String {
    let mut s = String::new();
    for c in cases {
        s.push_str(&c.line());
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_requests_parse() {
        let mut all = evasion();
        all.extend(lookalikes());
        let mut ids: Vec<_> = all.iter().map(|c| c.id.clone()).collect();
        ids.sort();
        let n = ids.len();
        ids.dedup();
        assert_eq!(ids.len(), n);
        let limits = waf_user::http::Limits::default();
        for c in &all {
            let r = waf_user::http::Request::parse(c.raw.as_bytes(), &limits);
            assert!(r.is_ok(), "{}: {:?}\n{}", c.id, r.err(), c.raw);
        }
    }
}
