//! A counter of keys with a cap on how many it holds: past the cap it
//! drops the keys counted at or below the median (at least half of them),
//! so memory stays bounded on any input and the heavy keys survive; the
//! counts are then lower bounds and the report says `approximate`.

use std::collections::HashMap;

/// A capped counter.
#[derive(Debug)]
pub struct TopK {
    counts: HashMap<String, u64>,
    cap: usize,
    /// Keys were dropped: counts are lower bounds.
    pub pruned: bool,
}

/// Longest key kept (longer keys are cut: they come from requests).
pub const MAX_KEY: usize = 256;

impl TopK {
    /// A counter holding at most `cap` keys (at least 2).
    pub fn new(cap: usize) -> TopK {
        TopK {
            counts: HashMap::new(),
            cap: cap.max(2),
            pruned: false,
        }
    }

    /// Counts `n` more for `key`.
    pub fn add(&mut self, key: &str, n: u64) {
        if let Some(c) = self.counts.get_mut(key) {
            *c = c.saturating_add(n);
            return;
        }
        if self.counts.len() >= self.cap {
            self.prune();
        }
        let key: String = if key.len() > MAX_KEY {
            key.chars()
                .scan(0, |len, c| {
                    *len += c.len_utf8();
                    (*len <= MAX_KEY).then_some(c)
                })
                .collect()
        } else {
            key.to_string()
        };
        *self.counts.entry(key).or_insert(0) += n;
    }

    /// Drops the keys at or below the median count (at least half).
    fn prune(&mut self) {
        let mut v: Vec<u64> = self.counts.values().copied().collect();
        let mid = v.len() / 2;
        let (_, median, _) = v.select_nth_unstable(mid);
        let median = *median;
        self.counts.retain(|_, c| *c > median);
        if self.counts.len() > self.cap / 2 {
            // Many keys above the median tie: drop arbitrary ones.
            let extra = self.counts.len() - self.cap / 2;
            let gone: Vec<String> = self.counts.keys().take(extra).cloned().collect();
            for k in gone {
                self.counts.remove(&k);
            }
        }
        self.pruned = true;
    }

    /// The `k` heaviest keys, heaviest first (ties by key).
    pub fn top(&self, k: usize) -> Vec<(String, u64)> {
        let mut v: Vec<(String, u64)> = self
            .counts
            .iter()
            .map(|(key, c)| (key.clone(), *c))
            .collect();
        v.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        v.truncate(k);
        v
    }

    /// Keys held.
    pub fn len(&self) -> usize {
        self.counts.len()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }
}
