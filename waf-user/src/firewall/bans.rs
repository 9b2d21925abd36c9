//! The firewall's decisions and the one place that writes them into the
//! kernel maps: bans (with escalation for repeat offenders), strikes that
//! turn into bans, expiry. Every change is written to the kernel first
//! (enforcement within microseconds), then queued for the journal, then
//! logged. Only the owner thread holds a [`Firewall`].
//!
//! Invariants:
//! - nothing inside an allowlist entry is ever banned (refused with the
//!   entry that protects it);
//! - a ban is never lost silently: a full kernel map raises an alarm and
//!   follows `ban_policy.on_full` (evict the ban closest to expiry, or
//!   refuse), both logged and counted;
//! - a ban wider than `max_prefix_v4`/`max_prefix_v6` needs `force`.

use std::{
    collections::{BTreeMap, HashSet},
    sync::Arc,
    time::Duration,
};

use ipnet::IpNet;
use waf_common::BanEntry;

use super::{
    error::FirewallError,
    expiry::ExpiryIndex,
    journal::Record,
    policy::{BanPolicy, OnFull, StrikeWindows},
    prefix::PrefixIndex,
    state::State,
    types::{Alarm, Ban, BanChange, BanMeta, BanSource, Lift, Offences, Stats, Strike},
    view::{BanCounts, ConfigEntries},
};
use crate::{
    dataplane::{Dataplane, DataplaneError, KernelClock, Settings},
    values::{Dur, unix_now},
};

/// Longest reason kept with a ban (longer ones are cut at a character).
pub const MAX_REASON: usize = 256;

/// How long a new ban lasts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BanDuration {
    /// Until lifted.
    Permanent,
    /// This long.
    For(Duration),
    /// The policy's duration for this source's offence (escalating).
    Escalate,
}

/// The firewall state and its kernel maps.
pub struct Firewall {
    pub(super) dp: Dataplane,
    pub(super) clock: KernelClock,
    pub(super) state: State,
    pub(super) expiry: ExpiryIndex,
    pub(super) strikes: StrikeWindows,
    pub(super) config_allow: BTreeMap<IpNet, Arc<str>>,
    pub(super) config_block: BTreeMap<IpNet, Arc<str>>,
    /// Every allowlist entry (config and API) with its origin.
    pub(super) protect: PrefixIndex<Arc<str>>,
    pub(super) policy: BanPolicy,
    pub(super) base: Settings,
    pub(super) reasons: HashSet<Arc<str>>,
    pub(super) stats: Stats,
    pub(super) alarms: BTreeMap<String, Alarm>,
    pub(super) records: Vec<Record>,
    /// Changes to the bans in force since the owner last took them.
    pub(super) changes: Vec<BanChange>,
    /// Bans by family and kind.
    pub(super) counts: BanCounts,
    /// The config's list entries as readers see them.
    pub(super) config_views: [ConfigEntries; 2],
    /// Verdict-to-kernel times of bans made from strikes, taken by the owner.
    pub(super) latencies: Vec<Duration>,
    /// The source policies in force.
    pub(super) sources: Option<std::sync::Arc<crate::sources::SourcePolicy>>,
}

/// Now in Unix seconds, as the journal keeps times.
pub(super) fn now32() -> u32 {
    unix_now().min(u64::from(u32::MAX)) as u32
}

pub(super) fn ms_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Text an attacker may have put in (a matched snippet): control
/// characters replaced, cut at [`MAX_REASON`] bytes on a character.
pub fn clean_reason(s: &str) -> std::borrow::Cow<'_, str> {
    if s.len() <= MAX_REASON && !s.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len().min(MAX_REASON));
    for c in s.chars() {
        let c = if c.is_control() { '?' } else { c };
        if out.len() + c.len_utf8() > MAX_REASON {
            break;
        }
        out.push(c);
    }
    std::borrow::Cow::Owned(out)
}

impl Firewall {
    // ---- bookkeeping the owner reads ----

    /// The records made since the last call, for the journal.
    pub fn take_records(&mut self) -> Vec<Record> {
        std::mem::take(&mut self.records)
    }

    /// The bans made and lifted since the last call, for the faces that
    /// follow them.
    pub fn take_changes(&mut self) -> Vec<BanChange> {
        std::mem::take(&mut self.changes)
    }

    /// The persistent state (an O(1) copy of it is what readers see).
    pub fn state(&self) -> &State {
        &self.state
    }

    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Raised alarms.
    pub fn alarms(&self) -> Vec<Alarm> {
        self.alarms.values().cloned().collect()
    }

    /// Strikes pending over all sources.
    pub fn pending_strikes(&self) -> usize {
        self.strikes.pending()
    }

    /// The policy in force.
    pub fn policy(&self) -> &BanPolicy {
        &self.policy
    }

