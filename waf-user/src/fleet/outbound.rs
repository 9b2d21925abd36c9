//! This host into the bucket: the owner's ban changes, filtered (sources in
//! `share`, never bans from the fleet), coalesced per key and written in
//! the order they were made (put on ban, delete on unban or expiry), and
//! the strikes it counts, on their subjects. What cannot be written now
//! (broker away) waits in the outbox, the latest change per key, and is
//! written once the broker is back; the owner never waits for any of it.
//! A restart empties the outbox in memory: what it held is found again
//! when the watch has caught up, by comparing the bans the journal
//! restored with the bucket ([`super::inbound`]).
//!
//! Bans made by strikes (detection, rate limits) are created, not put: if
//! another host banned the same source first (both crossed the threshold
//! at once), this host's create fails and its ban gives way to the
//! other's, so one attack is one ban and one offence in the fleet.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, atomic::Ordering},
    time::Duration,
};

use async_nats::jetstream::kv::{CreateErrorKind, Operation, Store};
use bytes::Bytes;
use ipnet::IpNet;
use tokio::sync::{broadcast, mpsc, watch};

use super::{
    FleetLink, REQUEST_TIMEOUT, bump,
    codec::{SharedBan, SharedStrike, key_of, net_of, strikes_subject},
};
use crate::{
    firewall::{
        Ban, BanChange, BanMeta, BanSource, Handle, Lift, StrikeKind, View, fleet::FleetOp,
    },
    values::unix_now,
};

/// Keys waiting to be written at most; beyond, changes are dropped and
/// counted.
const MAX_PENDING: usize = 100_000;
/// After a failed write, the next attempt waits this long.
const RETRY: Duration = Duration::from_secs(1);

/// One change for the bucket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Out {
    pub(super) key: String,
    /// The value to put, or None to delete the key.
    pub(super) value: Option<Bytes>,
    /// Put only if no other host holds a live ban on the key.
    pub(super) create: bool,
    /// The ban's expiry (unix seconds, 0: permanent).
    pub(super) expires: u32,
}

impl Out {
    /// This host's ban, as it goes into the bucket.
    pub(super) fn ban(net: IpNet, meta: &BanMeta, node: &str) -> Self {
        let ban = Ban {
            net,
            meta: meta.clone(),
        };
        Self {
            key: key_of(&net),
            value: Some(SharedBan::of(&ban, node).encode()),
            create: matches!(meta.source, BanSource::Detection | BanSource::RateLimit),
            expires: meta.expires,
        }
    }

    /// A delete of `key`.
    pub(super) fn delete(key: String) -> Self {
        Self {
            key,
            value: None,
            create: false,
            expires: 0,
        }
    }
}

/// Changes waiting to be written: the latest per key, in the order of
/// their last change.
#[derive(Debug, Default)]
pub(super) struct Outbox {
    next: u64,
    order: BTreeMap<u64, String>,
    items: HashMap<String, (u64, Out)>,
}

impl Outbox {
    /// Queues `o` (replacing what was queued for its key); false when full.
    pub(super) fn push(&mut self, o: Out) -> bool {
        if let Some((seq, _)) = self.items.remove(&o.key) {
            self.order.remove(&seq);
        } else if self.items.len() >= MAX_PENDING {
            return false;
        }
        self.next += 1;
        self.order.insert(self.next, o.key.clone());
        self.items.insert(o.key.clone(), (self.next, o));
        true
    }

    /// The oldest change and its place.
    fn pop(&mut self) -> Option<(u64, Out)> {
        let (_, key) = self.order.pop_first()?;
        self.items.remove(&key)
    }

    /// Puts back a change that could not be written, in its place (unless
    /// a newer change for its key came meanwhile).
    fn put_back(&mut self, seq: u64, o: Out) {
        if self.items.contains_key(&o.key) {
            return;
        }
        self.order.insert(seq, o.key.clone());
        self.items.insert(o.key.clone(), (seq, o));
    }

    pub(super) fn len(&self) -> usize {
        self.items.len()
    }
}

