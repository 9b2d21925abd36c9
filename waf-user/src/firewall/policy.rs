//! The one place that says what a finding becomes: strikes counted per
//! source in a sliding window, an immediate ban above a score, escalating
//! durations for repeat offenders, aggregation of IPv6 sources to one
//! prefix, and the widest prefix a ban may take without `force`.

use std::{
    collections::{HashMap, VecDeque},
    net::IpAddr,
    time::Duration,
};

use ipnet::{IpNet, Ipv6Net};
use serde::Deserialize;

use super::types::Offences;
use crate::values::Dur;

/// What to do when the kernel ban map is full.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnFull {
    /// Evict the ban closest to its expiry (logged, counted, alarmed).
    #[default]
    EvictSoonest,
    /// Refuse the new ban (logged, counted, alarmed; the API answers 507).
    Reject,
}

/// `[ban_policy]`: how strikes become bans, and how bans escalate.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct BanPolicy {
    /// Strikes within `window` that make a ban.
    pub strikes: u32,
    /// The window strikes are counted in.
    pub window: Dur,
    /// First ban duration.
    pub duration: Dur,
    /// Each repeat ban lasts `factor` times the previous one...
    pub factor: f64,
    /// ...up to this.
    pub max_duration: Dur,
    /// How long a ban is remembered for escalation after it ends.
    pub remember: Dur,
    /// Policy when the kernel map is full.
    pub on_full: OnFull,
    /// Ban at once when one request scores at least this (no waiting for
    /// `strikes`); unset: never.
    pub immediate_score: Option<u32>,
    /// IPv6 sources are one source per prefix of this length: for XDP rate
    /// limits, HTTP limits, strikes and bans alike.
    pub ipv6_prefix: u8,
    /// The widest IPv4 prefix a ban may take without `force`.
    pub max_prefix_v4: u8,
    /// The widest IPv6 prefix a ban may take without `force`.
    pub max_prefix_v6: u8,
}

impl Default for BanPolicy {
    fn default() -> Self {
        Self {
            strikes: 5,
            window: Dur::secs(600),
            duration: Dur::secs(3600),
            factor: 2.0,
            max_duration: Dur::secs(7 * 86400),
            remember: Dur::secs(7 * 86400),
            on_full: OnFull::EvictSoonest,
            immediate_score: None,
            ipv6_prefix: 64,
            max_prefix_v4: 8,
            max_prefix_v6: 32,
        }
    }
}

impl BanPolicy {
    /// Checks ranges and consistency; errors name the key.
    pub fn validate(&self) -> Result<(), (String, String, String)> {
        let bad = |k: &str, v: String, a: &str| Err((format!("ban_policy.{k}"), v, a.into()));
        if self.strikes == 0 || self.strikes > 1000 {
            return bad("strikes", self.strikes.to_string(), "1 to 1000");
        }
        if self.window.0.is_zero() {
            return bad("window", self.window.to_string(), "a positive duration");
        }
        if self.duration.0 < Duration::from_secs(1) {
            return bad("duration", self.duration.to_string(), "at least 1s");
        }
        if self.immediate_score == Some(0) {
            return bad(
                "immediate_score",
                "0".into(),
                "a positive score (or leave it out)",
            );
        }
        if !(1.0..=100.0).contains(&self.factor) {
            return bad("factor", self.factor.to_string(), "a number from 1 to 100");
        }
        if self.max_duration < self.duration {
            let allowed = format!("at least ban_policy.duration ({})", self.duration);
            return bad("max_duration", self.max_duration.to_string(), &allowed);
        }
        if !(1..=128).contains(&self.ipv6_prefix) {
            return bad("ipv6_prefix", self.ipv6_prefix.to_string(), "1 to 128");
        }
        if self.max_prefix_v4 > 32 {
            return bad("max_prefix_v4", self.max_prefix_v4.to_string(), "0 to 32");
        }
        if self.max_prefix_v6 > 128 {
            return bad("max_prefix_v6", self.max_prefix_v6.to_string(), "0 to 128");
        }
        Ok(())
    }

    /// The network a source address counts as: itself for IPv4, its
    /// `ipv6_prefix` for IPv6 (so rotating addresses in one /64 is one
    /// source).
    pub fn aggregate(&self, addr: IpAddr) -> IpNet {
        match addr {
            IpAddr::V4(_) => IpNet::from(addr),
            IpAddr::V6(a) => Ipv6Net::new(a, self.ipv6_prefix)
                .map(|n| IpNet::V6(n.trunc()))
                .unwrap_or_else(|_| IpNet::from(addr)),
        }
    }

    /// Whether a ban of `net` is wider than operators may set without
    /// `force`.
    pub fn too_wide(&self, net: &IpNet) -> bool {
        match net {
            IpNet::V4(n) => n.prefix_len() < self.max_prefix_v4,
            IpNet::V6(n) => n.prefix_len() < self.max_prefix_v6,
        }
    }

    /// The duration and offence number of a new ban, given the source's
    /// memory: each offence within `remember` of the last ban's end
    /// multiplies the duration by `factor`, up to `max_duration`
    /// (fail2ban's bantime.increment).
    pub fn escalate(&self, history: Option<&Offences>, now: u64) -> (Duration, u16) {
        let offence = match history {
            Some(o)
                if o.last_end == 0 || u64::from(o.last_end) + self.remember.0.as_secs() >= now =>
            {
                o.count.saturating_add(1)
            }
            _ => 1,
        };
        let base = self.duration.0.as_secs_f64();
        let secs = base
            * self
                .factor
                .powi(i32::from(offence.saturating_sub(1).min(64)));
        let max = self.max_duration.0.as_secs_f64();
        (Duration::from_secs_f64(secs.min(max)), offence)
    }
}

