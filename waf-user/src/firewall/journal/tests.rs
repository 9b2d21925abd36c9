//! The journal against a real directory: round trips, torn tails,
//! compaction, migration of the earlier format.

use std::{path::PathBuf, sync::Arc};

use ipnet::IpNet;

use super::*;
use crate::firewall::types::{Ban, BanMeta, BanSource, ListKind, ListRecord, Offences};

fn tmpdir(tag: &str) -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let d = std::env::temp_dir().join(format!(
        "waf-journal-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn ban(net: &str, expires: u32, reason: &str) -> Record {
    Record::Ban(Ban {
        net: net.parse().unwrap(),
        meta: BanMeta {
            created: 1_700_000_000,
            expires,
            offence: 1,
            source: BanSource::Manual,
            reason: Arc::from(reason),
            origin: crate::firewall::Origin::NONE,
        },
    })
}

fn sample() -> Vec<Record> {
    vec![
        ban("192.0.2.1/32", 0, "a"),
        ban("2001:db8::/64", 1_800_000_000, "b"),
        ban("192.0.2.2/32", 0, "a"),
        Record::Unban("192.0.2.2/32".parse().unwrap()),
        // A fleet ban keeps its origin through the log and the snapshot.
        Record::Ban(Ban {
            net: "203.0.113.0/24".parse().unwrap(),
            meta: BanMeta {
                created: 1_700_000_000,
                expires: 1_800_000_000,
                offence: 2,
                source: BanSource::Fleet,
                reason: Arc::from("b"),
                origin: crate::firewall::Origin::of("web-2"),
            },
        }),
        Record::ListAdd(
            ListKind::Allow,
            "10.0.0.0/8".parse().unwrap(),
            ListRecord {
                comment: Arc::from("office"),
                created: 1,
            },
        ),
        Record::History(
            "198.51.100.9/32".parse().unwrap(),
            Offences {
                count: 2,
                last_end: 5,
                recent: [4, 3, 0, 0],
            },
        ),
        Record::Mode {
            monitor: None,
            emergency: Some(true),
        },
    ]
}

fn expected() -> State {
    let mut s = State::default();
    for r in sample() {
        s.apply(r);
    }
    s
}

fn write_all(dir: &Path, records: &[Record]) {
    let (mut j, _, _) = Journal::open(dir).unwrap();
    for r in records {
        j.append(r);
    }
    j.commit(Vec::new());
}

#[test]
fn records_survive_a_restart() {
    let dir = tmpdir("restart");
    write_all(&dir, &sample());
    let (_, state, report) = Journal::open(&dir).unwrap();
    assert_eq!(state, expected());
    assert_eq!(report.records, sample().len() as u64);
    assert!(report.damaged.is_empty());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn every_ban_made_is_written_to_the_ledger() {
    let dir = tmpdir("ledger");
    write_all(&dir, &sample());
    let mut got = Vec::new();
    let st = ledger::read(&dir, 0, |e| got.push((e.net, e.source, e.origin)));
    assert_eq!(st.unreadable, 0);
    let want = [
        ("192.0.2.1/32", "manual", None),
        ("2001:db8::/64", "manual", None),
        ("192.0.2.2/32", "manual", None),
        ("203.0.113.0/24", "fleet", Some("web-2")),
    ];
    let got: Vec<(&str, &str, Option<&str>)> = got
        .iter()
        .map(|(n, s, o)| (n.as_str(), s.as_str(), o.as_deref()))
        .collect();
    assert_eq!(got, want);
    // Compaction leaves the ledger alone: the unbanned ban is still there.
    let (mut j, state, _) = Journal::open(&dir).unwrap();
    j.compact(state);
    j.wait_compaction();
    drop(j);
    assert_eq!(ledger::read(&dir, 0, |_| {}).lines, 4);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn acks_run_after_the_batch_is_written() {
    let dir = tmpdir("acks");
    let (mut j, _, _) = Journal::open(&dir).unwrap();
    j.append(&sample()[0]);
    let (tx, rx) = mpsc::channel();
    j.commit(vec![Box::new(move |r| tx.send(r).unwrap())]);
    assert_eq!(rx.recv().unwrap(), Ok(()));
    // Durable now: a second reader sees it while the first is still open.
    let seg = segments(&dir).unwrap();
    let mut s = State::default();
    let mut rep = ReplayReport::default();
    replay_segment(&segment(&dir, seg[0]), &mut s, &mut rep).unwrap();
    assert_eq!(s.bans.len(), 1);
    drop(j);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_torn_tail_is_skipped_and_counted() {
    let dir = tmpdir("torn");
    write_all(&dir, &sample());
    let seg = segments(&dir).unwrap();
    let path = segment(&dir, *seg.last().unwrap());
    let mut bytes = std::fs::read(&path).unwrap();
    let full = bytes.len();
    // A crash in the middle of the last record.
    let mut extra = Vec::new();
    codec::write_record(&mut extra, &ban("203.0.113.1/32", 0, "torn"));
    bytes.extend_from_slice(&extra[..extra.len() - 3]);
    std::fs::write(&path, &bytes).unwrap();
    let (_, state, report) = Journal::open(&dir).unwrap();
    assert_eq!(state, expected());
    assert_eq!(report.damaged.len(), 1, "{:?}", report.damaged);
    assert_eq!(report.skipped_bytes, (bytes.len() - full) as u64);
    // New records go to a new segment, after the damage, and are read.
    let (mut j, _, _) = Journal::open(&dir).unwrap();
    j.append(&ban("203.0.113.2/32", 0, "after"));
    drop(j);
    let (_, state, _) = Journal::open(&dir).unwrap();
    assert!(
        state
            .bans
            .contains_key(&"203.0.113.2/32".parse::<IpNet>().unwrap())
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn compaction_keeps_every_fact_and_drops_the_covered_log() {
    let dir = tmpdir("compact");
    let (mut j, _, _) = Journal::open(&dir).unwrap();
    let mut state = State::default();
    for r in sample() {
        j.append(&r);
        state.apply(r);
    }
    // Churn: bans made and lifted.
    for i in 0..2000u32 {
        let net = IpNet::from(std::net::IpAddr::V4(std::net::Ipv4Addr::from(
            0x6440_0000 + i,
        )));
        let r = ban(&net.to_string(), 0, "churn");
        j.append(&r);
        state.apply(r);
        if i % 2 == 0 {
            let r = Record::Unban(net);
            j.append(&r);
            state.apply(r);
        }
    }
    j.commit(Vec::new());
    j.compact(state.clone());
    j.wait_compaction();
    // After the snapshot, more changes land in the new segment.
    let r = ban("198.51.100.77/32", 0, "late");
    j.append(&r);
    state.apply(r);
    drop(j);
    assert_eq!(segments(&dir).unwrap().len(), 1, "covered segments removed");
    let (j, back, report) = Journal::open(&dir).unwrap();
    assert_eq!(back, state);
    assert_eq!(report.snapshot_bans, 1003);
    assert!(report.damaged.is_empty(), "{:?}", report.damaged);
    assert!(j.health().errors.load(Ordering::Relaxed) == 0);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_damaged_snapshot_is_never_fatal() {
    let dir = tmpdir("badsnap");
    let mut s = expected();
    s.bans.insert(
        "192.0.2.99/32".parse().unwrap(),
        BanMeta {
            created: 1,
            expires: 0,
            offence: 1,
            source: BanSource::Import,
            reason: Arc::from("x"),
            origin: crate::firewall::Origin::NONE,
        },
    );
    std::fs::create_dir_all(&dir).unwrap();
    snapshot::write(&dir, 0, &s).unwrap();
    let p = dir.join(SNAPSHOT);
    let bytes = std::fs::read(&p).unwrap();
    std::fs::write(&p, &bytes[..bytes.len() - 5]).unwrap();
    let (_, back, report) = Journal::open(&dir).unwrap();
    assert_eq!(back.bans.len(), s.bans.len(), "every ban before the damage");
    assert_eq!(report.damaged.len(), 1, "{:?}", report.damaged);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_json_journal_is_migrated_once() {
    let dir = tmpdir("v1");
    std::fs::create_dir_all(&dir).unwrap();
    let v1 = [
        r#"{"op":"ban","net":"192.0.2.1/32","reason":"old","source":"detection","created":1700000000,"expires":null,"offence":2}"#,
        r#"{"op":"history","net":"192.0.2.1/32","offences":{"count":2,"last_end":0}}"#,
        r#"{"op":"ban","net":"192.0.2.2/32","reason":"gone","source":"manual","created":1,"expires":5,"offence":1}"#,
        r#"{"op":"unban","net":"192.0.2.2/32"}"#,
        r#"{"op":"history","net":"192.0.2.2/32","offences":{"count":1,"last_end":7}}"#,
        r#"{"op":"list-add","list":"block","entry":{"net":"203.0.113.0/24","comment":"c","created":3}}"#,
        r#"{"op":"mode","monitor":true,"emergency":null}"#,
        r#"{"op":"ban","net":"19"#,
    ];
    std::fs::write(dir.join(LEGACY), v1.join("\n")).unwrap();
    let (j, state, report) = Journal::open(&dir).unwrap();
    drop(j);
    assert_eq!(report.migrated_v1, Some(7));
    let b = &state.bans[&"192.0.2.1/32".parse::<IpNet>().unwrap()];
    assert_eq!(
        (b.offence, b.source, &*b.reason),
        (2, BanSource::Detection, "old")
    );
    assert_eq!(state.bans.len(), 1);
    assert_eq!(state.history.len(), 1, "only the unbanned source's memory");
    assert_eq!(state.block.len(), 1);
    assert_eq!(state.monitor, Some(true));
    assert!(!dir.join(LEGACY).exists());
    // Once: the next start reads the binary journal.
    let (_, again, report) = Journal::open(&dir).unwrap();
    assert_eq!(report.migrated_v1, None);
    assert_eq!(again, state);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_ban_takes_less_than_64_bytes_on_disk() {
    let dir = tmpdir("size");
    let (mut j, _, _) = Journal::open(&dir).unwrap();
    let mut state = State::default();
    for i in 0..10_000u32 {
        let net = if i % 2 == 0 {
            IpNet::from(std::net::IpAddr::V4(std::net::Ipv4Addr::from(
                0x6440_0000 + i,
            )))
        } else {
            IpNet::from(std::net::IpAddr::V6(std::net::Ipv6Addr::from(
                (0x2001_0db8u128 << 96) | u128::from(i) << 64,
            )))
        };
        let r = ban(
            &net.to_string(),
            1_900_000_000,
            "detection: sql injection at query:id",
        );
        j.append(&r);
        state.apply(r);
    }
    j.commit(Vec::new());
    let log = j.disk_bytes() as f64 / 10_000.0;
    j.compact(state);
    j.wait_compaction();
    let snap = j.disk_bytes() as f64 / 10_000.0;
    drop(j);
    assert!(log < 100.0, "log: {log} B a ban");
    assert!(snap < 64.0, "snapshot: {snap} B a ban");
    std::fs::remove_dir_all(&dir).unwrap();
}
