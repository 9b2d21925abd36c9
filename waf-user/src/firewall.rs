//! The firewall's decisions, and the one place that writes them into the
//! kernel maps: bans (with escalation for repeat offenders), strikes that
//! turn into bans, allow and block lists, modes. Every change is written to
//! the kernel first (enforcement within microseconds), then to the journal,
//! then logged.
//!
//! Invariants:
//! - nothing inside an allowlist entry is ever banned (the API answers 409
//!   with the entry that protects it);
//! - a ban is never lost silently: a full kernel map raises an alarm and
//!   follows `ban_policy.on_full` (evict the ban closest to expiry, or
//!   refuse), both logged and counted;
//! - emergency mode is refused while the allowlist is empty (it would drop
//!   the operator's own connection), unless forced.

use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    net::IpAddr,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use ipnet::IpNet;
use serde::Serialize;
use waf_common::{BanEntry, Counter, ListEntry, counter};

use crate::{
    config::{BanPolicy, Config, ListItem, Modes, OnFull},
    dataplane::{Dataplane, DataplaneError, KernelClock, Settings},
    journal::{Ban, BanSource, Journal, ListKind, ListRecord, Offences, Record, Snapshot},
};

/// Unix seconds now.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Why an operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum FirewallError {
    /// The target is covered by an allowlist entry.
    #[error("{net} is protected by allowlist entry {by} ({origin})")]
    Protected {
        /// What was to be banned or blocked.
        net: IpNet,
        /// The allowlist entry.
        by: IpNet,
        /// Where that entry comes from.
        origin: String,
    },
    /// Nothing to remove.
    #[error("{0} is not in {1}")]
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
    /// The kernel map is full and the policy refuses new bans.
    #[error("ban map full: {0}")]
    Full(String),
    /// A kernel map operation failed.
    #[error(transparent)]
    Dataplane(#[from] DataplaneError),
}

/// A raised alarm (map full, journal failing...).
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Alarm {
    /// Machine name, e.g. `ban_map_full`.
    pub kind: String,
    /// What happened, for people.
    pub message: String,
    /// When it was raised first (Unix seconds).
    pub since: u64,
    /// How many times it fired.
    pub count: u64,
}

/// Daemon-side counters (the kernel's are in the counter map).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Stats {
    /// Bans made, per source.
    pub bans_added: BTreeMap<&'static str, u64>,
    /// Bans lifted by an operator.
    pub bans_removed: u64,
    /// Bans that ran out.
    pub bans_expired: u64,
    /// Bans evicted because the map was full.
    pub bans_evicted: u64,
    /// Bans refused because the map was full.
    pub bans_refused_full: u64,
    /// Strikes counted, per kind.
    pub strikes: BTreeMap<&'static str, u64>,
    /// Journal writes that failed.
    pub journal_errors: u64,
}

/// One list entry with where it comes from.
#[derive(Clone, Debug, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct ListView {
    /// The network.
    pub cidr: IpNet,
    /// `config`, `path:line`, or `api`.
    #[serde(default)]
    pub origin: String,
    /// Operator's comment (API entries).
    #[serde(default)]
    pub comment: String,
    /// When it was added (API entries; Unix seconds).
    #[serde(default)]
    pub created: Option<u64>,
}

/// What start-up found and did.
#[derive(Debug, Default, Serialize)]
pub struct StartReport {
    /// Bans restored from the journal into the kernel.
    pub restored: usize,
    /// Bans found only in the kernel map, now journaled.
    pub adopted: usize,
    /// Journal bans that expired while the daemon was down.
    pub expired_while_down: usize,
    /// Journal bans lifted because the allowlist now covers them.
    pub lifted_protected: usize,
    /// Journal lines that could not be read.
    pub bad_journal_lines: usize,
    /// Time to restore, in milliseconds.
    pub restore_ms: u128,
}

