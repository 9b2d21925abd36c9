//! Benchmarks run by `cargo xtask bench <name>` through the `waf-bench`
//! binary. Each prints a table, compares against a reference measured in the
//! same run, and writes its figures as JSON under target/bench/.

pub mod ban_latency;
pub mod bans;
pub mod detect;
pub mod flood;
pub mod proxy;
pub mod xdp;

use std::path::PathBuf;

/// target/bench under the workspace root, created if missing.
pub fn out_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/bench");
    std::fs::create_dir_all(&dir).expect("create target/bench");
    dir
}

/// Writes `value` as pretty JSON to target/bench/`name` and says where.
pub fn write_json(name: &str, value: &serde_json::Value) {
    let path = out_dir().join(name);
    let text = serde_json::to_string_pretty(value).expect("serialize");
    std::fs::write(&path, text + "\n").expect("write bench json");
    println!("wrote {}", path.display());
}

/// The real proxy, firewall and detection engine, in this process, serving
/// on loopback: what the HTTP benchmarks measure.
pub struct InProcessProxy {
    /// The proxy (its stats).
    pub proxy: std::sync::Arc<waf_user::proxy::Proxy>,
    /// The port it listens on.
    pub port: u16,
    state_dir: PathBuf,
    rt: Option<tokio::runtime::Runtime>,
}

impl InProcessProxy {
    /// Starts one with `pcfg` (its `listen` is ignored: a free loopback port
    /// is taken), kernel maps pinned in `pin_dir` if given, bans at once at
    /// `immediate_score`.
    pub fn start(
        pcfg: &waf_user::config::ProxyConfig,
        pin_dir: Option<PathBuf>,
        immediate_score: Option<u32>,
        workers: usize,
    ) -> anyhow::Result<Self> {
        use std::sync::{Arc, Mutex, OnceLock};
        use waf_user::{
            api::AppState,
            config::Config,
            dataplane::{Dataplane, LoadOptions},
            detect::{DetectConfig, Engine},
            firewall::Firewall,
            proxy::Proxy,
        };
        let state_dir = std::env::temp_dir().join(crate::unique("waf-bench-proxy-state-"));
        let cfg = Config {
            state_dir: state_dir.clone(),
            ..Default::default()
        };
        let dp = Dataplane::load(&LoadOptions { pin_dir })?;
        let (fw, _) = Firewall::start(&cfg, dp)?;
        let engine =
            Arc::new(Engine::new(&DetectConfig::default()).map_err(|e| anyhow::anyhow!("{e}"))?);
        let state = Arc::new(AppState {
            fw: Mutex::new(fw),
            token: "bench".into(),
            started: std::time::Instant::now(),
            attachments: Vec::new(),
            engine: engine.clone(),
            proxy: OnceLock::new(),
            mirror: None,
        });
        let proxy = Arc::new(Proxy::new(pcfg, engine, state, immediate_score)?);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all()
            .build()?;
        let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
        let port = listener.local_addr()?.port();
        rt.spawn(proxy.clone().serve(listener));
        Ok(Self {
            proxy,
            port,
            state_dir,
            rt: Some(rt),
        })
    }
}

impl Drop for InProcessProxy {
    fn drop(&mut self) {
        drop(self.rt.take());
        let _ = std::fs::remove_dir_all(&self.state_dir);
    }
}
