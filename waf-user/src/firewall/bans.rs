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
    expiry::ExpiryIndex,
    journal::Record,
    policy::{BanPolicy, OnFull, StrikeWindows},
    prefix::PrefixIndex,
    state::State,
    types::{Alarm, Ban, BanMeta, BanSource, ListItem, Offences, Stats, Strike},
    view::{BanCounts, ConfigEntries},
};
use crate::{
    dataplane::{Dataplane, DataplaneError, KernelClock, Settings},
    values::{Dur, show_net, unix_now},
};

/// Longest reason kept with a ban (longer ones are cut at a character).
pub const MAX_REASON: usize = 256;

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

/// What the firewall is configured with: the parts of the config it owns.
#[derive(Clone, Debug, Default)]
pub struct FirewallConfig {
    /// Strikes, bans, escalation.
    pub policy: BanPolicy,
    /// What the XDP program reads (modes from the config, limits...).
    pub settings: Settings,
    /// Allowlist entries from the config.
    pub allow: Vec<ListItem>,
    /// Blocklist entries from the config.
    pub block: Vec<ListItem>,
}

/// What start-up found and did.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct StartReport {
    /// Bans restored from the journal into the kernel.
    pub restored: usize,
    /// Bans found only in the kernel map, now journaled.
    pub adopted: usize,
    /// Journal bans that expired while the daemon was down.
    pub expired_while_down: usize,
    /// Journal bans lifted because the allowlist now covers them.
    pub lifted_protected: usize,
    /// Time to restore into the kernel, in milliseconds.
    pub restore_ms: u64,
}

/// The firewall state and its kernel maps.
pub struct Firewall {
    pub(super) dp: Dataplane,
    clock: KernelClock,
    pub(super) state: State,
    expiry: ExpiryIndex,
    strikes: StrikeWindows,
    pub(super) config_allow: BTreeMap<IpNet, Arc<str>>,
    pub(super) config_block: BTreeMap<IpNet, Arc<str>>,
    /// Every allowlist entry (config and API) with its origin.
    pub(super) protect: PrefixIndex<Arc<str>>,
    pub(super) policy: BanPolicy,
    pub(super) base: Settings,
    reasons: HashSet<Arc<str>>,
    pub(super) stats: Stats,
    alarms: BTreeMap<String, Alarm>,
    pub(super) records: Vec<Record>,
    /// Bans by family and kind.
    pub(super) counts: BanCounts,
    /// The config's list entries as readers see them.
    pub(super) config_views: [ConfigEntries; 2],
    /// Verdict-to-kernel times of bans made from strikes, taken by the owner.
    pub(super) latencies: Vec<Duration>,
}

fn now32() -> u32 {
    unix_now().min(u64::from(u32::MAX)) as u32
}

fn ms_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn items_map(items: &[ListItem]) -> BTreeMap<IpNet, Arc<str>> {
    items
        .iter()
        .map(|i| (i.net.trunc(), Arc::from(i.origin.as_str())))
        .collect()
}

/// Text an attacker may have put in (a matched snippet): control
/// characters replaced, cut at [`MAX_REASON`] bytes on a character.
pub fn clean_reason(s: &str) -> String {
    let mut out = String::with_capacity(s.len().min(MAX_REASON));
    for c in s.chars() {
        let c = if c.is_control() { '?' } else { c };
        if out.len() + c.len_utf8() > MAX_REASON {
            break;
        }
        out.push(c);
    }
    out
}

/// A ban's kernel entry, with "now" read once for many: `unix` on the
/// wall clock, `kernel_now` on the program's clock.
fn kernel_entry_at(meta: &BanMeta, unix: u64, kernel_now: u64) -> BanEntry {
    let expires_ns = match meta.expires {
        0 => 0,
        e => {
            let left = u64::from(e).saturating_sub(unix);
            kernel_now
                .saturating_add(left.saturating_mul(1_000_000_000))
                .max(1)
        }
    };
    BanEntry {
        expires_ns,
        reason: meta.source.code(),
        _reserved: 0,
    }
}

/// Gives the memory freed after a large restore (the journal's buffers)
/// back to the system, so it does not stay in the daemon's RSS.
fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free heap memory; no pointers.
    unsafe {
        libc::malloc_trim(0);
    }
}