/// The firewall state and its kernel maps.
pub struct Firewall {
    dp: Dataplane,
    clock: KernelClock,
    journal: Journal,
    snap: Snapshot,
    config_allow: BTreeMap<IpNet, String>,
    config_block: BTreeMap<IpNet, String>,
    policy: BanPolicy,
    base: Settings,
    strikes: HashMap<IpNet, VecDeque<u64>>,
    /// Daemon-side counters.
    pub stats: Stats,
    alarms: BTreeMap<String, Alarm>,
}

fn items_map(items: Vec<ListItem>) -> BTreeMap<IpNet, String> {
    items.into_iter().map(|i| (i.net, i.origin)).collect()
}

fn ms_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Firewall {
    /// Takes over a loaded data plane: replays the journal in `cfg.state_dir`,
    /// writes lists, settings and bans into the kernel, and journals any ban
    /// found only in the kernel.
    pub fn start(cfg: &Config, mut dp: Dataplane) -> anyhow::Result<(Self, StartReport)> {
        let started = std::time::Instant::now();
        let (journal, snap, replay) = Journal::open(&cfg.state_dir)
            .map_err(|e| anyhow::anyhow!("journal in {}: {e}", cfg.state_dir.display()))?;
        for (line, err) in &replay.bad_lines {
            tracing::warn!(line, error = %err, "skipped an unreadable journal line");
        }
        let clock = dp.calibrate_clock()?;
        let mut fw = Self {
            dp,
            clock,
            journal,
            snap,
            config_allow: items_map(cfg.allow_items()?),
            config_block: items_map(cfg.block_items()?),
            policy: cfg.ban_policy.clone(),
            base: cfg.settings()?,
            strikes: HashMap::new(),
            stats: Stats::default(),
            alarms: BTreeMap::new(),
        };
        let mut report = StartReport {
            bad_journal_lines: replay.bad_lines.len(),
            ..Default::default()
        };
        fw.apply_settings()?;
        fw.sync_lists()?;
        // Bans: the journal's, then whatever the kernel holds on top.
        let now = unix_now();
        let bans: Vec<Ban> = fw.snap.bans.values().cloned().collect();
        for b in bans {
            if b.expires.is_some_and(|e| e <= now) {
                fw.snap.bans.remove(&b.net);
                fw.kernel_unban(b.net)?;
                report.expired_while_down += 1;
                continue;
            }
            if let Some((by, _)) = fw.protected_by(b.net) {
                tracing::warn!(net = %b.net, allow = %by, "dropping a journaled ban now covered by the allowlist");
                fw.snap.bans.remove(&b.net);
                fw.kernel_unban(b.net)?;
                report.lifted_protected += 1;
                continue;
            }
            fw.kernel_ban(&b)?;
            report.restored += 1;
        }
        let kernel_now = fw.clock.now();
        let mut adopted = Vec::new();
        for (net, e) in fw.dp.maps.all_bans()? {
            if fw.snap.bans.contains_key(&net) {
                continue;
            }
            let expires = if e.expires_ns == 0 {
                None
            } else if e.expires_ns <= kernel_now {
                fw.kernel_unban(net)?;
                continue;
            } else {
                Some(now + (e.expires_ns - kernel_now) / 1_000_000_000)
            };
            adopted.push(Ban {
                net,
                reason: "found in the kernel map".into(),
                source: BanSource::Adopted,
                created: now,
                expires,
                offence: 1,
            });
        }
        report.adopted = adopted.len();
        for b in adopted {
            fw.snap.bans.insert(b.net, b);
        }
        // Prune escalation memory that has run out; journal what changed.
        let remember = fw.policy.remember.0.as_secs();
        fw.snap
            .history
            .retain(|_, o| o.last_end == 0 || o.last_end + remember > now);
        if report.adopted > 0 || report.expired_while_down > 0 || report.lifted_protected > 0 {
            fw.journal.compact(&fw.snap)?;
        }
        report.restore_ms = started.elapsed().as_millis();
        Ok((fw, report))
    }

    /// The data plane (counters, attach).
    pub fn dataplane(&mut self) -> &mut Dataplane {
        &mut self.dp
    }

    /// Kernel counters summed over CPUs.
    pub fn counters(&self) -> Result<Vec<Counter>, DataplaneError> {
        self.dp.maps.counters()
    }

    /// Raised alarms.
    pub fn alarms(&self) -> Vec<Alarm> {
        self.alarms.values().cloned().collect()
    }

    fn alarm(&mut self, kind: &str, message: String) {
        let now = unix_now();
        let a = self.alarms.entry(kind.into()).or_insert_with(|| Alarm {
            kind: kind.into(),
            message: message.clone(),
            since: now,
            count: 0,
        });
        a.count += 1;
        a.message = message.clone();
        tracing::error!(alarm = kind, count = a.count, "{message}");
    }

    fn journal(&mut self, r: Record) {
        if let Err(e) = self.journal.append(&r) {
            self.stats.journal_errors += 1;
            self.alarm(
                "journal",
                format!("cannot write the journal (state survives only in the kernel): {e}"),
            );
        }
    }

    /// fsyncs the journal, compacting it when it has grown; call it
    /// periodically.
    pub fn sync_journal(&mut self) {
        let result = if self.journal.appended > 10_000 + 2 * self.snap.bans.len() as u64 {
            self.journal.compact(&self.snap)
        } else {
            self.journal.sync()
        };
        if let Err(e) = result {
            self.stats.journal_errors += 1;
            self.alarm("journal", format!("cannot sync the journal: {e}"));
        }
    }

    /// Re-measures the kernel clock offset (call it now and then).
    pub fn recalibrate(&mut self) {
        if let Ok(c) = self.dp.calibrate_clock() {
            self.clock = c;
        }
    }

    // ---- modes and settings ----

    /// The modes in force (the config's, overridden through the API).
    pub fn modes(&self) -> Modes {
        Modes {
            monitor: self.snap.monitor.unwrap_or(self.base.monitor),
            emergency: self.snap.emergency.unwrap_or(self.base.emergency),
        }
    }

    fn apply_settings(&mut self) -> Result<(), DataplaneError> {
        let m = self.modes();
        let s = Settings {
            monitor: m.monitor,
            emergency: m.emergency,
            ..self.base
        };
        self.dp.maps.apply(&s)
    }

    /// Switches modes; `None` keeps a mode as it is.
    pub fn set_modes(
        &mut self,
        monitor: Option<bool>,
        emergency: Option<bool>,
        force: bool,
    ) -> Result<Modes, FirewallError> {
        if emergency == Some(true) && self.allow_is_empty() && !force {
            return Err(FirewallError::LockoutRisk);
        }
        let before = self.modes();
        if monitor.is_some() {
            self.snap.monitor = monitor;
        }
        if emergency.is_some() {
            self.snap.emergency = emergency;
        }
        self.apply_settings()?;
        self.journal(Record::Mode { monitor, emergency });
        let after = self.modes();
        if before != after {
            tracing::warn!(
                monitor = after.monitor,
                emergency = after.emergency,
                "mode changed"
            );
        }
        Ok(after)
    }

    /// Applies a reloaded config: settings, policy, config list entries.
    /// Bans that the new allowlist covers are lifted.
    pub fn reload(&mut self, cfg: &Config) -> anyhow::Result<()> {
        self.base = cfg.settings()?;
        self.policy = cfg.ban_policy.clone();
        self.config_allow = items_map(cfg.allow_items()?);
        self.config_block = items_map(cfg.block_items()?);
        self.apply_settings()?;
        self.sync_lists()?;
        let covered: Vec<(IpNet, IpNet)> = self
            .snap
            .bans
            .keys()
            .filter_map(|n| self.protected_by(*n).map(|(by, _)| (*n, by)))
            .collect();
        for (net, by) in covered {
            tracing::warn!(net = %net, allow = %by, "lifting a ban the allowlist now covers");
            let _ = self.unban(net);
        }
        tracing::info!(
            allow = self.allow_len(),
            block = self.block_len(),
            "config reloaded"
        );
        Ok(())
    }

    // ---- lists ----

    fn allow_is_empty(&self) -> bool {
        self.config_allow.is_empty() && self.snap.allow.is_empty()
    }

    fn allow_len(&self) -> usize {
        self.dp.maps.allow.len()
    }

    fn block_len(&self) -> usize {
        self.dp.maps.block.len()
    }

    /// The allowlist entry (and its origin) that contains `net`, if any.
    pub fn protected_by(&self, net: IpNet) -> Option<(IpNet, String)> {
        let config = self
            .config_allow
            .iter()
            .find(|(a, _)| a.contains(&net))
            .map(|(a, o)| (*a, o.clone()));
        config.or_else(|| {
            self.snap
                .allow
                .keys()
                .find(|a| a.contains(&net))
                .map(|a| (*a, "api".to_string()))
        })
    }

    /// Makes the kernel lists hold the config's entries plus the API's.
    fn sync_lists(&mut self) -> Result<(), DataplaneError> {
        for (kind, config) in [
            (ListKind::Allow, self.config_allow.clone()),
            (ListKind::Block, self.config_block.clone()),
        ] {
            let api = match kind {
                ListKind::Allow => &self.snap.allow,
                ListKind::Block => &self.snap.block,
            };
            let want: std::collections::BTreeSet<IpNet> =
                config.keys().chain(api.keys()).copied().collect();
            let set = match kind {
                ListKind::Allow => &mut self.dp.maps.allow,
                ListKind::Block => &mut self.dp.maps.block,
            };
            for (n, _) in set.entries() {
                if !want.contains(&n) {
                    set.remove(n)?;
                }
            }
            for n in want {
                if set.get_exact(n).is_none() {
                    set.insert(n, ListEntry::default())?;
                }
            }
        }
        Ok(())
    }

    /// A list's entries with their origins.
    pub fn list(&self, kind: ListKind) -> Vec<ListView> {
        let (config, api) = match kind {
            ListKind::Allow => (&self.config_allow, &self.snap.allow),
            ListKind::Block => (&self.config_block, &self.snap.block),
        };
        let mut out: Vec<ListView> = config
            .iter()
            .map(|(n, o)| ListView {
                cidr: *n,
                origin: o.clone(),
                comment: String::new(),
                created: None,
            })
            .collect();
        out.extend(
            api.values()
                .filter(|r| !config.contains_key(&r.net))
                .map(|r| ListView {
                    cidr: r.net,
                    origin: "api".into(),
                    comment: r.comment.clone(),
                    created: Some(r.created),
                }),
        );
        out.sort_by_key(|v| v.cidr);
        out
    }

    /// Adds `net` to a list. Adding to the allowlist lifts the bans it
    /// covers; adding to the blocklist is refused inside the allowlist.
    pub fn list_add(
        &mut self,
        kind: ListKind,
        net: IpNet,
        comment: String,
    ) -> Result<ListView, FirewallError> {
        let net = net.trunc();
        if kind == ListKind::Block
            && let Some((by, origin)) = self.protected_by(net)
        {
            return Err(FirewallError::Protected { net, by, origin });
        }
        let set = match kind {
            ListKind::Allow => &mut self.dp.maps.allow,
            ListKind::Block => &mut self.dp.maps.block,
        };
        set.insert(net, ListEntry::default())?;
        let entry = ListRecord {
            net,
            comment,
            created: unix_now(),
        };
        match kind {
            ListKind::Allow => self.snap.allow.insert(net, entry.clone()),
            ListKind::Block => self.snap.block.insert(net, entry.clone()),
        };
        self.journal(Record::ListAdd {
            list: kind,
            entry: entry.clone(),
        });
        tracing::info!(list = ?kind, cidr = %net, "list entry added");
        if kind == ListKind::Allow {
            let covered: Vec<IpNet> = self
                .snap
                .bans
                .keys()
                .filter(|b| net.contains(*b))
                .copied()
                .collect();
            for b in covered {
                tracing::warn!(ban = %b, allow = %net, "lifting a ban the new allowlist entry covers");
                let _ = self.unban(b);
            }
        }
        Ok(ListView {
            cidr: net,
            origin: "api".into(),
            comment: entry.comment,
            created: Some(entry.created),
        })
    }

    /// Removes an API-added entry from a list.
    pub fn list_remove(&mut self, kind: ListKind, net: IpNet) -> Result<(), FirewallError> {
        let net = net.trunc();
        let (config, name) = match kind {
            ListKind::Allow => (&self.config_allow, "the allowlist"),
            ListKind::Block => (&self.config_block, "the blocklist"),
        };
        if let Some(origin) = config.get(&net) {
            return Err(FirewallError::FromConfig {
                net,
                origin: origin.clone(),
            });
        }
        let api = match kind {
            ListKind::Allow => &mut self.snap.allow,
            ListKind::Block => &mut self.snap.block,
        };
        if api.remove(&net).is_none() {
            return Err(FirewallError::NotFound(net, name));
        }
        let set = match kind {
            ListKind::Allow => &mut self.dp.maps.allow,
            ListKind::Block => &mut self.dp.maps.block,
        };
        set.remove(net)?;
        self.journal(Record::ListRemove { list: kind, net });
        tracing::info!(list = ?kind, cidr = %net, "list entry removed");
        Ok(())
    }

    // ---- bans ----

    /// Bans in force.
    pub fn bans(&self) -> Vec<Ban> {
        self.snap.bans.values().cloned().collect()
    }

    /// The ban of exactly `net`.
    pub fn ban_of(&self, net: IpNet) -> Option<&Ban> {
        self.snap.bans.get(&net.trunc())
    }

    fn kernel_entry(&self, b: &Ban) -> BanEntry {
        let expires_ns = match b.expires {
            None => 0,
            Some(e) => self
                .clock
                .after(Duration::from_secs(e.saturating_sub(unix_now()))),
        };
        BanEntry {
            expires_ns,
            reason: b.source.code(),
            _reserved: 0,
        }
    }

    fn kernel_ban(&mut self, b: &Ban) -> Result<(), DataplaneError> {
        let e = self.kernel_entry(b);
        self.dp.maps.ban(b.net, e)
    }

    fn kernel_unban(&mut self, net: IpNet) -> Result<bool, DataplaneError> {
        self.dp.maps.unban(net)
    }

    /// The duration a new ban of `net` gets under the policy, and which
    /// offence it is.
    pub fn escalated(&self, net: IpNet) -> (Duration, u32) {
        escalate(&self.policy, self.snap.history.get(&net), unix_now())
    }

    /// Bans `net` for `duration` (None: permanent), or for the policy's
    /// escalated duration when `duration` is `Escalate`.
    pub fn ban(
        &mut self,
        net: IpNet,
        duration: BanDuration,
        reason: String,
        source: BanSource,
    ) -> Result<Ban, FirewallError> {
        let net = net.trunc();
        if let Some((by, origin)) = self.protected_by(net) {
            return Err(FirewallError::Protected { net, by, origin });
        }
        let now = unix_now();
        let (escalated, offence) = self.escalated(net);
        let expires = match duration {
            BanDuration::Permanent => None,
            BanDuration::For(d) => Some(now + d.as_secs().max(1)),
            BanDuration::Escalate => Some(now + escalated.as_secs().max(1)),
        };
        let ban = Ban {
            net,
            reason,
            source,
            created: now,
            expires,
            offence,
        };
        self.write_ban(&ban)?;
        let replaced = self.snap.bans.insert(net, ban.clone()).is_some();
        let offences = Offences {
            count: offence,
            last_end: expires.unwrap_or(0),
        };
        self.snap.history.insert(net, offences);
        self.journal(Record::Ban(ban.clone()));
        self.journal(Record::History { net, offences });
        *self.stats.bans_added.entry(source.as_str()).or_default() += 1;
        let duration = match expires {
            Some(e) => {
                humantime::format_duration(Duration::from_secs(e.saturating_sub(now))).to_string()
            }
            None => "permanent".into(),
        };
        tracing::warn!(
            net = %net,
            source = source.as_str(),
            reason = %ban.reason,
            offence,
            duration = %duration,
            replaced,
            "ban"
        );
        Ok(ban)
    }

    /// Writes a ban into the kernel, handling a full map per the policy.
    fn write_ban(&mut self, ban: &Ban) -> Result<(), FirewallError> {
        match self.kernel_ban(ban) {
            Ok(()) => Ok(()),
            Err(DataplaneError::MapFull { name, capacity }) => {
                let msg = format!("{name} is full ({capacity} entries) banning {}", ban.net);
                self.alarm("ban_map_full", msg.clone());
                if self.policy.on_full == OnFull::Reject {
                    self.stats.bans_refused_full += 1;
                    return Err(FirewallError::Full(format!(
                        "{msg}; policy on_full = reject refused it"
                    )));
                }
                let host = ban.net.prefix_len() == ban.net.max_prefix_len();
                let victim = self
                    .snap
                    .bans
                    .values()
                    .filter(|b| {
                        b.expires.is_some()
                            && (b.net.prefix_len() == b.net.max_prefix_len()) == host
                            && matches!(
                                (b.net, ban.net),
                                (IpNet::V4(_), IpNet::V4(_)) | (IpNet::V6(_), IpNet::V6(_))
                            )
                    })
                    .min_by_key(|b| b.expires)
                    .map(|b| b.net);
                let Some(victim) = victim else {
                    self.stats.bans_refused_full += 1;
                    return Err(FirewallError::Full(format!(
                        "{msg}; no timed ban to evict (all permanent)"
                    )));
                };
                tracing::error!(evicted = %victim, for_ban = %ban.net, "ban map full: evicting the ban closest to expiry");
                self.stats.bans_evicted += 1;
                self.unban_inner(victim, "evicted: map full")?;
                self.kernel_ban(ban).map_err(FirewallError::from)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Lifts a ban.
    pub fn unban(&mut self, net: IpNet) -> Result<Ban, FirewallError> {
        let b = self.unban_inner(net.trunc(), "removed")?;
        self.stats.bans_removed += 1;
        Ok(b)
    }

    fn unban_inner(&mut self, net: IpNet, why: &str) -> Result<Ban, FirewallError> {
        let Some(b) = self.snap.bans.remove(&net) else {
            // Not ours, but maybe in the kernel (adopted later): lift it there.
            if self.kernel_unban(net)? {
                return Ok(Ban {
                    net,
                    reason: String::new(),
                    source: BanSource::Adopted,
                    created: 0,
                    expires: None,
                    offence: 0,
                });
            }
            return Err(FirewallError::NotFound(net, "the bans"));
        };
        self.kernel_unban(net)?;
        let now = unix_now();
        if let Some(o) = self.snap.history.get_mut(&net) {
            o.last_end = now;
            let offences = *o;
            self.journal(Record::History { net, offences });
        }
        self.journal(Record::Unban { net });
        tracing::warn!(net = %net, why, "unban");
        Ok(b)
    }

    /// Lifts bans that ran out; returns them.
    pub fn sweep(&mut self) -> Vec<Ban> {
        let now = unix_now();
        let due: Vec<IpNet> = self
            .snap
            .bans
            .values()
            .filter(|b| b.expires.is_some_and(|e| e <= now))
            .map(|b| b.net)
            .collect();
        let mut out = Vec::new();
        for net in due {
            match self.unban_inner(net, "expired") {
                Ok(b) => {
                    self.stats.bans_expired += 1;
                    out.push(b);
                }
                Err(e) => tracing::error!(net = %net, error = %e, "cannot lift an expired ban"),
            }
        }
        let window = self.policy.window.0.as_millis() as u64;
        let cutoff = ms_now().saturating_sub(window);
        self.strikes.retain(|_, q| {
            while q.front().is_some_and(|t| *t < cutoff) {
                q.pop_front();
            }
            !q.is_empty()
        });
        out
    }

    /// Counts a strike against `net`; when the policy's count is reached
    /// within its window, bans it (escalating). Returns the ban if one was
    /// made.
    pub fn strike(
        &mut self,
        net: IpNet,
        kind: &'static str,
        reason: String,
        source: BanSource,
    ) -> Option<Ban> {
        let net = net.trunc();
        *self.stats.strikes.entry(kind).or_default() += 1;
        if self.snap.bans.contains_key(&net) || self.protected_by(net).is_some() {
            return None;
        }
        let now = ms_now();
        let window = self.policy.window.0.as_millis() as u64;
        let q = self.strikes.entry(net).or_default();
        while q.front().is_some_and(|t| *t + window < now) {
            q.pop_front();
        }
        q.push_back(now);
        tracing::info!(net = %net, kind, strikes = q.len(), of = self.policy.strikes, "strike");
        if (q.len() as u32) < self.policy.strikes {
            return None;
        }
        self.strikes.remove(&net);
        match self.ban(net, BanDuration::Escalate, reason, source) {
            Ok(b) => Some(b),
            Err(e) => {
                tracing::error!(net = %net, error = %e, "strikes reached but the ban failed");
                None
            }
        }
    }

    /// Strikes pending per source (for the API).
    pub fn pending_strikes(&self) -> usize {
        self.strikes.values().map(VecDeque::len).sum()
    }
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

/// The duration and offence number of a new ban under `policy`, given the
/// source's history: each offence within `remember` of the last ban's end
/// multiplies the duration by `factor`, up to `max_duration` (fail2ban's
/// bantime.increment).
pub fn escalate(policy: &BanPolicy, history: Option<&Offences>, now: u64) -> (Duration, u32) {
    let offence = match history {
        Some(o) if o.last_end == 0 || o.last_end + policy.remember.0.as_secs() >= now => {
            o.count + 1
        }
        _ => 1,
    };
    let base = policy.duration.0.as_secs_f64();
    let secs = base * policy.factor.powi(offence.saturating_sub(1).min(64) as i32);
    let max = policy.max_duration.0.as_secs_f64();
    (Duration::from_secs_f64(secs.min(max)), offence)
}

/// Kernel counters by name, packets and bytes (for stats and metrics).
pub fn named_counters(c: &[Counter]) -> BTreeMap<&'static str, Counter> {
    (0..counter::COUNT as usize)
        .filter_map(|i| c.get(i).map(|v| (counter::NAMES[i], *v)))
        .collect()
}

/// An address as the host network it is.
pub fn host(addr: IpAddr) -> IpNet {
    IpNet::from(addr)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Dur;

    #[test]
    fn escalation_multiplies_up_to_the_cap_and_forgets() {
        let p = BanPolicy {
            duration: Dur(Duration::from_secs(600)),
            factor: 3.0,
            max_duration: Dur(Duration::from_secs(3 * 3600)),
            remember: Dur(Duration::from_secs(86400)),
            ..Default::default()
        };
        let now = 1_000_000;
        assert_eq!(escalate(&p, None, now), (Duration::from_secs(600), 1));
        let h = |count, last_end| Offences { count, last_end };
        assert_eq!(
            escalate(&p, Some(&h(1, now - 100)), now),
            (Duration::from_secs(1800), 2)
        );
        assert_eq!(
            escalate(&p, Some(&h(2, now - 100)), now),
            (Duration::from_secs(5400), 3)
        );
        // Capped.
        assert_eq!(
            escalate(&p, Some(&h(5, now - 100)), now),
            (Duration::from_secs(3 * 3600), 6)
        );
        // Forgotten after `remember`.
        assert_eq!(
            escalate(&p, Some(&h(5, now - 86400 - 1)), now),
            (Duration::from_secs(600), 1)
        );
    }
}
