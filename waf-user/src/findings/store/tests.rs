//! The index against a scan of the decoded files: whatever the records,
//! the segments and the damage, a filtered page through the index is the
//! page a scan of every decoded segment gives, and nothing panics.

use std::{path::Path, sync::Arc};

use proptest::prelude::*;

use super::{Reader, StoreStats, index::BLOCK, segments};
use crate::findings::{
    codec,
    record::{Filter, FindingRecord},
};

fn temp(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!(
        "waf-findings-index-{}-{name}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

const SOURCES: [&str; 5] = [
    "198.51.100.1",
    "198.51.100.2",
    "2001:db8::7",
    "203.0.113.9",
    "192.0.2.1",
];
const RULES: [&str; 4] = ["sqli-union", "xss-tag", "lfi-dots", "rare-rule"];
const VERDICTS: [&str; 3] = ["block", "would_block", "pass"];

/// A record of the given field choices, each 0 to 99: the first value of
/// each field most of the time, the others rarely (so that many blocks lack
/// them and a filter skips blocks). Through JSON, so the test holds whatever
/// fields a record gains with serde defaults.
fn rec(id: u64, time_ms: u64, source: usize, rule: usize, verdict: usize) -> FindingRecord {
    let skew = |x: usize, n: usize| if x % 100 < 85 { 0 } else { 1 + x % (n - 1) };
    let (source, rule, verdict) = (
        skew(source, SOURCES.len()),
        skew(rule, RULES.len()),
        skew(verdict, VERDICTS.len()),
    );
    serde_json::from_value(serde_json::json!({
        "id": id, "time_ms": time_ms,
        "source": SOURCES[source % SOURCES.len()], "method": "GET", "host": "shop.test",
        "path": format!("/p{}/x", id % 3), "kind": RULES[rule % RULES.len()].split('-').next(),
        "location": "query:q", "part": "query", "param": "q",
        "rule": RULES[rule % RULES.len()], "snippet": "' or 1=1 --", "raw": "",
        "score": 5, "verdict": VERDICTS[verdict % VERDICTS.len()], "request_id": "0123456789abcdef",
    }))
    .expect("a record")
}

/// The scan the index must equal: every segment decoded, newest first,
/// the rest of a segment skipped from its damage on (the store before the
/// index).
fn brute_page(
    dir: &Path,
    filter: &Filter,
    limit: usize,
    before: Option<u64>,
) -> (Vec<FindingRecord>, Option<u64>) {
    let before = before.unwrap_or(u64::MAX);
    let (mut out, mut next) = (Vec::new(), None);
    'segments: for (first, path) in segments(dir).iter().rev() {
        if *first >= before {
            continue;
        }
        let d = codec::decode(&std::fs::read(path).unwrap_or_default());
        for r in d.records.into_iter().rev() {
            if r.id >= before {
                continue;
            }
            if filter.since_ms.is_some_and(|t| r.time_ms < t) {
                break 'segments;
            }
            if filter.matches(&r) {
                if out.len() == limit {
                    next = out.last().map(|l: &FindingRecord| l.id);
                    break 'segments;
                }
                out.push(r);
            }
        }
    }
    (out, next)
}

/// Writes `records` as segment files of `per` records each (named by
/// their first id, as the writer does).
fn write_segments(dir: &Path, records: &[FindingRecord], per: usize) {
    for chunk in records.chunks(per.max(1)) {
        let bytes: Vec<u8> = chunk.iter().flat_map(codec::encode).collect();
        std::fs::write(dir.join(format!("{:020}.seg", chunk[0].id)), bytes).expect("write");
    }
}

fn filters() -> impl Strategy<Value = Filter> {
    (
        prop::option::of(0..SOURCES.len() + 1),
        prop::option::of(0..RULES.len()),
        prop::option::of(0..VERDICTS.len()),
        prop::option::of(0u64..3000),
        any::<bool>(),
    )
        .prop_map(|(s, r, v, since, path)| Filter {
            // SOURCES.len() picks an address that sent nothing.
            source: s.map(|s| SOURCES.get(s).unwrap_or(&"198.18.0.1").to_string()),
            rule: r.map(|r| RULES[r].to_string()),
            verdict: v.map(|v| VERDICTS[v].to_string()),
            since_ms: since.map(|t| 1_000_000 + t),
            path: path.then(|| "/p1".to_string()),
            ..Filter::default()
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn a_page_through_the_index_is_the_page_of_a_scan(
        fields in prop::collection::vec((0..100usize, 0..100usize, 0..100usize, 0u64..1500), 0..400),
        per in 1usize..200,
        damage in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..3),
        cut in prop::option::of(any::<prop::sample::Index>()),
        filter in filters(),
        limit in 1usize..40,
        before in prop::option::of(1u64..450),
    ) {
        let dir = temp("prop");
        // Ids grow; times mostly do (a little out of order, as proxy
        // threads queue them).
        let records: Vec<FindingRecord> = fields
            .iter()
            .enumerate()
            .map(|(i, &(s, r, v, jitter))| {
                rec(i as u64 + 1, 1_000_000 + 8 * i as u64 - jitter.min(8 * i as u64), s, r, v)
            })
            .collect();
        write_segments(&dir, &records, per);
        // Damaged bytes and a cut tail in any segment.
        let segs = segments(&dir);
        for (at, byte) in &damage {
            if segs.is_empty() { break; }
            let (_, path) = &segs[at.index(segs.len())];
            let mut bytes = std::fs::read(path).expect("read");
            if !bytes.is_empty() {
                let i = at.index(bytes.len());
                bytes[i] ^= byte | 1;
                std::fs::write(path, bytes).expect("write");
            }
        }
        if let (Some(c), false) = (cut, segs.is_empty()) {
            let (_, path) = &segs[c.index(segs.len())];
            let bytes = std::fs::read(path).expect("read");
            std::fs::write(path, &bytes[..c.index(bytes.len() + 1)]).expect("write");
        }
        let reader = Reader::new(&dir, Arc::new(StoreStats::default()));
        // Every page of the walk, following `next`, both ways.
        let mut cursor = before;
        for _ in 0..50 {
            let got = reader.page(&filter, limit, cursor);
            let want = brute_page(&dir, &filter, limit, cursor);
            prop_assert_eq!(&got, &want);
            match got.1 {
                Some(n) => cursor = Some(n),
                None => break,
            }
        }
        // Records appended after the index was built are found too.
        let more: Vec<FindingRecord> = (0..70u64)
            .map(|i| rec(1000 + i, 2_000_000 + i, i as usize, i as usize, i as usize))
            .collect();
        if let Some((_, last)) = segments(&dir).pop() {
            let mut bytes = std::fs::read(&last).expect("read");
            bytes.extend(more.iter().flat_map(codec::encode));
            std::fs::write(&last, bytes).expect("write");
        }
        let got = reader.page(&filter, limit, None);
        prop_assert_eq!(&got, &brute_page(&dir, &filter, limit, None));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn damage_after_indexing_never_panics(
        n in 1u64..300,
        at in any::<prop::sample::Index>(),
        bytes in prop::collection::vec(any::<u8>(), 0..64),
        filter in filters(),
    ) {
        let dir = temp("late");
        let records: Vec<FindingRecord> =
            (1..=n).map(|i| rec(i, 1_000_000 + i, i as usize, i as usize, i as usize)).collect();
        write_segments(&dir, &records, 100);
        let reader = Reader::new(&dir, Arc::new(StoreStats::default()));
        let _ = reader.page(&filter, 10, None);
        let segs = segments(&dir);
        let (_, path) = &segs[at.index(segs.len())];
        let mut file = std::fs::read(path).expect("read");
        let i = at.index(file.len());
        let end = (i + bytes.len()).min(file.len());
        file[i..end].copy_from_slice(&bytes[..end - i]);
        std::fs::write(path, file).expect("write");
        // Bytes changed under the index are met when their block is read
        // (a block a filter skips is not): the page holds matches only.
        let (page, _) = reader.page(&filter, 1000, None);
        prop_assert!(page.iter().all(|r| filter.matches(r)));
        // Indexed again from the files (a restart): the scan's page.
        let fresh = Reader::new(&dir, Arc::new(StoreStats::default()));
        prop_assert_eq!(fresh.page(&filter, 1000, None), brute_page(&dir, &filter, 1000, None));
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn a_page_reads_only_the_blocks_it_needs() {
    let dir = temp("blocks");
    let records: Vec<FindingRecord> = (1..=10 * BLOCK as u64)
        .map(|i| rec(i, 1_000_000 + i, 0, 0, 0))
        .collect();
    write_segments(&dir, &records, 5 * BLOCK);
    let reader = Reader::new(&dir, Arc::new(StoreStats::default()));
    let segs = reader.refresh();
    assert_eq!(segs.len(), 2);
    assert!(
        segs.iter()
            .all(|(_, _, i)| i.blocks.len() == 5 && !i.damaged)
    );
    // A rule no block holds: every block skipped, no record decoded.
    let mut read = 0;
    let rare = Filter {
        rule: Some("rare-rule".into()),
        ..Filter::default()
    };
    reader.walk(
        None,
        |b| {
            let s = super::index::page_step(&rare, b);
            read += usize::from(s == super::index::Step::Read);
            s
        },
        |_| true,
    );
    assert_eq!(read, 0, "a Bloom filter said yes to a value never inserted");
    // A cursor deep in the store: one block decoded.
    let mut seen = Vec::new();
    reader.walk(
        Some(200),
        |_| super::index::Step::Read,
        |r| {
            seen.push(r.id);
            seen.len() < 3
        },
    );
    assert_eq!(seen, [199, 198, 197]);
    let _ = std::fs::remove_dir_all(&dir);
}
