//! What a face (the proxy, the mirror) exposes to the API's `/v1/stats` and
//! `/metrics`, so the API renders them without knowing the faces.

/// The kind of a metric family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricKind {
    /// Only goes up.
    Counter,
    /// Goes up and down.
    Gauge,
}

/// One metric family of a face.
#[derive(Clone, Debug)]
pub struct Family {
    /// Name without the `_total` suffix (added for counters).
    pub name: &'static str,
    /// One line for people.
    pub help: &'static str,
    /// Counter or gauge.
    pub kind: MetricKind,
    /// Each value with its labels (none: a family of one value).
    pub values: Vec<(Vec<(&'static str, &'static str)>, u64)>,
}

impl Family {
    /// A family of one value.
    pub fn one(name: &'static str, help: &'static str, kind: MetricKind, v: u64) -> Self {
        Self {
            name,
            help,
            kind,
            values: vec![(Vec::new(), v)],
        }
    }

    /// A family of values told apart by one label.
    pub fn by(
        name: &'static str,
        help: &'static str,
        kind: MetricKind,
        label: &'static str,
        values: impl IntoIterator<Item = (&'static str, u64)>,
    ) -> Self {
        Self {
            name,
            help,
            kind,
            values: values
                .into_iter()
                .map(|(l, v)| (vec![(label, l)], v))
                .collect(),
        }
    }
}

/// A face's counters.
pub trait Telemetry: Send + Sync {
    /// Its section in `/v1/stats` (`proxy`, `mirror`).
    fn section(&self) -> &'static str;
    /// Its metric families.
    fn families(&self) -> Vec<Family>;
    /// Its counters as JSON for `/v1/stats`.
    fn json(&self) -> serde_json::Value;
}

/// What the fleet link reports (`GET /v1/fleet`, `waf fleet status`).
#[derive(
    Clone, Debug, Default, serde::Serialize, serde::Deserialize, PartialEq, Eq, utoipa::ToSchema,
)]
pub struct FleetStatus {
    /// Whether `[fleet]` is configured.
    pub enabled: bool,
    /// Whether the link to the NATS servers is up now.
    pub connected: bool,
    /// This host's name in the fleet; null: fleet off.
    pub node: Option<String>,
    /// The key-value bucket of the shared bans; null: fleet off.
    pub bucket: Option<String>,
    /// Local bans and unbans written to the bucket.
    pub published: u64,
    /// Other hosts' bans and unbans applied here.
    pub applied: u64,
    /// Other hosts' bans refused here: the allowlist protects them.
    pub refused_allowlist: u64,
    /// Other hosts' bans refused here: wider than this host's
    /// `[ban_policy] max_prefix_v4` / `max_prefix_v6`.
    pub refused_too_wide: u64,
    /// Local changes the link lost on the way (it fell behind the owner,
    /// or the outbox was full); what they changed is written after a
    /// comparison of this host's bans with the bucket.
    pub dropped: u64,
    /// Local changes waiting to be written to the bucket (the broker
    /// away, or the link catching up).
    pub outbox: u64,
    /// Strikes counted here and sent to the fleet.
    pub strikes_sent: u64,
    /// Other hosts' strikes counted here.
    pub strikes_received: u64,
    /// Bans from strikes that another host made first (this host's gave
    /// way: one attack, one ban).
    pub races_lost: u64,
    /// Snapshots of the bucket this host wrote (for joining hosts).
    pub snapshots_written: u64,
    /// Snapshots this host joined from.
    pub snapshots_read: u64,
    /// Changes in the bucket not yet applied here, at the last check
    /// (every 2 s).
    pub lag: u64,
    /// When the bucket was last read in full or followed (RFC 3339); null:
    /// never.
    pub last_sync: Option<String>,
}

/// A face that reports a fleet status.
pub trait FleetReport: Telemetry {
    /// The status now.
    fn status(&self) -> FleetStatus;
}
