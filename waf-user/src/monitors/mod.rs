//! Behaviour monitors (`[monitors.*]`): what a source does over a sliding
//! window, per source (an address, or the IPv6 prefix the caller
//! aggregates to). Each monitor is off unless its table is in the config;
//! a hit is a strike or a ban, as its `action` says. Pure: the proxy feeds
//! [`Monitors`] with requests ([`Monitors::on_request`], and
//! [`Monitors::on_form`] once the body is parsed) and the application's
//! answers ([`Monitors::on_response`]), and acts on the [`Hit`]s.
//!
//! | monitor | what it counts, per source | defaults | fires on |
//! |---|---|---|---|
//! | `usage` | calls to each glob of `routes` (required) | 100 per 1m, strike | the call after `count` (more than `count` calls) |
//! | `not_found` | **distinct** paths answered 404 (a path asked again counts once) | 30 per 1m (`count` at most 64), strike | the `count`-th |
//! | `auth_failures` | 401 and 403 answers | 10 per 1m, strike | the `count`-th |
//! | `server_errors` | 5xx answers but 502, 503 and 504 (an outage answers them to everyone) | 10 per 1m, strike | the `count`-th |
//! | `honeypot` | a trap path (`paths`); a form filling a hidden field (`fields`); a form posted less than `min_form_seconds` (default 2, 0: off) after the source got its page | 1 per 1h, ban | the `count`-th |
//! | `headers` | requests from a browser user agent with headers no such browser sends ([`headers`] has the rules) | 3 per 10m, strike | the `count`-th |
//!
//! `usage` counts an allowance (like a rate limit: `count` calls are
//! fine); the others count misbehaviour (`count` of it is a hit: a
//! honeypot's default of 1 bans on the first trap). A monitor that fires
//! forgets what it counted for that source, so a burst is one hit, not a
//! hit per request past the threshold. `count` is 1 to 2^32 - 1 and
//! `window` 1 ms to 10 years. Globs (`usage.routes`, `honeypot.paths`) are
//! the config's (`*` any run of characters, `/` included), on the
//! canonical path, ignoring case (a case-insensitive server maps
//! `/WP-ADMIN` to `/wp-admin`).
//!
//! A hidden field (`honeypot.fields`, names compared exactly as the body
//! parser decoded them, in urlencoded and multipart bodies; query
//! parameters are not a form) is filled by any value but the empty one,
//! blanks included: a browser sends the field's value from the page
//! untouched (empty, for a honeypot field), so whatever else it holds came
//! from the client. Keep the field's `value` empty in the page, and give it
//! a name autofill does not know (not `email`, `phone`, `address`).
//!
//! The form timing check: a 2xx answer to a GET of a path whose last
//! segment has no extension or a page's (`.html`, `.php`, ...) is
//! remembered per source for `min_form_seconds` (16 pages at most); a
//! POST with a form body (by Content-Type) whose `Referer` path (or, with
//! no `Referer`, its own path) is such a page, less than `min_form_seconds`
//! after it, is a hit. A POST whose page the source never got (an API
//! client) is not. Password managers that fill and submit at once may
//! beat 2 s: lower it for a login form's sake, or set 0.
//!
//! Windows slide: exact per event up to a threshold of 16 (64 distinct
//! paths), in 16 steps of `window` / 16 beyond (never counting an event
//! that left the window: a monitor never fires early; it may forget one
//! step's events at the trailing edge). Times are the caller's
//! (`Instant`s, never read here); one going backwards is read as no time
//! passed.
//!
//! Memory is bounded: at most [`MAX_KEYS`] keys per monitor (a source, or
//! a source and glob for `usage`), each holding at most 16 events of 8
//! bytes (64 distinct paths for `not_found`, 16 pages for the form timing
//! check). At the cap, a monitor takes about 12 MB with a count of 4 or
//! less, 18 MB with 16 or more, and `not_found` 42 MB with a count of 64
//! (26 MB at its default). A full table takes a new source in the place
//! of the one with the least evidence among a few drawn at random
//! (`table` has the why: an attacker rotating addresses evicts mostly his
//! own, and cannot flush a source close to its threshold cheaply).
//! [`Monitors::retain_recent`] forgets sources idle for a window.
//! A monitor that is off costs nothing.

