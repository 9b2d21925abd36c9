//! The fleet link (a face): bans shared across hosts through a NATS
//! JetStream key-value bucket (`[fleet]`). It holds the owner's [`Handle`],
//! never the firewall.
//!
//! - Out ([`outbound`]): the owner tells every ban it makes and lifts
//!   ([`Handle::changes`], after the kernel has it); bans of the sources in
//!   `share` are put into the bucket, their unbans and expiries delete the
//!   key. Bans applied from the fleet are never published again (no echo).
//! - In ([`inbound`]): a watch delivers the bucket's current values and then
//!   every change; other hosts' bans become local bans of source `fleet`
//!   with their origin (the local allowlist still wins: refused, counted,
//!   logged), deleted keys lift the fleet bans they made.
//! - Strikes ([`strikes`]): a strike this host counts goes out on the
//!   source's subject; other hosts' strikes count in this host's window.
//!   Only the host whose own strike crosses the threshold bans, and it
//!   creates the key (another host's live ban wins a race).
//! - Join and catch-up: the watch delivers the whole bucket first; then
//!   the bucket is the truth for fleet bans (a delete wins), and what this
//!   host changed while away (its journal's bans against the bucket) is
//!   published.
//! - The broker away: local enforcement and local bans go on (nothing waits
//!   for NATS); changes to publish wait in the outbox, the client
//!   reconnects by itself and the watch is taken again.
//!
//! [`codec`] owns the keys and values; [`config`] the `[fleet]` section.

pub mod codec;
pub mod config;
mod inbound;
mod outbound;
pub mod snapshot;
mod strikes;

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, OnceLock,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use ipnet::IpNet;
use serde_json::json;

use self::{codec::SharedBan, outbound::Out};
pub use self::{config::FleetConfig, inbound::bucket_stream};
use crate::{
    firewall::Handle,
    telemetry::{Family, FleetReport, FleetStatus, MetricKind, Telemetry},
    values::{rfc3339, unix_now},
};

/// What the link counts.
#[derive(Debug, Default)]
struct Counters {
    published: AtomicU64,
    applied: AtomicU64,
    refused_allowlist: AtomicU64,
    refused_too_wide: AtomicU64,
    dropped: AtomicU64,
    strikes_sent: AtomicU64,
    strikes_unsent: AtomicU64,
    strikes_received: AtomicU64,
    strikes_bad: AtomicU64,
    races_lost: AtomicU64,
    snapshots_written: AtomicU64,
    snapshots_read: AtomicU64,
    snapshots_ignored: AtomicU64,
    skipped_expired: AtomicU64,
    bad_entries: AtomicU64,
    errors: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// What this host knows of a key in the bucket, to delete keys past their
/// expiry: whether this host made the ban, and when it ends (Unix seconds
/// in 32 bits, as the firewall keeps them; 0: permanent). Eight bytes, and
/// the address as the key: a million shared bans cost tens of megabytes,
/// not a string per key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Known {
    mine: bool,
    expires: u32,
}

/// The keys in the bucket as watched (foldhash: a join inserts a million).
type KnownKeys = HashMap<IpNet, Known, foldhash::fast::RandomState>;

/// The fleet link: its config, counters and the NATS client.
pub struct FleetLink {
    cfg: FleetConfig,
    counters: Counters,
    client: OnceLock<async_nats::Client>,
    /// Unix seconds of the last read of the bucket (0: never).
    last_sync: AtomicU64,
    /// Changes in the bucket not yet delivered to this host, at the last
    /// check.
    lag: AtomicU64,
    /// The keys in the bucket with their origin and expiry, as watched.
    known: Mutex<KnownKeys>,
    /// Deletes this host wrote whose watch events have not come back.
    echoes: Mutex<HashMap<IpNet, u32>>,
    /// Changes waiting in the outbox.
    outbox: AtomicU64,
    /// What the catch-up found to publish, to the outbox.
    found: tokio::sync::mpsc::UnboundedSender<Vec<Out>>,
}

/// How long a NATS request may take before the link counts it failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Past expiry plus this, any host deletes a key (the origin may be gone).
const EXPIRY_GRACE_S: u64 = 60;
/// Past expiry plus this, the origin deletes its own key if its expiry
/// has not (a change the link missed).
const OWN_EXPIRY_GRACE_S: u64 = 5;

impl FleetLink {
    /// Starts the link on the current tokio runtime: it follows the
    /// owner's changes from this moment on, connects in the background and
    /// never fails the daemon (a broker away is retried).
    pub fn start(cfg: &FleetConfig, fw: Handle) -> Arc<Self> {
        let changes = fw.changes();
        let (link, found) = Self::new(cfg);
        let link = Arc::new(link);
        tokio::spawn(link.clone().run(fw, changes, found));
        link
    }

