//! The `headers` monitor: its rules on chosen header sets, on real
//! browsers, and on the development corpus's browser requests.

use std::{
    collections::HashMap,
    io::{BufRead, BufReader},
    path::Path,
    time::Instant,
};

use super::{get, monitors, ms, src};
use crate::{
    http::{Limits, Request},
    monitors::{MonitorAction, headers},
};

const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 \
                                 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36";
const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
const SAFARI_IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) \
                                        AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 \
                                        Mobile/15E148 Safari/604.1";
const BROWSER: &[(&str, &str)] = &[
    ("user-agent", CHROME),
    ("accept", "text/html,*/*;q=0.8"),
    ("accept-language", "en-GB,en;q=0.9"),
    ("accept-encoding", "gzip, deflate, br"),
];

#[test]
fn header_rules() {
    let t = |headers: &[(&str, &str)], http10: bool| headers::judge(headers, http10);
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut h = BROWSER.to_vec();
        h.extend_from_slice(extra);
        h
    };
    assert!(t(BROWSER, false).is_empty());
    let no_al: Vec<_> = BROWSER
        .iter()
        .copied()
        .filter(|h| h.0 != "accept-language")
        .collect();
    assert_eq!(t(&no_al, false), ["no_accept_language"]);
    assert_eq!(t(&with(&[]), true), ["http10"]);
    let mut blank = no_al.clone();
    blank.push(("Accept-Language", "  "));
    assert_eq!(t(&blank, false), ["no_accept_language"]);
    // Navigations carry Accept; other fetches may not.
    let no_accept: Vec<_> = BROWSER
        .iter()
        .copied()
        .filter(|h| h.0 != "accept")
        .collect();
    assert!(t(&no_accept, false).is_empty());
    let mut nav = no_accept.clone();
    nav.push(("Sec-Fetch-Mode", "navigate"));
    assert_eq!(t(&nav, false), ["navigate_without_accept"]);
    // Client hints: Chromium only.
    let hints = [
        ("sec-ch-ua", "\"Chromium\";v=\"126\""),
        ("sec-ch-ua-platform", "\"Windows\""),
    ];
    assert!(t(&with(&hints), false).is_empty());
    for ua in [FIREFOX, SAFARI_IPHONE] {
        let mut h = with(&[("Sec-CH-UA-Mobile", "?0")]);
        h[0].1 = ua;
        assert_eq!(t(&h, false), ["client_hints_not_chromium"], "{ua}");
    }
    let mut h = with(&[("sec-ch-ua-platform", "\"Windows\"")]);
    h[0].1 = SAFARI_IPHONE;
    assert_eq!(
        t(&h, false),
        ["client_hints_not_chromium", "platform_mismatch"]
    );
    // Platform: desktop hints judged, Android never (desktop mode).
    for (ua, platform, bad) in [
        (CHROME, "\"macOS\"", true),
        (CHROME, "\"Linux\"", true),
        (CHROME, "Windows", false),
        (CHROME, "\"Android\"", false),
        (CHROME, "\"Unknown\"", false),
        (
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
            "\"Android\"",
            false,
        ),
        (
            "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36",
            "\"Linux\"",
            false,
        ),
        (
            "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
            "\"Chrome OS\"",
            false,
        ),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
            "\"macOS\"",
            false,
        ),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
            "\"Windows\"",
            true,
        ),
    ] {
        let h = with(&[("sec-ch-ua-platform", platform)]);
        let mut h = h;
        h[0].1 = ua;
        assert_eq!(
            t(&h, false) == ["platform_mismatch"],
            bad,
            "{ua} {platform}"
        );
    }
    // Not judged: crawlers, tools, old browsers, no user agent.
    for ua in [
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_11_1) AppleWebKit/601.2.4 (KHTML, like Gecko) Version/9.0.1 Safari/601.2.4 facebookexternalhit/1.1 Facebot Twitterbot/1.0",
        "curl/8.5.0",
        "Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1)",
        "Mozilla/5.0",
        "",
    ] {
        let h = [("user-agent", ua), ("sec-ch-ua", "x")];
        assert!(t(&h, true).is_empty(), "{ua}");
    }
    assert!(t(&[], true).is_empty());
}

