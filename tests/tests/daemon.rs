//! The daemon over real HTTP and a real kernel: `waf run` in the server
//! namespace of a lab, driven through its API and its CLI, checked with real
//! pings.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use waf_tests::{Lab, TEST_TOKEN, TestDaemon, api, api_with_token};

/// The values of `key` in a list answer: a page of bans or list entries,
/// or a plain array.
fn addrs(v: &Value, key: &str) -> Vec<String> {
    let items = if v["bans"].is_array() {
        &v["bans"]
    } else if v["entries"].is_array() {
        &v["entries"]
    } else {
        v
    };
    items
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|b| b[key].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn api_round_trips_and_error_statuses() {
    let lab = Lab::new();
    let d = TestDaemon::start(&lab, "[allowlist]\ncidrs = [\"192.0.2.10\"]\n");

    // Authentication.
    assert_eq!(api_with_token(&lab, "GET", "/v1/bans", None, None).0, 401);
    let (code, body) = api_with_token(&lab, "GET", "/v1/stats", None, Some("wrong-token-xxxxxxxx"));
    assert_eq!(code, 401);
    assert!(body["error"].as_str().unwrap().contains("token"), "{body}");

    // Bans: add, get, list, delete; address and prefix forms.
    let (code, b) = api(
        &lab,
        "POST",
        "/v1/bans",
        Some(json!({"addr": "198.51.100.7", "duration": "10m", "reason": "test"})),
    );
    assert_eq!(code, 201, "{b}");
    assert_eq!(b["addr"], "198.51.100.7");
    assert_eq!(b["source"], "manual");
    let rem = b["remaining_s"].as_u64().unwrap();
    assert!((598..=600).contains(&rem), "{b}");
    let (code, b) = api(
        &lab,
        "POST",
        "/v1/bans",
        Some(json!({"addr": "2001:db8:bad::/64", "duration": null})),
    );
    assert_eq!(code, 201, "{b}");
    assert!(b["expires"].is_null(), "null duration is permanent: {b}");
    let (code, b) = api(
        &lab,
        "POST",
        "/v1/bans",
        Some(json!({"addr": "203.0.113.9", "duration": 90})),
    );
    assert_eq!(code, 201);
    assert_eq!(b["remaining_s"].as_u64().unwrap() / 10, 9);
    let (_, list) = api(&lab, "GET", "/v1/bans", None);
    let mut got = addrs(&list, "addr");
    got.sort();
    assert_eq!(got, ["198.51.100.7", "2001:db8:bad::/64", "203.0.113.9"]);
    assert_eq!(api(&lab, "GET", "/v1/bans/198.51.100.7", None).0, 200);
    // URL-encoded and plain prefixes in the path.
    assert_eq!(
        api(&lab, "GET", "/v1/bans/2001:db8:bad::%2F64", None).0,
        200
    );
    assert_eq!(
        api(&lab, "DELETE", "/v1/bans/2001:db8:bad::/64", None).0,
        200
    );
    assert_eq!(
        api(&lab, "DELETE", "/v1/bans/2001:db8:bad::/64", None).0,
        404
    );

    // 400s: bad address, bad or unbounded duration, bad JSON, unknown
    // field, zero duration, wide prefixes, bad reasons, bad paging.
    for body in [
        json!({"addr": "not-an-ip"}),
        json!({"addr": "10.0.0.0/33"}),
        json!({"addr": "198.51.100.8", "duration": "soon"}),
        json!({"addr": "198.51.100.8", "duration": 0}),
        json!({"addr": "198.51.100.8", "duration": 12976323942248012u64}),
        json!({"addr": "198.51.100.8", "duration": u64::MAX}),
        json!({"addr": "198.51.100.8", "duration": "99999999999d"}),
        json!({"addr": "198.51.100.8", "duration": -5}),
        json!({"addr": "198.51.100.8", "colour": "red"}),
        json!({"addr": "198.51.100.8", "reason": "a\nforged log line"}),
        json!({"addr": "198.51.100.8", "reason": "x".repeat(257)}),
        json!({"addr": "0.0.0.0/0"}),
        json!({"addr": "::/0"}),
        json!({"addr": "10.0.0.0/7"}),
        json!({"duration": 5}),
    ] {
        let (code, e) = api(&lab, "POST", "/v1/bans", Some(body.clone()));
        assert_eq!(code, 400, "{body} -> {e}");
        assert!(e["error"].is_string(), "{e}");
    }
    assert_eq!(api(&lab, "GET", "/v1/bans/garbage", None).0, 400);
    assert_eq!(api(&lab, "GET", "/v1/bans?limit=0", None).0, 400);
    assert_eq!(api(&lab, "GET", "/v1/bans?limit=100001", None).0, 400);
    assert_eq!(api(&lab, "GET", "/v1/bans?after=nowhere", None).0, 400);
    // A wide ban with force is an operator's decision.
    let (code, b) = api(
        &lab,
        "POST",
        "/v1/bans",
        Some(json!({"addr": "10.0.0.0/7", "force": true, "duration": 60})),
    );
    assert_eq!(code, 201, "{b}");
    assert_eq!(api(&lab, "DELETE", "/v1/bans/10.0.0.0%2F7", None).0, 200);
    // Paging: one ban a page, the cursor moves on.
    let (code, page) = api(&lab, "GET", "/v1/bans?limit=1", None);
    assert_eq!(code, 200, "{page}");
    assert_eq!(page["total"], 2, "{page}");
    assert_eq!(page["bans"].as_array().unwrap().len(), 1);
    let next = page["next"].as_str().expect("more pages").to_string();
    let (_, page2) = api(
        &lab,
        "GET",
        &format!("/v1/bans?limit=1&after={}", next.replace('/', "%2F")),
        None,
    );
    assert_ne!(page2["bans"][0]["addr"], page["bans"][0]["addr"], "{page2}");

    // 409: the allowlist protects; the answer names the entry.
    let (code, e) = api(
        &lab,
        "POST",
        "/v1/bans",
        Some(json!({"addr": "192.0.2.10"})),
    );
    assert_eq!(code, 409);
    assert!(
        e["error"].as_str().unwrap().contains("192.0.2.10/32"),
        "{e}"
    );
    let (code, _) = api(
        &lab,
        "POST",
        "/v1/blocklist",
        Some(json!({"cidr": "192.0.2.0/24"})),
    );
    assert_eq!(code, 201, "a block containing an allowlisted host is fine");
    let (code, _) = api(
        &lab,
        "POST",
        "/v1/blocklist",
        Some(json!({"cidr": "192.0.2.10"})),
    );
    assert_eq!(code, 409, "blocking exactly an allowlisted host is not");

    // Lists: add, list with origin, remove; config entries are read-only.
    let (code, _) = api(
        &lab,
        "POST",
        "/v1/allowlist",
        Some(json!({"cidr": "203.0.113.0/24", "comment": "monitoring"})),
    );
    assert_eq!(code, 201);
    let (_, allow) = api(&lab, "GET", "/v1/allowlist", None);
    assert_eq!(addrs(&allow, "cidr"), ["192.0.2.10/32", "203.0.113.0/24"]);
    assert_eq!(addrs(&allow, "origin"), ["config", "api"]);
    let (_, bans) = api(&lab, "GET", "/v1/bans", None);
    assert!(
        !addrs(&bans, "addr").contains(&"203.0.113.9".to_string()),
        "a new allowlist entry lifts the bans it covers: {bans}"
    );
    assert_eq!(api(&lab, "DELETE", "/v1/allowlist/192.0.2.10", None).0, 409);
    let (code, e) = api(
        &lab,
        "POST",
        "/v1/allowlist",
        Some(json!({"cidr": "198.51.100.0/24", "comment": "tab\there"})),
    );
    assert_eq!(code, 400, "control characters in a comment: {e}");
    assert_eq!(
        api(&lab, "DELETE", "/v1/allowlist/203.0.113.0%2F24", None).0,
        200
    );
    assert_eq!(
        api(&lab, "DELETE", "/v1/allowlist/203.0.113.0/24", None).0,
        404
    );
    assert_eq!(
        api(&lab, "DELETE", "/v1/blocklist/192.0.2.0/24", None).0,
        200
    );

    // Modes.
    let (code, m) = api(&lab, "PUT", "/v1/mode", Some(json!({"monitor": true})));
    assert_eq!(code, 200);
    assert_eq!(m, json!({"monitor": true, "emergency": false}));
    assert_eq!(api(&lab, "PUT", "/v1/mode", Some(json!({}))).0, 400);
    assert_eq!(
        api(&lab, "PUT", "/v1/mode", Some(json!({"monitor": "yes"}))).0,
        400
    );
    assert_eq!(api(&lab, "GET", "/v1/mode", None).1["monitor"], true);
    api(&lab, "PUT", "/v1/mode", Some(json!({"monitor": false})));

    // Stats, health, metrics, OpenAPI, unknown endpoint.
    let (code, st) = api(&lab, "GET", "/v1/stats", None);
    assert_eq!(code, 200);
    assert!(st["counters"]["pass"]["packets"].is_u64(), "{st}");
    assert_eq!(st["bans"]["total"], 1);
    let (code, h) = api(&lab, "GET", "/v1/health", None);
    assert_eq!(code, 200);
    assert_eq!(h["status"], "ok");
    assert_eq!(h["interfaces"][0]["interface"], lab.srv_if.as_str());
    let (code, m) = api(&lab, "GET", "/metrics", None);
    assert_eq!(code, 200);
    let text = m.as_str().unwrap();
    assert!(
        text.contains("waf_xdp_packets_total{verdict=\"banned\"}"),
        "{text}"
    );
    assert!(
        text.contains("waf_bans{family=\"ipv4\",kind=\"address\"} 1"),
        "{text}"
    );
    let (code, o) = api(&lab, "GET", "/v1/openapi.json", None);
    assert_eq!(code, 200);
    assert_eq!(o["openapi"], "3.1.0");
    assert!(o["paths"]["/v1/bans"]["post"].is_object(), "{o}");
    assert_eq!(api(&lab, "GET", "/v1/nothing", None).0, 404);

    // The detection engine over the API: a verdict with a risk level.
    let (code, v) = api(
        &lab,
        "POST",
        "/v1/inspect",
        Some(
            json!({"id": 7, "raw": "GET /?q=1%27%20UNION%20SELECT%20password%20FROM%20users-- HTTP/1.1\r\nHost: a\r\n\r\n"}),
        ),
    );
    assert_eq!(code, 200, "{v}");
    assert_eq!(
        (v["id"].as_u64(), v["action"].as_str(), v["risk"].as_str()),
        (Some(7), Some("block"), Some("high"))
    );
    assert_eq!(v["attacks"][0]["location"], "query:q");
    let (code, v) = api(
        &lab,
        "POST",
        "/v1/inspect",
        Some(
            json!({"method": "GET", "uri": "/search?q=select+specialty+hospital", "headers": [["Host", "a"]]}),
        ),
    );
    assert_eq!(code, 200);
    assert_eq!(v["action"], "pass", "{v}");
    assert_ne!(v["risk"], "high", "{v}");
    assert_eq!(
        api(&lab, "POST", "/v1/inspect", Some(json!({"nothing": 1}))).0,
        400
    );
    // Nothing above made a handler panic.
    assert_eq!(api(&lab, "GET", "/v1/stats", None).1["api_panics"], 0);
    drop(d);
}

#[test]
fn cli_ban_drops_the_host_and_survives_kill_9_and_restart() {
    let lab = Lab::new();
    let mut d = TestDaemon::start(&lab, "");
    assert!(lab.attacker.ping(Lab::SRV4, None, 1));

    let out = d.cli(&[
        "bans",
        "add",
        Lab::ATTACKER4,
        "--duration",
        "1h",
        "--reason",
        "cli test",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !lab.attacker.ping(Lab::SRV4, None, 2),
        "banned host dropped"
    );
    assert!(lab.client.ping(Lab::SRV4, None, 2), "the other host spared");

    // The CLI's table lists it; --json gives the same for scripts.
    let out = d.cli(&["bans", "list"]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("ADDRESS") && table.contains(Lab::ATTACKER4),
        "{table}"
    );
    let out = d.cli(&["--json", "bans", "list"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["reason"], "cli test");

    // kill -9: no process, the pinned program keeps dropping.
    d.kill9();
    assert!(
        !lab.attacker.ping(Lab::SRV4, None, 2),
        "ban in force with the daemon dead"
    );
    assert!(lab.client.ping(Lab::SRV4, None, 1));

    // A restarted daemon adopts the pins and its journal, and lists the ban.
    d.spawn(&lab);
    let (_, bans) = api(&lab, "GET", "/v1/bans", None);
    assert_eq!(addrs(&bans, "addr"), [Lab::ATTACKER4], "{}", d.log_text());
    assert_eq!(bans["bans"][0]["reason"], "cli test");
    let (_, h) = api(&lab, "GET", "/v1/health", None);
    assert_eq!(h["interfaces"][0]["adopted"], true);
    assert!(!lab.attacker.ping(Lab::SRV4, None, 1));

    // Lifting it with the CLI readmits the host.
    let out = d.cli(&["bans", "rm", Lab::ATTACKER4]);
    assert!(out.status.success());
    assert!(lab.attacker.ping(Lab::SRV4, None, 2));

    // Invalid input: non-zero exit with a one-line reason.
    for args in [
        &["bans", "add", "not-an-address"][..],
        &["bans", "add", Lab::ATTACKER4, "--duration", "forever"],
        &["bans", "rm", "198.51.100.99"],
        &["mode", "--monitor", "maybe"],
        &["bans", "add", Lab::CLIENT4, "--duration", "0"],
    ] {
        let out = d.cli(args);
        assert!(!out.status.success(), "{args:?} should fail");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("waf: "), "{err}");
    }
    // SIGTERM: the daemon exits cleanly and enforcement stays.
    let out = d.cli(&["bans", "add", Lab::ATTACKER4]);
    assert!(out.status.success());
    let status = d.stop().unwrap();
    assert!(status.success(), "{status}");
    assert!(
        !lab.attacker.ping(Lab::SRV4, None, 1),
        "still enforced after SIGTERM"
    );
}

#[test]
fn expiry_lifts_a_ban() {
    let lab = Lab::new();
    let _d = TestDaemon::start(&lab, "");
    let (code, _) = api(
        &lab,
        "POST",
        "/v1/bans",
        Some(json!({"addr": Lab::ATTACKER4, "duration": "2s"})),
    );
    assert_eq!(code, 201);
    assert!(!lab.attacker.ping(Lab::SRV4, None, 1));
    wait_until("the ban to expire", Duration::from_secs(10), || {
        addrs(&api(&lab, "GET", "/v1/bans", None).1, "addr").is_empty()
    });
    assert!(
        lab.attacker.ping(Lab::SRV4, None, 2),
        "expired ban no longer drops"
    );
    let (_, st) = api(&lab, "GET", "/v1/stats", None);
    assert_eq!(st["daemon"]["bans_expired"], 1);
}

#[test]
fn export_then_import_on_a_clean_state_reproduces_it() {
    let lab = Lab::new();
    let d = TestDaemon::start(&lab, "");
    api(
        &lab,
        "POST",
        "/v1/bans",
        Some(json!({"addr": "198.51.100.7", "duration": "1h", "reason": "one"})),
    );
    api(
        &lab,
        "POST",
        "/v1/bans",
        Some(json!({"addr": "2001:db8:66::/64", "duration": null, "reason": "two"})),
    );
    api(
        &lab,
        "POST",
        "/v1/allowlist",
        Some(json!({"cidr": "192.0.2.10", "comment": "mgmt"})),
    );
    api(
        &lab,
        "POST",
        "/v1/blocklist",
        Some(json!({"cidr": "203.0.113.0/24"})),
    );
    let file = d.state_dir.join("export.json");
    let out = d.cli(&["export", file.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let exported: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let saved = std::env::temp_dir().join(format!("waf-export-{}.json", std::process::id()));
    std::fs::copy(&file, &saved).unwrap();
    drop(d); // pins, state and daemon gone: a clean slate

    let d2 = TestDaemon::start(&lab, "");
    assert!(addrs(&api(&lab, "GET", "/v1/bans", None).1, "addr").is_empty());
    let out = d2.cli(&["import", saved.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (_, bans) = api(&lab, "GET", "/v1/bans", None);
    let mut got = addrs(&bans, "addr");
    got.sort();
    assert_eq!(got, ["198.51.100.7", "2001:db8:66::/64"]);
    let b7 = bans["bans"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["addr"] == "198.51.100.7")
        .unwrap();
    assert_eq!(b7["reason"], "one");
    assert!(
        b7["remaining_s"].as_u64().unwrap() > 3500,
        "expiry kept: {b7}"
    );
    let b6 = bans["bans"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["reason"] == "two")
        .unwrap();
    assert!(b6["expires"].is_null(), "permanent stays permanent");
    assert_eq!(
        addrs(&api(&lab, "GET", "/v1/allowlist", None).1, "cidr"),
        ["192.0.2.10/32"]
    );
    assert_eq!(
        addrs(&api(&lab, "GET", "/v1/blocklist", None).1, "cidr"),
        ["203.0.113.0/24"]
    );
    assert_eq!(
        api(&lab, "GET", "/v1/allowlist", None).1["entries"][0]["comment"],
        "mgmt"
    );
    // The imported ban is enforced in the kernel.
    let (_, st) = api(&lab, "GET", "/v1/stats", None);
    assert_eq!(st["bans"]["total"], 2);
    assert_eq!(exported["version"], 2);
    std::fs::remove_file(&saved).unwrap();
}

#[test]
fn rate_limit_strikes_become_an_escalating_ban() {
    let lab = Lab::new();
    let _d = TestDaemon::start(
        &lab,
        "[rate_limit]\npps = 10\nburst = 10\nevent_interval = \"200ms\"\n\n\
         [ban_policy]\nstrikes = 2\nwindow = \"30s\"\nduration = \"1h\"\n",
    );
    // A bounded flood: 100 pings at 50/s, well over 10/s.
    let _ = lab.attacker.try_exec(&[
        "ping",
        "-q",
        "-c",
        "100",
        "-i",
        "0.02",
        "-W",
        "1",
        Lab::SRV4,
    ]);
    wait_until("a rate-limit ban", Duration::from_secs(10), || {
        addrs(&api(&lab, "GET", "/v1/bans", None).1, "addr").contains(&Lab::ATTACKER4.to_string())
    });
    let (_, bans) = api(&lab, "GET", "/v1/bans", None);
    assert_eq!(bans["bans"][0]["source"], "rate-limit", "{bans}");
    assert!(
        bans["bans"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("packets/s"),
        "{bans}"
    );
    let (_, st) = api(&lab, "GET", "/v1/stats", None);
    assert!(
        st["counters"]["rate_limited"]["packets"].as_u64().unwrap() > 0,
        "{st}"
    );
    assert!(
        st["daemon"]["strikes"]["rate_pps"].as_u64().unwrap() >= 2,
        "{st}"
    );
    // The well-behaved client is untouched.
    assert!(lab.client.ping(Lab::SRV4, None, 2));
    // Repeat offence: lift, offend again, the new ban lasts twice as long.
    api(
        &lab,
        "DELETE",
        &format!("/v1/bans/{}", Lab::ATTACKER4),
        None,
    );
    let _ = lab.attacker.try_exec(&[
        "ping",
        "-q",
        "-c",
        "100",
        "-i",
        "0.02",
        "-W",
        "1",
        Lab::SRV4,
    ]);
    wait_until("a second ban", Duration::from_secs(10), || {
        !addrs(&api(&lab, "GET", "/v1/bans", None).1, "addr").is_empty()
    });
    let (_, bans) = api(&lab, "GET", "/v1/bans", None);
    assert_eq!(bans["bans"][0]["offence"], 2, "{bans}");
    assert!(
        bans["bans"][0]["remaining_s"].as_u64().unwrap() > 7000,
        "doubled: {bans}"
    );
}

#[test]
fn emergency_mode_needs_an_allowlist_and_spares_it() {
    let lab = Lab::new();
    let d = TestDaemon::start(&lab, "");
    let (code, e) = api(&lab, "PUT", "/v1/mode", Some(json!({"emergency": true})));
    assert_eq!(code, 409, "refused with an empty allowlist: {e}");
    assert!(e["error"].as_str().unwrap().contains("allowlist"));
    let (code, _) = api(
        &lab,
        "POST",
        "/v1/allowlist",
        Some(json!({"cidr": Lab::CLIENT4})),
    );
    assert_eq!(code, 201);
    let (code, _) = api(&lab, "PUT", "/v1/mode", Some(json!({"emergency": true})));
    assert_eq!(code, 200);
    assert!(
        !lab.attacker.ping(Lab::SRV4, None, 2),
        "everything else dropped"
    );
    assert!(
        lab.client.ping(Lab::SRV4, None, 2),
        "the allowlisted client passes"
    );
    let out = d.cli(&["mode"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("emergency: true"));
    let out = d.cli(&["mode", "--emergency", "off"]);
    assert!(out.status.success());
    assert!(lab.attacker.ping(Lab::SRV4, None, 2));
}

#[test]
fn sighup_reloads_the_config() {
    let lab = Lab::new();
    let d = TestDaemon::start(&lab, "");
    assert!(lab.attacker.ping(Lab::SRV4, None, 1));
    let text = std::fs::read_to_string(&d.config).unwrap();
    std::fs::write(
        &d.config,
        format!("{text}\n[blocklist]\ncidrs = [\"{}\"]\n", Lab::ATTACKER4),
    )
    .unwrap();
    d.signal(libc::SIGHUP);
    wait_until("the reloaded blocklist", Duration::from_secs(10), || {
        addrs(&api(&lab, "GET", "/v1/blocklist", None).1, "cidr")
            == [format!("{}/32", Lab::ATTACKER4)]
    });
    assert!(
        !lab.attacker.ping(Lab::SRV4, None, 2),
        "reloaded blocklist drops"
    );
    // A broken config is refused and the old one stays.
    std::fs::write(&d.config, format!("{text}\n[rate_limit]\npps = 0\n")).unwrap();
    d.signal(libc::SIGHUP);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(api(&lab, "GET", "/v1/health", None).0, 200);
    assert_eq!(
        addrs(&api(&lab, "GET", "/v1/blocklist", None).1, "cidr").len(),
        1
    );
    assert!(
        d.log_text().contains("rate_limit.pps"),
        "the log names the bad key"
    );
    let _ = TEST_TOKEN;
}