mod config;
pub mod headers;
mod honeypot;
mod table;

#[cfg(test)]
mod tests;

use std::{
    hash::{BuildHasher, RandomState},
    time::Instant,
};

use ipnet::IpNet;

pub use self::config::{
    HeadersConfig, HoneypotConfig, MAX_DISTINCT, MAX_FIELDS, MAX_FORM_SECONDS, MAX_GLOBS,
    MonitorAction, MonitorsConfig, StatusConfig, UsageConfig,
};
use self::{
    config::Limit,
    table::{Counter, Distinct, Pages, Table, Ticks},
};
use crate::http::Body;

/// The most keys each monitor tracks (see the module doc).
pub const MAX_KEYS: usize = 65_536;
/// The longest evidence, in characters.
pub const MAX_EVIDENCE: usize = 240;
/// The most characters of a path in evidence.
const MAX_SHOWN: usize = 80;

/// A monitor fired for a source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hit {
    /// `usage`, `not_found`, `auth_failures`, `server_errors`, `honeypot`
    /// or `headers`.
    pub monitor: &'static str,
    /// What to do.
    pub action: MonitorAction,
    /// One line for logs and the ban's reason, at most [`MAX_EVIDENCE`]
    /// characters, control characters replaced: `31 distinct not-found
    /// paths in 1m, last /api/item/9f3`.
    pub evidence: String,
}

/// A request, as the monitors read it before it is forwarded.
#[derive(Clone, Copy, Debug)]
pub struct RequestFacts<'a> {
    /// The method as sent.
    pub method: &'a str,
    /// The canonical path (`http::CanonicalPath::path`).
    pub path: &'a str,
    /// The request is HTTP/1.0.
    pub http10: bool,
    /// Header fields (name, value) in order; values that are not text may
    /// be left out.
    pub headers: &'a [(&'a str, &'a str)],
    /// The `Referer` (None: read from `headers`).
    pub referer: Option<&'a str>,
}

/// A text for evidence: control characters replaced, at most
/// [`MAX_SHOWN`] characters (`…` when cut).
fn shown(s: &str) -> String {
    let mut out: String = s
        .chars()
        .take(MAX_SHOWN)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if s.chars().nth(MAX_SHOWN).is_some() {
        out.push('…');
    }
    out
}

/// A monitor's counters, by key.
struct Counted<K> {
    limit: Limit,
    ticks: Ticks,
    table: Table<K, Counter>,
}

impl<K: std::hash::Hash + Eq + Clone> Counted<K> {
    fn new(limit: Limit) -> Self {
        Counted {
            limit,
            ticks: Ticks::new(limit.window.0),
            table: Table::new(MAX_KEYS, limit.window.0),
        }
    }

    /// Counts an event; Some(events) when it fires.
    fn event(&self, key: K, now: Instant) -> Option<u64> {
        let (t, threshold) = (&self.ticks, self.limit.threshold);
        self.table.update(
            key,
            now,
            || Counter::new(now),
            |c| c.record(now, t, threshold),
        )
    }

    fn hit(&self, monitor: &'static str, evidence: String) -> Hit {
        let evidence = evidence.chars().take(MAX_EVIDENCE).collect();
        Hit {
            monitor,
            action: self.limit.action,
            evidence,
        }
    }
}

struct Usage {
    globs: Vec<crate::http::PathGlob>,
    counted: Counted<(IpNet, u8)>,
}

struct NotFound {
    limit: Limit,
    ticks: Ticks,
    table: Table<IpNet, Distinct>,
    keys: RandomState,
}

struct Honeypot {
    cfg: config::Honeypot,
    counted: Counted<IpNet>,
    /// The pages sources got, for the timing check (None: off).
    pages: Option<(Ticks, Table<IpNet, Pages>)>,
    keys: RandomState,
}

/// The monitors of `[monitors.*]` (Send + Sync; sharded inside).
pub struct Monitors {
    usage: Option<Usage>,
    not_found: Option<NotFound>,
    auth_failures: Option<Counted<IpNet>>,
    server_errors: Option<Counted<IpNet>>,
    honeypot: Option<Honeypot>,
    headers: Option<Counted<IpNet>>,
}

