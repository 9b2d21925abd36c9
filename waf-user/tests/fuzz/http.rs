//! Target `http`: the request parser. Any bytes: no panic, bounded output.
//! A generated valid request: parse, serialise, parse again gives the same
//! request (the parser's view is stable), and the body is recovered.

use proptest::prelude::*;
use waf_user::http::{Limits, Request};

use crate::{check, gen_req, support};

/// Writes a parsed request back as bytes (framing by Content-Length).
fn serialise(r: &Request) -> Vec<u8> {
    let mut b = format!("{} {} {}\r\n", r.method, r.target, r.version).into_bytes();
    for h in &r.headers {
        let n = h.name.to_ascii_lowercase();
        if n == "content-length" || n == "transfer-encoding" {
            continue;
        }
        b.extend_from_slice(format!("{}: {}\r\n", h.name, h.value).as_bytes());
    }
    if !r.body.is_empty() {
        b.extend_from_slice(format!("Content-Length: {}\r\n", r.body.len()).as_bytes());
    }
    b.extend_from_slice(b"\r\n");
    b.extend_from_slice(&r.body);
    b
}

fn input() -> impl Strategy<Value = (Vec<u8>, Option<gen_req::GenRequest>)> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..600).prop_map(|b| (b, None)),
        gen_req::request().prop_map(|g| (g.bytes.clone(), Some(g))),
        // A valid request with bytes flipped, inserted or cut.
        (
            gen_req::request(),
            any::<prop::sample::Index>(),
            any::<u8>(),
            0u8..3
        )
            .prop_map(|(g, at, byte, how)| {
                let mut b = g.bytes;
                let i = at.index(b.len() + 1);
                match how {
                    0 => b.insert(i, byte),
                    1 if i < b.len() => b[i] = byte,
                    _ => b.truncate(i),
                }
                (b, None)
            }),
    ]
}

#[test]
fn fuzz_http() {
    let limits = Limits::default();
    support::run("http", input(), |(bytes, valid)| {
        let Ok(r) = Request::parse(&bytes, &limits) else {
            check!(
                valid.is_none(),
                "a valid request did not parse: {:?}",
                String::from_utf8_lossy(&bytes)
            );
            return Ok(());
        };
        check!(r.body.len() <= limits.max_body, "body over the limit");
        check!(r.body_len >= r.body.len(), "body_len below the bytes kept");
        let _ = Request::from_parts(&r.method, &r.target, Vec::new(), bytes.clone(), &limits);
        if let Some(g) = valid {
            check!(r.body == g.body, "body {:?} != {:?}", r.body, g.body);
            check!(!r.body_truncated, "a whole body marked truncated");
        }
        let once = serialise(&r);
        let Ok(again) = Request::parse(&once, &limits) else {
            return Err(TestCaseError::fail(format!(
                "serialised request did not parse: {:?}",
                String::from_utf8_lossy(&once)
            )));
        };
        check!(
            serialise(&again) == once,
            "not stable: {:?}",
            String::from_utf8_lossy(&once)
        );
        check!(
            (again.canonical == r.canonical
                && again.query == r.query
                && again.cookies == r.cookies),
            "views differ after a round trip"
        );
        Ok(())
    });
}
