//! The firewall's persistent state: bans, escalation memory, API list
//! entries and mode overrides, in persistent maps (`imbl`), so the owner
//! hands readers and the snapshot writer a copy in O(1) and both share
//! every node it did not change.

use imbl::OrdMap;
use ipnet::IpNet;

use super::{
    journal::codec::Record,
    types::{Ban, BanMeta, ListKind, ListRecord, Offences},
};

/// Everything the journal keeps.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct State {
    /// Bans in force (possibly expired since; the owner sweeps).
    pub bans: OrdMap<IpNet, BanMeta>,
    /// Escalation memory of sources not banned now.
    pub history: OrdMap<IpNet, Offences>,
    /// Allowlist entries added through the API.
    pub allow: OrdMap<IpNet, ListRecord>,
    /// Blocklist entries added through the API.
    pub block: OrdMap<IpNet, ListRecord>,
    /// Monitor mode override.
    pub monitor: Option<bool>,
    /// Emergency mode override.
    pub emergency: Option<bool>,
}

impl State {
    /// Applies one record.
    pub fn apply(&mut self, r: Record) {
        match r {
            Record::Ban(b) => {
                self.bans.insert(b.net, b.meta);
            }
            Record::Unban(net) => {
                self.bans.remove(&net);
            }
            Record::History(net, o) => {
                self.history.insert(net, o);
            }
            Record::Forget(net) => {
                self.history.remove(&net);
            }
            Record::ListAdd(kind, net, e) => {
                self.list_mut(kind).insert(net, e);
            }
            Record::ListRemove(kind, net) => {
                self.list_mut(kind).remove(&net);
            }
            Record::Mode { monitor, emergency } => {
                if monitor.is_some() {
                    self.monitor = monitor;
                }
                if emergency.is_some() {
                    self.emergency = emergency;
                }
            }
        }
    }

    /// One of the API lists.
    pub fn list(&self, kind: ListKind) -> &OrdMap<IpNet, ListRecord> {
        match kind {
            ListKind::Allow => &self.allow,
            ListKind::Block => &self.block,
        }
    }

    /// One of the API lists, to change.
    pub fn list_mut(&mut self, kind: ListKind) -> &mut OrdMap<IpNet, ListRecord> {
        match kind {
            ListKind::Allow => &mut self.allow,
            ListKind::Block => &mut self.block,
        }
    }

    /// The ban of exactly `net`.
    pub fn ban(&self, net: &IpNet) -> Option<Ban> {
        self.bans.get(net).map(|m| Ban {
            net: *net,
            meta: m.clone(),
        })
    }

    /// The records that rebuild everything but the bans (which snapshots
    /// write apart, with their reasons numbered).
    pub fn other_records(&self) -> impl Iterator<Item = Record> + '_ {
        let mode = (self.monitor.is_some() || self.emergency.is_some()).then_some(Record::Mode {
            monitor: self.monitor,
            emergency: self.emergency,
        });
        let lists = [ListKind::Allow, ListKind::Block]
            .into_iter()
            .flat_map(move |k| {
                self.list(k)
                    .iter()
                    .map(move |(n, e)| Record::ListAdd(k, *n, e.clone()))
            });
        let history = self.history.iter().map(|(n, o)| Record::History(*n, *o));
        mode.into_iter().chain(lists).chain(history)
    }
}
