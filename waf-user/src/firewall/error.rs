//! Why a firewall operation was refused, with what to do about it.

use ipnet::IpNet;

use crate::{dataplane::DataplaneError, values::show_net};

/// Why an operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum FirewallError {
    /// The target is covered by an allowlist entry.
    #[error("{} is protected by allowlist entry {by} ({origin})", show_net(net))]
    Protected {
        /// What was to be banned or blocked.
        net: IpNet,
        /// The allowlist entry.
        by: IpNet,
        /// Where that entry comes from.
        origin: String,
    },
    /// Nothing to remove.
    #[error("{} is not in {}", show_net(.0), .1)]
    NotFound(IpNet, &'static str),
    /// The entry comes from the config file and can only be changed there.
    #[error("{net} comes from the config ({origin}): change it there and reload (SIGHUP)")]
    FromConfig {
        /// The entry.
        net: IpNet,
        /// Its origin.
        origin: String,
    },
    /// Emergency mode with an empty allowlist would lock everyone out.
    #[error(
        "the allowlist is empty: emergency mode would drop every packet, including your own \
         connection; allowlist your management addresses first (or force it)"
    )]
    LockoutRisk,
    /// Allow-only countries with an empty allowlist could lock everyone out.
    #[error(
        "the allowlist is empty: sources.allow_countries drops every country it does not list,          perhaps your own; allowlist your management addresses first"
    )]
    AllowOnlyLockout,
    /// A ban wider than the policy allows without force.
    #[error(
        "{net} is wider than ban_policy.max_prefix_v4/v6 allow (/{max}): a ban that wide \
         drops whole networks; give \"force\": true if that is what you want"
    )]
    TooWide {
        /// The ban asked for.
        net: IpNet,
        /// The widest prefix allowed.
        max: u8,
    },
    /// The kernel map is full and the policy refuses new bans.
    #[error("ban map full: {0}")]
    Full(String),
    /// The owner is gone (the daemon is stopping).
    #[error("the firewall is stopping")]
    Stopped,
    /// A kernel map operation failed.
    #[error(transparent)]
    Dataplane(#[from] DataplaneError),
}
