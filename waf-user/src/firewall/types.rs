//! The firewall's domain types: bans and their sources, list entries,
//! escalation memory, strikes, alarms and counters. Compact where they are
//! kept per ban (a million bans must fit in about 150 bytes each).

use std::{collections::BTreeMap, net::IpAddr, sync::Arc, time::Instant};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// Who made a ban.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Hash, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum BanSource {
    /// An operator (API or CLI).
    Manual,
    /// The detection engine (HTTP attacks, bad agents).
    Detection,
    /// Rate-limit strikes (XDP packet limits, HTTP request limits).
    RateLimit,
    /// `waf import`.
    Import,
    /// Found in the pinned kernel map with no journal record (written by a
    /// daemon that died before journaling it).
    Adopted,
    /// Made on another host of the fleet and applied from the shared bans
    /// (the ban's `origin` names the host).
    Fleet,
}

impl BanSource {
    /// Every source, in code order.
    pub const ALL: [BanSource; 6] = [
        Self::Manual,
        Self::Detection,
        Self::RateLimit,
        Self::Import,
        Self::Adopted,
        Self::Fleet,
    ];

    /// The kernel's reason code for this source.
    pub fn code(self) -> u32 {
        use waf_common::ban_reason as r;
        match self {
            Self::Manual | Self::Adopted => r::MANUAL,
            Self::Detection => r::DETECTION,
            Self::RateLimit => r::RATE_LIMIT,
            Self::Import => r::IMPORT,
            Self::Fleet => r::FLEET,
        }
    }

    /// Name as in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Manual => "manual",
            Self::Detection => "detection",
            Self::RateLimit => "rate-limit",
            Self::Import => "import",
            Self::Adopted => "adopted",
            Self::Fleet => "fleet",
        }
    }

    /// The byte the journal stores.
    pub fn to_byte(self) -> u8 {
        match self {
            Self::Manual => 0,
            Self::Detection => 1,
            Self::RateLimit => 2,
            Self::Import => 3,
            Self::Adopted => 4,
            Self::Fleet => 5,
        }
    }

    /// The source of a journal byte.
    pub fn from_byte(b: u8) -> Option<Self> {
        Self::ALL.get(usize::from(b)).copied()
    }

    /// The source named `s` (as in the API and the config).
    pub fn from_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|b| b.as_str() == s)
    }
}

/// The fleet host that made a ban, as a number into a process-wide table
/// of host names (two bytes a ban instead of a pointer's sixteen).
///
/// Names come from fleet messages, so the table is bounded: past
/// [`Origin::MAX`] names, new ones share one entry that says so (the ban
/// itself is applied as usual).
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Origin(u16);

static ORIGINS: std::sync::Mutex<Vec<Arc<str>>> = std::sync::Mutex::new(Vec::new());

impl Origin {
    /// No origin (a ban made here).
    pub const NONE: Origin = Origin(0);
    /// Distinct host names kept.
    pub const MAX: usize = 4096;
    /// The name shared by hosts past [`Self::MAX`].
    pub const OVERFLOW: &'static str = "(too many fleet hosts)";

    /// The origin named `name`.
    pub fn of(name: &str) -> Origin {
        let mut t = ORIGINS.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(i) = t.iter().position(|n| &**n == name) {
            return Origin(i as u16 + 1);
        }
        if t.len() >= Self::MAX {
            drop(t);
            return if name == Self::OVERFLOW {
                Origin::NONE
            } else {
                Self::of(Self::OVERFLOW)
            };
        }
        t.push(Arc::from(name));
        Origin(t.len() as u16)
    }

    /// `Some(name)` as an origin; None is [`Self::NONE`].
    pub fn of_opt(name: Option<&str>) -> Origin {
        name.map_or(Self::NONE, Self::of)
    }

