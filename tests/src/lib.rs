//! Support for the privileged integration tests and benchmarks: unique names,
//! network namespaces and veth pairs that clean up after themselves (also
//! when a test panics), running the XDP program on crafted frames, counter
//! deltas; a model of the XDP program and the generators of its
//! differential test.

use std::{
    fs::File,
    os::fd::AsRawFd,
    path::{Path, PathBuf},
    process::{Command, Output},
    sync::atomic::{AtomicU32, Ordering},
};

use aya::programs::{TestRun, TestRunOptions, Xdp};
use waf_common::Counter;

/// XDP_DROP.
pub const XDP_DROP: u32 = 1;
/// XDP_PASS.
pub const XDP_PASS: u32 = 2;

/// Panics unless running as root: these tests load BPF programs and create
/// namespaces, and a skipped test would look like a passed one.
pub fn require_root() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "these tests need root (BPF, network namespaces): run `cargo xtask test` as root"
    );
}

/// A name unique to this process and call, at most `prefix.len() + 8`
/// characters (interface names are limited to 15).
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}{:x}{:02x}", std::process::id(), n & 0xff)
}

/// Runs a command, panicking with its output when it fails.
pub fn sh(args: &[&str]) -> Output {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs a command and returns whether it succeeded.
pub fn try_sh(args: &[&str]) -> bool {
    Command::new(args[0])
        .args(&args[1..])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// A network namespace, deleted on drop.
pub struct Netns {
    /// Its name (as `ip netns` knows it).
    pub name: String,
}

impl Netns {
    /// Creates a namespace named `<prefix><unique>` with `lo` up.
    pub fn new(prefix: &str) -> Self {
        let name = unique(prefix);
        sh(&["ip", "netns", "add", &name]);
        let ns = Self { name };
        ns.exec(&["ip", "link", "set", "lo", "up"]);
        ns
    }

    /// Runs a command inside the namespace, panicking when it fails.
    pub fn exec(&self, args: &[&str]) -> Output {
        let mut full = vec!["ip", "netns", "exec", &self.name];
        full.extend_from_slice(args);
        sh(&full)
    }

    /// Runs a command inside the namespace; whether it succeeded.
    pub fn try_exec(&self, args: &[&str]) -> bool {
        let mut full = vec!["ip", "netns", "exec", &self.name];
        full.extend_from_slice(args);
        try_sh(&full)
    }

    /// Runs `f` on a thread that has entered this namespace (the network
    /// namespace is per thread, so the rest of the test is unaffected).
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        run_in(&self.name, f)
    }

    /// Sends `count` pings from this namespace to `dst` (optionally from
    /// source address `src`), each waiting at most one second; true if any
    /// reply came back.
    pub fn ping(&self, dst: &str, src: Option<&str>, count: u32) -> bool {
        let count = count.to_string();
        let mut args = vec!["ping", "-n", "-q", "-c", &count, "-i", "0.2", "-W", "1"];
        if let Some(s) = src {
            args.extend_from_slice(&["-I", s]);
        }
        args.push(dst);
        self.try_exec(&args)
    }
}

/// Runs `f` on a thread that has entered network namespace `ns`.
pub fn run_in<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> T {
    let path = PathBuf::from("/var/run/netns").join(ns);
    std::thread::scope(|s| {
        s.spawn(move || {
            let fd = File::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            // SAFETY: a valid namespace fd; affects only this thread.
            let rc = unsafe { libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
            f()
        })
        .join()
        .unwrap_or_else(|e| std::panic::resume_unwind(e))
    })
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.name])
            .output();
    }
}

/// Creates a veth pair `a` (in `ns_a`) and `b` (in `ns_b`), both up.
pub fn veth(a: &str, ns_a: &Netns, b: &str, ns_b: &Netns) {
    sh(&[
        "ip", "link", "add", a, "netns", &ns_a.name, "type", "veth", "peer", "name", b, "netns",
        &ns_b.name,
    ]);
    ns_a.exec(&["ip", "link", "set", a, "up"]);
    ns_b.exec(&["ip", "link", "set", b, "up"]);
}

/// A directory on a bpf filesystem for a test's pins, removed on drop.
///
/// It lives on a bpffs mounted under /run (host mount namespace), which
/// processes started with `ip netns exec` see as well (they get a fresh /sys).
pub struct PinDir {
    /// The directory.
    pub path: PathBuf,
}

