//! `cargo xtask external`: payload lists the engine's authors did not
//! write, as a measurement set. The Debian packages of two scanners
//! (wfuzz: fuzzdb's injection lists; wapiti: its attack payloads) are
//! downloaded (not installed) and unpacked under `target/ext/`, their
//! lists rewritten as `<source>/<family>__<name>.txt` (wapiti's
//! placeholders filled in as wapiti fills them), and `waf-corpus
//! --external` turns those and any `--lists` directories (same layout)
//! into `target/ext/external.jsonl`, for `cargo xtask eval`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result, bail};

use crate::{run, tests_bin, workspace_root};

/// wfuzz's lists: file under `wordlist/Injections`, family.
const WFUZZ: &[(&str, &str)] = &[
    ("SQL.txt", "sqli"),
    ("XSS.txt", "xss"),
    ("Traversal.txt", "lfi"),
    ("XML.txt", "xml"),
];

/// wapiti's lists: file under `wapitiCore/data/attacks`, family.
const WAPITI: &[(&str, &str)] = &[
    ("execPayloads.txt", "cmdi"),
    ("blindSQLPayloads.txt", "sqli"),
    ("xssPayloads.ini", "xss"),
    ("fileHandlingPayloads.ini", "lfi"),
    ("xxePayloads.ini", "xxe"),
];

/// A wapiti payload with its placeholders filled as wapiti fills them
/// (the parameter's own value, a delay, a line feed, its callback
/// server, the `\0` suffix as a NUL byte).
fn wapiti_fill(p: &str) -> String {
    p.replace("[VALUE]", "1")
        .replace("[TIME]", "5")
        .replace("[LF]", "\n")
        .replace("[TAB]", "\t")
        .replace("[TIMEOUT]", "10")
        .replace("[DIRVALUE]", "uploads")
        .replace("[EXTVALUE]", "jpg")
        .replace("[EXTERNAL_ENDPOINT]", "http://callback.example.net/")
        .replace("[SESSION_ID]", "7f3a9c")
        .replace("[PATH_ID]", "12")
        .replace("[PARAM_AS_HEX]", "76616c7565")
        .replace("[FILE_NAME]", "index.php")
        .replace("__XSS__", "w4p1t1")
        .replace("\\0", "\0")
}

/// The payloads of a wapiti `.ini` list (its `payload = ...` lines), or
/// of a plain list.
fn wapiti_payloads(name: &str, text: &str) -> Vec<String> {
    let lines: Vec<&str> = if name.ends_with(".ini") {
        text.lines()
            .filter_map(|l| l.strip_prefix("payload = "))
            .collect()
    } else {
        text.lines().collect()
    };
    lines.into_iter().map(wapiti_fill).collect()
}

fn download(dir: &Path, package: &str) -> Result<PathBuf> {
    let found = |dir: &Path| -> Result<Option<PathBuf>> {
        for e in std::fs::read_dir(dir)? {
            let p = e?.path();
            let n = p.file_name().unwrap_or_default().to_string_lossy();
            if n.starts_with(&format!("{package}_")) && n.ends_with(".deb") {
                return Ok(Some(p));
            }
        }
        Ok(None)
    };
    if let Some(p) = found(dir)? {
        return Ok(p);
    }
    run(Command::new("apt-get")
        .args(["download", package])
        .current_dir(dir))
    .with_context(|| format!("downloading the Debian package {package}"))?;
    found(dir)?.with_context(|| format!("apt-get download {package} left no .deb"))
}

fn unpack(deb: &Path, into: &Path) -> Result<()> {
    if into.exists() {
        return Ok(());
    }
    std::fs::create_dir_all(into)?;
    run(Command::new("dpkg-deb").arg("-x").arg(deb).arg(into))
}

fn find(root: &Path, dir_suffix: &str) -> Result<PathBuf> {
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        if d.ends_with(dir_suffix) {
            return Ok(d);
        }
        for e in std::fs::read_dir(&d)? {
            let p = e?.path();
            if p.is_dir() {
                stack.push(p);
            }
        }
    }
    bail!("no {dir_suffix} under {}", root.display())
}

fn write_list(
    lists: &Path,
    source: &str,
    family: &str,
    name: &str,
    payloads: &[String],
) -> Result<()> {
    let dir = lists.join(source);
    std::fs::create_dir_all(&dir)?;
    let stem = name.rsplit_once('.').map_or(name, |(s, _)| s);
    // JSON: a payload may hold a line break.
    let text = serde_json::to_string_pretty(payloads)?;
    std::fs::write(dir.join(format!("{family}__{stem}.json")), text)?;
    Ok(())
}

pub fn run_external(extra: &[PathBuf]) -> Result<()> {
    let ext = workspace_root().join("target/ext");
    let debs = ext.join("debs");
    let lists = ext.join("lists");
    std::fs::create_dir_all(&debs)?;
    for (package, table, sub) in [
        ("wfuzz", WFUZZ, "wordlist/Injections"),
        ("wapiti", WAPITI, "data/attacks"),
    ] {
        let deb = download(&debs, package)?;
        let root = ext.join("pkg").join(package);
        unpack(&deb, &root)?;
        let dir = find(&root, sub)?;
        for (file, family) in table {
            let path = dir.join(file);
            let text = String::from_utf8_lossy(
                &std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?,
            )
            .into_owned();
            let payloads: Vec<String> = if package == "wapiti" {
                wapiti_payloads(file, &text)
            } else {
                text.lines().map(str::to_owned).collect()
            };
            write_list(&lists, package, family, file, &payloads)?;
        }
    }
    let out = ext.join("external.jsonl");
    let mut c = tests_bin("waf-corpus");
    c.arg("--external").arg(&out).arg(&lists).args(extra);
    run(&mut c)?;
    println!(
        "score it with: cargo xtask eval {} --paranoia all",
        out.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wapiti_placeholders_are_filled_and_ini_payloads_read() {
        let ini = "[a]\npayload = <svg onload=alert(/__XSS__/)>\ntag = svg\n\
                   [b]\npayload = /etc/passwd\\0\n";
        assert_eq!(
            wapiti_payloads("x.ini", ini),
            vec!["<svg onload=alert(/w4p1t1/)>", "/etc/passwd\0"]
        );
        assert_eq!(
            wapiti_payloads("x.txt", "[VALUE];env;\nsleep([TIME])#[LF]1"),
            vec!["1;env;", "sleep(5)#\n1"]
        );
    }
}