impl Monitors {
    /// Checks and compiles the config (errors as [`MonitorsConfig::validate`]).
    pub fn new(cfg: &MonitorsConfig) -> Result<Monitors, String> {
        let c = cfg.compile()?;
        Ok(Monitors {
            usage: c.usage.map(|u| Usage {
                globs: u.globs,
                counted: Counted::new(u.limit),
            }),
            not_found: c.not_found.map(|limit| NotFound {
                limit,
                ticks: Ticks::new(limit.window.0),
                table: Table::new(MAX_KEYS, limit.window.0),
                keys: RandomState::new(),
            }),
            auth_failures: c.auth_failures.map(Counted::new),
            server_errors: c.server_errors.map(Counted::new),
            honeypot: c.honeypot.map(|h| Honeypot {
                pages: h.min_form.map(|m| (Ticks::new(m), Table::new(MAX_KEYS, m))),
                counted: Counted::new(h.limit),
                cfg: h,
                keys: RandomState::new(),
            }),
            headers: c.headers.map(Counted::new),
        })
    }

    /// Before a request is forwarded: `usage`, the honeypot's trap paths
    /// and form timing, `headers`.
    pub fn on_request(&self, source: IpNet, now: Instant, req: &RequestFacts<'_>) -> Vec<Hit> {
        let mut hits = Vec::new();
        if let Some(u) = &self.usage {
            for (i, g) in u.globs.iter().enumerate() {
                if g.is_match(req.path)
                    && let Some(n) = u.counted.event((source, i as u8), now)
                {
                    let w = u.counted.limit.window;
                    let evidence = format!(
                        "{n} calls to {} in {w}, last {}",
                        shown(g.pattern()),
                        shown(req.path)
                    );
                    hits.push(u.counted.hit("usage", evidence));
                }
            }
        }
        if let Some(h) = &self.honeypot
            && let Some(what) = h.request(source, now, req)
        {
            hits.extend(h.event(source, now, what));
        }
        if let Some(c) = &self.headers {
            let broken = headers::judge(req.headers, req.http10);
            if !broken.is_empty()
                && let Some(n) = c.event(source, now)
            {
                let w = c.limit.window;
                let ua = headers::header(req.headers, "user-agent").unwrap_or_default();
                let evidence = format!(
                    "{n} requests with impossible browser headers in {w}, last {} ({})",
                    broken.join(","),
                    shown(ua)
                );
                hits.push(c.hit("headers", evidence));
            }
        }
        hits
    }

    /// Once the body is parsed: the honeypot's hidden fields (a form or
    /// multipart body; other bodies have no fields).
    pub fn on_form(&self, source: IpNet, now: Instant, body: &Body) -> Vec<Hit> {
        let Some(h) = &self.honeypot else {
            return Vec::new();
        };
        match honeypot::filled_field(body, &h.cfg.fields) {
            Some(f) => h.event(source, now, format!("hidden field {} filled", shown(f))),
            None => Vec::new(),
        }
    }

    /// After the application answered (not the proxy's own refusals):
    /// `not_found`, `auth_failures`, `server_errors`, and the pages the
    /// honeypot's timing check remembers.
    pub fn on_response(
        &self,
        source: IpNet,
        now: Instant,
        method: &str,
        path: &str,
        status: u16,
    ) -> Vec<Hit> {
        let mut hits = Vec::new();
        match status {
            404 => {
                if let Some(nf) = &self.not_found
                    && let Some(n) = nf.event(source, now, path)
                {
                    let w = nf.limit.window;
                    let evidence =
                        format!("{n} distinct not-found paths in {w}, last {}", shown(path));
                    hits.push(Hit {
                        monitor: "not_found",
                        action: nf.limit.action,
                        evidence: evidence.chars().take(MAX_EVIDENCE).collect(),
                    });
                }
            }
            401 | 403 => {
                if let Some(c) = &self.auth_failures
                    && let Some(n) = c.event(source, now)
                {
                    let w = c.limit.window;
                    let evidence =
                        format!("{n} auth failures in {w}, last {status} {}", shown(path));
                    hits.push(c.hit("auth_failures", evidence));
                }
            }
            500..=599 if !(502..=504).contains(&status) => {
                if let Some(c) = &self.server_errors
                    && let Some(n) = c.event(source, now)
                {
                    let w = c.limit.window;
                    let evidence =
                        format!("{n} server errors in {w}, last {status} {}", shown(path));
                    hits.push(c.hit("server_errors", evidence));
                }
            }
            200..=299 if method == "GET" && honeypot::page_like(path) => {
                if let Some(h) = &self.honeypot
                    && let Some((t, pages)) = &h.pages
                {
                    let key = h.keys.hash_one(path) as u32;
                    pages.update(source, now, || Pages::new(now), |p| p.record(now, t, key));
                }
            }
            _ => {}
        }
        hits
    }