/// Where the tests' bpffs is mounted.
pub const TEST_BPFFS: &str = "/run/waf-test-bpffs";

impl PinDir {
    /// A fresh, empty pin directory.
    pub fn new() -> Self {
        let root = Path::new(TEST_BPFFS);
        waf_user::dataplane::ensure_bpffs(root).expect("mount the tests' bpffs");
        let path = root.join(unique("pins"));
        Self { path }
    }
}

impl Default for PinDir {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for PinDir {
    fn drop(&mut self) {
        if let Ok(rd) = std::fs::read_dir(&self.path) {
            for e in rd.flatten() {
                let _ = std::fs::remove_file(e.path());
            }
        }
        let _ = std::fs::remove_dir(&self.path);
    }
}

/// Runs the program once on `frame` and returns the XDP action.
pub fn run_xdp(prog: &Xdp, frame: &[u8]) -> u32 {
    let mut out = vec![0u8; frame.len() + 256];
    let opts = TestRunOptions {
        data_in: Some(frame),
        data_out: Some(&mut out),
        repeat: 1,
        ..Default::default()
    };
    prog.test_run(opts)
        .unwrap_or_else(|e| panic!("BPF_PROG_TEST_RUN on a {}-byte frame: {e}", frame.len()))
        .return_value
}

/// The difference of two counter snapshots, per index.
pub fn delta(before: &[Counter], after: &[Counter]) -> Vec<Counter> {
    before
        .iter()
        .zip(after)
        .map(|(b, a)| Counter {
            packets: a.packets - b.packets,
            bytes: a.bytes - b.bytes,
        })
        .collect()
}

/// Names and packet counts of the non-zero entries of a counter delta, for
/// assertion messages.
pub fn describe(d: &[Counter]) -> String {
    d.iter()
        .enumerate()
        .filter(|(_, c)| c.packets != 0)
        .map(|(i, c)| format!("{}={}", waf_common::counter::NAMES[i], c.packets))
        .collect::<Vec<_>>()
        .join(" ")
}

pub mod bench;
pub mod browser;
pub mod corpus;
pub mod fleet_lab;
pub mod mmdb;
pub mod xdp_fuzz;
pub mod xdp_model;

/// A small lab: a server, a client and an attacker namespace joined by a
/// bridge in a fourth ("lan") namespace, on 192.0.2.0/24 and 2001:db8::/64.
pub struct Lab {
    /// The server host (the XDP program goes on [`Lab::srv_if`]).
    pub srv: Netns,
    /// A well-behaved client.
    pub client: Netns,
    /// The attacker.
    pub attacker: Netns,
    /// The server's interface.
    pub srv_if: String,
    // Dropped last: the bridge the others hang off.
    _lan: Netns,
}

impl Lab {
    /// Server address (IPv4).
    pub const SRV4: &'static str = "192.0.2.1";
    /// Client address (IPv4).
    pub const CLIENT4: &'static str = "192.0.2.10";
    /// Attacker address (IPv4).
    pub const ATTACKER4: &'static str = "192.0.2.66";
    /// Server address (IPv6).
    pub const SRV6: &'static str = "2001:db8::1";
    /// Client address (IPv6).
    pub const CLIENT6: &'static str = "2001:db8::10";
    /// Attacker address (IPv6).
    pub const ATTACKER6: &'static str = "2001:db8::66";