    /// The data plane (read-only: counters, capacity).
    pub fn dataplane(&self) -> &Dataplane {
        &self.dp
    }

    /// Attaches the program to an interface (before the owner starts).
    pub fn attach(
        &mut self,
        interface: &str,
        mode: crate::dataplane::AttachMode,
    ) -> Result<crate::dataplane::Attachment, DataplaneError> {
        self.dp.attach(interface, mode)
    }

    /// The ring buffer of rate events and samples, for its reader.
    pub fn take_events(&mut self) -> Option<aya::maps::RingBuf<aya::maps::MapData>> {
        self.dp.maps.events.take()
    }

    /// A read-only handle on the kernel's counters.
    pub fn counters_reader(&self) -> Result<crate::dataplane::CountersReader, DataplaneError> {
        self.dp.maps.counters_reader()
    }

    /// Raises (or re-raises) an alarm.
    pub fn alarm(&mut self, kind: &str, message: String) {
        let a = self.alarms.entry(kind.into()).or_insert_with(|| Alarm {
            kind: kind.into(),
            message: message.clone(),
            since: unix_now(),
            count: 0,
        });
        a.count += 1;
        a.message = message.clone();
        tracing::error!(alarm = kind, count = a.count, "{message}");
    }

    /// Re-measures the kernel clock offset (call it now and then).
    pub fn recalibrate(&mut self) {
        if let Ok(c) = self.dp.calibrate_clock() {
            self.clock = c;
        }
    }

    /// The shared copy of a reason text.
    pub(super) fn intern(&mut self, s: &str) -> Arc<str> {
        if let Some(a) = self.reasons.get(s) {
            return a.clone();
        }
        let a: Arc<str> = Arc::from(s);
        self.reasons.insert(a.clone());
        a
    }

    /// Forgets reason texts no ban uses any more.
    pub(super) fn trim_reasons(&mut self) {
        self.reasons.retain(|a| Arc::strong_count(a) > 1);
    }

    // ---- bans ----

    /// The allowlist entry (and its origin) that contains `net`, if any.
    pub fn protected_by(&self, net: &IpNet) -> Option<(IpNet, String)> {
        self.protect
            .containing(net)
            .map(|(by, origin)| (by, origin.to_string()))
    }

    /// The kernel's entry for a ban: its expiry on the program's clock.
    fn kernel_entry(&self, meta: &BanMeta) -> BanEntry {
        let expires_ns = match meta.expires {
            0 => 0,
            e => self
                .clock
                .after(Duration::from_secs(u64::from(e).saturating_sub(unix_now()))),
        };
        BanEntry {
            expires_ns,
            reason: meta.source.code(),
            _reserved: 0,
        }
    }

    pub(super) fn kernel_ban(&mut self, net: IpNet, meta: &BanMeta) -> Result<(), DataplaneError> {
        let e = self.kernel_entry(meta);
        self.dp.maps.ban(net, e)
    }

    pub(super) fn kernel_unban(&mut self, net: IpNet) -> Result<bool, DataplaneError> {
        self.dp.maps.unban(net)
    }

    /// The offences of `net` so far: its memory, or the ban it serves now.
    fn offences(&self, net: &IpNet) -> Option<Offences> {
        self.state.history.get(net).copied().or_else(|| {
            self.state.bans.get(net).map(|m| Offences {
                count: m.offence,
                last_end: 0,
                recent: [m.created, 0, 0, 0],
            })
        })
    }

    /// Bans `net` for `duration`, refusing what the allowlist protects and
    /// (without `force`) what is wider than the policy allows.
    pub fn ban(
        &mut self,
        net: IpNet,
        duration: BanDuration,
        reason: &str,
        source: BanSource,
        force: bool,
    ) -> Result<Ban, FirewallError> {
        self.ban_from(net, duration, reason, (source, None), force)
    }

    /// [`Firewall::ban`] with the fleet host that made the ban (`origin`,
    /// for bans from the fleet).
    pub fn ban_from(
        &mut self,
        net: IpNet,
        duration: BanDuration,
        reason: &str,
        (source, origin): (BanSource, Option<&str>),
        force: bool,
    ) -> Result<Ban, FirewallError> {
        let net = net.trunc();
        self.admissible(&net, force)?;
        let now = unix_now();
        let history = self.offences(&net);
        let (escalated, offence) = self.policy.escalate(history.as_ref(), now);
        let secs = match duration {
            BanDuration::Permanent => None,
            BanDuration::For(d) => Some(d.as_secs().max(1)),
            BanDuration::Escalate => Some(escalated.as_secs().max(1)),
        };
        let expires = secs.map_or(0, |s| {
            now.saturating_add(s.min(crate::values::MAX_DURATION.as_secs()))
                .min(u64::from(u32::MAX)) as u32
        });
        let meta = BanMeta {
            created: now32(),
            expires,
            offence,
            source,
            reason: self.intern(&clean_reason(reason)),
            origin: super::types::Origin::of_opt(origin.map(clean_reason).as_deref()),
        };
        let shown = match secs {
            Some(s) => Dur::secs(s).to_string(),
            None => "permanent".into(),
        };
        self.put_ban(net, meta, &shown)
    }

