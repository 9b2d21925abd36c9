//! The firewall core: the one owner of the firewall's state, the kernel maps
//! and the journal, and the policy that turns findings into bans.
//!
//! - [`owner`]: the owner thread and the [`Handle`] every face holds
//!   (commands with replies, strikes that never block, the published view).
//! - [`bans`]: the [`Firewall`] itself: bans, strikes, expiry, kernel writes.
//! - [`restore`](mod@restore): start-up: the journal's bans into the
//!   kernel, kernel-only bans adopted.
//! - [`lists`]: allow and block lists, modes, config reloads.
//! - `sources`: the source policies' prefixes in the kernel.
//! - [`lookup`](mod@lookup): what everything says of one address.
//! - [`policy`]: strikes in a window, immediate bans, escalation, IPv6
//!   aggregation, the widest prefix without force.
//! - [`view`]: what readers see, published after every batch.
//! - [`journal`]: the binary snapshot and log in `state_dir`.
//! - [`types`]: the domain types (bans, sources, lists, strikes, alarms).
//! - [`error`]: why an operation was refused.

pub mod bans;
pub mod error;
mod expiry;
pub mod fleet;
pub mod journal;
pub mod lists;
pub mod lookup;
pub mod owner;
pub mod policy;
mod prefix;
pub mod restore;
mod sources;
pub mod state;
pub mod types;
pub mod view;

pub use self::{
    bans::{BanDuration, Firewall},
    error::FirewallError,
    fleet::{FleetBan, FleetOp},
    lists::Modes,
    owner::{BanOrder, Handle, ImportOrder, ImportReport, StrikeSink},
    policy::{BanPolicy, OnFull},
    restore::{FirewallConfig, StartReport},
    types::{
        Alarm, Ban, BanChange, BanMeta, BanSource, Lift, ListItem, ListKind, ListView, Origin,
        Stats, Strike, StrikeKind,
    },
    view::View,
};

/// Opens the journal in `state_dir` and starts the firewall on `dp` with
/// what it restored (bans written into the kernel). The caller attaches
/// (through [`Firewall::attach`]) and then hands both to [`owner::spawn`].
pub fn restore(
    cfg: FirewallConfig,
    dp: crate::dataplane::Dataplane,
    state_dir: &std::path::Path,
) -> anyhow::Result<(
    Firewall,
    journal::Journal,
    StartReport,
    journal::ReplayReport,
)> {
    let (journal, state, replay) = journal::Journal::open(state_dir)
        .map_err(|e| anyhow::anyhow!("journal in {}: {e}", state_dir.display()))?;
    for d in &replay.damaged {
        tracing::warn!(damage = %d, "journal damage skipped");
    }
    let (mut fw, report) = Firewall::start(cfg, dp, state)?;
    if !replay.damaged.is_empty() {
        fw.alarm(
            "journal_damaged",
            format!(
                "the journal had damage at start ({} place(s), {} bytes skipped): {}",
                replay.damaged.len(),
                replay.skipped_bytes,
                replay.damaged.join("; ")
            ),
        );
    }
    Ok((fw, journal, report, replay))
}

/// [`restore()`], then the owner thread: for tests and benchmarks that need
/// no attachment.
pub fn start(
    cfg: FirewallConfig,
    dp: crate::dataplane::Dataplane,
    state_dir: &std::path::Path,
) -> anyhow::Result<(Handle, std::thread::JoinHandle<()>, StartReport)> {
    let (fw, journal, report, _) = restore(cfg, dp, state_dir)?;
    let (handle, thread) = owner::spawn(fw, journal)?;
    Ok((handle, thread, report))
}
