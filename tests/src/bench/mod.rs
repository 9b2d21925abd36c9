//! Benchmarks run by `cargo xtask bench <name>` through the `waf-bench`
//! binary. Each prints a table, compares against a reference measured in the
//! same run, and writes its figures as JSON under target/bench/.

pub mod api;
pub mod ban_latency;
pub mod bans;
pub mod detect;
pub mod fleet;
pub mod flood;
pub mod leaks;
pub mod proxy;
pub mod sources;
pub mod ui;
pub mod xdp;

use std::path::PathBuf;

/// target/bench under the workspace root, created if missing.
pub fn out_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/bench");
    std::fs::create_dir_all(&dir).expect("create target/bench");
    dir
}

/// A `/proc/PID/status` figure in kB (`VmRSS:`, `RssAnon:`).
pub fn status_kb(pid: u32, key: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with(key))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// "met" or "NOT met", for a benchmark's goal lines.
pub fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "NOT met" }
}

/// Writes `value` as pretty JSON to target/bench/`name` and says where.
pub fn write_json(name: &str, value: &serde_json::Value) {
    let path = out_dir().join(name);
    let text = serde_json::to_string_pretty(value).expect("serialize");
    std::fs::write(&path, text + "\n").expect("write bench json");
    println!("wrote {}", path.display());
}

/// The real proxy, firewall (with its owner thread) and detection engine,
/// in this process, serving on loopback: what the HTTP benchmarks measure.
pub struct InProcessProxy {
    /// The proxy (its stats).
    pub proxy: std::sync::Arc<waf_user::proxy::Proxy>,
    /// The firewall's owner.
    pub fw: waf_user::firewall::Handle,
    /// The detection engine the proxy runs.
    pub engine: std::sync::Arc<waf_user::detect::Engine>,
    /// The port it listens on.
    pub port: u16,
    /// The control API's port (token [`crate::TEST_TOKEN`]).
    pub api_port: u16,
    state_dir: PathBuf,
    owner: Option<std::thread::JoinHandle<()>>,
    workers: Option<waf_user::proxy::Workers>,
    rt: Option<tokio::runtime::Runtime>,
}

impl InProcessProxy {
    /// Starts one with `pcfg` (its `listen` is ignored: a free loopback port
    /// is taken), kernel maps pinned in `pin_dir` if given, bans at once at
    /// `immediate_score`, the proxy on `workers` threads as the daemon
    /// serves it (the API on a runtime of its own, as many threads).
    pub fn start(
        pcfg: &waf_user::config::ProxyConfig,
        pin_dir: Option<PathBuf>,
        immediate_score: Option<u32>,
        workers: usize,
    ) -> anyhow::Result<Self> {
        use std::sync::Arc;
        use waf_user::{
            config::Config,
            dataplane::{Dataplane, LoadOptions},
            detect::{DetectConfig, Engine},
            proxy::Proxy,
        };
        let state_dir = std::env::temp_dir().join(crate::unique("waf-bench-proxy-state-"));
        let mut cfg = Config {
            state_dir: state_dir.clone(),
            ..Default::default()
        };
        cfg.ban_policy.immediate_score = immediate_score;
        let dp = Dataplane::load(&LoadOptions {
            pin_dir,
            capacity: cfg.capacity,
        })?;
        let (firewall, journal, _, _) =
            waf_user::firewall::restore(cfg.firewall()?, dp, &state_dir)?;
        let counters = firewall.counters_reader()?;
        let (fw, owner) = waf_user::firewall::owner::spawn(firewall, journal)?;
        let engine =
            Arc::new(Engine::new(&DetectConfig::default()).map_err(|e| anyhow::anyhow!("{e}"))?);
        let pcfg = waf_user::config::ProxyConfig {
            workers: Some(workers),
            ..pcfg.clone()
        };
        let proxy = Arc::new(Proxy::new(
            &pcfg,
            waf_user::routes::Routes::default(),
            engine.clone(),
            fw.strikes(),
            cfg.ban_policy.ipv6_prefix,
        )?);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all()
            .build()?;
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let workers = proxy.spawn_workers(listener)?;
        let api = Arc::new(waf_user::api::ApiState {
            fw: fw.clone(),
            token: crate::TEST_TOKEN.into(),
            started: std::time::Instant::now(),
            attachments: Vec::new(),
            counters,
            engine: engine.clone(),
            faces: vec![proxy.clone()],
            fleet: None,
            panics: Arc::default(),
            findings: None,
            access_log: None,
            ledger: None,
        });
        let api_listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
        let api_port = api_listener.local_addr()?.port();
        let app = waf_user::api::router(api);
        rt.spawn(async move {
            let _ = axum::serve(api_listener, app).await;
        });
        Ok(Self {
            proxy,
            fw,
            engine,
            port,
            api_port,
            state_dir,
            owner: Some(owner),
            workers: Some(workers),
            rt: Some(rt),
        })
    }
}

impl InProcessProxy {
    /// The connections each proxy worker serves now.
    pub fn serving(&self) -> Vec<usize> {
        self.workers.as_ref().map_or_else(Vec::new, |w| w.serving())
    }

    /// Stops the proxy's workers (their connections closed); the API and
    /// the firewall go on.
    pub fn stop_proxy(&mut self) {
        if let Some(w) = self.workers.take() {
            w.stop();
        }
    }
}

impl Drop for InProcessProxy {
    fn drop(&mut self) {
        self.stop_proxy();
        if let Some(rt) = self.rt.take() {
            rt.block_on(self.fw.stop());
            drop(rt);
        }
        if let Some(t) = self.owner.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_dir_all(&self.state_dir);
    }
}
