//! Tests of the report aggregation: the capped counter, the hourly
//! buckets from an access log, bans, and a whole report.

use std::{net::IpAddr, sync::Arc};

use proptest::prelude::*;

use super::{
    Sources, TopK,
    accesslog::{Fate, Hours, fate},
    ban_summary, build, parse_since,
};
use crate::{
    findings::{FindingRecord, Store},
    firewall::{Ban, BanMeta, BanSource, Origin},
};

fn temp(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("waf-report-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

#[test]
fn the_heavy_keys_survive_the_cap() {
    let mut t = TopK::new(100);
    for i in 0..100_000u64 {
        t.add(&format!("noise-{i}"), 1);
        if i % 10 == 0 {
            t.add("heavy", 1);
        }
    }
    assert!(t.len() <= 100);
    assert!(t.pruned);
    let top = t.top(1);
    assert_eq!(top[0].0, "heavy");
}

proptest! {
    #[test]
    fn the_counter_never_holds_more_than_its_cap(keys in proptest::collection::vec("[a-z]{1,300}", 0..500),
                                                 cap in 2usize..50) {
        let mut t = TopK::new(cap);
        for k in &keys {
            t.add(k, 1);
            prop_assert!(t.len() <= cap);
        }
        for (k, _) in t.top(cap) {
            prop_assert!(k.len() <= super::topk::MAX_KEY);
        }
        if !t.pruned {
            let total: u64 = t.top(cap).iter().map(|(_, c)| c).sum();
            prop_assert_eq!(total, keys.len() as u64);
        }
    }
}

fn ban(addr: &str, created: u32, offence: u16, source: BanSource, reason: &str) -> Ban {
    Ban {
        net: addr.parse().expect("net"),
        meta: BanMeta {
            created,
            expires: 0,
            offence,
            source,
            reason: Arc::from(reason),
            origin: Origin::default(),
        },
    }
}

#[test]
fn bans_in_the_window_are_counted_by_reason_and_repeat() {
    let bans = vec![
        ban("198.51.100.1/32", 100, 1, BanSource::Detection, "sqli"),
        ban("198.51.100.2/32", 200, 2, BanSource::Detection, "sqli"),
        ban("198.51.100.3/32", 300, 3, BanSource::RateLimit, "rate"),
        ban("198.51.100.4/32", 10, 5, BanSource::Manual, "old"),
    ];
    let s = ban_summary(&mut bans.into_iter(), Vec::new(), 50);
    assert_eq!(s.total, 3);
    assert_eq!(s.repeat_offenders, 2);
    assert_eq!(s.by_reason[0].key, "sqli");
    assert_eq!(s.by_reason[0].count, 2);
    assert_eq!(s.by_source[0].key, "detection");
    assert_eq!(s.in_force, 3);
}

#[test]
fn ended_bans_come_from_the_ledger_each_once() {
    use crate::firewall::journal::ledger;
    let mut bytes = Vec::new();
    // Ended: made at 100 and 150 (the second a repeat, extended once so
    // written twice); in force: made at 200, also in the ledger.
    let ended = ban("203.0.113.1/32", 100, 1, BanSource::Detection, "sqli");
    let repeat = ban("203.0.113.2/32", 150, 2, BanSource::RateLimit, "rate");
    let live = ban("203.0.113.3/32", 200, 1, BanSource::Manual, "manual");
    for b in [&ended, &repeat, &repeat, &live] {
        ledger::line(&mut bytes, b);
    }
    let entries: Vec<ledger::Entry> = bytes
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).expect("entry"))
        .collect();
    // A ban in force the ledger never saw (an import) counts too.
    let imported = ban("203.0.113.4/32", 210, 1, BanSource::Import, "feed");
    let s = ban_summary(&mut vec![live, imported].into_iter(), entries, 50);
    assert_eq!((s.total, s.in_force, s.repeat_offenders), (4, 2, 1));
    let sources: Vec<(&str, u64)> = s
        .by_source
        .iter()
        .map(|c| (c.key.as_str(), c.count))
        .collect();
    for want in [
        ("detection", 1),
        ("rate-limit", 1),
        ("manual", 1),
        ("import", 1),
    ] {
        assert!(sources.contains(&want), "{sources:?}");
    }
}

#[test]
fn windows_are_bounded() {
    assert!(parse_since("24h").is_ok());
    assert!(parse_since("31d").is_ok());
    assert!(parse_since("32d").is_err());
    assert!(parse_since("0s").is_err());
    assert!(parse_since("soon").is_err());
    let mut h = Hours::new(7200 + 5, 7200 + 3 * 3600);
    assert!(h.add(7200 + 10, Fate::Blocked));
    assert!(h.add(7200 + 3600 + 1, Fate::Passed));
    assert!(h.add(7200 + 3600 + 2, Fate::Challenged));
    assert!(!h.add(100, Fate::Passed));
    assert!(!h.add(u64::MAX, Fate::Passed));
    let rows = h.rows();
    assert_eq!(rows.len(), 4);
    assert_eq!(
        (rows[0].blocked, rows[1].passed, rows[1].challenged),
        (1, 1, 1)
    );
}