    /// The host's name; None for a ban made here.
    pub fn name(self) -> Option<Arc<str>> {
        if self.0 == 0 {
            return None;
        }
        let t = ORIGINS.lock().unwrap_or_else(|p| p.into_inner());
        t.get(usize::from(self.0) - 1).cloned()
    }

    /// True for a ban made here.
    pub fn is_none(self) -> bool {
        self.0 == 0
    }
}

impl std::fmt::Debug for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Origin({:?})", self.name())
    }
}

/// A ban as the firewall keeps it, beside its address in the ban table:
/// 32 bytes. Times are Unix seconds in 32 bits (good until 2106).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BanMeta {
    /// When it was made.
    pub created: u32,
    /// When it ends; 0: permanent.
    pub expires: u32,
    /// Which offence of this source it is (1 = first): drives escalation.
    pub offence: u16,
    /// Who made it.
    pub source: BanSource,
    /// Why, in words (shared between bans with the same reason).
    pub reason: Arc<str>,
    /// The fleet host that made it (fleet bans only).
    pub origin: Origin,
}

const _: () = assert!(std::mem::size_of::<BanMeta>() == 32);

impl BanMeta {
    /// The expiry as an option (None: permanent).
    pub fn expires_at(&self) -> Option<u64> {
        (self.expires != 0).then_some(u64::from(self.expires))
    }
}

/// A ban with its address: what the API, the journal and the view hand out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ban {
    /// The banned address (host prefix) or prefix.
    pub net: IpNet,
    /// Everything else.
    pub meta: BanMeta,
}

/// Why a ban ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lift {
    /// An operator lifted it.
    Removed,
    /// It ran out.
    Expired,
    /// The map was full and it was the closest to expiry.
    Evicted,
    /// The fleet's bucket deleted it (another host lifted it, or it was
    /// lifted while this host was away).
    Fleet,
}

impl Lift {
    /// The word in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Removed => "removed",
            Self::Expired => "expired",
            Self::Evicted => "evicted: map full",
            Self::Fleet => "lifted by the fleet",
        }
    }
}

/// A change to the bans in force, as the owner tells the faces that follow
/// them (the fleet link), after the kernel has it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BanChange {
    /// A ban was made or replaced.
    Banned(Ban),
    /// A ban ended.
    Lifted(Ban, Lift),
    /// A strike against a source was counted here (not the one that
    /// banned): the fleet shares it.
    Struck(IpNet, StrikeKind),
}

impl BanChange {
    /// Whether the fleet made this change itself (a ban from the fleet, a
    /// lift the bucket asked for, a fleet ban running out): nothing to
    /// tell it back. A joining host applies a million of these at once.
    pub fn from_fleet(&self) -> bool {
        match self {
            Self::Banned(b) => b.meta.source == BanSource::Fleet,
            Self::Lifted(_, Lift::Fleet) => true,
            Self::Lifted(b, Lift::Expired) => b.meta.source == BanSource::Fleet,
            Self::Lifted(..) | Self::Struck(..) => false,
        }
    }
}

/// Which list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Hash, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum ListKind {
    /// The allowlist: never dropped, never banned.
    Allow,
    /// The blocklist: always dropped.
    Block,
}

impl ListKind {
    /// The list's name in messages ("the allowlist").
    pub fn name(self) -> &'static str {
        match self {
            Self::Allow => "the allowlist",
            Self::Block => "the blocklist",
        }
    }
}

/// A list entry added through the API (config entries come from the config).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListRecord {
    /// Free text from the operator.
    pub comment: Arc<str>,
    /// When (Unix seconds).
    pub created: u32,
}

/// Escalation memory of one source: a bounded record of its last offences.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Offences {
    /// Bans so far.
    pub count: u16,
    /// When the last ban ended (Unix seconds; 0: still banned, or
    /// permanent).
    pub last_end: u32,
    /// When the last offences were (Unix seconds, newest first; 0: none).
    pub recent: [u32; 4],
}

