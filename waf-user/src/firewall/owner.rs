//! The firewall's owner: one thread that holds the [`Firewall`] (and with
//! it the data plane) and the [`Journal`], and takes commands from every
//! face through a cloneable [`Handle`]. Nothing else can reach the maps.
//!
//! - Commands (ban, unban, lists, modes, reload, import) come over a
//!   bounded channel, in batches; each batch's changes go to the kernel at
//!   once, then to the journal as one group commit; callers get their reply
//!   once the batch is durable.
//! - Strikes come over their own bounded channel. A face never waits for
//!   it: a strike that finds it full is dropped and counted
//!   ([`StrikeSink::dropped`]).
//! - After every batch the owner publishes a [`View`]; readers take it
//!   without waiting, and tells the bans it made and lifted (but not
//!   those the fleet made itself) to whoever follows them ([`Handle::changes`], the fleet link): a bounded
//!   broadcast that never waits (a follower that falls behind loses the
//!   oldest changes and is told how many).

use std::{
    collections::VecDeque,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use arc_swap::ArcSwap;
use ipnet::IpNet;
use tokio::sync::{broadcast, mpsc, oneshot};

use super::{
    bans::{BanDuration, Firewall},
    error::FirewallError,
    fleet::FleetOp,
    journal::{Ack, Journal},
    lists::Modes,
    restore::FirewallConfig,
    types::{Ban, BanChange, BanSource, ListKind, ListView, Strike},
    view::View,
};

type Reply<T> = oneshot::Sender<Result<T, FirewallError>>;

/// Bans to import, already validated by the caller.
#[derive(Debug, Default)]
pub struct ImportOrder {
    /// Allowlist entries and comments.
    pub allow: Vec<(IpNet, String)>,
    /// Blocklist entries and comments.
    pub block: Vec<(IpNet, String)>,
    /// Bans, their remaining durations and reasons.
    pub bans: Vec<(IpNet, BanDuration, String)>,
}

/// What an import did.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct ImportReport {
    /// Bans made.
    pub bans: u64,
    /// Allowlist entries added.
    pub allowlist: u64,
    /// Blocklist entries added.
    pub blocklist: u64,
    /// What was skipped, and why.
    pub skipped: Vec<String>,
}

/// A ban to make.
#[derive(Debug, Clone)]
pub struct BanOrder {
    /// Address or prefix.
    pub net: IpNet,
    /// How long.
    pub duration: BanDuration,
    /// Why.
    pub reason: String,
    /// Who.
    pub source: BanSource,
    /// The fleet host that made it (fleet bans).
    pub origin: Option<String>,
    /// Wider than the policy allows, on purpose.
    pub force: bool,
}

enum Command {
    Ban(BanOrder, Reply<Ban>),
    Unban(IpNet, Reply<Ban>),
    ListAdd(ListKind, IpNet, String, Reply<ListView>),
    ListRemove(ListKind, IpNet, Reply<()>),
    Modes(Option<bool>, Option<bool>, bool, Reply<Modes>),
    Reload(Box<FirewallConfig>, Reply<()>),
    Import(Box<ImportOrder>, Reply<ImportReport>),
    Fleet(Vec<FleetOp>, Reply<Vec<Result<bool, FirewallError>>>),
    Flush(Reply<()>),
    Rate(std::net::IpAddr, Reply<Option<waf_common::RateState>>),
    Stop(oneshot::Sender<()>),
}

/// Where faces send strikes: never blocks.
#[derive(Clone)]
pub struct StrikeSink {
    tx: mpsc::Sender<Strike>,
    dropped: Arc<AtomicU64>,
}

