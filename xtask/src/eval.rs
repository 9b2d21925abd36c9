//! `cargo xtask eval [FILE...]`: runs `waf inspect` on labeled JSON lines
//! at one or every paranoia level and scores the verdicts per source, per
//! category, and (where the lines say) per placement and encoding. Without
//! files: the development corpus (if `../shared/corpus` is there) and the
//! generated sets of `tests/data/`. Writes target/bench/eval.json.

use std::{
    collections::{BTreeMap, HashMap},
    io::{BufRead as _, BufReader, Read as _, Write as _},
    path::{Path, PathBuf},
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

    fn add(&mut self, blocked: bool) {
        self.n += 1;
        self.blocked += u64::from(blocked);
    }
}

/// What a line says of itself.
struct Label {
    label: String,
    source: String,
    category: String,
    placement: Option<String>,
    encoding: Option<String>,
}

/// Labels by id.
type Labels = HashMap<String, Label>;
/// Tallies by a key of strings.
type Table = BTreeMap<Vec<String>, Tally>;

/// The tallies of one paranoia level.
#[derive(Default)]
struct Level {
    /// (label, source, category)
    category: Table,
    /// (label, source)
    source: Table,
    /// (label, source, "placement" | "encoding", value)
    axis: Table,
    errors: u64,
    seconds: f64,
}

/// The default inputs: the development corpus if present, and the
/// generated sets.
fn default_files(root: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    let dev = root.join("../shared/corpus/dev-requests.jsonl.gz");
    if dev.exists() {
        v.push(dev);
    }
    v.push(root.join("tests/data/evasion.jsonl.gz"));
    v.push(root.join("tests/data/lookalike.jsonl.gz"));
    v.push(root.join("tests/data/responses.jsonl.gz"));
    v
}

/// Runs the evaluation. `paranoia`: one level, or None for the config's
/// level; `all` runs 1 to 4.
pub fn run(
    waf: &Path,
    files: &[PathBuf],
    levels: &[Option<u8>],
    config: Option<&Path>,
) -> Result<()> {
    let root = crate::workspace_root();
    let files = if files.is_empty() {
        default_files(&root)
    } else {
        files.to_vec()
    };
    let mut input = Vec::new();
    for f in &files {
        let mut bytes = read_input(f)?;
        if !bytes.ends_with(b"\n") {
            bytes.push(b'\n');
        }
        input.extend_from_slice(&bytes);
    }
    let labels = read_labels(&input)?;
    let input = with_reflected_responses(&input);
    let mut results = Vec::new();
    for &p in levels {
        let started = std::time::Instant::now();
        let out = inspect(waf, input.clone(), p, config)?;
        let mut level = tally(&labels, &out)?;
        level.seconds = started.elapsed().as_secs_f64();
        results.push((p, level));
    }
    report(&files, &results, labels.len())
}

/// The CoreRuleSet's response tests ask their test backend (albedo) to
/// answer with the `body` of a JSON request to `/reflect`; the lines that
/// do get that answer as their `response`, which `waf inspect` reads for
/// data leaks as the proxy reads an application's. Other lines are kept
/// as they are.
fn with_reflected_responses(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    for line in input.split(|b| *b == b'\n') {
        if line.is_empty() {
            continue;
        }
        match reflected(line) {
            Some(v) => out.extend_from_slice(v.to_string().as_bytes()),
            None => out.extend_from_slice(line),
        }
        out.push(b'\n');
    }
    out
}

/// The line with its `response`, when its request is a JSON `POST
/// /reflect` with a string `body`.
fn reflected(line: &[u8]) -> Option<Value> {
    if !line.windows(13).any(|w| w == b"POST /reflect") {
        return None;
    }
    let mut v: Value = serde_json::from_slice(line).ok()?;
    let raw = v.get("raw")?.as_str()?;
    if !raw.starts_with("POST /reflect ") {
        return None;
    }
    let (_, body) = raw.split_once("\r\n\r\n")?;
    let doc: Value = serde_json::from_str(body).ok()?;
    let answer = doc.get("body")?.as_str()?;
    v["response"] = json!({ "body": answer });
    Some(v)
}

