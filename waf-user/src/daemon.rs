//! `waf run`: loads the config, loads (or adopts) the pinned XDP program and
//! maps, attaches to the interfaces, writes settings and lists, and keeps
//! them in force until SIGTERM. On exit the program stays attached and
//! enforcing: pinned state outlives the daemon, and the next start adopts it.

use std::{
    net::{IpAddr, Ipv6Addr},
    path::PathBuf,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};
use aya::maps::{MapData, RingBuf};
use ipnet::{IpNet, Ipv6Net};
use tokio::{
    io::{Interest, unix::AsyncFd},
    signal::unix::{SignalKind, signal},
};
use waf_common::{HttpSample, ListEntry, RateEvent, counter, event_kind};

use crate::{
    api::{self, AppState},
    config::{Config, ListItem, LogFormat},
    dataplane::{AttachMode, Dataplane, LoadOptions, sets::CidrSet},
    detect::{Action, Engine},
    firewall::{BanDuration, Firewall},
    journal::BanSource,
    mirror::Mirror,
    proxy::Proxy,
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

/// Makes a kernel list hold exactly `items` (plus nothing else): entries
/// missing are added, stale ones removed. Returns (added, removed).
pub fn sync_list(
    set: &mut CidrSet<ListEntry>,
    items: &[ListItem],
) -> Result<(usize, usize), crate::dataplane::DataplaneError> {
    let want: std::collections::BTreeSet<IpNet> = items.iter().map(|i| i.net).collect();
    let have: Vec<IpNet> = set.entries().into_iter().map(|(n, _)| n).collect();
    let mut added = 0;
    for net in &want {
        if set.get_exact(*net).is_none() {
            set.insert(*net, ListEntry::default())?;
            added += 1;
        }
    }
    let mut removed = 0;
    for net in have {
        if !want.contains(&net) {
            set.remove(net)?;
            removed += 1;
        }
    }
    Ok((added, removed))
}

/// The API token: `[api] token`, else `WAF_API_TOKEN`, else
/// `state_dir/api.token` (generated at first start, mode 0600).
pub fn api_token(cfg: &Config) -> Result<String> {
    if let Some(t) = &cfg.api.token {
        return Ok(t.clone());
    }
    if let Ok(t) = std::env::var("WAF_API_TOKEN")
        && !t.trim().is_empty()
    {
        return Ok(t.trim().to_string());
    }
    let path = cfg.state_dir.join("api.token");
    match std::fs::read_to_string(&path) {
        Ok(t) if !t.trim().is_empty() => return Ok(t.trim().to_string()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    }
    std::fs::create_dir_all(&cfg.state_dir)
        .with_context(|| format!("creating {}", cfg.state_dir.display()))?;
    let mut raw = [0u8; 24];
    {
        use std::io::Read as _;
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut raw))
            .context("reading /dev/urandom")?;
    }
    let token: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    {
        use std::{io::Write as _, os::unix::fs::OpenOptionsExt as _};
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("creating {}", path.display()))?;
        writeln!(f, "{token}")?;
    }
    tracing::info!(path = %path.display(), "generated the API token");
    Ok(token)
}

/// Runs the daemon until SIGTERM or SIGINT.
pub fn run(opts: RunOptions) -> Result<()> {
    let cfg = effective_config(&opts)?;
    init_logging(&cfg);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(serve(cfg, opts))
}