    fn new(cfg: &FleetConfig) -> (Self, tokio::sync::mpsc::UnboundedReceiver<Vec<Out>>) {
        let (found, rx) = tokio::sync::mpsc::unbounded_channel();
        let link = Self {
            cfg: cfg.clone(),
            counters: Counters::default(),
            client: OnceLock::new(),
            last_sync: AtomicU64::new(0),
            lag: AtomicU64::new(0),
            known: Mutex::new(KnownKeys::default()),
            echoes: Mutex::new(HashMap::new()),
            outbox: AtomicU64::new(0),
            found,
        };
        (link, rx)
    }

    async fn run(
        self: Arc<Self>,
        fw: Handle,
        changes: tokio::sync::broadcast::Receiver<crate::firewall::BanChange>,
        found: tokio::sync::mpsc::UnboundedReceiver<Vec<Out>>,
    ) {
        let client = match self.connect().await {
            Ok(c) => c,
            Err(e) => {
                bump(&self.counters.errors);
                tracing::error!(error = %e, "fleet: cannot start the NATS client; this host stays alone");
                return;
            }
        };
        let _ = self.client.set(client.clone());
        tracing::info!(
            node = %self.cfg.node, bucket = %self.cfg.bucket, urls = ?self.cfg.url.0,
            "fleet: connecting (local enforcement never waits for it)"
        );
        if self.cfg.share_strikes && self.cfg.accept {
            tokio::spawn(strikes::run(self.clone(), client.clone(), fw.clone()));
        }
        let js = async_nats::jetstream::new(client);
        let (tx, rx) = tokio::sync::watch::channel(None);
        tokio::spawn(outbound::run(self.clone(), fw.clone(), changes, found, rx));
        inbound::run(self, js, fw, tx).await;
    }

    async fn connect(&self) -> Result<async_nats::Client, String> {
        let c = &self.cfg;
        let mut o = async_nats::ConnectOptions::new()
            .name(format!("waf {}", c.node))
            .retry_on_initial_connect()
            .max_reconnects(None)
            .connection_timeout(Duration::from_secs(3))
            .request_timeout(Some(REQUEST_TIMEOUT))
            .reconnect_delay_callback(|n| {
                Duration::from_millis((n as u64).saturating_mul(250).clamp(100, 5000))
            });
        if let Some(t) = &c.token {
            o = o.token(t.clone());
        }
        if let Some(p) = &c.creds {
            o = o
                .credentials_file(p)
                .await
                .map_err(|e| format!("fleet.creds {}: {e}", p.display()))?;
        }
        if let Some(ca) = &c.tls_ca {
            o = o.add_root_certificates(ca.clone()).require_tls(true);
        }
        if let (Some(cert), Some(key)) = (&c.tls_cert, &c.tls_key) {
            o = o
                .add_client_certificate(cert.clone(), key.clone())
                .require_tls(true);
        }
        o.connect(c.url.0.clone()).await.map_err(|e| e.to_string())
    }

    fn connected(&self) -> bool {
        self.client
            .get()
            .is_some_and(|c| c.connection_state() == async_nats::connection::State::Connected)
    }

    fn synced(&self) {
        self.last_sync.store(unix_now(), Ordering::Relaxed);
    }

    fn known(&self) -> std::sync::MutexGuard<'_, KnownKeys> {
        self.known.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Notes a value seen in the bucket.
    fn remember(&self, net: IpNet, v: &SharedBan) {
        let k = Known {
            mine: v.origin == self.cfg.node,
            expires: v.expires.min(u64::from(u32::MAX)) as u32,
        };
        self.known().insert(net, k);
    }

    /// Notes a ban of this host's written into the bucket.
    fn remember_own(&self, net: IpNet, expires: u32) {
        self.known().insert(
            net,
            Known {
                mine: true,
                expires,
            },
        );
    }

    /// Whether the link has read the whole bucket once.
    fn synced_once(&self) -> bool {
        self.last_sync.load(Ordering::Relaxed) != 0
    }

    /// Notes a key deleted from the bucket.
    fn forget(&self, net: IpNet) {
        self.known().remove(&net);
    }

    /// Notes a delete this host is about to write.
    fn expect_echo(&self, net: IpNet) {
        let mut e = self.echoes.lock().unwrap_or_else(|p| p.into_inner());
        *e.entry(net).or_default() += 1;
    }

    /// Whether a delete of `net` is this host's own coming back (taken
    /// out of what is expected).
    fn echo(&self, net: IpNet) -> bool {
        let mut e = self.echoes.lock().unwrap_or_else(|p| p.into_inner());
        match e.get_mut(&net) {
            Some(n) if *n > 1 => {
                *n -= 1;
                true
            }
            Some(_) => {
                e.remove(&net);
                true
            }
            None => false,
        }
    }

    /// Hands what the catch-up found to publish to the outbox.
    fn send_out(&self, outs: Vec<Out>) {
        if !outs.is_empty() {
            // Err: the outbox is gone (the daemon is stopping).
            let _ = self.found.send(outs);
        }
    }

