//! The dashboard (`/ui`) end to end: a real headless Chromium in the
//! server's namespace logs in through the form, sees a ban made with the
//! CLI appear on the open bans page without a reload, lifts it from the
//! page, adds and removes an allowlist entry; without a session pages
//! redirect to the login and data answers 401; a forged or missing CSRF
//! token is a 403 that changes nothing; the session cookie does not open
//! `/v1`. A finding of the proxy, drafted into an exclusion on the
//! detections page and applied after the confirmation, lets the same
//! request through. Attacks through the proxy show on the overview's top
//! rules, paths and sources within seconds (`/ui/live`, the page, the
//! script), keys escaped. `shots` (ignored; `cargo xtask ui-shots` runs it) saves a PNG of
//! each page of a demo lab.

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use serde_json::Value;
use waf_tests::{
    Lab, TEST_TOKEN, TestDaemon, Upstream, browser::Browser, browser::Page, http_full, run_in,
};

const BASE: &str = "http://127.0.0.1:9876";

/// One request to the daemon's listener from inside its namespace, no
/// redirects followed: status, `Location`, body.
fn raw(
    d: &TestDaemon,
    method: &str,
    path: &str,
    cookie: Option<&str>,
    form: Option<&str>,
) -> (u16, String, String) {
    let (method, url) = (method.to_string(), format!("{BASE}{path}"));
    let cookie = cookie.map(str::to_string);
    let form = form.map(str::to_string);
    run_in(d.netns(), move || {
        let agent = ureq::AgentBuilder::new().redirects(0).build();
        let mut req = agent
            .request(&method, &url)
            .timeout(Duration::from_secs(10));
        if let Some(c) = &cookie {
            req = req.set("Cookie", c);
        }
        let r = match &form {
            Some(f) => req
                .set("Content-Type", "application/x-www-form-urlencoded")
                .send_string(f),
            None => req.call(),
        };
        let resp = match r {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{method} {url}: {e}"),
        };
        let status = resp.status();
        let location = resp.header("location").unwrap_or_default().to_string();
        (status, location, resp.into_string().unwrap_or_default())
    })
}

fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Logs in through the form; the page ends on the overview.
fn login(page: &Page) {
    page.goto(&format!("{BASE}/ui/login"), Duration::from_secs(10))
        .unwrap();
    page.eval(&format!(
        "document.getElementById('token').value = '{TEST_TOKEN}'; \
         document.getElementById('login').submit(); true"
    ))
    .unwrap();
    page.wait_for(
        "location.pathname === '/ui' && document.title.startsWith('Overview')",
        Duration::from_secs(10),
    )
    .unwrap_or_else(|e| panic!("login failed: {e}: {}", page.text()));
}

/// Whether the allowlist holds `cidr` (through `/v1`).
fn allowlisted(d: &TestDaemon, cidr: &str) -> bool {
    let (code, v) = d.api("GET", "/v1/allowlist", None);
    assert_eq!(code, 200, "{v}");
    v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["cidr"] == cidr)
}

