//! Target `framing`: `http::framing::frame` and the chunked decoder. Any
//! bytes: no panic, and the answer on a prefix never contradicts the answer
//! on the whole (bytes whole or split anywhere, same answer). Valid
//! request streams: every request framed at its exact end; the chunked
//! decoder gives the same data and end fed in any pieces.

use proptest::prelude::*;
use waf_user::http::framing::{Chunked, Frame, Step, frame};

use crate::{check, gen_req, support};

fn decided(f: &Frame) -> bool {
    matches!(
        f,
        Frame::Complete { .. } | Frame::Malformed { .. } | Frame::HeadTooLarge
    )
}

fn input() -> impl Strategy<Value = (Vec<u8>, Vec<usize>, Vec<usize>, usize)> {
    let bytes = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..400),
        prop::collection::vec(gen_req::request(), 1..4)
            .prop_map(|rs| { rs.into_iter().flat_map(|r| r.bytes).collect() }),
        prop::collection::vec(
            prop_oneof![
                Just(b"\r\n".to_vec()),
                Just(b"0\r\n\r\n".to_vec()),
                Just(b"Transfer-Encoding: chunked\r\n".to_vec()),
                Just(b"Content-Length: 3\r\n".to_vec()),
                Just(b"POST / HTTP/1.1\r\n".to_vec()),
                "[0-9a-fA-F]{1,17}(;x)?\r?\n".prop_map(String::into_bytes),
                prop::collection::vec(any::<u8>(), 0..8),
            ],
            0..20
        )
        .prop_map(|v| v.concat()),
    ];
    (
        bytes,
        prop::collection::vec(0usize..1000, 0..6),
        prop::collection::vec(1usize..64, 1..6),
        // A small head limit too, so heads run over it.
        prop_oneof![Just(48usize), Just(4096)],
    )
}

#[test]
fn fuzz_framing() {
    support::run("framing", input(), |(bytes, cuts, pieces, max_head)| {
        let whole = frame(&bytes, max_head);
        for c in &cuts {
            let k = c % (bytes.len() + 1);
            let part = frame(&bytes[..k], max_head);
            if decided(&part) {
                check!(
                    part == whole,
                    "prefix {k} says {part:?}, whole says {whole:?}"
                );
            }
        }
        match &whole {
            Frame::Complete { end, .. } => {
                check!(*end <= bytes.len(), "end past the bytes");
                check!(
                    frame(&bytes[..*end], max_head) == whole,
                    "not framed on its own bytes"
                );
            }
            Frame::Malformed { at, .. } => check!(*at <= bytes.len(), "malformed past the bytes"),
            _ => {}
        }
        // The chunked decoder, whole and in pieces.
        let mut one = Vec::new();
        let whole_step = Chunked::new().feed(&bytes, &mut one, usize::MAX);
        let mut dec = Chunked::new();
        let mut out = Vec::new();
        let (mut at, mut i, mut step) = (0usize, 0usize, Step::More);
        while at < bytes.len() {
            let n = pieces[i % pieces.len()].min(bytes.len() - at);
            i += 1;
            step = match dec.feed(&bytes[at..at + n], &mut out, usize::MAX) {
                Step::Done(u) => Step::Done(at + u),
                Step::Malformed(u) => Step::Malformed(at + u),
                Step::More => Step::More,
            };
            if step != Step::More {
                break;
            }
            at += n;
        }
        check!(
            step == whole_step,
            "pieces {step:?} != whole {whole_step:?}"
        );
        check!(out == one, "decoded data differs");
        Ok(())
    });
}
