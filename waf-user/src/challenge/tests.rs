//! The challenger end to end: issue, solve, verify, check; tampering,
//! expiry, moves, replays; arbitrary input; the page's script under Node.js
//! when there is one.

use std::{
    io::Write,
    net::IpAddr,
    process::{Command, Stdio},
    sync::LazyLock,
    time::{Duration, SystemTime},
};

use proptest::prelude::*;
use ring::digest;

use super::*;
use crate::values::Dur;

const UA: &str = "Mozilla/5.0 (X11; Linux x86_64) Chrome/126.0.0.0";

fn at(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
}

const T0: u64 = 1_800_000_000;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn cfg() -> ChallengeConfig {
    ChallengeConfig {
        difficulty: 8,
        ..ChallengeConfig::default()
    }
}

fn challenger() -> Challenger {
    Challenger::new(&cfg(), Key::from_bytes([42; 32]), 64)
}

/// Issues for `client` at T0 and solves.
fn solved(ch: &Challenger, client: IpAddr) -> (String, String) {
    let issued = ch.issue(client, UA, "/", at(T0));
    let n = pow::solve(&issued.challenge, 8, 1 << 20).expect("a solution");
    (issued.challenge, n.to_string())
}

/// A nonce that does not solve `c` at difficulty 8.
fn wrong_nonce(c: &str) -> String {
    (0u64..)
        .find(|n| !pow::is_solution(c, &n.to_string(), 8))
        .unwrap()
        .to_string()
}

#[test]
fn issue_solve_verify_check() {
    let ch = challenger();
    let client = ip("198.51.100.7");
    let (c, n) = solved(&ch, client);
    let pass = ch.verify(&c, &n, client, UA, at(T0 + 3)).unwrap();
    assert_eq!(pass.max_age, Duration::from_secs(3600));
    assert_eq!(
        pass.set_cookie,
        format!(
            "waf_pass={}; Path=/; Max-Age=3600; HttpOnly; SameSite=Lax",
            pass.cookie_value
        )
    );
    let header = format!("waf_pass={}", pass.cookie_value);
    let check = |h: &str, t: u64| ch.check(Some(h), client, UA, at(t));
    assert_eq!(check(&header, T0 + 10), TokenCheck::Valid);
    assert_eq!(check(&header, T0 + 3 + 3599), TokenCheck::Valid);
    assert_eq!(check(&header, T0 + 3 + 3600), TokenCheck::Expired);
    assert_eq!(ch.replay_len(), 1);
    // Among other cookies, quoted, after a bad one of ours.
    let v = &pass.cookie_value;
    for h in [
        format!("a=b; waf_pass={v}; c=d"),
        format!("waf_pass=junk;waf_pass=\"{v}\""),
        format!("  waf_pass = {v} ;x=y"),
    ] {
        assert_eq!(check(&h, T0 + 10), TokenCheck::Valid, "{h}");
    }
    assert_eq!(ch.check(None, client, UA, at(T0)), TokenCheck::Missing);
    assert_eq!(check("a=b; other_pass=x", T0), TokenCheck::Missing);
    assert_eq!(check("waf_pass=junk", T0), TokenCheck::Forged);
    // The most credible failure is reported.
    assert_eq!(
        check(&format!("waf_pass=junk; waf_pass={v}"), T0 + 4000),
        TokenCheck::Expired
    );
}

