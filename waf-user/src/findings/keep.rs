//! Which findings the store keeps (`[findings] keep`), so that a flood of
//! passed requests with low-severity findings cannot push the blocked
//! attacks out of the store's cap:
//!
//! - `all`: every finding, as before this setting existed;
//! - `sampled` (default): every finding of a blocked (or `would_block`)
//!   request; of passed requests, the first finding of each source × rule ×
//!   path in a minute, and at most `passed_per_minute` of them in all. The
//!   next one kept of a source × rule × path carries how many were skipped
//!   before it (`repeats`);
//! - `blocked`: findings of blocked (or `would_block`) requests only.
//!
//! What is not kept is counted (`skipped`). Bounded: the sampler remembers
//! at most [`KEYS`] source × rule × path triples (by a keyed hash, no text),
//! forgetting those of earlier minutes first; past that, passed findings
//! are kept by the budget alone.

use std::{
    collections::HashMap,
    hash::{BuildHasher, RandomState},
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

use serde::Deserialize;

use super::record::FindingRecord;

/// Source × rule × path triples the sampler remembers at most.
pub const KEYS: usize = 8192;

/// `[findings] keep`: which findings the store keeps.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Keep {
    /// Every finding.
    All,
    /// Blocked ones, and passed ones sampled.
    #[default]
    Sampled,
    /// Blocked (and `would_block`) ones only.
    Blocked,
}

/// A triple's last minute and what was skipped of it since a record kept.
#[derive(Clone, Copy, Debug)]
struct Seen {
    minute: u64,
    skipped: u64,
}

#[derive(Debug, Default)]
struct State {
    /// The minute the budget counts.
    minute: u64,
    /// Passed findings kept in that minute.
    kept: u32,
    seen: HashMap<u64, Seen>,
}

/// The policy in force and what it skipped.
#[derive(Debug)]
pub struct Sampler {
    keep: Keep,
    per_minute: u32,
    hasher: RandomState,
    state: Mutex<State>,
    /// Findings not kept (the policy's choice; the store's own drops are
    /// counted apart).
    pub skipped: AtomicU64,
}

/// Whether a record's request was blocked (or would have been).
fn blocked(r: &FindingRecord) -> bool {
    r.verdict != "pass"
}

impl Sampler {
    /// A sampler for `keep`, keeping at most `per_minute` passed findings a
    /// minute under `sampled`.
    pub fn new(keep: Keep, per_minute: u32) -> Sampler {
        Sampler {
            keep,
            per_minute,
            hasher: RandomState::new(),
            state: Mutex::new(State::default()),
            skipped: AtomicU64::new(0),
        }
    }

    /// Leaves in `records` those to store (`repeats` set), at `minute`
    /// (Unix minutes); counts the others.
    pub fn admit(&self, records: &mut Vec<FindingRecord>, minute: u64) {
        let before = records.len();
        match self.keep {
            Keep::All => return,
            Keep::Blocked => records.retain(blocked),
            Keep::Sampled => {
                if records.iter().any(|r| !blocked(r)) {
                    let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
                    records.retain_mut(|r| blocked(r) || self.sample(&mut st, r, minute));
                }
            }
        }
        let gone = (before - records.len()) as u64;
        if gone > 0 {
            self.skipped.fetch_add(gone, Ordering::Relaxed);
        }
    }

    /// Whether to keep one passed record.
    fn sample(&self, st: &mut State, r: &mut FindingRecord, minute: u64) -> bool {
        if st.minute != minute {
            st.minute = minute;
            st.kept = 0;
        }
        let budget = st.kept < self.per_minute;
        let key = self
            .hasher
            .hash_one((r.source.as_str(), r.rule.as_str(), r.path.as_str()));
        if let Some(s) = st.seen.get_mut(&key) {
            if s.minute == minute || !budget {
                s.skipped += 1;
                return false;
            }
            r.repeats = s.skipped;
            *s = Seen { minute, skipped: 0 };
            st.kept += 1;
            return true;
        }
        if st.seen.len() >= KEYS {
            st.seen.retain(|_, s| s.minute == minute);
        }
        if st.seen.len() < KEYS {
            let skipped = u64::from(!budget);
            st.seen.insert(key, Seen { minute, skipped });
        }
        if budget {
            st.kept += 1;
        }
        budget
    }
}
