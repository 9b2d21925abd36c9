//! The bucket into this host: binds the bucket (made if missing), watches
//! it (the current values, then every change) and turns other hosts' bans
//! and deletes into owner commands of source `fleet`. A broken watch is
//! taken again after a pause; nothing here is ever retried in a loop for
//! one entry.

mod snapshots;

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::Duration,
};

use async_nats::jetstream::{
    self,
    kv::{Entry, Operation, Store},
    object_store::ObjectStore,
};
use futures_util::StreamExt as _;
use ipnet::IpNet;
use tokio::sync::watch;

use super::{
    FleetLink, Out, bump,
    codec::{SharedBan, key_of, net_of},
};
use crate::{
    firewall::{BanSource, FirewallError, Handle, fleet::FleetOp},
    values::unix_now,
};

/// Longest pause between two attempts to bind or watch the bucket.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Bucket entries handed to the owner in one command at most.
const CHUNK: usize = 4096;

/// Binds and watches the bucket for as long as the daemon runs; hands the
/// bound bucket to the publishing side through `store`.
pub(super) async fn run(
    link: Arc<FleetLink>,
    js: jetstream::Context,
    fw: Handle,
    store: watch::Sender<Option<Store>>,
) {
    let mut inbound = Inbound {
        link,
        fw,
        refused: HashMap::new(),
        seen: None,
        from_snapshot: false,
        snap: None,
        snap_checked: None,
    };
    let mut backoff = Duration::from_millis(250);
    let mut failing = false;
    loop {
        match bind(&js, &inbound.link.cfg.bucket, inbound.link.cfg.replicas).await {
            Ok(s) => {
                store.send_replace(Some(s.clone()));
                if inbound.snap.is_none() {
                    // Made by the first host that writes a snapshot.
                    let name = format!("{}_snap", inbound.link.cfg.bucket);
                    inbound.snap = js.get_object_store(&name).await.ok();
                }
                match inbound.follow(&js, &s).await {
                    Ok(()) => tracing::warn!("fleet: the bucket's watch ended; watching again"),
                    Err(e) => {
                        tracing::warn!(error = %e, "fleet: the bucket's watch failed; watching again")
                    }
                }
                failing = false;
                backoff = Duration::from_millis(250);
            }
            Err(e) => {
                if !failing {
                    tracing::warn!(
                        error = %e, bucket = %inbound.link.cfg.bucket,
                        "fleet: cannot reach the bucket; local bans go on, retrying"
                    );
                }
                failing = true;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
        tokio::time::sleep(backoff).await;
    }
}

/// How often the watch's lag is read.
const LAG_CHECK: Duration = Duration::from_secs(2);

/// The stream's last sequence and when it was made (its identity: a
/// stream made again starts its sequences again), read from the servers
/// (None: not now).
async fn stream_state(js: &jetstream::Context, stream: &str) -> Option<(u64, i128)> {
    // One STREAM.INFO request: get_stream reads the info it returns.
    let read = async {
        let s = js.get_stream(stream).await.ok()?;
        let info = s.cached_info();
        Some((
            info.state.last_sequence,
            info.created.unix_timestamp_nanos(),
        ))
    };
    tokio::time::timeout(LAG_CHECK, read).await.ok().flatten()
}

/// The stream of the bucket `bucket` as this link makes it: one value per
/// key, no max age (expiry travels in the values), kept on disk.
pub fn bucket_stream(bucket: &str, replicas: u8) -> jetstream::stream::Config {
    use jetstream::stream::{Config, DiscardPolicy, StorageType};
    Config {
        name: format!("KV_{bucket}"),
        description: Some("waf: bans shared by the fleet".into()),
        subjects: vec![format!("$KV.{bucket}.>")],
        max_messages_per_subject: 1,
        max_messages: -1,
        max_bytes: -1,
        max_message_size: -1,
        storage: StorageType::File,
        num_replicas: usize::from(replicas),
        discard: DiscardPolicy::New,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        ..Default::default()
    }
}

/// The bucket, made if missing: one value per key, no max age (expiry
/// travels in the values), kept on disk. Made as its stream directly:
/// the client's own bucket creation first reads the account's limits in a
/// form nats-server 2.9 does not answer.
async fn bind(js: &jetstream::Context, bucket: &str, replicas: u8) -> Result<Store, String> {
    if let Ok(s) = js.get_key_value(bucket).await {
        return Ok(s);
    }
    js.create_stream(bucket_stream(bucket, replicas))
        .await
        .map_err(|e| format!("making the bucket: {e}"))?;
    js.get_key_value(bucket).await.map_err(|e| e.to_string())
}

struct Inbound {
    link: Arc<FleetLink>,
    fw: Handle,
    /// Keys refused by the allowlist, with the value's creation time: the
    /// same value seen again (a new watch) is not counted or logged again.
    refused: HashMap<IpNet, u64>,
    /// While a watch catches up: every key it delivered (values and
    /// deletes), to find what this host holds that the bucket does not.
    seen: Option<HashSet<IpNet>>,
    /// This catch-up started from a snapshot (deletes older than it were
    /// not delivered).
    from_snapshot: bool,
    /// Where snapshots are kept (None: not written or read).
    snap: Option<ObjectStore>,
    /// When this host last considered writing a snapshot.
    snap_checked: Option<std::time::Instant>,
}

/// What the owner answers to a chunk of ops.
type FleetResults = Result<Vec<Result<bool, FirewallError>>, FirewallError>;
/// A chunk of ops on its way to the owner.
type FleetTask = tokio::task::JoinHandle<FleetResults>;

/// What the owner said of one op, and what it was about.
struct Sent {
    net: IpNet,
    created: u64,
    origin: String,
    op: Kind,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Ban,
    Lift,
}

impl Inbound {
    /// Follows the bucket until the watch ends, fails or stalls.
    ///
    /// The watch first delivers the last value of every key (delete
    /// markers too: what was lifted while this host was not watching),
    /// then every change; entries go to the owner in chunks, one command
    /// each. Once it has caught up (the stream's last sequence at the
    /// start delivered), [`Inbound::reconcile`] compares what this host
    /// holds with the bucket. Every [`LAG_CHECK`] the stream's last
    /// sequence is read again: the changes not yet delivered are the lag,
    /// and a lag that did not shrink over a whole check (the watch's
    /// consumer lived on a server that died, and nothing said so) starts
    /// the watch again.
    async fn follow(&mut self, js: &jetstream::Context, store: &Store) -> Result<(), String> {
        let stream = format!("KV_{}", self.link.cfg.bucket);
        let state = stream_state(js, &stream).await;
        let target = state.map(|(last, _)| last);
        let started = std::time::Instant::now();
        self.seen = Some(HashSet::new());
        self.from_snapshot = false;
        let from = match self.load_snapshot(store, state).await {
            Some(rev) => {
                self.from_snapshot = true;
                rev
            }
            None => 0,
        };
        let w = if from > 0 {
            store.watch_from_revision(">", from + 1).await
        } else {
            store.watch_with_history(">").await
        };
        let mut w = w.map_err(|e| e.to_string())?.ready_chunks(CHUNK);
        tracing::info!(bucket = %self.link.cfg.bucket, from_revision = from + 1, "fleet: following the shared bans");
        if target.is_some_and(|t| t <= from) {
            self.caught_up(store, started).await;
        }
        let mut check = tokio::time::interval(LAG_CHECK);
        check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        check.tick().await;
        let (mut delivered, mut behind_at) = (from, None);
        loop {
            tokio::select! {
                items = w.next() => {
                    let Some(items) = items else { return Ok(()) };
                    let mut entries = Vec::with_capacity(items.len());
                    let mut failed = None;
                    for item in items {
                        match item {
                            Ok(e) => entries.push(e),
                            Err(e) => failed = Some(e.to_string()),
                        }
                    }
                    let last = entries.last().map(|e| (e.revision, e.delta));
                    self.apply(entries).await;
                    if let Some((revision, delta)) = last {
                        delivered = delivered.max(revision);
                        self.link.synced();
                        let done = delta == 0 || target.is_some_and(|t| revision >= t);
                        if done && self.seen.is_some() {
                            self.caught_up(store, started).await;
                        }
                    }
                    if let Some(e) = failed {
                        return Err(e);
                    }
                }
                _ = check.tick() => {
                    let Some((last, made)) = stream_state(js, &stream).await else { continue };
                    let lag = last.saturating_sub(delivered);
                    self.link.lag.store(lag, std::sync::atomic::Ordering::Relaxed);
                    if lag == 0 {
                        behind_at = None;
                        self.link.synced();
                        if self.seen.is_some() {
                            self.caught_up(store, started).await;
                        }
                        self.maybe_snapshot(js, delivered, made).await;
                    } else if behind_at == Some(delivered) {
                        return Err(format!("the watch stalled {lag} changes behind"));
                    } else {
                        behind_at = Some(delivered);
                    }
                }
            }
        }
    }

    /// Turns a chunk of entries into owner ops, in order, and counts what
    /// the owner did with them.
    async fn apply(&mut self, entries: Vec<Entry>) {
        let shared = self.link.cfg.shared_bits();
        let mut ops = Vec::with_capacity(entries.len());
        let mut sent = Vec::with_capacity(entries.len());
        let now = unix_now();
        for e in entries {
            let Some(net) = net_of(&e.key) else {
                bump(&self.link.counters.bad_entries);
                tracing::debug!(key = %e.key, "fleet: a key that is no address; ignored");
                continue;
            };
            if let Some(seen) = &mut self.seen {
                seen.insert(net);
            }
            match e.operation {
                Operation::Put => {
                    let v = match SharedBan::decode(&e.value) {
                        Ok(v) if !v.origin.is_empty() && v.origin.len() <= 64 => v,
                        Ok(_) | Err(_) => {
                            bump(&self.link.counters.bad_entries);
                            tracing::warn!(key = %e.key, "fleet: a value that is no ban; ignored");
                            continue;
                        }
                    };
                    self.link.remember(net, &v);
                    if v.origin == self.link.cfg.node || !self.link.cfg.accept {
                        continue;
                    }
                    if v.expired(now) {
                        bump(&self.link.counters.skipped_expired);
                        continue;
                    }
                    if self.refused.get(&net) == Some(&v.created) {
                        continue;
                    }
                    sent.push(Sent {
                        net,
                        created: v.created,
                        origin: v.origin.clone(),
                        op: Kind::Ban,
                    });
                    ops.push(FleetOp::Ban(v.into_fleet_ban(net, false)));
                }
                Operation::Delete | Operation::Purge => {
                    self.link.forget(net);
                    self.refused.remove(&net);
                    if !self.link.cfg.accept {
                        continue;
                    }
                    // This host's own delete coming back lifts nothing of
                    // its own (it may have banned the source again since).
                    let own_sources = if self.link.echo(net) { 0 } else { shared };
                    let deleted_at = u64::try_from(e.created.unix_timestamp()).unwrap_or(0);
                    sent.push(Sent {
                        net,
                        created: 0,
                        origin: String::new(),
                        op: Kind::Lift,
                    });
                    ops.push(FleetOp::Lift {
                        net,
                        deleted_at,
                        own_sources,
                    });
                }
            }
        }
        self.send(ops, sent).await;
    }

    /// Hands ops to the owner and counts what it did with them.
    async fn send(&mut self, ops: Vec<FleetOp>, sent: Vec<Sent>) {
        if ops.is_empty() {
            return;
        }
        let results = self.fw.fleet(ops).await;
        self.settle_results(results, sent);
    }

    /// Counts what the owner did with ops sent by a task.
    async fn settle(&mut self, task: FleetTask, sent: Vec<Sent>) {
        let results = task.await.unwrap_or(Err(FirewallError::Stopped));
        self.settle_results(results, sent);
    }

    fn settle_results(&mut self, results: FleetResults, sent: Vec<Sent>) {
        let results = match results {
            Ok(r) => r,
            Err(e) => {
                bump(&self.link.counters.errors);
                tracing::error!(error = %e, "fleet: the firewall did not take the bucket's changes");
                return;
            }
        };
        let (mut bans, mut lifts) = (0usize, 0usize);
        let mut first = None;
        for (s, r) in sent.into_iter().zip(results) {
            if matches!(r, Ok(true)) {
                match s.op {
                    Kind::Ban => bans += 1,
                    Kind::Lift => lifts += 1,
                }
                first.get_or_insert((s.net, s.origin.clone()));
            }
            self.outcome(s, r);
        }
        if let Some((net, origin)) = first {
            tracing::info!(bans, lifts, first = %net, from = %origin, "fleet: applied the bucket's changes");
        }
    }

    fn outcome(&mut self, s: Sent, r: Result<bool, FirewallError>) {
        let c = &self.link.counters;
        match r {
            Ok(true) => bump(&c.applied),
            Ok(false) => {}
            Err(FirewallError::Protected { by, origin, .. }) => {
                bump(&c.refused_allowlist);
                self.refused.insert(s.net, s.created);
                tracing::warn!(
                    net = %s.net, from = %s.origin, allowlisted_by = %by, entry = %origin,
                    "fleet: a ban from another host refused: the allowlist protects it"
                );
            }
            Err(e @ FirewallError::TooWide { .. }) => {
                bump(&c.refused_too_wide);
                self.refused.insert(s.net, s.created);
                tracing::warn!(net = %s.net, from = %s.origin, error = %e, "fleet: a ban from another host refused: wider than this host allows");
            }
            Err(FirewallError::NotFound(..)) if s.op == Kind::Lift => {}
            Err(e) => {
                bump(&c.errors);
                tracing::error!(net = %s.net, from = %s.origin, error = %e, "fleet: cannot apply the bucket's change");
            }
        }
    }

    /// The watch has delivered the whole bucket: the bucket is the truth
    /// for fleet bans, and this host publishes what it changed while away.
    /// - a fleet ban whose key the bucket does not hold at all (purged,
    ///   or a new bucket) is lifted (deletes were applied as they came);
    ///   so is a ban found in the kernel map with no journal record (this
    ///   host lost its journal: the bucket knows better);
    /// - this host's own ban of a shared source that the bucket does not
    ///   hold (made while away, or lost from memory by a restart before it
    ///   was written), or holds with another expiry, is put;
    /// - a key of this host's whose ban it no longer holds (lifted while
    ///   away) is deleted.
    ///
    /// After a snapshot, deletes older than it were not delivered: this
    /// host's own bans the bucket did not mention are read one by one (a
    /// delete there lifts them, by the same rule as a delete delivered).
    async fn caught_up(&mut self, store: &Store, started: std::time::Instant) {
        let Some(seen) = self.seen.take() else { return };
        let view = self.fw.view();
        let mut lifts = Vec::new();
        let mut lifted = HashSet::new();
        if self.link.cfg.accept {
            let known = self.link.known();
            for (net, meta) in view.bans.iter() {
                if matches!(meta.source, BanSource::Fleet | BanSource::Adopted)
                    && !known.contains_key(net)
                    && !seen.contains(net)
                {
                    lifted.insert(*net);
                    lifts.push(FleetOp::Lift {
                        net: *net,
                        deleted_at: u64::MAX,
                        own_sources: 0,
                    });
                }
            }
        }
        let from_snapshot = self.from_snapshot;
        let (mut outbox, unsure) = self.link.own_outs(&view, |net| {
            (from_snapshot && !seen.contains(net)) || lifted.contains(net)
        });
        // A ban lifted here (an adopted one the bucket does not hold) is
        // not published: neither written nor read.
        let unsure: Vec<IpNet> = unsure.into_iter().filter(|n| !lifted.contains(n)).collect();
        let mut entries = Vec::new();
        for net in unsure {
            match store.entry(key_of(&net)).await {
                Ok(Some(e)) => entries.push(e),
                Ok(None) => {
                    if let Some(meta) = view.bans.get(&net) {
                        outbox.push(Out::ban(net, meta, &self.link.cfg.node));
                    }
                }
                Err(e) => {
                    bump(&self.link.counters.errors);
                    tracing::warn!(net = %net, error = %e, "fleet: cannot read the key of a ban of this host");
                }
            }
        }
        self.apply(entries).await;
        let (n_lift, n_out) = (lifts.len(), outbox.len());
        if !lifts.is_empty() {
            match self.fw.fleet(lifts).await {
                Ok(r) => {
                    let lifted = r.iter().filter(|r| matches!(r, Ok(true))).count();
                    self.link
                        .counters
                        .applied
                        .fetch_add(lifted as u64, std::sync::atomic::Ordering::Relaxed);
                }
                Err(e) => {
                    bump(&self.link.counters.errors);
                    tracing::error!(error = %e, "fleet: cannot lift the fleet bans the bucket no longer holds");
                }
            }
        }
        self.link.send_out(outbox);
        self.link.synced();
        tracing::info!(
            keys = seen.len(),
            lifted = n_lift,
            to_publish = n_out,
            took_ms = started.elapsed().as_millis() as u64,
            "fleet: caught up with the bucket"
        );
    }
}
