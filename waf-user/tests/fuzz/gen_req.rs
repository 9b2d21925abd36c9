//! Generators of valid requests (method, target, headers, body framed by
//! Content-Length or by chunks) shared by the parser, framing and mirror
//! targets, with their serialised bytes.

use proptest::prelude::*;

/// A generated request and its bytes.
#[derive(Debug, Clone)]
pub struct GenRequest {
    /// The serialised request.
    pub bytes: Vec<u8>,
    /// The body as meant (de-chunked).
    pub body: Vec<u8>,
}

fn token() -> impl Strategy<Value = String> {
    "[A-Za-z][A-Za-z0-9-]{0,12}"
}

fn method() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("GET".to_owned()),
        Just("POST".to_owned()),
        Just("PUT".to_owned()),
        Just("DELETE".to_owned()),
        Just("PATCH".to_owned()),
        Just("OPTIONS".to_owned()),
    ]
}

/// A request target: segments of safe, dot, percent and attack characters,
/// and a query.
pub fn target() -> impl Strategy<Value = String> {
    let segment = prop_oneof![
        "[a-z0-9_.-]{0,8}",
        Just("..".to_owned()),
        Just(".".to_owned()),
        Just("%2e%2e".to_owned()),
        Just("%2f".to_owned()),
        "[a-z]{1,4}%[0-9A-F]{2}",
    ];
    let query = prop_oneof![
        Just(String::new()),
        "[a-z]{1,5}=[a-z0-9%]{0,10}(&[a-z]{1,5}=[a-z0-9]{0,6}){0,3}",
        Just("id=1%27%20union%20select%20password%20from%20users--".to_owned()),
        Just("q=%3Cscript%3Ealert(1)%3C/script%3E".to_owned()),
    ];
    (prop::collection::vec(segment, 0..5), query).prop_map(|(segs, q)| {
        let mut t = format!("/{}", segs.join("/"));
        if !q.is_empty() {
            t.push('?');
            t.push_str(&q);
        }
        t
    })
}

fn header() -> impl Strategy<Value = (String, String)> {
    (token(), "[ -~]{0,30}").prop_filter("no framing header", |(n, _)| {
        !["content-length", "transfer-encoding", "host"].contains(&n.to_ascii_lowercase().as_str())
    })
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(Vec::new()),
        prop::collection::vec(any::<u8>(), 1..300),
        "[a-z]{1,6}=[a-z0-9' ]{0,20}(&[a-z]{1,6}=[a-z0-9]{0,10}){0,3}".prop_map(String::into_bytes),
    ]
}

/// A valid request: framed by Content-Length, or chunked with random chunk
/// sizes and extensions.
pub fn request() -> impl Strategy<Value = GenRequest> {
    (
        method(),
        target(),
        prop::collection::vec(header(), 0..6),
        body(),
        any::<bool>(),
        prop::collection::vec(1usize..64, 1..8),
    )
        .prop_map(|(m, t, headers, body, chunked, sizes)| {
            let mut b = format!("{m} {t} HTTP/1.1\r\nHost: app.example\r\n").into_bytes();
            for (n, v) in &headers {
                b.extend_from_slice(format!("{n}: {}\r\n", v.trim()).as_bytes());
            }
            if chunked && !body.is_empty() {
                b.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
                let mut rest = body.as_slice();
                let mut i = 0;
                while !rest.is_empty() {
                    let n = sizes[i % sizes.len()].min(rest.len());
                    let ext = if i % 3 == 1 { ";ext=1" } else { "" };
                    b.extend_from_slice(format!("{n:x}{ext}\r\n").as_bytes());
                    b.extend_from_slice(&rest[..n]);
                    b.extend_from_slice(b"\r\n");
                    rest = &rest[n..];
                    i += 1;
                }
                b.extend_from_slice(b"0\r\n\r\n");
            } else {
                if !body.is_empty() || m == "POST" {
                    b.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
                }
                b.extend_from_slice(b"\r\n");
                b.extend_from_slice(&body);
            }
            GenRequest { bytes: b, body }
        })
}
