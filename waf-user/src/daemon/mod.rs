//! `waf run`: loads the config, loads (or adopts) the pinned XDP program and
//! maps, restores the journal into them, attaches, starts the firewall's
//! owner and the faces (API, proxy, mirror, fleet link), and keeps enforcing until
//! SIGTERM. On exit the program stays attached and enforcing: pinned state
//! outlives the daemon, and the next start adopts it.

mod behaviour;
mod events;
pub mod privileges;
mod token;

use std::{
    path::PathBuf,
    sync::{Arc, atomic::AtomicU64},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};
use tokio::signal::unix::{SignalKind, signal};

pub use self::token::api_token;
use crate::{
    api::{self, ApiState},
    config::{Config, LogFormat},
    dataplane::{AttachMode, Dataplane, LoadOptions},
    detect::Engine,
    firewall::{self, Handle},
    fleet::FleetLink,
    proxy::Proxy,
    telemetry::{FleetReport, Telemetry},
};

/// What `waf run` was asked on the command line.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Config file; none: defaults.
    pub config_path: Option<PathBuf>,
    /// Interfaces (override the config's).
    pub interfaces: Vec<String>,
    /// Attach mode (overrides the config's).
    pub xdp_mode: Option<AttachMode>,
    /// Print counters every this many seconds (0: never).
    pub stats_interval: u64,
}

/// Loads the config named in `opts`, or the defaults, with the command
/// line's overrides applied.
pub fn effective_config(opts: &RunOptions) -> Result<Config> {
    let mut cfg = match &opts.config_path {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    };
    if !opts.interfaces.is_empty() {
        cfg.interface.0 = opts.interfaces.clone();
    }
    if let Some(m) = opts.xdp_mode {
        cfg.xdp_mode = m;
    }
    cfg.validate()?;
    if cfg.interface.0.is_empty() {
        bail!("no interface to attach to: pass --interface IF or set `interface` in the config");
    }
    Ok(cfg)
}

