//! No way around the proxy: the holes an attacker found, as regression
//! tests against the real daemon in a namespace lab. Each is blocked,
//! refused or banned, and counted.

use std::{sync::atomic::Ordering, time::Duration};

use serde_json::Value;
use waf_tests::{Lab, TestDaemon, Upstream, api, http_raw};

const ATTACK: &str = "id=1%27%20union%20select%20password%20from%20users--";

fn server(port: u16) -> String {
    format!("{}:{port}", Lab::SRV4)
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !f() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn proxy_stats(lab: &Lab) -> Value {
    api(lab, "GET", "/v1/stats", None).1["proxy"].clone()
}

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: lab\r\nConnection: close\r\n\r\n").into_bytes()
}

#[test]
fn dot_segments_and_encodings_never_reach_an_exempt_glob() {
    let lab = Lab::new();
    let app = Upstream::start(&lab.srv, "127.0.0.1:8000");
    let _d = TestDaemon::start(
        &lab,
        "[proxy]\nlisten = \"0.0.0.0:8080\"\nupstream = \"http://127.0.0.1:8000\"\n\
         access_log = \"off\"\n\n[[routes]]\npath = \"/health\"\nexempt = true\n\n\
         [[routes]]\npath = \"/static/*\"\nexempt = true\n\n[ban_policy]\nstrikes = 1000\n",
    );
    // The exemption itself still works.
    let (code, _) = http_raw(&lab.client, &server(8080), None, &get("/static/app.js"), 1).unwrap();
    assert_eq!(code, 200);
    let served = app.served.load(Ordering::SeqCst);
    for path in [
        format!("/static/../login?{ATTACK}"),
        format!("/static/%2e%2e/login?{ATTACK}"),
        format!("/static/.%2e/login?{ATTACK}"),
        format!("/static%2f..%2flogin?{ATTACK}"),
        format!("/static/..%5clogin?{ATTACK}"),
        format!("/static/%252e%252e/login?{ATTACK}"),
        format!("/static//..//login?{ATTACK}"),
        format!("/static/x/../../login?{ATTACK}"),
        format!("/static/../../../login?{ATTACK}"),
    ] {
        let (code, body) = http_raw(&lab.attacker, &server(8080), None, &get(&path), 1).unwrap();
        assert!(
            code == 403 || code == 400,
            "{path}: answered {code} {body}: an exempt glob let it through"
        );
    }
    assert_eq!(
        app.served.load(Ordering::SeqCst),
        served,
        "no attack reached the application"
    );
    let st = proxy_stats(&lab);
    assert!(st["blocked"].as_u64().unwrap() >= 7, "{st}");
}