impl Offences {
    /// Records an offence at `now`.
    pub fn offend(&mut self, count: u16, now: u32) {
        self.count = count;
        self.last_end = 0;
        self.recent.copy_within(0..3, 1);
        self.recent[0] = now;
    }
}

/// What a strike is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Hash, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum StrikeKind {
    /// A request the detection engine blocked (proxy or mirror).
    Detection,
    /// A request from a blocked user agent.
    BadAgent,
    /// The XDP packet-rate limit tripped.
    RatePps,
    /// The XDP byte-rate limit tripped.
    RateBps,
    /// The XDP SYN-rate limit tripped.
    RateSyn,
    /// A bot at the HTTP layer: a forged, expired, replayed or moved
    /// challenge token or solution, or a bot score a route blocks.
    Bot,
    /// A behaviour monitor tripped (`[monitors.*]`: usage, bad-status
    /// bursts, a honeypot, impossible headers).
    Behavior,
    /// The anomaly model scored a source's window over its threshold.
    Anomaly,
}

impl StrikeKind {
    /// Every kind.
    pub const ALL: [StrikeKind; 8] = [
        Self::Detection,
        Self::BadAgent,
        Self::RatePps,
        Self::RateBps,
        Self::RateSyn,
        Self::Bot,
        Self::Behavior,
        Self::Anomaly,
    ];

    /// Name in metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Detection => "detection",
            Self::BadAgent => "bad_agent",
            Self::RatePps => "rate_pps",
            Self::RateBps => "rate_bps",
            Self::RateSyn => "rate_syn",
            Self::Bot => "bot",
            Self::Behavior => "behavior",
            Self::Anomaly => "anomaly",
        }
    }

    /// The source of a ban this kind of strike makes.
    pub fn ban_source(self) -> BanSource {
        match self {
            Self::Detection | Self::BadAgent | Self::Bot | Self::Behavior | Self::Anomaly => {
                BanSource::Detection
            }
            Self::RatePps | Self::RateBps | Self::RateSyn => BanSource::RateLimit,
        }
    }
}

/// A finding against a source, sent to the owner, which alone decides what
/// it becomes (nothing, a strike in the window, or a ban).
#[derive(Clone, Debug)]
pub struct Strike {
    /// The client address (the policy aggregates IPv6 to its prefix).
    pub source: IpAddr,
    /// What for.
    pub kind: StrikeKind,
    /// The request's anomaly score (0 where there is none).
    pub score: u32,
    /// What was seen, for the ban's reason (bounded by the owner).
    pub evidence: String,
    /// When the face decided (to measure the time to the kernel map).
    pub decided: Option<Instant>,
    /// Ban at once, whatever the strike count (a monitor whose `action`
    /// is `ban`). The allowlist and protected sources still win.
    pub ban: bool,
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

/// The owner's counters.
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
    /// Strikes dropped because the owner's queue was full.
    pub strikes_dropped: u64,
    /// Strikes against allowlisted sources (ignored).
    pub strikes_protected: u64,
    /// Journal writes that failed.
    pub journal_errors: u64,
    /// Commands the owner handled.
    pub commands: u64,
    /// Batches it committed.
    pub batches: u64,
}

/// One list entry with where it comes from, as the API shows it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
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

/// A list entry from the config, with where it was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListItem {
    /// The network.
    pub net: IpNet,
    /// `config`, or `path:line` of a list file.
    pub origin: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_origin_is_two_bytes_naming_its_host() {
        assert_eq!(std::mem::size_of::<Origin>(), 2);
        let a = Origin::of("origin-test-a");
        assert_eq!(a, Origin::of("origin-test-a"), "one number a name");
        assert_ne!(a, Origin::of("origin-test-b"));
        assert_eq!(a.name().as_deref(), Some("origin-test-a"));
        assert!(!a.is_none());
        assert_eq!(Origin::NONE.name(), None);
        assert_eq!(Origin::of_opt(None), Origin::NONE);
        assert_eq!(Origin::default(), Origin::NONE);
    }
}
