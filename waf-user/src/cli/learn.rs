//! `waf learn ACCESS_LOG`: learns the anomaly model's baseline from an
//! access log of the proxy (any of its formats); `waf anomaly ACCESS_LOG
//! --baseline FILE`: replays a log through the tracker the proxy uses and
//! prints the sources it flags. No daemon needed.

use std::{io::Read, path::Path, time::Instant};

use anyhow::{Context as _, Result, bail};
use serde_json::json;

use crate::{
    anomaly::{
        AnomalyConfig, AnomalyMode, Model, Tracker, TrainedOn,
        config::THRESHOLD,
        logline::MAX_LINE,
        replay::{Learner, Scorer, Summary},
    },
    values::Dur,
};

/// Calls `f` with each line of `r` (without its end), or None for a line
/// longer than [`MAX_LINE`] or not UTF-8 (`values::each_line`).
fn each_line(r: impl Read, mut f: impl FnMut(Option<&str>)) -> Result<()> {
    crate::values::each_line(r, MAX_LINE, |l| {
        f(l.and_then(|b| std::str::from_utf8(b).ok()))
    })
    .context("reading the log")
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

/// The windows `waf learn` counts.
pub struct Windows {
    /// The window.
    pub window: Dur,
    /// Its first checkpoint.
    pub min_requests: u32,
    /// The long window ("0s": none).
    pub long_window: Dur,
    /// Its first checkpoint.
    pub long_min_requests: u32,
}

impl Windows {
    /// As an `[anomaly]` section, checked (its messages name the options).
    fn config(&self) -> Result<AnomalyConfig> {
        let cfg = AnomalyConfig {
            window: self.window,
            min_requests: self.min_requests,
            long_window: self.long_window,
            long_min_requests: self.long_min_requests,
            ..AnomalyConfig::default()
        };
        cfg.validate()
            .map_err(|e| anyhow::anyhow!("{}", as_flag(&e)))?;
        Ok(cfg)
    }
}

/// A config message (`anomaly.long_min_requests = 4: ...`) as the option
/// `waf learn` took (`--long-min-requests = 4: ...`).
fn as_flag(msg: &str) -> String {
    match msg
        .strip_prefix("anomaly.")
        .and_then(|m| m.split_once(" = "))
    {
        Some((key, rest)) => format!("--{} = {rest}", key.replace('_', "-")),
        None => msg.to_string(),
    }
}

/// Runs `waf learn`: one pass over the log feeds both windows' learners.
pub fn learn(log: &Path, out: &Path, w: &Windows, json_out: bool) -> Result<()> {
    let cfg = w.config()?;
    let started = Instant::now();
    let mut short = Learner::new(cfg.params());
    let mut long = cfg.long_params().map(|l| Learner::long(l, cfg.params()));
    each_line(open(log)?, |line| match line {
        Some(s) => {
            short.line(s);
            if let Some(l) = &mut long {
                l.line(s);
            }
        }
        None => {
            short.skip();
            if let Some(l) = &mut long {
                l.skip();
            }
        }
    })?;
    let (samples, summary) = short.finish();
    let read_s = started.elapsed().as_secs_f64();
    if summary.lines > 0 && summary.skipped == summary.lines {
        bail!(
            "{}: none of its {} lines is an access log line of waf's proxy (JSON, common or \
             combined)",
            log.display(),
            summary.lines
        );
    }
    let on = |s: &Summary| TrainedOn {
        lines: s.lines,
        windows: s.windows,
        ..TrainedOn::default()
    };
    let t = Instant::now();
    let model = Model::train(&samples, cfg.params(), on(&summary))
        .map_err(|e| anyhow::anyhow!("{}: {e}", log.display()))?;
    // The long window's model, when the log holds enough slow windows (a
    // log of an hour or two may not).
    let (long_model, long_note) = match long.map(Learner::finish) {
        Some((samples, s)) => {
            let p = cfg.long_params().unwrap_or(cfg.params());
            match Model::train_long(&samples, p, on(&s)) {
                Ok(m) => (Some(std::sync::Arc::new(m)), None),
                Err(e) => (None, Some(format!("no long window's model: {e}"))),
            }
        }
        None => (None, None),
    };
    let model = model.with_long(long_model);
    let train_s = t.elapsed().as_secs_f64();
    model.save(out).map_err(anyhow::Error::msg)?;
    let size = std::fs::metadata(out).map(|m| m.len()).unwrap_or(0);
    let long = model.long();
    if json_out {
        let v = json!({
            "log": log.display().to_string(), "out": out.display().to_string(),
            "lines": summary.lines, "skipped": summary.skipped, "sources": summary.sources,
            "windows": summary.windows, "checkpoints": summary.checkpoints,
            "threshold_hint": model.threshold_hint(), "bytes": size,
            "read_seconds": read_s, "train_seconds": train_s,
            "long": long.map(|l| json!({
                "window_secs": l.params().window_secs, "min_requests": l.params().min_requests,
                "sources": l.trained_on().sources, "windows": l.trained_on().windows,
                "checkpoints": l.trained_on().vectors, "threshold_hint": l.threshold_hint(),
            })),
            "long_note": long_note,
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
        "threshold_hint {:.2}: 99.8% of these sources scored below it (the default threshold; \
         set [anomaly] threshold to override)",
        model.threshold_hint(),
    );
    match (long, long_note) {
        (Some(l), _) => println!(
            "long window {}: {} checkpoints of {} sources, threshold_hint {:.2}",
            Dur::secs(l.params().window_secs),
            l.trained_on().vectors,
            l.trained_on().sources,
            l.threshold_hint()
        ),
        (None, Some(note)) => println!("{note}"),
        (None, None) => {}
    }
    println!("wrote {} ({:.1} MB)", out.display(), size as f64 / 1e6);
    Ok(())
}

/// Runs `waf anomaly`: the sources a log's replay flags, the worst first.
/// `thresholds`: the window's and the long window's (None: the hints).
pub fn anomaly(
    log: &Path,
    baseline: &Path,
    thresholds: [Option<f64>; 2],
    json_out: bool,
) -> Result<()> {
    let model = Model::load(baseline).map_err(anyhow::Error::msg)?;
    for (flag, t) in ["--threshold", "--long-threshold"].iter().zip(thresholds) {
        if let Some(t) = t
            && !(THRESHOLD.0..=THRESHOLD.1).contains(&t)
        {
            bail!("{flag} {t}: 0.5 to 0.99");
        }
    }
    let p = model.params();
    let long = model.long().map(|l| l.params());
    let cfg = AnomalyConfig {
        mode: AnomalyMode::Enforce,
        threshold: thresholds[0],
        long_threshold: thresholds[1],
        window: Dur::secs(p.window_secs),
        min_requests: p.min_requests,
        long_window: Dur::secs(long.map_or(0, |l| l.window_secs)),
        long_min_requests: long.map_or(5, |l| l.min_requests),
        ..AnomalyConfig::default()
    };
    let hints = [
        model.threshold_hint(),
        model.long().map_or(0.0, |l| l.threshold_hint()),
    ];
    let threshold = thresholds[0].unwrap_or(hints[0]);
    let long_threshold = thresholds[1].unwrap_or(hints[1]);
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
            "long_window_secs": long.map(|l| l.window_secs),
            "long_threshold": long.map(|_| long_threshold),
            "lines": summary.lines, "skipped": summary.skipped, "sources": summary.sources,
            "checkpoints": summary.checkpoints,
            "flagged": flagged.iter().map(|(s, r, w)| json!({
                "source": s.to_string(), "requests": r.requests, "flags": r.flags,
                "score": w.score, "evidence": w.evidence,
                "first": r.first.as_ref().map(|f| f.evidence.clone()),
                "score_window": r.worst_by_window[0], "score_long_window": r.worst_by_window[1],
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
        "{} of {} sources flagged at threshold {threshold:.2}{} ({secs:.2} s)",
        flagged.len(),
        summary.sources,
        long.map_or(String::new(), |l| format!(
            " (long window {}: {long_threshold:.2})",
            Dur::secs(l.window_secs)
        ))
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
    fn bad_windows_name_the_option() {
        let w = |window, min_requests, long_window, long_min_requests| Windows {
            window: Dur::secs(window),
            min_requests,
            long_window: Dur::secs(long_window),
            long_min_requests,
        };
        for (bad, flag) in [
            (w(20, 10, 3600, 5), "--window = "),
            (w(300, 4, 3600, 5), "--min-requests = "),
            (w(300, 10, 60, 5), "--long-window = "),
            (w(300, 10, 3600, 4), "--long-min-requests = "),
        ] {
            let e = bad.config().unwrap_err().to_string();
            assert!(e.starts_with(flag), "{e}");
        }
        assert!(w(300, 10, 0, 5).config().is_ok());
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
