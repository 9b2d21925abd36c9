//! What readers see: a view of the firewall's state that the owner
//! publishes after every batch (arc-swap). Health, stats, metrics and lists
//! read it without ever waiting on a write; the ban table in it is the
//! owner's persistent map, so publishing costs O(1), and it pages through a
//! million bans without copying them.

use std::{ops::Bound, sync::Arc};

use imbl::OrdMap;
use ipnet::IpNet;

use super::{
    lists::Modes,
    policy::BanPolicy,
    types::{Alarm, Ban, BanMeta, ListKind, ListRecord, ListView, Offences, Stats},
};

/// A list's config entries with their origins, in address order.
pub type ConfigEntries = Arc<Vec<(IpNet, Arc<str>)>>;

/// Bans in force by family and kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct BanCounts {
    /// IPv4 addresses.
    pub v4_hosts: u64,
    /// IPv4 prefixes.
    pub v4_prefixes: u64,
    /// IPv6 addresses.
    pub v6_hosts: u64,
    /// IPv6 prefixes.
    pub v6_prefixes: u64,
}

impl BanCounts {
    fn slot(&mut self, net: &IpNet) -> &mut u64 {
        let host = net.prefix_len() == net.max_prefix_len();
        match (net, host) {
            (IpNet::V4(_), true) => &mut self.v4_hosts,
            (IpNet::V4(_), false) => &mut self.v4_prefixes,
            (IpNet::V6(_), true) => &mut self.v6_hosts,
            (IpNet::V6(_), false) => &mut self.v6_prefixes,
        }
    }

    /// Counts a ban of `net` in.
    pub fn add(&mut self, net: &IpNet) {
        *self.slot(net) += 1;
    }

    /// Counts a ban of `net` out.
    pub fn sub(&mut self, net: &IpNet) {
        let s = self.slot(net);
        *s = s.saturating_sub(1);
    }

    /// Every ban.
    pub fn total(&self) -> u64 {
        self.v4_hosts + self.v4_prefixes + self.v6_hosts + self.v6_prefixes
    }
}

/// The published view.
#[derive(Clone, Debug, Default)]
pub struct View {
    /// Bans in force.
    pub bans: OrdMap<IpNet, BanMeta>,
    /// Ban counts by family and kind.
    pub counts: BanCounts,
    /// Escalation memory of sources not banned now.
    pub history: OrdMap<IpNet, Offences>,
    /// API entries of the allowlist.
    pub allow_api: OrdMap<IpNet, ListRecord>,
    /// API entries of the blocklist.
    pub block_api: OrdMap<IpNet, ListRecord>,
    /// Config entries of the allowlist, with origins.
    pub allow_config: ConfigEntries,
    /// Config entries of the blocklist, with origins.
    pub block_config: ConfigEntries,
    /// Modes in force.
    pub modes: Modes,
    /// Raised alarms.
    pub alarms: Vec<Alarm>,
    /// The owner's counters.
    pub stats: Stats,
    /// Strikes pending over all sources.
    pub strikes_pending: usize,
    /// The ban policy in force.
    pub policy: BanPolicy,
    /// Batches published so far.
    pub generation: u64,
    /// Time since the owner started.
    pub uptime: std::time::Duration,
    /// The source policies in force (their tags name the kernel's
    /// per-tag counters; lookups).
    pub sources: Option<Arc<crate::sources::SourcePolicy>>,
}

impl View {
    /// The ban of exactly `net`.
    pub fn ban(&self, net: &IpNet) -> Option<Ban> {
        self.bans.get(net).map(|m| Ban {
            net: *net,
            meta: m.clone(),
        })
    }

    /// Up to `limit` bans after `after` (exclusive) in address order, and
    /// the cursor for the next page when there are more.
    pub fn bans_page(&self, after: Option<IpNet>, limit: usize) -> (Vec<Ban>, Option<IpNet>) {
        let range = match after {
            Some(a) => self.bans.range((Bound::Excluded(a), Bound::Unbounded)),
            None => self.bans.range::<_, IpNet>(..),
        };
        let mut out = Vec::with_capacity(limit.min(4096));
        let mut it = range.peekable();
        while out.len() < limit {
            let Some((n, m)) = it.next() else { break };
            out.push(Ban {
                net: *n,
                meta: m.clone(),
            });
        }
        let next = it.peek().and(out.last().map(|b| b.net));
        (out, next)
    }

    /// A list's entries with their origins: the config's, then the API's
    /// that the config does not have.
    pub fn list(&self, kind: ListKind) -> Vec<ListView> {
        let (config, api) = match kind {
            ListKind::Allow => (&self.allow_config, &self.allow_api),
            ListKind::Block => (&self.block_config, &self.block_api),
        };
        let mut out: Vec<ListView> = config
            .iter()
            .map(|(n, o)| ListView {
                cidr: *n,
                origin: o.to_string(),
                comment: String::new(),
                created: None,
            })
            .collect();
        let from_config = |n: &IpNet| config.binary_search_by(|(c, _)| c.cmp(n)).is_ok();
        out.extend(
            api.iter()
                .filter(|(n, _)| !from_config(n))
                .map(|(n, r)| ListView {
                    cidr: *n,
                    origin: "api".into(),
                    comment: r.comment.to_string(),
                    created: Some(u64::from(r.created)),
                }),
        );
        out.sort_by_key(|v| v.cidr);
        out
    }

    /// Whether the allowlist has no entry at all.
    pub fn allow_is_empty(&self) -> bool {
        self.allow_config.is_empty() && self.allow_api.is_empty()
    }
}
