//! `waf learn ACCESS_LOG`: learns the anomaly model's baseline from an
//! access log of the proxy (any of its formats); `waf anomaly ACCESS_LOG
//! --baseline FILE`: replays a log through the tracker the proxy uses and
//! prints the sources it flags. No daemon needed.

use std::{
    io::{BufRead, BufReader, Read},
    path::Path,
    time::Instant,
};

use anyhow::{Context as _, Result, bail};
use serde_json::json;

use crate::{
    anomaly::{
        AnomalyConfig, AnomalyMode, Model, Params, Tracker, TrainedOn,
        config::{MIN_REQUESTS, WINDOW},
        logline::MAX_LINE,
        replay::{Learner, Scorer, Summary},
    },
    values::Dur,
};

/// Calls `f` with each line of `r` (without its end), or None for a line
/// longer than [`MAX_LINE`] or not UTF-8; memory stays bounded whatever
/// the input.
fn each_line(r: impl Read, mut f: impl FnMut(Option<&str>)) -> Result<()> {
    let mut r = BufReader::with_capacity(64 * 1024, r);
    let mut line = Vec::with_capacity(1024);
    let mut too_long = false;
    loop {
        let buf = r.fill_buf().context("reading the log")?;
        if buf.is_empty() {
            if !line.is_empty() || too_long {
                f((!too_long)
                    .then(|| std::str::from_utf8(&line).ok())
                    .flatten());
            }
            return Ok(());
        }
        let (chunk, end) = match memchr::memchr(b'\n', buf) {
            Some(i) => (&buf[..i], Some(i + 1)),
            None => (buf, None),
        };
        if !too_long {
            if line.len() + chunk.len() > MAX_LINE {
                too_long = true;
                line.clear();
            } else {
                line.extend_from_slice(chunk);
            }
        }
        let used = end.unwrap_or(buf.len());
        r.consume(used);
        if end.is_some() {
            f((!too_long)
                .then(|| std::str::from_utf8(&line).ok())
                .flatten());
            line.clear();
            too_long = false;
        }
    }
}

fn open(log: &Path) -> Result<Box<dyn Read>> {
    if log.as_os_str() == "-" {
        return Ok(Box::new(std::io::stdin()));
    }
    let f = std::fs::File::open(log).with_context(|| format!("{}", log.display()))?;
    Ok(Box::new(f))
}

fn show_summary(log: &Path, s: &Summary, learning: bool) -> String {
    let windows = if learning {
        format!(", {} windows of min_requests or more", s.windows)
    } else {
        String::new()
    };
    format!(
        "{}: {} lines read, {} skipped (not an access log line), {} sources{windows}, {} \
         checkpoints",
        log.display(),
        s.lines,
        s.skipped,
        s.sources,
        s.checkpoints
    )
}

/// Runs `waf learn`.
pub fn learn(log: &Path, out: &Path, window: Dur, min_requests: u32, json_out: bool) -> Result<()> {
    if !(WINDOW.0..=WINDOW.1).contains(&window.0) || window.0.subsec_nanos() != 0 {
        bail!("--window {window}: whole seconds, 30s to 1h");
    }
    if !(MIN_REQUESTS.0..=MIN_REQUESTS.1).contains(&min_requests) {
        bail!("--min-requests {min_requests}: 5 to 10000");
    }
    let params = Params {
        window_secs: window.0.as_secs(),
        min_requests,
    };
    let started = Instant::now();
    let mut l = Learner::new(params);
    each_line(open(log)?, |line| match line {
        Some(s) => l.line(s),
        None => l.skip(),
    })?;
    let (samples, summary) = l.finish();
    let read_s = started.elapsed().as_secs_f64();
    if summary.lines > 0 && summary.skipped == summary.lines {
        bail!(
            "{}: none of its {} lines is an access log line of waf's proxy (JSON, common or \
             combined)",
            log.display(),
            summary.lines
        );
    }
    let on = TrainedOn {
        lines: summary.lines,
        windows: summary.windows,
        ..TrainedOn::default()
    };
    let t = Instant::now();
    let model = Model::train(&samples, params, on)
        .map_err(|e| anyhow::anyhow!("{}: {e}", log.display()))?;
    let train_s = t.elapsed().as_secs_f64();
    model.save(out).map_err(anyhow::Error::msg)?;
    let size = std::fs::metadata(out).map(|m| m.len()).unwrap_or(0);
    if json_out {
        let v = json!({
            "log": log.display().to_string(), "out": out.display().to_string(),
            "lines": summary.lines, "skipped": summary.skipped, "sources": summary.sources,
            "windows": summary.windows, "checkpoints": summary.checkpoints,
            "threshold_hint": model.threshold_hint(), "bytes": size,
            "read_seconds": read_s, "train_seconds": train_s,
        });
        println!("{v}");
        return Ok(());
    }
    println!("{}", show_summary(log, &summary, true));
    println!(
        "learned from {} checkpoints of {} sources in {train_s:.2} s (read in {read_s:.2} s)",
        model.trained_on().vectors,
        model.trained_on().sources
    );
    println!(
        "threshold_hint {:.2}: 99.8% of these sources scored below it; set [anomaly] \
         threshold = {:.2}",
        model.threshold_hint(),
        model.threshold_hint()
    );
    println!("wrote {} ({:.1} MB)", out.display(), size as f64 / 1e6);
    Ok(())
}

