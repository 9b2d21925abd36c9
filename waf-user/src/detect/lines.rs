//! The `waf inspect` driver: JSON lines in, one verdict line out per input
//! line, in the same order, on several threads.
//!
//! Input lines: `{"id": ..., "raw": "<HTTP/1.1 request>"}` or
//! `{"id": ..., "method": "GET", "uri": "/x", "headers": [["Host", "h"]],
//! "body": "..."}`, optionally with `"remote": "<ip>"`, and with a
//! `"response": {"body": "...", "headers": [...]}` that is read for data
//! leaks as the proxy reads the application's answer (`detect/leak.rs`).
//! Output lines:
//! `{"id", "action", "score", "risk", "attacks"}`; a line that cannot be read
//! gives `"action": "pass"` and an `"error"`. Request text made only of
//! characters below U+0100 is read as Latin-1 (one byte per character), so
//! binary bodies survive the trip through JSON.

use std::io::{BufRead, Write};
use std::net::IpAddr;

use serde::Serialize;
use serde_json::Value;

use super::engine::Engine;
use super::verdict::{Action, Verdict};
use crate::http::Request;

/// Lines handed to each thread at a time.
const BATCH_PER_THREAD: usize = 256;

/// Counts of what `inspect_lines` did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct InspectStats {
    /// Lines read (blank lines are skipped and not counted).
    pub lines: usize,
    /// Verdicts that block.
    pub blocked: usize,
    /// Verdicts that pass (errors included).
    pub passed: usize,
    /// Lines that could not be read as a request.
    pub errors: usize,
}

#[derive(Serialize)]
struct Out<'a> {
    id: &'a Value,
    #[serde(flatten)]
    verdict: &'a Verdict,
}

#[derive(Serialize)]
struct ErrOut<'a> {
    id: &'a Value,
    action: Action,
    score: u32,
    attacks: [(); 0],
    error: &'a str,
}

/// Inspects one input line; returns the output line (without newline) and
/// whether it blocked, or an error line.
pub fn inspect_line(line: &[u8], engine: &Engine) -> (String, Result<Action, ()>) {
    let parsed: Result<Value, String> = std::str::from_utf8(line)
        .map_err(|_| "line is not valid UTF-8".to_owned())
        .and_then(|s| serde_json::from_str(s).map_err(|e| format!("invalid JSON: {e}")));
    let v = match parsed {
        Ok(v) => v,
        Err(e) => return error_line(&Value::Null, &e),
    };
    let id = v.get("id").cloned().unwrap_or(Value::Null);
    let (req, remote) = match request_of(&v, engine) {
        Ok(r) => r,
        Err(e) => return error_line(&id, &e),
    };
    let mut verdict = engine.inspect(&req, remote);
    match response_of(&v) {
        Ok(None) => {}
        Ok(Some(body)) => {
            let r = engine.inspect_response(&req.canonical, &body);
            verdict = engine.join_response(verdict, r);
        }
        Err(e) => return error_line(&id, &e),
    }
    let text = serde_json::to_string(&Out {
        id: &id,
        verdict: &verdict,
    })
    .unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
    (text, Ok(verdict.action))
}

fn error_line(id: &Value, e: &str) -> (String, Result<Action, ()>) {
    let out = ErrOut {
        id,
        action: Action::Pass,
        score: 0,
        attacks: [],
        error: e,
    };
    (serde_json::to_string(&out).unwrap_or_default(), Err(()))
}

/// Builds the request of one input object.
/// The request (and optional remote address) a JSON line or API body describes.
pub fn request_of(v: &Value, engine: &Engine) -> Result<(Request, Option<IpAddr>), String> {
    if !v.is_object() {
        return Err("a line must be a JSON object".into());
    }
    let limits = engine.limits();
    let remote = match v.get("remote") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(
            s.parse::<IpAddr>()
                .map_err(|_| format!("remote: {s:?} is not an IP address"))?,
        ),
        Some(_) => return Err("remote: must be a string".into()),
    };
    if let Some(raw) = v.get("raw") {
        let raw = raw.as_str().ok_or("raw: must be a string")?;
        return Request::parse(&text_bytes(raw), limits)
            .map(|r| (r, remote))
            .map_err(|e| e.to_string());
    }
    let method = v
        .get("method")
        .and_then(Value::as_str)
        .ok_or("need \"raw\", or \"method\" and \"uri\"")?;
    let uri = v
        .get("uri")
        .and_then(Value::as_str)
        .ok_or("uri: must be a string")?;
    let headers = header_pairs(v.get("headers"), "headers")?;
    let body = match v.get("body") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => text_bytes(s),
        Some(_) => return Err("body: must be a string".into()),
    };
    Request::from_parts(method, uri, headers, body, limits)
        .map(|r| (r, remote))
        .map_err(|e| e.to_string())
}

