//! Writes the generated detection sets (`waf_tests::corpus`) as gzipped
//! JSON lines: `waf-corpus DIR` writes `DIR/evasion.jsonl.gz` and
//! `DIR/lookalike.jsonl.gz`. `cargo xtask corpus` runs it into
//! `tests/data/`. `waf-corpus --external OUT DIR...` writes the payload
//! lists under each DIR (`waf_tests::corpus::external`) as labeled JSON
//! lines to OUT (`cargo xtask external` runs it).

use std::io::Write as _;

use anyhow::{Context as _, Result};
use flate2::{Compression, GzBuilder};

fn write(path: &std::path::Path, text: &str) -> Result<()> {
    let f = std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    // No name and mtime 0 in the header: the same bytes on every run.
    let mut gz = GzBuilder::new().mtime(0).write(f, Compression::best());
    gz.write_all(text.as_bytes())?;
    gz.finish()?;
    Ok(())
}

fn external(args: &[String]) -> Result<()> {
    let (out, dirs) = args
        .split_first()
        .context("usage: waf-corpus --external OUT DIR...")?;
    let mut lists = Vec::new();
    for d in dirs {
        lists.extend(waf_tests::corpus::external::read(std::path::Path::new(d))?);
    }
    let text = waf_tests::corpus::external::lines(&lists);
    std::fs::write(out, &text).with_context(|| format!("writing {out}"))?;
    for l in &lists {
        println!(
            "{:>9} {:<6} {:<40} {:>6} payloads",
            l.source,
            l.family,
            l.name,
            l.payloads.len()
        );
    }
    println!("wrote {} requests to {out}", text.lines().count());
    Ok(())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--external") {
        return external(&args[1..]);
    }
    let dir = args.first().context("usage: waf-corpus DIR")?;
    let dir = std::path::Path::new(&dir);
    std::fs::create_dir_all(dir)?;
    let evasion = waf_tests::corpus::evasion();
    let lookalikes = waf_tests::corpus::lookalikes();
    write(
        &dir.join("evasion.jsonl.gz"),
        &waf_tests::corpus::lines(&evasion),
    )?;
    write(
        &dir.join("lookalike.jsonl.gz"),
        &waf_tests::corpus::lines(&lookalikes),
    )?;
    let responses = waf_tests::corpus::responses::responses();
    write(
        &dir.join("responses.jsonl.gz"),
        &waf_tests::corpus::responses::lines(&responses),
    )?;
    println!(
        "wrote {} evasion and {} look-alike requests and {} responses to {}",
        evasion.len(),
        lookalikes.len(),
        responses.len(),
        dir.display()
    );
    Ok(())
}
