//! The proxy's access log: one line per request with the verdict, score and
//! reason, written by a thread of its own (no file I/O on the async
//! workers); lines beyond what it can take are counted, never a stall.

use std::{
    io::Write as _,
    net::IpAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
        mpsc,
    },
    time::{Instant, SystemTime},
};

use super::config::{AccessLog, AccessLogFormat};

/// What happened to a request.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The status the client got.
    pub status: u16,
    /// `pass`, `block`, `exempt`, `rate_limited`...
    pub verdict: &'static str,
    /// Why (the first finding, or what refused it).
    pub reason: String,
    /// The anomaly score.
    pub score: u32,
    /// The status is the application's (the request was forwarded and the
    /// upstream answered), not one of ours.
    pub upstream: bool,
}

impl Outcome {
    /// Says whether the application gave the status.
    pub fn from_app(mut self, upstream: bool) -> Self {
        self.upstream = upstream;
        self
    }
}

/// What the source policies' databases say of a client: its country
/// (ISO code) and autonomous system, where a database is configured.
pub type Geo = (Option<[u8; 2]>, Option<u32>);

/// Looks a client up in the source policies' databases.
pub type GeoLookup = Arc<dyn Fn(IpAddr) -> Geo + Send + Sync>;

/// One request's line, before formatting.
pub struct Entry<'a> {
    /// The client.
    pub remote: IpAddr,
    /// Its country and ASN, if known.
    pub geo: Geo,
    /// Method as sent.
    pub method: &'a str,
    /// Target as sent.
    pub target: &'a str,
    /// User-Agent.
    pub ua: &'a str,
    /// Referer.
    pub referer: &'a str,
    /// The request body's length as declared (`Content-Length`; 0 when
    /// absent or chunked).
    pub bytes: u64,
    /// The request id.
    pub id: &'a str,
    /// What happened.
    pub outcome: &'a Outcome,
    /// When the request came in.
    pub started: Instant,
}

/// The access log's sender.
pub struct AccessLogger {
    tx: Option<mpsc::SyncSender<String>>,
    format: AccessLogFormat,
    /// Lines dropped because the writer fell behind.
    pub dropped: Arc<AtomicU64>,
}

const QUEUE: usize = 65_536;

