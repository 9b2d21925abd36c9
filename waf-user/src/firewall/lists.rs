//! The firewall's allow and block lists, modes and config reloads: the
//! config's entries and the API's, kept in the kernel sets, and the
//! protection the allowlist gives (adding an entry lifts the bans it
//! covers; emergency mode needs an entry).

use std::{collections::BTreeSet, sync::Arc};

use ipnet::IpNet;
use waf_common::ListEntry;

use super::{
    bans::Firewall,
    error::FirewallError,
    journal::Record,
    restore::FirewallConfig,
    types::{ListKind, ListRecord, ListView},
};
use crate::{
    dataplane::{DataplaneError, Settings},
    values::unix_now,
};

/// Monitor and emergency modes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Modes {
    /// Count what would be dropped; drop nothing.
    pub monitor: bool,
    /// Drop everything that is not allowlisted.
    pub emergency: bool,
}

/// Bans inside `net`, in address order (every banned network whose
/// address lies in `net`'s range).
pub(super) fn inside<'a, V>(
    map: &'a imbl::OrdMap<IpNet, V>,
    net: &IpNet,
) -> impl Iterator<Item = IpNet> + 'a {
    let net = *net;
    let lo = IpNet::new(net.network(), 0).unwrap_or(net);
    let hi = IpNet::new(net.broadcast(), net.max_prefix_len()).unwrap_or(net);
    map.range(lo..=hi)
        .map(|(n, _)| *n)
        .filter(move |n| net.contains(n))
}

impl Firewall {
    /// The modes in force (the config's, overridden through the API).
    pub fn modes(&self) -> Modes {
        Modes {
            monitor: self.state.monitor.unwrap_or(self.base.monitor),
            emergency: self.state.emergency.unwrap_or(self.base.emergency),
        }
    }

