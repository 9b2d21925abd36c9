//! Writes the generated detection sets (`waf_tests::corpus`) as gzipped
//! JSON lines: `waf-corpus DIR` writes `DIR/evasion.jsonl.gz` and
//! `DIR/lookalike.jsonl.gz`. `cargo xtask corpus` runs it into
//! `tests/data/`.

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

fn main() -> Result<()> {
    let dir = std::env::args().nth(1).context("usage: waf-corpus DIR")?;
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
    println!(
        "wrote {} evasion and {} look-alike requests to {}",
        evasion.len(),
        lookalikes.len(),
        dir.display()
    );
    Ok(())
}
