//! The access log into hourly buckets: read a line at a time (at most
//! `MAX_LINE` bytes each), parsed by `anomaly::logline`, the proxy's own
//! formats read back.

use std::{
    io::{BufRead as _, BufReader, Read as _},
    path::Path,
};

use super::{Hour, Inputs, MAX_LINE, MAX_WINDOW};
use crate::values::rfc3339;

/// Per-hour counts over a window.
pub struct Hours {
    start: u64,
    until: u64,
    rows: Vec<(u64, u64)>,
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
            rows: vec![(0, 0); n],
        }
    }

    /// Counts one request at `time` (outside the window: ignored).
    pub fn add(&mut self, time: u64, blocked: bool) -> bool {
        if time < self.start || time > self.until {
            return false;
        }
        let Some(row) = self.rows.get_mut(((time - self.start) / 3600) as usize) else {
            return false;
        };
        if blocked {
            row.0 += 1;
        } else {
            row.1 += 1;
        }
        true
    }

    /// The buckets.
    pub fn rows(&self) -> Vec<Hour> {
        self.rows
            .iter()
            .enumerate()
            .map(|(i, (b, p))| Hour {
                hour: rfc3339(self.start + i as u64 * 3600),
                blocked: *b,
                passed: *p,
            })
            .collect()
    }
}

/// Reads the log at `path` into `hours` (a missing file reads as empty).
pub fn read(path: &Path, hours: &mut Hours, inputs: &mut Inputs) {
    let Ok(f) = std::fs::File::open(path) else {
        return;
    };
    let mut r = BufReader::with_capacity(256 * 1024, f);
    let mut buf = Vec::with_capacity(1024);
    loop {
        buf.clear();
        let Ok(n) = r.by_ref().take(MAX_LINE as u64).read_until(b'\n', &mut buf) else {
            return;
        };
        if n == 0 {
            return;
        }
        if buf.last() != Some(&b'\n') && n == MAX_LINE {
            // Too long: skip to the end of the line.
            inputs.log_unreadable += 1;
            let mut sink = Vec::new();
            loop {
                sink.clear();
                match r
                    .by_ref()
                    .take(MAX_LINE as u64)
                    .read_until(b'\n', &mut sink)
                {
                    Ok(0) | Err(_) => return,
                    Ok(_) if sink.last() == Some(&b'\n') => break,
                    Ok(_) => {}
                }
            }
            continue;
        }
        let line = String::from_utf8_lossy(&buf);
        match crate::anomaly::logline::parse(line.trim_end()) {
            Some(rec) if hours.add(rec.time, rec.status == 403) => inputs.log_lines += 1,
            Some(_) => {}
            None if !line.trim().is_empty() => inputs.log_unreadable += 1,
            None => {}
        }
    }
}
