//! Tests of the findings store (codec, segments, paging, damage) and the
//! runtime exclusions (validation, matching in the engine, the file, drafts).

use std::{
    path::PathBuf,
    sync::atomic::Ordering,
    time::{Duration, Instant},
};

use proptest::prelude::*;

use super::{
    codec::{self, End},
    exclusions::{ExclusionSpec, RuntimeExclusions, Widen, draft},
    record::{Filter, FindingRecord},
    store::Store,
};
use crate::detect::{DetectConfig, Engine, ExclusionSet};

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("waf-findings-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

fn rec(i: u64) -> FindingRecord {
    FindingRecord {
        id: 0,
        time_ms: 1_000_000 + i,
        source: format!("198.51.100.{}", i % 4),
        method: "GET".into(),
        host: "example.test".into(),
        path: format!("/p{}/x", i % 3),
        kind: if i.is_multiple_of(2) { "sqli" } else { "xss" }.into(),
        location: "query:q".into(),
        part: "query".into(),
        param: "q".into(),
        rule: format!("rule-{}", i % 5),
        snippet: "' or 1=1 --\"\n<script>".into(),
        raw: String::new(),
        score: 5,
        verdict: "block".into(),
        request_id: format!("{i:016x}"),
        origin: "proxy".into(),
        repeats: 0,
    }
}

fn wait_written(s: &Store, n: u64) {
    let t = Instant::now();
    while s.stats.written.load(Ordering::Relaxed) < n {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "the writer did not catch up"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn frames_round_trip_and_a_cut_tail_is_torn() {
    let recs: Vec<FindingRecord> = (1..=3).map(rec).collect();
    let bytes: Vec<u8> = recs.iter().flat_map(codec::encode).collect();
    let d = codec::decode(&bytes);
    assert_eq!(d.records, recs);
    assert_eq!(d.end, End::Clean);
    let d = codec::decode(&bytes[..bytes.len() - 3]);
    assert_eq!(d.records, recs[..2]);
    assert_eq!(d.end, End::Torn);
    let mut bad = bytes.clone();
    let second = codec::encode(&recs[0]).len() + codec::HEADER + 2;
    bad[second] ^= 0x55;
    let d = codec::decode(&bad);
    assert_eq!(d.records, recs[..1]);
    assert_eq!(d.end, End::Corrupt);
}

#[test]
fn a_record_written_before_origin_and_repeats_still_decodes() {
    // A frame as the first release wrote it: no `origin`, no `repeats`.
    let body = br#"{"id":812,"time_ms":1767225600000,"source":"203.0.113.9","method":"GET","host":"shop","path":"/search","kind":"sqli","location":"query:q","part":"query","param":"q","rule":"sqli-union-select","snippet":"union select password from","raw":"1%27%20UNION","score":15,"verdict":"block","request_id":"18d9aa0b3c4d5e6f"}"#;
    let mut frame = vec![codec::MAGIC];
    frame.extend_from_slice(&(body.len() as u32).to_le_bytes());
    frame.extend_from_slice(&crc32fast::hash(body).to_le_bytes());
    frame.extend_from_slice(body);
    let d = codec::decode(&frame);
    assert_eq!(d.end, End::Clean);
    let r = &d.records[0];
    assert_eq!((r.id, r.rule.as_str()), (812, "sqli-union-select"));
    assert_eq!(r.origin, "proxy", "old records are the proxy's");
    assert_eq!(r.repeats, 0);
    // And a record written now reads back with its new fields.
    let mut now = r.clone();
    now.origin = "mirror".into();
    now.repeats = 41;
    assert_eq!(codec::decode(&codec::encode(&now)).records, vec![now]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn decoding_any_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let d = codec::decode(&bytes);
        prop_assert!(d.valid_len <= bytes.len());
    }

    #[test]
    fn damage_leaves_a_prefix_of_the_records(n in 1u64..12, at in any::<prop::sample::Index>(),
                                             flip in 1u8..=255, cut in any::<bool>()) {
        let recs: Vec<FindingRecord> = (1..=n).map(rec).collect();
        let mut bytes: Vec<u8> = recs.iter().flat_map(codec::encode).collect();
        let i = at.index(bytes.len());
        if cut { bytes.truncate(i) } else { bytes[i] ^= flip }
        let d = codec::decode(&bytes);
        prop_assert!(d.records.len() <= recs.len());
        prop_assert_eq!(&d.records[..], &recs[..d.records.len()]);
    }

    #[test]
    fn valid_specs_draft_toml_that_the_config_reads_back(
        rule in proptest::option::of("[a-z][a-z0-9_.-]{0,20}"),
        path in proptest::option::of("/[a-zA-Z0-9_./%$@!~+=,-]{0,40}"),
        param in proptest::option::of("[A-Za-z0-9_.$@:\\[\\]-]{1,20}"),
    ) {
        let spec = ExclusionSpec { rule, path, param, comment: String::new() };
        prop_assume!(spec.validate().is_ok());
        let text = spec.toml();
        let cfg: crate::config::Config = toml::from_str(&text).expect("the drafted TOML parses");
        prop_assert_eq!(&cfg.detect.exclusions, &vec![spec.to_detect()]);
    }
}

#[test]
fn pages_are_newest_first_and_hold_each_record_once() {
    let dir = temp("paging");
    let s = Store::open(&dir, 1 << 20).expect("open");
    s.record((1..=250).map(rec).collect());
    wait_written(&s, 250);
    for limit in [1, 7, 100, 1000] {
        let mut seen = Vec::new();
        let mut before = None;
        loop {
            let (page, next) = s.page(&Filter::default(), limit, before);
            assert!(page.len() <= limit);
            seen.extend(page.iter().map(|r| r.id));
            match next {
                Some(n) => before = Some(n),
                None => break,
            }
        }
        let want: Vec<u64> = (1..=250).rev().collect();
        assert_eq!(seen, want, "limit {limit}");
    }
    // Every record here was blocked.
    let by = |v: &str| Filter {
        verdict: Some(v.into()),
        ..Filter::default()
    };
    assert!(s.page(&by("pass"), 1000, None).0.is_empty());
    assert_eq!(s.page(&by("block"), 1000, None).0.len(), 250);
    let f = Filter {
        rule: Some("rule-2".into()),
        path: Some("/p1".into()),
        ..Filter::default()
    };
    let (page, _) = s.page(&f, 1000, None);
    assert!(!page.is_empty());
    assert!(
        page.iter()
            .all(|r| r.rule == "rule-2" && r.path.starts_with("/p1"))
    );
    assert_eq!(
        s.get(17).map(|r| r.request_id),
        Some(format!("{:016x}", 17))
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_store_survives_a_restart_and_keeps_to_its_cap() {
    let dir = temp("cap");
    {
        let s = Store::open(&dir, 256 * 1024).expect("open");
        s.record((1..=3000).map(rec).collect());
        wait_written(&s, 3000);
    }
    std::thread::sleep(Duration::from_millis(50));
    let total: u64 = std::fs::read_dir(&dir)
        .expect("dir")
        .flatten()
        .map(|e| e.metadata().map(|m| m.len()).unwrap_or(0))
        .sum();
    assert!(total <= 256 * 1024 + 64 * 1024, "{total} bytes on disk");
    let s = Store::open(&dir, 256 * 1024).expect("reopen");
    let (page, _) = s.page(&Filter::default(), 1, None);
    assert_eq!(page[0].id, 3000, "the newest survived");
    assert!(s.get(1).is_none(), "the oldest were pruned");
    s.record(vec![rec(1)]);
    wait_written(&s, 1);
    let (page, _) = s.page(&Filter::default(), 1, None);
    assert_eq!(page[0].id, 3001, "ids go on after a restart");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_damaged_segment_is_skipped_and_counted() {
    let dir = temp("damage");
    {
        let s = Store::open(&dir, 1 << 20).expect("open");
        s.record((1..=10).map(rec).collect());
        wait_written(&s, 10);
    }
    std::thread::sleep(Duration::from_millis(50));
    // A stray segment of garbage older than the real one, and a torn tail.
    std::fs::write(
        dir.join(format!("{:020}.seg", 0)),
        b"\xf1garbage-garbage-garbage",
    )
    .expect("write");
    let seg = dir.join(format!("{:020}.seg", 1));
    let mut bytes = std::fs::read(&seg).expect("read");
    bytes.extend_from_slice(&codec::encode(&rec(99))[..20]);
    std::fs::write(&seg, &bytes).expect("write");
    let s = Store::open(&dir, 1 << 20).expect("reopen");
    let (page, next) = s.page(&Filter::default(), 100, None);
    assert_eq!(page.len(), 10);
    assert_eq!(next, None);
    assert!(s.stats.corrupt.load(Ordering::Relaxed) >= 1);
    s.record(vec![rec(5)]);
    wait_written(&s, 1);
    assert_eq!(
        s.page(&Filter::default(), 1, None).0[0].id,
        11,
        "the torn tail was cut"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_writer_takes_ten_thousand_findings_a_minute_with_room_to_spare() {
    let dir = temp("rate");
    let s = Store::open(&dir, 32 << 20).expect("open");
    let t = Instant::now();
    for chunk in 0..20u64 {
        s.record((chunk * 1000..(chunk + 1) * 1000).map(rec).collect());
        wait_written(&s, (chunk + 1) * 1000);
    }
    let secs = t.elapsed().as_secs_f64();
    let rate = 20_000.0 / secs;
    eprintln!("findings store: {rate:.0} records/s written");
    assert!(rate > 10_000.0 / 60.0 * 10.0, "{rate} records/s");
    assert_eq!(s.stats.dropped.load(Ordering::Relaxed), 0);
    let _ = std::fs::remove_dir_all(&dir);
}

fn spec(rule: Option<&str>, path: Option<&str>, param: Option<&str>) -> ExclusionSpec {
    ExclusionSpec {
        rule: rule.map(str::to_string),
        path: path.map(str::to_string),
        param: param.map(str::to_string),
        comment: String::new(),
    }
}

#[test]
fn validation_refuses_what_would_widen_or_inject() {
    assert!(
        spec(Some("sqli-union"), Some("/search"), Some("q"))
            .validate()
            .is_ok()
    );
    assert!(spec(Some("sqli-*"), None, None).validate().is_ok());
    assert!(
        spec(None, Some("/api/*"), Some("$.user.name"))
            .validate()
            .is_ok()
    );
    for bad in [
        spec(None, None, None),
        spec(Some("*"), None, None),
        spec(None, Some("/*"), None),
        spec(None, Some("search"), None),
        spec(Some("a\"b"), None, None),
        spec(None, Some("/a\nb"), None),
        spec(None, Some("/a\"]\n[x"), None),
        spec(None, None, Some("q w")),
        spec(Some(&"r".repeat(65)), None, None),
        spec(None, Some(&format!("/{}", "a".repeat(256))), None),
    ] {
        assert!(bad.validate().is_err(), "{bad:?} was accepted");
    }
    let mut c = spec(Some("x"), None, None);
    c.comment = "a\u{1b}[31m".into();
    assert!(c.validate().is_err());
}

fn inspect(engine: &Engine, target: &str, extra: Option<&ExclusionSet>) -> crate::detect::Verdict {
    let req = crate::http::Request::from_parts(
        "GET",
        target,
        vec![("host".into(), "example.test".into())],
        Vec::new(),
        engine.limits(),
    )
    .expect("parses");
    engine.inspect_with(&req, None, extra)
}

#[test]
fn runtime_exclusions_apply_in_the_engine_and_survive_a_reload() {
    let dir = temp("excl");
    let engine = Engine::new(&DetectConfig::default()).expect("engine");
    let attack = "/search?q=1%27%20UNION%20SELECT%20password%20FROM%20users--";
    let v = inspect(&engine, attack, None);
    assert_eq!(v.action, crate::detect::Action::Block);
    let file = dir.join("exclusions.json");
    let rt = RuntimeExclusions::load(&file);
    let rules: Vec<String> = v.attacks.iter().map(|f| f.rule.clone()).collect();
    for r in &rules {
        rt.add(spec(Some(r), Some("/search"), Some("q")))
            .expect("add");
    }
    let set = rt.current();
    let left = inspect(&engine, attack, Some(&set));
    assert!(left.attacks.is_empty(), "{:?} of {v:?}", left.attacks);
    // The same attack in another parameter, or on another path, still blocks.
    let other = attack.replace("?q=", "?name=");
    assert_eq!(
        inspect(&engine, &other, Some(&set)).action,
        crate::detect::Action::Block
    );
    let moved = attack.replace("/search", "/login");
    assert_eq!(
        inspect(&engine, &moved, Some(&set)).action,
        crate::detect::Action::Block
    );
    // An evasive path voids path exclusions.
    let evasive = attack.replace("/search", "/x/%2e%2e/%2e%2e/search");
    assert_eq!(
        inspect(&engine, &evasive, Some(&set)).action,
        crate::detect::Action::Block
    );
    drop(rt);
    let rt = RuntimeExclusions::load(&file);
    assert_eq!(rt.list().len(), rules.len());
    assert!(
        inspect(&engine, attack, Some(&rt.current()))
            .attacks
            .is_empty()
    );
    for e in rt.list() {
        rt.remove(e.id).expect("remove");
    }
    assert_eq!(
        inspect(&engine, attack, Some(&rt.current())).action,
        crate::detect::Action::Block
    );
    assert!(rt.remove(12345).is_err());
    assert!(RuntimeExclusions::load(&file).list().is_empty());
    // A damaged file is set aside: no exclusion, detection stays strict.
    std::fs::write(&file, b"{not json").expect("write");
    assert!(RuntimeExclusions::load(&file).list().is_empty());
    assert!(dir.join("exclusions.json.damaged").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn drafts_take_the_findings_fields_and_refuse_a_star_from_the_request() {
    let mut f = rec(3);
    f.id = 42;
    let d = draft(&f, Widen::default()).expect("draft");
    assert_eq!(d.rule.as_deref(), Some("rule-3"));
    assert_eq!(d.path.as_deref(), Some("/p0/x"));
    assert_eq!(d.param.as_deref(), Some("q"));
    let text = d.toml();
    assert!(text.contains("[[detect.exclusions]]"), "{text}");
    assert!(text.contains("location = \"*:q\""), "{text}");
    let wide = draft(
        &f,
        Widen {
            any_path: true,
            ..Widen::default()
        },
    )
    .expect("draft");
    assert_eq!(wide.path, None);
    f.path = "/a*b".into();
    assert!(draft(&f, Widen::default()).is_err());
    f.path = "/ok\"\n[x]".into();
    assert!(draft(&f, Widen::default()).is_err());
}