    /// Keys whose ban ran out that this host should delete: its own a
    /// few seconds past expiry (the owner's expiry deletes them at once;
    /// this is for one it missed), any host's past expiry plus a grace
    /// period. Taken out of what is known (the delete's own watch event
    /// would do it too).
    fn expired_keys(&self, now: u64) -> Vec<IpNet> {
        let mut known = self.known();
        let due: Vec<IpNet> = known
            .iter()
            .filter(|(_, k)| {
                let e = u64::from(k.expires);
                let grace = if k.mine {
                    OWN_EXPIRY_GRACE_S
                } else {
                    EXPIRY_GRACE_S
                };
                e != 0 && e.saturating_add(grace) <= now
            })
            .map(|(net, _)| *net)
            .collect();
        for net in &due {
            known.remove(net);
        }
        due
    }

    fn count(&self, c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
}

impl FleetReport for FleetLink {
    fn status(&self) -> FleetStatus {
        let c = &self.counters;
        let last = self.last_sync.load(Ordering::Relaxed);
        FleetStatus {
            enabled: true,
            connected: self.connected(),
            node: Some(self.cfg.node.clone()),
            bucket: Some(self.cfg.bucket.clone()),
            published: self.count(&c.published),
            applied: self.count(&c.applied),
            refused_allowlist: self.count(&c.refused_allowlist),
            refused_too_wide: self.count(&c.refused_too_wide),
            dropped: self.count(&c.dropped),
            outbox: self.outbox.load(Ordering::Relaxed),
            strikes_sent: self.count(&c.strikes_sent),
            strikes_received: self.count(&c.strikes_received),
            races_lost: self.count(&c.races_lost),
            snapshots_written: self.count(&c.snapshots_written),
            snapshots_read: self.count(&c.snapshots_read),
            lag: self.lag.load(Ordering::Relaxed),
            last_sync: (last != 0).then(|| rfc3339(last)),
        }
    }
}

impl Telemetry for FleetLink {
    fn section(&self) -> &'static str {
        "fleet"
    }

    fn families(&self) -> Vec<Family> {
        let c = &self.counters;
        let k = MetricKind::Counter;
        vec![
            Family::one(
                "waf_fleet_connected",
                "1 while the link to the NATS servers is up.",
                MetricKind::Gauge,
                u64::from(self.connected()),
            ),
            Family::one(
                "waf_fleet_published",
                "Local bans and unbans written to the fleet's bucket.",
                k,
                self.count(&c.published),
            ),
            Family::one(
                "waf_fleet_applied",
                "Other hosts' bans and unbans applied here.",
                k,
                self.count(&c.applied),
            ),
            Family::one(
                "waf_fleet_refused_allowlist",
                "Other hosts' bans refused: the local allowlist protects them.",
                k,
                self.count(&c.refused_allowlist),
            ),
            Family::one(
                "waf_fleet_lag",
                "Changes in the bucket not yet applied here, at the last check.",
                MetricKind::Gauge,
                self.lag.load(Ordering::Relaxed),
            ),
            Family::one(
                "waf_fleet_refused_too_wide",
                "Other hosts' bans refused: wider than this host's max_prefix.",
                k,
                self.count(&c.refused_too_wide),
            ),
            Family::one(
                "waf_fleet_dropped",
                "Local changes the link lost on the way (then found by comparing its bans with the bucket).",
                k,
                self.count(&c.dropped),
            ),
            Family::one(
                "waf_fleet_outbox",
                "Local changes waiting to be written to the bucket.",
                MetricKind::Gauge,
                self.outbox.load(Ordering::Relaxed),
            ),
            Family::by(
                "waf_fleet_strikes",
                "Strikes shared with the fleet, by what happened to them.",
                k,
                "what",
                [
                    ("sent", self.count(&c.strikes_sent)),
                    ("unsent", self.count(&c.strikes_unsent)),
                    ("received", self.count(&c.strikes_received)),
                    ("bad", self.count(&c.strikes_bad)),
                ],
            ),
            Family::by(
                "waf_fleet_snapshots",
                "Snapshots of the bucket, by what this host did with them.",
                k,
                "what",
                [
                    ("written", self.count(&c.snapshots_written)),
                    ("read", self.count(&c.snapshots_read)),
                    ("ignored", self.count(&c.snapshots_ignored)),
                ],
            ),
            Family::one(
                "waf_fleet_races_lost",
                "Bans from strikes another host made first (this host's gave way).",
                k,
                self.count(&c.races_lost),
            ),
            Family::by(
                "waf_fleet_ignored",
                "Bucket entries not applied, by why.",
                k,
                "why",
                [
                    ("expired", self.count(&c.skipped_expired)),
                    ("bad_entry", self.count(&c.bad_entries)),
                ],
            ),
            Family::one(
                "waf_fleet_errors",
                "NATS requests and owner commands of the link that failed.",
                k,
                self.count(&c.errors),
            ),
        ]
    }

    fn json(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self.status()).unwrap_or_default();
        let c = &self.counters;
        v["skipped_expired"] = json!(self.count(&c.skipped_expired));
        v["bad_entries"] = json!(self.count(&c.bad_entries));
        v["errors"] = json!(self.count(&c.errors));
        v["snapshots_ignored"] = json!(self.count(&c.snapshots_ignored));
        v
    }
}