#[test]
fn the_dashboard_shows_live_bans_and_changes_them_only_with_a_session_and_csrf() {
    let lab = Lab::new();
    let d = TestDaemon::start(&lab, "");

    // Without a session: pages go to the login, data and writes get 401,
    // and nothing is banned.
    let (code, loc, _) = raw(&d, "GET", "/ui/bans", None, None);
    assert_eq!((code, loc.as_str()), (303, "/ui/login"));
    assert_eq!(raw(&d, "GET", "/ui/live", None, None).0, 401);
    assert_eq!(raw(&d, "GET", "/ui/bans.json", None, None).0, 401);
    let forged_session =
        Some("waf_ui=00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff");
    assert_eq!(
        raw(
            &d,
            "POST",
            "/ui/bans",
            forged_session,
            Some("addr=203.0.113.9&csrf=x")
        )
        .0,
        401
    );
    assert_eq!(d.api("GET", "/v1/bans/203.0.113.9", None).0, 404);
    // The login page carries the security headers.
    let headers = run_in(d.netns(), || {
        let r = ureq::get(&format!("{BASE}/ui/login")).call().unwrap();
        [
            "content-security-policy",
            "x-content-type-options",
            "referrer-policy",
            "cache-control",
        ]
        .map(|h| r.header(h).unwrap_or_default().to_string())
    });
    assert!(
        headers[0].contains("script-src 'self'") && headers[0].contains("frame-ancestors 'none'")
    );
    assert_eq!(&headers[1..], ["nosniff", "no-referrer", "no-store"]);

    // A wrong token: no session.
    let browser = Browser::launch(&lab.srv);
    let page = browser.new_page();
    page.goto(&format!("{BASE}/ui/login"), Duration::from_secs(10))
        .unwrap();
    page.eval(
        "document.getElementById('token').value = 'wrong-token-0123456789'; \
         document.getElementById('login').submit(); true",
    )
    .unwrap();
    page.wait_for(
        "document.body && document.body.innerText.includes('wrong token')",
        Duration::from_secs(10),
    )
    .unwrap();
    assert!(!page.cookies().iter().any(|c| c["name"] == "waf_ui"));

    login(&page);
    let cookies = page.cookies();
    let session = cookies
        .iter()
        .find(|c| c["name"] == "waf_ui")
        .unwrap_or_else(|| panic!("no session cookie: {cookies:?}"));
    assert_eq!(session["httpOnly"], true);
    assert_eq!(session["sameSite"], "Strict");
    assert_eq!(session["path"], "/ui");
    let cookie = format!("waf_ui={}", session["value"].as_str().unwrap());
    // The cookie opens /ui, never /v1.
    assert_eq!(raw(&d, "GET", "/ui/live", Some(&cookie), None).0, 200);
    assert_eq!(raw(&d, "GET", "/v1/bans", Some(&cookie), None).0, 401);

    // A ban made with the CLI shows up on the open page, without a reload.
    page.goto(&format!("{BASE}/ui/bans"), Duration::from_secs(10))
        .unwrap();
    page.eval("window.notReloaded = true").unwrap();
    let out = d.cli(&[
        "bans",
        "add",
        "203.0.113.7",
        "--duration",
        "10m",
        "--reason",
        "from the cli",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let row = "document.querySelector('#bans tr[data-addr=\"203.0.113.7\"]')";
    page.wait_for(&format!("{row} !== null"), Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("the CLI's ban never showed: {e}: {}", page.text()));
    assert_eq!(
        page.eval("window.notReloaded").unwrap(),
        true,
        "the page reloaded"
    );
    let text = page.eval(&format!("{row}.innerText")).unwrap();
    assert!(text.as_str().unwrap().contains("from the cli"), "{text}");

    // A forged CSRF token and none at all: 403, and nothing changed.
    for body in ["addr=203.0.113.9&csrf=forged", "addr=203.0.113.9"] {
        let status = page
            .eval(&format!(
                "fetch('/ui/bans', {{method: 'POST', body: new URLSearchParams('{body}'), \
                 redirect: 'manual'}}).then(r => r.status)"
            ))
            .unwrap();
        assert_eq!(status, 403, "{body}");
    }
    let lift_forged = page
        .eval(
            "fetch('/ui/bans/remove', {method: 'POST', headers: {'X-CSRF-Token': 'forged'}, \
             body: new URLSearchParams('addr=203.0.113.7')}).then(r => r.status)",
        )
        .unwrap();
    assert_eq!(lift_forged, 403);
    assert_eq!(d.api("GET", "/v1/bans/203.0.113.9", None).0, 404);
    assert_eq!(d.api("GET", "/v1/bans/203.0.113.7", None).0, 200);

    // Extend it from the page: a new duration and reason.
    page.eval(&format!(
        "const f = {row}.querySelector('form[action=\"/ui/bans/extend\"]'); \
         f.querySelector('[name=duration]').value = '3h'; \
         f.querySelector('[name=reason]').value = 'extended in the dashboard'; \
         f.submit(); true"
    ))
    .unwrap();
    page.wait_for(
        "document.body && document.body.innerText.includes('203.0.113.7 now banned until')",
        Duration::from_secs(10),
    )
    .unwrap_or_else(|e| panic!("no extension: {e}: {}", page.text()));
    let (_, ban) = d.api("GET", "/v1/bans/203.0.113.7", None);
    assert_eq!(ban["reason"], "extended in the dashboard", "{ban}");
    assert!(ban["remaining_s"].as_u64().unwrap() > 2 * 3600, "{ban}");
    page.wait_for(&format!("{row} !== null"), Duration::from_secs(10))
        .unwrap();

    // Lift it from the page.
    page.eval(&format!(
        "{row}.querySelector('form[action=\"/ui/bans/remove\"] button').click(); true"
    ))
    .unwrap();
    wait_until("the ban lifted", Duration::from_secs(10), || {
        d.api("GET", "/v1/bans/203.0.113.7", None).0 == 404
    });
    page.wait_for(
        "document.body && document.body.innerText.includes('lifted the ban of 203.0.113.7')",
        Duration::from_secs(10),
    )
    .unwrap();
    let (_, bans) = d.api("GET", "/v1/bans", None);
    assert_eq!(bans["total"], 0, "{bans}");

    // The allowlist: add and remove through the page's forms.
    page.goto(&format!("{BASE}/ui/lists"), Duration::from_secs(10))
        .unwrap();
    page.eval(
        "const f = document.getElementById('allow-form'); \
         f.querySelector('[name=cidr]').value = '192.0.2.77'; \
         f.querySelector('[name=comment]').value = 'added in the dashboard'; \
         f.submit(); true",
    )
    .unwrap();
    page.wait_for(
        "document.querySelector('#allowlist tr[data-cidr=\"192.0.2.77/32\"]') !== null",
        Duration::from_secs(10),
    )
    .unwrap_or_else(|e| panic!("no allowlist row: {e}: {}", page.text()));
    assert!(allowlisted(&d, "192.0.2.77/32"));
    page.eval(
        "document.querySelector('#allowlist tr[data-cidr=\"192.0.2.77/32\"] button').click(); true",
    )
    .unwrap();
    page.wait_for(
        "document.body && document.body.innerText.includes('removed 192.0.2.77/32')",
        Duration::from_secs(10),
    )
    .unwrap();
    assert!(!allowlisted(&d, "192.0.2.77/32"));

    // Emergency mode with an empty allowlist: the firewall's refusal, shown.
    let csrf = page
        .eval("document.querySelector('meta[name=\"csrf-token\"]').content")
        .unwrap();
    let csrf = csrf.as_str().unwrap();
    let (code, loc, _) = raw(
        &d,
        "POST",
        "/ui/modes",
        Some(&cookie),
        Some(&format!("mode=emergency&on=1&csrf={csrf}")),
    );
    assert_eq!((code, loc.as_str()), (303, "/ui/modes"));
    let (_, _, body) = raw(&d, "GET", "/ui/modes", Some(&cookie), None);
    assert!(body.contains("409"), "{body}");
    assert_eq!(d.api("GET", "/v1/mode", None).1["emergency"], false);

    // Logging out ends the session server-side.
    page.eval("document.querySelector('form.logout').submit(); true")
        .unwrap();
    page.wait_for("location.pathname === '/ui/login'", Duration::from_secs(10))
        .unwrap();
    assert_eq!(raw(&d, "GET", "/ui/live", Some(&cookie), None).0, 401);
    let (_, v) = d.api("GET", "/v1/stats", None);
    assert_eq!(v["api_panics"], 0, "{v}");
}

/// Screenshots of every page of a demo lab into `WAF_UI_SHOTS` (default
/// `target/ui`): `cargo xtask ui-shots`.
#[test]
#[ignore = "writes screenshots; run by `cargo xtask ui-shots`"]
fn shots() {
    let dir = std::env::var_os("WAF_UI_SHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/ui"));
    std::fs::create_dir_all(&dir).unwrap();
    let lab = Lab::new();
    let _app = Upstream::start(&lab.srv, "127.0.0.1:8000");
    let d = TestDaemon::start(
        &lab,
        "[proxy]\nlisten = \"0.0.0.0:8080\"\nupstream = \"http://127.0.0.1:8000\"\n\
         access_log = \"off\"\n\n[ban_policy]\nstrikes = 3\nwindow = \"5m\"\n",
    );
    for (addr, reason) in [
        ("198.51.100.7", "credential stuffing"),
        ("198.51.100.0/28", "scanner network"),
        ("2001:db8:bad::/64", "spam"),
        ("203.0.113.50", "manual"),
    ] {
        let out = d.cli(&["bans", "add", addr, "--duration", "2h", "--reason", reason]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = d.cli(&["allow", "add", Lab::CLIENT4, "--comment", "monitoring"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Some traffic: the client's pages, the attacker's injections (blocked,
    // then banned and dropped).
    let url = format!("http://{}:8080", Lab::SRV4);
    for _ in 0..5 {
        for i in 0..10 {
            lab.client.try_exec(&[
                "curl",
                "-s",
                "-o",
                "/dev/null",
                "-m",
                "2",
                &format!("{url}/p{i}"),
            ]);
        }
        lab.attacker.try_exec(&[
            "curl",
            "-s",
            "-o",
            "/dev/null",
            "-m",
            "1",
            &format!("{url}/?id=1%27%20OR%201=1--"),
        ]);
        lab.attacker.ping(Lab::SRV4, None, 3);
        std::thread::sleep(Duration::from_millis(700));
    }
    let browser = Browser::launch(&lab.srv);
    let page = browser.new_page();
    page.goto(&format!("{BASE}/ui/login"), Duration::from_secs(10))
        .unwrap();
    page.screenshot(&dir.join("login.png"));
    login(&page);
    page.wait_for(
        "document.querySelector('#legend-passed li') !== null",
        Duration::from_secs(10),
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    page.screenshot(&dir.join("overview.png"));
    for (name, path) in [
        ("bans", "/ui/bans"),
        ("bans-search", "/ui/bans?q=198.51.100.0%2F24"),
        ("lists", "/ui/lists"),
        ("modes", "/ui/modes"),
        ("modes-confirm", "/ui/modes/confirm?mode=emergency&on=1"),
        ("findings", "/ui/findings"),
    ] {
        page.goto(&format!("{BASE}{path}"), Duration::from_secs(10))
            .unwrap();
        page.screenshot(&dir.join(format!("{name}.png")));
    }
    page.eval("document.querySelector('#findings a.draft').click(); true")
        .unwrap();
    page.wait_for(
        "document.getElementById('toml') !== null",
        Duration::from_secs(10),
    )
    .unwrap_or_else(|e| panic!("no draft: {e}: {}", page.text()));
    page.screenshot(&dir.join("findings-draft.png"));
    let v: Value = d.api("GET", "/v1/stats", None).1;
    assert_eq!(v["api_panics"], 0, "{v}");
    eprintln!("screenshots in {}", dir.display());
}

#[test]
fn a_finding_is_drafted_into_an_exclusion_and_applied_from_the_page() {
    const SQLI: &str = "/search?q=1%27%20UNION%20SELECT%20password%20FROM%20users--";
    let lab = Lab::new();
    let _app = Upstream::start(&lab.srv, "127.0.0.1:8000");
    let d = TestDaemon::start(
        &lab,
        "[proxy]\nlisten = \"0.0.0.0:8080\"\nupstream = \"http://127.0.0.1:8000\"\n\
         access_log = \"off\"\n\n[ban_policy]\nstrikes = 1000\n",
    );
    let get = |target: &str| {
        let raw = format!(
            "GET {target} HTTP/1.1\r\nHost: shop.test\r\nUser-Agent: Mozilla/5.0\r\n\
             Connection: close\r\n\r\n"
        );
        http_full(&lab.client, &format!("{}:8080", Lab::SRV4), raw.as_bytes())
            .expect("the proxy answers")
            .0
    };
    assert_eq!(get(SQLI), 403);

    let browser = Browser::launch(&lab.srv);
    let page = browser.new_page();
    login(&page);
    // The finding shows with its evidence once the store has written it.
    let row = "document.querySelector('#findings tbody tr')";
    let t = Instant::now();
    loop {
        page.goto(&format!("{BASE}/ui/findings"), Duration::from_secs(10))
            .unwrap();
        if page.eval(&format!("{row} !== null")).unwrap() == true {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(10), "{}", page.text());
        std::thread::sleep(Duration::from_millis(200));
    }
    let text = page.eval(&format!("{row}.innerText")).unwrap();
    let text = text.as_str().unwrap();
    assert!(
        text.contains(Lab::CLIENT4) && text.contains("sqli") && text.contains("/search"),
        "{text}"
    );
    // The verdict filter: it was blocked, nothing passed.
    page.goto(
        &format!("{BASE}/ui/findings?verdict=pass"),
        Duration::from_secs(10),
    )
    .unwrap();
    assert_eq!(
        page.eval(&format!("{row} === null")).unwrap(),
        true,
        "{}",
        page.text()
    );
    page.goto(
        &format!("{BASE}/ui/findings?verdict=block"),
        Duration::from_secs(10),
    )
    .unwrap();
    // Drafting changes nothing; the page shows the config lines.
    page.eval(&format!("{row}.querySelector('a.draft').click(); true"))
        .unwrap();
    page.wait_for(
        "document.getElementById('toml') !== null",
        Duration::from_secs(10),
    )
    .unwrap_or_else(|e| panic!("no draft: {e}: {}", page.text()));
    let toml = page
        .eval("document.getElementById('toml').innerText")
        .unwrap();
    let toml = toml.as_str().unwrap();
    assert!(
        toml.contains("[[detect.exclusions]]") && toml.contains("/search"),
        "{toml}"
    );
    let (_, ex) = d.api("GET", "/v1/exclusions", None);
    assert!(
        !ex["exclusions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["source"] == "runtime"),
        "{ex}"
    );
    assert_eq!(get(SQLI), 403, "a draft is not applied");
    // The request matched more than one rule: widen to any rule on that
    // path and parameter.
    page.eval(
        "const f = document.querySelector('form[action$=\"/draft\"]'); \
         f.querySelector('[name=any_rule]').checked = true; f.submit(); true",
    )
    .unwrap();
    page.wait_for(
        "location.search.includes('any_rule=on') && document.getElementById('toml') !== null",
        Duration::from_secs(10),
    )
    .unwrap_or_else(|e| panic!("no redraft: {e}: {}", page.text()));
    let toml = page
        .eval("document.getElementById('toml').innerText")
        .unwrap();
    let toml = toml.as_str().unwrap();
    assert!(!toml.contains("rule ="), "{toml}");
    // Applied after the confirmation: the same request passes.
    page.eval("document.getElementById('apply').submit(); true")
        .unwrap();
    page.wait_for(
        "document.body && document.body.innerText.includes('in force from the next request')",
        Duration::from_secs(10),
    )
    .unwrap_or_else(|e| panic!("not applied: {e}: {}", page.text()));
    let (_, ex) = d.api("GET", "/v1/exclusions", None);
    let runtime: Vec<&Value> = ex["exclusions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["source"] == "runtime")
        .collect();
    assert_eq!(runtime.len(), 1, "{ex}");
    assert_eq!(get(SQLI), 200);
    // Removed from the page: blocked again.
    page.eval(
        "document.querySelector('#exclusions form[action=\"/ui/exclusions/remove\"]').submit(); true",
    )
    .unwrap();
    page.wait_for(
        "document.body && document.body.innerText.includes('removed exclusion')",
        Duration::from_secs(10),
    )
    .unwrap();
    assert_eq!(get(SQLI), 403);
    let (_, v) = d.api("GET", "/v1/stats", None);
    assert_eq!(v["api_panics"], 0, "{v}");
}

/// Logs in with the token through plain HTTP (no browser): the login
/// form's double-submit token, then the session cookie.
fn http_login(d: &TestDaemon) -> String {
    run_in(d.netns(), || {
        let agent = ureq::AgentBuilder::new().redirects(0).build();
        let form = agent.get(&format!("{BASE}/ui/login")).call().unwrap();
        let login = form
            .header("set-cookie")
            .and_then(|c| c.split(';').next())
            .expect("a login cookie")
            .to_string();
        let body = form.into_string().unwrap();
        let at = body.find("name=csrf value=\"").expect("a csrf field") + 17;
        let csrf = &body[at..at + body[at..].find('"').unwrap()];
        let r = agent
            .post(&format!("{BASE}/ui/login"))
            .set("Cookie", &login)
            .set("Content-Type", "application/x-www-form-urlencoded")
            .send_string(&format!("csrf={csrf}&token={TEST_TOKEN}"))
            .unwrap();
        assert_eq!(r.status(), 303);
        r.all("set-cookie")
            .into_iter()
            .find(|c| c.starts_with("waf_ui="))
            .and_then(|c| c.split(';').next())
            .expect("a session cookie")
            .to_string()
    })
}

#[test]
fn the_overview_ranks_rules_paths_and_sources_of_findings_within_seconds() {
    let lab = Lab::new();
    let _app = Upstream::start(&lab.srv, "127.0.0.1:8000");
    let d = TestDaemon::start(
        &lab,
        "[proxy]\nlisten = \"0.0.0.0:8080\"\nupstream = \"http://127.0.0.1:8000\"\n\n\
         [ban_policy]\nstrikes = 1000\n",
    );
    let cookie = http_login(&d);
    let get = |ns: &waf_tests::Netns, target: &str| {
        let raw = format!(
            "GET {target} HTTP/1.1\r\nHost: shop.test\r\nUser-Agent: Mozilla/5.0\r\n\
             Connection: close\r\n\r\n"
        );
        http_full(ns, &format!("{}:8080", Lab::SRV4), raw.as_bytes())
            .expect("the proxy answers")
            .0
    };
    // A path with markup in it: the page must show it as text.
    let odd = "/x%3Cb%3Ey";
    for _ in 0..3 {
        assert_eq!(
            get(
                &lab.attacker,
                "/search?q=1%27%20UNION%20SELECT%20password%20FROM%20users--"
            ),
            403
        );
    }
    assert_eq!(
        get(
            &lab.attacker,
            &format!("{odd}?q=%3Cscript%3Ealert(1)%3C/script%3E")
        ),
        403
    );
    assert_eq!(get(&lab.client, "/search?q=shoes"), 200);
    let sent = Instant::now();

    let mut live = Value::Null;
    wait_until(
        "the findings' tops on /ui/live",
        Duration::from_secs(3),
        || {
            let (code, _, body) = raw(&d, "GET", "/ui/live", Some(&cookie), None);
            assert_eq!(code, 200);
            live = serde_json::from_str(&body).unwrap();
            live["findings"]["hour"]["requests"] == 4
        },
    );
    eprintln!(
        "tops on /ui/live {:?} after the last attack",
        sent.elapsed()
    );
    let hour = &live["findings"]["hour"];
    assert_eq!(hour["blocked"], 4, "{hour}");
    assert_eq!(
        hour["paths"][0],
        serde_json::json!(["/search", 3]),
        "{hour}"
    );
    assert_eq!(hour["paths"][1][0], "/x<b>y", "{hour}");
    assert_eq!(
        hour["sources"][0],
        serde_json::json!([Lab::ATTACKER4, 4]),
        "{hour}"
    );
    assert!(
        hour["rules"][0][0].as_str().unwrap().starts_with("sqli"),
        "{hour}"
    );
    assert_eq!(hour["rules"][0][1], 3, "{hour}");
    assert_eq!(hour["kinds"][0], serde_json::json!(["sqli", 3]), "{hour}");
    assert_eq!(live["findings"]["short"]["requests"], 4, "{live}");
    assert_eq!(hour["approximate"], false);
    // The inspection counters: five requests inspected, four blocked.
    wait_until("the inspection sample", Duration::from_secs(3), || {
        let (_, _, body) = raw(&d, "GET", "/ui/live", Some(&cookie), None);
        let v: Value = serde_json::from_str(&body).unwrap();
        v["inspection"]["inspected"] == 5 && v["requests"]["blocked"] == 4
    });
    // The page, rendered by the daemon, escapes the keys.
    let (code, _, page) = raw(&d, "GET", "/ui", Some(&cookie), None);
    assert_eq!(code, 200);
    assert!(page.contains("id=top-rules"), "{page}");
    assert!(page.contains("<td>/search</td><td>3</td>"), "{page}");
    assert!(page.contains("/x&lt;b&gt;y"), "{page}");
    assert!(!page.contains("/x<b>y"), "{page}");
    let (_, st) = d.api("GET", "/v1/stats", None);
    assert_eq!(st["findings"]["inspected"]["proxy"], 5, "{st}");

    // The script keeps the tables current and switches to five minutes;
    // keys are set as text.
    let browser = Browser::launch(&lab.srv);
    let page = browser.new_page();
    login(&page);
    page.wait_for(
        "document.querySelector('#top-paths tbody').innerText.includes('/x<b>y') && \
         !document.querySelector('#top-paths b')",
        Duration::from_secs(5),
    )
    .unwrap_or_else(|e| panic!("{e}: {}", page.text()));
    page.eval(
        "const w = document.getElementById('tops-window'); w.value = 'short'; \
         w.dispatchEvent(new Event('change')); true",
    )
    .unwrap();
    page.wait_for(
        "document.getElementById('tops-summary').textContent.startsWith('4 requests, 4 blocked') \
         && document.querySelector('#top-rules tbody td').textContent.startsWith('sqli')",
        Duration::from_secs(5),
    )
    .unwrap_or_else(|e| panic!("{e}: {}", page.text()));
}