#[test]
fn a_secure_cookie_under_another_name() {
    let cfg = ChallengeConfig {
        cookie: "__Host-pass".into(),
        secure_cookie: true,
        token_ttl: Dur::secs(600),
        ..cfg()
    };
    let ch = Challenger::new(&cfg, Key::from_bytes([1; 32]), 64);
    assert_eq!(ch.cookie_name(), "__Host-pass");
    let client = ip("192.0.2.1");
    let (c, n) = solved(&ch, client);
    let pass = ch.verify(&c, &n, client, UA, at(T0)).unwrap();
    assert!(pass.set_cookie.starts_with("__Host-pass="));
    assert!(
        pass.set_cookie
            .ends_with("; Max-Age=600; HttpOnly; SameSite=Lax; Secure")
    );
    let ok = format!("__Host-pass={}", pass.cookie_value);
    assert_eq!(ch.check(Some(&ok), client, UA, at(T0)), TokenCheck::Valid);
    let wrong_name = format!("waf_pass={}", pass.cookie_value);
    assert_eq!(
        ch.check(Some(&wrong_name), client, UA, at(T0)),
        TokenCheck::Missing
    );
}

#[test]
fn expiry_of_challenges_and_passes() {
    let ch = challenger();
    let client = ip("198.51.100.7");
    let (c, n) = solved(&ch, client);
    assert_eq!(
        ch.verify(&c, &n, client, UA, at(T0 + 120 + 1)),
        Err(Failure::Expired)
    );
    // Issued in the future (another worker's clock): 5 s of slack.
    assert_eq!(
        ch.verify(&c, &n, client, UA, at(T0 - 6)),
        Err(Failure::Expired)
    );
    let pass = ch.verify(&c, &n, client, UA, at(T0 + 120)).unwrap();
    let h = format!("waf_pass={}", pass.cookie_value);
    assert_eq!(
        ch.check(Some(&h), client, UA, at(T0 + 120 + 3600)),
        TokenCheck::Expired
    );
    // A pass made under a longer token_ttl is refused once it is shortened.
    let shorter = ChallengeConfig {
        token_ttl: Dur::secs(60),
        ..cfg()
    };
    let ch2 = Challenger::new(&shorter, Key::from_bytes([42; 32]), 64);
    assert_eq!(
        ch2.check(Some(&h), client, UA, at(T0 + 120)),
        TokenCheck::Expired
    );
}

#[test]
fn moves_of_address_or_user_agent() {
    let ch = challenger();
    let v4 = ip("198.51.100.7");
    let (c, n) = solved(&ch, v4);
    assert_eq!(
        ch.verify(&c, &n, ip("198.51.100.8"), UA, at(T0)),
        Err(Failure::Moved)
    );
    assert_eq!(ch.verify(&c, &n, v4, "curl/8", at(T0)), Err(Failure::Moved));
    // The same address written as IPv4-mapped IPv6 is the same client.
    let pass = ch
        .verify(&c, &n, ip("::ffff:198.51.100.7"), UA, at(T0))
        .unwrap();
    let h = format!("waf_pass={}", pass.cookie_value);
    assert_eq!(ch.check(Some(&h), v4, UA, at(T0)), TokenCheck::Valid);
    assert_eq!(
        ch.check(Some(&h), ip("198.51.100.8"), UA, at(T0)),
        TokenCheck::Moved
    );
    assert_eq!(
        ch.check(Some(&h), v4, "Other/1.0", at(T0)),
        TokenCheck::Moved
    );

    let v6 = ip("2001:db8:1:2::10");
    let (c, n) = solved(&ch, v6);
    let pass = ch
        .verify(&c, &n, ip("2001:db8:1:2:ffff::1"), UA, at(T0))
        .unwrap();
    let h = format!("waf_pass={}", pass.cookie_value);
    for inside in ["2001:db8:1:2::10", "2001:db8:1:2:abcd:1234:5678:9abc"] {
        assert_eq!(
            ch.check(Some(&h), ip(inside), UA, at(T0)),
            TokenCheck::Valid,
            "{inside}"
        );
    }
    for outside in ["2001:db8:1:3::10", "2001:db9:1:2::10", "198.51.100.7"] {
        assert_eq!(
            ch.check(Some(&h), ip(outside), UA, at(T0)),
            TokenCheck::Moved,
            "{outside}"
        );
    }
}

