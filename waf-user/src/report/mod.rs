//! Reports over a window (`waf report`, `GET /v1/report`): top sources
//! (with country and ASN when `[sources]` has the databases), rules,
//! categories and paths from the findings store; requests blocked and
//! challenged and passed per hour from the access log (read back with
//! `anomaly::logline`, each request's fate from its verdict); bans made in
//! the window, by reason and source, how many were repeat offences and how
//! many have ended, from the ban ledger (`firewall::journal::ledger`) and
//! the bans in force.
//!
//! Memory is bounded whatever the inputs: every ranking is a [`TopK`]
//! capped at [`KEYS`] keys, the findings read at most [`MAX_FINDINGS`],
//! access-log lines at most [`MAX_LINE`] bytes each (longer ones skipped),
//! the hourly buckets at most [`MAX_WINDOW`] / 1h.

mod accesslog;
#[cfg(test)]
mod tests;
pub mod topk;

use std::{net::IpAddr, path::Path, time::Duration};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use self::topk::TopK;
use crate::{findings::Store, firewall::Ban, values::rfc3339};

/// Keys each ranking holds at most while counting.
pub const KEYS: usize = 10_000;
/// Rows of each ranking in a report.
pub const TOP: usize = 10;
/// Findings a report reads at most (the newest).
pub const MAX_FINDINGS: usize = 1_000_000;
/// Longest access-log line read.
pub const MAX_LINE: usize = 64 * 1024;
/// The longest window.
pub const MAX_WINDOW: Duration = Duration::from_secs(31 * 86_400);
/// Ban ledger entries a report reads at most (the ledger's two files hold
/// fewer).
pub const MAX_LEDGER: usize = 1_000_000;

/// A key and its count.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Count {
    /// The rule id, category, path or reason.
    pub key: String,
    /// How many.
    pub count: u64,
}

/// A source and its findings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SourceCount {
    /// The client address.
    pub source: String,
    /// Findings against it.
    pub count: u64,
    /// Its country (ISO code), when a country database is configured.
    pub country: Option<String>,
    /// Its autonomous system, when an ASN database is configured.
    pub asn: Option<u32>,
}

/// One hour of the access log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Hour {
    /// The hour's start (RFC 3339).
    pub hour: String,
    /// Requests the proxy refused (its verdict: blocked by a rule, a rate
    /// limit, a route, a failed challenge; for a log line without a
    /// verdict, status 403).
    pub blocked: u64,
    /// Requests answered with a challenge page.
    pub challenged: u64,
    /// Every other request (forwarded, including would-block in monitor
    /// mode).
    pub passed: u64,
}

/// Bans made in the window: those the ban ledger holds (made here or
/// applied from the fleet, ended or not) and those in force.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BanSummary {
    /// Bans made in the window.
    pub total: u64,
    /// Of those, second or later offences of their source.
    pub repeat_offenders: u64,
    /// Of those, still in force.
    pub in_force: u64,
    /// By reason.
    pub by_reason: Vec<Count>,
    /// By who made them (`detection`, `rate-limit`, `manual`, `fleet`,
    /// `import`...).
    pub by_source: Vec<Count>,
}

/// What a report read.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Inputs {
    /// The access log read (none: off, or not a file).
    pub access_log: Option<String>,
    /// Its lines in the window.
    pub log_lines: u64,
    /// Its lines that did not parse, or were too long.
    pub log_unreadable: u64,
    /// Findings read from the store.
    pub findings: u64,
    /// The store held more findings in the window than a report reads.
    pub findings_capped: bool,
    /// Ban ledger lines read.
    pub ledger_lines: u64,
    /// Ban ledger lines that did not parse (a torn write, damage).
    pub ledger_unreadable: u64,
}

