//! `[mirror]`: passive HTTP inspection of sampled TCP payloads, for hosts
//! where the proxy cannot sit in front. It can ban, not block.

use serde::Deserialize;

use crate::values::{ConfigError, Dur, invalid};

/// The mirror's config.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MirrorConfig {
    /// On or off.
    pub enabled: bool,
    /// TCP destination ports to sample (at most 8).
    pub ports: Vec<u16>,
    /// Payload bytes sampled per segment (at most 1536).
    pub sample_bytes: u32,
    /// A flow with no segment for this long is forgotten.
    pub flow_timeout: Dur,
    /// Flows reassembled at once (oldest dropped first, counted).
    pub max_flows: usize,
    /// Bytes buffered per flow while a request is incomplete.
    pub max_request_bytes: usize,
}

impl Default for MirrorConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            ports: vec![80],
            sample_bytes: waf_common::SAMPLE_MAX as u32,
            flow_timeout: Dur::secs(10),
            max_flows: 10_000,
            max_request_bytes: 64 * 1024,
        }
    }
}

impl MirrorConfig {
    /// Checks ranges.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let m = self;
        if m.ports.is_empty() || m.ports.len() > waf_common::SAMPLE_PORTS || m.ports.contains(&0) {
            return Err(invalid(
                "mirror.ports",
                format!("{:?}", m.ports),
                "1 to 8 TCP ports, none of them 0",
            ));
        }
        if !(64..=waf_common::SAMPLE_MAX as u32).contains(&m.sample_bytes) {
            return Err(invalid("mirror.sample_bytes", m.sample_bytes, "64 to 1536"));
        }
        if m.max_flows == 0 || m.max_flows > 10_000_000 {
            return Err(invalid("mirror.max_flows", m.max_flows, "1 to 10000000"));
        }
        if !(1024..=64 << 20).contains(&m.max_request_bytes) {
            return Err(invalid(
                "mirror.max_request_bytes",
                m.max_request_bytes,
                "1024 to 67108864",
            ));
        }
        if m.flow_timeout.0.is_zero() {
            return Err(invalid(
                "mirror.flow_timeout",
                m.flow_timeout,
                "a positive duration",
            ));
        }
        Ok(())
    }
}