#[test]
fn replays_wrong_work_and_a_full_replay_set() {
    let ch = challenger().with_replay_capacity(1);
    let client = ip("198.51.100.7");
    let (c, n) = solved(&ch, client);
    assert_eq!(
        ch.verify(&c, &wrong_nonce(&c), client, UA, at(T0)),
        Err(Failure::WrongWork)
    );
    assert!(ch.verify(&c, &n, client, UA, at(T0)).is_ok());
    assert_eq!(
        ch.verify(&c, &n, client, UA, at(T0 + 1)),
        Err(Failure::Replayed)
    );
    // Another solution of the same challenge is a replay too.
    let other = (n.parse::<u64>().unwrap() + 1..)
        .find(|m| pow::is_solution(&c, &m.to_string(), 8))
        .unwrap();
    assert_eq!(
        ch.verify(&c, &other.to_string(), client, UA, at(T0 + 1)),
        Err(Failure::Replayed)
    );
    let (c2, n2) = solved(&ch, client);
    assert_eq!(
        ch.verify(&c2, &n2, client, UA, at(T0 + 1)),
        Err(Failure::Busy)
    );
    assert_eq!(Failure::Busy.as_str(), "busy");
}

#[test]
fn a_raised_difficulty_refuses_older_challenges() {
    let client = ip("198.51.100.7");
    let (c, n) = solved(&challenger(), client);
    let harder = ChallengeConfig {
        difficulty: 20,
        ..cfg()
    };
    let ch = Challenger::new(&harder, Key::from_bytes([42; 32]), 64);
    assert_eq!(
        ch.verify(&c, &n, client, UA, at(T0)),
        Err(Failure::WrongWork)
    );
}

#[test]
fn challenges_and_passes_do_not_stand_for_each_other_or_another_key() {
    let ch = challenger();
    let client = ip("198.51.100.7");
    let (c, n) = solved(&ch, client);
    let pass = ch.verify(&c, &n, client, UA, at(T0)).unwrap();
    let as_cookie = format!("waf_pass={c}");
    assert_eq!(
        ch.check(Some(&as_cookie), client, UA, at(T0)),
        TokenCheck::Forged
    );
    assert!(
        ch.verify(&pass.cookie_value, "0", client, UA, at(T0))
            .is_err()
    );
    assert_eq!(
        ch.verify(&pass.cookie_value, "0", client, UA, at(T0)),
        Err(Failure::Malformed)
    );
    let other = Challenger::new(&cfg(), Key::from_bytes([43; 32]), 64);
    assert_eq!(
        other.verify(&c, &n, client, UA, at(T0)),
        Err(Failure::Forged)
    );
    let h = format!("waf_pass={}", pass.cookie_value);
    assert_eq!(
        other.check(Some(&h), client, UA, at(T0)),
        TokenCheck::Forged
    );
}

#[test]
fn malformed_input_and_names() {
    let ch = challenger();
    let client = ip("198.51.100.7");
    let (c, n) = solved(&ch, client);
    for (c, n) in [
        (c.as_str(), ""),
        (c.as_str(), "-1"),
        (c.as_str(), "123456789012345678901"),
        (c.as_str(), "1 "),
        ("", n.as_str()),
        ("!!!", n.as_str()),
        (&c[..98], n.as_str()),
    ] {
        assert_eq!(
            ch.verify(c, n, client, UA, at(T0)),
            Err(Failure::Malformed),
            "{c} {n}"
        );
    }
    let long = "A".repeat(600);
    assert_eq!(
        ch.verify(&long, &n, client, UA, at(T0)),
        Err(Failure::Malformed)
    );
    let names: Vec<_> = [
        Failure::Forged,
        Failure::Expired,
        Failure::Moved,
        Failure::Replayed,
        Failure::WrongWork,
        Failure::Malformed,
    ]
    .iter()
    .map(Failure::as_str)
    .collect();
    assert_eq!(
        names,
        [
            "forged",
            "expired",
            "moved",
            "replayed",
            "wrong_work",
            "malformed"
        ]
    );
    assert_eq!(TokenCheck::Valid.as_str(), "valid");
    assert_eq!(TokenCheck::Missing.as_str(), "missing");
}

