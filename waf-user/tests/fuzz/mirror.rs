//! Target `mirror`: reassembly. Requests split over random TCP segments,
//! delivered out of order with duplicates and overlapping retransmissions,
//! get the same verdicts from the mirror as each whole request from
//! `Engine::inspect`.

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use proptest::prelude::*;
use waf_common::{HttpSample, SAMPLE_MAX, event_kind};
use waf_user::config::MirrorConfig;
use waf_user::detect::{DetectConfig, Engine};
use waf_user::http::Request;
use waf_user::mirror::Mirror;

use crate::{check, gen_req, support};

const SYN: u32 = 0x02;
const FIN: u32 = 0x01;

fn engine() -> Arc<Engine> {
    static E: OnceLock<Arc<Engine>> = OnceLock::new();
    E.get_or_init(|| Arc::new(Engine::new(&DetectConfig::default()).expect("engine")))
        .clone()
}

fn sample(seq: u32, data: &[u8], flags: u32) -> HttpSample {
    let mut s = HttpSample {
        kind: event_kind::HTTP_SAMPLE,
        family: 4,
        src: [0; 16],
        dst: [0; 16],
        sport: 40000,
        dport: 80,
        seq,
        tcp_flags: flags,
        payload_len: data.len() as u32,
        captured: data.len() as u32,
        _reserved: 0,
        data: [0; SAMPLE_MAX],
    };
    s.src[..4].copy_from_slice(&[198, 51, 100, 7]);
    s.dst[..4].copy_from_slice(&[192, 0, 2, 1]);
    s.data[..data.len()].copy_from_slice(data);
    s
}

/// Segments (offset, length) covering the stream, then shuffled, with
/// duplicates and overlapping retransmissions.
fn plan() -> impl Strategy<Value = (Vec<usize>, Vec<(prop::sample::Index, usize)>, u64, u32)> {
    (
        prop::collection::vec(1usize..400, 1..40),
        prop::collection::vec((any::<prop::sample::Index>(), 1usize..300), 0..6),
        any::<u64>(),
        any::<u32>(),
    )
}

#[test]
fn fuzz_mirror() {
    let engine = engine();
    let strategy = (prop::collection::vec(gen_req::request(), 1..4), plan());
    support::run("mirror", strategy, |(reqs, (cuts, extra, shuffle, isn))| {
        let stream: Vec<u8> = reqs.iter().flat_map(|r| r.bytes.clone()).collect();
        let mut segs = Vec::new();
        let (mut at, mut i) = (0usize, 0usize);
        while at < stream.len() {
            let n = cuts[i % cuts.len()].min(stream.len() - at).min(SAMPLE_MAX);
            segs.push((at, n));
            at += n;
            i += 1;
        }
        for (start, len) in &extra {
            let s = start.index(stream.len());
            segs.push((s, (*len).min(stream.len() - s).min(SAMPLE_MAX)));
        }
        // A deterministic shuffle from the generated seed.
        let mut state = shuffle | 1;
        for k in (1..segs.len()).rev() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            segs.swap(k, (state % (k as u64 + 1)) as usize);
        }
        let mut m = Mirror::new(&MirrorConfig::default(), engine.clone());
        let mut got = m.feed(&sample(isn, b"", SYN));
        for (s, n) in &segs {
            let seq = isn.wrapping_add(1).wrapping_add(*s as u32);
            got.extend(m.feed(&sample(seq, &stream[*s..*s + n], 0)));
        }
        let end = isn.wrapping_add(1).wrapping_add(stream.len() as u32);
        got.extend(m.feed(&sample(end, b"", FIN)));
        check!(
            got.len() == reqs.len(),
            "{} inspected of {}",
            got.len(),
            reqs.len()
        );
        let src: IpAddr = [198, 51, 100, 7].into();
        for (g, r) in got.iter().zip(&reqs) {
            let whole = Request::parse(&r.bytes, engine.limits())
                .map(|req| engine.inspect(&req, Some(src)))
                .map_err(|e| TestCaseError::fail(format!("{e}")))?;
            check!(
                g.verdict == whole,
                "mirror {:?} != whole {:?} for {:?}",
                g.verdict,
                whole,
                String::from_utf8_lossy(&r.bytes)
            );
        }
        Ok(())
    });
}
