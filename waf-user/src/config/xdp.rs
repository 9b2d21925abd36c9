//! `[rate_limit]`: per-source packet, byte and SYN limits enforced in XDP,
//! and the settings the XDP program reads (with the modes and the mirror's
//! sampled ports).

use std::time::Duration;

use serde::Deserialize;

use crate::mirror::MirrorConfig;
use crate::values::{ConfigError, invalid, moved};
use crate::{
    dataplane::{Capacity, RateLimits, Settings},
    firewall::Modes,
    values::Dur,
};

/// The XDP rate limits' config.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Packets per second per source.
    pub pps: Option<u64>,
    /// Packets above the rate a source may send at once (default: one
    /// second's worth).
    pub burst: Option<u64>,
    /// Bytes per second per source.
    pub bps: Option<u64>,
    /// Bytes above the byte rate a source may send at once (default: one
    /// second's worth).
    pub burst_bytes: Option<u64>,
    /// TCP SYNs per second per source.
    pub syn_pps: Option<u64>,
    /// SYN burst (default: one second's worth).
    pub syn_burst: Option<u64>,
    /// Moved to `[ban_policy] ipv6_prefix`; refused with a message.
    pub ipv6_prefix: Option<toml::Value>,
    /// At most one rate event (strike) per source per interval.
    pub event_interval: Dur,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            pps: None,
            burst: None,
            bps: None,
            burst_bytes: None,
            syn_pps: None,
            syn_burst: None,
            ipv6_prefix: None,
            event_interval: Dur::secs(1),
        }
    }
}

/// The most any per-second rate may be.
const MAX_RATE: u64 = 1_000_000_000;

impl RateLimitConfig {
    /// The XDP settings for these limits, the modes at start, the mirror's
    /// ports and the IPv6 aggregation prefix.
    pub fn settings(
        &self,
        modes: &Modes,
        mirror: &MirrorConfig,
        v6_prefix: u8,
    ) -> Result<Settings, ConfigError> {
        let r = self;
        moved(
            &r.ipv6_prefix,
            "rate_limit.ipv6_prefix",
            "set ban_policy.ipv6_prefix (one IPv6 prefix for XDP rate limits, HTTP limits, \
             strikes and bans)",
        )?;
        let pos = |key: &str, v: Option<u64>| -> Result<(), ConfigError> {
            match v {
                Some(0) => Err(invalid(key, 0, "a positive number (or leave it out)")),
                Some(n) if n > MAX_RATE => Err(invalid(key, n, "at most 1000000000")),
                _ => Ok(()),
            }
        };
        pos("rate_limit.pps", r.pps)?;
        pos("rate_limit.burst", r.burst)?;
        pos("rate_limit.bps", r.bps)?;
        pos("rate_limit.syn_pps", r.syn_pps)?;
        pos("rate_limit.syn_burst", r.syn_burst)?;
        if let Some(b) = r.burst_bytes
            && !(1514..=1 << 40).contains(&b)
        {
            return Err(invalid(
                "rate_limit.burst_bytes",
                b,
                "at least 1514 (one full Ethernet frame), at most 1 TiB",
            ));
        }
        if r.event_interval.0 < Duration::from_millis(10) {
            return Err(invalid(
                "rate_limit.event_interval",
                r.event_interval,
                "at least 10ms",
            ));
        }
        let mut sample_ports = [0u16; waf_common::SAMPLE_PORTS];
        if mirror.enabled {
            for (slot, p) in sample_ports.iter_mut().zip(&mirror.ports) {
                *slot = *p;
            }
        }
        let settings = Settings {
            monitor: modes.monitor,
            emergency: modes.emergency,
            sample_ports,
            sample_bytes: mirror.sample_bytes,
            rate: RateLimits {
                pps: r.pps,
                burst: r.burst.or(r.pps).unwrap_or(0),
                bps: r.bps,
                burst_bytes: r.burst_bytes.or(r.bps.map(|b| b.max(1514))).unwrap_or(0),
                syn_pps: r.syn_pps,
                syn_burst: r.syn_burst.or(r.syn_pps).unwrap_or(0),
                v6_prefix,
                event_interval: r.event_interval.0,
            },
        };
        settings
            .to_config()
            .map_err(|e| invalid("rate_limit", "(see message)", &e.to_string()))?;
        Ok(settings)
    }
}

/// `[capacity]` ([`Capacity`]): read at start; pinned maps of another
/// capacity are refused (`waf detach`, then start again).
impl Capacity {
    /// Checks each size: 1 to [`Capacity::MAX`].
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (key, n) in [
            ("capacity.allowlist", self.allowlist),
            ("capacity.allowlist_v6", self.allowlist_v6),
            ("capacity.blocklist", self.blocklist),
            ("capacity.blocklist_v6", self.blocklist_v6),
            ("capacity.prefix_bans", self.prefix_bans),
            ("capacity.prefix_bans_v6", self.prefix_bans_v6),
            ("capacity.sources", self.sources),
            ("capacity.sources_v6", self.sources_v6),
            ("capacity.bans", self.bans),
            ("capacity.rate_sources", self.rate_sources),
        ] {
            if !(1..=Capacity::MAX).contains(&n) {
                return Err(invalid(
                    key,
                    n,
                    &format!("a number of entries from 1 to {}", Capacity::MAX),
                ));
            }
        }
        Ok(())
    }
}