#[test]
fn the_issued_page_carries_the_challenge_and_a_safe_return_path() {
    let ch = challenger();
    let issued = ch.issue(
        ip("192.0.2.1"),
        UA,
        "/</script><script>alert(1)</script>",
        at(T0),
    );
    assert_eq!(issued.challenge.len(), 99);
    assert!(
        issued
            .html
            .contains(&format!("\"c\":\"{}\"", issued.challenge))
    );
    assert!(issued.html.contains("\"d\":8"));
    assert!(!issued.html.contains("alert(1)</script>"));
    assert_eq!(issued.csp, page::csp());
    let again = ch.issue(ip("192.0.2.1"), UA, "/", at(T0));
    assert_ne!(again.challenge, issued.challenge, "a fresh id each time");
}

/// A solved challenge and its pass, made once for the proptests.
struct Fixture {
    ch: Challenger,
    client: IpAddr,
    challenge: String,
    nonce: String,
    cookie: String,
}

static FIX: LazyLock<Fixture> = LazyLock::new(|| {
    let ch = challenger();
    let client = ip("203.0.113.9");
    let (challenge, nonce) = solved(&ch, client);
    let cookie = ch
        .verify(&challenge, &nonce, client, UA, at(T0))
        .unwrap()
        .cookie_value;
    // A fresh one, unsolved yet, for the tampering of challenges.
    let (challenge, nonce) = solved(&ch, client);
    Fixture {
        ch,
        client,
        challenge,
        nonce,
        cookie,
    }
});

/// `s` with byte `pos` (mod its length) set to `b`, if that changes it
/// and leaves UTF-8.
fn flipped(s: &str, pos: usize, b: u8) -> Option<String> {
    let mut v = s.as_bytes().to_vec();
    let i = pos % v.len();
    if v[i] == b {
        return None;
    }
    v[i] = b;
    String::from_utf8(v).ok()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn a_tampered_challenge_is_forged_or_malformed(pos in 0usize..99, b in any::<u8>()) {
        let f = &*FIX;
        if let Some(c) = flipped(&f.challenge, pos, b) {
            let r = f.ch.verify(&c, &f.nonce, f.client, UA, at(T0));
            prop_assert!(
                matches!(r, Err(Failure::Forged | Failure::Malformed)),
                "{c}: {r:?}"
            );
        }
    }

    #[test]
    fn a_tampered_pass_is_never_valid(pos in 0usize..76, b in any::<u8>()) {
        let f = &*FIX;
        if let Some(v) = flipped(&f.cookie, pos, b) {
            let h = format!("waf_pass={v}");
            let r = f.ch.check(Some(&h), f.client, UA, at(T0));
            prop_assert!(r == TokenCheck::Forged, "{v}: {r:?}");
        }
    }

    #[test]
    fn arbitrary_solutions_never_pass_nor_panic(
        c in "[A-Za-z0-9_-]{0,120}|\\PC{0,600}",
        n in "[0-9]{0,22}|\\PC{0,30}",
    ) {
        let f = &*FIX;
        let r = f.ch.verify(&c, &n, f.client, UA, at(T0));
        prop_assert!(r.is_err());
    }

    #[test]
    fn arbitrary_cookie_headers_never_pass_nor_panic(h in "\\PC{0,300}", v in "[A-Za-z0-9_-]{76}") {
        let f = &*FIX;
        prop_assert_ne!(f.ch.check(Some(&h), f.client, UA, at(T0)), TokenCheck::Valid);
        let ours = format!("x=1; waf_pass={v}");
        prop_assert_ne!(f.ch.check(Some(&ours), f.client, UA, at(T0)), TokenCheck::Valid);
    }

    #[test]
    fn arbitrary_forms_never_panic(body in proptest::collection::vec(any::<u8>(), 0..600)) {
        if let Some((_, _, r)) = page::parse_form(&body) {
            prop_assert_eq!(page::safe_return_to(&r), r.as_str());
        }
    }

    #[test]
    fn arbitrary_return_paths_stay_inside_the_data_block(r in "\\PC{0,200}|/[ -~]{0,200}") {
        let html = page::render("c", 8, &r);
        prop_assert_eq!(html.matches("<script").count(), 2);
        let kept = page::safe_return_to(&r);
        prop_assert!(kept.starts_with('/') && !kept.starts_with("//"));
    }

    #[test]
    fn arbitrary_headers_score_within_bounds(ua in "\\PC{0,700}", a in "\\PC{0,40}", h10 in any::<bool>()) {
        let s = bot_score(&Signals {
            user_agent: Some(&ua),
            accept: Some(&a),
            accept_language: None,
            accept_encoding: Some(&a),
            http10: h10,
            crawler_verified: false,
        });
        prop_assert!(s.score <= 100);
        let _ = crawler_name(&ua);
    }
}