    /// Builds the lab; everything is removed when it is dropped.
    pub fn new() -> Self {
        require_root();
        let lan = Netns::new("wl");
        let srv = Netns::new("ws");
        let client = Netns::new("wc");
        let attacker = Netns::new("wa");
        lan.exec(&["ip", "link", "add", "br0", "type", "bridge"]);
        lan.exec(&["ip", "link", "set", "br0", "up"]);
        let srv_if = unique("s");
        let hosts = [
            (&srv, srv_if.clone(), Self::SRV4, Self::SRV6),
            (&client, unique("c"), Self::CLIENT4, Self::CLIENT6),
            (&attacker, unique("a"), Self::ATTACKER4, Self::ATTACKER6),
        ];
        for (ns, ifname, v4, v6) in hosts {
            let port = format!("p{ifname}");
            veth(&ifname, ns, &port, &lan);
            lan.exec(&["ip", "link", "set", &port, "master", "br0"]);
            ns.exec(&["ip", "addr", "add", &format!("{v4}/24"), "dev", &ifname]);
            ns.exec(&[
                "ip",
                "-6",
                "addr",
                "add",
                &format!("{v6}/64"),
                "dev",
                &ifname,
                "nodad",
            ]);
        }
        Self {
            srv,
            client,
            attacker,
            srv_if,
            _lan: lan,
        }
    }
}

impl Default for Lab {
    fn default() -> Self {
        Self::new()
    }
}

/// The `waf` binary the daemon tests run (`cargo xtask test` builds it
/// first; by hand: `cargo build -p waf-user --bin waf`).
pub fn waf_bin() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let bin = target.join("debug/waf");
    assert!(
        bin.exists(),
        "{} is missing: build it with `cargo build -p waf-user --bin waf` (cargo xtask test does)",
        bin.display()
    );
    bin
}

/// The release `waf` binary the benchmarks run (`cargo xtask bench` builds
/// it first; by hand: `cargo build --release -p waf-user`).
pub fn waf_release_bin() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let bin = target.join("release/waf");
    assert!(
        bin.exists(),
        "{} is missing: build it with `cargo build --release -p waf-user` (cargo xtask bench does)",
        bin.display()
    );
    bin
}

/// The token the test daemons use.
pub const TEST_TOKEN: &str = "test-token-0123456789abcdef";

/// A `waf run` daemon in the server namespace of a [`Lab`], with its own
/// pins and state; killed (and its pins removed) on drop.
pub struct TestDaemon {
    child: Option<std::process::Child>,
    /// The config file.
    pub config: PathBuf,
    /// Its state directory.
    pub state_dir: PathBuf,
    /// Its pins.
    pub pins: PinDir,
    ns: String,
    iface: String,
    log: PathBuf,
    /// Arguments run before the `waf` binary (e.g. `setpriv ...` to start
    /// it as another user with chosen capabilities).
    pub wrap: Vec<String>,
    /// The `waf` binary to run (None: [`waf_bin`], the debug build).
    pub bin: Option<PathBuf>,
}

impl TestDaemon {
    /// Writes a config for `lab` plus `extra` TOML and starts the daemon.
    pub fn start(lab: &Lab, extra: &str) -> Self {
        let mut d = Self::configure(lab, extra);
        d.spawn(lab);
        d
    }

    /// Writes a config for `lab` plus `extra` TOML; does not start it.
    pub fn configure(lab: &Lab, extra: &str) -> Self {
        Self::configure_on(&lab.srv, &lab.srv_if, extra)
    }

    /// Writes a config for a daemon in namespace `ns` on interface `iface`
    /// plus `extra` TOML, and starts it.
    pub fn start_on(ns: &Netns, iface: &str, extra: &str) -> Self {
        let mut d = Self::configure_on(ns, iface, extra);
        if let Err(e) = d.try_spawn_here() {
            panic!("{e}");
        }
        d
    }

    /// Writes a config for a daemon in namespace `ns` on interface `iface`
    /// plus `extra` TOML; does not start it.
    pub fn configure_on(ns: &Netns, iface: &str, extra: &str) -> Self {
        let pins = PinDir::new();
        let state_dir = std::env::temp_dir().join(unique("waf-state-"));
        std::fs::create_dir_all(&state_dir).unwrap();
        let config = state_dir.join("waf.toml");
        std::fs::write(
            &config,
            format!(
                "interface = \"{}\"\nxdp_mode = \"native\"\nbpf_dir = \"{}\"\nstate_dir = \"{}\"\n\n{extra}\n\n[api]\nlisten = \"127.0.0.1:9876\"\ntoken = \"{TEST_TOKEN}\"\n",
                iface,
                pins.path.display(),
                state_dir.display()
            ),
        )
        .unwrap();
        Self {
            child: None,
            config,
            log: state_dir.join("waf.log"),
            state_dir,
            pins,
            ns: ns.name.clone(),
            iface: iface.to_string(),
            wrap: Vec::new(),
            bin: None,
        }
    }

    /// Starts (again) the daemon process and waits for its API.
    pub fn spawn(&mut self, lab: &Lab) {
        if let Err(e) = self.try_spawn(lab) {
            panic!("{e}");
        }
    }

