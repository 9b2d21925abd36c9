//! The operator's commands (`waf bans`, `waf allow`, `waf block`, `waf stats`,
//! `waf mode`, `waf export`, `waf import`, `waf health`, `waf fleet`): a small client of
//! the control API. Tables for people by default, `--json` for scripts;
//! invalid input exits non-zero with a one-line reason.

use std::{io::Read as _, path::PathBuf};

use anyhow::{Context as _, Result, anyhow, bail};
use clap::{Args, Subcommand};
use serde_json::Value;

mod learn;
mod lookup;
mod report;
mod route;

pub use self::{
    learn::Windows, learn::anomaly, learn::learn, lookup::lookup, report::report, route::route,
    route::route_report,
};

use crate::{
    api::types::{
        Addr, BanPage, BanRequest, BanView, Comment, DurationField, ErrorBody, Export, FleetStatus,
        ListEntry, ListPage, ListRequest, MAX_COMMENT, MAX_PAGE, MAX_REASON, ModeRequest, ModeView,
        Reason, Removed,
    },
    firewall::ImportReport,
    values::{BanLength, Dur, check_text, parse_net},
};

/// Where the API is and how to authenticate.
#[derive(Args, Clone, Debug)]
pub struct ApiArgs {
    /// API base URL.
    #[arg(
        long,
        env = "WAF_API",
        default_value = "http://127.0.0.1:9876",
        global = true
    )]
    pub api: String,
    /// Bearer token (else the token file).
    #[arg(long, env = "WAF_API_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
    /// File holding the token (written by the daemon at first start).
    #[arg(
        long,
        env = "WAF_TOKEN_FILE",
        default_value = "/var/lib/waf/api.token",
        global = true
    )]
    pub token_file: PathBuf,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
}

/// `waf bans ...`
#[derive(Subcommand, Debug)]
pub enum BansCmd {
    /// List bans in force.
    List,
    /// Ban an address or prefix.
    Add {
        /// Address or prefix (198.51.100.7, 2001:db8::/64).
        addr: String,
        /// How long: seconds, "90s", "10m", "24h", "7d", or "permanent"
        /// (default: the ban policy's escalating duration).
        #[arg(long)]
        duration: Option<String>,
        /// Why.
        #[arg(long)]
        reason: Option<String>,
        /// Ban a prefix wider than the ban policy allows (max_prefix_v4/v6).
        #[arg(long)]
        force: bool,
    },
    /// Lift a ban.
    Rm {
        /// Address or prefix.
        addr: String,
    },
}

/// `waf fleet ...`
#[derive(Subcommand, Debug)]
pub enum FleetCmd {
    /// The fleet link: connected, this host's name, what it shared and
    /// applied.
    Status,
}

/// `waf allow ...` and `waf block ...`
#[derive(Subcommand, Debug)]
pub enum ListCmd {
    /// List the entries and where they come from.
    List,
    /// Add an address or CIDR.
    Add {
        /// Address or CIDR.
        cidr: String,
        /// Free text kept with the entry.
        #[arg(long, default_value = "")]
        comment: String,
    },
    /// Remove an entry added through the API or CLI.
    Rm {
        /// Address or CIDR.
        cidr: String,
    },
}

struct Client {
    base: String,
    token: String,
}

fn on_off(s: &str) -> Result<bool> {
    match s {
        "on" | "true" | "1" | "yes" => Ok(true),
        "off" | "false" | "0" | "no" => Ok(false),
        _ => bail!("`{s}`: expected on or off"),
    }
}

impl Client {
    fn new(a: &ApiArgs) -> Result<Self> {
        let token = match &a.token {
            Some(t) => t.trim().to_string(),
            None => std::fs::read_to_string(&a.token_file)
                .map(|t| t.trim().to_string())
                .map_err(|e| {
                    anyhow!(
                        "no API token: set WAF_API_TOKEN or --token, or make {} readable ({e})",
                        a.token_file.display()
                    )
                })?,
        };
        Ok(Self {
            base: a.api.trim_end_matches('/').to_string(),
            token,
        })
    }

    fn call<T: serde::de::DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: Option<&impl serde::Serialize>,
    ) -> Result<T> {
        let url = format!("{}{path}", self.base);
        let req = ureq::request(method, &url)
            .set("Authorization", &format!("Bearer {}", self.token))
            .timeout(std::time::Duration::from_secs(30));
        let resp = match body {
            Some(b) => req.send_json(serde_json::to_value(b)?),
            None => req.call(),
        };
        match resp {
            Ok(r) => {
                let text = r.into_string().context("reading the API's answer")?;
                serde_json::from_str(&text).with_context(|| {
                    format!("the API's answer to {method} {path} is not what this CLI reads")
                })
            }
            Err(ureq::Error::Status(code, r)) => {
                let text = r.into_string().unwrap_or_default();
                let msg = serde_json::from_str::<ErrorBody>(&text)
                    .map(|e| e.error)
                    .unwrap_or(text);
                bail!("{code}: {msg}")
            }
            Err(e) => bail!(
                "cannot reach the waf API at {} ({e}); is `waf run` running? (WAF_API sets the address)",
                self.base
            ),
        }
    }

    fn get<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.call(path_method::GET, path, None::<&()>)
    }
}