#[test]
fn the_headers_monitor_counts_requests() {
    let m = monitors("[headers]\ncount = 2\nwindow = \"1m\"\naction = \"ban\"");
    let t0 = Instant::now();
    let s = src(1);
    let forged = [
        ("User-Agent", FIREFOX),
        ("Accept", "*/*"),
        ("Accept-Language", "en"),
        ("Sec-CH-UA", "\"Chromium\";v=\"130\""),
    ];
    for i in 0..10 {
        assert!(m.on_request(s, ms(t0, i), &get("/", BROWSER)).is_empty());
    }
    assert!(m.on_request(s, t0, &get("/", &forged)).is_empty());
    let h = m.on_request(s, t0, &get("/", &forged));
    assert_eq!(h.len(), 1);
    assert_eq!((h[0].monitor, h[0].action), ("headers", MonitorAction::Ban));
    assert_eq!(
        h[0].evidence,
        format!(
            "2 requests with impossible browser headers in 1m, last client_hints_not_chromium \
             ({FIREFOX})"
        )
    );
}

/// The headers monitor on the real browser requests of the development
/// corpus (`../shared/corpus`): it must flag none, or next to none. Skips
/// when the corpus is not there (a user's checkout).
#[test]
fn header_rules_spare_real_browsers() {
    let file =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/dev-requests.jsonl.gz");
    let Ok(f) = std::fs::File::open(&file) else {
        eprintln!("no corpus at {}: skipped", file.display());
        return;
    };
    let lines = BufReader::new(flate2::read::GzDecoder::new(f)).lines();
    let limits = Limits::default();
    let (mut benign, mut judged, mut flagged) = (0usize, 0usize, 0usize);
    let (mut attacks, mut attacks_flagged) = (0usize, 0usize);
    let mut reasons: HashMap<&str, usize> = HashMap::new();
    for line in lines {
        let Ok(line) = line else { break };
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        let raw = v["raw"].as_str().unwrap_or_default();
        let Ok(req) = Request::parse(raw.as_bytes(), &limits) else {
            continue;
        };
        let h: Vec<(&str, &str)> = req
            .headers
            .iter()
            .map(|h| (h.name.as_str(), h.value.as_str()))
            .collect();
        let broken = headers::judge(&h, req.version == "HTTP/1.0");
        if v["label"] == "benign" {
            benign += 1;
            if req
                .header("user-agent")
                .is_some_and(|u| u.contains("Mozilla/"))
            {
                judged += 1;
            }
            if !broken.is_empty() {
                flagged += 1;
                for r in &broken {
                    *reasons.entry(r).or_default() += 1;
                }
            }
        } else {
            attacks += 1;
            attacks_flagged += usize::from(!broken.is_empty());
        }
    }
    eprintln!(
        "headers monitor: {flagged} of {judged} benign requests with a judged browser user \
         agent flagged ({benign} benign in all) {reasons:?}; {attacks_flagged} of {attacks} \
         attacks"
    );
    assert!(judged > 10_000, "the corpus changed: {judged}");
    assert!(
        flagged * 1000 <= judged,
        "{flagged} of {judged}: {reasons:?}"
    );
}

