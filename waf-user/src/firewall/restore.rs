//! Start-up: the firewall takes over a loaded data plane and the journal's
//! state, writes settings, lists and bans into the kernel, adopts bans found
//! only in the kernel, forgets old escalation memory, and gives the restore's
//! memory back.

use std::{
    collections::{BTreeMap, HashSet},
    sync::Arc,
};

use ipnet::IpNet;
use waf_common::BanEntry;

use super::{
    bans::{Firewall, now32},
    error::FirewallError,
    expiry::ExpiryIndex,
    journal::Record,
    policy::{BanPolicy, StrikeWindows},
    prefix::PrefixIndex,
    state::State,
    types::{Ban, BanMeta, BanSource, ListItem, Stats},
    view::BanCounts,
};
use crate::{
    dataplane::{Dataplane, Settings},
    values::unix_now,
};

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
    /// Source policies, loaded and compiled (None: none configured).
    pub sources: Option<std::sync::Arc<crate::sources::SourcePolicy>>,
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

fn items_map(items: &[ListItem]) -> BTreeMap<IpNet, Arc<str>> {
    items
        .iter()
        .map(|i| (i.net.trunc(), Arc::from(i.origin.as_str())))
        .collect()
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
            changes: Vec::new(),
            counts: BanCounts::default(),
            config_views: Default::default(),
            latencies: Vec::new(),
            sources: None,
        };
        fw.rebuild_protect();
        fw.refresh_config_views();
        fw.apply_settings()?;
        fw.sync_lists()?;
        fw.set_sources(cfg.sources)?;
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
            if self.dp.maps.is_exact(net) {
                hosts.push((net.network(), e));
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
                origin: crate::firewall::Origin::NONE,
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
}