    /// Forgets sources idle for their monitor's window (the proxy's
    /// janitor calls it every 10 s).
    pub fn retain_recent(&self, now: Instant) {
        if let Some(u) = &self.usage {
            u.counted.table.retain_recent(now);
        }
        if let Some(nf) = &self.not_found {
            nf.table.retain_recent(now);
        }
        for c in [&self.auth_failures, &self.server_errors, &self.headers]
            .into_iter()
            .flatten()
        {
            c.table.retain_recent(now);
        }
        if let Some(h) = &self.honeypot {
            h.counted.table.retain_recent(now);
            if let Some((_, p)) = &h.pages {
                p.retain_recent(now);
            }
        }
    }

    /// Keys held across the monitors (a source counts once per monitor,
    /// and once per glob for `usage`), for tests and metrics.
    pub fn tracked(&self) -> usize {
        let mut n = 0;
        if let Some(u) = &self.usage {
            n += u.counted.table.len();
        }
        if let Some(nf) = &self.not_found {
            n += nf.table.len();
        }
        for c in [&self.auth_failures, &self.server_errors, &self.headers]
            .into_iter()
            .flatten()
        {
            n += c.table.len();
        }
        if let Some(h) = &self.honeypot {
            n += h.counted.table.len();
            if let Some((_, p)) = &h.pages {
                n += p.len();
            }
        }
        n
    }
}

impl NotFound {
    fn event(&self, source: IpNet, now: Instant, path: &str) -> Option<u64> {
        let key = self.keys.hash_one(path) as u32;
        let (t, threshold) = (&self.ticks, self.limit.threshold);
        let cap = MAX_DISTINCT as usize;
        self.table.update(
            source,
            now,
            || Distinct::new(now),
            |d| d.record(now, t, key, threshold, cap),
        )
    }
}

impl Honeypot {
    /// What of a request is a honeypot hit: a trap path, a form posted too
    /// fast.
    fn request(&self, source: IpNet, now: Instant, req: &RequestFacts<'_>) -> Option<String> {
        if self.cfg.traps.iter().any(|g| g.is_match(req.path)) {
            return Some(format!("trap path {}", shown(req.path)));
        }
        let (t, pages) = self.pages.as_ref()?;
        let min = self.cfg.min_form?;
        if !req.method.eq_ignore_ascii_case("POST")
            || !honeypot::is_form(headers::header(req.headers, "content-type"))
        {
            return None;
        }
        let page = match req
            .referer
            .or_else(|| headers::header(req.headers, "referer"))
        {
            Some(r) => honeypot::referer_path(r)?,
            None => req.path.to_owned(),
        };
        let key = self.keys.hash_one(&page) as u32;
        let since = pages.get(&source, now, |p| p.since(now, t, key))??;
        (since < min).then(|| {
            format!(
                "form posted {:.3}s after GET {} (min {:.3}s)",
                since.as_secs_f64(),
                shown(&page),
                min.as_secs_f64()
            )
        })
    }

    /// Counts a hit described by `what`.
    fn event(&self, source: IpNet, now: Instant, what: String) -> Vec<Hit> {
        let Some(n) = self.counted.event(source, now) else {
            return Vec::new();
        };
        let evidence = if self.counted.limit.threshold <= 1 {
            what
        } else {
            let w = self.counted.limit.window;
            format!("{n} honeypot hits in {w}, last {what}")
        };
        vec![self.counted.hit("honeypot", evidence)]
    }
}