    /// Refuses what the allowlist protects and (without `force`) what is
    /// wider than the policy allows.
    pub(super) fn admissible(&self, net: &IpNet, force: bool) -> Result<(), FirewallError> {
        if let Some((by, origin)) = self.protected_by(net) {
            return Err(FirewallError::Protected {
                net: *net,
                by,
                origin,
            });
        }
        if !force && self.policy.too_wide(net) {
            let max = match net {
                IpNet::V4(_) => self.policy.max_prefix_v4,
                IpNet::V6(_) => self.policy.max_prefix_v6,
            };
            return Err(FirewallError::TooWide { net: *net, max });
        }
        Ok(())
    }

    /// Writes a ban (admitted already) into the kernel, then the state:
    /// escalation memory, journal record, change, counters, log.
    pub(super) fn put_ban(
        &mut self,
        net: IpNet,
        meta: BanMeta,
        shown: &str,
    ) -> Result<Ban, FirewallError> {
        let (source, offence) = (meta.source, meta.offence);
        self.write_ban(net, &meta)?;
        let replaced = self.state.bans.insert(net, meta.clone()).is_some();
        if !replaced {
            self.counts.add(&net);
        }
        self.expiry.insert(meta.expires, net);
        // Whatever strikes it had led here (or no longer matter).
        self.strikes.clear(&net);
        if let Some(mut h) = self.state.history.get(&net).copied() {
            h.offend(h.count.max(offence), meta.created);
            self.state.history.insert(net, h);
            self.records.push(Record::History(net, h));
        }
        let ban = Ban { net, meta };
        self.records.push(Record::Ban(ban.clone()));
        self.changes.push(BanChange::Banned(ban.clone()));
        *self.stats.bans_added.entry(source.as_str()).or_default() += 1;
        if source == BanSource::Fleet {
            // Another host logged it; a joining host applies a fleet's worth
            // at once (the fleet link logs how many).
            tracing::debug!(
                net = %net, origin = ban.meta.origin.name().as_deref(),
                reason = %ban.meta.reason, offence, duration = %shown, replaced, "ban from the fleet"
            );
        } else {
            // Where the databases place it, when source policies have them.
            let (country, asn) = self
                .sources
                .as_ref()
                .map_or((None, None), |p| p.geo(net.network()));
            let country = country.map(|c| String::from_utf8_lossy(&c).into_owned());
            tracing::warn!(
                net = %net, source = source.as_str(), origin = ban.meta.origin.name().as_deref(),
                reason = %ban.meta.reason, offence, duration = %shown, replaced,
                country = country.as_deref(), asn, "ban"
            );
        }
        Ok(ban)
    }

    /// Writes a ban into the kernel, handling a full map per the policy.
    fn write_ban(&mut self, net: IpNet, meta: &BanMeta) -> Result<(), FirewallError> {
        let (name, capacity) = match self.kernel_ban(net, meta) {
            Ok(()) => return Ok(()),
            Err(DataplaneError::MapFull { name, capacity }) => (name, capacity),
            Err(e) => return Err(e.into()),
        };
        let msg = format!("{name} is full ({capacity} entries) banning {net}");
        self.alarm("ban_map_full", msg.clone());
        if self.policy.on_full == OnFull::Reject {
            self.stats.bans_refused_full += 1;
            return Err(FirewallError::Full(format!(
                "{msg}; policy on_full = reject refused it"
            )));
        }
        // A victim from the map that is full: the same store and family.
        let exact = self.dp.maps.is_exact(&net);
        let same_kind = |n: &IpNet| {
            self.dp.maps.is_exact(n) == exact
                && matches!(
                    (n, &net),
                    (IpNet::V4(_), IpNet::V4(_)) | (IpNet::V6(_), IpNet::V6(_))
                )
        };
        let victim = self
            .expiry
            .iter()
            .find(|(t, n)| same_kind(n) && self.state.bans.get(n).is_some_and(|m| m.expires == *t))
            .map(|(_, n)| n);
        let Some(victim) = victim else {
            self.stats.bans_refused_full += 1;
            return Err(FirewallError::Full(format!(
                "{msg}; no timed ban to evict (all permanent)"
            )));
        };
        tracing::error!(evicted = %victim, for_ban = %net, "ban map full: evicting the ban closest to expiry");
        self.stats.bans_evicted += 1;
        self.unban_inner(victim, Lift::Evicted)?;
        self.kernel_ban(net, meta).map_err(FirewallError::from)
    }