impl Firewall {
    /// Takes over a loaded data plane and the journal's state: writes
    /// settings, lists and bans into the kernel, and adopts any ban found
    /// only in the kernel.
    pub fn start(
        cfg: FirewallConfig,
        mut dp: Dataplane,
        state: State,
    ) -> Result<(Self, StartReport), FirewallError> {
        let started = std::time::Instant::now();
        let clock = dp.calibrate_clock()?;
        let mut fw = Self {
            dp,
            clock,
            state,
            expiry: ExpiryIndex::default(),
            strikes: StrikeWindows::default(),
            config_allow: items_map(&cfg.allow),
            config_block: items_map(&cfg.block),
            protect: PrefixIndex::default(),
            policy: cfg.policy,
            base: cfg.settings,
            reasons: HashSet::new(),
            stats: Stats::default(),
            alarms: BTreeMap::new(),
            records: Vec::new(),
            counts: BanCounts::default(),
            config_views: Default::default(),
            latencies: Vec::new(),
        };
        fw.rebuild_protect();
        fw.refresh_config_views();
        fw.apply_settings()?;
        fw.sync_lists()?;
        let mut report = fw.restore_bans()?;
        report.adopted = fw.adopt_kernel_bans()?;
        fw.forget_old_history(unix_now());
        for n in fw.state.bans.keys() {
            fw.counts.add(n);
        }
        report.restore_ms = started.elapsed().as_millis() as u64;
        release_free_memory();
        Ok((fw, report))
    }

    /// Writes the journal's bans into the kernel (dropping those that ran
    /// out or that the allowlist now covers). The ban table is not
    /// rewritten: its reasons are already shared (the snapshot numbers
    /// them), so they only seed the interner.
    fn restore_bans(&mut self) -> Result<StartReport, FirewallError> {
        let mut report = StartReport::default();
        let now = now32();
        let (unix, kernel_now) = (unix_now(), self.clock.now());
        let mut gone = Vec::new();
        let mut hosts = Vec::with_capacity(self.state.bans.len());
        let bans = self.state.bans.clone();
        for (net, meta) in bans.iter() {
            if !self.reasons.contains(&*meta.reason) {
                self.reasons.insert(meta.reason.clone());
            }
            if meta.expires != 0 && meta.expires <= now {
                report.expired_while_down += 1;
                gone.push((*net, meta.clone(), "expired while the daemon was down"));
                continue;
            }
            if let Some((by, _)) = self.protected_by(net) {
                tracing::warn!(net = %net, allow = %by, "dropping a journaled ban now covered by the allowlist");
                report.lifted_protected += 1;
                gone.push((*net, meta.clone(), "covered by the allowlist"));
                continue;
            }
            let e = kernel_entry_at(meta, unix, kernel_now);
            if net.prefix_len() == net.max_prefix_len() {
                hosts.push((net.addr(), e));
            } else {
                self.dp.maps.prefix_bans.insert(*net, e)?;
            }
            self.expiry.insert(meta.expires, *net);
            report.restored += 1;
        }
        // Exact bans in bulk: both families at once, overflow in batches.
        self.dp.maps.bans.insert_many(&hosts)?;
        drop(hosts);
        drop(bans);
        self.expiry.shrink();
        for (net, meta, why) in gone {
            self.state.bans.remove(&net);
            self.kernel_unban(net)?;
            self.remember(net, &meta, now);
            self.records.push(Record::Unban(net));
            tracing::info!(net = %net, why, "ban not restored");
        }
        Ok(report)
    }

    /// Journals bans found only in the kernel map (a daemon that died
    /// between the kernel write and the journal).
    fn adopt_kernel_bans(&mut self) -> Result<usize, FirewallError> {
        // Every ban of the journal is in the kernel now: when the kernel
        // holds as many, it holds no other.
        let held = self.dp.maps.bans.len() + self.dp.maps.prefix_bans.len();
        if held == self.state.bans.len() {
            return Ok(0);
        }
        let kernel_now = self.clock.now();
        let now = unix_now();
        let mut adopted = 0;
        for (net, e) in self.dp.maps.all_bans()? {
            if self.state.bans.contains_key(&net) {
                continue;
            }
            let expires = if e.expires_ns == 0 {
                0
            } else if e.expires_ns <= kernel_now {
                self.kernel_unban(net)?;
                continue;
            } else {
                let left = (e.expires_ns - kernel_now) / 1_000_000_000;
                now.saturating_add(left.max(1)).min(u64::from(u32::MAX)) as u32
            };
            let meta = BanMeta {
                created: now32(),
                expires,
                offence: 1,
                source: BanSource::Adopted,
                reason: self.intern("found in the kernel map"),
            };
            self.expiry.insert(expires, net);
            self.state.bans.insert(net, meta.clone());
            self.records.push(Record::Ban(Ban { net, meta }));
            adopted += 1;
        }
        Ok(adopted)
    }