async fn serve(cfg: Config, opts: RunOptions) -> Result<()> {
    let dp = Dataplane::load(&LoadOptions {
        pin_dir: Some(cfg.bpf_dir.clone()),
    })
    .with_context(|| {
        format!(
            "loading the XDP program (pins in {})",
            cfg.bpf_dir.display()
        )
    })?;
    let token = api_token(&cfg)?;
    let (mut fw, report) = Firewall::start(&cfg, dp)?;
    tracing::info!(
        restored = report.restored,
        adopted = report.adopted,
        expired_while_down = report.expired_while_down,
        bad_journal_lines = report.bad_journal_lines,
        restore_ms = report.restore_ms as u64,
        "state restored"
    );
    let mut attachments = Vec::new();
    for iface in &cfg.interface.0 {
        let a = fw.dataplane().attach(iface, cfg.xdp_mode)?;
        tracing::info!(
            interface = %a.interface,
            mode = %a.mode,
            adopted = a.adopted,
            "attached"
        );
        attachments.push(a);
    }
    let events = fw.dataplane().maps.events.take();
    let listener = tokio::net::TcpListener::bind(cfg.api.listen)
        .await
        .with_context(|| format!("binding the API to {} ([api] listen)", cfg.api.listen))?;
    let engine =
        Arc::new(Engine::new(&cfg.detect).map_err(|e| anyhow::anyhow!("config [detect]: {e}"))?);
    let mirror = cfg
        .mirror
        .enabled
        .then(|| Mutex::new(Mirror::new(&cfg.mirror, engine.clone())));
    let state = Arc::new(AppState {
        fw: Mutex::new(fw),
        token,
        started: Instant::now(),
        attachments,
        engine: engine.clone(),
        proxy: std::sync::OnceLock::new(),
        mirror,
    });
    let proxy_task = match (&cfg.proxy.listen, &cfg.proxy.upstream) {
        (Some(listen), Some(upstream)) => {
            let proxy = Arc::new(Proxy::new(
                &cfg.proxy,
                engine.clone(),
                state.clone(),
                cfg.ban_policy.immediate_score,
            )?);
            let _ = state.proxy.set(proxy.clone());
            let l = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("binding the proxy to {listen} ([proxy] listen)"))?;
            tracing::info!(listen = %listen, upstream = %upstream, "proxy serving");
            Some(tokio::spawn(proxy.serve(l)))
        }
        _ => None,
    };
    let modes = lock(&state).modes();
    tracing::info!(
        api = %cfg.api.listen,
        monitor = modes.monitor,
        emergency = modes.emergency,
        "enforcing; SIGHUP reloads the config, SIGTERM stops (enforcement stays pinned in {})",
        cfg.bpf_dir.display()
    );
    let app = api::router(state.clone());
    let server = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "API server stopped");
        }
    });
    if let Some(rb) = events {
        let st = state.clone();
        let v6_prefix = cfg.rate_limit.ipv6_prefix;
        let immediate = cfg.ban_policy.immediate_score;
        tokio::spawn(async move {
            if let Err(e) = consume_events(rb, st, v6_prefix, immediate).await {
                tracing::error!(error = %e, "event consumer stopped");
            }
        });
    }
    let mut term = signal(SignalKind::terminate())?;
    let mut hup = signal(SignalKind::hangup())?;
    let mut second = tokio::time::interval(Duration::from_secs(1));
    let mut stats_tick = tokio::time::interval(Duration::from_secs(opts.stats_interval.max(1)));
    let mut ticks = 0u64;
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
            _ = hup.recv() => reload(&state, &opts),
            _ = second.tick() => {
                ticks += 1;
                {
                    let mut fw = lock(&state);
                    fw.sweep();
                    fw.sync_journal();
                    if ticks.is_multiple_of(60) {
                        fw.recalibrate();
                    }
                }
                if let Some(m) = &state.mirror {
                    m.lock().unwrap_or_else(|p| p.into_inner()).expire();
                }
            }
            _ = stats_tick.tick(), if opts.stats_interval > 0 => {
                if let Ok(c) = lock(&state).counters() {
                    print_counters(&c);
                }
            }
        }
    }
    server.abort();
    if let Some(t) = proxy_task {
        t.abort();
    }
    lock(&state).sync_journal();
    tracing::info!("stopping; the XDP program stays attached and enforcing");
    Ok(())
}

fn lock(s: &AppState) -> std::sync::MutexGuard<'_, Firewall> {
    s.fw.lock().unwrap_or_else(|p| p.into_inner())
}

fn reload(state: &AppState, opts: &RunOptions) {
    match effective_config(opts) {
        Ok(cfg) => {
            if let Err(e) = lock(state).reload(&cfg) {
                tracing::error!(error = %e, "reload failed; the previous config stays in force");
            }
        }
        Err(e) => tracing::error!(error = %e, "reload: the config is invalid; nothing changed"),
    }
}

