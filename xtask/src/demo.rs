//! `cargo xtask run` without an interface: a demo lab of network namespaces.
//!
//! ```text
//!   wafdemo-cli  192.0.2.10  ─┐
//!   wafdemo-atk  192.0.2.66  ─┼─ bridge (wafdemo-lan) ── srv0 192.0.2.1  wafdemo-srv
//!   (2001:db8::10 / ::66)     ─┘                          XDP + `waf run`
//! ```
//!
//! The daemon runs in the server namespace with its pins on a bpffs under
//! /run/waf-demo (visible to every `ip netns exec`). The client and the
//! attacker ping the server; the demo narrates what the firewall does, and
//! everything is removed on exit (Ctrl-C, or --duration).

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::atomic::{AtomicBool, Ordering},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};

const LAN: &str = "wafdemo-lan";
const SRV: &str = "wafdemo-srv";
const CLI: &str = "wafdemo-cli";
const ATK: &str = "wafdemo-atk";
const DIR: &str = "/run/waf-demo";
const SRV_IF: &str = "srv0";
const SRV4: &str = "192.0.2.1";
const CLI4: &str = "192.0.2.10";
const ATK4: &str = "192.0.2.66";

static STOP: AtomicBool = AtomicBool::new(false);

/// One scripted step of the demo.
type Step<'a> = Box<dyn Fn() -> Result<()> + 'a>;

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