/// Runs `js` under Node.js (`cargo xtask setup` installs it: a missing
/// `node` fails the test rather than skipping it).
fn node(js: &str) -> Option<String> {
    let mut child = match Command::new("node")
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => panic!("no node ({e}): run `cargo xtask setup` (Debian package nodejs)"),
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(js.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "node: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8(out.stdout).unwrap())
}

#[test]
fn the_scripts_sha256_is_rings() {
    // The hash function and its constants, out of the script.
    let start = page::SCRIPT.find("var K=").unwrap();
    let end = page::SCRIPT.find("return H}").unwrap() + "return H}".len();
    let inputs: Vec<String> = (0..=200usize)
        .map(|n| {
            (0..n)
                .map(|i| (b'!' + ((i * 7 + n) % 94) as u8) as char)
                .collect()
        })
        .chain(["abc".to_string(), "x".repeat(1000)])
        .collect();
    let js = format!(
        "{}\nvar ins={};for(var i=0;i<ins.length;i++)console.log(sha(ins[i]).map(function(w)\
         {{return (w>>>0).toString(16).padStart(8,'0')}}).join(''));",
        &page::SCRIPT[start..end],
        serde_json::to_string(&inputs).unwrap()
    );
    let Some(out) = node(&js) else { return };
    let got: Vec<&str> = out.lines().collect();
    assert_eq!(got.len(), inputs.len());
    for (input, hex) in inputs.iter().zip(got) {
        let want: String = digest::digest(&digest::SHA256, input.as_bytes())
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(hex, want, "input of {} bytes", input.len());
    }
}

#[test]
fn the_page_solves_its_challenge_under_node() {
    let ch = challenger();
    let client = ip("198.51.100.7");
    let issued = ch.issue(client, UA, "/after?x=1", at(T0));
    let open = "id=\"waf-challenge\">";
    let at_data = issued.html.find(open).unwrap() + open.len();
    let data = &issued.html[at_data..at_data + issued.html[at_data..].find("</script>").unwrap()];
    let js = format!(
        "var els={{'waf-challenge':{{textContent:{}}},f:{{elements:{{c:{{}},n:{{}},r:{{}}}},\
         submit:function(){{var e=this.elements;console.log(JSON.stringify([e.c.value,e.n.value,\
         e.r.value]))}}}}}};var document={{getElementById:function(i){{return els[i]}}}};\n{}",
        serde_json::to_string(data).unwrap(),
        page::SCRIPT
    );
    let Some(out) = node(&js) else { return };
    let [c, n, r]: [String; 3] = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(c, issued.challenge);
    assert_eq!(r, "/after?x=1");
    assert_eq!(n, pow::solve(&c, 8, 1 << 20).unwrap().to_string());
    assert!(ch.verify(&c, &n, client, UA, at(T0 + 1)).is_ok());
}