/// The most sources with strikes pending at once; past it, sources whose
/// strikes have all run out are forgotten first, then new ones are not
/// tracked (counted).
pub const MAX_STRIKE_SOURCES: usize = 1 << 18;

/// Strikes per source in a sliding window.
#[derive(Debug, Default)]
pub struct StrikeWindows {
    times: HashMap<IpNet, VecDeque<u64>>,
    /// Strikes not tracked because the table was full.
    pub untracked: u64,
}

impl StrikeWindows {
    /// Counts a strike against `net` at `now_ms`; returns how many it has
    /// within `window` (`None` when the table is full).
    pub fn add(&mut self, net: IpNet, now_ms: u64, window: Duration) -> Option<usize> {
        let w = window.as_millis() as u64;
        if !self.times.contains_key(&net) && self.times.len() >= MAX_STRIKE_SOURCES {
            self.expire(now_ms, window);
            if self.times.len() >= MAX_STRIKE_SOURCES {
                self.untracked += 1;
                return None;
            }
        }
        let q = self.times.entry(net).or_default();
        while q.front().is_some_and(|t| t.saturating_add(w) < now_ms) {
            q.pop_front();
        }
        q.push_back(now_ms);
        // Only the last `strikes` matter; keep the queue short.
        if q.len() > 1000 {
            q.pop_front();
        }
        Some(q.len())
    }

    /// Forgets `net`'s strikes (it was banned).
    pub fn clear(&mut self, net: &IpNet) {
        self.times.remove(net);
    }

    /// Drops strikes older than `window`.
    pub fn expire(&mut self, now_ms: u64, window: Duration) {
        let w = window.as_millis() as u64;
        self.times.retain(|_, q| {
            while q.front().is_some_and(|t| t.saturating_add(w) < now_ms) {
                q.pop_front();
            }
            !q.is_empty()
        });
    }

    /// Strikes pending over all sources.
    pub fn pending(&self) -> usize {
        self.times.values().map(VecDeque::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escalation_multiplies_up_to_the_cap_and_forgets() {
        let p = BanPolicy {
            duration: Dur::secs(600),
            factor: 3.0,
            max_duration: Dur::secs(3 * 3600),
            remember: Dur::secs(86400),
            ..Default::default()
        };
        let now = 1_000_000;
        assert_eq!(p.escalate(None, now), (Duration::from_secs(600), 1));
        let h = |count, last_end: u64| Offences {
            count,
            last_end: last_end as u32,
            recent: [0; 4],
        };
        assert_eq!(
            p.escalate(Some(&h(1, now - 100)), now),
            (Duration::from_secs(1800), 2)
        );
        assert_eq!(
            p.escalate(Some(&h(2, now - 100)), now),
            (Duration::from_secs(5400), 3)
        );
        assert_eq!(
            p.escalate(Some(&h(5, now - 100)), now),
            (Duration::from_secs(3 * 3600), 6)
        );
        assert_eq!(
            p.escalate(Some(&h(5, now - 86400 - 1)), now),
            (Duration::from_secs(600), 1)
        );
        assert_eq!(p.escalate(Some(&h(u16::MAX, 0)), now).1, u16::MAX);
    }

    #[test]
    fn ipv6_sources_aggregate_to_the_prefix() {
        let p = BanPolicy::default();
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        assert_eq!(p.aggregate(a), p.aggregate(b));
        assert_eq!(p.aggregate(a).to_string(), "2001:db8:1:2::/64");
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(p.aggregate(v4).to_string(), "192.0.2.7/32");
    }

    #[test]
    fn wide_prefixes_need_force() {
        let p = BanPolicy::default();
        for (n, wide) in [
            ("0.0.0.0/0", true),
            ("10.0.0.0/7", true),
            ("10.0.0.0/8", false),
            ("::/0", true),
            ("2001:db8::/31", true),
            ("2001:db8::/32", false),
        ] {
            assert_eq!(p.too_wide(&n.parse().unwrap()), wide, "{n}");
        }
    }

    #[test]
    fn strike_windows_slide_and_stay_bounded() {
        let mut w = StrikeWindows::default();
        let n: IpNet = "192.0.2.1/32".parse().unwrap();
        let win = Duration::from_secs(10);
        assert_eq!(w.add(n, 1_000, win), Some(1));
        assert_eq!(w.add(n, 5_000, win), Some(2));
        assert_eq!(w.add(n, 12_000, win), Some(2), "the first ran out");
        w.expire(30_000, win);
        assert_eq!(w.pending(), 0);
        for i in 0..MAX_STRIKE_SOURCES as u32 {
            let n = IpNet::from(std::net::IpAddr::V4(std::net::Ipv4Addr::from(i)));
            assert!(w.add(n, 100_000, win).is_some());
        }
        let extra: IpNet = "203.0.113.1/32".parse().unwrap();
        assert_eq!(w.add(extra, 100_001, win), None, "full: not tracked");
        assert_eq!(w.untracked, 1);
        // Once they run out, there is room again.
        assert_eq!(w.add(extra, 200_000, win), Some(1));
    }
}
