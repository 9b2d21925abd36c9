//! Tests of what the findings keep and rank: the keep policy (blocked
//! findings survive a flood of passed ones), the live tops (a heavy key
//! stays first under a flood of unique keys, windows forget their minutes)
//! and the config's checks.

use std::{
    net::IpAddr,
    sync::atomic::Ordering,
    time::{Duration, Instant},
};

use proptest::prelude::*;

use super::{
    Findings, FindingsConfig,
    keep::{Keep, Sampler},
    live::{Live, Seen},
    record::{Filter, FindingRecord, Origin, RequestFacts},
};
use crate::detect::{Action, Finding, Kind, Risk, Severity, Verdict};

fn temp(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("waf-keep-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

fn verdict(action: Action, rule: &str, severity: Severity) -> Verdict {
    Verdict {
        action,
        score: if action == Action::Block { 15 } else { 2 },
        risk: Risk::Low,
        attacks: vec![Finding {
            kind: Kind::Sqli,
            location: "query:q".into(),
            rule: rule.into(),
            matched: "select".into(),
            severity,
            value: String::new(),
        }],
        would_block: false,
        partial: false,
    }
}

fn passed(source: &str, rule: &str, path: &str) -> FindingRecord {
    FindingRecord {
        source: source.into(),
        rule: rule.into(),
        path: path.into(),
        verdict: "pass".into(),
        origin: "proxy".into(),
        ..FindingRecord::default()
    }
}

#[test]
fn sampling_keeps_one_passed_finding_per_triple_a_minute_with_its_repeats() {
    let s = Sampler::new(Keep::Sampled, 100);
    let mut recs: Vec<FindingRecord> = (0..50)
        .map(|_| passed("198.51.100.1", "sqli-word", "/search"))
        .collect();
    s.admit(&mut recs, 1000);
    assert_eq!(recs.len(), 1, "one a minute of one triple");
    assert_eq!(recs[0].repeats, 0);
    let mut more = vec![passed("198.51.100.1", "sqli-word", "/search"); 10];
    s.admit(&mut more, 1000);
    assert!(more.is_empty());
    // The next minute: one more, carrying the 59 skipped before it.
    let mut next = vec![passed("198.51.100.1", "sqli-word", "/search"); 3];
    s.admit(&mut next, 1001);
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].repeats, 59);
    // Another source, rule or path is another triple.
    let mut other = vec![
        passed("198.51.100.2", "sqli-word", "/search"),
        passed("198.51.100.1", "xss-word", "/search"),
        passed("198.51.100.1", "sqli-word", "/login"),
    ];
    s.admit(&mut other, 1001);
    assert_eq!(other.len(), 3);
    assert_eq!(s.skipped.load(Ordering::Relaxed), 49 + 10 + 2);
}

#[test]
fn the_budget_caps_passed_findings_and_blocked_ones_always_pass() {
    let s = Sampler::new(Keep::Sampled, 5);
    let mut recs: Vec<FindingRecord> = (0..100)
        .map(|i| passed(&format!("198.51.100.{i}"), "r", &format!("/p{i}")))
        .collect();
    let mut blocked = passed("203.0.113.9", "sqli-union", "/search");
    blocked.verdict = "block".into();
    let mut would = blocked.clone();
    would.verdict = "would_block".into();
    recs.extend(vec![blocked.clone(); 20]);
    recs.push(would);
    s.admit(&mut recs, 7);
    assert_eq!(recs.iter().filter(|r| r.verdict == "pass").count(), 5);
    assert_eq!(recs.iter().filter(|r| r.verdict != "pass").count(), 21);
    assert_eq!(s.skipped.load(Ordering::Relaxed), 95);

    let only = Sampler::new(Keep::Blocked, 5);
    let mut recs = vec![passed("a", "r", "/"), blocked.clone()];
    only.admit(&mut recs, 7);
    assert_eq!(recs, vec![blocked.clone()]);
    let all = Sampler::new(Keep::All, 1);
    let mut recs = vec![passed("a", "r", "/"); 30];
    all.admit(&mut recs, 7);
    assert_eq!(recs.len(), 30);
    assert_eq!(all.skipped.load(Ordering::Relaxed), 0);
}

#[test]
fn the_sampler_stays_bounded_under_unique_triples() {
    let s = Sampler::new(Keep::Sampled, 100_000);
    for m in 0..3u64 {
        let mut recs: Vec<FindingRecord> = (0..20_000)
            .map(|i| passed("198.51.100.1", "r", &format!("/u{m}-{i}")))
            .collect();
        s.admit(&mut recs, m);
        // Within the budget, every new triple is kept, remembered or not.
        assert_eq!(recs.len(), 20_000);
    }
}

fn facts<'a>(source: IpAddr, path: &'a str) -> RequestFacts<'a> {
    RequestFacts {
        origin: Origin::Proxy,
        source,
        method: "GET",
        host: "shop.test",
        path,
        request_id: "0123456789abcdef",
    }
}

