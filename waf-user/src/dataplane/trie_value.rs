//! What a CIDR set writes into its tries for an entry: an LPM lookup gives
//! the XDP program the value of the longest entry covering an address and
//! nothing of the shorter ones, so what the program needs from them must be
//! in that value.
//!
//! Prefix bans need it: the program makes one lookup and drops while the
//! answer is in force, so an expired ban (the daemon lifts it within a
//! second, or when it runs again) would hide a shorter ban in force around
//! it, say a /24 that ran out inside a permanent /12. Each prefix ban's trie
//! value therefore carries the latest expiry of the ban and of every prefix
//! ban covering it; the set keeps them so as entries come and go
//! (`CidrSet::insert`, `remove`), and callers only ever see the values they
//! wrote. The allow and block lists are membership: nothing to carry.

use waf_common::{BanEntry, ListEntry, SourceEntry};

/// A value of a CIDR set's tries.
pub trait TrieValue: aya::Pod + PartialEq {
    /// Whether an entry's trie value takes anything from the entries that
    /// cover it (false: it is the entry's own value).
    const INHERITS: bool;
    /// The trie value of an entry whose own value is `self`, under an
    /// entry whose trie value is `outer` (the longest entry covering it,
    /// which carries what the entries covering it carry).
    fn under(self, outer: &Self) -> Self;
    /// What the IPv6 table keeps of a trie value
    /// (`waf_common::prefix6::PrefixBucketV6::values`).
    fn slot(&self) -> u64;
}

/// Allow and block lists: membership, nothing inherited.
impl TrieValue for ListEntry {
    const INHERITS: bool = false;
    fn under(self, _outer: &Self) -> Self {
        self
    }
    fn slot(&self) -> u64 {
        0
    }
}

/// Source policies: disjoint prefixes (userspace compiles them so), each
/// its own tag and flags; the table keeps both.
impl TrieValue for SourceEntry {
    const INHERITS: bool = false;
    fn under(self, _outer: &Self) -> Self {
        self
    }
    fn slot(&self) -> u64 {
        self.to_slot()
    }
}

/// Prefix bans: the later expiry of the two (0, permanent, is the latest),
/// the entry's own reason.
impl TrieValue for BanEntry {
    const INHERITS: bool = true;
    fn under(self, outer: &Self) -> Self {
        let expires_ns = if self.expires_ns == 0 || outer.expires_ns == 0 {
            0
        } else {
            self.expires_ns.max(outer.expires_ns)
        };
        Self { expires_ns, ..self }
    }
    fn slot(&self) -> u64 {
        self.expires_ns
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ban(expires_ns: u64) -> BanEntry {
        BanEntry {
            expires_ns,
            reason: 1,
            _reserved: 0,
        }
    }

    #[test]
    fn a_ban_carries_the_latest_expiry_of_the_bans_covering_it() {
        assert_eq!(ban(5).under(&ban(9)).expires_ns, 9);
        assert_eq!(ban(9).under(&ban(5)).expires_ns, 9);
        assert_eq!(ban(5).under(&ban(0)).expires_ns, 0, "a permanent outer ban");
        assert_eq!(ban(0).under(&ban(5)).expires_ns, 0, "a permanent inner ban");
        let inner = BanEntry {
            reason: 2,
            ..ban(1)
        };
        assert_eq!(inner.under(&ban(3)).reason, 2, "the entry's own reason");
        let l = ListEntry {
            origin: 3,
            _reserved: 0,
        };
        assert_eq!(l.under(&ListEntry::default()), l);
    }
}
