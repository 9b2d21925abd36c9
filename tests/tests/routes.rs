//! `[[routes]]` end to end, in network namespaces: a client talks to the
//! daemon's proxy in front of a real application; per route, methods (405),
//! body limits (413, announced and chunked), request limits (429), CORS
//! preflights and response headers, time windows (403 outside, on the real
//! clock: the fake-clock cases are unit tests of `routes::window`), exempt
//! routes, and a path written to read as two routes meeting both.
//! `waf route` prints what a path meets; the old keys are refused.

use std::sync::atomic::Ordering;

use waf_tests::{Lab, TestDaemon, Upstream, http_full};

fn server() -> String {
    format!("{}:8080", Lab::SRV4)
}

fn req(method: &str, path: &str, extra: &str, body: &str) -> Vec<u8> {
    let len = if body.is_empty() && method == "GET" {
        String::new()
    } else {
        format!("Content-Length: {}\r\n", body.len())
    };
    format!(
        "{method} {path} HTTP/1.1\r\nHost: shop\r\nUser-Agent: Mozilla/5.0\r\n{extra}{len}\
         Connection: close\r\n\r\n{body}"
    )
    .into_bytes()
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// `HH:MM` of the UTC clock, `h` hours from now.
fn utc_hhmm(h: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let m = (now / 60 + h * 60).rem_euclid(24 * 60);
    format!("{:02}:{:02}", m / 60, m % 60)
}

#[test]
fn routes_enforce_methods_limits_sizes_cors_and_windows() {
    let lab = Lab::new();
    let app = Upstream::start(&lab.srv, "127.0.0.1:8000");
    let open = format!("{}-{}", utc_hhmm(-1), utc_hhmm(1));
    let closed = format!("{}-{}", utc_hhmm(3), utc_hhmm(4));
    let routes = format!(
        "[[routes]]\npath = \"/health\"\nexempt = true\n\n\
         [[routes]]\npath = \"/api/*\"\nmethods = [\"GET\", \"POST\"]\nmax_body = 1024\n\
         cors = {{ origins = [\"https://app.example\"], credentials = true, headers = [\"x-token\"], max_age = \"10m\" }}\n\n\
         [[routes]]\npath = \"/login\"\nrate_limits = [{{ requests = 3, per = \"1m\" }}]\n\n\
         [[routes]]\npath = \"/open/*\"\nhours = \"{open}\"\ntimezone = \"UTC\"\n\n\
         [[routes]]\npath = \"/closed/*\"\nhours = \"{closed}\"\n\n\
         [[routes]]\npath = \"/bots/*\"\nchallenge = \"block\"\n\n"
    );
    let d = TestDaemon::start(
        &lab,
        &format!(
            "[proxy]\nlisten = \"0.0.0.0:8080\"\nupstream = \"http://127.0.0.1:8000\"\n\
             access_log = \"off\"\n\n[ban_policy]\nstrikes = 1000\n\n\
             [challenge]\nthreshold = 30\n\n{routes}"
        ),
    );
    let send = |raw: Vec<u8>| http_full(&lab.client, &server(), &raw).expect("proxy answers");

    // Methods: 405 with Allow; the application never sees it.
    let before = app.served.load(Ordering::SeqCst);
    let (code, head, _) = send(req("DELETE", "/api/items/1", "", ""));
    assert_eq!(code, 405, "{head}");
    assert_eq!(header(&head, "allow"), Some("GET, POST"));
    assert_eq!(send(req("GET", "/api/items/1", "", "")).0, 200);
    assert_eq!(app.served.load(Ordering::SeqCst), before + 1);

    // Body limit: announced, and chunked without a length.
    assert_eq!(
        send(req("POST", "/api/items", "", &"a".repeat(1024))).0,
        200
    );
    assert_eq!(
        send(req("POST", "/api/items", "", &"a".repeat(1025))).0,
        413
    );
    let chunk = "a".repeat(800);
    let chunked = format!(
        "POST /api/items HTTP/1.1\r\nHost: shop\r\nUser-Agent: Mozilla/5.0\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
         320\r\n{chunk}\r\n320\r\n{chunk}\r\n0\r\n\r\n"
    );
    assert_eq!(send(chunked.into_bytes()).0, 413);
    // The inspection limit is not the route's: elsewhere 2 kB is fine.
    assert_eq!(send(req("POST", "/other", "", &"a".repeat(2048))).0, 200);

    // CORS: preflights answered here, refused for another origin, method
    // or header; responses carry the headers for an allowed origin only.
    let pre = |origin: &str, method: &str, hdrs: &str| {
        send(req(
            "OPTIONS",
            "/api/items",
            &format!(
                "Origin: {origin}\r\nAccess-Control-Request-Method: {method}\r\n\
                 Access-Control-Request-Headers: {hdrs}\r\n"
            ),
            "",
        ))
    };
    let served = app.served.load(Ordering::SeqCst);
    let (code, head, _) = pre("https://app.example", "POST", "x-token");
    assert_eq!(code, 204, "{head}");
    assert_eq!(
        header(&head, "access-control-allow-origin"),
        Some("https://app.example")
    );
    assert_eq!(
        header(&head, "access-control-allow-credentials"),
        Some("true")
    );
    assert_eq!(header(&head, "access-control-max-age"), Some("600"));
    assert_eq!(pre("https://evil.example", "POST", "x-token").0, 403);
    assert_eq!(pre("https://app.example", "PUT", "x-token").0, 403);
    assert_eq!(pre("https://app.example", "GET", "x-other").0, 403);
    assert_eq!(
        app.served.load(Ordering::SeqCst),
        served,
        "preflights stay here"
    );
    let (_, head, _) = send(req(
        "GET",
        "/api/items",
        "Origin: https://app.example\r\n",
        "",
    ));
    assert_eq!(
        header(&head, "access-control-allow-origin"),
        Some("https://app.example")
    );
    let (_, head, _) = send(req(
        "GET",
        "/api/items",
        "Origin: https://evil.example\r\n",
        "",
    ));
    assert_eq!(header(&head, "access-control-allow-origin"), None, "{head}");

    // Request limits per route and source: 3 a minute on /login only.
    for i in 0..3 {
        assert_eq!(send(req("GET", "/login", "", "")).0, 200, "request {i}");
    }
    let (code, head, _) = send(req("GET", "/login", "", ""));
    assert_eq!(code, 429);
    assert!(header(&head, "retry-after").is_some());
    assert_eq!(send(req("GET", "/other", "", "")).0, 200);

    // A route that blocks bots, with the challenge off: `[challenge]
    // threshold` holds (a browser user agent with Accept but neither
    // Accept-Language nor Accept-Encoding scores 40: refused at 30, where
    // the default 60 would pass it), and no challenge key is made.
    assert_eq!(
        send(req("GET", "/bots/x", "Accept: text/html\r\n", "")).0,
        403
    );
    assert_eq!(
        send(req(
            "GET",
            "/bots/x",
            "Accept: text/html\r\nAccept-Encoding: gzip\r\n",
            ""
        ))
        .0,
        200
    );
    assert!(!d.state_dir.join("challenge.key").exists());

    // Time windows on the real clock.
    assert_eq!(send(req("GET", "/open/report", "", "")).0, 200);
    assert_eq!(send(req("GET", "/closed/report", "", "")).0, 403);

    // Exempt: an attack in the query reaches the application; a path that
    // also reads as another route is not exempt, and meets that route.
    let attack = "?q=1%27%20UNION%20SELECT%20password%20FROM%20users--";
    assert_eq!(send(req("GET", &format!("/health{attack}"), "", "")).0, 200);
    assert_eq!(
        send(req("GET", &format!("/health;/../other{attack}"), "", "")).0,
        403,
        "a path that reads as /health and /other is inspected"
    );
    assert_eq!(send(req("DELETE", "/api/..%252fhealth", "", "")).0, 405);

    // `waf route` reads the same config.
    let out = d.cli(&[
        "route",
        "/api/x;y/../z",
        "--config",
        d.config.to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("#1 /api/*"), "{text}");
    assert!(text.contains("methods [\"GET\",\"POST\"]"), "{text}");
    let out = d.cli(&[
        "--json",
        "route",
        "/health",
        "--config",
        d.config.to_str().unwrap(),
    ]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["effective"]["exempt"], true);
    let stats = d.api("GET", "/v1/stats", None).1;
    assert!(
        stats["proxy"]["method_not_allowed"].as_u64().unwrap() >= 2,
        "{stats}"
    );
    assert!(stats["proxy"]["route_closed"].as_u64().unwrap() >= 1);
    assert!(stats["proxy"]["cors_refused"].as_u64().unwrap() >= 3);
}

#[test]
fn old_per_path_keys_are_refused_with_their_replacement() {
    let dir = std::env::temp_dir().join(waf_tests::unique("waf-routes-old-"));
    std::fs::create_dir_all(&dir).unwrap();
    for (text, key, hint) in [
        (
            "[detect]\nexempt_paths = [\"/health\"]\n",
            "detect.exempt_paths",
            "exempt = true",
        ),
        (
            "[proxy]\nrate_limits = [{ path = \"/login\", requests = 5, per = \"1m\" }]\n",
            "proxy.rate_limits[0].path",
            "[[routes]]",
        ),
    ] {
        let f = dir.join("waf.toml");
        std::fs::write(&f, text).unwrap();
        let out = std::process::Command::new(waf_tests::waf_bin())
            .args(["check-config", f.to_str().unwrap()])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(err.contains(key) && err.contains(hint), "{err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Time windows on a fake clock (`WAF_FAKE_NOW`, honoured by debug builds
/// only): office hours in Paris on weekdays, and a night window that
/// starts on Thursday and runs past midnight, at two instants a minute
/// apart around 08:00 in Paris on Friday 2026-12-04.
#[test]
fn time_windows_follow_the_clock_and_the_zone() {
    let lab = Lab::new();
    let _app = Upstream::start(&lab.srv, "127.0.0.1:8000");
    let mut d = TestDaemon::configure(
        &lab,
        "[proxy]\nlisten = \"0.0.0.0:8080\"\nupstream = \"http://127.0.0.1:8000\"\n\
         access_log = \"off\"\n\n\
         [[routes]]\npath = \"/office/*\"\nhours = \"08:00-18:00\"\n\
         days = [\"mon\", \"tue\", \"wed\", \"thu\", \"fri\"]\ntimezone = \"Europe/Paris\"\n\n\
         [[routes]]\npath = \"/night/*\"\nhours = \"22:00-08:00\"\ndays = [\"thu\"]\n\
         timezone = \"Europe/Paris\"\n",
    );
    let send = |path: &str| {
        http_full(&lab.client, &server(), &req("GET", path, "", ""))
            .expect("proxy answers")
            .0
    };
    // 06:59:30 UTC = 07:59:30 in Paris (winter time), a Friday.
    d.wrap = vec!["env".into(), "WAF_FAKE_NOW=1796367570".into()];
    d.spawn(&lab);
    assert_eq!(send("/office/report"), 403, "before office hours");
    assert_eq!(
        send("/night/batch"),
        200,
        "Thursday's night runs until 08:00"
    );
    d.stop();
    // 07:00:30 UTC = 08:00:30 in Paris.
    d.wrap = vec!["env".into(), "WAF_FAKE_NOW=1796367630".into()];
    d.spawn(&lab);
    assert_eq!(send("/office/report"), 200, "office hours");
    assert_eq!(send("/night/batch"), 403, "the night is over");
    assert!(d.log_text().contains("WAF_FAKE_NOW"));
}