/// `GET /v1/report`, `waf report --json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Report {
    /// The window's start (RFC 3339).
    pub since: String,
    /// The window's end (RFC 3339).
    pub until: String,
    /// Some ranking dropped keys while counting (more than 10000 distinct):
    /// its counts are lower bounds.
    pub approximate: bool,
    /// Findings in the window.
    pub findings: u64,
    /// Sources with the most findings.
    pub top_sources: Vec<SourceCount>,
    /// Rules that matched most.
    pub top_rules: Vec<Count>,
    /// Categories (`sqli`, `xss`...) that matched most.
    pub top_categories: Vec<Count>,
    /// Canonical paths with the most findings.
    pub top_paths: Vec<Count>,
    /// Requests blocked and passed per hour (from the access log).
    pub hours: Vec<Hour>,
    /// Bans made in the window.
    pub bans: BanSummary,
    /// What was read.
    pub inputs: Inputs,
}

/// What the daemon hands a report.
pub struct Sources<'a> {
    /// The window's start and end (Unix seconds).
    pub since: u64,
    /// The window's end.
    pub until: u64,
    /// The findings store (none: off).
    pub findings: Option<&'a Store>,
    /// The access log file, if the proxy writes one.
    pub access_log: Option<&'a Path>,
    /// The directory of the ban ledger (none: bans in force only).
    pub ledger: Option<&'a Path>,
    /// Bans in force (all; those made in the window are counted).
    pub bans: &'a mut dyn Iterator<Item = Ban>,
    /// Country and ASN of an address.
    pub geo: &'a dyn Fn(IpAddr) -> (Option<[u8; 2]>, Option<u32>),
}

fn counts(t: &TopK) -> Vec<Count> {
    t.top(TOP)
        .into_iter()
        .map(|(key, count)| Count { key, count })
        .collect()
}

/// Builds a report. Blocking (reads files): call it off the async workers.
pub fn build(src: Sources) -> Report {
    let (mut sources, mut rules, mut kinds, mut paths) = (
        TopK::new(KEYS),
        TopK::new(KEYS),
        TopK::new(KEYS),
        TopK::new(KEYS),
    );
    let mut inputs = Inputs::default();
    if let Some(store) = src.findings {
        let (n, capped) = store.scan(src.since.saturating_mul(1000), MAX_FINDINGS, |f| {
            sources.add(&f.source, 1);
            rules.add(&f.rule, 1);
            kinds.add(&f.kind, 1);
            paths.add(&f.path, 1);
        });
        inputs.findings = n;
        inputs.findings_capped = capped;
    }
    let top_sources = sources
        .top(TOP)
        .into_iter()
        .map(|(source, count)| {
            let (country, asn) = source
                .parse::<IpAddr>()
                .map_or((None, None), |ip| (src.geo)(ip));
            SourceCount {
                source,
                count,
                country: country.map(|c| String::from_utf8_lossy(&c).into_owned()),
                asn,
            }
        })
        .collect();
    let mut hours = accesslog::Hours::new(src.since, src.until);
    if let Some(p) = src.access_log {
        inputs.access_log = Some(p.display().to_string());
        accesslog::read(p, &mut hours, &mut inputs);
    }
    let mut ledger = Vec::new();
    if let Some(dir) = src.ledger {
        let since = u32::try_from(src.since).unwrap_or(u32::MAX);
        let st = crate::firewall::journal::ledger::read(dir, since, |e| {
            if ledger.len() < MAX_LEDGER {
                ledger.push(e);
            }
        });
        inputs.ledger_lines = st.lines;
        inputs.ledger_unreadable = st.unreadable;
    }
    let bans = ban_summary(src.bans, ledger, src.since);
    let approximate = [&sources, &rules, &kinds, &paths].iter().any(|t| t.pruned);
    Report {
        since: rfc3339(src.since),
        until: rfc3339(src.until),
        approximate,
        findings: inputs.findings,
        top_sources,
        top_rules: counts(&rules),
        top_categories: counts(&kinds),
        top_paths: counts(&paths),
        hours: hours.rows(),
        bans,
        inputs,
    }
}