    /// Drops escalation memory older than `remember`.
    pub(super) fn forget_old_history(&mut self, now: u64) {
        let remember = self.policy.remember.0.as_secs();
        let old: Vec<IpNet> = self
            .state
            .history
            .iter()
            .filter(|(n, o)| {
                o.last_end != 0
                    && u64::from(o.last_end) + remember <= now
                    && !self.state.bans.contains_key(*n)
            })
            .map(|(n, _)| *n)
            .collect();
        for n in old {
            self.state.history.remove(&n);
            self.records.push(Record::Forget(n));
        }
    }

    // ---- bookkeeping the owner reads ----

    /// The records made since the last call, for the journal.
    pub fn take_records(&mut self) -> Vec<Record> {
        std::mem::take(&mut self.records)
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
    fn intern(&mut self, s: &str) -> Arc<str> {
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

    fn kernel_ban(&mut self, net: IpNet, meta: &BanMeta) -> Result<(), DataplaneError> {
        let e = self.kernel_entry(meta);
        self.dp.maps.ban(net, e)
    }

    fn kernel_unban(&mut self, net: IpNet) -> Result<bool, DataplaneError> {
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
        let net = net.trunc();
        if let Some((by, origin)) = self.protected_by(&net) {
            return Err(FirewallError::Protected { net, by, origin });
        }
        if !force && self.policy.too_wide(&net) {
            let max = match net {
                IpNet::V4(_) => self.policy.max_prefix_v4,
                IpNet::V6(_) => self.policy.max_prefix_v6,
            };
            return Err(FirewallError::TooWide { net, max });
        }
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
        };
        self.write_ban(net, &meta)?;
        let replaced = self.state.bans.insert(net, meta.clone()).is_some();
        if !replaced {
            self.counts.add(&net);
        }
        self.expiry.insert(expires, net);
        if let Some(mut h) = self.state.history.get(&net).copied() {
            h.offend(offence, meta.created);
            self.state.history.insert(net, h);
            self.records.push(Record::History(net, h));
        }
        let ban = Ban { net, meta };
        self.records.push(Record::Ban(ban.clone()));
        *self.stats.bans_added.entry(source.as_str()).or_default() += 1;
        let shown = match secs {
            Some(s) => Dur::secs(s).to_string(),
            None => "permanent".into(),
        };
        tracing::warn!(
            net = %net, source = source.as_str(), reason = %ban.meta.reason, offence,
            duration = %shown, replaced, "ban"
        );
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
        let host = net.prefix_len() == net.max_prefix_len();
        let same_kind = |n: &IpNet| {
            (n.prefix_len() == n.max_prefix_len()) == host
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
        self.unban_inner(victim, "evicted: map full")?;
        self.kernel_ban(net, meta).map_err(FirewallError::from)
    }

    /// Lifts a ban.
    pub fn unban(&mut self, net: IpNet) -> Result<Ban, FirewallError> {
        let b = self.unban_inner(net.trunc(), "removed")?;
        self.stats.bans_removed += 1;
        Ok(b)
    }

    /// Keeps the escalation memory of a source whose ban ended at `now`.
    fn remember(&mut self, net: IpNet, meta: &BanMeta, now: u32) {
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

    pub(super) fn unban_inner(&mut self, net: IpNet, why: &str) -> Result<Ban, FirewallError> {
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
                    },
                });
            }
            return Err(FirewallError::NotFound(net, "the bans"));
        };
        self.counts.sub(&net);
        self.kernel_unban(net)?;
        self.remember(net, &meta, now32());
        self.records.push(Record::Unban(net));
        tracing::warn!(net = %net, why, "unban");
        Ok(Ban { net, meta })
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
            match self.unban_inner(net, "expired") {
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
        let immediate = self.policy.immediate_score.is_some_and(|t| s.score >= t);
        if !immediate {
            let count = self.strikes.add(net, ms_now(), self.policy.window.0)?;
            tracing::info!(net = %net, kind = s.kind.as_str(), strikes = count, of = self.policy.strikes, "strike");
            if (count as u32) < self.policy.strikes {
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