mod path_method {
    pub const GET: &str = "GET";
}

/// Percent-encodes an address for a path segment.
fn encode(addr: &str) -> String {
    addr.replace('%', "%25").replace('/', "%2F")
}

fn table(headers: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut w: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<width$}", width = w[i]))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    let mut out = vec![line(headers.iter().map(|h| h.to_string()).collect())];
    out.extend(rows.into_iter().map(line));
    out.join("\n")
}

fn s(v: &Value, k: &str) -> String {
    match v.get(k) {
        Some(Value::String(x)) => x.clone(),
        Some(Value::Null) | None => "-".into(),
        Some(x) => x.to_string(),
    }
}

fn human_secs(secs: Option<u64>) -> String {
    match secs {
        Some(n) => Dur::secs(n).to_string(),
        None => "permanent".into(),
    }
}

fn print<T: serde::Serialize>(a: &ApiArgs, v: &T, human: impl FnOnce(&T) -> String) {
    if a.json {
        println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
    } else {
        println!("{}", human(v));
    }
}

fn ban_rows(bans: &[BanView]) -> String {
    let rows = bans
        .iter()
        .map(|b| {
            let source = serde_json::to_value(b.source)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            vec![
                b.addr.clone(),
                match &b.origin {
                    Some(o) => format!("{source} ({o})"),
                    None => source,
                },
                human_secs(b.remaining_s),
                b.offence.to_string(),
                b.reason.clone(),
            ]
        })
        .collect();
    table(
        &["ADDRESS", "SOURCE", "REMAINING", "OFFENCE", "REASON"],
        rows,
    )
}

/// Every ban, page after page.
fn all_bans(c: &Client) -> Result<Vec<BanView>> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let path = match &after {
            Some(a) => format!("/v1/bans?limit={MAX_PAGE}&after={}", encode(a)),
            None => format!("/v1/bans?limit={MAX_PAGE}"),
        };
        let page: BanPage = c.get(&path)?;
        out.extend(page.bans);
        match page.next {
            Some(n) => after = Some(n),
            None => return Ok(out),
        }
    }
}

/// Every entry of a list, page after page.
fn all_entries(c: &Client, which: &str) -> Result<Vec<ListEntry>> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let path = match &after {
            Some(a) => format!("/v1/{which}?limit={MAX_PAGE}&after={}", encode(a)),
            None => format!("/v1/{which}?limit={MAX_PAGE}"),
        };
        let page: ListPage = c.get(&path)?;
        out.extend(page.entries);
        match page.next {
            Some(n) => after = Some(n),
            None => return Ok(out),
        }
    }
}

/// Runs `waf bans ...`.
pub fn bans(a: &ApiArgs, cmd: BansCmd) -> Result<()> {
    let c = Client::new(a)?;
    match cmd {
        BansCmd::List => {
            let bans = all_bans(&c)?;
            print(a, &bans, |b| ban_rows(b));
        }
        BansCmd::Add {
            addr,
            duration,
            reason,
            force,
        } => {
            let net = parse_net(&addr).map_err(|e| anyhow!(e))?;
            let duration = match duration.as_deref() {
                None => DurationField::Policy,
                Some(d) => match d
                    .parse::<BanLength>()
                    .map_err(|e| anyhow!("--duration: {e}"))?
                {
                    BanLength::Permanent => DurationField::Permanent,
                    BanLength::For(d) => DurationField::For(d),
                },
            };
            if let Some(r) = &reason {
                check_text("--reason", r, MAX_REASON).map_err(|e| anyhow!(e))?;
            }
            let body = BanRequest {
                addr: Addr(net.to_string()),
                duration,
                reason: reason.map(Reason),
                force,
            };
            let b: BanView = c.call("POST", "/v1/bans", Some(&body))?;
            print(a, &b, |b| {
                format!(
                    "banned {} ({}, offence {})",
                    b.addr,
                    human_secs(b.remaining_s),
                    b.offence
                )
            });
        }
        BansCmd::Rm { addr } => {
            let net = parse_net(&addr).map_err(|e| anyhow!(e))?;
            let path = format!("/v1/bans/{}", encode(&net.to_string()));
            let b: BanView = c.call("DELETE", &path, None::<&()>)?;
            print(a, &b, |b| format!("unbanned {}", b.addr));
        }
    }
    Ok(())
}

