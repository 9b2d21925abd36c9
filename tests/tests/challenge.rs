//! The JavaScript challenge end to end, in network namespaces: a real
//! headless Chromium in the client's namespace loads a page through the
//! proxy, solves the proof of work and reaches the application with its
//! pass cookie; curl gets the challenge page and never the application;
//! forged, moved and replayed tokens and solutions are refused and are
//! strikes, and the attacker is dropped at XDP after `strikes` of them; a
//! route that skips the challenge and one that blocks bots do what they
//! say.

use std::{
    sync::atomic::Ordering,
    time::{Duration, Instant},
};

use waf_tests::{Lab, TestDaemon, Upstream, browser::Browser, http_full};

fn url(path: &str) -> String {
    format!("http://{}:8080{path}", Lab::SRV4)
}

fn server() -> String {
    format!("{}:8080", Lab::SRV4)
}

fn get(path: &str, ua: &str, cookie: Option<&str>) -> Vec<u8> {
    let cookie = cookie
        .map(|c| format!("Cookie: {c}\r\n"))
        .unwrap_or_default();
    format!(
        "GET {path} HTTP/1.1\r\nHost: shop\r\nUser-Agent: {ua}\r\nAccept: text/html\r\n\
         Accept-Language: en\r\nAccept-Encoding: gzip\r\n{cookie}Connection: close\r\n\r\n"
    )
    .into_bytes()
}

