//! The ids of solved challenges, so one solution buys one pass.
//!
//! Each id is kept until its challenge expires (issue time + `nonce_ttl`):
//! after that the challenge is refused as expired anyway. Expired ids are
//! pruned at each insertion, oldest first. The set is bounded: when it is
//! full of ids still unexpired, a new solution is refused ([`Full`]) rather
//! than an unexpired id evicted, since eviction would let that solution be
//! replayed.

use std::{
    collections::{BTreeSet, HashSet},
    sync::Mutex,
};

use super::token::ID_LEN;

/// The default bound: a million ids (some 70 MB at most).
pub const DEFAULT_CAPACITY: usize = 1_000_000;

/// Why an id was not taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// Seen before.
    Replayed,
    /// The set is full of unexpired ids.
    Full,
}

/// The set; shared by every connection.
#[derive(Debug)]
pub struct ReplaySet {
    inner: Mutex<Inner>,
    capacity: usize,
}

#[derive(Debug, Default)]
struct Inner {
    ids: HashSet<[u8; ID_LEN]>,
    /// (expiry, id): the oldest first, for pruning.
    by_expiry: BTreeSet<(u64, [u8; ID_LEN])>,
}

impl ReplaySet {
    /// An empty set of at most `capacity` ids (at least one).
    pub fn new(capacity: usize) -> Self {
        Self {
            inner: Mutex::default(),
            capacity: capacity.max(1),
        }
    }

    /// Takes `id`, kept until `expires` (Unix seconds), if it was not
    /// taken before; prunes the ids expired at `now` first.
    pub fn take(&self, id: [u8; ID_LEN], expires: u64, now: u64) -> Result<(), Refused> {
        // A panic elsewhere while holding the lock leaves the set whole.
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let inner = &mut *g;
        while let Some(&(exp, old)) = inner.by_expiry.first() {
            if exp >= now {
                break;
            }
            inner.by_expiry.pop_first();
            inner.ids.remove(&old);
        }
        if inner.ids.contains(&id) {
            return Err(Refused::Replayed);
        }
        if inner.ids.len() >= self.capacity {
            return Err(Refused::Full);
        }
        inner.ids.insert(id);
        inner.by_expiry.insert((expires, id));
        Ok(())
    }

    /// How many ids are held.
    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .ids
            .len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for ReplaySet {
    fn default() -> Self {
        Self::new(DEFAULT_CAPACITY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> [u8; ID_LEN] {
        [n; ID_LEN]
    }

    #[test]
    fn an_id_is_taken_once_until_it_expires() {
        let s = ReplaySet::new(10);
        assert!(s.is_empty());
        assert_eq!(s.take(id(1), 100, 50), Ok(()));
        assert_eq!(s.take(id(1), 100, 60), Err(Refused::Replayed));
        // Still there at its expiry second, gone after.
        assert_eq!(s.take(id(1), 100, 100), Err(Refused::Replayed));
        assert_eq!(s.take(id(2), 200, 101), Ok(()));
        assert_eq!(s.len(), 1);
        assert_eq!(s.take(id(1), 300, 102), Ok(()));
    }

    #[test]
    fn a_full_set_refuses_rather_than_evicts() {
        let s = ReplaySet::new(3);
        for n in 0..3 {
            assert_eq!(s.take(id(n), 100 + u64::from(n), 10), Ok(()));
        }
        assert_eq!(s.take(id(9), 200, 10), Err(Refused::Full));
        // Every unexpired id is still refused as a replay.
        for n in 0..3 {
            assert_eq!(s.take(id(n), 100, 10), Err(Refused::Replayed));
        }
        // Once the oldest expires (expiry 100, now 101), room for one.
        assert_eq!(s.take(id(9), 200, 101), Ok(()));
        assert_eq!(s.len(), 3);
        assert_eq!(s.take(id(8), 200, 101), Err(Refused::Full));
        assert_eq!(s.take(id(2), 200, 101), Err(Refused::Replayed));
    }

    #[test]
    fn shared_between_threads() {
        let s = std::sync::Arc::new(ReplaySet::new(1000));
        let wins: usize = (0..4)
            .map(|_| {
                let s = s.clone();
                std::thread::spawn(move || {
                    (0..100).filter(|&n| s.take(id(n), 10, 0).is_ok()).count()
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap())
            .sum();
        assert_eq!(wins, 100);
    }
}