    /// Lifts a ban.
    pub fn unban(&mut self, net: IpNet) -> Result<Ban, FirewallError> {
        let b = self.unban_inner(net.trunc(), Lift::Removed)?;
        self.stats.bans_removed += 1;
        Ok(b)
    }

    /// Keeps the escalation memory of a source whose ban ended at `now`.
    pub(super) fn remember(&mut self, net: IpNet, meta: &BanMeta, now: u32) {
        let mut h = self.state.history.get(&net).copied().unwrap_or(Offences {
            count: meta.offence,
            last_end: 0,
            recent: [meta.created, 0, 0, 0],
        });
        h.count = h.count.max(meta.offence);
        h.last_end = now.max(1);
        self.state.history.insert(net, h);
        self.records.push(Record::History(net, h));
    }

    pub(super) fn unban_inner(&mut self, net: IpNet, why: Lift) -> Result<Ban, FirewallError> {
        let Some(meta) = self.state.bans.remove(&net) else {
            // Not ours, but maybe in the kernel (written by another tool
            // or a crashed daemon): lift it there.
            if self.kernel_unban(net)? {
                return Ok(Ban {
                    net,
                    meta: BanMeta {
                        created: 0,
                        expires: 0,
                        offence: 0,
                        source: BanSource::Adopted,
                        reason: Arc::from(""),
                        origin: crate::firewall::Origin::NONE,
                    },
                });
            }
            return Err(FirewallError::NotFound(net, "the bans"));
        };
        self.counts.sub(&net);
        self.kernel_unban(net)?;
        self.remember(net, &meta, now32());
        self.records.push(Record::Unban(net));
        if meta.source == BanSource::Fleet {
            tracing::debug!(net = %net, why = why.as_str(), "unban of a fleet ban");
        } else {
            tracing::warn!(net = %net, why = why.as_str(), "unban");
        }
        let ban = Ban { net, meta };
        self.changes.push(BanChange::Lifted(ban.clone(), why));
        Ok(ban)
    }

    /// Lifts bans that ran out; returns how many.
    pub fn sweep(&mut self) -> usize {
        let now = now32();
        let mut n = 0;
        let due = if self.expiry.is_empty() {
            Vec::new()
        } else {
            self.expiry.due(now)
        };
        for (t, net) in due {
            if self.state.bans.get(&net).is_none_or(|m| m.expires != t) {
                continue;
            }
            match self.unban_inner(net, Lift::Expired) {
                Ok(_) => {
                    self.stats.bans_expired += 1;
                    n += 1;
                }
                Err(e) => tracing::error!(net = %net, error = %e, "cannot lift an expired ban"),
            }
        }
        self.strikes.expire(ms_now(), self.policy.window.0);
        // Stale index entries (bans lifted or changed) past the live ones:
        // rebuild.
        let timed = self.state.bans.len();
        if self.expiry.len() > 2 * timed + 4096 {
            let live: Vec<(u32, IpNet)> = self
                .state
                .bans
                .iter()
                .map(|(n, m)| (m.expires, *n))
                .collect();
            self.expiry.rebuild(live.into_iter());
        }
        n
    }

    /// Counts a strike; when the policy says so, bans its source (at once
    /// above `immediate_score`, else after `strikes` in `window`). Returns
    /// the ban if one was made.
    pub fn strike(&mut self, s: Strike) -> Option<Ban> {
        let net = self.policy.aggregate(s.source);
        *self.stats.strikes.entry(s.kind.as_str()).or_default() += 1;
        if self.protected_by(&net).is_some() {
            self.stats.strikes_protected += 1;
            return None;
        }
        if self.state.bans.contains_key(&net) {
            return None;
        }
        let immediate = s.ban || self.policy.immediate_score.is_some_and(|t| s.score >= t);
        if !immediate {
            let count = self.strikes.add(net, ms_now(), self.policy.window.0)?;
            tracing::info!(net = %net, kind = s.kind.as_str(), strikes = count, of = self.policy.strikes, "strike");
            if (count as u32) < self.policy.strikes {
                self.changes.push(BanChange::Struck(net, s.kind));
                return None;
            }
        }
        self.strikes.clear(&net);
        let reason = format!("{}: {}", s.kind.as_str(), s.evidence);
        // The prefix is the policy's own aggregation: no `force` needed.
        match self.ban(
            net,
            BanDuration::Escalate,
            &reason,
            s.kind.ban_source(),
            true,
        ) {
            Ok(b) => {
                if let Some(t) = s.decided {
                    self.latencies.push(t.elapsed());
                }
                Some(b)
            }
            Err(e) => {
                tracing::error!(net = %net, error = %e, "strikes reached but the ban failed");
                None
            }
        }
    }
}