/// Follows the owner's changes and writes them into the bucket, for as long
/// as the daemon runs.
pub(super) async fn run(
    link: Arc<FleetLink>,
    fw: Handle,
    mut changes: broadcast::Receiver<BanChange>,
    mut found: mpsc::UnboundedReceiver<Vec<Out>>,
    store: watch::Receiver<Option<Store>>,
) {
    let mut outbox = Outbox::default();
    let mut tick = tokio::time::interval(RETRY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut failing = false;
    // Changes were lost on the way (the owner outran this task, or the
    // outbox was full): once the outbox is empty, this host's bans are
    // compared with the bucket and what differs is written.
    let mut resync = false;
    loop {
        tokio::select! {
            c = changes.recv() => match c {
                Ok(c) => resync |= !link.queue(&mut outbox, c).await,
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    link.lagged(n);
                    resync = true;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            Some(outs) = found.recv() => {
                for o in outs {
                    resync |= !link.push(&mut outbox, o);
                }
            }
            _ = tick.tick() => {
                for net in link.expired_keys(unix_now()) {
                    resync |= !link.push(&mut outbox, Out::delete(key_of(&net)));
                }
            }
        }
        // Take what else is there at once: one write per key.
        drain(&link, &mut outbox, &mut changes, &mut resync).await;
        if resync && outbox.len() == 0 && link.connected() && link.synced_once() {
            resync = false;
            let outs = link.own_outs(&fw.view(), |_| false).0;
            tracing::info!(
                to_publish = outs.len(),
                "fleet: this host's bans compared with the bucket after changes were lost"
            );
            for o in outs {
                resync |= !link.push(&mut outbox, o);
            }
        }
        link.outbox.store(outbox.len() as u64, Ordering::Relaxed);
        if outbox.len() == 0 || (failing && !link.connected()) {
            continue;
        }
        let Some(s) = store.borrow().clone() else {
            continue;
        };
        let res = flush(&link, &fw, &s, &mut outbox, &mut changes, &mut resync).await;
        link.outbox.store(outbox.len() as u64, Ordering::Relaxed);
        match res {
            Ok(()) if failing => {
                failing = false;
                tracing::info!("fleet: publishing again");
            }
            Ok(()) => {}
            Err(e) => {
                if !failing {
                    tracing::warn!(
                        error = %e, waiting = outbox.len(),
                        "fleet: cannot publish; local bans go on, changes wait for the broker"
                    );
                }
                failing = true;
            }
        }
    }
}

impl FleetLink {
    /// What a change means for the bucket, if anything: a put, a delete.
    fn outgoing(&self, c: &BanChange) -> Option<Out> {
        match c {
            BanChange::Banned(b) if self.cfg.shares(b.meta.source) => {
                Some(Out::ban(b.net, &b.meta, &self.cfg.node))
            }
            // An operator lifting a ban here lifts it in the fleet, whoever
            // made it; an expiry, only the origin's (and any host's after
            // the grace period, see expired_keys). A ban the fleet lifted,
            // or an eviction (a full map here), is this host's business.
            BanChange::Lifted(b, Lift::Removed)
                if b.meta.source == BanSource::Fleet || self.cfg.shares(b.meta.source) =>
            {
                Some(Out::delete(key_of(&b.net)))
            }
            BanChange::Lifted(b, Lift::Expired) if self.cfg.shares(b.meta.source) => {
                Some(Out::delete(key_of(&b.net)))
            }
            _ => None,
        }
    }

    /// Queues `o`; false (and counted) when the outbox is full.
    fn push(&self, outbox: &mut Outbox, o: Out) -> bool {
        let ok = outbox.push(o);
        if !ok {
            bump(&self.counters.dropped);
        }
        ok
    }

    /// Queues what `c` means for the bucket; false when it was dropped.
    async fn queue(&self, outbox: &mut Outbox, c: BanChange) -> bool {
        if let BanChange::Struck(net, kind) = c {
            self.share_strike(net, kind).await;
            true
        } else if let Some(o) = self.outgoing(&c) {
            self.push(outbox, o)
        } else {
            true
        }
    }

    /// The owner's changes outran this task: `n` were lost to it.
    fn lagged(&self, n: u64) {
        self.counters.dropped.fetch_add(n, Ordering::Relaxed);
        tracing::warn!(
            lost = n,
            "fleet: fell behind the owner's changes; this host's bans are compared with the bucket once the outbox is written"
        );
    }

    /// What this host must write for the bucket to hold its own shared
    /// bans as its owner holds them, judged by the keys known here (the
    /// watch, and this host's own writes): a shared ban the bucket does
    /// not hold, or holds as this host's with another expiry, is put; a
    /// key of this host's whose ban it no longer holds is deleted. A ban
    /// with no key here for which `unsure(net)` holds is returned apart,
    /// to be read from the bucket first.
    pub(super) fn own_outs(
        &self,
        view: &View,
        unsure: impl Fn(&IpNet) -> bool,
    ) -> (Vec<Out>, Vec<IpNet>) {
        let (mut outs, mut unsure_nets) = (Vec::new(), Vec::new());
        let known = self.known();
        for (net, meta) in view.bans.iter() {
            if !self.cfg.shares(meta.source) || meta.source == BanSource::Fleet {
                continue;
            }
            match known.get(net) {
                None if unsure(net) => unsure_nets.push(*net),
                None => outs.push(Out::ban(*net, meta, &self.cfg.node)),
                Some(k)
                    if k.mine
                        && u64::from(k.expires).abs_diff(u64::from(meta.expires))
                            > crate::firewall::fleet::SAME_EXPIRY_S =>
                {
                    outs.push(Out::ban(*net, meta, &self.cfg.node));
                }
                _ => {}
            }
        }
        // Another host's keys need no lookup (a joining host knows a
        // million of them).
        for (net, _) in known.iter().filter(|(_, k)| k.mine) {
            let holds = view
                .bans
                .get(net)
                .is_some_and(|m| m.source != BanSource::Fleet);
            if !holds {
                outs.push(Out::delete(key_of(net)));
            }
        }
        (outs, unsure_nets)
    }

    /// Tells the fleet a strike this host counted (core NATS: a strike
    /// matters for a window of seconds; with the broker away it is
    /// counted as not sent, never queued).
    async fn share_strike(&self, net: IpNet, kind: StrikeKind) {
        if !self.cfg.share_strikes {
            return;
        }
        let client = self.client.get().filter(|_| self.connected());
        let Some(client) = client else {
            bump(&self.counters.strikes_unsent);
            return;
        };
        let msg = SharedStrike {
            node: self.cfg.node.clone(),
            kind,
        };
        let subject = strikes_subject(&self.cfg.bucket, Some(&net));
        match client.publish(subject, msg.encode()).await {
            Ok(()) => bump(&self.counters.strikes_sent),
            Err(_) => bump(&self.counters.strikes_unsent),
        }
    }
}

/// Moves the owner's queued changes into the outbox, never waiting.
async fn drain(
    link: &FleetLink,
    outbox: &mut Outbox,
    changes: &mut broadcast::Receiver<BanChange>,
    resync: &mut bool,
) {
    loop {
        match changes.try_recv() {
            Ok(c) => *resync |= !link.queue(outbox, c).await,
            Err(broadcast::error::TryRecvError::Lagged(n)) => {
                link.lagged(n);
                *resync = true;
            }
            Err(_) => return,
        }
    }
}

/// Writes in flight at once at most (distinct keys: the outbox holds one
/// change per key, so their order does not matter to the bucket).
const IN_FLIGHT: usize = 256;

/// Writes the outbox, oldest first, [`IN_FLIGHT`] at a time, taking the
/// owner's new changes in between (so that a long flush never makes this
/// task fall behind them); stops after the round with a failure (what
/// failed goes back in its place).
async fn flush(
    link: &FleetLink,
    fw: &Handle,
    s: &Store,
    outbox: &mut Outbox,
    changes: &mut broadcast::Receiver<BanChange>,
    resync: &mut bool,
) -> Result<(), String> {
    use futures_util::StreamExt as _;
    loop {
        drain(link, outbox, changes, resync).await;
        let round: Vec<(u64, Out)> = std::iter::from_fn(|| outbox.pop())
            .take(IN_FLIGHT)
            .collect();
        if round.is_empty() {
            return Ok(());
        }
        let results: Vec<(u64, Out, Result<(), String>)> = futures_util::stream::iter(round)
            .map(|(seq, o)| async move {
                let res = match tokio::time::timeout(REQUEST_TIMEOUT, write(link, fw, s, &o)).await
                {
                    Ok(r) => r,
                    Err(_) => Err("no answer in time".to_string()),
                };
                (seq, o, res)
            })
            .buffer_unordered(IN_FLIGHT)
            .collect()
            .await;
        let mut failed = None;
        for (seq, o, res) in results {
            match res {
                Ok(()) => bump(&link.counters.published),
                Err(e) => {
                    bump(&link.counters.errors);
                    outbox.put_back(seq, o);
                    failed.get_or_insert(e);
                }
            }
        }
        if let Some(e) = failed {
            return Err(e);
        }
    }
}

/// Writes one change.
async fn write(link: &FleetLink, fw: &Handle, s: &Store, o: &Out) -> Result<(), String> {
    let net = net_of(&o.key);
    let Some(v) = &o.value else {
        // Its watch event is this host's own delete: mark it, so that it
        // lifts no ban this host made since.
        if let Some(n) = net {
            link.expect_echo(n);
        }
        let r = s.delete(&o.key).await.map_err(|e| e.to_string());
        match (&r, net) {
            (Err(_), Some(n)) => {
                link.echo(n);
            }
            (Ok(()), Some(n)) => link.forget(n),
            _ => {}
        }
        return r;
    };
    // Known at once (not only when the watch brings it back), so that a
    // comparison with the bucket right after does not write it again.
    let written = || {
        if let Some(n) = net {
            link.remember_own(n, o.expires);
        }
    };
    if !o.create {
        return s
            .put(&o.key, v.clone())
            .await
            .map(|_| written())
            .map_err(|e| e.to_string());
    }
    match s.create(&o.key, v.clone()).await {
        Ok(_) => {
            written();
            Ok(())
        }
        Err(e) if e.kind() == CreateErrorKind::AlreadyExists => lost_race(link, fw, s, o, v).await,
        Err(e) => Err(e.to_string()),
    }
}

/// A create found a ban on the key: an expired one or this host's own is
/// replaced; another host's live one wins, and this host's ban gives way
/// to it (the fleet ban, with its origin and offence).
async fn lost_race(
    link: &FleetLink,
    fw: &Handle,
    s: &Store,
    o: &Out,
    v: &Bytes,
) -> Result<(), String> {
    let entry = s.entry(&o.key).await.map_err(|e| e.to_string())?;
    let theirs = entry
        .as_ref()
        .filter(|e| e.operation == Operation::Put)
        .and_then(|e| SharedBan::decode(&e.value).ok())
        .filter(|b| b.origin != link.cfg.node && !b.expired(unix_now()));
    let (Some(theirs), Some(net)) = (theirs, net_of(&o.key)) else {
        // Deleted, expired, this host's, or no ban: write over it, if it
        // is still what was read.
        let revision = entry.as_ref().map_or(0, |e| e.revision);
        return s
            .update(&o.key, v.clone(), revision)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string());
    };
    bump(&link.counters.races_lost);
    tracing::info!(net = %net, winner = %theirs.origin, "fleet: another host banned this source first; its ban stands here too");
    let op = FleetOp::Ban(theirs.into_fleet_ban(net, true));
    match fw.fleet(vec![op]).await {
        Ok(_) => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::fleet::{EXPIRY_GRACE_S, FleetConfig, Known, OWN_EXPIRY_GRACE_S};

    fn link(share: &[BanSource]) -> FleetLink {
        let cfg = FleetConfig {
            node: "a".into(),
            share: share.to_vec(),
            ..FleetConfig::default()
        };
        FleetLink::new(&cfg).0
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
        let l = link(&[BanSource::Manual, BanSource::Detection]);
        let o = l
            .outgoing(&BanChange::Banned(ban(BanSource::Manual)))
            .expect("a manual ban is shared");
        assert_eq!(o.key, "2001-db8--_64");
        assert!(!o.create, "an operator's ban is put");
        let v = SharedBan::decode(&o.value.expect("a put")).unwrap();
        assert_eq!((v.origin.as_str(), v.source), ("a", BanSource::Manual));
        let d = l
            .outgoing(&BanChange::Banned(ban(BanSource::Detection)))
            .unwrap();
        assert!(d.create, "a ban from strikes is created: one per attack");
        let delete = Some(Out::delete(o.key.clone()));
        let lifted = BanChange::Lifted(ban(BanSource::Manual), Lift::Expired);
        assert_eq!(l.outgoing(&lifted), delete, "an expiry deletes");
        // An operator lifting another host's ban here lifts it everywhere.
        let lifted = BanChange::Lifted(ban(BanSource::Fleet), Lift::Removed);
        assert_eq!(l.outgoing(&lifted), delete);
        for c in [
            BanChange::Banned(ban(BanSource::Import)),
            BanChange::Banned(ban(BanSource::Fleet)),
            BanChange::Lifted(ban(BanSource::Fleet), Lift::Expired),
            BanChange::Lifted(ban(BanSource::Manual), Lift::Evicted),
            BanChange::Lifted(ban(BanSource::Manual), Lift::Fleet),
            BanChange::Lifted(ban(BanSource::Import), Lift::Removed),
        ] {
            assert_eq!(l.outgoing(&c), None, "{c:?}");
        }
    }

    #[test]
    fn the_outbox_keeps_the_latest_change_per_key_in_order_and_is_bounded() {
        let mut b = Outbox::default();
        let put = |k: &str| Out {
            key: k.into(),
            value: Some(Bytes::from_static(b"v")),
            create: false,
            expires: 0,
        };
        assert!(b.push(put("x")));
        assert!(b.push(put("y")));
        assert!(b.push(Out::delete("x".into())));
        assert_eq!(b.len(), 2);
        let (seq_y, y) = b.pop().unwrap();
        assert_eq!(y.key, "y", "x moved behind y by its newer change");
        // A write that failed goes back in its place, ahead of x.
        b.put_back(seq_y, y.clone());
        assert_eq!(b.pop().unwrap().1, y);
        assert_eq!(b.pop().unwrap().1, Out::delete("x".into()));
        assert!(b.pop().is_none());
        // Put back after a newer change for the key: the newer one stays.
        b.push(put("z"));
        b.put_back(0, Out::delete("z".into()));
        assert_eq!(b.pop().unwrap().1, put("z"));
        for i in 0..MAX_PENDING {
            assert!(b.push(put(&i.to_string())));
        }
        assert!(!b.push(put("one too many")), "full");
        assert!(
            b.push(Out::delete("7".into())),
            "a queued key still changes"
        );
        assert_eq!(b.len(), MAX_PENDING);
    }

    #[test]
    fn deletes_this_host_wrote_come_back_as_echoes_once() {
        let l = link(&[BanSource::Manual]);
        let n: IpNet = "192.0.2.1/32".parse().unwrap();
        assert!(!l.echo(n), "nothing written: another host's delete");
        l.expect_echo(n);
        l.expect_echo(n);
        assert!(l.echo(n));
        assert!(l.echo(n));
        assert!(!l.echo(n));
    }

    #[test]
    fn expired_keys_are_the_origins_shortly_after_and_anyones_after_grace() {
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
        // At expiry the owner's own expiry deletes this host's key: the
        // link leaves it a few seconds.
        assert_eq!(l.expired_keys(100), [late]);
        assert!(l.expired_keys(100 + OWN_EXPIRY_GRACE_S - 1).is_empty());
        assert_eq!(l.expired_keys(100 + OWN_EXPIRY_GRACE_S), [own]);
        assert!(l.expired_keys(100 + EXPIRY_GRACE_S - 1).is_empty());
        assert_eq!(l.expired_keys(100 + EXPIRY_GRACE_S), [other]);
        assert!(l.expired_keys(u64::MAX).is_empty(), "permanent stays");
    }
}
