//! What the XDP program reads from its config map: modes, per-source rate
//! limits and mirror sampling, as operators state them, and their
//! translation into the kernel's [`XdpConfig`] entry.

use std::time::Duration;

use waf_common::{ABI_VERSION, XdpConfig, flags};

use super::{DataplaneError, Result, clock::coarse_resolution_ns};

/// Per-source rate limits as operators state them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimits {
    /// Packets per second per source (None: no packet limit).
    pub pps: Option<u64>,
    /// Packets a source may send at once above its rate.
    pub burst: u64,
    /// Bytes per second per source (None: no byte limit).
    pub bps: Option<u64>,
    /// Bytes a source may send at once above its byte rate.
    pub burst_bytes: u64,
    /// TCP SYNs per second per source (None: no SYN limit).
    pub syn_pps: Option<u64>,
    /// SYN burst.
    pub syn_burst: u64,
    /// IPv6 sources are limited, and banned by exact bans, per prefix of
    /// this length (`[ban_policy] ipv6_prefix`).
    pub v6_prefix: u8,
    /// At most one rate event per source per this interval.
    pub event_interval: Duration,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            pps: None,
            burst: 0,
            bps: None,
            burst_bytes: 0,
            syn_pps: None,
            syn_burst: 0,
            v6_prefix: 64,
            event_interval: Duration::from_secs(1),
        }
    }
}

/// Everything the XDP program reads from its config map.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Settings {
    /// Count what would be dropped, drop nothing.
    pub monitor: bool,
    /// Drop all that is not allowlisted.
    pub emergency: bool,
    /// Per-source rate limits.
    pub rate: RateLimits,
    /// TCP ports whose payloads are sampled for the passive mirror (0:
    /// unused slot).
    pub sample_ports: [u16; waf_common::SAMPLE_PORTS],
    /// Payload bytes sampled per segment (at most `waf_common::SAMPLE_MAX`).
    pub sample_bytes: u32,
}

impl Settings {
    /// The config map entry for these settings; errors on values the kernel
    /// side cannot represent.
    pub fn to_config(&self) -> Result<XdpConfig> {
        let mut cfg = XdpConfig {
            abi: ABI_VERSION,
            ..Default::default()
        };
        if self.monitor {
            cfg.flags |= flags::MONITOR;
        }
        if self.emergency {
            cfg.flags |= flags::EMERGENCY;
        }
        let r = &self.rate;
        // The kernel reads a coarse clock (one tick of resolution): a bucket
        // must hold at least two ticks' worth of credit, or a source sending
        // steadily below its limit could see a tick's packets as one burst.
        let min_window = 2 * coarse_resolution_ns();
        let per = |rate: u64, burst: u64, what: &str| -> Result<(u64, u64)> {
            if rate == 0 || rate > 1_000_000_000 {
                return Err(DataplaneError::Invalid(format!(
                    "{what} rate {rate}: must be between 1 and 1000000000 per second"
                )));
            }
            if burst == 0 {
                return Err(DataplaneError::Invalid(format!(
                    "{what} burst 0: must be at least 1"
                )));
            }
            let cost = (1_000_000_000 + rate / 2) / rate;
            Ok((cost, cost.saturating_mul(burst).max(min_window + cost)))
        };
        if let Some(pps) = r.pps {
            (cfg.pkt_cost_ns, cfg.pkt_window_ns) = per(pps, r.burst, "packet")?;
            cfg.flags |= flags::RATE_PPS;
        }
        if let Some(bps) = r.bps {
            if bps == 0 || r.burst_bytes < 1514 {
                return Err(DataplaneError::Invalid(format!(
                    "byte rate {bps}/s with burst {} bytes: the rate must be positive and the \
                     burst at least one full frame (1514 bytes)",
                    r.burst_bytes
                )));
            }
            let fp = ((1_000_000_000u128 << 16) / bps as u128).max(1) as u64;
            cfg.byte_cost_fp16 = fp;
            let frame = ((1514 * fp as u128) >> 16) as u64;
            cfg.byte_window_ns =
                (((r.burst_bytes as u128 * fp as u128) >> 16) as u64).max(min_window + frame);
            cfg.flags |= flags::RATE_BPS;
        }
        if let Some(syn) = r.syn_pps {
            (cfg.syn_cost_ns, cfg.syn_window_ns) = per(syn, r.syn_burst, "SYN")?;
            cfg.flags |= flags::RATE_SYN;
        }
        if !(1..=128).contains(&r.v6_prefix) {
            return Err(DataplaneError::Invalid(format!(
                "IPv6 rate-limit prefix /{}: must be between /1 and /128",
                r.v6_prefix
            )));
        }
        cfg.v6_prefix = r.v6_prefix as u32;
        cfg.tick_ns = coarse_resolution_ns();
        // Used slots first: the program stops at the first 0.
        let mut ports: Vec<u16> = self
            .sample_ports
            .iter()
            .copied()
            .filter(|p| *p != 0)
            .collect();
        ports.dedup();
        for (slot, p) in cfg.sample_ports.iter_mut().zip(ports) {
            *slot = p;
        }
        cfg.sample_bytes = self.sample_bytes.min(waf_common::SAMPLE_MAX as u32);
        cfg.event_interval_ns = r.event_interval.as_nanos().min(u64::MAX as u128) as u64;
        Ok(cfg)
    }
}