/// A `"headers"` list of `[name, value]` string pairs (absent or null:
/// none); `what` names it in the error.
fn header_pairs(v: Option<&Value>, what: &str) -> Result<Vec<(String, String)>, String> {
    let list = match v {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(list)) => list,
        Some(_) => return Err(format!("{what}: must be a list of [name, value] pairs")),
    };
    list.iter()
        .map(|h| match h.as_array().map(Vec::as_slice) {
            Some([Value::String(n), Value::String(val)]) => Ok((n.clone(), val.clone())),
            _ => Err(format!(
                "{what}: must be a list of [name, value] string pairs"
            )),
        })
        .collect()
}

/// The response body of an input object's `"response"`, if it has one:
/// `{"body": "...", "headers": [["Content-Encoding", "gzip"], ...]}` (the
/// codings named are undone, as the proxy does), at most the proxy's
/// default of 64 kB read, as the proxy reads it.
fn response_of(v: &Value) -> Result<Option<Vec<u8>>, String> {
    let r = match v.get("response") {
        None | Some(Value::Null) => return Ok(None),
        Some(r @ Value::Object(_)) => r,
        Some(_) => return Err("response: must be an object with a \"body\"".into()),
    };
    let body = match r.get("body") {
        Some(Value::String(s)) => text_bytes(s),
        _ => return Err("response.body: must be a string".into()),
    };
    let headers: Vec<crate::http::Header> = header_pairs(r.get("headers"), "response.headers")?
        .into_iter()
        .map(|(name, value)| crate::http::Header { name, value })
        .collect();
    let cap = super::leak::DEFAULT_READ;
    let mut anomalies = Vec::new();
    let mut body = match crate::http::coding::decode(&headers, &body, cap, false, &mut anomalies) {
        Some(d) => d.bytes,
        None => body,
    };
    body.truncate(cap);
    Ok(Some(body))
}

/// The bytes of request text given as a JSON string. JSON cannot hold raw
/// bytes, so binary requests are written with one character per byte
/// (Latin-1): when every character is below U+0100 the text is taken that
/// way; otherwise it is UTF-8.
pub fn text_bytes(s: &str) -> Vec<u8> {
    if s.is_ascii() || s.chars().any(|c| u32::from(c) > 0xFF) {
        return s.as_bytes().to_vec();
    }
    s.chars()
        .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?'))
        .collect()
}

/// Reads JSON lines from `input`, writes one verdict line per line to
/// `output` in the same order, using `threads` worker threads (0: one per
/// core).
pub fn inspect_lines(
    mut input: impl BufRead,
    mut output: impl Write,
    engine: &Engine,
    threads: usize,
) -> std::io::Result<InspectStats> {
    let threads = if threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        threads
    };
    let batch_size = BATCH_PER_THREAD * threads;
    let mut stats = InspectStats::default();
    let mut eof = false;
    while !eof {
        let mut batch: Vec<Vec<u8>> = Vec::with_capacity(batch_size);
        while batch.len() < batch_size {
            let mut line = Vec::new();
            if input.read_until(b'\n', &mut line)? == 0 {
                eof = true;
                break;
            }
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                line.pop();
            }
            batch.push(line);
        }
        let results = run_batch(&batch, engine, threads);
        for (text, outcome) in results {
            stats.lines += 1;
            match outcome {
                Ok(Action::Block) => stats.blocked += 1,
                Ok(Action::Pass) => stats.passed += 1,
                Err(()) => {
                    stats.errors += 1;
                    stats.passed += 1;
                }
            }
            output.write_all(text.as_bytes())?;
            output.write_all(b"\n")?;
        }
    }
    output.flush()?;
    Ok(stats)
}

/// Inspects a batch on `threads` threads, keeping order.
fn run_batch(
    batch: &[Vec<u8>],
    engine: &Engine,
    threads: usize,
) -> Vec<(String, Result<Action, ()>)> {
    if threads <= 1 || batch.len() < 2 {
        return batch.iter().map(|l| inspect_line(l, engine)).collect();
    }
    let chunk = batch.len().div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = batch
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || {
                    part.iter()
                        .map(|l| inspect_line(l, engine))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut out = Vec::with_capacity(batch.len());
        for (h, part) in handles.into_iter().zip(batch.chunks(chunk)) {
            match h.join() {
                Ok(v) => out.extend(v),
                // A panic in one worker must not lose lines: redo them here,
                // one at a time, reporting the ones that still fail.
                Err(_) => out.extend(part.iter().map(|l| {
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        inspect_line(l, engine)
                    }))
                    .unwrap_or_else(|_| {
                        error_line(&Value::Null, "internal error while inspecting this line")
                    })
                })),
            }
        }
        out
    })
}