/// Sets up logging as `[log]` asks (RUST_LOG overrides the level).
pub fn init_logging(cfg: &Config) {
    use tracing_subscriber::{EnvFilter, fmt};
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&cfg.log.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    use std::io::IsTerminal as _;
    let builder = fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let _ = match cfg.log.format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// Everything set up with privileges, before any thread starts.
struct Setup {
    fw: firewall::Firewall,
    journal: firewall::journal::Journal,
    attachments: Vec<crate::dataplane::Attachment>,
    events: Option<aya::maps::RingBuf<aya::maps::MapData>>,
    counters: crate::dataplane::CountersReader,
    token: String,
    api: std::net::TcpListener,
    proxy: Option<std::net::TcpListener>,
}

fn bind(addr: std::net::SocketAddr, what: &str) -> Result<std::net::TcpListener> {
    let l = std::net::TcpListener::bind(addr)
        .with_context(|| format!("binding the {what} to {addr}"))?;
    l.set_nonblocking(true)?;
    Ok(l)
}

/// Loads (or adopts) the program, restores the journal into the maps,
/// attaches, and binds the listeners: all that needs a capability.
fn privileged_setup(cfg: &Config) -> Result<Setup> {
    let dp = Dataplane::load(&LoadOptions {
        pin_dir: Some(cfg.bpf_dir.clone()),
        capacity: cfg.capacity,
    })
    .with_context(|| {
        format!(
            "loading the XDP program (pins in {})",
            cfg.bpf_dir.display()
        )
    })?;
    let token = api_token(cfg)?;
    let (mut fw, journal, report, replay) = firewall::restore(cfg.firewall()?, dp, &cfg.state_dir)?;
    tracing::info!(
        restored = report.restored,
        adopted = report.adopted,
        expired_while_down = report.expired_while_down,
        journal_records = replay.records,
        journal_damage = replay.damaged.len(),
        migrated = ?replay.migrated_v1,
        restore_ms = report.restore_ms,
        "state restored"
    );
    let mut attachments = Vec::new();
    for iface in &cfg.interface.0 {
        let a = fw.attach(iface, cfg.xdp_mode)?;
        tracing::info!(interface = %a.interface, mode = %a.mode, adopted = a.adopted, "attached");
        attachments.push(a);
    }
    let events = fw.take_events();
    let counters = fw.counters_reader()?;
    let api = bind(cfg.api.listen, "API ([api] listen)")?;
    let proxy = match (&cfg.proxy.listen, &cfg.proxy.upstream) {
        (Some(l), Some(_)) => Some(bind(*l, "proxy ([proxy] listen)")?),
        _ => None,
    };
    Ok(Setup {
        fw,
        journal,
        attachments,
        events,
        counters,
        token,
        api,
        proxy,
    })
}

/// Runs the daemon until SIGTERM or SIGINT.
pub fn run(opts: RunOptions) -> Result<()> {
    let cfg = effective_config(&opts)?;
    init_logging(&cfg);
    let setup = privileged_setup(&cfg)?;
    privileges::drop_all().context("dropping capabilities after start-up")?;
    tracing::info!("capabilities dropped: the daemon runs with none from here on");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(serve(cfg, opts, setup))
}

async fn serve(cfg: Config, opts: RunOptions, setup: Setup) -> Result<()> {
    let Setup {
        fw,
        journal,
        attachments,
        events,
        counters,
        token,
        api: api_listener,
        proxy: proxy_listener,
    } = setup;
    let (handle, owner) = firewall::owner::spawn(fw, journal)?;
    let listener = tokio::net::TcpListener::from_std(api_listener)?;
    let mut faces: Vec<Arc<dyn Telemetry>> = Vec::new();
    // The fleet link first: a joining host reads the bucket on the
    // runtime's workers while this thread builds the detection engine.
    let fleet = cfg.fleet.as_ref().map(|f| {
        let link = FleetLink::start(f, handle.clone());
        faces.push(link.clone());
        link as Arc<dyn FleetReport>
    });
    let engine = Arc::new(
        Engine::new(&cfg.engine_config()).map_err(|e| anyhow::anyhow!("config [detect]: {e}"))?,
    );
    // Building the engine (and restoring the journal) leaves megabytes of
    // freed heap that glibc keeps; give them back.
    // SAFETY: malloc_trim only releases free memory.
    unsafe { libc::malloc_trim(0) };
    // The findings store and the runtime exclusions (the proxy and the
    // mirror fill them, the proxy applies the exclusions; the API reads and
    // changes them, proxy or not).
    let findings = Arc::new(
        crate::findings::Findings::open(&cfg.findings, &cfg.state_dir).with_context(|| {
            format!("opening the findings store in {}", cfg.state_dir.display())
        })?,
    );
    faces.push(findings.clone());
    let findings = Some(findings);
    let mirror = if cfg.mirror.enabled {
        let m = Arc::new(events::MirrorFace::start(
            &cfg.mirror,
            engine.clone(),
            handle.strikes(),
            findings.clone(),
        )?);
        faces.push(m.clone());
        Some(m)
    } else {
        None
    };
    let proxy_task = match proxy_listener {
        Some(l) => Some(start_proxy(
            &cfg,
            &engine,
            &handle,
            &mut faces,
            l,
            findings.clone(),
        )?),
        None => None,
    };
    let state = Arc::new(ApiState {
        fw: handle.clone(),
        token,
        started: Instant::now(),
        attachments,
        counters,
        engine,
        faces,
        fleet,
        panics: Arc::new(AtomicU64::new(0)),
        findings,
        access_log: match &cfg.proxy.access_log {
            crate::proxy::AccessLog::File(p) => Some(p.clone()),
            _ => None,
        },
        ledger: Some(cfg.state_dir.clone()),
    });
    let modes = handle.view().modes;
    tracing::info!(
        api = %cfg.api.listen,
        monitor = modes.monitor,
        emergency = modes.emergency,
        "enforcing; SIGHUP reloads the config, SIGTERM stops (enforcement stays pinned in {})",
        cfg.bpf_dir.display()
    );
    // The dashboard beside the API, outside its bearer check (it has its
    // own sessions); built here, since the dashboard calls the API's
    // handlers and the API must not import it back.
    let app = api::router(state.clone()).merge(crate::ui::router(state.clone()));
    let server = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "API server stopped");
        }
    });
    if let Some(rb) = events {
        let sink = handle.strikes();
        tokio::spawn(async move {
            if let Err(e) = events::consume(rb, sink, mirror).await {
                tracing::error!(error = %e, "event consumer stopped");
            }
        });
    }
    wait_for_signals(&handle, &opts, &state).await?;
    server.abort();
    if let Some(w) = proxy_task {
        let _ = tokio::task::spawn_blocking(move || w.stop()).await;
    }
    handle.stop().await;
    let _ = tokio::task::spawn_blocking(move || owner.join()).await;
    tracing::info!("stopping; the XDP program stays attached and enforcing");
    Ok(())
}