impl StrikeSink {
    /// Sends a strike; false (and counted) when the owner is too far
    /// behind to take it now.
    pub fn strike(&self, s: Strike) -> bool {
        match self.tx.try_send(s) {
            Ok(()) => true,
            Err(_) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// Strikes dropped because the channel was full (or the owner gone).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// Verdict-to-kernel times of the last bans made from strikes.
#[derive(Debug, Default)]
pub struct BanLatencies(Mutex<VecDeque<Duration>>);

impl BanLatencies {
    fn push(&self, d: Duration) {
        let mut q = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if q.len() >= 4096 {
            q.pop_front();
        }
        q.push_back(d);
    }

    /// The times recorded, oldest first.
    pub fn snapshot(&self) -> Vec<Duration> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .copied()
            .collect()
    }
}

/// A cloneable handle to the owner: commands, strikes, and the view.
#[derive(Clone)]
pub struct Handle {
    cmds: mpsc::Sender<Command>,
    strikes: StrikeSink,
    view: Arc<ArcSwap<View>>,
    latencies: Arc<BanLatencies>,
    changes: broadcast::Sender<BanChange>,
}

/// Commands waiting at most; a caller beyond waits for room (async).
const COMMAND_QUEUE: usize = 1024;
/// Strikes waiting at most; beyond, they are dropped and counted.
const STRIKE_QUEUE: usize = 65_536;
/// Messages handled in one batch at most.
const BATCH: usize = 4096;
/// Ban changes a follower may lag behind at most; beyond, it loses the
/// oldest (and is told how many).
const CHANGE_QUEUE: usize = 16_384;

impl Handle {
    /// The view the owner published last.
    pub fn view(&self) -> Arc<View> {
        self.view.load_full()
    }

    /// Where faces send strikes.
    pub fn strikes(&self) -> StrikeSink {
        self.strikes.clone()
    }

    /// Verdict-to-kernel times of bans made from strikes.
    pub fn latencies(&self) -> &BanLatencies {
        &self.latencies
    }

    /// Follows the bans made and lifted from now on (each told once it is
    /// in the kernel). The owner never waits for a follower: one that lags
    /// more than a bounded number of changes behind gets
    /// `RecvError::Lagged` with the count it lost.
    pub fn changes(&self) -> broadcast::Receiver<BanChange> {
        self.changes.subscribe()
    }

    async fn ask<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, FirewallError> {
        let (tx, rx) = oneshot::channel();
        self.cmds
            .send(make(tx))
            .await
            .map_err(|_| FirewallError::Stopped)?;
        rx.await.map_err(|_| FirewallError::Stopped)?
    }

    /// Bans (see [`Firewall::ban`]).
    pub async fn ban(&self, order: BanOrder) -> Result<Ban, FirewallError> {
        self.ask(|r| Command::Ban(order, r)).await
    }

    /// Lifts a ban.
    pub async fn unban(&self, net: IpNet) -> Result<Ban, FirewallError> {
        self.ask(|r| Command::Unban(net, r)).await
    }

    /// Adds a list entry.
    pub async fn list_add(
        &self,
        kind: ListKind,
        net: IpNet,
        comment: String,
    ) -> Result<ListView, FirewallError> {
        self.ask(|r| Command::ListAdd(kind, net, comment, r)).await
    }

    /// Removes an API list entry.
    pub async fn list_remove(&self, kind: ListKind, net: IpNet) -> Result<(), FirewallError> {
        self.ask(|r| Command::ListRemove(kind, net, r)).await
    }

    /// Switches modes.
    pub async fn set_modes(
        &self,
        monitor: Option<bool>,
        emergency: Option<bool>,
        force: bool,
    ) -> Result<Modes, FirewallError> {
        self.ask(|r| Command::Modes(monitor, emergency, force, r))
            .await
    }

    /// Applies a reloaded config.
    pub async fn reload(&self, cfg: FirewallConfig) -> Result<(), FirewallError> {
        self.ask(|r| Command::Reload(Box::new(cfg), r)).await
    }

    /// Imports bans and list entries.
    pub async fn import(&self, order: ImportOrder) -> Result<ImportReport, FirewallError> {
        self.ask(|r| Command::Import(Box::new(order), r)).await
    }

    /// Does what the fleet asks, in order, in one command (see
    /// [`Firewall::fleet`]): one result per op, Ok(true) where something
    /// changed.
    pub async fn fleet(
        &self,
        ops: Vec<FleetOp>,
    ) -> Result<Vec<Result<bool, FirewallError>>, FirewallError> {
        self.ask(|r| Command::Fleet(ops, r)).await
    }

    /// Waits until everything sent before is in the kernel and durable.
    pub async fn flush(&self) -> Result<(), FirewallError> {
        self.ask(Command::Flush).await
    }

    /// The kernel's rate state for `addr`'s source key (IPv6: its prefix).
    pub async fn rate_state(
        &self,
        addr: std::net::IpAddr,
    ) -> Result<Option<waf_common::RateState>, FirewallError> {
        self.ask(|r| Command::Rate(addr, r)).await
    }

    /// Stops the owner (after a last commit); returns once it has.
    pub async fn stop(&self) {
        let (tx, rx) = oneshot::channel();
        if self.cmds.send(Command::Stop(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }
}

/// The owner thread.
pub struct Owner {
    fw: Firewall,
    journal: Journal,
    cmds: mpsc::Receiver<Command>,
    strikes: mpsc::Receiver<Strike>,
    dropped: Arc<AtomicU64>,
    view: Arc<ArcSwap<View>>,
    latencies: Arc<BanLatencies>,
    changes: broadcast::Sender<BanChange>,
    generation: u64,
    started: Instant,
}

/// Starts the owner on a thread of its own; returns its handle and the
/// thread (which ends after [`Handle::stop`]).
pub fn spawn(
    fw: Firewall,
    journal: Journal,
) -> std::io::Result<(Handle, std::thread::JoinHandle<()>)> {
    let (ctx, crx) = mpsc::channel(COMMAND_QUEUE);
    let (stx, srx) = mpsc::channel(STRIKE_QUEUE);
    let dropped = Arc::new(AtomicU64::new(0));
    let view = Arc::new(ArcSwap::from_pointee(View::default()));
    let latencies = Arc::new(BanLatencies::default());
    let (changes, _) = broadcast::channel(CHANGE_QUEUE);
    let mut owner = Owner {
        fw,
        journal,
        cmds: crx,
        strikes: srx,
        dropped: dropped.clone(),
        view: view.clone(),
        latencies: latencies.clone(),
        changes: changes.clone(),
        generation: 0,
        started: Instant::now(),
    };
    owner.commit(Vec::new());
    owner.publish();
    let thread = std::thread::Builder::new()
        .name("waf-owner".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build();
            match rt {
                Ok(rt) => rt.block_on(owner.run()),
                Err(e) => tracing::error!(error = %e, "cannot start the firewall owner"),
            }
        })?;
    Ok((
        Handle {
            cmds: ctx,
            strikes: StrikeSink { tx: stx, dropped },
            view,
            latencies,
            changes,
        },
        thread,
    ))
}

/// A reply to send once the batch is durable.
fn ack<T: Send + 'static>(reply: Reply<T>, result: Result<T, FirewallError>) -> Ack {
    Box::new(move |_durable| {
        let _ = reply.send(result);
    })
}

impl Owner {
    async fn run(mut self) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut ticks = 0u64;
        loop {
            let mut cmds = Vec::new();
            let mut strikes = Vec::new();
            tokio::select! {
                biased;
                c = self.cmds.recv() => match c {
                    Some(c) => cmds.push(c),
                    None => break,
                },
                Some(s) = self.strikes.recv() => strikes.push(s),
                _ = tick.tick() => {
                    ticks += 1;
                    self.periodic(ticks);
                }
            }
            while cmds.len() + strikes.len() < BATCH {
                if let Ok(c) = self.cmds.try_recv() {
                    cmds.push(c);
                } else if let Ok(s) = self.strikes.try_recv() {
                    strikes.push(s);
                } else {
                    break;
                }
            }
            let mut acks = Vec::new();
            let mut stop = None;
            for c in cmds {
                match c {
                    Command::Stop(tx) => stop = Some(tx),
                    c => self.handle(c, &mut acks),
                }
            }
            for s in strikes {
                self.fw.strike(s);
            }
            for d in self.fw.latencies.drain(..) {
                self.latencies.push(d);
            }
            self.commit(acks);
            self.publish();
            if let Some(tx) = stop {
                self.journal.flush();
                let _ = tx.send(());
                break;
            }
        }
        self.journal.flush();
    }

    /// Once a second: expiry, journal health and compaction, clock.
    fn periodic(&mut self, ticks: u64) {
        self.fw.sweep();
        if ticks.is_multiple_of(60) {
            self.fw.recalibrate();
            self.fw.trim_reasons();
            self.fw.forget_old_history(crate::values::unix_now());
        }
        let errors = self.journal.health().errors.load(Ordering::Relaxed);
        if errors > self.fw.stats.journal_errors {
            self.fw.stats.journal_errors = errors;
            let last = self
                .journal
                .health()
                .last_error
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone()
                .unwrap_or_default();
            self.fw.alarm(
                "journal",
                format!("cannot write the journal (state survives only in the kernel): {last}"),
            );
        }
    }

    fn handle(&mut self, c: Command, acks: &mut Vec<Ack>) {
        self.fw.stats.commands += 1;
        match c {
            Command::Ban(o, r) => {
                let who = (o.source, o.origin.as_deref());
                let res = self.fw.ban_from(o.net, o.duration, &o.reason, who, o.force);
                acks.push(ack(r, res));
            }
            Command::Unban(net, r) => acks.push(ack(r, self.fw.unban(net))),
            Command::ListAdd(k, net, comment, r) => {
                acks.push(ack(r, self.fw.list_add(k, net, &comment)));
            }
            Command::ListRemove(k, net, r) => acks.push(ack(r, self.fw.list_remove(k, net))),
            Command::Modes(m, e, force, r) => acks.push(ack(r, self.fw.set_modes(m, e, force))),
            Command::Reload(cfg, r) => acks.push(ack(r, self.fw.reload(*cfg))),
            Command::Import(order, r) => {
                let rep = self.import(*order);
                acks.push(ack(r, Ok(rep)));
            }
            Command::Fleet(ops, r) => {
                let mut out = Vec::with_capacity(ops.len());
                for op in ops {
                    out.push(self.fw.fleet(op));
                    self.bound_batch();
                }
                acks.push(ack(r, Ok(out)));
            }
            Command::Flush(r) => acks.push(ack(r, Ok(()))),
            Command::Rate(addr, r) => acks.push(ack(r, Ok(self.fw.dp.maps.rate_state(addr)))),
            Command::Stop(_) => {}
        }
    }

    fn import(&mut self, o: ImportOrder) -> ImportReport {
        let mut rep = ImportReport::default();
        for (kind, entries) in [(ListKind::Allow, o.allow), (ListKind::Block, o.block)] {
            for (net, comment) in entries {
                if self.fw.state().list(kind).contains_key(&net) {
                    continue;
                }
                match self.fw.list_add(kind, net, &comment) {
                    Ok(_) if kind == ListKind::Allow => rep.allowlist += 1,
                    Ok(_) => rep.blocklist += 1,
                    Err(e) => rep.skipped.push(format!("{net}: {e}")),
                }
            }
        }
        for (net, duration, reason) in o.bans {
            match self.fw.ban(net, duration, &reason, BanSource::Import, true) {
                Ok(_) => rep.bans += 1,
                Err(e) => rep.skipped.push(format!("ban {net}: {e}")),
            }
            self.bound_batch();
        }
        rep
    }

    /// Long commands (imports, a fleet's worth of bans): keep the journal
    /// batches bounded.
    fn bound_batch(&mut self) {
        if self.journal.pending_bytes() > (8 << 20) {
            self.commit(Vec::new());
        }
    }

    fn commit(&mut self, acks: Vec<Ack>) {
        for r in self.fw.take_records() {
            self.journal.append(&r);
        }
        let changes = self.fw.take_changes();
        if self.changes.receiver_count() > 0 {
            for c in changes.into_iter().filter(|c| !c.from_fleet()) {
                // Err: no follower left; nothing to tell.
                let _ = self.changes.send(c);
            }
        }
        self.journal.commit(acks);
        self.fw.stats.batches += 1;
        if self.journal.wants_compaction() {
            self.journal.compact(self.fw.state().clone());
        }
    }

    fn publish(&mut self) {
        self.generation += 1;
        let state = self.fw.state();
        let mut stats = self.fw.stats().clone();
        stats.strikes_dropped = self.dropped.load(Ordering::Relaxed);
        let v = View {
            bans: state.bans.clone(),
            counts: self.fw.counts,
            history: state.history.clone(),
            allow_api: state.allow.clone(),
            block_api: state.block.clone(),
            allow_config: self.fw.config_list(ListKind::Allow),
            block_config: self.fw.config_list(ListKind::Block),
            modes: self.fw.modes(),
            alarms: self.fw.alarms(),
            stats,
            strikes_pending: self.fw.pending_strikes(),
            policy: self.fw.policy().clone(),
            generation: self.generation,
            uptime: self.started.elapsed(),
            sources: self.fw.sources.clone(),
        };
        self.view.store(Arc::new(v));
    }
}