/// The labels of the input's lines; refuses an id seen twice.
fn read_labels(input: &[u8]) -> Result<Labels> {
    let mut labels = Labels::new();
    for line in input.split(|b| *b == b'\n') {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let v: Value = serde_json::from_slice(line).context("input line is not JSON")?;
        let id = v["id"].to_string();
        let s = |k: &str| v[k].as_str().map(str::to_string);
        let label = s("label").unwrap_or_default();
        if label != "attack" && label != "benign" {
            bail!("line with id {id} has no label attack|benign");
        }
        let l = Label {
            label,
            source: s("source").unwrap_or_else(|| "-".into()),
            category: s("category").unwrap_or_else(|| "-".into()),
            placement: s("placement"),
            encoding: s("encoding"),
        };
        if labels.insert(id.clone(), l).is_some() {
            bail!("id {id} appears twice in the input");
        }
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

/// Counts verdicts by category, by source, by placement and encoding.
fn tally(labels: &Labels, out: &str) -> Result<Level> {
    let mut level = Level::default();
    for line in BufReader::new(out.as_bytes()).lines() {
        let line = line?;
        let v: Value = serde_json::from_str(&line).context("waf inspect wrote a non-JSON line")?;
        if v.get("error").is_some() {
            level.errors += 1;
        }
        let id = v["id"].to_string();
        let Some(l) = labels.get(&id) else {
            continue;
        };
        let blocked = v["action"] == "block";
        let key = |rest: &[&str]| {
            let mut k = vec![l.label.clone(), l.source.clone()];
            k.extend(rest.iter().map(|s| s.to_string()));
            k
        };
        level
            .category
            .entry(key(&[&l.category]))
            .or_default()
            .add(blocked);
        level.source.entry(key(&[])).or_default().add(blocked);
        for (axis, v) in [("placement", &l.placement), ("encoding", &l.encoding)] {
            if let Some(v) = v {
                level.axis.entry(key(&[axis, v])).or_default().add(blocked);
            }
        }
    }
    Ok(level)
}

/// Level names for the table header.
fn level_name(p: Option<u8>) -> String {
    p.map_or_else(|| "config".into(), |p| format!("PL{p}"))
}

/// Prints one table: a row per key, a column per level.
fn print_table(title: &str, results: &[(Option<u8>, Level)], pick: fn(&Level) -> &Table) {
    let Some((_, first)) = results.first() else {
        return;
    };
    print!("\n{title:<58} {:>6}", "n");
    for (p, _) in results {
        print!(" {:>8}", level_name(*p));
    }
    println!();
    for (key, t) in pick(first) {
        let name = key.join(" ");
        print!(
            "{:<58} {:>6}",
            name.chars().take(58).collect::<String>(),
            t.n
        );
        for (_, l) in results {
            let r = pick(l).get(key).copied().unwrap_or_default();
            print!(" {:>7.2}%", r.rate());
        }
        println!();
    }
}

/// The JSON of a table.
fn table_json(t: &Table) -> Vec<Value> {
    t.iter()
        .map(|(k, t)| json!({"key": k, "n": t.n, "blocked": t.blocked, "blocked_pct": t.rate()}))
        .collect()
}

/// The rate of (label, source), if the input had such lines.
fn rate_of(l: &Level, label: &str, source: &str) -> Option<Tally> {
    l.source
        .get(&vec![label.to_string(), source.to_string()])
        .copied()
}

/// All attacks of the input except the generated evasion set.
fn corpus_attacks(l: &Level) -> Tally {
    let mut t = Tally::default();
    for (k, v) in &l.source {
        // The generated sets (evasions, responses) have goals of their own.
        if k[0] == "attack" && k[1] != "evasion" && k[1] != "response" {
            t.n += v.n;
            t.blocked += v.blocked;
        }
    }
    t
}

/// Prints the tables and the goal lines, writes `target/bench/eval.json`.
fn report(files: &[PathBuf], results: &[(Option<u8>, Level)], n: usize) -> Result<()> {
    print_table("label source category", results, |l| &l.category);
    print_table("label source", results, |l| &l.source);
    print_table("label source placement|encoding", results, |l| &l.axis);
    println!();
    let mut levels_json = Vec::new();
    for (p, l) in results {
        let name = level_name(*p);
        let corpus = corpus_attacks(l);
        let mut goals = serde_json::Map::new();
        // Issue 16's ladder: each level more detection for a stated cost
        // (PL1 >= 97% at <= 0.1%, PL2 >= 98% at <= 0.5%, PL3-4 >= 99%).
        let (want, fp_max) = match p.unwrap_or(1) {
            1 => (97.0, Some(0.1)),
            2 => (98.0, Some(0.5)),
            _ => (99.0, None),
        };
        // A goal: at least (`true`) or at most this share; None: no goal.
        let mut line = |what: &str, t: Option<Tally>, goal: Option<(bool, f64)>| {
            let Some(t) = t.filter(|t| t.n > 0) else {
                return;
            };
            let verdict = match goal {
                Some((true, g)) => format!("goal >= {g}%: {}", met(t.rate() >= g)),
                Some((false, g)) => format!("goal <= {g}%: {}", met(t.rate() <= g)),
                None => "no goal at this level".to_string(),
            };
            println!("{name}: {what}: {:.2}% of {} ({verdict})", t.rate(), t.n);
            goals.insert(what.to_string(), json!({"n": t.n, "blocked_pct": t.rate()}));
        };
        line("corpus attacks blocked", Some(corpus), Some((true, want)));
        line(
            "blazehttp benign blocked",
            rate_of(l, "benign", "blazehttp"),
            fp_max.map(|m| (false, m)),
        );
        line(
            "evasion attacks blocked",
            rate_of(l, "attack", "evasion"),
            Some((true, 95.0)),
        );
        line(
            "look-alikes blocked",
            rate_of(l, "benign", "lookalike"),
            Some((false, 1.0)),
        );
        line(
            "generated response leaks blocked",
            rate_of(l, "attack", "response"),
            None,
        );
        line(
            "generated benign responses blocked",
            rate_of(l, "benign", "response_lookalike"),
            None,
        );
        println!(
            "{name}: {n} requests in {:.2} s ({} unreadable lines)",
            l.seconds, l.errors
        );
        levels_json.push(json!({
            "paranoia": p,
            "goals": goals,
            "attacks": {"n": corpus.n, "blocked": corpus.blocked, "blocked_pct": corpus.rate()},
            "blazehttp_benign_blocked_pct": rate_of(l, "benign", "blazehttp").map(Tally::rate),
            "by_source": table_json(&l.source),
            "by_category": table_json(&l.category),
            "by_placement_encoding": table_json(&l.axis),
            "seconds": l.seconds,
            "unreadable": l.errors,
        }));
    }
    let dir = crate::workspace_root().join("target/bench");
    std::fs::create_dir_all(&dir)?;
    let report = json!({
        "files": files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>(),
        "levels": levels_json,
    });
    std::fs::write(
        dir.join("eval.json"),
        serde_json::to_string_pretty(&report)? + "\n",
    )?;
    println!("wrote {}", dir.join("eval.json").display());
    Ok(())
}

/// "met" or "not met".
fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "not met" }
}