fn start_proxy(
    cfg: &Config,
    engine: &Arc<Engine>,
    handle: &Handle,
    faces: &mut Vec<Arc<dyn Telemetry>>,
    listener: std::net::TcpListener,
    findings: Option<Arc<crate::findings::Findings>>,
) -> Result<crate::proxy::Workers> {
    // The access log names each client's country and ASN from the source
    // policies' databases in force (none configured: nothing).
    let view = handle.clone();
    let challenger = if cfg.challenge_on() {
        let path = cfg.challenge_key_file();
        let key = challenge_key(&path)?;
        Some(Arc::new(crate::challenge::Challenger::new(
            &cfg.challenge,
            key,
            cfg.ban_policy.ipv6_prefix,
        )))
    } else {
        None
    };
    let mut proxy = Proxy::new(
        &cfg.proxy,
        cfg.routes()?,
        engine.clone(),
        handle.strikes(),
        cfg.ban_policy.ipv6_prefix,
    )?
    .with_geo(Arc::new(move |ip| {
        view.view()
            .sources
            .as_ref()
            .map_or((None, None), |p| p.geo(ip))
    }));
    if let Some(f) = findings {
        proxy = proxy.with_findings(f);
    }
    if cfg.bot_score_on() {
        let crawlers = if cfg.challenge.verify_crawlers {
            use crate::proxy::crawler::{CrawlerVerifier, ResolverChoice};
            let choice = cfg
                .challenge
                .resolver_server()
                .map_or(ResolverChoice::System, ResolverChoice::Server);
            match CrawlerVerifier::new(choice, Duration::from_secs(2)) {
                Ok(v) => Some(Arc::new(v)),
                Err(e) => {
                    // Crawlers then score as bots: the challenge still works.
                    tracing::warn!(error = %e, "[challenge] crawlers cannot be verified");
                    None
                }
            }
        } else {
            None
        };
        proxy = proxy.with_challenge(challenger, cfg.challenge.clone(), crawlers);
    }
    let anomaly = behaviour::anomaly(cfg)?;
    if let Some(t) = &anomaly {
        behaviour::spawn_relearning(cfg, t.clone());
    }
    let proxy =
        Arc::new(proxy.with_behaviour(behaviour::monitors(cfg)?, anomaly, cfg.anomaly.mode));
    faces.push(proxy.clone());
    let workers = proxy
        .spawn_workers(listener)
        .context("starting the proxy's workers")?;
    tracing::info!(listen = ?cfg.proxy.listen, workers = workers.len(), "proxy serving");
    Ok(workers)
}

/// The challenge's key: read, or created (0600) on first use.
fn challenge_key(path: &std::path::Path) -> Result<crate::challenge::Key> {
    crate::challenge::load_or_create_key(path)
        .map_err(|e| anyhow::anyhow!("[challenge] key {}: {e}", path.display()))
}

async fn wait_for_signals(handle: &Handle, opts: &RunOptions, state: &ApiState) -> Result<()> {
    let mut term = signal(SignalKind::terminate())?;
    let mut hup = signal(SignalKind::hangup())?;
    let mut stats_tick = tokio::time::interval(Duration::from_secs(opts.stats_interval.max(1)));
    // The source policies' files are watched: a changed file reloads the
    // config as SIGHUP does (once per change: a broken file is not retried
    // until it changes again).
    let mut files_tick = tokio::time::interval(Duration::from_secs(2));
    let mut tried = None;
    loop {
        tokio::select! {
            _ = term.recv() => return Ok(()),
            _ = tokio::signal::ctrl_c() => return Ok(()),
            _ = hup.recv() => reload(handle, opts).await,
            _ = files_tick.tick() => {
                if let Some(p) = handle.view().sources.clone() {
                    let now = p.current_stamps();
                    if now != p.loaded_stamps() && tried.as_ref() != Some(&now) {
                        tracing::info!("a source-policy file changed: reloading");
                        tried = Some(now);
                        reload(handle, opts).await;
                    }
                }
            }
            _ = stats_tick.tick(), if opts.stats_interval > 0 => {
                if let Ok(c) = state.counters.read() {
                    print_counters(&c);
                }
            }
        }
    }
}

async fn reload(handle: &Handle, opts: &RunOptions) {
    let cfg = match tokio::task::spawn_blocking({
        let opts = opts.clone();
        move || effective_config(&opts).and_then(|c| Ok(c.firewall()?))
    })
    .await
    {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            tracing::error!(error = %e, "reload: the config is invalid; nothing changed");
            return;
        }
        Err(e) => {
            tracing::error!(error = %e, "reload failed");
            return;
        }
    };
    if let Err(e) = handle.reload(cfg).await {
        tracing::error!(error = %e, "reload failed; the previous config stays in force");
    }
}

fn print_counters(c: &[waf_common::Counter]) {
    use waf_common::counter;
    let line: Vec<String> = (0..counter::COUNT as usize)
        .filter(|&i| c[i].packets > 0)
        .map(|i| format!("{}={}", counter::NAMES[i], c[i].packets))
        .collect();
    println!(
        "counters: {}",
        if line.is_empty() {
            "(no packets yet)".into()
        } else {
            line.join(" ")
        }
    );
}