#[test]
fn bodies_past_the_limit_are_refused_and_file_parts_inspected() {
    let lab = Lab::new();
    let app = Upstream::start(&lab.srv, "127.0.0.1:8000");
    let _d = TestDaemon::start(
        &lab,
        "[proxy]\nlisten = \"0.0.0.0:8080\"\nupstream = \"http://127.0.0.1:8000\"\n\
         access_log = \"off\"\n\n[detect.limits]\nmax_body = 4096\n\n\
         [ban_policy]\nstrikes = 1000\n",
    );
    // A form whose attack sits after the first max_body bytes.
    let body = format!(
        "pad={}&q=1' union select password from users--",
        "a".repeat(5000)
    );
    let raw = format!(
        "POST /search HTTP/1.1\r\nHost: lab\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let (code, _) = http_raw(&lab.attacker, &server(8080), None, raw.as_bytes(), 1).unwrap();
    assert_eq!(code, 413, "refused, not forwarded uninspected");
    // The same, chunked (no Content-Length to refuse early on).
    let chunked = format!(
        "POST /search HTTP/1.1\r\nHost: lab\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
        body.len()
    );
    let (code, _) = http_raw(&lab.attacker, &server(8080), None, chunked.as_bytes(), 3).unwrap();
    assert_eq!(code, 413, "chunked: refused too");
    // A multipart upload with a web shell in its file part, after a large
    // harmless file (file contents do not count against max_body).
    let shell = "<?php system($_GET['c']); ?>";
    let mp = format!(
        "--XyZ\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nholiday\r\n\
         --XyZ\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"a.jpg\"\r\n\
         Content-Type: image/jpeg\r\n\r\n{}\r\n\
         --XyZ\r\nContent-Disposition: form-data; name=\"doc\"; filename=\"x.php\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n{shell}\r\n--XyZ--\r\n",
        "\u{ff}".repeat(20_000)
    );
    let raw = format!(
        "POST /upload HTTP/1.1\r\nHost: lab\r\nContent-Type: multipart/form-data; boundary=XyZ\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{mp}",
        mp.len()
    );
    let (code, body) = http_raw(&lab.attacker, &server(8080), None, raw.as_bytes(), 1).unwrap();
    assert_eq!(code, 403, "the web shell in a file part is found: {body}");
    // A harmless upload of the same size passes: file bytes are not refused
    // for the inspection limit.
    let clean = mp
        .replace(shell, "just a text file")
        .replace("x.php", "notes.txt");
    let raw = format!(
        "POST /upload HTTP/1.1\r\nHost: lab\r\nContent-Type: multipart/form-data; boundary=XyZ\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{clean}",
        clean.len()
    );
    let (code, _) = http_raw(&lab.client, &server(8080), None, raw.as_bytes(), 1).unwrap();
    assert_eq!(code, 200);
    assert_eq!(
        app.served.load(Ordering::SeqCst),
        1,
        "only the clean upload got through"
    );
    let st = proxy_stats(&lab);
    assert_eq!(st["body_too_large"], 2, "{st}");
}

#[test]
fn the_client_address_is_decided_by_the_socket_peer() {
    let lab = Lab::new();
    let app = Upstream::start(&lab.srv, "127.0.0.1:8000");
    // The client namespace plays a trusted load balancer.
    let _d = TestDaemon::start(
        &lab,
        &format!(
            "[proxy]\nlisten = \"0.0.0.0:8080\"\nupstream = \"http://127.0.0.1:8000\"\n\
             access_log = \"off\"\ntrusted_proxies = [\"{}\"]\n\n\
             [ban_policy]\nstrikes = 1\n",
            Lab::CLIENT4
        ),
    );
    // An untrusted peer's X-Forwarded-For is not believed: the attacker
    // claims to be the balancer's client, and is banned as itself.
    let spoof = format!(
        "GET /?{ATTACK} HTTP/1.1\r\nHost: lab\r\nX-Forwarded-For: 203.0.113.99\r\n\
         X-Forwarded-Proto: https\r\nConnection: close\r\n\r\n"
    );
    let (code, _) = http_raw(&lab.attacker, &server(8080), None, spoof.as_bytes(), 1).unwrap();
    assert_eq!(code, 403);
    wait_until("the attacker's ban", || {
        api(&lab, "GET", &format!("/v1/bans/{}", Lab::ATTACKER4), None).0 == 200
    });
    assert_eq!(
        api(&lab, "GET", "/v1/bans/203.0.113.99", None).0,
        404,
        "not the spoofed address"
    );
    // A trusted balancer's chain and protocol are honoured.
    let via_lb = "GET /page HTTP/1.1\r\nHost: lab\r\nX-Forwarded-For: 198.51.100.23\r\n\
                  X-Forwarded-Proto: https\r\nConnection: close\r\n\r\n";
    let (code, _) = http_raw(&lab.client, &server(8080), None, via_lb.as_bytes(), 1).unwrap();
    assert_eq!(code, 200);
    let head = app
        .heads
        .lock()
        .unwrap()
        .last()
        .cloned()
        .unwrap_or_default();
    assert!(
        head.contains(&format!(
            "x-forwarded-for: 198.51.100.23, {}\r\n",
            Lab::CLIENT4
        )),
        "{head}"
    );
    assert!(head.contains("x-forwarded-proto: https\r\n"), "{head}");
    // An attack through the balancer bans the client it names, not the
    // balancer.
    let attack = format!(
        "GET /?{ATTACK} HTTP/1.1\r\nHost: lab\r\nX-Forwarded-For: 198.51.100.24\r\n\
         Connection: close\r\n\r\n"
    );
    let (code, _) = http_raw(&lab.client, &server(8080), None, attack.as_bytes(), 1).unwrap();
    assert_eq!(code, 403);
    wait_until("the named client's ban", || {
        api(&lab, "GET", "/v1/bans/198.51.100.24", None).0 == 200
    });
    assert_eq!(
        api(&lab, "GET", &format!("/v1/bans/{}", Lab::CLIENT4), None).0,
        404,
        "the balancer is not banned"
    );
    // A malformed hop from the balancer is counted, and not believed.
    let bad = "GET /page HTTP/1.1\r\nHost: lab\r\nX-Forwarded-For: not-an-address\r\n\
               Connection: close\r\n\r\n";
    let (code, _) = http_raw(&lab.client, &server(8080), None, bad.as_bytes(), 1).unwrap();
    assert_eq!(code, 200);
    assert_eq!(proxy_stats(&lab)["malformed_forwarding"], 1);
}

#[test]
fn rotating_ipv6_addresses_in_one_prefix_are_one_source() {
    let lab = Lab::new();
    let _app = Upstream::start(&lab.srv, "[::1]:8000");
    let _d = TestDaemon::start(
        &lab,
        "[proxy]\nlisten = \"[::]:8080\"\nupstream = \"http://[::1]:8000\"\n\
         access_log = \"off\"\n\n[ban_policy]\nstrikes = 3\nwindow = \"1m\"\n",
    );
    // The attacker's own /64, reachable on the lab's link.
    let srv_if = lab.srv_if.clone();
    lab.srv.exec(&[
        "ip",
        "-6",
        "route",
        "add",
        "2001:db8:66::/64",
        "dev",
        &srv_if,
    ]);
    let att_if = String::from_utf8(
        lab.attacker
            .exec(&[
                "sh",
                "-c",
                "ip -o link | awk -F': ' '$2 !~ /^lo/ {print $2}' | cut -d@ -f1",
            ])
            .stdout,
    )
    .unwrap()
    .trim()
    .to_string();
    for a in ["a", "b", "c", "d"] {
        lab.attacker.exec(&[
            "ip",
            "-6",
            "addr",
            "add",
            &format!("2001:db8:66::{a}/64"),
            "dev",
            &att_if,
            "nodad",
        ]);
    }
    lab.attacker.exec(&[
        "ip",
        "-6",
        "route",
        "add",
        "2001:db8::1/128",
        "dev",
        &att_if,
    ]);
    let dst = format!("[{}]:8080", Lab::SRV6);
    for a in ["a", "b", "c"] {
        let src = format!("2001:db8:66::{a}");
        let (code, _) = http_raw(
            &lab.attacker,
            &dst,
            Some(&src),
            &get(&format!("/?{ATTACK}")),
            1,
        )
        .unwrap();
        assert_eq!(code, 403, "attack from {src}");
    }
    wait_until("the /64's ban", || {
        api(&lab, "GET", "/v1/bans/2001:db8:66::%2F64", None).0 == 200
    });
    // A fourth address of the same /64 is dropped at XDP.
    let err = http_raw(&lab.attacker, &dst, Some("2001:db8:66::d"), &get("/"), 1).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut, "{err}");
    let (_, st) = api(&lab, "GET", "/v1/stats", None);
    assert!(
        st["counters"]["banned"]["packets"].as_u64().unwrap() > 0,
        "{st}"
    );
}

