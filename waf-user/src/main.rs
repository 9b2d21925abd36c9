//! `waf`: the daemon (`waf run`) and the operator's command line.

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};
use waf_user::{
    cli::{self, ApiArgs, BansCmd, FleetCmd, ListCmd},
    config::Config,
    daemon::{self, RunOptions},
    dataplane::{self, AttachMode},
};

#[derive(Parser)]
#[command(name = "waf", version, about = "Kernel-assisted web firewall")]
struct Cli {
    #[command(flatten)]
    api: ApiArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon: attach the XDP program and enforce the config.
    Run {
        /// Config file (TOML).
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Interface to attach to (repeat for several; overrides the config).
        #[arg(long, short)]
        interface: Vec<String>,
        /// XDP attach mode: auto, native or skb (overrides the config).
        #[arg(long)]
        xdp_mode: Option<AttachMode>,
        /// Print the counters every this many seconds (0: never).
        #[arg(long, default_value_t = 0)]
        stats_interval: u64,
    },
    /// Prepare the directories for the daemon's own user (run as root, e.g.
    /// by the unit's ExecStartPre=+): mount the bpf filesystem if needed,
    /// create bpf_dir and state_dir, and give both (with pins an earlier
    /// root daemon made) to the user.
    Prepare {
        /// Config file (TOML).
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// The daemon's user: a name, or uid:gid.
        #[arg(long)]
        user: String,
    },
    /// Remove the program, link, pins and maps from an interface.
    Detach {
        /// The interface.
        #[arg(long, short)]
        interface: String,
        /// The bpffs directory the daemon pinned in.
        #[arg(long, default_value = dataplane::DEFAULT_BPF_DIR)]
        bpf_dir: PathBuf,
    },
    /// Check a config file and print what it resolves to.
    CheckConfig {
        /// Config file (TOML).
        config: PathBuf,
    },
    /// Bans: list, add, rm.
    #[command(subcommand)]
    Bans(BansCmd),
    /// The allowlist: list, add, rm.
    #[command(subcommand)]
    Allow(ListCmd),
    /// The blocklist: list, add, rm.
    #[command(subcommand)]
    Block(ListCmd),
    /// Bans shared across hosts: status.
    #[command(subcommand)]
    Fleet(FleetCmd),
    /// Counters of the XDP program and the daemon.
    Stats,
    /// What every list, ban and source policy says about an address, and
    /// the verdict XDP gives it.
    Lookup {
        /// One IPv4 or IPv6 address.
        addr: String,
    },
    /// The route a path falls into (`[[routes]]`) and the policy it meets,
    /// from the config file.
    Route {
        /// A path (and query), as a request would send it.
        path: String,
        /// Config file (TOML).
        #[arg(long, short, default_value = "/etc/waf/waf.toml")]
        config: PathBuf,
    },
    /// Learn the anomaly model's baseline from an access log of the proxy
    /// (JSON, common or combined; `-`: stdin).
    Learn {
        /// The access log.
        log: PathBuf,
        /// Where to write the baseline.
        #[arg(long, default_value = "anomaly-baseline.json")]
        out: PathBuf,
        /// The window features are counted over (30s to 1h).
        #[arg(long, default_value = "5m")]
        window: waf_user::values::Dur,
        /// Requests in a window before it is scored (5 to 10000).
        #[arg(long, default_value_t = 10)]
        min_requests: u32,
        /// The long window, for sources too slow for the window (10m to 1d;
        /// 0s: none).
        #[arg(long, default_value = "1h")]
        long_window: waf_user::values::Dur,
        /// Requests in a long window before it is scored (5 to 10000).
        #[arg(long, default_value_t = 5)]
        long_min_requests: u32,
    },
    /// Replay an access log through the anomaly model and print the sources
    /// it flags.
    Anomaly {
        /// The access log (`-`: stdin).
        log: PathBuf,
        /// The baseline `waf learn` wrote.
        #[arg(long)]
        baseline: PathBuf,
        /// The score from which a source is flagged (default: the
        /// baseline's threshold_hint).
        #[arg(long)]
        threshold: Option<f64>,
        /// The same for the long window (default: its threshold_hint).
        #[arg(long)]
        long_threshold: Option<f64>,
    },
    /// A report over a window: top sources, rules, categories and paths,
    /// requests blocked and passed per hour, bans (asks the daemon's API).
    Report {
        /// The window back from now (`24h`, `7d`; 1s to 31d).
        #[arg(long, default_value = "24h")]
        since: String,
        /// Config file: the API's address and token file come from it.
        #[arg(long)]
        config: Option<std::path::PathBuf>,
    },
    /// Health and alarms.
    Health,
    /// Show or switch monitor and emergency mode.
    Mode {
        /// on or off.
        #[arg(long)]
        monitor: Option<String>,
        /// on or off.
        #[arg(long)]
        emergency: Option<String>,
        /// Allow emergency mode with an empty allowlist.
        #[arg(long)]
        force: bool,
    },
    /// Run the detection engine on JSON lines of requests (`-` or no file:
    /// stdin) and write one JSON verdict a line.
    Inspect {
        /// Input file of JSON lines: {"id", "raw"} or {"id", "method", "uri",
        /// "headers", "body"}.
        file: Option<String>,
        /// Config file whose [detect] table to use.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Paranoia level 1-4 (overrides the config).
        #[arg(long)]
        paranoia: Option<u8>,
        /// Worker threads (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
    },
    /// Write bans and lists to a JSON file (`-`: stdout).
    Export {
        /// The file.
        file: String,
    },
    /// Add the bans and list entries of an export (`-`: stdin).
    Import {
        /// The file.
        file: String,
    },
    /// Packet generator: a bounded flood of frames with spread (spoofed)
    /// sources, for load-testing. --proto http sends TCP segments with an
    /// HTTP GET without a handshake (a flood tool, not an HTTP client).
    Gen(Box<waf_user::r#gen::GenArgs>),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let a = &cli.api;
    let result = match cli.command {
        Command::Run {
            config,
            interface,
            xdp_mode,
            stats_interval,
        } => daemon::run(RunOptions {
            config_path: config,
            interfaces: interface,
            xdp_mode,
            stats_interval,
        }),
        Command::Prepare { config, user } => config
            .as_deref()
            .map(Config::load)
            .unwrap_or_else(|| Ok(Config::default()))
            .map_err(anyhow::Error::from)
            .and_then(|c| daemon::privileges::prepare(&c, &user)),
        Command::Detach { interface, bpf_dir } => match dataplane::detach(&bpf_dir, &interface) {
            Ok(true) => {
                println!(
                    "detached from {interface}; pins in {} removed",
                    bpf_dir.display()
                );
                Ok(())
            }
            Ok(false) => Err(anyhow::anyhow!(
                "no waf link pinned for {interface} in {}",
                bpf_dir.display()
            )),
            Err(e) => Err(e.into()),
        },
        Command::CheckConfig { config } => Config::load(&config)
            .and_then(|c| {
                let allow = c.allow_items()?.len();
                let block = c.block_items()?.len();
                // Reads the source policies' files, as the daemon will.
                let sources = c.firewall()?.sources.map_or(0, |p| p.entries().len());
                println!(
                    "{}: ok (interfaces {:?}, {allow} allowlist and {block} blocklist entries, \
                     {sources} source-policy prefixes)",
                    config.display(),
                    c.interface.0
                );
                Ok(())
            })
            .map_err(Into::into),
        Command::Bans(cmd) => cli::bans(a, cmd),
        Command::Allow(cmd) => cli::list(a, "allowlist", cmd),
        Command::Block(cmd) => cli::list(a, "blocklist", cmd),
        Command::Fleet(cmd) => cli::fleet(a, cmd),
        Command::Stats => cli::stats(a),
        Command::Lookup { addr } => cli::lookup(a, &addr),
        Command::Route { path, config } => cli::route(&config, &path, a.json),
        Command::Learn {
            log,
            out,
            window,
            min_requests,
            long_window,
            long_min_requests,
        } => {
            let w = cli::Windows {
                window,
                min_requests,
                long_window,
                long_min_requests,
            };
            cli::learn(&log, &out, &w, a.json)
        }
        Command::Anomaly {
            log,
            baseline,
            threshold,
            long_threshold,
        } => cli::anomaly(&log, &baseline, [threshold, long_threshold], a.json),
        Command::Report { since, config } => cli::report(a, &since, config.as_deref()),
        Command::Health => cli::health(a),
        Command::Mode {
            monitor,
            emergency,
            force,
        } => cli::mode(a, monitor, emergency, force),
        Command::Inspect {
            file,
            config,
            paranoia,
            threads,
        } => cli::inspect(file.as_deref(), config.as_deref(), paranoia, threads),
        Command::Export { file } => cli::export(a, &file),
        Command::Import { file } => cli::import(a, &file),
        Command::Gen(args) => waf_user::r#gen::main(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("waf: {e:#}");
            ExitCode::FAILURE
        }
    }
}