fn post_form(ua: &str, body: &str) -> Vec<u8> {
    format!(
        "POST /.well-known/waf-challenge HTTP/1.1\r\nHost: shop\r\nUser-Agent: {ua}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// The challenge text of a served page.
fn challenge_of(page: &str) -> String {
    let start = page.find("{\"c\":\"").expect("a challenge page") + 6;
    page[start..].split('"').next().unwrap().to_string()
}

fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The status curl gets for `path`, from the client's namespace.
fn curl_status(lab: &Lab, path: &str) -> String {
    let out = lab.client.exec(&[
        "curl",
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-m",
        "5",
        &url(path),
    ]);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

const UA: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \
                  Chrome/120.0 Safari/537.36";

#[test]
fn a_browser_passes_the_challenge_and_bots_do_not() {
    let lab = Lab::new();
    let app = Upstream::start(&lab.srv, "127.0.0.1:8000");
    let d = TestDaemon::start(
        &lab,
        "[proxy]\nlisten = \"0.0.0.0:8080\"\nupstream = \"http://127.0.0.1:8000\"\n\
         access_log = \"off\"\n\n\
         [challenge]\nmode = \"auto\"\ndifficulty = 12\n\n\
         [ban_policy]\nstrikes = 4\nwindow = \"5m\"\n\n\
         [[routes]]\npath = \"/api/*\"\nchallenge = \"skip\"\n\n\
         [[routes]]\npath = \"/bots/*\"\nchallenge = \"block\"\n\n\
         [[routes]]\npath = \"/app/*\"\nchallenge = \"challenge\"\n",
    );
    let key = d.state_dir.join("challenge.key");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&key).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600, "the key is the daemon's alone");

    // A real browser: the challenge page, the proof of work, the pass
    // cookie, then the application's page.
    let served = app.served.load(Ordering::SeqCst);
    let browser = Browser::launch(&lab.client);
    let page = browser.new_page();
    // The page may submit its solution (a new navigation) before the
    // first one reports its load: that one is then reported aborted.
    if let Err(e) = page.goto(&url("/app/home?x=1"), Duration::from_secs(20)) {
        assert!(e.contains("ERR_ABORTED"), "{e}");
    }
    page.wait_for(
        "document.body && document.body.innerText.includes('hello')",
        Duration::from_secs(30),
    )
    .unwrap_or_else(|e| {
        panic!(
            "the browser never got through: {e}: at {} page {:?}; daemon log: {}",
            page.url(),
            page.eval("document.documentElement.outerHTML"),
            d.log_text()
        )
    });
    assert!(page.url().ends_with("/app/home?x=1"), "{}", page.url());
    let cookies = page.cookies();
    let pass = cookies
        .iter()
        .find(|c| c["name"] == "waf_pass")
        .unwrap_or_else(|| panic!("no pass cookie: {cookies:?}"));
    assert_eq!(pass["httpOnly"], true);
    assert!(app.served.load(Ordering::SeqCst) > served);
    // And again without a challenge: the cookie is enough.
    page.goto(&url("/app/other"), Duration::from_secs(10))
        .unwrap();
    assert!(page.text().contains("hello"), "{}", page.text());
    drop(browser);

    // curl: the challenge page, never the application.
    let served = app.served.load(Ordering::SeqCst);
    assert_eq!(curl_status(&lab, "/app/home"), "403");
    let out = lab
        .client
        .exec(&["curl", "-s", "-m", "5", &url("/app/home")]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("waf-challenge"));
    // In auto mode a browser-looking request elsewhere passes; curl's own
    // user agent scores as a bot and is challenged.
    assert_eq!(
        http_full(&lab.client, &server(), &get("/shop", UA, None))
            .unwrap()
            .0,
        200
    );
    assert_eq!(curl_status(&lab, "/shop"), "403");
    // A route that skips the challenge serves curl; one that blocks bots
    // refuses it.
    assert_eq!(curl_status(&lab, "/api/items"), "200");
    assert_eq!(app.served.load(Ordering::SeqCst), served + 2);

    // The attacker solves a challenge by hand (a program can: the proof of
    // work costs it time, not the ability), then replays and moves it.
    let send = |raw: Vec<u8>| http_full(&lab.attacker, &server(), &raw).expect("proxy answers");
    let (code, _, body) = send(get("/app/home", UA, None));
    assert_eq!(code, 403);
    let c = challenge_of(&body);
    let n = waf_user::challenge::pow::solve(&c, 12, 1 << 24).expect("a solution");
    let form = format!("c={c}&n={n}&r=%2Fapp%2Fhome");
    let (code, head, _) = send(post_form(UA, &form));
    assert_eq!(code, 303, "{head}");
    assert_eq!(header(&head, "location"), Some("/app/home"));
    let cookie = header(&head, "set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    assert_eq!(send(get("/app/home", UA, Some(&cookie))).0, 200);
    let strikes_before = d.api("GET", "/v1/stats", None).1["proxy"]["challenge_failed"]
        .as_u64()
        .unwrap();
    // Replayed solution, a moved token (another user agent), a forged one.
    assert_eq!(send(post_form(UA, &form)).0, 403, "replayed");
    assert_eq!(
        send(get("/app/home", "Other/1.0", Some(&cookie))).0,
        403,
        "moved"
    );
    let forged = format!("waf_pass={}x", &cookie["waf_pass=".len()..]);
    assert_eq!(send(get("/app/home", UA, Some(&forged))).0, 403, "forged");
    let stats = d.api("GET", "/v1/stats", None).1;
    assert_eq!(
        stats["proxy"]["challenge_failed"].as_u64().unwrap(),
        strikes_before + 1
    );
    assert!(
        stats["proxy"]["token_refused"].as_u64().unwrap() >= 2,
        "{stats}"
    );
    // One more (a bot blocked on its route) makes four strikes: the
    // attacker is banned and dropped at XDP.
    let (code, _, _) = send(get("/bots/x", "python-requests/2.31", None));
    assert_eq!(code, 403);
    wait_until("the attacker's ban", Duration::from_secs(10), || {
        d.api("GET", "/v1/bans", None).1["bans"]
            .as_array()
            .is_some_and(|b| b.iter().any(|x| x["addr"] == Lab::ATTACKER4))
    });
    assert!(
        http_full(&lab.attacker, &server(), &get("/api/x", UA, None)).is_err(),
        "the banned attacker's handshake is dropped"
    );
    // The client carries on.
    assert_eq!(
        http_full(&lab.client, &server(), &get("/api/x", UA, None))
            .unwrap()
            .0,
        200
    );
}
