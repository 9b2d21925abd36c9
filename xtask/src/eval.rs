//! `cargo xtask eval FILE`: runs `waf inspect` on labeled JSON lines and
//! scores the verdicts per source and category. Writes target/bench/eval.json.

use std::{
    collections::{BTreeMap, HashMap},
    io::{BufRead as _, BufReader, Read as _, Write as _},
    path::Path,
    process::{Command, Stdio},
};

use anyhow::{Context as _, Result, bail};
use serde_json::{Value, json};

fn read_input(file: &Path) -> Result<Vec<u8>> {
    if file.extension().is_some_and(|e| e == "gz") {
        let out = Command::new("zcat")
            .arg(file)
            .output()
            .context("running zcat")?;
        if !out.status.success() {
            bail!("zcat {} failed", file.display());
        }
        Ok(out.stdout)
    } else {
        std::fs::read(file).with_context(|| format!("reading {}", file.display()))
    }
}

#[derive(Default, Clone, Copy)]
struct Tally {
    n: u64,
    blocked: u64,
}

impl Tally {
    fn rate(self) -> f64 {
        if self.n == 0 {
            0.0
        } else {
            100.0 * self.blocked as f64 / self.n as f64
        }
    }
}

/// Label, source and category of each request, by id.
type Labels = HashMap<String, (String, String, String)>;
/// Requests and blocks by (label, source, category).
type PerCategory = BTreeMap<(String, String, String), Tally>;
/// Requests and blocks by (label, source).
type PerSource = BTreeMap<(String, String), Tally>;

/// Runs the evaluation.
pub fn run(waf: &Path, file: &Path, paranoia: Option<u8>, config: Option<&Path>) -> Result<()> {
    let input = read_input(file)?;
    let labels = read_labels(&input)?;
    let started = std::time::Instant::now();
    let out = inspect(waf, input, paranoia, config)?;
    let elapsed = started.elapsed();
    let (per, by_label, errors) = tally(&labels, &out)?;
    report(
        file,
        paranoia,
        &per,
        &by_label,
        labels.len(),
        errors,
        elapsed,
    )
}

/// The labels of the input's lines.
fn read_labels(input: &[u8]) -> Result<Labels> {
    let mut labels = Labels::new();
    for line in input.split(|b| *b == b'\n') {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let v: Value = serde_json::from_slice(line).context("input line is not JSON")?;
        let id = v["id"].to_string();
        let label = v["label"].as_str().unwrap_or("").to_string();
        if label != "attack" && label != "benign" {
            bail!("line with id {id} has no label attack|benign");
        }
        let source = v["source"].as_str().unwrap_or("-").to_string();
        let category = v["category"].as_str().unwrap_or("-").to_string();
        labels.insert(id, (label, source, category));
    }
    Ok(labels)
}

/// Runs `waf inspect` over the input; its output.
fn inspect(
    waf: &Path,
    input: Vec<u8>,
    paranoia: Option<u8>,
    config: Option<&Path>,
) -> Result<String> {
    let mut cmd = Command::new(waf);
    cmd.arg("inspect").arg("-");
    if let Some(p) = paranoia {
        cmd.args(["--paranoia", &p.to_string()]);
    }
    if let Some(c) = config {
        cmd.arg("--config").arg(c);
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("starting waf inspect")?;
    let mut stdin = child.stdin.take().expect("piped");
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let mut out = String::new();
    child
        .stdout
        .take()
        .expect("piped")
        .read_to_string(&mut out)?;
    writer.join().expect("writer thread")?;
    if !child.wait()?.success() {
        bail!("waf inspect failed");
    }
    Ok(out)
}

/// Counts verdicts by category and by source; unreadable lines.
fn tally(labels: &Labels, out: &str) -> Result<(PerCategory, PerSource, u64)> {
    let mut per = PerCategory::new();
    let mut by_label = PerSource::new();
    let mut errors = 0u64;
    for line in BufReader::new(out.as_bytes()).lines() {
        let line = line?;
        let v: Value = serde_json::from_str(&line).context("waf inspect wrote a non-JSON line")?;
        if v.get("error").is_some() {
            errors += 1;
        }
        let id = v["id"].to_string();
        let Some((label, source, category)) = labels.get(&id) else {
            continue;
        };
        let blocked = v["action"] == "block";
        for t in [
            per.entry((label.clone(), source.clone(), category.clone()))
                .or_default(),
            by_label.entry((label.clone(), source.clone())).or_default(),
        ] {
            t.n += 1;
            t.blocked += u64::from(blocked);
        }
    }
    Ok((per, by_label, errors))
}

/// Prints the tables and writes `target/bench/eval.json`.
fn report(
    file: &Path,
    paranoia: Option<u8>,
    per: &PerCategory,
    by_label: &PerSource,
    n: usize,
    errors: u64,
    elapsed: std::time::Duration,
) -> Result<()> {
    println!(
        "{:<8} {:<14} {:<44} {:>6} {:>8} {:>7}",
        "label", "source", "category", "n", "blocked", "%"
    );
    for ((label, source, category), t) in per {
        println!(
            "{label:<8} {source:<14} {:<44} {:>6} {:>8} {:>6.2}%",
            category.chars().take(44).collect::<String>(),
            t.n,
            t.blocked,
            t.rate()
        );
    }
    println!();
    let mut attacks = Tally::default();
    let mut summary = serde_json::Map::new();
    for ((label, source), t) in by_label {
        println!(
            "{label:<8} {source:<14} {:>6} requests, {:>6.2}% blocked",
            t.n,
            t.rate()
        );
        summary.insert(
            format!("{label}/{source}"),
            json!({"n": t.n, "blocked": t.blocked, "blocked_pct": t.rate()}),
        );
        if label == "attack" {
            attacks.n += t.n;
            attacks.blocked += t.blocked;
        }
    }
    let fp = by_label
        .get(&("benign".to_string(), "blazehttp".to_string()))
        .copied();
    println!(
        "\nattacks blocked: {:.2}% of {} (goal >= 95%)",
        attacks.rate(),
        attacks.n
    );
    if let Some(fp) = fp {
        println!(
            "blazehttp benign blocked: {:.3}% of {} (goal <= 0.3%)",
            fp.rate(),
            fp.n
        );
    }
    println!(
        "{} requests in {:.2} s ({} unreadable lines)",
        n,
        elapsed.as_secs_f64(),
        errors
    );
    let dir = crate::workspace_root().join("target/bench");
    std::fs::create_dir_all(&dir)?;
    let report = json!({
        "file": file.display().to_string(),
        "paranoia": paranoia,
        "attacks": {"n": attacks.n, "blocked": attacks.blocked, "blocked_pct": attacks.rate()},
        "blazehttp_benign_blocked_pct": fp.map(Tally::rate),
        "by_source": summary,
        "by_category": per.iter().map(|((l, s, c), t)| json!({
            "label": l, "source": s, "category": c, "n": t.n, "blocked": t.blocked
        })).collect::<Vec<_>>(),
        "seconds": elapsed.as_secs_f64(),
        "unreadable": errors,
    });
    std::fs::write(
        dir.join("eval.json"),
        serde_json::to_string_pretty(&report)? + "\n",
    )?;
    println!("wrote {}", dir.join("eval.json").display());
    Ok(())
}
