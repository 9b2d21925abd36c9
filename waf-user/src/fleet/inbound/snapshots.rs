//! Snapshots of the bucket (see [`crate::fleet::snapshot`]): reading one
//! when joining, writing one when caught up.

use std::time::Duration;

use async_nats::jetstream::{
    self,
    kv::Store,
    object_store::{ObjectMetadata, ObjectStore},
};
use tokio::io::AsyncReadExt as _;

use super::{CHUNK, Inbound, Kind, Sent};
use crate::{
    firewall::{
        BanSource, View,
        fleet::{FleetBan, FleetOp},
    },
    fleet::{
        FleetLink, Known, bump,
        codec::key_of,
        snapshot::{Builder, Snapshot},
    },
    values::unix_now,
};

/// Snapshot bans handed to the owner in one command at most.
const SNAP_CHUNK: usize = 16_384;
/// The object a snapshot is kept in, in the `<bucket>_snap` store.
const SNAP_OBJECT: &str = "bans";
/// The largest snapshot read (about 25 million bans).
const MAX_SNAPSHOT: usize = 1 << 30;
/// A snapshot is written again once the bucket changed by a tenth of its
/// keys, and at most this often by one host.
const SNAP_EVERY: Duration = Duration::from_secs(60);

/// The snapshots' object store, made if missing (as its stream, directly).
async fn snap_store(
    js: &jetstream::Context,
    bucket: &str,
    replicas: u8,
) -> Result<ObjectStore, String> {
    let name = format!("{bucket}_snap");
    if let Ok(os) = js.get_object_store(&name).await {
        return Ok(os);
    }
    js.create_object_store(jetstream::object_store::Config {
        bucket: name,
        description: Some("waf: snapshots of the fleet's bans, for joining hosts".into()),
        storage: jetstream::stream::StorageType::File,
        num_replicas: usize::from(replicas),
        ..Default::default()
    })
    .await
    .map_err(|e| e.to_string())
}

/// The object description of a snapshot of revision `rev` of the stream
/// made at `stream` (nanoseconds), and back.
fn snap_description(rev: u64, stream: i128) -> String {
    format!("rev={rev} stream={stream}")
}

fn parse_snap_description(d: &str) -> Option<(u64, i128)> {
    let mut it = d.split_whitespace();
    let rev = it.next()?.strip_prefix("rev=")?.parse().ok()?;
    let stream = it.next()?.strip_prefix("stream=")?.parse().ok()?;
    Some((rev, stream))
}

impl Inbound {
    /// Reads the latest snapshot, if there is one of this stream and not
    /// ahead of it, and applies it; returns the revision it covers.
    pub(super) async fn load_snapshot(
        &mut self,
        store: &Store,
        state: Option<(u64, i128)>,
    ) -> Option<u64> {
        let (last, made) = state?;
        let os = self.snap.clone()?;
        let t = std::time::Instant::now();
        let mut tries = 0;
        let (snap, rev, read_ms) = loop {
            tries += 1;
            // The description and the bytes of one version of the object
            // (a writer's newer snapshot replaces both at once).
            let mut obj = os.get(SNAP_OBJECT).await.ok()?;
            let usable = obj
                .info()
                .description
                .as_deref()
                .and_then(parse_snap_description)
                .filter(|(rev, stream)| *stream == made && *rev <= last && *rev > 0);
            let Some((rev, _)) = usable else {
                bump(&self.link.counters.snapshots_ignored);
                tracing::info!(
                    "fleet: the snapshot is of another stream or ahead of it; reading the bucket instead"
                );
                return None;
            };
            let size = obj.info().size;
            if size > MAX_SNAPSHOT {
                bump(&self.link.counters.snapshots_ignored);
                return None;
            }
            let read = async {
                let mut bytes = Vec::with_capacity(size);
                obj.read_to_end(&mut bytes).await.ok().map(|_| bytes)
            };
            let bytes = tokio::time::timeout(Duration::from_secs(60), read)
                .await
                .ok()?;
            let read_ms = t.elapsed().as_millis() as u64;
            let snap = match bytes {
                Some(bytes) => tokio::task::spawn_blocking(move || Snapshot::decode(&bytes))
                    .await
                    .ok()?
                    .ok(),
                None => None,
            };
            match snap {
                Some(s) if s.revision == rev => break (s, rev, read_ms),
                // A writer's newer snapshot purged this one's chunks while
                // they were read: read the new one.
                _ if tries < 2 => {
                    tracing::info!(
                        "fleet: the snapshot was replaced while read; reading the new one"
                    );
                }
                _ => {
                    bump(&self.link.counters.snapshots_ignored);
                    tracing::warn!("fleet: the snapshot does not read; reading the bucket instead");
                    return None;
                }
            }
        };
        let (bans, holes) = (snap.bans.len(), snap.holes.len());
        self.apply_snapshot(store, snap).await;
        bump(&self.link.counters.snapshots_read);
        tracing::info!(
            revision = rev,
            bans,
            holes,
            read_ms,
            took_ms = t.elapsed().as_millis() as u64,
            "fleet: joined from the bucket's snapshot"
        );
        Some(rev)
    }