/// Runs `waf anomaly`: the sources a log's replay flags, the worst first.
pub fn anomaly(log: &Path, baseline: &Path, threshold: Option<f64>, json_out: bool) -> Result<()> {
    let model = Model::load(baseline).map_err(anyhow::Error::msg)?;
    let threshold = threshold.unwrap_or(model.threshold_hint());
    if !(0.5..=0.99).contains(&threshold) {
        bail!("--threshold {threshold}: 0.5 to 0.99");
    }
    let p = model.params();
    let cfg = AnomalyConfig {
        mode: AnomalyMode::Enforce,
        threshold,
        window: Dur::secs(p.window_secs),
        min_requests: p.min_requests,
        ..AnomalyConfig::default()
    };
    let tracker = Tracker::new(&cfg, Some(model));
    let started = Instant::now();
    let mut replay = Scorer::new(&tracker);
    each_line(open(log)?, |line| match line {
        Some(s) => replay.line(s),
        None => replay.skip(),
    })?;
    let secs = started.elapsed().as_secs_f64();
    let summary = replay.summary();
    let mut flagged: Vec<_> = replay
        .sources
        .iter()
        .filter_map(|(s, r)| Some((s, r, r.worst.as_ref()?)))
        .collect();
    flagged.sort_by(|a, b| b.2.score.total_cmp(&a.2.score).then(a.0.cmp(b.0)));
    if json_out {
        let v = json!({
            "log": log.display().to_string(), "threshold": threshold, "seconds": secs,
            "lines": summary.lines, "skipped": summary.skipped, "sources": summary.sources,
            "checkpoints": summary.checkpoints,
            "flagged": flagged.iter().map(|(s, r, w)| json!({
                "source": s.to_string(), "requests": r.requests, "flags": r.flags,
                "score": w.score, "evidence": w.evidence,
                "first": r.first.as_ref().map(|f| f.evidence.clone()),
            })).collect::<Vec<_>>(),
        });
        println!("{v}");
        return Ok(());
    }
    for (s, r, w) in &flagged {
        println!(
            "{s:<20} requests {:<6} flags {:<4} {}",
            r.requests, r.flags, w.evidence
        );
    }
    println!("{}", show_summary(log, &summary, false));
    println!(
        "{} of {} sources flagged at threshold {threshold:.2} ({secs:.2} s)",
        flagged.len(),
        summary.sources
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8]) -> Vec<Option<String>> {
        let mut out = vec![];
        each_line(input, |l| out.push(l.map(str::to_string))).unwrap();
        out
    }

    #[test]
    fn lines_are_split_and_bounded() {
        assert_eq!(lines(b""), Vec::<Option<String>>::new());
        assert_eq!(
            lines(b"a\nb\r\n\nc"),
            [
                Some("a".into()),
                Some("b\r".into()),
                Some(String::new()),
                Some("c".into())
            ]
        );
        let mut long = vec![b'x'; MAX_LINE + 10];
        long.extend_from_slice(b"\nok\n\xff\n");
        assert_eq!(lines(&long), [None, Some("ok".into()), None]);
        let long = vec![b'y'; 3 * MAX_LINE];
        assert_eq!(lines(&long), [None]);
    }
}
