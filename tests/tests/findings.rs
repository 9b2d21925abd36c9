//! The findings store, runtime exclusions and reports end to end, in
//! network namespaces: attacks through the daemon's proxy show up in
//! `/v1/findings` with their evidence and survive a restart; an exclusion
//! drafted from a finding and applied through the API lets the same
//! request through on the next request (another rule still blocks),
//! survives a restart and is removed by DELETE; `waf report --json` ranks
//! the attacker and the rule first.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use waf_tests::{Lab, TestDaemon, Upstream, http_full, unique};

const SQLI: &str = "/search?q=1%27%20UNION%20SELECT%20password%20FROM%20users--";
const SQLI_OTHER_PARAM: &str = "/search?id=1%27%20UNION%20SELECT%20password%20FROM%20users--";
const XSS: &str = "/search?name=%3Cscript%3Ealert(1)%3C/script%3E";

fn get(ns: &waf_tests::Netns, target: &str) -> u16 {
    let raw = format!(
        "GET {target} HTTP/1.1\r\nHost: shop.test\r\nUser-Agent: Mozilla/5.0\r\n\
         Connection: close\r\n\r\n"
    );
    http_full(ns, &format!("{}:8080", Lab::SRV4), raw.as_bytes())
        .expect("the proxy answers")
        .0
}