    pub(super) async fn apply_snapshot(&mut self, store: &Store, mut snap: Snapshot) {
        let node = self.link.cfg.node.clone();
        let now = unix_now();
        let mine: Vec<bool> = snap.origins.iter().map(|o| *o == node).collect();
        // In address order, as written (a snapshot from another writer may
        // not be): the owner's ordered maps stay in cache.
        if !snap.bans.is_sorted_by_key(|b| b.net) {
            snap.bans.sort_unstable_by_key(|b| b.net);
        }
        // Two chunks in flight: the next is made while the owner applies
        // the last.
        let mut in_flight = std::collections::VecDeque::new();
        for chunk in snap.bans.chunks(SNAP_CHUNK) {
            let mut ops = Vec::with_capacity(chunk.len());
            let mut sent = Vec::with_capacity(chunk.len());
            {
                // Keys of the snapshot are live: `known` has them (`seen`
                // is for the deletes the watch delivers).
                let mut known = self.link.known();
                for b in chunk {
                    let own = mine[usize::from(b.origin)];
                    known.insert(
                        b.net,
                        Known {
                            mine: own,
                            expires: b.expires,
                        },
                    );
                    let expired = b.expires != 0 && u64::from(b.expires) <= now;
                    if own || !self.link.cfg.accept || expired {
                        continue;
                    }
                    let origin = &snap.origins[usize::from(b.origin)];
                    sent.push(Sent {
                        net: b.net,
                        created: u64::from(b.created),
                        origin: origin.clone(),
                        op: Kind::Ban,
                    });
                    ops.push(FleetOp::Ban(FleetBan {
                        net: b.net,
                        expires: u64::from(b.expires),
                        reason: snap.reasons[b.reason as usize].clone(),
                        origin: origin.clone(),
                        offence: b.offence,
                        adopt: false,
                    }));
                }
            }
            let fw = self.fw.clone();
            in_flight.push_back((tokio::spawn(async move { fw.fleet(ops).await }), sent));
            if in_flight.len() >= 2
                && let Some((task, sent)) = in_flight.pop_front()
            {
                self.settle(task, sent).await;
            }
        }
        while let Some((task, sent)) = in_flight.pop_front() {
            self.settle(task, sent).await;
        }
        // What the writer could not describe, one key at a time.
        let mut entries = Vec::new();
        for net in snap.holes {
            match store.entry(key_of(&net)).await {
                Ok(Some(e)) => entries.push(e),
                Ok(None) => {}
                Err(e) => {
                    bump(&self.link.counters.errors);
                    tracing::warn!(net = %net, error = %e, "fleet: cannot read a key the snapshot left out");
                }
            }
            if entries.len() >= CHUNK {
                self.apply(std::mem::take(&mut entries)).await;
            }
        }
        self.apply(entries).await;
    }

    /// Writes a snapshot of the bucket as this host holds it at
    /// `revision` (caught up, nothing behind), when the bucket is large
    /// enough and the last snapshot is missing or a tenth of the keys
    /// behind. Hosts take turns by name; a race between two writers
    /// leaves one of two good snapshots.
    pub(super) async fn maybe_snapshot(
        &mut self,
        js: &jetstream::Context,
        revision: u64,
        made: i128,
    ) {
        let min = self.link.cfg.snapshot_min_keys as usize;
        let keys = self.link.known().len();
        if min == 0 || keys < min || self.seen.is_some() {
            return;
        }
        if self.snap_checked.is_some_and(|t| t.elapsed() < SNAP_EVERY) {
            return;
        }
        self.snap_checked = Some(std::time::Instant::now());
        if self.snap.is_none() {
            let cfg = &self.link.cfg;
            match snap_store(js, &cfg.bucket, cfg.replicas).await {
                Ok(os) => self.snap = Some(os),
                Err(e) => {
                    bump(&self.link.counters.errors);
                    tracing::warn!(error = %e, "fleet: cannot make the snapshot store; joining hosts read the bucket entry by entry");
                    return;
                }
            }
        }
        let Some(os) = self.snap.clone() else { return };
        if let Ok(info) = os.info(SNAP_OBJECT).await
            && let Some((rev, stream)) =
                info.description.as_deref().and_then(parse_snap_description)
            && stream == made
            && rev <= revision
            && revision - rev < (keys as u64 / 10).max(1)
        {
            return;
        }
        let t = std::time::Instant::now();
        let link = self.link.clone();
        let view = self.fw.view();
        let built =
            tokio::task::spawn_blocking(move || build_snapshot(&link, &view, revision).encode())
                .await;
        let Ok(bytes) = built else { return };
        let size = bytes.len();
        let meta = ObjectMetadata {
            name: SNAP_OBJECT.into(),
            description: Some(snap_description(revision, made)),
            ..Default::default()
        };
        match os.put(meta, &mut bytes.as_slice()).await {
            Ok(_) => {
                bump(&self.link.counters.snapshots_written);
                tracing::info!(
                    revision,
                    keys,
                    bytes = size,
                    took_ms = t.elapsed().as_millis() as u64,
                    "fleet: wrote a snapshot of the bucket for joining hosts"
                );
            }
            Err(e) => {
                bump(&self.link.counters.errors);
                tracing::warn!(error = %e, "fleet: cannot write the snapshot");
            }
        }
    }
}

/// The bucket as this host holds it, for a snapshot: every key it knows,
/// with the ban it holds for it (its own for its keys, the fleet's for the
/// others'); a key it holds no such ban for (its allowlist refused it,
/// say) is a hole the reader fetches itself.
fn build_snapshot(link: &FleetLink, view: &View, revision: u64) -> Snapshot {
    let node = link.cfg.node.as_str();
    let mut b = Builder::new(revision, unix_now(), node);
    let known = link.known();
    for (net, k) in known.iter() {
        let added = match view.bans.get(net) {
            Some(m) if k.mine && m.source != BanSource::Fleet => b.ban(
                *net, m.expires, m.created, m.offence, m.source, node, &m.reason,
            ),
            Some(m) if !k.mine && m.source == BanSource::Fleet => match m.origin.name() {
                Some(origin) => b.ban(
                    *net, m.expires, m.created, m.offence, m.source, &origin, &m.reason,
                ),
                None => false,
            },
            _ => false,
        };
        if !added {
            b.hole(*net);
        }
    }
    b.finish()
}
