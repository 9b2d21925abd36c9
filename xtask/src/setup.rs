//! `cargo xtask setup`: bootstraps a fresh Debian 12 machine for building,
//! running and testing waf. Idempotent: every step first checks whether it is
//! already done, so a second run takes seconds.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, Result, bail};

use crate::{cmd, run};

/// The rustup name under which the Debian compiler (which has a prebuilt
/// `core` for bpfel-unknown-none) is linked; waf-user/build.rs builds the
/// eBPF crate with it.
pub const BPF_TOOLCHAIN: &str = "waf-bpf";
/// The bpf-linker release that builds against LLVM 22.
const BPF_LINKER_VERSION: &str = "0.13.0";
const LLVM_PREFIX: &str = "/usr/lib/llvm-22";

/// Debian packages: the eBPF build (Rust 1.96 with the BPF core, LLVM 22 for
/// bpf-linker) and the tools the tests and benchmarks drive.
const PACKAGES: &[&str] = &[
    // eBPF build
    "rustc-web",
    "cargo-web",
    "libstd-rust-web-dev-bpf",
    "llvm-22-dev",
    "libpolly-22-dev",
    "libzstd-dev",
    "zlib1g-dev",
    // tests: namespaces, veth, ping, counters
    "iproute2",
    "iputils-ping",
    "ethtool",
    "bpftool",
    // benchmarks: `bench flood` (trafgen as the generator reference, an
    // nftables netdev-ingress set and xdp-filter as the filter references;
    // nsenter runs xdp-filter in the lab's namespace), wrk for HTTP load
    "netsniff-ng",
    "nftables",
    "xdp-tools",
    "util-linux",
    "wrk",
    // benchmarks: `bench proxy` compares against nginx + ModSecurity + the
    // OWASP CoreRuleSet
    "nginx",
    "libnginx-mod-http-modsecurity",
    "modsecurity-crs",
    // tests: schemathesis runs from a venv of its own
    "python3",
    "python3-venv",
    // tests: the fleet test shares bans through a real NATS JetStream server
    "nats-server",
    // tests: the challenge page and the dashboard in a real headless browser,
    // and the page's script under Node.js
    "chromium",
    "nodejs",
];

/// The schemathesis release the API test runs (pinned).
pub const SCHEMATHESIS_VERSION: &str = "4.32.5";

/// The venv of the Python tools the tests drive, under target/.
pub fn tools_venv() -> PathBuf {
    crate::workspace_root().join("target/tools/venv")
}

/// One missing piece of the environment.
#[derive(Debug)]
enum Missing {
    Packages(Vec<&'static str>),
    Toolchain,
    BpfLinker,
    Bpffs,
    Schemathesis,
}

/// Lists what is missing, without changing anything.
fn missing() -> Vec<Missing> {
    let mut out = Vec::new();
    let pkgs = missing_packages();
    if !pkgs.is_empty() {
        out.push(Missing::Packages(pkgs));
    }
    if !toolchain_linked() {
        out.push(Missing::Toolchain);
    }
    if !bpf_linker_ok() {
        out.push(Missing::BpfLinker);
    }
    if !bpffs_mounted(Path::new("/sys/fs/bpf")) {
        out.push(Missing::Bpffs);
    }
    if !schemathesis_ok() {
        out.push(Missing::Schemathesis);
    }
    out
}

/// True when everything the build and the tests need is in place.
pub fn is_ready() -> bool {
    missing().is_empty()
}

/// Runs setup if anything is missing (used by `run`, `test` and `bench`).
pub fn ensure() -> Result<()> {
    if is_ready() {
        return Ok(());
    }
    eprintln!("xtask: the machine is not set up yet; running `cargo xtask setup` first");
    setup()
}

/// Installs whatever is missing.
pub fn setup() -> Result<()> {
    let todo = missing();
    if todo.is_empty() {
        println!("setup: everything is in place");
        return Ok(());
    }
    preflight(&todo)?;
    for step in todo {
        match step {
            Missing::Packages(pkgs) => install_packages(&pkgs)?,
            Missing::Toolchain => link_toolchain()?,
            Missing::BpfLinker => install_bpf_linker()?,
            Missing::Bpffs => mount_bpffs()?,
            Missing::Schemathesis => install_schemathesis()?,
        }
    }
    let left = missing();
    if !left.is_empty() {
        bail!("setup finished but these are still missing: {left:?}");
    }
    println!("setup: done");
    Ok(())
}

/// Refuses, with the manual steps, on a machine this setup cannot handle.
fn preflight(todo: &[Missing]) -> Result<()> {
    let root = unsafe { libc::geteuid() } == 0;
    let debian = debian_like();
    if root && debian {
        return Ok(());
    }
    let why = match (root, debian) {
        (false, _) => "setup needs root (it installs Debian packages and mounts bpffs)",
        (true, false) => "setup only knows Debian-like systems (apt-get, dpkg)",
        _ => unreachable!(),
    };
    bail!(
        "{why}. Still missing: {todo:?}\n\
         Install by hand:\n\
         - Rust >= 1.96 with a prebuilt core for bpfel-unknown-none (Debian: rustc-web \
           cargo-web libstd-rust-web-dev-bpf), linked as a rustup toolchain: \
           `rustup toolchain link {BPF_TOOLCHAIN} /usr` (or set WAF_BPF_TOOLCHAIN to a nightly \
           toolchain that has rust-src)\n\
         - LLVM 22 development files (llvm-22-dev libpolly-22-dev libzstd-dev zlib1g-dev)\n\
         - bpf-linker: LLVM_SYS_221_PREFIX={LLVM_PREFIX} cargo install bpf-linker --version \
           {BPF_LINKER_VERSION} --no-default-features --features llvm-22\n\
         - test tools: iproute2 iputils-ping ethtool bpftool chromium nodejs\n\
         - benchmark tools: netsniff-ng nftables xdp-tools util-linux wrk\n\
         - schemathesis {SCHEMATHESIS_VERSION} in a venv at target/tools/venv\n\
         - a bpf filesystem: mount -t bpf bpf /sys/fs/bpf"
    )
}

fn debian_like() -> bool {
    let os = fs::read_to_string("/etc/os-release").unwrap_or_default();
    let like = os
        .lines()
        .any(|l| (l.starts_with("ID=") || l.starts_with("ID_LIKE=")) && l.contains("debian"));
    like && Path::new("/usr/bin/apt-get").exists()
}

fn missing_packages() -> Vec<&'static str> {
    let out = Command::new("dpkg-query")
        .args(["-W", "-f", "${Package} ${db:Status-Abbrev}\n"])
        .args(PACKAGES)
        .output();
    let text = match out {
        Ok(o) => String::from_utf8_lossy(&o.stdout).into_owned(),
        Err(_) => return PACKAGES.to_vec(),
    };
    PACKAGES
        .iter()
        .copied()
        .filter(|p| {
            !text
                .lines()
                .any(|l| l.split_whitespace().collect::<Vec<_>>() == [*p, "ii"])
        })
        .collect()
}