/// Runs `waf allow ...` (`which` = "allowlist") or `waf block ...`.
pub fn list(a: &ApiArgs, which: &str, cmd: ListCmd) -> Result<()> {
    let c = Client::new(a)?;
    match cmd {
        ListCmd::List => {
            let entries = all_entries(&c, which)?;
            print(a, &entries, |v| {
                let rows = v
                    .iter()
                    .map(|e| vec![e.cidr.clone(), e.origin.clone(), e.comment.clone()])
                    .collect();
                table(&["CIDR", "ORIGIN", "COMMENT"], rows)
            });
        }
        ListCmd::Add { cidr, comment } => {
            let net = parse_net(&cidr).map_err(|e| anyhow!(e))?;
            check_text("--comment", &comment, MAX_COMMENT).map_err(|e| anyhow!(e))?;
            let body = ListRequest {
                cidr: Addr(net.to_string()),
                comment: Comment(comment),
            };
            let e: ListEntry = c.call("POST", &format!("/v1/{which}"), Some(&body))?;
            print(a, &e, |e| format!("added {} to the {which}", e.cidr));
        }
        ListCmd::Rm { cidr } => {
            let net = parse_net(&cidr).map_err(|e| anyhow!(e))?;
            let path = format!("/v1/{which}/{}", encode(&net.to_string()));
            let r: Removed = c.call("DELETE", &path, None::<&()>)?;
            print(a, &r, |_| format!("removed {net} from the {which}"));
        }
    }
    Ok(())
}

/// Runs `waf stats`.
pub fn stats(a: &ApiArgs) -> Result<()> {
    let v: Value = Client::new(a)?.get("/v1/stats")?;
    print(a, &v, |v| {
        let mut rows: Vec<Vec<String>> = v["counters"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, c)| vec![k.clone(), s(c, "packets"), s(c, "bytes")])
                    .collect()
            })
            .unwrap_or_default();
        rows.sort_by(|x, y| x[0].cmp(&y[0]));
        // Source policies: what each tag dropped (or would have), most first.
        let mut tags: Vec<Vec<String>> = v["sources"]["tags"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, c)| vec![k.clone(), s(c, "policy"), s(c, "packets"), s(c, "bytes")])
                    .collect()
            })
            .unwrap_or_default();
        tags.sort_by_key(|r| std::cmp::Reverse(r[2].parse::<u64>().unwrap_or(0)));
        let sources = if v["sources"].is_null() {
            String::new()
        } else {
            format!(
                "\n\nsource policies: {} prefixes\n{}",
                s(&v["sources"], "prefixes"),
                table(&["TAG", "POLICY", "PACKETS", "BYTES"], tags)
            )
        };
        // The findings store, when the daemon has one.
        let f = &v["findings"];
        let findings = if f["written"].is_null() {
            String::new()
        } else {
            format!(
                "\nfindings: written {}, skipped by sampling {}, dropped (queue full) {}, \
                 write errors {}   inspected: proxy {}, mirror {}",
                s(f, "written"),
                s(f, "skipped"),
                s(f, "dropped"),
                s(f, "write_errors"),
                s(&f["inspected"], "proxy"),
                s(&f["inspected"], "mirror"),
            )
        };
        format!(
            "{}{sources}\n\nbans: {} (ipv6 {}, prefixes {})   mode: monitor={} emergency={}   uptime: {}{findings}",
            table(&["COUNTER", "PACKETS", "BYTES"], rows),
            s(&v["bans"], "total"),
            s(&v["bans"], "ipv6"),
            s(&v["bans"], "prefixes"),
            s(&v["mode"], "monitor"),
            s(&v["mode"], "emergency"),
            human_secs(v["uptime_s"].as_u64()),
        )
    });
    Ok(())
}

/// Runs `waf health`.
pub fn health(a: &ApiArgs) -> Result<()> {
    let v: Value = Client::new(a)?.get("/v1/health")?;
    print(a, &v, |v| {
        let mut out = format!(
            "status: {}   bans: {}   uptime: {}",
            s(v, "status"),
            s(v, "bans"),
            human_secs(v["uptime_s"].as_u64())
        );
        for al in v["alarms"].as_array().into_iter().flatten() {
            out.push_str(&format!("\nALARM {}: {}", s(al, "kind"), s(al, "message")));
        }
        out
    });
    Ok(())
}

