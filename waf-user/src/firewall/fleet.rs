//! What the fleet link asks of the firewall, decided here on the owner's
//! state (never on a view that may be a batch behind): other hosts' bans,
//! the bucket's deletes, other hosts' strikes.
//!
//! - A ban from the fleet never replaces this host's own ban, unless this
//!   host lost the race to make it (`adopt`: its create on the key found
//!   another host's ban). It carries the origin's expiry and offence, so
//!   escalation counts offences fleet-wide; this host's allowlist and
//!   `max_prefix` still hold.
//! - A ban found in the kernel map with no journal record (`adopted`) is
//!   treated as a fleet ban: the bucket knows more about it.
//! - A delete lifts a fleet ban, and this host's own ban of a shared source
//!   when it is no newer than the delete (an operator lifted it elsewhere,
//!   or the bucket lost it while this host was away: the bucket is the
//!   truth).
//! - Another host's strike counts in this host's window; it never bans by
//!   itself: only the host whose own strike crosses the threshold bans, so
//!   one attack spread over the fleet is one ban.

use std::net::IpAddr;

use ipnet::IpNet;

use super::{
    bans::{Firewall, clean_reason, now32},
    error::FirewallError,
    types::{BanMeta, BanSource, Lift, Origin, StrikeKind},
};
use crate::values::{Dur, MAX_DURATION, unix_now};

/// Another host's ban, as the bucket holds it.
#[derive(Clone, Debug)]
pub struct FleetBan {
    /// Address or prefix.
    pub net: IpNet,
    /// Unix seconds (0: permanent).
    pub expires: u64,
    /// Why, as the origin wrote it.
    pub reason: String,
    /// The host that made it.
    pub origin: String,
    /// The origin's offence count for this source.
    pub offence: u16,
    /// This host banned the same source but lost the race for the key:
    /// its own ban gives way to the winner's.
    pub adopt: bool,
}

/// One thing the fleet asks.
#[derive(Clone, Debug)]
pub enum FleetOp {
    /// Apply another host's ban.
    Ban(FleetBan),
    /// The bucket deleted the key of `net` at `deleted_at` (Unix seconds).
    /// `own_sources` (bits of [`BanSource::to_byte`]): this host's own
    /// bans of these sources are lifted too, when no newer than the delete
    /// (0: only fleet bans, e.g. the delete is this host's own).
    Lift {
        /// Address or prefix.
        net: IpNet,
        /// When the bucket deleted it.
        deleted_at: u64,
        /// Which of this host's own bans the delete lifts.
        own_sources: u16,
    },
    /// Another host's strike against a source.
    Strike {
        /// The source (aggregated by this host's policy).
        source: IpAddr,
        /// What for.
        kind: StrikeKind,
    },
}

/// The bit of `source` in [`FleetOp::Lift`]'s `own_sources`.
pub fn source_bit(source: BanSource) -> u16 {
    1 << source.to_byte().min(15)
}

/// Expiries this close are the same ban's: a fleet ban from the same
/// origin is not applied again, and this host's own ban is not put again.
pub const SAME_EXPIRY_S: u64 = 2;

impl Firewall {
    /// Does what the fleet asks; Ok(true) when something changed.
    pub fn fleet(&mut self, op: FleetOp) -> Result<bool, FirewallError> {
        match op {
            FleetOp::Ban(b) => self.fleet_ban(b),
            FleetOp::Lift {
                net,
                deleted_at,
                own_sources,
            } => self.fleet_lift(net.trunc(), deleted_at, own_sources),
            FleetOp::Strike { source, kind } => Ok(self.fleet_strike(source, kind)),
        }
    }

    fn fleet_ban(&mut self, b: FleetBan) -> Result<bool, FirewallError> {
        let net = b.net.trunc();
        let now = unix_now();
        if b.expires != 0 && b.expires <= now {
            return Ok(false);
        }
        let origin = clean_reason(&b.origin);
        if let Some(local) = self.state.bans.get(&net) {
            // A ban found in the kernel map with no record (a host that
            // lost its journal) says less than the fleet's value.
            let replaceable = matches!(local.source, BanSource::Fleet | BanSource::Adopted);
            if !replaceable && !b.adopt {
                // This host's own ban stands; it is not the fleet's to change.
                return Ok(false);
            }
            let same_origin = local.origin.name().as_deref() == Some(&*origin);
            if local.source == BanSource::Fleet
                && same_origin
                && u64::from(local.expires).abs_diff(b.expires) <= SAME_EXPIRY_S
            {
                return Ok(false);
            }
        }
        // This host's own bounds hold: a ban wider than its max_prefix
        // (forced on another host, or a hostile value) is not applied here.
        self.admissible(&net, false)?;
        let (expires, shown) = match b.expires {
            0 => (0, "permanent".to_string()),
            e => {
                let e = e.min(now.saturating_add(MAX_DURATION.as_secs()));
                let e = e.min(u64::from(u32::MAX));
                (e as u32, Dur::secs(e - now).to_string())
            }
        };
        let meta = BanMeta {
            created: now32(),
            expires,
            offence: b.offence.max(1),
            source: BanSource::Fleet,
            reason: self.intern(&clean_reason(&b.reason)),
            origin: Origin::of(&origin),
        };
        self.put_ban(net, meta, &shown)?;
        Ok(true)
    }

    fn fleet_lift(
        &mut self,
        net: IpNet,
        deleted_at: u64,
        own_sources: u16,
    ) -> Result<bool, FirewallError> {
        let Some(local) = self.state.bans.get(&net) else {
            return Ok(false);
        };
        let lift = matches!(local.source, BanSource::Fleet | BanSource::Adopted)
            || (own_sources & source_bit(local.source) != 0
                && u64::from(local.created) <= deleted_at);
        if !lift {
            return Ok(false);
        }
        self.unban_inner(net, Lift::Fleet)?;
        self.stats.bans_removed += 1;
        Ok(true)
    }

    /// Counts another host's strike in the window (never bans by itself).
    fn fleet_strike(&mut self, source: IpAddr, kind: StrikeKind) -> bool {
        let net = self.policy.aggregate(source);
        *self.stats.strikes.entry("fleet").or_default() += 1;
        if self.protected_by(&net).is_some() || self.state.bans.contains_key(&net) {
            return false;
        }
        let counted = self
            .strikes
            .add(net, super::bans::ms_now(), self.policy.window.0);
        tracing::debug!(net = %net, kind = kind.as_str(), strikes = ?counted, "strike from the fleet");
        counted.is_some()
    }
}