#[test]
fn a_request_s_fate_is_its_verdict_not_its_status() {
    // The application's own 403 passed the firewall; a rate limit's 429 and
    // a failed challenge did not.
    assert_eq!(fate("pass", 403), Fate::Passed);
    assert_eq!(fate("would_block", 200), Fate::Passed);
    assert_eq!(fate("block", 403), Fate::Blocked);
    assert_eq!(fate("rate_limited", 429), Fate::Blocked);
    assert_eq!(fate("challenge_failed", 403), Fate::Blocked);
    assert_eq!(fate("challenged", 403), Fate::Challenged);
    // Without a verdict, the status decides; an unknown verdict counts as
    // refused only when its status is an error.
    assert_eq!(fate("", 403), Fate::Blocked);
    assert_eq!(fate("", 404), Fate::Passed);
    assert_eq!(fate("new_verdict", 451), Fate::Blocked);
    assert_eq!(fate("new_verdict", 200), Fate::Passed);
}

#[test]
fn a_report_ranks_the_attacker_and_reads_the_log() {
    let dir = temp("whole");
    let store = Store::open(&dir.join("findings"), 1 << 20).expect("store");
    let now = crate::values::unix_now();
    let rec = |source: &str, rule: &str| FindingRecord {
        id: 0,
        time_ms: now * 1000,
        source: source.into(),
        method: "GET".into(),
        host: "h".into(),
        path: "/search".into(),
        kind: "sqli".into(),
        location: "query:q".into(),
        part: "query".into(),
        param: "q".into(),
        rule: rule.into(),
        snippet: String::new(),
        raw: String::new(),
        score: 5,
        verdict: "block".into(),
        request_id: "1".into(),
        origin: "proxy".into(),
        repeats: 0,
    };
    let mut recs: Vec<FindingRecord> = (0..5)
        .map(|_| rec("203.0.113.9", "sqli-union-select"))
        .collect();
    recs.push(rec("198.51.100.7", "xss-script-tag"));
    store.record(recs);
    let t = std::time::Instant::now();
    while store
        .stats
        .written
        .load(std::sync::atomic::Ordering::Relaxed)
        < 6
    {
        assert!(t.elapsed().as_secs() < 10);
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let log = dir.join("access.log");
    let time = crate::values::rfc3339(now);
    let long = "x".repeat(super::MAX_LINE + 10);
    std::fs::write(
        &log,
        format!(
            "{{\"time\":\"{time}\",\"remote\":\"203.0.113.9\",\"method\":\"GET\",\"target\":\"/\",\"status\":403,\"verdict\":\"block\"}}\n\
             {{\"time\":\"{time}\",\"remote\":\"192.0.2.1\",\"method\":\"GET\",\"target\":\"/\",\"status\":200,\"verdict\":\"pass\"}}\n\
             {{\"time\":\"{time}\",\"remote\":\"192.0.2.1\",\"method\":\"GET\",\"target\":\"/admin\",\"status\":403,\"verdict\":\"pass\"}}\n\
             {{\"time\":\"{time}\",\"remote\":\"192.0.2.2\",\"method\":\"GET\",\"target\":\"/\",\"status\":429,\"verdict\":\"rate_limited\"}}\n\
             {{\"time\":\"{time}\",\"remote\":\"192.0.2.3\",\"method\":\"GET\",\"target\":\"/\",\"status\":403,\"verdict\":\"challenged\"}}\n\
             {long}\nnot a log line\n"
        ),
    )
    .expect("log");
    let geo = |ip: IpAddr| {
        if ip.to_string() == "203.0.113.9" {
            (Some(*b"NL"), Some(64500))
        } else {
            (None, None)
        }
    };
    let r = build(Sources {
        since: now - 3600,
        until: now + 1,
        findings: Some(&store),
        access_log: Some(&log),
        ledger: None,
        bans: &mut std::iter::empty(),
        geo: &geo,
    });
    assert_eq!(r.findings, 6);
    assert_eq!(r.top_sources[0].source, "203.0.113.9");
    assert_eq!(r.top_sources[0].count, 5);
    assert_eq!(r.top_sources[0].country.as_deref(), Some("NL"));
    assert_eq!(r.top_sources[0].asn, Some(64500));
    assert_eq!(r.top_rules[0].key, "sqli-union-select");
    assert_eq!(r.top_categories[0].key, "sqli");
    assert_eq!(r.top_paths[0].key, "/search");
    let blocked: u64 = r.hours.iter().map(|h| h.blocked).sum();
    let passed: u64 = r.hours.iter().map(|h| h.passed).sum();
    let challenged: u64 = r.hours.iter().map(|h| h.challenged).sum();
    assert_eq!((blocked, challenged, passed), (2, 1, 2));
    assert_eq!(r.inputs.log_unreadable, 2);
    assert!(!r.approximate);
    assert!(super::render(&r).contains("203.0.113.9"));
    let _ = std::fs::remove_dir_all(&dir);
}