fn install_packages(pkgs: &[&str]) -> Result<()> {
    println!("setup: installing Debian packages: {}", pkgs.join(" "));
    run(cmd("apt-get")
        .arg("update")
        .env("DEBIAN_FRONTEND", "noninteractive"))?;
    run(cmd("apt-get")
        .args(["install", "-y", "--no-install-recommends"])
        .args(pkgs)
        .env("DEBIAN_FRONTEND", "noninteractive"))
}

fn toolchain_linked() -> bool {
    Command::new("rustup")
        .args(["run", BPF_TOOLCHAIN, "rustc", "--print", "sysroot"])
        .output()
        .map(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).trim() == "/usr")
        .unwrap_or(false)
        && Path::new("/usr/lib/rustlib/bpfel-unknown-none/lib").is_dir()
}

fn link_toolchain() -> Result<()> {
    println!("setup: linking the Debian compiler as rustup toolchain `{BPF_TOOLCHAIN}`");
    run(cmd("rustup").args(["toolchain", "link", BPF_TOOLCHAIN, "/usr"]))
}

fn cargo_bin(name: &str) -> PathBuf {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .unwrap_or_else(|| PathBuf::from("/root/.cargo"));
    home.join("bin").join(name)
}

fn bpf_linker_ok() -> bool {
    Command::new(cargo_bin("bpf-linker"))
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains(BPF_LINKER_VERSION))
        .unwrap_or(false)
}

fn install_bpf_linker() -> Result<()> {
    println!("setup: building bpf-linker {BPF_LINKER_VERSION} against LLVM 22 (about a minute)");
    let path = format!(
        "{LLVM_PREFIX}/bin:{}",
        std::env::var("PATH").unwrap_or_default()
    );
    run(cmd("cargo")
        .args([
            "install",
            "bpf-linker",
            "--version",
            BPF_LINKER_VERSION,
            "--locked",
            "--no-default-features",
            "--features",
            "llvm-22",
        ])
        .env("LLVM_SYS_221_PREFIX", LLVM_PREFIX)
        .env("PATH", path))
}

fn schemathesis_ok() -> bool {
    Command::new(tools_venv().join("bin/schemathesis"))
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains(SCHEMATHESIS_VERSION))
        .unwrap_or(false)
}

fn install_schemathesis() -> Result<()> {
    let venv = tools_venv();
    println!(
        "setup: installing schemathesis {SCHEMATHESIS_VERSION} in {}",
        venv.display()
    );
    if !venv.join("bin/pip").exists() {
        run(cmd("python3").args(["-m", "venv"]).arg(&venv))?;
    }
    run(cmd(venv.join("bin/pip"))
        .args(["install", "--quiet", "--disable-pip-version-check"])
        .arg(format!("schemathesis=={SCHEMATHESIS_VERSION}")))
}

/// True when `dir` is a mount point of a bpf filesystem.
pub fn bpffs_mounted(dir: &Path) -> bool {
    let mounts = fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    mounts.lines().any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        f.len() > 2 && f[2] == "bpf" && Path::new(f[1]) == dir
    })
}

fn mount_bpffs() -> Result<()> {
    println!("setup: mounting the bpf filesystem on /sys/fs/bpf");
    fs::create_dir_all("/sys/fs/bpf").context("creating /sys/fs/bpf")?;
    run(cmd("mount").args(["-t", "bpf", "bpf", "/sys/fs/bpf"]))
}