    pub(super) fn apply_settings(&mut self) -> Result<(), DataplaneError> {
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
        if emergency == Some(true) && self.protect.is_empty() && !force {
            return Err(FirewallError::LockoutRisk);
        }
        let before = self.modes();
        if monitor.is_some() {
            self.state.monitor = monitor;
        }
        if emergency.is_some() {
            self.state.emergency = emergency;
        }
        self.apply_settings()?;
        self.records.push(Record::Mode { monitor, emergency });
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
    pub fn reload(&mut self, cfg: FirewallConfig) -> Result<(), FirewallError> {
        // The settings first: refused (a new IPv6 ban prefix the stores
        // cannot carry), the reload changes nothing.
        let old = std::mem::replace(&mut self.base, cfg.settings);
        if let Err(e) = self.apply_settings() {
            self.base = old;
            return Err(e.into());
        }
        self.policy = cfg.policy;
        self.config_allow = cfg
            .allow
            .iter()
            .map(|i| (i.net.trunc(), Arc::from(i.origin.as_str())))
            .collect();
        self.config_block = cfg
            .block
            .iter()
            .map(|i| (i.net.trunc(), Arc::from(i.origin.as_str())))
            .collect();
        self.rebuild_protect();
        self.refresh_config_views();
        self.sync_lists()?;
        self.set_sources(cfg.sources)?;
        let allow: Vec<IpNet> = self.config_allow.keys().copied().collect();
        for a in allow {
            self.lift_covered(&a);
        }
        self.forget_old_history(unix_now());
        tracing::info!(
            allow = self.dp.maps.allow.len(),
            block = self.dp.maps.block.len(),
            "config reloaded"
        );
        Ok(())
    }

    /// Rebuilds the allowlist index from the config's and the API's entries.
    pub(super) fn rebuild_protect(&mut self) {
        self.protect = Default::default();
        for (n, o) in &self.config_allow {
            self.protect.insert(*n, o.clone());
        }
        let api: Arc<str> = Arc::from("api");
        for n in self.state.allow.keys() {
            if !self.config_allow.contains_key(n) {
                self.protect.insert(*n, api.clone());
            }
        }
    }

    /// Lifts the bans inside allowlist entry `net`.
    fn lift_covered(&mut self, net: &IpNet) {
        let covered: Vec<IpNet> = inside(&self.state.bans, net).collect();
        for b in covered {
            tracing::warn!(ban = %b, allow = %net, "lifting a ban the allowlist covers");
            let _ = self.unban(b);
        }
    }

    /// Makes the kernel lists hold the config's entries plus the API's.
    pub(super) fn sync_lists(&mut self) -> Result<(), DataplaneError> {
        for kind in [ListKind::Allow, ListKind::Block] {
            let config = match kind {
                ListKind::Allow => &self.config_allow,
                ListKind::Block => &self.config_block,
            };
            let want: BTreeSet<IpNet> = config
                .keys()
                .chain(self.state.list(kind).keys())
                .copied()
                .collect();
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

    /// Adds `net` to a list. Adding to the allowlist lifts the bans it
    /// covers; adding to the blocklist is refused inside the allowlist.
    pub fn list_add(
        &mut self,
        kind: ListKind,
        net: IpNet,
        comment: &str,
    ) -> Result<ListView, FirewallError> {
        let net = net.trunc();
        if kind == ListKind::Block
            && let Some((by, origin)) = self.protected_by(&net)
        {
            return Err(FirewallError::Protected { net, by, origin });
        }
        let set = match kind {
            ListKind::Allow => &mut self.dp.maps.allow,
            ListKind::Block => &mut self.dp.maps.block,
        };
        set.insert(net, ListEntry::default())?;
        let entry = ListRecord {
            comment: Arc::from(comment),
            created: unix_now().min(u64::from(u32::MAX)) as u32,
        };
        self.state.list_mut(kind).insert(net, entry.clone());
        self.records.push(Record::ListAdd(kind, net, entry.clone()));
        tracing::info!(list = ?kind, cidr = %net, "list entry added");
        if kind == ListKind::Allow {
            if !self.config_allow.contains_key(&net) {
                self.protect.insert(net, Arc::from("api"));
            }
            self.lift_covered(&net);
        }
        Ok(ListView {
            cidr: net,
            origin: "api".into(),
            comment: entry.comment.to_string(),
            created: Some(u64::from(entry.created)),
        })
    }

    /// Removes an API-added entry from a list.
    pub fn list_remove(&mut self, kind: ListKind, net: IpNet) -> Result<(), FirewallError> {
        let net = net.trunc();
        let config = match kind {
            ListKind::Allow => &self.config_allow,
            ListKind::Block => &self.config_block,
        };
        if let Some(origin) = config.get(&net) {
            return Err(FirewallError::FromConfig {
                net,
                origin: origin.to_string(),
            });
        }
        if self.state.list_mut(kind).remove(&net).is_none() {
            return Err(FirewallError::NotFound(net, kind.name()));
        }
        let set = match kind {
            ListKind::Allow => &mut self.dp.maps.allow,
            ListKind::Block => &mut self.dp.maps.block,
        };
        set.remove(net)?;
        if kind == ListKind::Allow {
            self.protect.remove(&net);
        }
        self.records.push(Record::ListRemove(kind, net));
        tracing::info!(list = ?kind, cidr = %net, "list entry removed");
        Ok(())
    }

    /// The config's entries of a list, with their origins, in order.
    pub fn config_list(&self, kind: ListKind) -> super::view::ConfigEntries {
        match kind {
            ListKind::Allow => self.config_views[0].clone(),
            ListKind::Block => self.config_views[1].clone(),
        }
    }

    /// Rebuilds what [`Firewall::config_list`] hands out (after a reload).
    pub(super) fn refresh_config_views(&mut self) {
        let view = |m: &std::collections::BTreeMap<IpNet, Arc<str>>| {
            Arc::new(m.iter().map(|(n, o)| (*n, o.clone())).collect::<Vec<_>>())
        };
        self.config_views = [view(&self.config_allow), view(&self.config_block)];
    }
}