fn wait_idle(f: &Findings) {
    let s = f.store.as_ref().expect("store");
    let t = Instant::now();
    let mut last = u64::MAX;
    loop {
        std::thread::sleep(Duration::from_millis(200));
        let now = s.stats.written.load(Ordering::Relaxed) + s.stats.dropped.load(Ordering::Relaxed);
        if now == last {
            return;
        }
        last = now;
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "the writer never settled"
        );
    }
}

/// Ten blocked attacks, then a flood of passed requests with low-severity
/// findings from many sources on many paths: how many of the ten the store
/// still has.
fn blocked_left_after_a_flood(keep: Keep) -> (usize, u64) {
    let dir = temp(&format!("{keep:?}"));
    let cfg = FindingsConfig {
        max_size_mb: 1,
        keep,
        ..FindingsConfig::default()
    };
    let f = Findings::open(&cfg, &dir).expect("open");
    let attacker: IpAddr = "203.0.113.9".parse().expect("ip");
    let now = super::now_ms();
    for _ in 0..10 {
        let v = verdict(Action::Block, "sqli-union-select", Severity::Critical);
        f.record(&v, &facts(attacker, "/search"), now);
    }
    for i in 0..20_000u32 {
        let v = verdict(Action::Pass, "sqli-word", Severity::Notice);
        let src = IpAddr::from([198, 51, (i >> 8) as u8, i as u8]);
        f.record(&v, &facts(src, &format!("/page/{i}")), now);
    }
    wait_idle(&f);
    let by_block = Filter {
        verdict: Some("block".into()),
        ..Filter::default()
    };
    let s = f.store.as_ref().expect("store");
    let left = s.page(&by_block, 100, None).0.len();
    let skipped = f.keep.skipped.load(Ordering::Relaxed);
    drop(f);
    let _ = std::fs::remove_dir_all(&dir);
    (left, skipped)
}

#[test]
fn blocked_findings_survive_a_flood_of_passed_ones() {
    let (left, skipped) = blocked_left_after_a_flood(Keep::Sampled);
    assert_eq!(left, 10, "every blocked finding is still there");
    assert_eq!(
        skipped,
        20_000 - 120,
        "the default budget: 120 passed a minute"
    );
    // Keeping every finding, the same flood pushes them out of the cap.
    let (left, skipped) = blocked_left_after_a_flood(Keep::All);
    assert_eq!(left, 0, "keep = all: the flood evicted the attacks");
    assert_eq!(skipped, 0);
}

fn seen<'a>(source: &'a str, path: &'a str, rule: &'a str, verdict: &'a str) -> Seen<'a> {
    Seen {
        source,
        path,
        findings: vec![(rule, "sqli"), (rule, "sqli")],
        verdict,
    }
}

#[test]
fn a_heavy_path_stays_first_under_a_flood_of_unique_ones() {
    let live = Live::default();
    let t = 1_800_000_000;
    let sources: Vec<String> = (0..20_000)
        .map(|i| format!("10.0.{}.{}", i / 256, i % 256))
        .collect();
    for (i, src) in sources.iter().enumerate() {
        let path = format!("/noise/{i}");
        live.add(t + (i as u64 % 50), &seen(src, &path, "noise-rule", "pass"));
        if i % 400 == 0 {
            live.add(
                t + 1,
                &seen("203.0.113.9", "/login", "sqli-union-select", "block"),
            );
        }
    }
    let tops = live.tops(t + 50, 10);
    let h = &tops.hour;
    assert_eq!(h.requests, 20_050);
    assert_eq!(h.blocked, 50);
    assert!(h.approximate);
    // Estimates: a unique key's sits near 1, but now and then one of
    // 20,000 lands on counters the others crowded (about 3 runs in 100
    // one reached the heavy key's count). The heavy key stays in the top
    // three, with a count near its own.
    let near_top = |rows: &[(String, u64)], key: &str| {
        rows.iter()
            .take(3)
            .find(|r| r.0 == key)
            .map(|r| r.1)
            .unwrap_or_else(|| panic!("{key} not in the top three: {rows:?}"))
    };
    assert!(
        (40..=80).contains(&near_top(&h.paths, "/login")),
        "{:?}",
        h.paths
    );
    assert!(
        (40..=80).contains(&near_top(&h.sources, "203.0.113.9")),
        "{:?}",
        h.sources
    );
    // Most unique keys read far below it.
    assert!(
        h.sources.iter().filter(|r| r.1 >= 40).count() <= 3,
        "{:?}",
        h.sources
    );
    assert_eq!(h.rules[0], ("noise-rule".to_string(), 20_000));
    assert_eq!(h.rules[1].0, "sqli-union-select");
    assert_eq!(h.kinds, vec![("sqli".to_string(), 20_050)]);
    assert!(h.paths.len() <= 10);
}