    /// Starts the daemon; Err with its log when it exits at start or its
    /// API does not come up.
    pub fn try_spawn(&mut self, _lab: &Lab) -> Result<(), String> {
        self.try_spawn_here()
    }

    /// Starts the daemon in its namespace (see [`TestDaemon::try_spawn`]).
    pub fn try_spawn_here(&mut self) -> Result<(), String> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns])
            .args(&self.wrap)
            .arg(self.bin())
            .arg("run")
            .arg("--config")
            .arg(&self.config)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start waf run");
        self.child = Some(child);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
        loop {
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(status)) = c.try_wait()
            {
                self.child = None;
                return Err(format!(
                    "waf run exited at start ({status}):\n{}",
                    self.log_text()
                ));
            }
            if self.api("GET", "/v1/health", None).0 == 200 {
                return Ok(());
            }
            if std::time::Instant::now() > deadline {
                return Err(format!("the API did not come up:\n{}", self.log_text()));
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    /// The name of the network namespace the daemon runs in.
    pub fn netns(&self) -> &str {
        &self.ns
    }

    /// The `waf` binary this daemon runs.
    pub fn bin(&self) -> PathBuf {
        self.bin.clone().unwrap_or_else(waf_bin)
    }

    /// The daemon's process id (`ip netns exec` and `setpriv` exec it).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// What the daemon logged.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends a signal to the daemon.
    pub fn signal(&self, sig: i32) {
        if let Some(c) = &self.child {
            // SAFETY: signalling our child.
            unsafe { libc::kill(c.id() as i32, sig) };
        }
    }

    /// SIGKILLs the daemon (no chance to clean up) and reaps it.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERMs the daemon and waits for it to exit; returns its status.
    pub fn stop(&mut self) -> Option<std::process::ExitStatus> {
        let mut c = self.child.take()?;
        // SAFETY: signalling our child.
        unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
        c.wait().ok()
    }

    /// Calls this daemon's API (see [`api`]).
    pub fn api(
        &self,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        api_in(&self.ns, method, path, body, Some(TEST_TOKEN))
    }

    /// Runs the `waf` CLI against this daemon (inside the server namespace).
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.ns])
            .arg(self.bin())
            .args(["--token", TEST_TOKEN])
            .args(args)
            .output()
            .expect("run the waf CLI")
    }
}

impl Drop for TestDaemon {
    fn drop(&mut self) {
        self.kill9();
        let _ = waf_user::dataplane::detach(&self.pins.path, &self.iface);
        let _ = std::fs::remove_dir_all(&self.state_dir);
    }
}

/// Calls the API of the daemon in `lab`'s server namespace; returns the
/// status and the JSON (or text) body. Status 0: no connection.
pub fn api(
    lab: &Lab,
    method: &str,
    path: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    api_with_token(lab, method, path, body, Some(TEST_TOKEN))
}

/// As [`api`], with any token (None: no Authorization header).
pub fn api_with_token(
    lab: &Lab,
    method: &str,
    path: &str,
    body: Option<serde_json::Value>,
    token: Option<&str>,
) -> (u16, serde_json::Value) {
    api_in(&lab.srv.name, method, path, body, token)
}

/// As [`api_with_token`], for the daemon in namespace `ns`.
pub fn api_in(
    ns: &str,
    method: &str,
    path: &str,
    body: Option<serde_json::Value>,
    token: Option<&str>,
) -> (u16, serde_json::Value) {
    let url = format!("http://127.0.0.1:9876{path}");
    let method = method.to_string();
    let token = token.map(str::to_string);
    run_in(ns, move || {
        let mut req = ureq::request(&method, &url).timeout(std::time::Duration::from_secs(10));
        if let Some(t) = &token {
            req = req.set("Authorization", &format!("Bearer {t}"));
        }
        let r = match body {
            Some(b) => req.send_json(b),
            None => req.call(),
        };
        let (code, resp) = match r {
            Ok(r) => (r.status(), r),
            Err(ureq::Error::Status(c, r)) => (c, r),
            Err(_) => return (0, serde_json::Value::Null),
        };
        let text = resp.into_string().unwrap_or_default();
        let v = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
        (code, v)
    })
}