#[test]
fn the_mirror_survives_an_absurd_content_length() {
    let lab = Lab::new();
    let app = Upstream::start(&lab.srv, "0.0.0.0:8000");
    let _d = TestDaemon::start(
        &lab,
        "[mirror]\nenabled = true\nports = [8000]\n\n[ban_policy]\nstrikes = 1\n",
    );
    for cl in [
        "18446744073709551615",
        "-1",
        "99999999999999999999999",
        "1e9",
    ] {
        let raw = format!(
            "POST /x HTTP/1.1\r\nHost: lab\r\nContent-Length: {cl}\r\nConnection: close\r\n\r\nabc"
        );
        let _ = http_raw(
            &lab.client,
            &format!("{}:8000", Lab::SRV4),
            None,
            raw.as_bytes(),
            1,
        );
    }
    // Still alive, still inspecting: an attack on a new flow is banned.
    let (code, _) = api(&lab, "GET", "/v1/health", None);
    assert_eq!(code, 200);
    let _ = http_raw(
        &lab.attacker,
        &format!("{}:8000", Lab::SRV4),
        None,
        &get(&format!("/?{ATTACK}")),
        1,
    );
    wait_until("the mirror's ban", || {
        api(&lab, "GET", &format!("/v1/bans/{}", Lab::ATTACKER4), None).0 == 200
    });
    let (_, st) = api(&lab, "GET", "/v1/stats", None);
    assert!(st["mirror"]["requests"].as_u64().unwrap() >= 1, "{st}");
    assert!(app.served.load(Ordering::SeqCst) >= 1);
}
