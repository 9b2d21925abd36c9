//! Project tasks. `cargo xtask <task>`; see README.
//!
//! - `setup`: install what a fresh machine lacks (idempotent)
//! - `build`: build the daemon (and, through its build script, the XDP program)
//! - `run`: the main job: the daemon on an interface, or a demo lab of network
//!   namespaces when no interface is given
//! - `test`: formatting, lints and every test (unit, kernel, namespaces)
//! - `bench <name>`: benchmarks that print figures and write target/bench/*.json
//! - `fuzz [target]`: the property-based targets, long runs in release mode
//! - `ui-shots`: screenshots of the dashboard's pages in target/ui/

mod anomaly;
mod demo;
mod eval;
mod external;
mod fuzz;
mod setup;
mod ui_shots;

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, Result, bail};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "waf project tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Install what this machine lacks: Debian packages, the BPF toolchain,
    /// bpf-linker, test tools, the bpf filesystem. Safe to run again.
    Setup,
    /// Build the `waf` binary (release) with the embedded XDP program.
    Build,
    /// Run waf. Without --interface: build a demo lab of network namespaces
    /// (client, attacker, server) and run there.
    Run {
        /// Attach to this interface of this host instead of the demo lab.
        #[arg(long)]
        interface: Option<String>,
        /// Config file for `waf run`.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Stop the demo after this many seconds (default: run until Ctrl-C).
        #[arg(long)]
        duration: Option<u64>,
    },
    /// Install on this host: the binary in /usr/local/bin, the systemd unit,
    /// and /etc/waf/waf.toml (an existing config is kept).
    Install,
    /// Run every check and test: rustfmt, clippy, unit, kernel and namespace tests.
    Test {
        /// Extra arguments for `cargo test` (e.g. a test name filter).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Score `waf inspect` on labeled JSON lines (`label`: attack|benign),
    /// per source, category, placement and encoding, at one or every
    /// paranoia level. Accepts .gz files.
    Eval {
        /// Labeled files (default: ../shared/corpus/dev-requests.jsonl.gz
        /// if present, and tests/data/evasion.jsonl.gz and lookalike.jsonl.gz).
        files: Vec<PathBuf>,
        /// Paranoia level for `waf inspect`: 1-4, or `all` (1 to 4, side by
        /// side). Default: the config's.
        #[arg(long)]
        paranoia: Option<String>,
        /// Config file whose [detect] table to use.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Score the anomaly model on a generated log with injected scanners
    /// and bots: per bot kind the share flagged, and the share of clean
    /// sources flagged. Writes target/bench/anomaly.json.
    EvalAnomaly {
        /// Seed of the log learned from (the scored log's is seed + 1000).
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Clean sources per log.
        #[arg(long, default_value_t = 2400)]
        clean: u32,
        /// Bad sources of each kind in the scored log.
        #[arg(long, default_value_t = 40)]
        bots: u32,
        /// Hours each log spans.
        #[arg(long, default_value_t = 3)]
        hours: u64,
        /// Log format: combined, common or json.
        #[arg(long, default_value = "combined")]
        format: String,
    },
    /// Write the generated detection sets (the evasion set: every attack
    /// family x encoding x placement; the benign look-alikes) to tests/data/.
    Corpus,
    /// Fetch payload lists others wrote (the Debian packages of wfuzz and
    /// wapiti, unpacked under target/ext/, never installed) and write them,
    /// with any --lists directories (`<source>/<family>__<name>.txt`), as
    /// labeled requests in every placement to target/ext/external.jsonl.
    External {
        /// More directories of lists.
        #[arg(long)]
        lists: Vec<PathBuf>,
    },
    /// Run the property-based fuzz targets in release mode: http, framing,
    /// multipart, json, xml, canonical, mirror, normalize, config, api,
    /// xdp, xdp_rate (no TARGET: all; the xdp targets need root). Prints
    /// cases, seconds and failures per target; fails on a failure.
    Fuzz {
        /// One target (default: all).
        target: Option<String>,
        /// Cases per target (default 1,000,000).
        #[arg(long, conflicts_with = "seconds")]
        cases: Option<u64>,
        /// Run each target for this many seconds instead.
        #[arg(long)]
        seconds: Option<u64>,
    },
    /// Screenshots (PNG) of every dashboard page of a demo lab, in
    /// target/ui/ (root: network namespaces, a headless Chromium).
    UiShots,
    /// Run a benchmark: xdp, bans, api, ban-latency, proxy, detect, leaks, flood, fleet, sources, ui.
    Bench {
        /// Which benchmark.
        name: String,
        /// Extra arguments for the benchmark binary.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.task {
        Task::Setup => setup::setup(),
        Task::Build => {
            setup::ensure()?;
            build_release()
        }
        Task::Run {
            interface,
            config,
            duration,
        } => {
            setup::ensure()?;
            build_release()?;
            let waf = workspace_root().join("target/release/waf");
            match interface {
                Some(iface) => {
                    let mut c = cmd(&waf);
                    c.args(["run", "--interface", &iface]);
                    if let Some(cfg) = &config {
                        c.arg("--config").arg(cfg);
                    }
                    run(&mut c)
                }
                None => demo::run(&waf, config.as_deref(), duration),
            }
        }
        Task::Eval {
            files,
            paranoia,
            config,
        } => {
            let levels: Vec<Option<u8>> = match paranoia.as_deref() {
                None => vec![None],
                Some("all") => (1..=4).map(Some).collect(),
                Some(p) => match p.parse::<u8>() {
                    Ok(n @ 1..=4) => vec![Some(n)],
                    _ => bail!("--paranoia takes 1, 2, 3, 4 or all, not `{p}`"),
                },
            };
            setup::ensure()?;
            build_release()?;
            eval::run(
                &workspace_root().join("target/release/waf"),
                &files,
                &levels,
                config.as_deref(),
            )
        }
        Task::EvalAnomaly {
            seed,
            clean,
            bots,
            hours,
            format,
        } => {
            setup::ensure()?;
            build_release()?;
            let opts = anomaly::Opts {
                seed,
                clean,
                bots,
                hours,
                format,
            };
            anomaly::run(&workspace_root().join("target/release/waf"), &opts)
        }
        Task::Corpus => run(tests_bin("waf-corpus").arg(workspace_root().join("tests/data"))),
        Task::External { lists } => external::run_external(&lists),
        Task::Install => {
            setup::ensure()?;
            build_release()?;
            install()
        }
        Task::Test { args } => {
            setup::ensure()?;
            test(&args)
        }
        Task::Fuzz {
            target,
            cases,
            seconds,
        } => fuzz::run(target.as_deref(), cases, seconds),
        Task::UiShots => {
            setup::ensure()?;
            ui_shots::run_shots()
        }
        Task::Bench { name, args } => {
            setup::ensure()?;
            bench(&name, &args)
        }
    }
}

fn test(extra: &[String]) -> Result<()> {
    require_root("the tests load BPF programs and create network namespaces")?;
    run(cargo().args(["fmt", "--all", "--", "--check"]))
        .context("rustfmt: run `cargo fmt --all`")?;
    run(cargo().args(["clippy", "--all-targets", "--", "-D", "warnings"]))?;
    // The daemon tests run the real `waf` binary.
    run(cargo().args(["build", "--package", "waf-user", "--bin", "waf"]))?;
    run(cargo().arg("test").args(extra))
}

fn bench(name: &str, extra: &[String]) -> Result<()> {
    const BENCHES: &[&str] = &[
        "xdp",
        "bans",
        "api",
        "ban-latency",
        "proxy",
        "detect",
        "leaks",
        "flood",
        "fleet",
        "sources",
        "ui",
    ];
    if !BENCHES.contains(&name) {
        bail!("unknown benchmark `{name}`; known: {}", BENCHES.join(", "));
    }
    require_root("benchmarks load BPF programs")?;
    // Benchmarks that run the daemon run the release binary.
    build_release()?;
    run(tests_bin("waf-bench").arg(name).args(extra))
}

/// `cargo run --release` of a binary of the `waf-tests` crate, ready for
/// its arguments.
fn tests_bin(bin: &str) -> Command {
    let mut c = cargo();
    c.args([
        "run",
        "--release",
        "--package",
        "waf-tests",
        "--bin",
        bin,
        "--",
    ]);
    c
}

fn install() -> Result<()> {
    require_root("it writes to /usr/local/bin, /etc/systemd/system and /etc/waf")?;
    let root = workspace_root();
    let copy = |from: PathBuf, to: &str, mode: u32| -> Result<()> {
        use std::os::unix::fs::PermissionsExt as _;
        let to = Path::new(to);
        if let Some(dir) = to.parent() {
            std::fs::create_dir_all(dir)?;
        }
        // Write beside and rename: a running binary is replaced, not modified.
        let tmp = to.with_extension("new");
        std::fs::copy(&from, &tmp).with_context(|| format!("copying {}", from.display()))?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))?;
        std::fs::rename(&tmp, to)?;
        println!("installed {}", to.display());
        Ok(())
    };
    copy(root.join("target/release/waf"), "/usr/local/bin/waf", 0o755)?;
    // The daemon runs as its own user (the unit gives it three capabilities
    // at start, which it drops once enforcing).
    let has_user = std::fs::read_to_string("/etc/passwd")
        .map(|p| p.lines().any(|l| l.starts_with("waf:")))
        .unwrap_or(false);
    if !has_user {
        run(cmd("useradd").args([
            "--system",
            "--no-create-home",
            "--home-dir",
            "/var/lib/waf",
            "--shell",
            "/usr/sbin/nologin",
            "waf",
        ]))
        .context("creating the waf user")?;
        println!("created the system user waf");
    }
    copy(
        root.join("waf-user/dist/waf.service"),
        "/etc/systemd/system/waf.service",
        0o644,
    )?;
    copy(
        root.join("README.md"),
        "/usr/local/share/doc/waf/README.md",
        0o644,
    )?;
    if Path::new("/etc/waf/waf.toml").exists() {
        println!("kept /etc/waf/waf.toml (the shipped example is waf-user/dist/waf.toml)");
    } else {
        copy(
            root.join("waf-user/dist/waf.toml"),
            "/etc/waf/waf.toml",
            0o640,
        )?;
    }
    if Path::new("/run/systemd/system").exists() {
        run(cmd("systemctl").arg("daemon-reload"))?;
    }
    println!(
        "next: set `interface` and your allowlist in /etc/waf/waf.toml, check it with \
         `waf check-config /etc/waf/waf.toml`, then `systemctl enable --now waf`"
    );
    Ok(())
}

fn build_release() -> Result<()> {
    run(cargo().args(["build", "--release", "--package", "waf-user"]))
}

pub fn require_root(why: &str) -> Result<()> {
    if unsafe { libc::geteuid() } != 0 {
        bail!("this task must run as root: {why}");
    }
    Ok(())
}

/// The workspace root (xtask lives one level below it).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask is inside the workspace")
        .to_path_buf()
}

pub fn cargo() -> Command {
    let mut c = cmd(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    c.current_dir(workspace_root());
    c
}

/// A command with the program name.
pub fn cmd(program: impl AsRef<std::ffi::OsStr>) -> Command {
    Command::new(program)
}

/// Runs a command, failing with its command line when it fails.
pub fn run(c: &mut Command) -> Result<()> {
    let status = c
        .status()
        .with_context(|| format!("cannot start {:?}", c.get_program()))?;
    if !status.success() {
        bail!("{c:?} failed: {status}");
    }
    Ok(())
}