/// Reads the ring buffer: rate events become strikes; HTTP samples feed
/// the mirror, whose detections become strikes (or immediate bans).
async fn consume_events(
    rb: RingBuf<MapData>,
    state: Arc<AppState>,
    v6_prefix: u8,
    immediate: Option<u32>,
) -> Result<()> {
    // SAFETY: the ring buffer owns its map fd for as long as the AsyncFd
    // owns the ring buffer, and always reports the same fd.
    let mut afd = unsafe { AsyncFd::register_with_interest(rb, Interest::READABLE) }
        .map_err(|e| anyhow::anyhow!("watching the ring buffer: {e}"))?;
    loop {
        let mut guard = afd.readable_mut().await?;
        let mut rates = Vec::new();
        let mut samples = Vec::new();
        {
            let rb = guard.get_inner_mut();
            while let Some(item) = rb.next() {
                if item.len() < 4 {
                    continue;
                }
                // SAFETY: every record starts with its u32 kind.
                let kind = unsafe { std::ptr::read_unaligned(item.as_ptr().cast::<u32>()) };
                if kind == event_kind::HTTP_SAMPLE
                    && item.len() >= std::mem::size_of::<HttpSample>()
                {
                    // SAFETY: the kernel wrote an HttpSample; read it unaligned.
                    samples.push(unsafe {
                        std::ptr::read_unaligned(item.as_ptr().cast::<HttpSample>())
                    });
                } else if item.len() >= std::mem::size_of::<RateEvent>() {
                    // SAFETY: the kernel wrote a RateEvent; read it unaligned.
                    rates.push(unsafe {
                        std::ptr::read_unaligned(item.as_ptr().cast::<RateEvent>())
                    });
                }
            }
        }
        guard.clear_ready();
        let mut detections = Vec::new();
        if let Some(m) = &state.mirror {
            let mut m = m.lock().unwrap_or_else(|p| p.into_inner());
            for s in &samples {
                for r in m.feed(s) {
                    if r.verdict.action == Action::Block {
                        detections.push(r);
                    } else if r.verdict.would_block {
                        tracing::info!(remote = %r.flow.src, request = %r.line, score = r.verdict.score, "mirror: would block (passive)");
                    }
                }
            }
        }
        if rates.is_empty() && detections.is_empty() {
            continue;
        }
        let mut fw = lock(&state);
        for ev in rates {
            let net = match ev.family {
                4 => IpNet::from(IpAddr::from([
                    ev.addr[0], ev.addr[1], ev.addr[2], ev.addr[3],
                ])),
                _ => match Ipv6Net::new(Ipv6Addr::from(ev.addr), v6_prefix) {
                    Ok(n) => IpNet::V6(n.trunc()),
                    Err(_) => continue,
                },
            };
            let (kind, what) = match ev.kind {
                event_kind::RATE_BPS => ("rate_bps", format!("{} B/s", ev.observed_bps)),
                event_kind::RATE_SYN => ("rate_syn", format!("{} SYN/s", ev.observed_pps)),
                _ => ("rate_pps", format!("{} packets/s", ev.observed_pps)),
            };
            fw.strike(
                net,
                kind,
                format!("rate limit: {what} observed, {} dropped", ev.dropped),
                BanSource::RateLimit,
            );
        }
        for d in detections {
            let reason = d
                .verdict
                .attacks
                .first()
                .map(|f| {
                    format!(
                        "{:?} at {} (rule {}), seen by the mirror",
                        f.kind, f.location, f.rule
                    )
                })
                .unwrap_or_else(|| "detection (mirror)".into());
            tracing::warn!(remote = %d.flow.src, request = %d.line, score = d.verdict.score, reason = %reason, "mirror detection");
            let net = IpNet::from(d.flow.src);
            if immediate.is_some_and(|s| d.verdict.score >= s) {
                if let Err(e) = fw.ban(net, BanDuration::Escalate, reason, BanSource::Detection) {
                    tracing::warn!(remote = %d.flow.src, error = %e, "immediate ban refused");
                }
            } else {
                fw.strike(net, "detection", reason, BanSource::Detection);
            }
        }
    }
}

fn print_counters(c: &[waf_common::Counter]) {
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
