use std::time::{Duration, Instant};

use ipnet::IpNet;

use super::{table::SLOTS, *};
use crate::{
    http::{Limits, Request},
    values::Dur,
};

mod headers;
mod props;

pub(super) fn cfg(toml_text: &str) -> Result<MonitorsConfig, String> {
    toml::from_str(toml_text).map_err(|e| e.to_string())
}

pub(super) fn monitors(toml_text: &str) -> Monitors {
    Monitors::new(&cfg(toml_text).expect("toml")).expect("valid")
}

pub(super) fn src(i: u32) -> IpNet {
    IpNet::from(std::net::IpAddr::from(std::net::Ipv4Addr::from(
        0xC633_6400 + i,
    )))
}

pub(super) fn ms(t0: Instant, n: u64) -> Instant {
    t0 + Duration::from_millis(n)
}

pub(super) fn get<'a>(path: &'a str, headers: &'a [(&'a str, &'a str)]) -> RequestFacts<'a> {
    RequestFacts {
        method: "GET",
        path,
        http10: false,
        headers,
        referer: None,
    }
}

#[test]
fn config_defaults_keys_and_messages() {
    let c = cfg("").unwrap();
    assert!(c.is_empty() && c.validate().is_ok());
    assert_eq!(Monitors::new(&c).unwrap().tracked(), 0);
    let c = cfg(r#"
        [usage]
        routes = ["/api/search*"]
        [not_found]
        [auth_failures]
        count = 5
        window = "5m"
        [server_errors]
        action = "ban"
        [honeypot]
        fields = ["website"]
        paths = ["/wp-admin*", "/.env"]
        min_form_seconds = 1.5
        [headers]
    "#)
    .unwrap();
    assert!(!c.is_empty());
    let k = c.compile().unwrap();
    let u = k.usage.unwrap();
    assert_eq!((u.limit.threshold, u.limit.window), (101, Dur::secs(60)));
    assert_eq!(u.limit.action, MonitorAction::Strike);
    assert_eq!(k.not_found.unwrap().threshold, 30);
    let a = k.auth_failures.unwrap();
    assert_eq!((a.threshold, a.window), (5, Dur::secs(300)));
    assert_eq!(k.server_errors.unwrap().action, MonitorAction::Ban);
    let h = k.honeypot.unwrap();
    assert_eq!((h.limit.threshold, h.limit.action), (1, MonitorAction::Ban));
    assert_eq!(h.min_form, Some(Duration::from_millis(1500)));
    let hd = k.headers.unwrap();
    assert_eq!((hd.threshold, hd.window), (3, Dur::secs(600)));
    assert_eq!(MonitorAction::Ban.as_str(), "ban");

    for (text, want) in [
        (
            "[usage]\nroutes = [\"/a\"]\ncount = 0",
            "monitors.usage.count: must be at least 1",
        ),
        ("[usage]\nroutes = []", "monitors.usage.routes"),
        ("[usage]\nroutes = [\"api\"]", "monitors.usage.routes"),
        (
            "[not_found]\ncount = 65",
            "monitors.not_found.count: at most 64",
        ),
        (
            "[auth_failures]\nwindow = 0",
            "monitors.auth_failures.window",
        ),
        ("[server_errors]\ncount = 0", "monitors.server_errors.count"),
        ("[headers]\ncount = 0", "monitors.headers.count"),
        (
            "[honeypot]\nmin_form_seconds = -1.0",
            "monitors.honeypot.min_form_seconds",
        ),
        (
            "[honeypot]\nmin_form_seconds = 3601.0",
            "monitors.honeypot.min_form_seconds",
        ),
        (
            "[honeypot]\nmin_form_seconds = nan",
            "monitors.honeypot.min_form_seconds",
        ),
        (
            "[honeypot]\nmin_form_seconds = 0.0",
            "monitors.honeypot: set paths",
        ),
        ("[honeypot]\nfields = [\"\"]", "monitors.honeypot.fields"),
        ("[honeypot]\npaths = [\"x\"]", "monitors.honeypot.paths"),
    ] {
        let e = cfg(text).unwrap().validate().unwrap_err();
        assert!(e.starts_with(want), "{text}: {e}");
        assert!(Monitors::new(&cfg(text).unwrap()).is_err());
    }
    let many: Vec<String> = (0..65).map(|i| format!("\"/{i}\"")).collect();
    let text = format!("[usage]\nroutes = [{}]", many.join(","));
    assert!(cfg(&text).unwrap().validate().is_err());
    assert!(cfg("[usage]\nroutes = [\"/a\"]\nlimit = 3").is_err());
    assert!(cfg("[headers]\naction = \"block\"").is_err());
    assert!(cfg("[nope]").is_err());
    // The largest values are accepted.
    let huge = "[auth_failures]\ncount = 4294967295\nwindow = \"3650d\"";
    assert!(cfg(huge).unwrap().validate().is_ok());
}

#[test]
fn usage_allows_count_calls_and_the_next_one_fires() {
    let m = monitors("[usage]\nroutes = [\"/api/search*\", \"/api/*\"]\ncount = 3\nwindow = 60");
    let t0 = Instant::now();
    let s = src(1);
    let mut fired = Vec::new();
    for i in 0..8u64 {
        let hits = m.on_request(s, ms(t0, i), &get("/api/search", &[]));
        fired.push(hits.len());
        for h in &hits {
            assert_eq!((h.monitor, h.action), ("usage", MonitorAction::Strike));
        }
    }
    // Both globs match: calls 4 and 8 fire for each (the counter resets).
    assert_eq!(fired, [0, 0, 0, 2, 0, 0, 0, 2]);
    let h = &m.on_request(s, ms(t0, 9), &get("/API/Search", &[]));
    assert!(h.is_empty());
    let hits: Vec<_> = (10..13)
        .flat_map(|i| m.on_request(s, ms(t0, i), &get("/api/search/x", &[])))
        .collect();
    assert_eq!(hits.len(), 2, "{hits:?}");
    assert_eq!(
        hits[0].evidence,
        "4 calls to /api/search* in 1m, last /api/search/x"
    );
    assert_eq!(
        hits[1].evidence,
        "4 calls to /api/* in 1m, last /api/search/x"
    );
    // Other paths and other sources are apart.
    assert!(m.on_request(s, ms(t0, 20), &get("/other", &[])).is_empty());
    for i in 0..3 {
        assert!(
            m.on_request(src(2), ms(t0, i), &get("/api/x", &[]))
                .is_empty()
        );
    }
}

#[test]
fn misbehaviour_fires_on_the_count_th_event_and_windows_slide() {
    let m = monitors("[auth_failures]\ncount = 3\nwindow = \"10s\"");
    let t0 = Instant::now();
    let s = src(1);
    let fail = |t: u64| m.on_response(s, ms(t0, t), "POST", "/login", 401).len();
    assert_eq!((fail(0), fail(1)), (0, 0));
    assert_eq!(fail(2), 1, "count-th");
    assert_eq!((fail(3), fail(4)), (0, 0), "reset after a hit");
    assert_eq!(fail(5), 1);
    // Spaced at the window or wider: never three in one window.
    for i in 0..20 {
        assert_eq!(fail(100_000 + i * 5_000), 0, "{i}");
    }
    // The window's edge: an event exactly `window` old has left it.
    let m = monitors("[auth_failures]\ncount = 2\nwindow = \"10s\"");
    let fail = |t: u64| m.on_response(s, ms(t0, t), "GET", "/x", 403).len();
    assert_eq!((fail(0), fail(10_000)), (0, 0));
    assert_eq!(fail(19_999), 1);
}

#[test]
fn statuses_and_their_monitors() {
    let m = monitors("[auth_failures]\ncount = 1\n[server_errors]\ncount = 1\naction = \"ban\"");
    let t0 = Instant::now();
    let s = src(3);
    let r = |st: u16| m.on_response(s, t0, "GET", "/r", st);
    assert_eq!(r(401)[0].monitor, "auth_failures");
    assert_eq!(r(403)[0].evidence, "1 auth failures in 1m, last 403 /r");
    for st in [500, 501, 505, 599] {
        let h = r(st);
        assert_eq!(
            (h[0].monitor, h[0].action),
            ("server_errors", MonitorAction::Ban)
        );
    }
    for st in [
        200,
        204,
        301,
        400,
        404,
        429,
        502,
        503,
        504,
        600,
        0,
        u16::MAX,
    ] {
        assert!(r(st).is_empty(), "{st}");
    }
    // Off monitors see nothing and hold nothing.
    assert_eq!(m.tracked(), 2);
    let off = monitors("[headers]");
    assert!(off.on_response(s, t0, "GET", "/", 500).is_empty());
    assert_eq!(off.tracked(), 0);
}

#[test]
fn not_found_counts_distinct_paths() {
    let m = monitors("[not_found]\ncount = 4\nwindow = \"1m\"");
    let t0 = Instant::now();
    let (s, other) = (src(1), src(2));
    let nf = |s: IpNet, t: u64, p: &str| m.on_response(s, ms(t0, t), "GET", p, 404);
    for t in 0..50 {
        assert!(nf(s, t, "/favicon.ico").is_empty(), "one path, again");
    }
    assert!(nf(s, 60, "/item/1").is_empty());
    assert!(nf(s, 61, "/item/2").is_empty());
    assert!(nf(other, 62, "/item/3").is_empty(), "another source");
    let h = nf(s, 63, "/item/3");
    assert_eq!(h.len(), 1);
    assert_eq!(
        h[0].evidence,
        "4 distinct not-found paths in 1m, last /item/3"
    );
    // A path seen again stays in the window from its last sighting.
    assert!(nf(s, 0, "/a").is_empty());
    for p in ["/b", "/c"] {
        assert!(nf(s, 30_000, p).is_empty());
    }
    assert!(nf(s, 59_000, "/a").is_empty(), "refreshed, still 3");
    assert!(nf(s, 95_000, "/d").is_empty(), "b and c left: a, d");
    assert!(nf(s, 96_000, "/e").is_empty());
    assert_eq!(nf(s, 97_000, "/f").len(), 1);
}

#[test]
fn honeypot_trap_paths_and_hidden_fields() {
    let m = monitors(
        "[honeypot]\nfields = [\"website\", \"fax\"]\npaths = [\"/wp-admin*\", \"/.env\"]",
    );
    let t0 = Instant::now();
    let s = src(1);
    let h = m.on_request(s, t0, &get("/WP-Admin/setup-config.php", &[]));
    assert_eq!(h.len(), 1);
    assert_eq!(
        (h[0].monitor, h[0].action),
        ("honeypot", MonitorAction::Ban)
    );
    assert_eq!(h[0].evidence, "trap path /WP-Admin/setup-config.php");
    assert_eq!(m.on_request(s, t0, &get("/.env", &[])).len(), 1);
    assert!(m.on_request(s, t0, &get("/.env.example", &[])).is_empty());
    assert!(m.on_request(s, t0, &get("/blog/wp-admin", &[])).is_empty());

    let body = |ct: &str, raw: &str| {
        let head = format!(
            "POST /contact?website=x HTTP/1.1\r\nHost: a\r\nContent-Type: {ct}\r\n\
             Content-Length: {}\r\n\r\n{raw}",
            raw.len()
        );
        Request::parse(head.as_bytes(), &Limits::default())
            .expect("request")
            .parsed_body
    };
    let form = "application/x-www-form-urlencoded";
    let hits = |b: &Body| m.on_form(s, t0, b);
    assert!(
        hits(&body(form, "name=a&website=")).is_empty(),
        "left empty"
    );
    assert!(hits(&body(form, "name=a&website")).is_empty(), "no value");
    assert!(hits(&body(form, "name=a")).is_empty(), "absent");
    assert!(
        hits(&body(form, "Website=x&web+site=x")).is_empty(),
        "exact names"
    );
    let h = hits(&body(form, "name=a&website=http%3A%2F%2Fspam"));
    assert_eq!(h[0].evidence, "hidden field website filled");
    assert_eq!(hits(&body(form, "fax=%20")).len(), 1, "blanks fill it");
    assert_eq!(hits(&body(form, "fa%78=1")).len(), 1, "decoded name");
    let mp = "--XX\r\nContent-Disposition: form-data; name=\"fax\"\r\n\r\n0123\r\n--XX--\r\n";
    assert_eq!(hits(&body("multipart/form-data; boundary=XX", mp)).len(), 1);
    let mp = "--XX\r\nContent-Disposition: form-data; name=\"fax\"\r\n\r\n\r\n--XX--\r\n";
    assert!(hits(&body("multipart/form-data; boundary=XX", mp)).is_empty());
    assert!(hits(&body("application/json", "{\"website\":\"x\"}")).is_empty());
    assert!(hits(&Body::None).is_empty() && hits(&Body::Raw).is_empty());
    assert!(
        monitors("[headers]")
            .on_form(s, t0, &body(form, "website=x"))
            .is_empty()
    );
}

fn post<'a>(path: &'a str, headers: &'a [(&'a str, &'a str)]) -> RequestFacts<'a> {
    RequestFacts {
        method: "POST",
        ..get(path, headers)
    }
}

#[test]
fn honeypot_forms_posted_too_fast() {
    let m = monitors("[honeypot]\nmin_form_seconds = 2\ncount = 2\naction = \"strike\"");
    let t0 = Instant::now();
    let s = src(1);
    let ct = (
        "content-type",
        "application/x-www-form-urlencoded; charset=UTF-8",
    );
    let from_contact = [ct, ("referer", "https://shop.example/contact?step=2#f")];
    let page = |s: IpNet, t: u64, p: &str, st: u16| m.on_response(s, ms(t0, t), "GET", p, st);
    let fast = |s: IpNet, t: u64, h: &[(&str, &str)]| m.on_request(s, ms(t0, t), &post("/send", h));
    // No page got: an API client.
    assert!(fast(s, 0, &from_contact).is_empty());
    assert!(page(s, 1_000, "/contact", 200).is_empty());
    assert!(fast(s, 1_300, &from_contact).is_empty(), "first hit of two");
    let h = fast(s, 2_999, &from_contact);
    assert_eq!(h.len(), 1);
    assert_eq!(
        h[0].evidence,
        "2 honeypot hits in 1h, last form posted 1.999s after GET /contact (min 2.000s)"
    );
    assert_eq!(h[0].action, MonitorAction::Strike);
    // Two seconds or more: a person.
    for t in [3_000, 3_001, 60_000] {
        assert!(fast(s, t, &from_contact).is_empty(), "{t}");
    }
    // Not a form, not a POST, another source, another page: no hit.
    page(s, 100_000, "/contact", 200);
    let json = [("content-type", "application/json"), from_contact[1]];
    assert!(fast(s, 100_100, &json).is_empty());
    assert!(
        m.on_request(s, ms(t0, 100_100), &get("/send", &from_contact))
            .is_empty()
    );
    assert!(fast(src(2), 100_100, &from_contact).is_empty());
    let elsewhere = [ct, ("referer", "https://shop.example/other")];
    assert!(fast(s, 100_100, &elsewhere).is_empty());
    // Assets, errors and other methods are not pages.
    page(s, 200_000, "/app.js", 200);
    page(s, 200_000, "/gone", 404);
    assert!(
        m.on_response(s, ms(t0, 200_000), "POST", "/made", 201)
            .is_empty()
    );
    for p in ["/app.js", "/gone", "/made"] {
        let r = format!("http://h{p}");
        let h = [ct, ("referer", r.as_str())];
        assert!(fast(s, 200_001, &h).is_empty(), "{p}");
    }
    // Without a Referer, the POST's own path; the facts' referer wins.
    page(s, 300_000, "/login.php", 200);
    assert!(
        m.on_request(s, ms(t0, 300_010), &post("/login.php", &[ct]))
            .is_empty()
    );
    assert_eq!(
        m.on_request(s, ms(t0, 300_020), &post("/login.php", &[ct]))
            .len(),
        1
    );
    page(s, 400_000, "/a/b/", 200);
    let only_ct = [ct];
    let facts = RequestFacts {
        referer: Some("http://h/a/./b/?q"),
        ..post("/x", &only_ct)
    };
    assert!(m.on_request(s, ms(t0, 400_001), &facts).is_empty());
    assert_eq!(m.on_request(s, ms(t0, 400_002), &facts).len(), 1);
    // Pages are kept only for min_form_seconds.
    assert!(m.tracked() > 0);
    m.retain_recent(ms(t0, 10_000_000));
    assert_eq!(m.tracked(), 0);
}

#[test]
fn referer_paths_and_pages() {
    use super::honeypot::{page_like, referer_path};
    for (r, want) in [
        ("https://a.example/x/y?z#w", Some("/x/y")),
        ("https://a.example", Some("/")),
        ("https://a.example?q=1", Some("/")),
        ("http://a:8080/%7Euser/./p", Some("/~user/p")),
        ("/rel/path", Some("/rel/path")),
        ("", None),
        ("android-app://com.x/", Some("/")),
        ("nonsense", None),
        ("://x/y", None),
        ("é://x/y", None),
    ] {
        assert_eq!(referer_path(r).as_deref(), want, "{r}");
    }
    assert!(referer_path(&format!("http://h/{}", "a".repeat(5000))).is_none());
    for p in [
        "/",
        "/contact",
        "/a/b/",
        "/index.html",
        "/x.PHP",
        "/v1.2/form",
    ] {
        assert!(page_like(p), "{p}");
    }
    for p in [
        "/app.js",
        "/s.css",
        "/i.png",
        "/favicon.ico",
        "/.well-known",
    ] {
        assert!(!page_like(p), "{p}");
    }
}

#[test]
fn evidence_is_bounded_and_printable() {
    let m = monitors("[not_found]\ncount = 1\n[honeypot]\npaths = [\"/trap*\"]");
    let t0 = Instant::now();
    let long = format!("/x\u{1b}[31m\n{}", "é".repeat(10_000));
    let h = m.on_response(src(1), t0, "GET", &long, 404);
    assert!(h[0].evidence.chars().count() <= MAX_EVIDENCE);
    assert!(
        !h[0].evidence.chars().any(char::is_control),
        "{:?}",
        h[0].evidence
    );
    assert!(h[0].evidence.ends_with('…'));
    let trap = format!("/trap{long}");
    let h = m.on_request(src(1), t0, &get(&trap, &[]));
    assert!(h[0].evidence.chars().count() <= MAX_EVIDENCE);
}

#[test]
fn time_going_backwards_and_extreme_values() {
    let m = monitors(
        "[auth_failures]\ncount = 3\nwindow = \"10s\"\n\
         [server_errors]\ncount = 4294967295\nwindow = \"3650d\"\n\
         [usage]\nroutes = [\"*\"]\ncount = 4294967295\nwindow = \"3650d\"",
    );
    let t0 = Instant::now() + Duration::from_secs(1_000_000);
    let s = src(1);
    // Backwards: no time passed, so three failures are within the window.
    let at = |t: Instant| m.on_response(s, t, "GET", "/", 401).len();
    assert_eq!(at(t0 + Duration::from_secs(100)), 0);
    assert_eq!(at(t0), 0);
    assert_eq!(at(t0 - Duration::from_secs(1_000)), 1);
    for i in 0..10_000u64 {
        let t = ms(t0, i * 997);
        assert!(m.on_response(s, t, "GET", "/", 500).is_empty());
        assert!(m.on_request(s, t, &get("/p", &[])).is_empty());
    }
    assert_eq!(m.tracked(), 3);
}

#[test]
fn counters_are_exact_up_to_the_slots_then_merge_without_firing_early() {
    use super::table::{Counter, Ticks};
    let t0 = Instant::now();
    let t = Ticks::new(Duration::from_secs(16));
    let mut c = Counter::new(t0);
    for i in 0..15 {
        assert_eq!(c.record(ms(t0, i * 1_000), &t, 16), None);
    }
    assert_eq!(c.slots(), 15);
    assert_eq!(c.record(ms(t0, 15_000), &t, 16), Some(16));
    // A threshold of 100 at one event a 100 ms: 16 slots of a second.
    let mut c = Counter::new(t0);
    let mut fired = None;
    for i in 0..1_000 {
        if let Some(n) = c.record(ms(t0, i * 100), &t, 100) {
            fired = Some((i, n));
            break;
        }
        assert!(c.slots() <= SLOTS && c.held() < 100);
    }
    assert_eq!(fired, Some((99, 100)));
    // At one event a 200 ms the window only ever holds 80: never fires.
    let mut c = Counter::new(t0);
    for i in 0..2_000 {
        assert_eq!(c.record(ms(t0, i * 200), &t, 100), None);
    }
}

#[test]
fn clocks_rebase_over_long_runs() {
    let m = monitors(
        "[auth_failures]\ncount = 2\nwindow = \"1s\"\n[not_found]\ncount = 2\nwindow = \"1s\"",
    );
    let t0 = Instant::now();
    let s = src(1);
    // 2^30 ms is past the rebase point of a 1 ms tick, several times.
    for k in 1..6u64 {
        let base = ms(t0, k << 30);
        assert!(m.on_response(s, base, "GET", "/", 401).is_empty(), "{k}");
        let h = m.on_response(s, base + Duration::from_millis(999), "GET", "/", 401);
        assert_eq!(h.len(), 1, "{k}");
        assert!(m.on_response(s, base, "GET", "/a", 404).is_empty());
        assert!(
            m.on_response(s, base + Duration::from_secs(1), "GET", "/b", 404)
                .is_empty()
        );
        assert_eq!(
            m.on_response(s, base + Duration::from_millis(1500), "GET", "/c", 404)
                .len(),
            1
        );
    }
}

#[test]
fn tables_are_capped_and_offenders_survive_a_rotating_flood() {
    let m = monitors("[auth_failures]\ncount = 5\nwindow = \"1h\"");
    let t0 = Instant::now();
    let offender = src(0);
    for i in 0..4 {
        assert!(
            m.on_response(offender, ms(t0, i), "GET", "/", 401)
                .is_empty()
        );
    }
    let flood = (MAX_KEYS * 2) as u32;
    for i in 1..=flood {
        let v6: IpNet = format!("2001:db8:{:x}:{:x}::/64", i >> 16, i & 0xffff)
            .parse()
            .unwrap();
        assert!(m.on_response(v6, ms(t0, 10), "GET", "/", 401).is_empty());
        assert!(m.tracked() <= MAX_KEYS);
    }
    assert_eq!(m.tracked(), MAX_KEYS);
    // The offender's four failures were kept: the fifth fires.
    assert_eq!(
        m.on_response(offender, ms(t0, 20), "GET", "/", 401).len(),
        1
    );
    m.retain_recent(ms(t0, 3_600_020));
    assert_eq!(m.tracked(), 0);
}

#[test]
fn monitors_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Monitors>();
    let m = std::sync::Arc::new(monitors("[auth_failures]\ncount = 1000\nwindow = \"1h\""));
    let t0 = Instant::now();
    let threads: Vec<_> = (0..4)
        .map(|k| {
            let m = m.clone();
            std::thread::spawn(move || {
                (0..250u64)
                    .map(|i| {
                        m.on_response(src(7), ms(t0, k * 1000 + i), "GET", "/", 401)
                            .len()
                    })
                    .sum::<usize>()
            })
        })
        .collect();
    let hits: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(hits, 1);
}

/// The README's example, as the config file holds it.
#[test]
fn the_readme_example_is_valid() {
    #[derive(serde::Deserialize)]
    struct File {
        monitors: MonitorsConfig,
    }
    let f: File = toml::from_str(
        r#"
[monitors.usage]
routes = ["/api/search*", "/login"]
count = 100
window = "1m"
action = "strike"

[monitors.not_found]
count = 30
window = "1m"

[monitors.auth_failures]
count = 10
window = "1m"

[monitors.server_errors]
count = 10
window = "1m"

[monitors.honeypot]
paths = ["/wp-admin*", "/wp-login.php", "/.env", "/.git/*"]
fields = ["website_url"]
min_form_seconds = 2
count = 1
window = "1h"
action = "ban"

[monitors.headers]
count = 3
window = "10m"
action = "strike"
"#,
    )
    .expect("toml");
    let m = Monitors::new(&f.monitors).expect("valid");
    assert!(!f.monitors.is_empty());
    let t0 = Instant::now();
    let h = m.on_request(src(1), t0, &get("/.git/config", &[]));
    assert_eq!(
        (h[0].monitor, h[0].action),
        ("honeypot", MonitorAction::Ban)
    );
}