/// Runs `waf fleet ...`.
pub fn fleet(a: &ApiArgs, cmd: FleetCmd) -> Result<()> {
    match cmd {
        FleetCmd::Status => {
            let st: FleetStatus = Client::new(a)?.get("/v1/fleet")?;
            print(a, &st, |st| {
                if !st.enabled {
                    return "fleet: off (no [fleet] in the config)".into();
                }
                format!(
                    "fleet: {}   node: {}   bucket: {}   last sync: {}   lag: {}   outbox: {}\n\
                     published: {}   applied: {}   refused (allowlist): {}   refused (too wide): {}   dropped: {}\n\
                     strikes sent: {}   strikes received: {}   races lost: {}   snapshots written: {}   read: {}",
                    if st.connected {
                        "connected"
                    } else {
                        "disconnected"
                    },
                    st.node.as_deref().unwrap_or("-"),
                    st.bucket.as_deref().unwrap_or("-"),
                    st.last_sync.as_deref().unwrap_or("never"),
                    st.lag,
                    st.outbox,
                    st.published,
                    st.applied,
                    st.refused_allowlist,
                    st.refused_too_wide,
                    st.dropped,
                    st.strikes_sent,
                    st.strikes_received,
                    st.races_lost,
                    st.snapshots_written,
                    st.snapshots_read,
                )
            });
        }
    }
    Ok(())
}

/// Runs `waf mode`.
pub fn mode(
    a: &ApiArgs,
    monitor: Option<String>,
    emergency: Option<String>,
    force: bool,
) -> Result<()> {
    let c = Client::new(a)?;
    let v: ModeView = if monitor.is_none() && emergency.is_none() {
        c.get("/v1/mode")?
    } else {
        let body = ModeRequest {
            monitor: monitor
                .map(|m| on_off(&m).context("--monitor"))
                .transpose()?,
            emergency: emergency
                .map(|e| on_off(&e).context("--emergency"))
                .transpose()?,
            force,
        };
        c.call("PUT", "/v1/mode", Some(&body))?
    };
    print(a, &v, |v| {
        format!("monitor: {}   emergency: {}", v.monitor, v.emergency)
    });
    Ok(())
}

/// Runs `waf export FILE` (`-` for stdout).
pub fn export(a: &ApiArgs, file: &str) -> Result<()> {
    let v: Export = Client::new(a)?.get("/v1/export")?;
    let text = serde_json::to_string_pretty(&v)? + "\n";
    if file == "-" {
        print!("{text}");
    } else {
        std::fs::write(file, text).with_context(|| format!("writing {file}"))?;
        eprintln!(
            "exported {} bans, {} allowlist and {} blocklist entries to {file}",
            v.bans.len(),
            v.allowlist.len(),
            v.blocklist.len()
        );
    }
    Ok(())
}

/// Runs `waf import FILE` (`-` for stdin).
pub fn import(a: &ApiArgs, file: &str) -> Result<()> {
    let mut text = String::new();
    if file == "-" {
        std::io::stdin().read_to_string(&mut text)?;
    } else {
        text = std::fs::read_to_string(file).with_context(|| format!("reading {file}"))?;
    }
    let doc: Export =
        serde_json::from_str(&text).map_err(|e| anyhow!("{file}: not a waf export: {e}"))?;
    let v: ImportReport = Client::new(a)?.call("POST", "/v1/import", Some(&doc))?;
    print(a, &v, |v| {
        let mut out = format!(
            "imported {} bans, {} allowlist and {} blocklist entries",
            v.bans, v.allowlist, v.blocklist
        );
        for sk in &v.skipped {
            out.push_str(&format!("\nskipped: {sk}"));
        }
        out
    });
    Ok(())
}

/// Runs `waf inspect`: JSON lines in, one verdict line out per input line,
/// in order; a line that cannot be parsed gets `"action": "pass"` and an
/// `"error"`, and processing goes on.
pub fn inspect(
    file: Option<&str>,
    config: Option<&std::path::Path>,
    paranoia: Option<u8>,
    threads: Option<usize>,
) -> Result<()> {
    let mut detect = match config {
        Some(p) => crate::config::Config::load(p)?.engine_config(),
        None => crate::detect::DetectConfig::default(),
    };
    if let Some(p) = paranoia {
        detect.paranoia = p;
        detect
            .validate()
            .map_err(|e| anyhow!("--paranoia {p}: {e}"))?;
    }
    let engine = crate::detect::Engine::new(&detect).map_err(|e| anyhow!("[detect]: {e}"))?;
    let threads = threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let stdout = std::io::stdout();
    let out = std::io::BufWriter::new(stdout.lock());
    let input: Box<dyn std::io::BufRead> = match file {
        None | Some("-") => Box::new(std::io::stdin().lock()),
        Some(f) => {
            let file = std::fs::File::open(f).with_context(|| format!("opening {f}"))?;
            if f.ends_with(".gz") {
                bail!("{f}: decompress it first (zcat {f} | waf inspect -)");
            }
            Box::new(std::io::BufReader::new(file))
        }
    };
    let stats = crate::detect::inspect_lines(input, out, &engine, threads)?;
    eprintln!(
        "inspected {} requests: {} block, {} pass, {} unreadable",
        stats.lines, stats.blocked, stats.passed, stats.errors
    );
    Ok(())
}
