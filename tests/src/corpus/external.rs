//! Payload lists written by others (scanners' and testers' lists, one
//! payload a line) as labeled attack requests in every placement, so the
//! engine is measured on payloads its authors did not write. Nothing of
//! them is shipped: `cargo xtask external` fetches the lists (Debian
//! packages of wfuzz and wapiti, and any directory of lists given with
//! `--lists`) into `target/ext/` and writes `target/ext/external.jsonl`.
//!
//! A list is a file `<dir>/<source>/<family>__<name>.txt` (a payload a
//! line) or `.json` (an array of strings: payloads with line breaks);
//! each request's `source` is `ext:<source>` and its `category` the
//! family.

use std::collections::HashSet;
use std::path::Path;

use anyhow::{Context as _, Result};
use serde_json::json;

use super::{PLACEMENTS, request};

/// Longest payload taken (longer lines in lists are mostly prose or
/// whole documents).
pub const MAX_PAYLOAD: usize = 2048;

/// One list of payloads.
#[derive(Debug, Clone, PartialEq)]
pub struct List {
    /// Who wrote the list (`wfuzz`, `wapiti`, `seclists`, ...).
    pub source: String,
    /// The attack family its payloads belong to.
    pub family: String,
    /// The file's name without the family and extension.
    pub name: String,
    /// Its payloads, in order, without repeats.
    pub payloads: Vec<String>,
}

/// The payloads of a list's text: one a line (CR of CRLF ends dropped),
/// blank lines and lines longer than [`MAX_PAYLOAD`] skipped, repeats
/// kept once.
pub fn payloads(text: &str) -> Vec<String> {
    keep(
        text.lines()
            .map(|l| l.strip_suffix('\r').unwrap_or(l).to_owned()),
    )
}

/// `all` without blank payloads, payloads longer than [`MAX_PAYLOAD`] and
/// repeats (the first kept), in order.
fn keep(all: impl Iterator<Item = String>) -> Vec<String> {
    let mut seen = HashSet::new();
    all.filter(|p| !p.trim().is_empty() && p.len() <= MAX_PAYLOAD)
        .filter(|p| seen.insert(p.clone()))
        .collect()
}

/// Every `<source>/<family>__<name>.txt` or `.json` under `dir`, sorted
/// by path.
pub fn read(dir: &Path) -> Result<Vec<List>> {
    let mut out = Vec::new();
    let mut sources: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .collect::<std::io::Result<_>>()?;
    sources.sort_by_key(|e| e.path());
    for s in sources.iter().filter(|e| e.path().is_dir()) {
        let source = s.file_name().to_string_lossy().into_owned();
        let mut files: Vec<_> = std::fs::read_dir(s.path())?.collect::<std::io::Result<_>>()?;
        files.sort_by_key(|e| e.path());
        for f in files {
            let file = f.file_name().to_string_lossy().into_owned();
            let json = file.ends_with(".json");
            let Some(stem) = file.strip_suffix(".txt").or(file.strip_suffix(".json")) else {
                continue;
            };
            let Some((family, name)) = stem.split_once("__") else {
                continue;
            };
            let bytes = std::fs::read(f.path())?;
            let payloads = if json {
                let all: Vec<String> = serde_json::from_slice(&bytes).with_context(|| {
                    format!("{}: not a JSON array of strings", f.path().display())
                })?;
                keep(all.into_iter())
            } else {
                payloads(&String::from_utf8_lossy(&bytes))
            };
            out.push(List {
                source: source.clone(),
                family: family.to_owned(),
                name: name.to_owned(),
                payloads,
            });
        }
    }
    Ok(out)
}

/// The lists' payloads as labeled JSON lines, each payload in every
/// placement, under the parameter `value` (a name that tells the engine
/// nothing).
pub fn lines(lists: &[List]) -> String {
    let mut out = String::new();
    for l in lists {
        for (i, p) in l.payloads.iter().enumerate() {
            for &placement in PLACEMENTS {
                let line = json!({
                    "id": format!("ext:{}:{}:{}:{i}:{placement}", l.source, l.family, l.name),
                    "raw": request(placement, "value", p),
                    "label": "attack",
                    "source": format!("ext:{}", l.source),
                    "category": l.family,
                    "placement": placement,
                    "encoding": "plain",
                });
                out.push_str(&line.to_string());
                out.push('\n');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_lines_skip_blanks_repeats_and_long_lines() {
        let long = "x".repeat(MAX_PAYLOAD + 1);
        let text = format!("' or 1=1--\r\n\n   \n<script>\n' or 1=1--\n{long}\n../etc/passwd");
        assert_eq!(
            payloads(&text),
            vec!["' or 1=1--", "<script>", "../etc/passwd"]
        );
    }

    #[test]
    fn every_payload_lands_in_every_placement_as_a_parseable_request() {
        let l = List {
            source: "t".into(),
            family: "sqli".into(),
            name: "n".into(),
            payloads: vec!["a' or 'b'='b".into(), "{\"$ne\": 1}".into()],
        };
        let text = lines(&[l]);
        let rows: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(rows.len(), 2 * PLACEMENTS.len());
        for r in &rows {
            assert_eq!(r["source"], "ext:t");
            assert_eq!(r["category"], "sqli");
            let raw = r["raw"].as_str().unwrap();
            assert!(raw.starts_with("GET ") || raw.starts_with("POST "), "{raw}");
        }
    }
}
