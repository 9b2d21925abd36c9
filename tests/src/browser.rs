//! A headless Chromium for the integration tests, driven over the DevTools
//! protocol (CDP).
//!
//! The browser runs inside a lab network namespace (`ip netns exec`), so it
//! reaches only the lab's addresses: nothing leaves the machine. It talks CDP
//! over a pair of pipes (`--remote-debugging-pipe`: it reads commands on its
//! fd 3 and writes messages on its fd 4, each JSON message ended by a NUL
//! byte), which needs no TCP port and works across namespaces.
//!
//! Everything is synchronous and every call has a deadline: a reader thread
//! hands responses to their callers by id and queues the events. When the
//! browser dies, pending and later calls return `Err` at once. Dropping the
//! [`Browser`] (also while a test panics) closes it, kills what is left of
//! its process group and removes its profile.
//!
//! ```no_run
//! # use std::time::Duration;
//! # use waf_tests::{Netns, browser::Browser};
//! let ns = Netns::new("wb");
//! let browser = Browser::launch(&ns);
//! let page = browser.new_page();
//! page.goto("http://127.0.0.1:8080/", Duration::from_secs(10)).unwrap();
//! page.wait_for("document.title === 'ok'", Duration::from_secs(5)).unwrap();
//! ```

use std::{
    collections::{HashMap, HashSet, VecDeque},
    fs::File,
    io::{Read, Write},
    os::{
        fd::{AsRawFd, FromRawFd, OwnedFd},
        unix::process::CommandExt,
    },
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        Arc, Condvar, Mutex, MutexGuard,
        atomic::{AtomicU64, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use serde_json::{Value, json};

use crate::{Netns, unique};

/// The browser the harness runs (Debian's `chromium` package).
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// The deadline of one protocol command that takes no timeout of its own
/// ([`Page::eval`], [`Page::cookies`], [`Page::screenshot`]...).
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// How long [`Browser::launch`] waits for the browser to answer.
const LAUNCH_TIMEOUT: Duration = Duration::from_secs(30);

/// Queued events beyond this many are dropped, oldest first.
const MAX_EVENTS: usize = 10_000;

/// Chromium's flags besides `--user-data-dir` and the first URL: headless,
/// no sandbox (we are root), and none of its own traffic (updates, sync,
/// metrics, translation...).
const FLAGS: &[&str] = &[
    "--headless=new",
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-default-apps",
    "--disable-gpu",
    "--no-default-browser-check",
    "--disable-features=Translate,MediaRouter,OptimizationHints",
    "--metrics-recording-only",
    "--password-store=basic",
    "--use-mock-keychain",
    "--window-size=1280,800",
    "--remote-debugging-pipe",
];

/// What the reader thread shares with the callers.
#[derive(Default)]
struct State {
    /// Ids of the commands whose callers still wait.
    pending: HashSet<u64>,
    /// Responses not yet picked up, by id.
    responses: HashMap<u64, Value>,
    /// Events, oldest first.
    events: VecDeque<Value>,
    /// Why the connection is gone, once it is.
    closed: Option<String>,
}

/// One CDP connection (the pipes of one browser).
struct Conn {
    to_browser: Mutex<File>,
    state: Mutex<State>,
    changed: Condvar,
    next_id: AtomicU64,
}

impl Conn {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends a command (to a page if `session` is set) and waits at most
    /// `timeout` for its result.
    fn call(
        &self,
        session: Option<&str>,
        method: &str,
        params: Value,
        timeout: Duration,
    ) -> Result<Value, String> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut msg = json!({ "id": id, "method": method, "params": params });
        if let Some(s) = session {
            msg["sessionId"] = s.into();
        }
        {
            let mut st = self.lock();
            if let Some(why) = &st.closed {
                return Err(format!("{method}: {why}"));
            }
            st.pending.insert(id);
        }
        let mut bytes = msg.to_string().into_bytes();
        bytes.push(0);
        let written = self
            .to_browser
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .write_all(&bytes);
        let deadline = Instant::now() + timeout;
        let mut st = self.lock();
        let outcome = loop {
            if let Err(e) = &written {
                break Err(format!("{method}: cannot write to the browser: {e}"));
            }
            if let Some(mut resp) = st.responses.remove(&id) {
                break match resp.get("error") {
                    Some(e) => Err(format!(
                        "{method}: {}",
                        e["message"].as_str().unwrap_or("?")
                    )),
                    None => Ok(resp["result"].take()),
                };
            }
            if let Some(why) = &st.closed {
                break Err(format!("{method}: {why}"));
            }
            let now = Instant::now();
            if now >= deadline {
                break Err(format!("{method}: no answer within {timeout:?}"));
            }
            st = self
                .changed
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        };
        st.pending.remove(&id);
        outcome
    }

    /// Removes the queued events `pred` accepts.
    fn drop_events(&self, pred: impl Fn(&Value) -> bool) {
        self.lock().events.retain(|e| !pred(e));
    }

    /// Waits until `deadline` for an event `pred` accepts, and takes it out
    /// of the queue.
    fn wait_event(
        &self,
        deadline: Instant,
        pred: impl Fn(&Value) -> bool,
    ) -> Result<Value, String> {
        let mut st = self.lock();
        loop {
            if let Some(i) = st.events.iter().position(&pred) {
                return Ok(st.events.remove(i).expect("index from position"));
            }
            if let Some(why) = &st.closed {
                return Err(why.clone());
            }
            let now = Instant::now();
            if now >= deadline {
                return Err("timed out".into());
            }
            st = self
                .changed
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Waits until `deadline` for the connection to close; whether it did.
    fn wait_closed(&self, deadline: Instant) -> bool {
        let mut st = self.lock();
        while st.closed.is_none() {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            st = self
                .changed
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        true
    }

    fn is_closed(&self) -> bool {
        self.lock().closed.is_some()
    }

    /// Files one message from the browser: a response for a waiting caller,
    /// or an event.
    fn dispatch(&self, msg: Value) {
        let mut st = self.lock();
        match msg.get("id").and_then(Value::as_u64) {
            Some(id) if st.pending.contains(&id) => {
                st.responses.insert(id, msg);
            }
            Some(_) => {} // its caller gave up
            None => {
                if st.events.len() >= MAX_EVENTS {
                    st.events.pop_front();
                }
                st.events.push_back(msg);
            }
        }
        drop(st);
        self.changed.notify_all();
    }

    /// The reader thread: splits the browser's output at NUL bytes until
    /// the pipe closes.
    fn read_loop(&self, mut from_browser: File) {
        let mut buf = Vec::new();
        let mut chunk = vec![0u8; 64 * 1024];
        let why = loop {
            match from_browser.read(&mut chunk) {
                Ok(0) => break "the browser is gone (its pipe closed)".to_string(),
                Ok(n) => {
                    let mut start = buf.len();
                    buf.extend_from_slice(&chunk[..n]);
                    while let Some(end) = buf[start..].iter().position(|&b| b == 0) {
                        let end = start + end;
                        if let Ok(msg) = serde_json::from_slice(&buf[..end]) {
                            self.dispatch(msg);
                        }
                        buf.drain(..=end);
                        start = 0;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => break format!("reading from the browser: {e}"),
            }
        };
        self.lock().closed = Some(why);
        self.changed.notify_all();
    }
}

/// A headless Chromium in a network namespace; closed, killed (with its
/// helper processes) and its profile removed on drop.
pub struct Browser {
    conn: Arc<Conn>,
    child: Child,
    /// Temporary directory: the profile and chromium's stderr.
    dir: PathBuf,
    reader: Option<JoinHandle<()>>,
}

/// A pipe whose ends are closed on exec: (read end, write end).
fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: fds is a valid array of two ints.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(rc, 0, "pipe2: {}", std::io::Error::last_os_error());
    // SAFETY: both fds were just created and are owned by nobody else.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

impl Browser {
    /// Starts Chromium inside namespace `ns` on a fresh profile and waits
    /// until it answers. Panics (with the end of its stderr) if it does not
    /// start.
    ///
    /// The browser is also killed if the thread that launched it exits
    /// without dropping it (e.g. the test process is killed): launch it on
    /// the test's own thread.
    pub fn launch(ns: &Netns) -> Browser {
        assert!(
            Path::new(CHROMIUM).exists(),
            "chromium is not installed: run `cargo xtask setup`"
        );
        // A browser orphaned by its dying launcher (Drop kills the whole
        // group at once) is reparented to us rather than to init (which in
        // a container may be slow to reap it or never do), so that Drop can
        // reap it: no zombies left. Affects the whole test process.
        // SAFETY: prctl with an integer argument.
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1) };
        let dir = std::env::temp_dir().join(unique("waf-chromium-"));
        let profile = dir.join("profile");
        std::fs::create_dir_all(&profile).unwrap_or_else(|e| panic!("{}: {e}", profile.display()));
        let log = File::create(dir.join("chromium.log")).expect("chromium's log file");
        // Commands: we write cmd_w, the browser reads cmd_r as its fd 3.
        // Messages: the browser writes msg_w as its fd 4, we read msg_r.
        let (cmd_r, cmd_w) = pipe();
        let (msg_r, msg_w) = pipe();
        let (child_in, child_out) = (cmd_r.as_raw_fd(), msg_w.as_raw_fd());
        let mut cmd = Command::new("ip");
        // A PID namespace of its own: its crash handlers daemonize out of
        // its process group, but when the browser (the namespace's init)
        // dies, the kernel kills and reaps everything left in it.
        // (`--disable-crashpad-for-testing` would keep them from starting,
        // but then Chromium 156's network service crashes: "FD ownership
        // violation".)
        cmd.args(["netns", "exec", &ns.name])
            .args(["unshare", "--pid", "--fork", "--kill-child", "--mount-proc"])
            .arg(CHROMIUM)
            .args(FLAGS)
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            // Nothing of it in root's home.
            .env("XDG_CONFIG_HOME", &dir)
            .env("XDG_CACHE_HOME", &dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            // Its own process group, so that Drop can kill the helpers too.
            .process_group(0);
        // SAFETY: only async-signal-safe calls (fcntl, dup2, prctl) between
        // fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                // Copies above 10 first, so that 3 and 4 can be taken even
                // when one of our ends happens to be fd 3 or 4. dup2 clears
                // close-on-exec on the targets.
                let a = libc::fcntl(child_in, libc::F_DUPFD_CLOEXEC, 10);
                let b = libc::fcntl(child_out, libc::F_DUPFD_CLOEXEC, 10);
                if a < 0 || b < 0 || libc::dup2(a, 3) < 0 || libc::dup2(b, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {CHROMIUM}: {e}"));
        // Only the browser may hold its ends: we see EOF when it is gone.
        drop((cmd_r, msg_w));
        let conn = Arc::new(Conn {
            to_browser: Mutex::new(File::from(cmd_w)),
            state: Mutex::default(),
            changed: Condvar::new(),
            next_id: AtomicU64::new(1),
        });
        let reader = {
            let conn = conn.clone();
            let from_browser = File::from(msg_r);
            std::thread::Builder::new()
                .name("cdp-reader".into())
                .spawn(move || conn.read_loop(from_browser))
                .expect("spawn the CDP reader")
        };
        let browser = Browser {
            conn,
            child,
            dir,
            reader: Some(reader),
        };
        if let Err(e) = browser
            .conn
            .call(None, "Browser.getVersion", json!({}), LAUNCH_TIMEOUT)
        {
            let log = std::fs::read_to_string(browser.dir.join("chromium.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            drop(browser);
            panic!(
                "chromium did not start: {e}\nits stderr ends with:\n{}",
                tail.join("\n")
            );
        }
        browser
    }

    /// Opens a new tab on about:blank.
    pub fn new_page(&self) -> Page {
        let call = |method: &str, params: Value| {
            self.conn
                .call(None, method, params, COMMAND_TIMEOUT)
                .unwrap_or_else(|e| panic!("new page: {e}"))
        };
        let target = call("Target.createTarget", json!({ "url": "about:blank" }))["targetId"]
            .as_str()
            .expect("Target.createTarget: a targetId")
            .to_string();
        let session = call(
            "Target.attachToTarget",
            json!({ "targetId": target, "flatten": true }),
        )["sessionId"]
            .as_str()
            .expect("Target.attachToTarget: a sessionId")
            .to_string();
        let page = Page {
            conn: self.conn.clone(),
            session,
            target,
        };
        for (method, params) in [
            ("Page.enable", json!({})),
            ("Runtime.enable", json!({})),
            ("Page.setLifecycleEventsEnabled", json!({ "enabled": true })),
        ] {
            page.call(method, params, COMMAND_TIMEOUT)
                .unwrap_or_else(|e| panic!("new page: {e}"));
        }
        page
    }

    /// The browser's profile directory (it appears in its command line as
    /// `--user-data-dir=<this>`).
    pub fn user_data_dir(&self) -> PathBuf {
        self.dir.join("profile")
    }

    /// The process id of the browser's launcher (`unshare`, its parent):
    /// killing it kills the browser.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self
            .conn
            .call(None, "Browser.close", json!({}), Duration::from_secs(2));
        // The pipe closes when the browser has exited.
        self.conn
            .wait_closed(Instant::now() + Duration::from_secs(3));
        // Whatever is left of its process group (the leader is not reaped
        // yet, so the group id cannot have been reused).
        let group = -(self.child.id() as libc::pid_t);
        // SAFETY: kill has no memory-safety preconditions.
        unsafe { libc::kill(group, libc::SIGKILL) };
        let _ = self.child.wait();
        // Reap the group's orphans, which come to us (see `launch`), until
        // none of it is left, not even a zombie.
        let deadline = Instant::now() + Duration::from_secs(3);
        // SAFETY: kill with signal 0 only checks; waitpid gets a valid
        // status pointer.
        while unsafe { libc::kill(group, 0) } == 0 && Instant::now() < deadline {
            let mut status = 0;
            if unsafe { libc::waitpid(group, &mut status, libc::WNOHANG) } <= 0 {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        if let Some(reader) = self.reader.take()
            && self
                .conn
                .wait_closed(Instant::now() + Duration::from_secs(2))
        {
            let _ = reader.join();
        }
        // Killed helpers may still be exiting: retry briefly.
        for _ in 0..20 {
            if std::fs::remove_dir_all(&self.dir).is_ok() || !self.dir.exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A tab of a [`Browser`] (a CDP session attached to it); closed on drop.
/// Its calls fail once the browser is gone.
pub struct Page {
    conn: Arc<Conn>,
    session: String,
    target: String,
}

impl Page {
    fn call(&self, method: &str, params: Value, timeout: Duration) -> Result<Value, String> {
        self.conn.call(Some(&self.session), method, params, timeout)
    }

    fn is_mine(&self, event: &Value) -> bool {
        event["sessionId"].as_str() == Some(self.session.as_str())
    }

    /// Navigates to `url` and waits (at most `timeout` in all) for the new
    /// document's load event. Errors name the URL and the browser's reason
    /// (e.g. `net::ERR_ADDRESS_UNREACHABLE`); an HTTP error status is not an
    /// error (the page loads).
    pub fn goto(&self, url: &str, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        self.conn.drop_events(|e| self.is_mine(e));
        let nav = self
            .call("Page.navigate", json!({ "url": url }), timeout)
            .map_err(|e| format!("{url}: {e}"))?;
        if let Some(err) = nav["errorText"].as_str().filter(|e| !e.is_empty()) {
            return Err(format!("{url}: {err}"));
        }
        let Some(loader) = nav["loaderId"].as_str() else {
            return Ok(()); // same document (a fragment): nothing loads
        };
        // A load event queued before the navigation committed was the old
        // document's; one after it is the new one's (or of a page it
        // redirected to by script).
        self.conn
            .drop_events(|e| self.is_mine(e) && e["method"] == "Page.loadEventFired");
        let event = self
            .conn
            .wait_event(deadline, |e| {
                self.is_mine(e)
                    && match e["method"].as_str() {
                        Some("Page.loadEventFired" | "Inspector.targetCrashed") => true,
                        Some("Page.lifecycleEvent") => {
                            e["params"]["name"] == "load" && e["params"]["loaderId"] == loader
                        }
                        _ => false,
                    }
            })
            .map_err(|e| format!("{url}: no load event: {e}"))?;
        if event["method"] == "Inspector.targetCrashed" {
            return Err(format!("{url}: the page crashed"));
        }
        Ok(())
    }

    /// Evaluates `js` in the page and returns its value as JSON (a promise is
    /// awaited; `undefined` is `null`). A thrown exception is an `Err` with
    /// its text.
    pub fn eval(&self, js: &str) -> Result<Value, String> {
        self.eval_within(js, COMMAND_TIMEOUT)
    }

    fn eval_within(&self, js: &str, timeout: Duration) -> Result<Value, String> {
        let mut r = self.call(
            "Runtime.evaluate",
            json!({ "expression": js, "returnByValue": true, "awaitPromise": true }),
            timeout,
        )?;
        if let Some(ex) = r.get("exceptionDetails") {
            let text = ex["exception"]["description"]
                .as_str()
                .map(str::to_string)
                .or_else(|| ex["exception"].get("value").map(Value::to_string))
                .or_else(|| ex["text"].as_str().map(str::to_string))
                .unwrap_or_else(|| ex.to_string());
            return Err(text);
        }
        let obj = &mut r["result"];
        // NaN, Infinity, -0 and bigints come as a string of their own.
        Ok(match obj.get_mut("value") {
            Some(v) => v.take(),
            None => obj["unserializableValue"].take(),
        })
    }

    /// Evaluates the expression `js_condition` every 100 ms until its value
    /// is truthy (not null, false, 0 or ""), at most `timeout`. Errors while
    /// it is evaluated (e.g. the page is navigating) count as false; the
    /// last one is in the timeout message.
    pub fn wait_for(&self, js_condition: &str, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let last = match self.eval_within(js_condition, left.max(Duration::from_millis(1))) {
                Ok(v) if truthy(&v) => return Ok(()),
                Ok(v) => format!("last value: {v}"),
                Err(e) if self.conn.is_closed() => return Err(e),
                Err(e) => format!("last error: {e}"),
            };
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(format!(
                    "`{js_condition}` not true within {timeout:?} ({last})"
                ));
            }
            std::thread::sleep(left.min(Duration::from_millis(100)));
        }
    }

    /// The URL of the page's document. Panics if the browser is gone.
    pub fn url(&self) -> String {
        let info = self
            .conn
            .call(
                None,
                "Target.getTargetInfo",
                json!({ "targetId": self.target }),
                COMMAND_TIMEOUT,
            )
            .unwrap_or_else(|e| panic!("page url: {e}"));
        info["targetInfo"]["url"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The text of the page (`document.body.innerText`; empty without a
    /// body). Panics if it cannot be read.
    pub fn text(&self) -> String {
        let v = self
            .eval("document.body ? document.body.innerText : ''")
            .unwrap_or_else(|e| panic!("page text: {e}"));
        v.as_str().unwrap_or_default().to_string()
    }

    /// The cookies the browser would send to the page's URL, as CDP
    /// `Network.Cookie` objects (`name`, `value`, `domain`, `path`,
    /// `httpOnly`...). Panics if the browser is gone.
    pub fn cookies(&self) -> Vec<Value> {
        let mut r = self
            .call("Network.getCookies", json!({}), COMMAND_TIMEOUT)
            .unwrap_or_else(|e| panic!("page cookies: {e}"));
        match r["cookies"].take() {
            Value::Array(cookies) => cookies,
            other => panic!("Network.getCookies: no cookie list: {other}"),
        }
    }

    /// Saves a PNG screenshot of the viewport to `path`. Panics on failure.
    pub fn screenshot(&self, path: &Path) {
        let r = self
            .call(
                "Page.captureScreenshot",
                json!({ "format": "png" }),
                COMMAND_TIMEOUT,
            )
            .unwrap_or_else(|e| panic!("screenshot: {e}"));
        let data = r["data"].as_str().expect("Page.captureScreenshot: data");
        let png = base64_decode(data).unwrap_or_else(|e| panic!("screenshot: {e}"));
        std::fs::write(path, png).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
}

impl Drop for Page {
    fn drop(&mut self) {
        let _ = self.conn.call(
            None,
            "Target.closeTarget",
            json!({ "targetId": self.target }),
            Duration::from_secs(2),
        );
    }
}

/// JavaScript's truthiness, on a value that came back as JSON.
fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

/// Decodes standard base64 (padding optional).
fn base64_decode(s: &str) -> Result<Vec<u8>, String> {
    use base64::{
        Engine as _,
        alphabet::STANDARD,
        engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig},
    };
    const ENGINE: GeneralPurpose = GeneralPurpose::new(
        &STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    ENGINE.decode(s).map_err(|e| format!("not base64: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_decodes_rfc4648_vectors() {
        for (enc, dec) in [
            ("", ""),
            ("Zg==", "f"),
            ("Zm8=", "fo"),
            ("Zm9v", "foo"),
            ("Zm9vYg==", "foob"),
            ("Zm9vYmE=", "fooba"),
            ("Zm9vYmFy", "foobar"),
        ] {
            assert_eq!(base64_decode(enc).unwrap(), dec.as_bytes(), "{enc}");
        }
        assert_eq!(base64_decode("iVBORw0KGgo=").unwrap(), b"\x89PNG\r\n\x1a\n");
        assert!(base64_decode("Zm9v!").is_err());
    }

    #[test]
    fn truthiness_follows_javascript() {
        for v in [json!(null), json!(false), json!(0), json!(0.0), json!("")] {
            assert!(!truthy(&v), "{v}");
        }
        for v in [json!(true), json!(1), json!("0"), json!([]), json!({})] {
            assert!(truthy(&v), "{v}");
        }
    }
}