/// Bans made at or after `since`, from the ledger's entries (in the
/// window already) and the bans in force, each ban once (a ban is its
/// prefix and creation time: an extension writes it to the ledger again):
/// by reason and source, repeat offences, still in force.
pub fn ban_summary(
    bans: &mut dyn Iterator<Item = Ban>,
    ledger: Vec<crate::firewall::journal::ledger::Entry>,
    since: u64,
) -> BanSummary {
    use std::collections::HashMap;
    let (mut reasons, mut who) = (TopK::new(KEYS), TopK::new(16));
    let mut s = BanSummary::default();
    // The ledger's bans, the last line of each winning (an extension
    // updates the reason's text or the expiry, not the ban).
    let mut made: HashMap<(ipnet::IpNet, u32), (u16, String, String)> = HashMap::new();
    for e in ledger {
        if let Ok(net) = e.net.parse::<ipnet::IpNet>() {
            made.insert((net, e.created), (e.offence, e.source, e.reason));
        }
    }
    for b in bans.filter(|b| u64::from(b.meta.created) >= since) {
        s.in_force += 1;
        // In the ledger or not (an import, one made before the ledger
        // existed), counted once, from the state.
        made.remove(&(b.net, b.meta.created));
        s.total += 1;
        if b.meta.offence > 1 {
            s.repeat_offenders += 1;
        }
        reasons.add(&b.meta.reason, 1);
        who.add(b.meta.source.as_str(), 1);
    }
    // Those left have ended.
    for (offence, source, reason) in made.into_values() {
        s.total += 1;
        if offence > 1 {
            s.repeat_offenders += 1;
        }
        reasons.add(&reason, 1);
        who.add(&source, 1);
    }
    s.by_reason = counts(&reasons);
    s.by_source = counts(&who);
    s
}

/// Parses a report window (`24h`, `7d`; at most 31 days).
pub fn parse_since(s: &str) -> Result<Duration, String> {
    let d: crate::values::Dur = s.parse()?;
    if d.0.is_zero() || d.0 > MAX_WINDOW {
        return Err(format!("since: `{s}`: from 1s to 31d"));
    }
    Ok(d.0)
}

/// A report as tables, for people.
pub fn render(r: &Report) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "report {} .. {}{}\nfindings: {}   bans: {} ({} repeat offenders, {} still in force)",
        r.since,
        r.until,
        if r.approximate { " (approximate)" } else { "" },
        r.findings,
        r.bans.total,
        r.bans.repeat_offenders,
        r.bans.in_force
    );
    let _ = writeln!(out, "\ntop sources");
    for s in &r.top_sources {
        let _ = writeln!(
            out,
            "  {:<40} {:>8}  {:<2} {}",
            s.source,
            s.count,
            s.country.as_deref().unwrap_or("-"),
            s.asn.map_or("-".into(), |a| format!("AS{a}"))
        );
    }
    for (title, rows) in [
        ("top rules", &r.top_rules),
        ("top categories", &r.top_categories),
        ("top paths", &r.top_paths),
        ("bans by reason", &r.bans.by_reason),
        ("bans by source", &r.bans.by_source),
    ] {
        let _ = writeln!(out, "\n{title}");
        for c in rows {
            // Keys come from requests: shown escaped, never as raw bytes.
            let _ = writeln!(
                out,
                "  {:<60} {:>8}",
                c.key.escape_debug().to_string(),
                c.count
            );
        }
    }
    let _ = writeln!(out, "\nper hour (blocked / challenged / passed)");
    for h in r
        .hours
        .iter()
        .filter(|h| h.blocked + h.challenged + h.passed > 0)
    {
        let _ = writeln!(
            out,
            "  {}  {:>8} {:>8} {:>8}",
            h.hour, h.blocked, h.challenged, h.passed
        );
    }
    out
}
