//! The limiter's table of sources, where no source reaches its burst: a
//! 2-way set-associative table (`waf_common::rate_set_v4/v6`) in which a
//! source is new (and counted in `RATE_NEW_SOURCES`) the first time it is
//! charged. A third source in a full set would evict the one seen least
//! recently, by a clock the model does not see: callers keep that from
//! happening ([`RateTable::would_evict`]) and [`RateTable::charge`] refuses
//! it.

use std::{collections::HashMap, net::IpAddr};

// The table of the default `[capacity] rate_sources` (what the harness loads).
use waf_common::{RATE_SET_BITS, rate_set_v4, rate_set_v6};

/// The key a source's rate state is kept under.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RateKey {
    /// An IPv4 source, as the `u32` of its octets in memory order.
    V4(u32),
    /// An IPv6 source masked to the rate prefix, as a big-endian number.
    V6(u128),
}

impl RateKey {
    /// The key of `src` with IPv6 sources counted per `/v6_prefix` (0 or
    /// 128 and above keep the whole address, as the program's mask does).
    pub fn of(src: IpAddr, v6_prefix: u8) -> Self {
        match src {
            IpAddr::V4(a) => Self::V4(u32::from_ne_bytes(a.octets())),
            IpAddr::V6(a) => {
                let p = u32::from(v6_prefix);
                let mask = if p == 0 || p >= 128 {
                    u128::MAX
                } else {
                    u128::MAX << (128 - p)
                };
                Self::V6(u128::from(a) & mask)
            }
        }
    }

    /// The family and set of the table this key lives in.
    fn set(&self) -> (u8, u32) {
        match *self {
            Self::V4(k) => (4, rate_set_v4(k, RATE_SET_BITS)),
            Self::V6(k) => (6, rate_set_v6((k >> 64) as u64, k as u64, RATE_SET_BITS)),
        }
    }
}

/// The sources in the limiter's table, per set.
#[derive(Clone, Debug, Default)]
pub struct RateTable {
    sets: HashMap<(u8, u32), Vec<RateKey>>,
}

impl RateTable {
    /// Would charging `key` need a slot its set does not have (a third
    /// source in a set of two)?
    pub fn would_evict(&self, key: RateKey) -> bool {
        self.sets
            .get(&key.set())
            .is_some_and(|s| s.len() >= 2 && !s.contains(&key))
    }

    /// The sources already in `key`'s set (to draw a source that is safe).
    pub fn set_members(&self, key: RateKey) -> &[RateKey] {
        self.sets.get(&key.set()).map_or(&[], Vec::as_slice)
    }

    /// Charges a packet to `key`; true when the source is new to the table.
    /// Err when its set is full of other sources.
    pub fn charge(&mut self, key: RateKey) -> Result<bool, String> {
        let set = self.sets.entry(key.set()).or_default();
        if set.contains(&key) {
            return Ok(false);
        }
        if set.len() >= 2 {
            return Err(format!(
                "rate key {key:?}: its set already holds {set:?}; the program would evict one \
                 by a clock the model does not see"
            ));
        }
        set.push(key);
        Ok(true)
    }
}