#[test]
fn windows_count_exactly_when_small_and_forget_their_minutes() {
    let live = Live::default();
    let m = 29_000_000u64; // a Unix minute
    for _ in 0..3 {
        live.add(m * 60 + 5, &seen("198.51.100.7", "/a", "r1", "block"));
    }
    live.add(
        m * 60 + 30,
        &seen("198.51.100.8", "/b", "r2", "would_block"),
    );
    let t = live.tops(m * 60 + 59, 10);
    assert!(!t.hour.approximate);
    assert_eq!(t.hour.paths, vec![("/a".into(), 3), ("/b".into(), 1)]);
    assert_eq!(
        (t.short.paths.clone(), t.short.requests),
        (t.hour.paths.clone(), 4)
    );
    assert_eq!((t.hour.blocked, t.hour.would_block), (3, 1));
    // Six minutes on: gone from the short window, still in the hour.
    live.add((m + 6) * 60, &seen("198.51.100.9", "/c", "r3", "pass"));
    let t = live.tops((m + 6) * 60 + 1, 10);
    assert_eq!(t.short.paths, vec![("/c".into(), 1)]);
    assert_eq!(t.short.requests, 1);
    assert_eq!(t.hour.requests, 5);
    assert_eq!(t.hour.paths[0], ("/a".into(), 3));
    // An hour after the first minute, only the newest is left; two hours
    // on, nothing.
    let t = live.tops((m + 60) * 60, 10);
    assert_eq!(t.hour.paths, vec![("/c".into(), 1)]);
    assert_eq!(t.hour.requests, 1);
    let t = live.tops((m + 120) * 60, 10);
    assert!(t.hour.paths.is_empty() && t.hour.requests == 0);
    // A clock that goes back counts into the newest minute.
    live.add((m + 100) * 60, &seen("198.51.100.9", "/d", "r3", "pass"));
    assert_eq!(
        live.tops((m + 120) * 60, 10).hour.paths,
        vec![("/d".into(), 1)]
    );
}

#[test]
fn long_keys_are_cut_and_counted_as_one() {
    let live = Live::default();
    let long = format!("/{}", "é".repeat(500));
    live.add(60, &seen("1.2.3.4", &long, "r", "pass"));
    live.add(60, &seen("1.2.3.4", &format!("{long}x"), "r", "pass"));
    let t = live.tops(61, 10);
    assert_eq!(t.hour.paths.len(), 1);
    assert_eq!(t.hour.paths[0].0.chars().count(), super::live::MAX_KEY);
    assert_eq!(t.hour.paths[0].1, 2);
}

#[test]
fn the_mirror_s_blocks_are_would_block_with_their_origin() {
    let v = verdict(Action::Block, "sqli-union-select", Severity::Critical);
    let mut f = facts("198.51.100.7".parse().expect("ip"), "/item");
    f.origin = Origin::Mirror;
    f.request_id = "";
    let recs = FindingRecord::from_verdict(&v, &f, 5);
    assert_eq!(recs[0].origin, "mirror");
    assert_eq!(recs[0].verdict, "would_block");
    f.origin = Origin::Proxy;
    let recs = FindingRecord::from_verdict(&v, &f, 5);
    assert_eq!(
        (recs[0].origin.as_str(), recs[0].verdict.as_str()),
        ("proxy", "block")
    );
}

proptest! {
    #[test]
    fn config_keeps_only_known_policies_and_budgets(keep in "[a-z]{0,8}", budget in any::<u32>()) {
        let text = format!("keep = \"{keep}\"\npassed_per_minute = {budget}\n");
        let parsed: Result<FindingsConfig, _> = toml::from_str(&text);
        match parsed {
            Ok(cfg) => {
                prop_assert!(["all", "sampled", "blocked"].contains(&keep.as_str()));
                prop_assert_eq!(cfg.validate().is_ok(), (1..=100_000).contains(&budget));
            }
            Err(e) => {
                prop_assert!(!["all", "sampled", "blocked"].contains(&keep.as_str()));
                prop_assert!(e.to_string().contains("sampled"), "{}", e);
            }
        }
    }
}

#[test]
fn config_errors_name_the_key_and_what_is_allowed() {
    let cfg: FindingsConfig = toml::from_str("passed_per_minute = 0").expect("parses");
    let e = cfg.validate().expect_err("0 is refused").to_string();
    assert!(
        e.contains("findings.passed_per_minute") && e.contains("blocked"),
        "{e}"
    );
    let e = toml::from_str::<FindingsConfig>("keep = \"some\"")
        .expect_err("unknown policy")
        .to_string();
    assert!(e.contains("all") && e.contains("blocked"), "{e}");
    assert_eq!(FindingsConfig::default().keep, Keep::Sampled);
}