impl AccessLogger {
    /// Opens the log (a file is created if missing, appended to) and starts
    /// its writer thread.
    pub fn open(target: &AccessLog, format: AccessLogFormat) -> anyhow::Result<Self> {
        let out: Box<dyn std::io::Write + Send> = match target {
            AccessLog::Off => {
                return Ok(Self {
                    tx: None,
                    format,
                    dropped: Arc::default(),
                });
            }
            AccessLog::Stdout => Box::new(std::io::stdout()),
            AccessLog::File(p) => Box::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .map_err(|e| anyhow::anyhow!("proxy.access_log {}: {e}", p.display()))?,
            ),
        };
        let (tx, rx) = mpsc::sync_channel::<String>(QUEUE);
        std::thread::Builder::new()
            .name("waf-access-log".into())
            .spawn(move || {
                let mut w = std::io::BufWriter::with_capacity(64 * 1024, out);
                while let Ok(line) = rx.recv() {
                    let _ = w.write_all(line.as_bytes());
                    while let Ok(more) = rx.try_recv() {
                        let _ = w.write_all(more.as_bytes());
                    }
                    let _ = w.flush();
                }
            })?;
        Ok(Self {
            tx: Some(tx),
            format,
            dropped: Arc::default(),
        })
    }

    /// Logs one request.
    pub fn log(&self, e: &Entry<'_>) {
        let Some(tx) = &self.tx else { return };
        let line = format_line(self.format, e) + "\n";
        if tx.try_send(line).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn format_line(format: AccessLogFormat, e: &Entry<'_>) -> String {
    let now = humantime::format_rfc3339_seconds(SystemTime::now());
    let ms = e.started.elapsed().as_secs_f64() * 1000.0;
    let o = e.outcome;
    // Quotes and backslashes escaped, control characters too: a request
    // cannot forge a log line.
    let q = |s: &str| s.escape_default().to_string();
    let remote = e.remote;
    let id = e.id;
    let bytes = e.bytes;
    let country = e.geo.0.map(|c| String::from_utf8_lossy(&c).into_owned());
    // Appended to the text formats only when a database knows the client.
    let geo = match (&country, e.geo.1) {
        (None, None) => String::new(),
        (c, a) => format!(
            " country={} asn={}",
            c.as_deref().unwrap_or("-"),
            a.map_or("-".to_string(), |a| a.to_string())
        ),
    };
    match format {
        AccessLogFormat::Json => {
            let mut v = serde_json::json!({
                "time": now.to_string(), "remote": remote.to_string(), "method": e.method,
                "target": e.target, "status": o.status, "verdict": o.verdict, "score": o.score,
                "reason": o.reason, "user_agent": e.ua, "referer": e.referer, "request_id": id,
                "bytes": e.bytes, "ms": (ms * 1000.0).round() / 1000.0,
            });
            if let Some(c) = country {
                v["country"] = c.into();
            }
            if let Some(a) = e.geo.1 {
                v["asn"] = a.into();
            }
            v.to_string()
        }
        AccessLogFormat::Common => format!(
            "{remote} - - [{now}] \"{} {} HTTP/1.1\" {} - verdict={} score={} reason=\"{}\" id={id} bytes={bytes}{geo}",
            q(e.method),
            q(e.target),
            o.status,
            o.verdict,
            o.score,
            q(&o.reason)
        ),
        AccessLogFormat::Combined => format!(
            "{remote} - - [{now}] \"{} {} HTTP/1.1\" {} - \"{}\" \"{}\" verdict={} score={} reason=\"{}\" id={id} bytes={bytes}{geo}",
            q(e.method),
            q(e.target),
            o.status,
            q(e.referer),
            q(e.ua),
            o.verdict,
            o.score,
            q(&o.reason)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_cannot_forge_a_line() {
        let o = Outcome {
            status: 403,
            verdict: "block",
            reason: "x\ny".into(),
            score: 5,
            upstream: false,
        };
        let e = Entry {
            remote: "192.0.2.1".parse().unwrap(),
            geo: (None, None),
            method: "GET",
            target: "/a\"b\r\n203.0.113.1 - - [now] \"GET / HTTP/1.1\" 200",
            ua: "ua\n",
            referer: "",
            bytes: 0,
            id: "1",
            outcome: &o,
            started: Instant::now(),
        };
        for f in [
            AccessLogFormat::Json,
            AccessLogFormat::Common,
            AccessLogFormat::Combined,
        ] {
            let line = format_line(f, &e);
            assert!(!line.contains('\n') && !line.contains('\r'), "{line}");
            assert!(!line.contains("country"), "no database, no country: {line}");
        }
    }

    #[test]
    fn country_and_asn_are_logged_when_known() {
        let o = Outcome {
            status: 200,
            verdict: "pass",
            reason: String::new(),
            score: 0,
            upstream: true,
        };
        let e = Entry {
            remote: "192.0.2.1".parse().unwrap(),
            geo: (Some(*b"DE"), Some(64500)),
            method: "GET",
            target: "/",
            ua: "",
            referer: "",
            bytes: 0,
            id: "1",
            outcome: &o,
            started: Instant::now(),
        };
        let json: serde_json::Value =
            serde_json::from_str(&format_line(AccessLogFormat::Json, &e)).unwrap();
        assert_eq!(json["country"], "DE");
        assert_eq!(json["asn"], 64500);
        let line = format_line(AccessLogFormat::Combined, &e);
        assert!(line.ends_with(" country=DE asn=64500"), "{line}");
        let only_asn = Entry {
            geo: (None, Some(7)),
            ..e
        };
        let line = format_line(AccessLogFormat::Common, &only_asn);
        assert!(line.ends_with(" country=- asn=7"), "{line}");
    }
}