/// Starts `f` on a thread that has entered network namespace `ns` (for
/// servers that must outlive one call, unlike [`Netns::run`]).
pub fn spawn_in_netns<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> std::thread::JoinHandle<T> {
    let path = PathBuf::from("/var/run/netns").join(ns);
    std::thread::spawn(move || {
        let fd = File::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        // SAFETY: a valid namespace fd; affects only this thread.
        let rc = unsafe { libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
        f()
    })
}

/// A tiny HTTP/1.1 application (keep-alive, Content-Length bodies) that
/// answers every request `200 hello` (a path under `/status/NNN`, 4xx or 5xx: that
/// status) and counts what it served. Stops on drop.
pub struct Upstream {
    /// Requests it answered.
    pub served: std::sync::Arc<AtomicU32>,
    /// The header sections of the last requests it answered (at most 64),
    /// lowercased.
    pub heads: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    addr: std::net::SocketAddr,
    ns: String,
}

impl Upstream {
    /// Listens on `addr` inside namespace `ns`.
    pub fn start(ns: &Netns, addr: &str) -> Self {
        use std::{
            io::{BufRead as _, BufReader, Read as _, Write as _},
            net::TcpListener,
            sync::{Arc, atomic::AtomicBool},
        };
        let addr: std::net::SocketAddr = addr.parse().expect("upstream address");
        let served = Arc::new(AtomicU32::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::channel();
        let heads: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
        let (served2, stop2, heads2) = (served.clone(), stop.clone(), heads.clone());
        spawn_in_netns(&ns.name, move || {
            let l = TcpListener::bind(addr).expect("bind upstream");
            tx.send(()).unwrap();
            for conn in l.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let served = served2.clone();
                let heads = heads2.clone();
                std::thread::spawn(move || {
                    let _ = conn.set_read_timeout(Some(std::time::Duration::from_secs(10)));
                    let mut w = conn.try_clone().expect("clone");
                    let mut r = BufReader::new(conn);
                    loop {
                        let mut len = 0usize;
                        let mut line = String::new();
                        let mut first = true;
                        let mut head = String::new();
                        let mut status = 200u16;
                        loop {
                            line.clear();
                            match r.read_line(&mut line) {
                                Ok(0) | Err(_) => return,
                                Ok(_) => {}
                            }
                            if line == "\r\n" && !first {
                                break;
                            }
                            if first {
                                status = status_asked(&line);
                            }
                            first = false;
                            let low = line.to_ascii_lowercase();
                            head.push_str(&low);
                            if let Some(v) = low.strip_prefix("content-length:") {
                                len = v.trim().parse().unwrap_or(0);
                            }
                        }
                        let mut body = vec![0; len];
                        if r.read_exact(&mut body).is_err() {
                            return;
                        }
                        {
                            let mut h = heads.lock().unwrap();
                            if h.len() >= 64 {
                                h.remove(0);
                            }
                            h.push(head);
                        }
                        served.fetch_add(1, Ordering::SeqCst);
                        let answer =
                            format!("HTTP/1.1 {status} Answer\r\nContent-Length: 5\r\n\r\nhello");
                        if w.write_all(answer.as_bytes()).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        rx.recv_timeout(std::time::Duration::from_secs(5))
            .expect("upstream listening");
        Self {
            served,
            heads,
            stop,
            addr,
            ns: ns.name.clone(),
        }
    }
}

/// The status a request line asks the test upstream for: `NNN` for a path
/// under `/status/NNN` (an error status, 400-599), else 200.
fn status_asked(request_line: &str) -> u16 {
    request_line
        .split(' ')
        .nth(1)
        .and_then(|p| p.strip_prefix("/status/"))
        .and_then(|p| p.get(..3))
        .and_then(|n| n.parse().ok())
        .filter(|n| (400..600).contains(n))
        .unwrap_or(200)
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let addr = self.addr;
        let _ = spawn_in_netns(&self.ns, move || {
            std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_millis(200))
        })
        .join();
    }
}

/// Sends raw HTTP request bytes from inside `ns` to `dst` (optionally from
/// source address `src`), in pieces of `pieces` writes with a pause between
/// them (so they leave as separate TCP segments). Returns the status code
/// and the body, or an error (for example a connect timeout when XDP drops
/// the handshake).
pub fn http_raw(
    ns: &Netns,
    dst: &str,
    src: Option<&str>,
    raw: &[u8],
    pieces: usize,
) -> std::io::Result<(u16, String)> {
    http_exchange(ns, dst, src, raw, pieces).map(|(code, _, body)| (code, body))
}

/// [`http_raw`] in one piece, with the response head too (status line and
/// headers, as sent).
pub fn http_full(ns: &Netns, dst: &str, raw: &[u8]) -> std::io::Result<(u16, String, String)> {
    http_exchange(ns, dst, None, raw, 1)
}

fn http_exchange(
    ns: &Netns,
    dst: &str,
    src: Option<&str>,
    raw: &[u8],
    pieces: usize,
) -> std::io::Result<(u16, String, String)> {
    use std::io::{Read as _, Write as _};
    let dst: std::net::SocketAddr = dst.parse().expect("destination");
    let src: Option<std::net::IpAddr> = src.map(|s| s.parse().expect("source"));
    let raw = raw.to_vec();
    ns.run(move || {
        let sock = match dst {
            std::net::SocketAddr::V4(_) => socket2_connect(dst, src)?,
            std::net::SocketAddr::V6(_) => socket2_connect(dst, src)?,
        };
        let mut s = sock;
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(std::time::Duration::from_secs(5)))?;
        let step = raw.len().div_ceil(pieces.max(1));
        for chunk in raw.chunks(step.max(1)) {
            s.write_all(chunk)?;
            if pieces > 1 {
                std::thread::sleep(std::time::Duration::from_millis(30));
            }
        }
        let mut buf = Vec::new();
        let mut tmp = [0u8; 4096];
        loop {
            let n = s.read(&mut tmp)?;
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&tmp[..n]);
            if let Some(head_end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                if buf.len() >= head_end + 4 + len {
                    break;
                }
            }
        }
        let text = String::from_utf8_lossy(&buf).into_owned();
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("no HTTP status in {text:?}")))?;
        let (head, body) = text
            .split_once("\r\n\r\n")
            .map(|(h, b)| (h.to_string(), b.to_string()))
            .unwrap_or_default();
        Ok((status, head, body))
    })
}

/// A TCP connection to `dst` from `src` (if given), with a 1-second connect
/// timeout.
fn socket2_connect(
    dst: std::net::SocketAddr,
    src: Option<std::net::IpAddr>,
) -> std::io::Result<std::net::TcpStream> {
    use std::os::fd::FromRawFd as _;
    let domain = if dst.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    // SAFETY: plain socket syscalls on a fresh fd we own.
    unsafe {
        let fd = libc::socket(domain, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let stream = std::net::TcpStream::from_raw_fd(fd);
        if let Some(src) = src {
            let (sa, len) = sockaddr(std::net::SocketAddr::new(src, 0));
            if libc::bind(fd, (&raw const sa).cast(), len) != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        let _ = stream.set_nonblocking(true);
        let (sa, len) = sockaddr(dst);
        let rc = libc::connect(fd, (&raw const sa).cast(), len);
        if rc != 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EINPROGRESS) {
                return Err(e);
            }
            let mut pfd = libc::pollfd {
                fd,
                events: libc::POLLOUT,
                revents: 0,
            };
            if libc::poll(&mut pfd, 1, 1000) <= 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "connect timed out",
                ));
            }
            let mut err: libc::c_int = 0;
            let mut l = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
            libc::getsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_ERROR,
                (&raw mut err).cast(),
                &mut l,
            );
            if err != 0 {
                return Err(std::io::Error::from_raw_os_error(err));
            }
        }
        stream.set_nonblocking(false)?;
        Ok(stream)
    }
}

/// A sockaddr_storage for `a`.
fn sockaddr(a: std::net::SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: zeroed sockaddr_storage is valid; we fill the family's struct.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match a {
        std::net::SocketAddr::V4(v4) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: v4.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(v4.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_in fits in sockaddr_storage.
            unsafe { std::ptr::write((&raw mut ss).cast(), sin) };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        std::net::SocketAddr::V6(v6) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: v6.port().to_be(),
                sin6_flowinfo: 0,
                sin6_addr: libc::in6_addr {
                    s6_addr: v6.ip().octets(),
                },
                sin6_scope_id: 0,
            };
            // SAFETY: sockaddr_in6 fits in sockaddr_storage.
            unsafe { std::ptr::write((&raw mut ss).cast(), sin6) };
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (ss, len as libc::socklen_t)
}
