//! Least privilege: once the program is loaded and attached and the
//! listeners are bound, the daemon needs no capability at all (map writes
//! go through descriptors it already holds, and through mmap). It drops
//! every capability it has and forbids gaining new ones, before any thread
//! starts (capabilities are per thread), so the code that parses hostile
//! HTTP runs without any.

use std::io;

use anyhow::{Result, bail};
use caps::CapSet;

/// The threads this process has now.
fn threads() -> io::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| io::Error::other("no Threads: line in /proc/self/status"))
}

/// The capabilities the process would need to keep (none).
pub fn held() -> Result<Vec<String>> {
    let mut out: Vec<String> = caps::read(None, CapSet::Permitted)?
        .iter()
        .map(|c| c.to_string())
        .collect();
    out.sort();
    Ok(out)
}

/// Drops every capability (effective, permitted, inheritable, ambient) and
/// sets no_new_privs, so no exec can give them back. Must run while the
/// process has a single thread.
pub fn drop_all() -> Result<()> {
    let n = threads()?;
    if n != 1 {
        bail!("dropping capabilities with {n} threads running: they would keep theirs");
    }
    if let Err(e) = nix::sys::prctl::set_no_new_privs() {
        bail!("prctl(PR_SET_NO_NEW_PRIVS): {e}");
    }
    for set in [
        CapSet::Ambient,
        CapSet::Inheritable,
        CapSet::Effective,
        CapSet::Permitted,
    ] {
        caps::clear(None, set)
            .map_err(|e| anyhow::anyhow!("clearing {set:?} capabilities: {e}"))?;
    }
    let left = held()?;
    if !left.is_empty() {
        bail!("capabilities still held after dropping them: {left:?}");
    }
    Ok(())
}

/// A user to run as: a name from /etc/passwd, or `uid:gid`.
fn lookup(user: &str) -> Result<(u32, u32)> {
    if let Some((u, g)) = user.split_once(':')
        && let (Ok(u), Ok(g)) = (u.parse(), g.parse())
    {
        return Ok((u, g));
    }
    let passwd = std::fs::read_to_string("/etc/passwd")?;
    for line in passwd.lines() {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() >= 4 && f[0] == user {
            let uid = f[2].parse()?;
            let gid = f[3].parse()?;
            return Ok((uid, gid));
        }
    }
    bail!(
        "no user `{user}` in /etc/passwd: create it (useradd --system --no-create-home \
         --shell /usr/sbin/nologin {user}) or give uid:gid"
    )
}

/// Gives `dir` and the files directly in it to `uid:gid`.
fn chown_flat(dir: &std::path::Path, uid: u32, gid: u32) -> Result<()> {
    use anyhow::Context as _;
    std::os::unix::fs::chown(dir, Some(uid), Some(gid))
        .with_context(|| format!("chown {}", dir.display()))?;
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        std::os::unix::fs::chown(&p, Some(uid), Some(gid))
            .with_context(|| format!("chown {}", p.display()))?;
    }
    Ok(())
}

/// `waf prepare --user U`: what the service needs root for before the
/// daemon starts as its own user (the unit's `ExecStartPre=+`): a bpf
/// filesystem under `bpf_dir`, and `bpf_dir` (with the pins an earlier
/// daemon running as root made) and `state_dir` owned by the user.
pub fn prepare(cfg: &crate::config::Config, user: &str) -> Result<()> {
    let (uid, gid) = lookup(user)?;
    crate::dataplane::ensure_bpffs(&cfg.bpf_dir)?;
    std::fs::create_dir_all(&cfg.state_dir)?;
    chown_flat(&cfg.bpf_dir, uid, gid)?;
    chown_flat(&cfg.state_dir, uid, gid)?;
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&cfg.state_dir, std::fs::Permissions::from_mode(0o700))?;
    println!(
        "{} and {} belong to {user} ({uid}:{gid})",
        cfg.bpf_dir.display(),
        cfg.state_dir.display()
    );
    Ok(())
}