/// Findings of `query` once at least `n` are there (the store's writer is
/// asynchronous).
fn findings(d: &TestDaemon, query: &str, n: usize) -> Vec<Value> {
    let t = Instant::now();
    loop {
        let (code, v) = d.api("GET", &format!("/v1/findings?{query}"), None);
        assert_eq!(code, 200, "{v}");
        let list = v["findings"].as_array().cloned().unwrap_or_default();
        if list.len() >= n {
            return list;
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "fewer than {n} findings for {query}: {v}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn findings_are_kept_excluded_at_run_time_and_reported() {
    let lab = Lab::new();
    let _app = Upstream::start(&lab.srv, "127.0.0.1:8000");
    let log = std::env::temp_dir().join(unique("waf-access-"));
    let mut d = TestDaemon::start(
        &lab,
        &format!(
            "[proxy]\nlisten = \"0.0.0.0:8080\"\nupstream = \"http://127.0.0.1:8000\"\n\
             access_log = \"{}\"\n\n[ban_policy]\nstrikes = 1000\n\n\
             [findings]\nmax_size_mb = 4\n",
            log.display()
        ),
    );
    struct Cleanup(std::path::PathBuf);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
    let _log = Cleanup(log.clone());

    // Attacks are blocked and kept with their evidence; clean requests are not.
    assert_eq!(get(&lab.attacker, SQLI), 403);
    assert_eq!(get(&lab.attacker, XSS), 403);
    assert_eq!(get(&lab.client, "/search?q=shoes"), 200);
    let sqli = findings(&d, &format!("source={}&kind=sqli", Lab::ATTACKER4), 1);
    let f = &sqli[0];
    assert_eq!(f["source"], Lab::ATTACKER4);
    assert_eq!(f["method"], "GET");
    assert_eq!(f["host"], "shop.test");
    assert_eq!(f["path"], "/search");
    assert_eq!(f["part"], "query");
    assert_eq!(f["param"], "q");
    assert_eq!(f["verdict"], "block");
    assert!(f["rule"].as_str().unwrap().starts_with("sqli"), "{f}");
    assert!(
        f["snippet"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("union"),
        "{f}"
    );
    assert_eq!(f["request_id"].as_str().unwrap().len(), 16, "{f}");
    assert!(f["score"].as_u64().unwrap() >= 5);
    let xss = findings(&d, "kind=xss", 1);
    assert_eq!(xss[0]["param"], "name");
    let none = findings(&d, &format!("source={}", Lab::CLIENT4), 0);
    assert!(none.is_empty(), "clean requests leave no finding: {none:?}");
    // Filters and paging: one at a time, newest first, each once.
    let rule = f["rule"].as_str().unwrap().to_string();
    let by_rule = findings(&d, &format!("rule={rule}"), 1);
    assert!(by_rule.iter().all(|x| x["rule"] == rule.as_str()));
    let all = findings(&d, "limit=1000", 2);
    let (_, p1) = d.api("GET", "/v1/findings?limit=1", None);
    let next = p1["next"].as_u64().expect("a next page");
    let (_, p2) = d.api("GET", &format!("/v1/findings?limit=1&before={next}"), None);
    assert_eq!(p1["findings"][0]["id"], all[0]["id"]);
    assert_eq!(p2["findings"][0]["id"], all[1]["id"]);
    assert_eq!(d.api("GET", "/v1/findings?limit=0", None).0, 400);
    assert_eq!(d.api("GET", "/v1/findings?source=nope", None).0, 400);
    assert_eq!(d.api("GET", "/v1/findings?since=yesterday", None).0, 400);
    // Every finding here is the proxy's.
    assert_eq!(
        findings(&d, "origin=proxy&limit=1000", all.len()).len(),
        all.len()
    );
    assert!(findings(&d, "origin=mirror", 0).is_empty());

    // They survive a restart.
    d.stop();
    d.spawn(&lab);
    let again = findings(&d, "limit=1000", all.len());
    assert_eq!(again[0]["id"], all[0]["id"]);
    assert_eq!(again.len(), all.len());

    // A draft from the finding: the exclusion and its TOML, not applied.
    let (code, draft) = d.api(
        "POST",
        "/v1/exclusions/draft",
        Some(json!({"finding": f["id"], "any_rule": true})),
    );
    assert_eq!(code, 200, "{draft}");
    assert_eq!(draft["exclusion"]["path"], "/search");
    assert_eq!(draft["exclusion"]["param"], "q");
    assert!(draft["exclusion"].get("rule").is_none(), "{draft}");
    let toml = draft["toml"].as_str().unwrap();
    assert!(toml.contains("[[detect.exclusions]]"), "{toml}");
    assert!(toml.contains("path = \"/search\""), "{toml}");
    assert!(toml.contains("location = \"*:q\""), "{toml}");
    assert_eq!(draft["allowlist"]["cidr"], Lab::ATTACKER4);
    assert_eq!(get(&lab.attacker, SQLI), 403, "a draft applies nothing");
    assert_eq!(
        d.api(
            "POST",
            "/v1/exclusions/draft",
            Some(json!({"finding": 999_999_999}))
        )
        .0,
        404
    );

    // Applied: the next request passes; another rule, or the same attack in
    // another parameter, still blocks.
    let (code, added) = d.api("POST", "/v1/exclusions", Some(draft["exclusion"].clone()));
    assert_eq!(code, 201, "{added}");
    let id = added["id"].as_u64().unwrap();
    assert_eq!(get(&lab.attacker, SQLI), 200);
    assert_eq!(get(&lab.attacker, XSS), 403);
    assert_eq!(get(&lab.attacker, SQLI_OTHER_PARAM), 403);
    let (_, list) = d.api("GET", "/v1/exclusions", None);
    let runtime: Vec<&Value> = list["exclusions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["source"] == "runtime")
        .collect();
    assert_eq!(runtime.len(), 1, "{list}");
    assert_eq!(runtime[0]["id"], id);

    // Strict validation.
    for bad in [
        json!({}),
        json!({"path": "/*"}),
        json!({"rule": "a\"b"}),
        json!({"path": "search"}),
        json!({"param": "q\n[x]"}),
        json!({"rule": "x", "extra": 1}),
    ] {
        assert_eq!(
            d.api("POST", "/v1/exclusions", Some(bad.clone())).0,
            400,
            "{bad}"
        );
    }

    // It survives a restart; DELETE removes it.
    d.stop();
    d.spawn(&lab);
    assert_eq!(
        get(&lab.attacker, SQLI),
        200,
        "the exclusion survived the restart"
    );
    let (code, gone) = d.api("DELETE", &format!("/v1/exclusions/{id}"), None);
    assert_eq!(code, 200, "{gone}");
    assert_eq!(get(&lab.attacker, SQLI), 403);
    assert_eq!(
        d.api("DELETE", &format!("/v1/exclusions/{id}"), None).0,
        404
    );
    assert_eq!(d.api("DELETE", "/v1/exclusions/abc", None).0, 400);

    // A ban made and lifted before the report: the ledger keeps it.
    let (code, b) = d.api(
        "POST",
        "/v1/bans",
        Some(json!({"addr": "198.51.100.77", "duration": "10m", "reason": "lifted-before-report"})),
    );
    assert_eq!(code, 201, "{b}");
    assert_eq!(d.api("DELETE", "/v1/bans/198.51.100.77", None).0, 200);

    // The report: the attacker and an SQL injection rule first.
    let out = d.cli(&["report", "--since", "1h", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!(r["top_sources"][0]["source"], Lab::ATTACKER4, "{r}");
    assert!(
        r["top_rules"][0]["key"]
            .as_str()
            .unwrap()
            .starts_with("sqli"),
        "{r}"
    );
    assert_eq!(r["top_categories"][0]["key"], "sqli", "{r}");
    assert_eq!(r["top_paths"][0]["key"], "/search", "{r}");
    let blocked: u64 = r["hours"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["blocked"].as_u64().unwrap())
        .sum();
    assert!(blocked >= 5, "the access log's refusals: {r}");
    let lifted = r["bans"]["by_reason"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["key"] == "lifted-before-report");
    assert_eq!(lifted.map(|c| c["count"].as_u64()), Some(Some(1)), "{r}");
    assert!(
        r["bans"]["in_force"].as_u64() < r["bans"]["total"].as_u64(),
        "{r}"
    );
    assert!(r["inputs"]["ledger_lines"].as_u64().unwrap() >= 1, "{r}");
    // `waf stats` counts what the store wrote since the daemon started.
    let stats = String::from_utf8_lossy(&d.cli(&["stats"]).stdout).into_owned();
    let line = stats
        .lines()
        .find(|l| l.starts_with("findings: written "))
        .unwrap_or_else(|| panic!("no findings line: {stats}"));
    let written: u64 = line["findings: written ".len()..]
        .split(',')
        .next()
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    assert!(written >= 1, "since the restart: {line}");
    let text = d.cli(&["report", "--since", "1h"]);
    assert!(String::from_utf8_lossy(&text.stdout).contains(Lab::ATTACKER4));
    assert_eq!(d.api("GET", "/v1/report?since=90d", None).0, 400);
}