/// Header sets of real browsers the corpus lacks (it is Chrome on
/// Windows): navigations, fetches, WebSocket handshakes, desktop modes.
#[test]
fn header_rules_spare_other_real_browsers() {
    const FIREFOX_NAV: &[(&str, &str)] = &[
        (
            "User-Agent",
            "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
        ),
        (
            "Accept",
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        ),
        ("Accept-Language", "en-US,en;q=0.5"),
        ("Accept-Encoding", "gzip, deflate, br, zstd"),
        ("Upgrade-Insecure-Requests", "1"),
        ("Sec-Fetch-Dest", "document"),
        ("Sec-Fetch-Mode", "navigate"),
        ("Sec-Fetch-Site", "none"),
        ("Sec-Fetch-User", "?1"),
        ("Priority", "u=0, i"),
    ];
    const FIREFOX_WS: &[(&str, &str)] = &[
        (
            "User-Agent",
            "Mozilla/5.0 (Windows NT 10.0; rv:115.0) Gecko/20100101 Firefox/115.0",
        ),
        ("Accept", "*/*"),
        ("Accept-Language", "en-US,en;q=0.5"),
        ("Sec-WebSocket-Version", "13"),
        ("Sec-Fetch-Mode", "websocket"),
        ("Upgrade", "websocket"),
    ];
    const SAFARI_NAV: &[(&str, &str)] = &[
        (
            "Accept",
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        ),
        ("Sec-Fetch-Site", "none"),
        ("Sec-Fetch-Mode", "navigate"),
        (
            "User-Agent",
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like \
             Gecko) Version/17.5 Safari/605.1.15",
        ),
        ("Accept-Language", "en-GB,en;q=0.9"),
        ("Sec-Fetch-Dest", "document"),
        ("Accept-Encoding", "gzip, deflate, br"),
    ];
    const CHROME_IOS_XHR: &[(&str, &str)] = &[
        (
            "user-agent",
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, \
             like Gecko) CriOS/126.0.6478.54 Mobile/15E148 Safari/604.1",
        ),
        ("accept", "*/*"),
        ("accept-language", "fr-FR,fr;q=0.9"),
        ("sec-fetch-mode", "cors"),
    ];
    const CHROME_WS_NO_ACCEPT: &[(&str, &str)] = &[
        ("Upgrade", "websocket"),
        (
            "User-Agent",
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) \
             Chrome/126.0.0.0 Safari/537.36",
        ),
        ("Accept-Encoding", "gzip, deflate, br, zstd"),
        ("Accept-Language", "en-US,en;q=0.9"),
    ];
    const EDGE: &[(&str, &str)] = &[
        (
            "user-agent",
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) \
             Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0",
        ),
        (
            "sec-ch-ua",
            "\"Not/A)Brand\";v=\"8\", \"Chromium\";v=\"126\", \"Microsoft Edge\";v=\"126\"",
        ),
        ("sec-ch-ua-mobile", "?0"),
        ("sec-ch-ua-platform", "\"Windows\""),
        ("accept", "text/html,*/*;q=0.8"),
        ("accept-language", "de-DE,de;q=0.9"),
    ];
    const SAMSUNG: &[(&str, &str)] = &[
        (
            "user-agent",
            "Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S918B) AppleWebKit/537.36 (KHTML, like \
             Gecko) SamsungBrowser/25.0 Chrome/121.0.0.0 Mobile Safari/537.36",
        ),
        ("sec-ch-ua-platform", "\"Android\""),
        ("sec-ch-ua-mobile", "?1"),
        ("accept", "*/*"),
        ("accept-language", "ko-KR,ko;q=0.9"),
    ];
    const CHROME_MAC: &[(&str, &str)] = &[
        (
            "user-agent",
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like \
             Gecko) Chrome/126.0.0.0 Safari/537.36",
        ),
        ("sec-ch-ua-platform", "\"macOS\""),
        ("accept", "image/avif,image/webp,*/*"),
        ("accept-language", "en-US,en;q=0.9"),
        ("sec-fetch-mode", "no-cors"),
    ];
    const OPERA_LINUX: &[(&str, &str)] = &[
        (
            "user-agent",
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \
             Chrome/125.0.0.0 Safari/537.36 OPR/111.0.0.0",
        ),
        ("sec-ch-ua-platform", "\"Linux\""),
        ("accept-language", "en"),
    ];
    for h in [
        FIREFOX_NAV,
        FIREFOX_WS,
        SAFARI_NAV,
        CHROME_IOS_XHR,
        CHROME_WS_NO_ACCEPT,
        EDGE,
        SAMSUNG,
        CHROME_MAC,
        OPERA_LINUX,
    ] {
        assert!(
            headers::claim(
                h.iter()
                    .find(|x| x.0.eq_ignore_ascii_case("user-agent"))
                    .unwrap()
                    .1
            )
            .is_some()
        );
        assert_eq!(headers::judge(h, false), Vec::<&str>::new(), "{h:?}");
    }
}
