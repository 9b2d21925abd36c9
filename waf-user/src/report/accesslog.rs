//! The access log into hourly buckets: read a line at a time (at most
//! `MAX_LINE` bytes each), parsed by `anomaly::logline`, the proxy's own
//! formats read back.

use std::path::Path;

use super::{Hour, Inputs, MAX_LINE, MAX_WINDOW};
use crate::values::rfc3339;

/// What became of a request, as its log line tells.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    /// Refused by the proxy (blocked, rate-limited, a failed challenge, a
    /// closed route, unparsable or too large, an inspection error).
    Blocked,
    /// Answered with a challenge page.
    Challenged,
    /// Forwarded (passed, would-block in monitor mode, exempt) or answered
    /// by the proxy without refusing it (a CORS preflight).
    Passed,
}

/// The fate of a request from its verdict; a line without one (a log
/// written by something else in the same format) falls back to its status:
/// 403 is blocked.
pub fn fate(verdict: &str, status: u16) -> Fate {
    match verdict {
        "" => {
            if status == 403 {
                Fate::Blocked
            } else {
                Fate::Passed
            }
        }
        "pass" | "pass_partial" | "would_block" | "exempt" | "error_open" | "challenge_passed"
        | "cors_preflight" => Fate::Passed,
        "challenged" | "challenge_busy" => Fate::Challenged,
        // Every other verdict the proxy writes refuses the request; one
        // added later is counted as refused only if its status says so.
        "block" | "bot_blocked" | "rate_limited" | "route_closed" | "method_not_allowed"
        | "cors_refused" | "challenge_failed" | "behavior" | "too_large" | "unparsable"
        | "error" | "block_response" => Fate::Blocked,
        _ if status >= 400 => Fate::Blocked,
        _ => Fate::Passed,
    }
}

/// Per-hour counts over a window.
pub struct Hours {
    start: u64,
    until: u64,
    rows: Vec<[u64; 3]>,
}

impl Hours {
    /// Buckets from the hour holding `since` to the one holding `until`.
    pub fn new(since: u64, until: u64) -> Hours {
        let start = since - since % 3600;
        let until = until.max(start).min(start + MAX_WINDOW.as_secs() + 3600);
        let n = ((until - start) / 3600 + 1) as usize;
        Hours {
            start,
            until,
            rows: vec![[0; 3]; n],
        }
    }

    /// Counts one request at `time` (outside the window: ignored).
    pub fn add(&mut self, time: u64, fate: Fate) -> bool {
        if time < self.start || time > self.until {
            return false;
        }
        let Some(row) = self.rows.get_mut(((time - self.start) / 3600) as usize) else {
            return false;
        };
        row[fate as usize] += 1;
        true
    }

    /// The buckets.
    pub fn rows(&self) -> Vec<Hour> {
        self.rows
            .iter()
            .enumerate()
            .map(|(i, [b, c, p])| Hour {
                hour: rfc3339(self.start + i as u64 * 3600),
                blocked: *b,
                challenged: *c,
                passed: *p,
            })
            .collect()
    }
}

/// Reads the log at `path` into `hours` (a missing file reads as empty;
/// a read error ends the reading).
pub fn read(path: &Path, hours: &mut Hours, inputs: &mut Inputs) {
    let Ok(f) = std::fs::File::open(path) else {
        return;
    };
    let _ = crate::values::each_line(f, MAX_LINE, |line| {
        let Some(line) = line else {
            inputs.log_unreadable += 1; // too long
            return;
        };
        let line = String::from_utf8_lossy(line);
        match crate::anomaly::logline::parse(line.trim_end()) {
            Some(rec) if hours.add(rec.time, fate(&rec.verdict, rec.status)) => {
                inputs.log_lines += 1
            }
            Some(_) => {}
            None if !line.trim().is_empty() => inputs.log_unreadable += 1,
            None => {}
        }
    });
}
