//! Bans shared across hosts: three daemons (a, b, c), each with its own XDP
//! program in its own namespace, share bans through a real nats-server with
//! JetStream; an attacker pings them. A ban on one host drops the attacker
//! at XDP on the others; its unban readmits it there; an allowlist wins
//! over the fleet.

use std::time::{Duration, Instant};

use serde_json::Value;

use waf_tests::fleet_lab::*;

#[test]
fn a_ban_on_one_host_drops_at_xdp_on_the_others_and_its_unban_readmits() {
    let f = Fleet::new(["", "", ""]);
    for (h, (node, _)) in NODES.iter().enumerate() {
        assert!(f.reaches(h), "host {node} reachable before any ban");
    }
    // A ban wider than max_prefix_v4, forced on a, stays a's: each host
    // holds its own bounds (published first, so applied or refused before
    // the ban below arrives).
    let out = f.daemons[0].cli(&["bans", "add", "16.0.0.0/4", "--force"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = f.daemons[0].cli(&[
        "bans",
        "add",
        ATTACKER4,
        "--duration",
        "1h",
        "--reason",
        "fleet test",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    for h in [1, 2] {
        wait_until(&format!("host {} to apply a's ban", NODES[h].0), || {
            f.ban_of(h).is_some()
        });
        let b = f.ban_of(h).unwrap();
        let (code, wide) = f.daemons[h].api("GET", "/v1/bans/16.0.0.0/4", None);
        assert_eq!(code, 404, "a forced /4 applied on {}: {wide}", NODES[h].0);
        let st = f.daemons[h].api("GET", "/v1/fleet", None).1;
        assert_eq!(st["refused_too_wide"], 1, "the /4 refused once: {st}");
        assert_eq!(b["source"], "fleet", "{b}");
        assert_eq!(b["origin"], "a", "{b}");
        assert_eq!(b["reason"], "fleet test", "{b}");
        let left = b["remaining_s"].as_u64().unwrap();
        assert!((3500..=3600).contains(&left), "the expiry travels: {b}");
        let before = f.xdp_banned_packets(h);
        assert!(!f.reaches(h), "attacker dropped on host {}", NODES[h].0);
        assert!(
            f.xdp_banned_packets(h) > before,
            "dropped at XDP by the ban on host {}",
            NODES[h].0
        );
    }
    // The origin's own ban is not the fleet's, and nothing echoed back.
    let a = f.ban_of(0).expect("a keeps its ban");
    assert_eq!(a["source"], "manual", "{a}");
    assert!(a["origin"].is_null(), "{a}");
    let st = f.daemons[0].api("GET", "/v1/fleet", None).1;
    assert!(st["published"].as_u64().unwrap() >= 1, "{st}");
    assert_eq!(st["applied"], 0, "a applies nothing of its own: {st}");
    let out = f.daemons[1].cli(&["bans", "list"]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("fleet (a)"), "{table}");

    let out = f.daemons[0].cli(&["bans", "rm", ATTACKER4]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for h in [1, 2] {
        wait_until(&format!("host {} to lift the ban", NODES[h].0), || {
            f.ban_of(h).is_none()
        });
        assert!(f.reaches(h), "attacker readmitted on host {}", NODES[h].0);
    }
    let st = f.daemons[1].api("GET", "/v1/fleet", None).1;
    assert!(
        st["applied"].as_u64().unwrap() >= 2,
        "ban and unban: {st}\n{}",
        f.logs()
    );
    assert_eq!(st["node"], "b");
    let out = f.daemons[1].cli(&["fleet", "status"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("fleet: connected") && text.contains("node: b"),
        "{text}"
    );
    let m = f.daemons[1].api("GET", "/metrics", None).1;
    let m = m.as_str().unwrap_or_default();
    assert!(
        m.contains("waf_fleet_connected 1") && m.contains("waf_fleet_applied_total "),
        "{m}"
    );

    // Expiry: a short ban runs out on every host, and its origin (only
    // it, well before the grace period) deletes its key.
    let published = |h: usize| fleet_status(&f, h)["published"].as_u64().unwrap();
    let before: Vec<u64> = (0..3).map(published).collect();
    let out = f.daemons[0].cli(&["bans", "add", ATTACKER4, "--duration", "3s"]);
    assert!(out.status.success());
    for h in [1, 2] {
        wait_until(
            &format!("host {} to apply the short ban", NODES[h].0),
            || f.ban_of(h).is_some(),
        );
    }
    for (h, (node, _)) in NODES.iter().enumerate() {
        wait_until(&format!("the ban to run out on host {node}"), || {
            f.ban_of(h).is_none()
        });
    }
    wait_for(
        WAIT,
        &format!("a to delete its expired key: {}", fleet_status(&f, 0)),
        || published(0) == before[0] + 2,
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(published(0), before[0] + 2, "a put and a delete, once each");
    for h in [1, 2] {
        assert_eq!(published(h), before[h], "{} deleted nothing", NODES[h].0);
        assert!(f.reaches(h), "attacker readmitted on host {}", NODES[h].0);
        let st = fleet_status(&f, h);
        assert_eq!(st["lag"], 0, "{st}");
    }
}

#[test]
fn the_local_allowlist_wins_over_a_fleet_ban() {
    let allow = format!("[allowlist]\ncidrs = [\"{ATTACKER4}\"]\n");
    let f = Fleet::new(["", "", &allow]);
    let out = f.daemons[0].cli(&["bans", "add", ATTACKER4, "--reason", "fleet test"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_until("host b to apply a's ban", || f.ban_of(1).is_some());
    wait_until("host c to refuse it", || {
        f.daemons[2].api("GET", "/v1/fleet", None).1["refused_allowlist"]
            .as_u64()
            .unwrap_or(0)
            >= 1
    });
    assert!(f.ban_of(2).is_none(), "no ban on c");
    assert!(f.reaches(2), "the attacker still reaches c");
    assert!(!f.reaches(1), "but not b");
    let st = f.daemons[2].api("GET", "/v1/fleet", None).1;
    assert_eq!(
        st["refused_allowlist"], 1,
        "refused once, not in a loop: {st}"
    );
    assert!(
        f.daemons[2].log_text().contains("allowlist protects it"),
        "logged: {}",
        f.logs()
    );
}

#[test]
fn bans_and_unbans_made_with_the_broker_away_reach_the_others_once_it_is_back() {
    let mut f = Fleet::new(["", "", ""]);
    f.brokers[0].stop();
    wait_until("a to see the broker gone", || {
        f.daemons[0].api("GET", "/v1/fleet", None).1["connected"] == false
    });
    let t = Instant::now();
    let out = f.daemons[0].cli(&["bans", "add", ATTACKER4, "--duration", "1h"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "a local ban never waits for the broker ({:?})",
        t.elapsed()
    );
    assert!(!f.reaches(0), "a enforces at once, broker or not");
    assert!(f.ban_of(1).is_none() && f.reaches(1), "b cannot know yet");
    let health = f.daemons[0].api("GET", "/v1/health", None).1;
    assert_eq!(health["fleet"]["connected"], false, "{health}");
    assert_eq!(
        health["fleet"]["outbox"], 1,
        "the ban waits in the outbox: {health}"
    );

    f.brokers[0].start_again();
    // Reconnecting and taking the watch again may wait for the client's
    // heartbeats: a longer bound than the other waits.
    for h in [1, 2] {
        let start = Instant::now();
        while f.ban_of(h).is_none() {
            assert!(
                start.elapsed() < Duration::from_secs(40),
                "host {} did not apply the ban made while the broker was away: a {}, b {}\n{}",
                NODES[h].0,
                f.daemons[0].api("GET", "/v1/fleet", None).1,
                f.daemons[1].api("GET", "/v1/fleet", None).1,
                f.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(!f.reaches(h), "attacker dropped on host {}", NODES[h].0);
    }
    let st = f.daemons[0].api("GET", "/v1/fleet", None).1;
    assert_eq!(st["connected"], true, "{st}");
    assert_eq!(st["dropped"], 0, "nothing lost: {st}");

    // An unban with the broker away too: the key's delete marker is its
    // last value, which the others read when they watch again.
    f.brokers[0].stop();
    wait_until("a to see the broker gone again", || {
        f.daemons[0].api("GET", "/v1/fleet", None).1["connected"] == false
    });
    let out = f.daemons[0].cli(&["bans", "rm", ATTACKER4]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        f.reaches(0) && f.ban_of(1).is_some(),
        "a readmits at once, b cannot know yet"
    );
    f.brokers[0].start_again();
    for h in [1, 2] {
        wait_for(
            Duration::from_secs(40),
            &format!(
                "host {} to lift the ban lifted while the broker was away",
                NODES[h].0
            ),
            || f.ban_of(h).is_none(),
        );
        assert!(f.reaches(h), "attacker readmitted on host {}", NODES[h].0);
    }
}

#[test]
fn a_three_server_cluster_keeps_sharing_bans_when_one_server_dies() {
    fn ban(f: &Fleet, addr: &str) {
        let out = f.daemons[0].cli(&["bans", "add", addr, "--reason", "cluster test"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    fn has(f: &Fleet, h: usize, addr: &str) -> bool {
        f.daemons[h].api("GET", &format!("/v1/bans/{addr}"), None).0 == 200
    }
    let mut f = Fleet::on_brokers(["", "", ""], &CLUSTER, "replicas = 3");
    ban(&f, "198.51.100.1");
    for h in [1, 2] {
        wait_until(
            &format!("host {} to apply the first ban", NODES[h].0),
            || has(&f, h, "198.51.100.1"),
        );
    }
    // The bucket's stream leader dies (kill -9): the R3 bucket keeps a
    // quorum on the other two and the clients move to them.
    let mut stream = None;
    wait_until("the cluster to report the bucket's stream", || {
        stream = f.stream();
        stream.is_some()
    });
    let (leader, replicas) = stream.unwrap();
    assert_eq!(replicas, 3, "the bucket is kept on three servers");
    let i: usize = leader
        .strip_prefix('s')
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("leader {leader:?} is not one of ours"));
    f.brokers[i].stop();
    ban(&f, "198.51.100.2");
    for h in [1, 2] {
        let start = Instant::now();
        while !has(&f, h, "198.51.100.2") {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "host {} did not apply a ban made after the stream leader died\n{}",
                NODES[h].0,
                f.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let st = f.daemons[0].api("GET", "/v1/fleet", None).1;
    assert!(st["published"].as_u64().unwrap() >= 2, "{st}\n{}", f.logs());
}

/// The proxy's port on every host (with an upstream on the host itself).
const PROXY_PORT: u16 = 8080;

fn attack(f: &Fleet, host: usize, n: usize) -> u16 {
    let raw = format!(
        "GET /search?q=1%27%20union%20select%20password%20from%20users--{n} HTTP/1.1\r\nHost: shop\r\nConnection: close\r\n\r\n"
    );
    let dst = format!("{}:{PROXY_PORT}", NODES[host].1);
    waf_tests::http_raw(&f.attacker, &dst, None, raw.as_bytes(), 1)
        .map(|(code, _)| code)
        .unwrap_or(0)
}

fn fleet_status(f: &Fleet, host: usize) -> Value {
    f.daemons[host].api("GET", "/v1/fleet", None).1
}

#[test]
fn an_attack_spread_over_the_hosts_is_banned_everywhere_after_strikes_in_total_once() {
    const STRIKES: usize = 4;
    let proxy = format!(
        "[proxy]\nlisten = \"0.0.0.0:{PROXY_PORT}\"\nupstream = \"http://127.0.0.1:8000\"\naccess_log = \"off\"\n\n\
         [ban_policy]\nstrikes = {STRIKES}\nwindow = \"5m\"\n"
    );
    let f = Fleet::new([&proxy, &proxy, &proxy]);
    let _upstreams: Vec<_> = (0..3)
        .map(|h| waf_tests::Upstream::start(f.host_netns(h), "127.0.0.1:8000"))
        .collect();
    // Round robin: attack i goes to host i % 3. Each host has seen fewer
    // than STRIKES attacks itself; the fleet's sum crosses the threshold.
    for i in 0..STRIKES {
        let h = i % 3;
        assert!(
            (0..3).all(|x| f.ban_of(x).is_none()),
            "banned before {STRIKES} strikes (after {i})\n{}",
            f.logs()
        );
        assert_eq!(
            attack(&f, h, i),
            403,
            "attack {i} blocked by host {}",
            NODES[h].0
        );
        if i + 1 < STRIKES {
            // The strike reaches the other hosts' windows (bounded wait:
            // the fleet shares strikes in milliseconds).
            for o in (0..3).filter(|o| *o != h) {
                let want = (0..=i).filter(|j| j % 3 != o).count() as u64;
                wait_until(&format!("host {} to count strike {i}", NODES[o].0), || {
                    fleet_status(&f, o)["strikes_received"].as_u64() == Some(want)
                });
            }
        }
    }
    let crossing = (STRIKES - 1) % 3;
    for (h, (node, _)) in NODES.iter().enumerate() {
        wait_until(&format!("host {node} to ban the attacker"), || {
            f.ban_of(h).is_some()
        });
        let b = f.ban_of(h).unwrap();
        assert_eq!(b["offence"], 1, "one attack, one offence on {node}: {b}");
        if h == crossing {
            assert_eq!(b["source"], "detection", "{b}");
        } else {
            assert_eq!(b["source"], "fleet", "{b}");
            assert_eq!(b["origin"], NODES[crossing].0, "{b}");
        }
        assert!(!f.reaches(h), "dropped at XDP on host {node}");
    }
    let published: u64 = (0..3)
        .map(|h| fleet_status(&f, h)["published"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(
        published,
        1,
        "one ban in the bucket for the whole attack\n{}",
        f.logs()
    );
    let sent: u64 = (0..3)
        .map(|h| fleet_status(&f, h)["strikes_sent"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(
        sent as usize,
        STRIKES - 1,
        "every strike but the banning one shared"
    );
}

#[test]
fn a_host_killed_and_restarted_converges_on_the_bucket() {
    let mut f = Fleet::new(["", "", ""]);
    let cli = |f: &Fleet, h: usize, args: &[&str]| {
        let out = f.daemons[h].cli(args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let has = |f: &Fleet, h: usize, addr: &str| {
        f.daemons[h].api("GET", &format!("/v1/bans/{addr}"), None).0 == 200
    };
    // Before: the attacker and a /24 banned on a, 198.51.100.9 on c.
    cli(&f, 0, &["bans", "add", ATTACKER4, "--duration", "1h"]);
    cli(
        &f,
        0,
        &["bans", "add", "203.0.113.0/24", "--duration", "1h"],
    );
    cli(&f, 2, &["bans", "add", "198.51.100.9", "--duration", "1h"]);
    wait_until("c to apply a's bans", || {
        has(&f, 2, ATTACKER4) && has(&f, 2, "203.0.113.0/24")
    });
    wait_until("a to apply c's ban", || has(&f, 0, "198.51.100.9"));
    assert!(!f.reaches(2));

    // c dies without a word; meanwhile the attacker's ban is lifted, a new
    // one is made, and c's own ban is lifted by an operator on a.
    f.daemons[2].kill9();
    cli(&f, 0, &["bans", "rm", ATTACKER4]);
    cli(&f, 0, &["bans", "add", "198.51.100.3", "--duration", "1h"]);
    cli(&f, 0, &["bans", "rm", "198.51.100.9"]);
    wait_until("b to follow", || {
        !has(&f, 1, ATTACKER4) && has(&f, 1, "198.51.100.3") && !has(&f, 1, "198.51.100.9")
    });

    f.daemons[2]
        .try_spawn_here()
        .unwrap_or_else(|e| panic!("{e}"));
    wait_until("c to catch up with the bucket", || {
        has(&f, 2, "198.51.100.3") && !has(&f, 2, ATTACKER4) && !has(&f, 2, "198.51.100.9")
    });
    assert!(has(&f, 2, "203.0.113.0/24"), "what stayed, stays");
    assert!(f.reaches(2), "the lifted ban stays lifted at XDP on c");
    // c's own ban, lifted elsewhere while it was away, does not come back.
    std::thread::sleep(Duration::from_millis(500));
    for (h, (node, _)) in NODES.iter().enumerate() {
        assert!(
            !has(&f, h, "198.51.100.9"),
            "host {node} has c's lifted ban\n{}",
            f.logs()
        );
    }
    let st = fleet_status(&f, 2);
    assert_eq!(st["connected"], true, "{st}");
    assert_eq!(st["outbox"], 0, "{st}");
}

#[test]
fn a_host_that_joins_afresh_reads_the_snapshot_then_the_changes_after_it() {
    let has = |f: &Fleet, h: usize, addr: &str| {
        f.daemons[h].api("GET", &format!("/v1/bans/{addr}"), None).0 == 200
    };
    // Snapshots from 4 keys on (10,000 by default), so the lab has one.
    let mut f = Fleet::on_brokers(["", "", ""], &[BROKER4], "snapshot_min_keys = 4");
    let addrs: Vec<String> = (1..=6).map(|i| format!("198.51.100.{i}")).collect();
    for a in &addrs[..5] {
        let out = f.daemons[0].cli(&["bans", "add", a, "--duration", "1h"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    wait_until("a snapshot of the bucket", || {
        (0..3).any(|h| fleet_status(&f, h)["snapshots_written"].as_u64() >= Some(1))
    });
    // c goes away and comes back with nothing: a fresh host, as far as
    // its journal tells. Meanwhile one ban is lifted and one is made.
    f.daemons[2].kill9();
    for entry in std::fs::read_dir(&f.daemons[2].state_dir)
        .unwrap()
        .flatten()
    {
        let name = entry.file_name().to_string_lossy().to_string();
        if name.starts_with("journal") || name.starts_with("snapshot") {
            std::fs::remove_file(entry.path()).unwrap();
        }
    }
    let out = f.daemons[0].cli(&["bans", "rm", &addrs[0]]);
    assert!(out.status.success());
    let out = f.daemons[0].cli(&["bans", "add", &addrs[5], "--duration", "1h"]);
    assert!(out.status.success());
    f.daemons[2]
        .try_spawn_here()
        .unwrap_or_else(|e| panic!("{e}"));
    let start = Instant::now();
    let joined = |f: &Fleet| (1..6).all(|i| has(f, 2, &addrs[i])) && !has(f, 2, &addrs[0]);
    while !joined(&f) {
        assert!(
            start.elapsed() < WAIT,
            "c did not join: {}\n{}",
            fleet_status(&f, 2),
            f.daemons[2].log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let st = fleet_status(&f, 2);
    assert_eq!(
        st["snapshots_read"],
        1,
        "joined from the snapshot: {st}\n{}",
        f.logs()
    );
    assert!(
        f.daemons[2]
            .log_text()
            .contains("joined from the bucket's snapshot"),
        "{}",
        f.logs()
    );
    let b = f.daemons[2]
        .api("GET", &format!("/v1/bans/{}", addrs[1]), None)
        .1;
    assert_eq!(
        (b["source"].as_str(), b["origin"].as_str()),
        (Some("fleet"), Some("a")),
        "{b}"
    );
    let left = b["remaining_s"].as_u64().unwrap();
    assert!(
        (3500..=3600).contains(&left),
        "the expiry travels in the snapshot: {b}"
    );
}

/// More bans at once than the link can follow change by change (the owner's
/// change queue holds 16,384): what the link lost on the way is found by
/// comparing this host's bans with the bucket, and every ban reaches every
/// host, each written once.
#[test]
fn a_wave_of_bans_larger_than_the_change_queue_reaches_every_host() {
    const N: usize = 40_000;
    let f = Fleet::new(["", "", ""]);
    let health = |h: usize| f.daemons[h].api("GET", "/v1/health", None).1["bans"].as_u64();
    let base: Vec<u64> = (0..3).map(|h| health(h).unwrap()).collect();
    let expires = waf_user::values::rfc3339(waf_user::values::unix_now() + 3600);
    let bans: Vec<Value> = (0..N)
        .map(|i| {
            serde_json::json!({
                "addr": format!("2001:db8:7:{:x}::1", i + 1),
                "reason": "wave",
                "expires": expires,
            })
        })
        .collect();
    let (code, report) = f.daemons[0].api(
        "POST",
        "/v1/import",
        Some(serde_json::json!({"version": 2, "bans": bans})),
    );
    assert_eq!(code, 200, "{report}");
    assert_eq!(report["bans"], N as u64, "{report}");
    for h in 1..3 {
        wait_for(
            Duration::from_secs(120),
            &format!("host {} to hold the wave", NODES[h].0),
            || health(h) >= Some(base[h] + N as u64),
        );
    }
    // A sample, ban by ban, on both.
    for i in (0..N).step_by(997) {
        let addr = format!("2001:db8:7:{:x}::1", i + 1);
        for (d, (node, _)) in f.daemons.iter().zip(NODES).skip(1) {
            let (code, b) = d.api("GET", &format!("/v1/bans/{addr}"), None);
            assert_eq!(code, 200, "{addr} on {node}: {b}");
            assert_eq!(b["origin"], "a", "{b}");
        }
    }
    let st = fleet_status(&f, 0);
    eprintln!("a after the wave: {st}");
    assert_eq!(st["outbox"], 0, "{st}");
    // Each written once, lost on the way or not.
    assert_eq!(st["published"], N as u64, "{st}");
}
