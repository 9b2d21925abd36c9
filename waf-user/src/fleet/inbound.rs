//! The bucket into this host: binds the bucket (made if missing), watches
//! it (the current values, then every change) and turns other hosts' bans
//! and deletes into owner commands of source `fleet`. A broken watch is
//! taken again after a pause; nothing here is ever retried in a loop for
//! one entry.

use std::{collections::HashMap, sync::Arc, time::Duration};

use async_nats::jetstream::{
    self,
    kv::{Entry, Operation, Store},
};
use futures_util::StreamExt as _;
use ipnet::IpNet;
use tokio::sync::watch;

use super::{
    FleetLink, bump,
    codec::{SharedBan, net_of},
};
use crate::{
    firewall::{BanDuration, BanOrder, BanSource, FirewallError, Handle},
    values::unix_now,
};

/// Longest pause between two attempts to bind or watch the bucket.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// A fleet ban whose expiry is this close to the value's is the same ban.
const SAME_EXPIRY_S: u64 = 2;

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
    };
    let mut backoff = Duration::from_millis(250);
    let mut failing = false;
    loop {
        match bind(&js, &inbound.link.cfg.bucket, inbound.link.cfg.replicas).await {
            Ok(s) => {
                store.send_replace(Some(s.clone()));
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

/// The stream's last sequence, read from the servers (None: not now).
async fn last_sequence(js: &jetstream::Context, stream: &str) -> Option<u64> {
    // One STREAM.INFO request: get_stream reads the info it returns.
    let read = async {
        let s = js.get_stream(stream).await.ok()?;
        Some(s.cached_info().state.last_sequence)
    };
    tokio::time::timeout(LAG_CHECK, read).await.ok().flatten()
}

/// The bucket, made if missing: one value per key, no max age (expiry
/// travels in the values), kept on disk. Made as its stream directly:
/// the client's own bucket creation first reads the account's limits in a
/// form nats-server 2.9 does not answer.
async fn bind(js: &jetstream::Context, bucket: &str, replicas: u8) -> Result<Store, String> {
    if let Ok(s) = js.get_key_value(bucket).await {
        return Ok(s);
    }
    use jetstream::stream::{Config, DiscardPolicy, StorageType};
    js.create_stream(Config {
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
    })
    .await
    .map_err(|e| format!("making the bucket: {e}"))?;
    js.get_key_value(bucket).await.map_err(|e| e.to_string())
}

struct Inbound {
    link: Arc<FleetLink>,
    fw: Handle,
    /// Keys refused by the allowlist, with the value's creation time: the
    /// same value seen again (a new watch) is not counted or logged again.
    refused: HashMap<String, u64>,
}

impl Inbound {
    /// Follows the bucket until the watch ends, fails or stalls: every
    /// [`LAG_CHECK`] the stream's last sequence is read from the servers;
    /// the changes not yet delivered are the lag, and a lag that did not
    /// shrink over a whole check (the watch's consumer lived on a server
    /// that died, and nothing said so) starts the watch again, from the
    /// bucket's current values.
    async fn follow(&mut self, js: &jetstream::Context, store: &Store) -> Result<(), String> {
        // The last value of every key (delete markers too: what was lifted
        // while this host was not watching), then every change.
        let mut w = store
            .watch_with_history(">")
            .await
            .map_err(|e| e.to_string())?;
        self.link.synced();
        tracing::info!(bucket = %self.link.cfg.bucket, "fleet: following the shared bans");
        let stream = format!("KV_{}", self.link.cfg.bucket);
        let mut check = tokio::time::interval(LAG_CHECK);
        check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let (mut delivered, mut behind_at) = (0u64, None);
        loop {
            tokio::select! {
                item = w.next() => {
                    let Some(item) = item else { return Ok(()) };
                    let entry = item.map_err(|e| e.to_string())?;
                    delivered = delivered.max(entry.revision);
                    self.link.synced();
                    self.apply(entry).await;
                }
                _ = check.tick() => {
                    let Some(last) = last_sequence(js, &stream).await else { continue };
                    let lag = last.saturating_sub(delivered);
                    self.link.lag.store(lag, std::sync::atomic::Ordering::Relaxed);
                    if lag == 0 {
                        behind_at = None;
                        self.link.synced();
                    } else if behind_at == Some(delivered) {
                        return Err(format!("the watch stalled {lag} changes behind"));
                    } else {
                        behind_at = Some(delivered);
                    }
                }
            }
        }
    }

    async fn apply(&mut self, e: Entry) {
        let Some(net) = net_of(&e.key) else {
            bump(&self.link.counters.bad_entries);
            tracing::debug!(key = %e.key, "fleet: a key that is no address; ignored");
            return;
        };
        match e.operation {
            Operation::Put => match SharedBan::decode(&e.value) {
                Ok(v) if v.origin.len() <= 64 => self.put(&e.key, net, v).await,
                Ok(_) | Err(_) => {
                    bump(&self.link.counters.bad_entries);
                    tracing::warn!(key = %e.key, "fleet: a value that is no ban; ignored");
                }
            },
            Operation::Delete | Operation::Purge => self.delete(&e.key, net).await,
        }
    }

    async fn put(&mut self, key: &str, net: IpNet, v: SharedBan) {
        self.link.remember(net, &v);
        if v.origin == self.link.cfg.node || !self.link.cfg.accept {
            return;
        }
        let now = unix_now();
        if v.expired(now) {
            bump(&self.link.counters.skipped_expired);
            return;
        }
        if let Some(local) = self.fw.view().ban(&net) {
            if local.meta.source != BanSource::Fleet {
                // This host's own ban stands; it is not the fleet's to change.
                return;
            }
            let same_origin = local.meta.origin.name().as_deref() == Some(v.origin.as_str());
            if same_origin && u64::from(local.meta.expires).abs_diff(v.expires) <= SAME_EXPIRY_S {
                return;
            }
        }
        if self.refused.get(key) == Some(&v.created) {
            return;
        }
        let duration = match v.expires {
            0 => BanDuration::Permanent,
            e => BanDuration::For(Duration::from_secs(e - now)),
        };
        let order = BanOrder {
            net,
            duration,
            reason: v.reason.clone(),
            source: BanSource::Fleet,
            origin: Some(v.origin.clone()),
            // This host's own bounds hold: a ban wider than its
            // max_prefix_v4/v6 (forced on another host, or a hostile
            // value) is not applied here.
            force: false,
        };
        match self.fw.ban(order).await {
            Ok(_) => bump(&self.link.counters.applied),
            Err(FirewallError::Protected { by, origin, .. }) => {
                bump(&self.link.counters.refused_allowlist);
                self.refused.insert(key.to_string(), v.created);
                tracing::warn!(
                    net = %net, from = %v.origin, allowlisted_by = %by, entry = %origin,
                    "fleet: a ban from another host refused: the allowlist protects it"
                );
            }
            Err(e @ FirewallError::TooWide { .. }) => {
                bump(&self.link.counters.refused_too_wide);
                self.refused.insert(key.to_string(), v.created);
                tracing::warn!(net = %net, from = %v.origin, error = %e, "fleet: a ban from another host refused: wider than this host allows");
            }
            Err(e) => {
                bump(&self.link.counters.errors);
                tracing::error!(net = %net, from = %v.origin, error = %e, "fleet: cannot apply a ban");
            }
        }
    }

    async fn delete(&mut self, key: &str, net: IpNet) {
        self.link.forget(net);
        self.refused.remove(key);
        let fleet_ban = self
            .fw
            .view()
            .ban(&net)
            .is_some_and(|b| b.meta.source == BanSource::Fleet);
        if !fleet_ban {
            return;
        }
        match self.fw.unban(net).await {
            Ok(_) => bump(&self.link.counters.applied),
            Err(FirewallError::NotFound(..)) => {}
            Err(e) => {
                bump(&self.link.counters.errors);
                tracing::error!(net = %net, error = %e, "fleet: cannot lift a ban the fleet lifted");
            }
        }
    }
}