fn sh(args: &[&str]) -> Result<()> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .with_context(|| format!("cannot run {}", args[0]))?;
    if !out.status.success() {
        bail!(
            "{} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

fn ns(name: &str, args: &[&str]) -> Result<()> {
    let mut full = vec!["ip", "netns", "exec", name];
    full.extend_from_slice(args);
    sh(&full)
}

/// Removes everything the demo creates (also what a crashed run left).
fn teardown(waf: &Path) {
    let bpf = format!("{DIR}/bpf");
    let _ = Command::new("ip")
        .args(["netns", "exec", SRV])
        .arg(waf)
        .args(["detach", "--interface", SRV_IF, "--bpf-dir", &bpf])
        .output();
    for n in [CLI, ATK, SRV, LAN] {
        let _ = Command::new("ip").args(["netns", "delete", n]).output();
    }
    let _ = Command::new("umount").arg(&bpf).output();
    let _ = std::fs::remove_dir_all(DIR);
}

fn build_lab() -> Result<()> {
    for n in [LAN, SRV, CLI, ATK] {
        sh(&["ip", "netns", "add", n])?;
        ns(n, &["ip", "link", "set", "lo", "up"])?;
    }
    ns(LAN, &["ip", "link", "add", "br0", "type", "bridge"])?;
    ns(LAN, &["ip", "link", "set", "br0", "up"])?;
    for (host, ifname, v4, v6) in [
        (SRV, SRV_IF, SRV4, "2001:db8::1"),
        (CLI, "cli0", CLI4, "2001:db8::10"),
        (ATK, "atk0", ATK4, "2001:db8::66"),
    ] {
        let port = format!("p{ifname}");
        sh(&[
            "ip", "link", "add", ifname, "netns", host, "type", "veth", "peer", "name", &port,
            "netns", LAN,
        ])?;
        ns(LAN, &["ip", "link", "set", &port, "master", "br0"])?;
        ns(LAN, &["ip", "link", "set", &port, "up"])?;
        ns(host, &["ip", "link", "set", ifname, "up"])?;
        ns(
            host,
            &["ip", "addr", "add", &format!("{v4}/24"), "dev", ifname],
        )?;
        ns(
            host,
            &[
                "ip",
                "-6",
                "addr",
                "add",
                &format!("{v6}/64"),
                "dev",
                ifname,
                "nodad",
            ],
        )?;
    }
    Ok(())
}

fn demo_config(dir: &Path) -> Result<PathBuf> {
    let path = dir.join("waf.toml");
    let text = format!(
        r#"# Demo config written by `cargo xtask run` (see waf-user/dist/waf.toml).
interface = "{SRV_IF}"
xdp_mode = "native"
bpf_dir = "{DIR}/bpf"
state_dir = "{DIR}/state"

[allowlist]
# The client is a management host: never dropped, never banned.
cidrs = ["{CLI4}"]

[blocklist]
# A static blocklist (nobody in the lab uses these).
cidrs = ["203.0.113.0/24", "2001:db8:bad::/48"]

[rate_limit]
pps = 200
burst = 400
syn_pps = 20
syn_burst = 40
"#
    );
    std::fs::write(&path, text)?;
    Ok(path)
}

fn spawn_in(name: &str, args: &[&str]) -> Result<Child> {
    Command::new("ip")
        .args(["netns", "exec", name])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {args:?} in {name}"))
}

/// Runs the demo until Ctrl-C or `duration` seconds.
pub fn run(waf: &Path, config: Option<&Path>, duration: Option<u64>) -> Result<()> {
    if unsafe { libc::geteuid() } != 0 {
        bail!("the demo creates network namespaces: run it as root");
    }
    teardown(waf);
    // SAFETY: installing a handler that only stores to an atomic.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
    let result = demo(waf, config, duration);
    teardown(waf);
    println!("demo: lab removed");
    result
}

/// `waf run` in the server's namespace, alive a second later.
fn start_daemon(waf_s: &str, cfg: &Path) -> Result<std::process::Child> {
    let cfg_s = cfg.to_string_lossy().to_string();
    println!("demo: starting `waf run --config {cfg_s}` in {SRV}");
    let mut daemon = Command::new("ip")
        .args(["netns", "exec", SRV, waf_s, "run", "--config", &cfg_s])
        .args(["--stats-interval", "2"])
        .spawn()
        .context("starting waf")?;
    std::thread::sleep(Duration::from_secs(1));
    if let Some(status) = daemon.try_wait()? {
        bail!("waf exited at start: {status}");
    }
    Ok(daemon)
}

fn demo(waf: &Path, config: Option<&Path>, duration: Option<u64>) -> Result<()> {
    println!("demo: building the lab (namespaces {LAN}, {SRV}, {CLI}, {ATK})");
    build_lab()?;
    let dir = Path::new(DIR);
    std::fs::create_dir_all(dir.join("bpf"))?;
    sh(&["mount", "-t", "bpf", "bpf", &format!("{DIR}/bpf")])?;
    let cfg = match config {
        Some(c) => c.to_path_buf(),
        None => demo_config(dir)?,
    };
    let secs = duration.unwrap_or(3600).to_string();
    let waf_s = waf.to_string_lossy().to_string();
    let mut daemon = start_daemon(&waf_s, &cfg)?;
    println!(
        "demo: {CLI} ({CLI4}, allowlisted) and {ATK} ({ATK4}) now ping {SRV4} 5 times a second"
    );
    let mut pingers = vec![
        spawn_in(CLI, &["ping", "-q", "-i", "0.2", "-w", &secs, SRV4])?,
        spawn_in(ATK, &["ping", "-q", "-i", "0.2", "-w", &secs, SRV4])?,
    ];
    let token = format!("{DIR}/state/api.token");
    let cli = |args: &[&str]| -> Result<()> {
        let mut full = vec!["ip", "netns", "exec", SRV, &waf_s, "--token-file", &token];
        full.extend_from_slice(args);
        println!("demo: $ waf {}", args.join(" "));
        let status = Command::new(full[0]).args(&full[1..]).status()?;
        if !status.success() {
            bail!("waf {} failed: {status}", args.join(" "));
        }
        Ok(())
    };
    let story: Vec<(u64, Step)> = vec![
        (
            4,
            Box::new(|| cli(&["bans", "add", ATK4, "--duration", "12s", "--reason", "demo"])),
        ),
        (5, Box::new(|| cli(&["bans", "list"]))),
        (
            8,
            Box::new(|| {
                println!("demo: the client is allowlisted: banning it is refused");
                let _ = cli(&["bans", "add", CLI4]);
                Ok(())
            }),
        ),
        (
            18,
            Box::new(|| {
                println!("demo: the attacker's ban has expired; its pings pass again");
                cli(&["stats"])
            }),
        ),
    ];
    println!(
        "demo: watch the counters (pass / allowlisted / banned); Ctrl-C ends the demo.\n      \
         In another shell: ip netns exec {SRV} {waf_s} --token-file {token} bans list"
    );
    let start = Instant::now();
    let limit = Duration::from_secs(duration.unwrap_or(u64::MAX / 4));
    let mut next = 0;
    while !STOP.load(Ordering::SeqCst) && start.elapsed() < limit {
        if let Some(status) = daemon.try_wait()? {
            bail!("waf exited: {status}");
        }
        if let Some((at, step)) = story.get(next)
            && start.elapsed() >= Duration::from_secs(*at)
        {
            step()?;
            next += 1;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    for p in &mut pingers {
        let _ = p.kill();
        let _ = p.wait();
    }
    // SAFETY: sending SIGTERM to our child.
    unsafe { libc::kill(daemon.id() as i32, libc::SIGTERM) };
    let _ = daemon.wait();
    Ok(())
}
