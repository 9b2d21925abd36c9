//! This host into the bucket: the owner's ban changes, filtered (sources in
//! `share`, never bans from the fleet), coalesced per key and written
//! (put on ban, delete on unban or expiry). What cannot be written now
//! (broker away) waits in memory, the latest change per key, and is
//! written once the broker is back; the owner never waits for any of it.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use async_nats::jetstream::kv::Store;
use bytes::Bytes;
use tokio::sync::{broadcast, watch};

use super::{
    FleetLink, REQUEST_TIMEOUT, bump,
    codec::{SharedBan, key_of},
};
use crate::{
    firewall::{BanChange, BanSource, Lift},
    values::unix_now,
};

/// Keys waiting to be written at most; beyond, changes are dropped and
/// counted.
const MAX_PENDING: usize = 100_000;
/// After a failed write, the next attempt waits this long.
const RETRY: Duration = Duration::from_secs(1);

/// Key → the value to put, or None to delete the key.
type Pending = BTreeMap<String, Option<Bytes>>;

/// Follows the owner's changes and writes them into the bucket, for as long
/// as the daemon runs.
pub(super) async fn run(
    link: Arc<FleetLink>,
    mut changes: broadcast::Receiver<BanChange>,
    store: watch::Receiver<Option<Store>>,
) {
    let mut pending = Pending::new();
    let mut tick = tokio::time::interval(RETRY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut failing = false;
    loop {
        tokio::select! {
            c = changes.recv() => match c {
                Ok(c) => link.queue(&mut pending, c),
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    link.counters.dropped.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
                    tracing::error!(lost = n, "fleet: fell behind the owner; changes not published");
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            _ = tick.tick() => {
                for net in link.expired_keys(unix_now()) {
                    put_pending(&link, &mut pending, key_of(&net), None);
                }
            }
        }
        // Take what else is there at once: one write per key.
        while let Ok(c) = changes.try_recv() {
            link.queue(&mut pending, c);
        }
        if pending.is_empty() || (failing && !link.connected()) {
            continue;
        }
        let Some(s) = store.borrow().clone() else {
            continue;
        };
        match flush(&link, &s, &mut pending).await {
            Ok(()) if failing => {
                failing = false;
                tracing::info!("fleet: publishing again");
            }
            Ok(()) => {}
            Err(e) => {
                if !failing {
                    tracing::warn!(
                        error = %e, waiting = pending.len(),
                        "fleet: cannot publish; local bans go on, changes wait for the broker"
                    );
                }
                failing = true;
            }
        }
    }
}

fn put_pending(link: &FleetLink, pending: &mut Pending, key: String, value: Option<Bytes>) {
    if pending.len() >= MAX_PENDING && !pending.contains_key(&key) {
        bump(&link.counters.dropped);
        return;
    }
    pending.insert(key, value);
}

impl FleetLink {
    /// What a change means for the bucket, if anything: a put, a delete.
    fn outgoing(&self, c: BanChange) -> Option<(String, Option<Bytes>)> {
        match c {
            BanChange::Banned(b) if self.cfg.shares(b.meta.source) => Some((
                key_of(&b.net),
                Some(SharedBan::of(&b, &self.cfg.node).encode()),
            )),
            // A fleet ban ending here (an operator, or its expiry) is this
            // host's business; an eviction (a full map) too.
            BanChange::Lifted(b, Lift::Removed | Lift::Expired)
                if b.meta.source != BanSource::Fleet && self.cfg.shares(b.meta.source) =>
            {
                Some((key_of(&b.net), None))
            }
            _ => None,
        }
    }

    fn queue(&self, pending: &mut Pending, c: BanChange) {
        if let Some((key, value)) = self.outgoing(c) {
            put_pending(self, pending, key, value);
        }
    }
}

/// Writes the pending changes in key order; stops at the first failure
/// (it stays pending).
async fn flush(link: &FleetLink, s: &Store, pending: &mut Pending) -> Result<(), String> {
    while let Some((key, value)) = pending.pop_first() {
        let res = match &value {
            Some(v) => tokio::time::timeout(REQUEST_TIMEOUT, s.put(&key, v.clone()))
                .await
                .map(|r| r.map(|_| ()).map_err(|e| e.to_string())),
            None => tokio::time::timeout(REQUEST_TIMEOUT, s.delete(&key))
                .await
                .map(|r| r.map_err(|e| e.to_string())),
        };
        let err = match res {
            Ok(Ok(())) => {
                bump(&link.counters.published);
                continue;
            }
            Ok(Err(e)) => e,
            Err(_) => "no answer in time".to_string(),
        };
        bump(&link.counters.errors);
        pending.insert(key, value);
        return Err(err);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::{
        collections::HashMap,
        sync::{Arc, Mutex, OnceLock, atomic::AtomicU64},
    };

    use super::*;
    use crate::{
        firewall::{Ban, BanMeta},
        fleet::{Counters, EXPIRY_GRACE_S, FleetConfig, Known},
    };

    fn link(share: &[BanSource]) -> FleetLink {
        FleetLink {
            cfg: FleetConfig {
                node: "a".into(),
                share: share.to_vec(),
                ..FleetConfig::default()
            },
            counters: Counters::default(),
            client: OnceLock::new(),
            last_sync: AtomicU64::new(0),
            lag: AtomicU64::new(0),
            known: Mutex::new(HashMap::new()),
        }
    }

    fn ban(source: BanSource) -> Ban {
        Ban {
            net: "2001:db8::/64".parse().unwrap(),
            meta: BanMeta {
                created: 1,
                expires: 0,
                offence: 1,
                source,
                reason: Arc::from("r"),
                origin: crate::firewall::Origin::of_opt(
                    (source == BanSource::Fleet).then_some("b"),
                ),
            },
        }
    }

    #[test]
    fn shared_sources_go_out_fleet_bans_never_echo() {
        let l = link(&[BanSource::Manual]);
        let (key, value) = l
            .outgoing(BanChange::Banned(ban(BanSource::Manual)))
            .expect("a manual ban is shared");
        assert_eq!(key, "2001-db8--_64");
        let v = SharedBan::decode(&value.expect("a put")).unwrap();
        assert_eq!((v.origin.as_str(), v.source), ("a", BanSource::Manual));
        let lifted = BanChange::Lifted(ban(BanSource::Manual), Lift::Expired);
        assert_eq!(l.outgoing(lifted), Some((key.clone(), None)), "a delete");
        for c in [
            BanChange::Banned(ban(BanSource::Detection)),
            BanChange::Banned(ban(BanSource::Fleet)),
            BanChange::Lifted(ban(BanSource::Fleet), Lift::Removed),
            BanChange::Lifted(ban(BanSource::Manual), Lift::Evicted),
        ] {
            assert_eq!(l.outgoing(c.clone()), None, "{c:?}");
        }
    }

    #[test]
    fn expired_keys_are_the_origins_at_once_and_anyones_after_grace() {
        let l = link(&[BanSource::Manual]);
        let net = |s: &str| -> ipnet::IpNet { s.parse().unwrap() };
        let (own, other, late, permanent) = (
            net("192.0.2.1/32"),
            net("192.0.2.2/32"),
            net("2001:db8::/64"),
            net("198.51.100.0/24"),
        );
        for (n, mine, expires) in [(own, true, 100), (other, false, 100), (late, false, 10)] {
            l.known().insert(n, Known { mine, expires });
        }
        let k = Known {
            mine: true,
            expires: 0,
        };
        l.known().insert(permanent, k);
        let mut due = l.expired_keys(100);
        due.sort();
        let mut want = vec![late, own];
        want.sort();
        assert_eq!(due, want);
        assert_eq!(l.expired_keys(100 + EXPIRY_GRACE_S), [other]);
        assert!(l.expired_keys(u64::MAX).is_empty(), "permanent stays");
    }
}
