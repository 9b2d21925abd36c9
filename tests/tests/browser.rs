//! The headless browser harness itself: a page served inside a network
//! namespace runs its script in a real Chromium (value, cookie, screenshot),
//! nothing outside the namespace is reachable, a dead browser fails calls at
//! once, and no process or profile outlives the [`Browser`].

use std::{
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    path::Path,
    time::{Duration, Instant},
};

use waf_tests::{Netns, browser::Browser, require_root, unique};

/// The page's script: a loop the browser must really run; it puts the result
/// in the title, the body and a cookie.
const PAGE: &str = "<!doctype html>
<html><head><title>loading</title></head>
<body><p id=out>working</p>
<script>
let x = 0;
for (let i = 0; i < 1e5; i++) x = (x * 31 + i) % 1000003;
document.title = String(x);
document.cookie = 'waf_test=' + x + '; path=/';
document.getElementById('out').textContent = 'done ' + x;
</script></body></html>";

/// The page's loop, in Rust.
fn expected() -> u64 {
    (0..100_000u64).fold(0, |x, i| (x * 31 + i) % 1_000_003)
}

/// Answers one HTTP request: the page at `/`, 404 otherwise.
fn serve(mut conn: TcpStream) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    let mut req = Vec::new();
    let mut buf = [0u8; 4096];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => req.extend_from_slice(&buf[..n]),
        }
    }
    let (status, body) = if req.starts_with(b"GET / ") {
        ("200 OK", PAGE)
    } else {
        ("404 Not Found", "not found")
    };
    let _ = write!(
        conn,
        "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

/// Starts the HTTP server on 127.0.0.1 inside `ns` (the socket stays in the
/// namespace it was created in); returns its port.
fn start_server(ns: &Netns) -> u16 {
    let listener = ns.run(|| TcpListener::bind("127.0.0.1:0").expect("bind in the namespace"));
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            serve(conn);
        }
    });
    port
}

/// Whether any process has `pattern` in its command line.
fn running(pattern: &str) -> bool {
    std::process::Command::new("pgrep")
        .args(["-f", pattern])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Asserts that no browser process is left: none with `pattern` (the
/// directory of its profile and its crash handlers' database) in its command
/// line, none (not even a zombie) in its process group.
fn assert_gone(pattern: &str, group: u32) {
    assert!(!running(pattern), "a browser process outlived its Browser");
    // SAFETY: signal 0 only checks whether the group has any process.
    let left = unsafe { libc::kill(-(group as libc::pid_t), 0) } == 0;
    assert!(
        !left,
        "processes (zombies?) left in the browser's group {group}"
    );
}

fn assert_png(path: &Path) {
    let png = std::fs::read(path).expect("the screenshot");
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n"),
        "not a PNG: {:?}",
        &png[..png.len().min(16)]
    );
    assert!(
        png.len() > 2000,
        "a suspiciously small PNG: {} bytes",
        png.len()
    );
    // IHDR: width and height of the viewport (--window-size=1280,800).
    let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(png[20..24].try_into().unwrap());
    assert!(
        width >= 640 && height >= 400,
        "a {width}x{height} screenshot"
    );
    assert!(png.ends_with(b"IEND\xae\x42\x60\x82"), "a truncated PNG");
}

#[test]
fn a_page_in_the_namespace_runs_its_script_and_nothing_leaves() {
    require_root();
    let started = Instant::now();
    let ns = Netns::new("wb");
    let port = start_server(&ns);
    let url = format!("http://127.0.0.1:{port}/");
    let shot = std::env::temp_dir().join(unique("waf-shot-") + ".png");

    let browser = Browser::launch(&ns);
    let profile = browser.user_data_dir();
    let pattern = profile.parent().unwrap().display().to_string();
    assert!(running(&pattern), "pgrep finds the browser");
    eprintln!("browser up after {:?}", started.elapsed());
    {
        let page = browser.new_page();
        page.goto(&url, Duration::from_secs(10))
            .expect("load the page");
        page.wait_for("document.title !== 'loading'", Duration::from_secs(5))
            .expect("the script ran");
        let want = expected().to_string();
        assert_eq!(page.eval("document.title").unwrap(), want.as_str());
        assert!(
            page.text().contains(&format!("done {want}")),
            "{}",
            page.text()
        );
        assert_eq!(page.url(), url);

        let cookies = page.cookies();
        assert!(
            cookies
                .iter()
                .any(|c| c["name"] == "waf_test" && c["value"] == want.as_str()),
            "the script's cookie: {cookies:?}"
        );

        // Promises are awaited, exceptions are errors.
        assert_eq!(page.eval("Promise.resolve(6 * 7)").unwrap(), 42);
        assert_eq!(page.eval("undefined").unwrap(), serde_json::Value::Null);
        let err = page.eval("no_such_variable").unwrap_err();
        assert!(err.contains("no_such_variable is not defined"), "{err}");
        let err = page.eval("throw 'plain'").unwrap_err();
        assert!(err.contains("plain"), "{err}");
        let err = page
            .wait_for("false", Duration::from_millis(300))
            .unwrap_err();
        assert!(err.contains("not true within"), "{err}");

        page.screenshot(&shot);
        assert_png(&shot);
        std::fs::remove_file(&shot).unwrap();

        // Only the namespace's own addresses are reachable.
        let err = page
            .goto("http://198.51.100.1/", Duration::from_secs(10))
            .expect_err("an address outside the namespace is unreachable");
        eprintln!("outside the namespace: {err}");
        assert!(err.contains("net::ERR_"), "{err}");
        // Chromium may call that offline without trying: the namespace
        // itself has no way out.
        let out = ns.run(|| {
            TcpStream::connect_timeout(&"198.51.100.1:80".parse().unwrap(), Duration::from_secs(2))
        });
        let e = out.expect_err("a connection out of the namespace");
        assert_eq!(e.raw_os_error(), Some(libc::ENETUNREACH), "{e}");
        // A 404 is a loaded page, not a navigation error.
        page.goto(&format!("{url}missing"), Duration::from_secs(10))
            .expect("a 404 page loads");
        assert_eq!(page.text(), "not found");
    }
    let group = browser.pid();
    drop(browser);
    assert_gone(&pattern, group);
    assert!(!Path::new(&pattern).exists(), "{pattern} is left");
    eprintln!("whole test: {:?}", started.elapsed());
}

#[test]
fn calls_fail_at_once_when_the_browser_dies() {
    require_root();
    let ns = Netns::new("wb");
    let browser = Browser::launch(&ns);
    let page = browser.new_page();
    assert_eq!(page.eval("1 + 1").unwrap(), 2);
    // SAFETY: kill has no memory-safety preconditions; the pid is our child.
    unsafe { libc::kill(browser.pid() as libc::pid_t, libc::SIGKILL) };
    let t = Instant::now();
    let err = page
        .wait_for("false", Duration::from_secs(20))
        .expect_err("no browser");
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t.elapsed()
    );
    assert!(err.contains("gone"), "{err}");
    assert!(page.eval("1").is_err());
    let pattern = browser
        .user_data_dir()
        .parent()
        .unwrap()
        .display()
        .to_string();
    drop(page);
    let group = browser.pid();
    drop(browser);
    assert_gone(&pattern, group);
}
