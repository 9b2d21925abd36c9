//! Bans ordered by expiry second, so the sweep each second looks at the bans
//! that are due and nothing else. Entries are not removed when a ban is
//! lifted or changed (the sweep checks each against the ban table); the
//! index is rebuilt when such stale entries outnumber the live ones.

use std::collections::BTreeMap;

use ipnet::IpNet;

/// Networks by the second their ban ends.
#[derive(Debug, Default)]
pub struct ExpiryIndex {
    at: BTreeMap<u32, Vec<IpNet>>,
    entries: usize,
}

impl ExpiryIndex {
    /// Notes that `net`'s ban ends at `t` (0: never; not indexed).
    pub fn insert(&mut self, t: u32, net: IpNet) {
        if t == 0 {
            return;
        }
        self.at.entry(t).or_default().push(net);
        self.entries += 1;
    }

    /// Takes every entry due at or before `now`, in time order.
    pub fn due(&mut self, now: u32) -> Vec<(u32, IpNet)> {
        let later = self.at.split_off(&now.saturating_add(1));
        let due = std::mem::replace(&mut self.at, later);
        let out: Vec<(u32, IpNet)> = due
            .into_iter()
            .flat_map(|(t, v)| v.into_iter().map(move |n| (t, n)))
            .collect();
        self.entries -= out.len();
        out
    }

    /// Entries in time order (stale ones included: check each).
    pub fn iter(&self) -> impl Iterator<Item = (u32, IpNet)> + '_ {
        self.at
            .iter()
            .flat_map(|(t, v)| v.iter().map(move |n| (*t, *n)))
    }

    /// Entries held, stale ones included.
    pub fn len(&self) -> usize {
        self.entries
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    /// Gives back the room the lists grew beyond their entries.
    pub fn shrink(&mut self) {
        for v in self.at.values_mut() {
            v.shrink_to_fit();
        }
    }

    /// Replaces the content with `live` (expiry, net) pairs.
    pub fn rebuild(&mut self, live: impl Iterator<Item = (u32, IpNet)>) {
        self.at.clear();
        self.entries = 0;
        for (t, n) in live {
            self.insert(t, n);
        }
        self.shrink();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_entries_come_out_in_order_and_only_once() {
        let mut x = ExpiryIndex::default();
        let n = |i: u32| IpNet::from(std::net::IpAddr::V4(std::net::Ipv4Addr::from(i)));
        x.insert(30, n(3));
        x.insert(10, n(1));
        x.insert(0, n(9));
        x.insert(20, n(2));
        x.insert(10, n(4));
        assert_eq!(x.len(), 4, "permanent bans are not indexed");
        assert_eq!(x.due(9), vec![]);
        assert_eq!(x.due(20), vec![(10, n(1)), (10, n(4)), (20, n(2))]);
        assert_eq!(x.due(20), vec![]);
        assert_eq!(x.len(), 1);
        assert_eq!(x.due(u32::MAX), vec![(30, n(3))]);
        assert!(x.is_empty());
    }
}
