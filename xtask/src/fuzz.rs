//! `cargo xtask fuzz [TARGET] [--cases N | --seconds S]`: runs the
//! property-based targets in release mode (with overflow checks on, as in
//! debug builds) and prints, per target, the cases run, the seconds taken
//! and the failures. Exits non-zero on a failure.

use std::{
    process::{Command, Stdio},
    time::Instant,
};

use anyhow::{Result, bail};

/// One fuzz target: where its test lives. Add a row to add a target.
pub struct FuzzTarget {
    /// The name given on the command line.
    pub name: &'static str,
    /// The package holding the test.
    pub package: &'static str,
    /// The integration test binary (`tests/<test>.rs` or `tests/<test>/`).
    pub test: &'static str,
    /// The test function, matched exactly.
    pub function: &'static str,
    /// What it checks, for `--help`-like listings.
    pub about: &'static str,
}

/// The targets, in the order `cargo xtask fuzz` runs them.
pub const FUZZ_TARGETS: &[FuzzTarget] = &[
    FuzzTarget {
        name: "http",
        package: "waf-user",
        test: "fuzz",
        function: "http::fuzz_http",
        about: "request parser: no panic; parse, serialise, parse is stable",
    },
    FuzzTarget {
        name: "framing",
        package: "waf-user",
        test: "fuzz",
        function: "framing::fuzz_framing",
        about: "request framing and chunked decoding: same answer whole or split",
    },
    FuzzTarget {
        name: "multipart",
        package: "waf-user",
        test: "fuzz",
        function: "multipart::fuzz_multipart",
        about: "multipart parser and body meter",
    },
    FuzzTarget {
        name: "json",
        package: "waf-user",
        test: "fuzz",
        function: "json::fuzz_json",
        about: "JSON walk: every key and string once, depth limit",
    },
    FuzzTarget {
        name: "xml",
        package: "waf-user",
        test: "fuzz",
        function: "xml::fuzz_xml",
        about: "XML scan: every text and attribute with its path",
    },
    FuzzTarget {
        name: "canonical",
        package: "waf-user",
        test: "fuzz",
        function: "canonical::fuzz_canonical",
        about: "canonical path: fixed point, no dot segments, exemptions hold",
    },
    FuzzTarget {
        name: "mirror",
        package: "waf-user",
        test: "fuzz",
        function: "mirror::fuzz_mirror",
        about: "mirror reassembly: same verdicts as whole requests",
    },
    FuzzTarget {
        name: "normalize",
        package: "waf-user",
        test: "fuzz",
        function: "normalize::fuzz_normalize",
        about: "value normaliser: no panic, views within their bounds",
    },
    FuzzTarget {
        name: "config",
        package: "waf-user",
        test: "fuzz",
        function: "config::fuzz_config",
        about: "config parser: no panic, one-line errors, valid values read back",
    },
    FuzzTarget {
        name: "api",
        package: "waf-user",
        test: "fuzz",
        function: "api::fuzz_api",
        about: "API request bodies: no panic, bounds held, valid requests accepted",
    },
    FuzzTarget {
        name: "xdp",
        package: "waf-tests",
        test: "xdp_diff",
        function: "fuzz_xdp",
        about: "XDP program (root): same actions, counters and samples as the model",
    },
    FuzzTarget {
        name: "xdp_rate",
        package: "waf-tests",
        test: "xdp_diff",
        function: "fuzz_xdp_rate",
        about: "XDP program with rate limits on (root): as `xdp`, with new sources counted",
    },
];

/// Cases per target unless `--cases` or `--seconds` says otherwise.
pub const DEFAULT_CASES: u64 = 1_000_000;

/// What one target did.
struct Outcome {
    cases: u64,
    seconds: f64,
    failures: u64,
}

/// Runs `target` (all when None) for `cases` cases or `seconds` seconds.
pub fn run(target: Option<&str>, cases: Option<u64>, seconds: Option<u64>) -> Result<()> {
    let chosen: Vec<&FuzzTarget> = match target {
        None => FUZZ_TARGETS.iter().collect(),
        Some(t) => match FUZZ_TARGETS.iter().find(|f| f.name == t) {
            Some(f) => vec![f],
            None => {
                let known: Vec<String> = FUZZ_TARGETS
                    .iter()
                    .map(|f| format!("{} ({})", f.name, f.about))
                    .collect();
                bail!("unknown fuzz target `{t}`; known: {}", known.join("; "));
            }
        },
    };
    let cases = match (cases, seconds) {
        (Some(n), _) => n,
        (None, Some(_)) => u64::MAX,
        (None, None) => DEFAULT_CASES,
    };
    let mut failed = Vec::new();
    println!(
        "{:<10} {:>12} {:>10} {:>9}",
        "target", "cases", "seconds", "failures"
    );
    for t in chosen {
        build(t)?;
        let o = run_one(t, cases, seconds)?;
        println!(
            "{:<10} {:>12} {:>10.1} {:>9}",
            t.name, o.cases, o.seconds, o.failures
        );
        if o.failures > 0 {
            failed.push(t.name);
        }
    }
    if !failed.is_empty() {
        bail!(
            "fuzz targets failed: {} (the failing input is printed above)",
            failed.join(", ")
        );
    }
    Ok(())
}

fn cargo_test(t: &FuzzTarget) -> Command {
    let mut c = super::cargo();
    // Overflow checks on in the tested package, as in debug builds: an
    // overflow is a failure (dependencies keep the release build's).
    let checks = format!("profile.release.package.{}.overflow-checks=true", t.package);
    c.args(["test", "--release", "--config", &checks]).args([
        "--package",
        t.package,
        "--test",
        t.test,
    ]);
    c
}

fn build(t: &FuzzTarget) -> Result<()> {
    super::run(cargo_test(t).arg("--no-run"))
}

fn run_one(t: &FuzzTarget, cases: u64, seconds: Option<u64>) -> Result<Outcome> {
    let mut c = cargo_test(t);
    c.args([
        "--",
        "--exact",
        t.function,
        "--nocapture",
        "--test-threads",
        "1",
    ])
    .env("WAF_FUZZ_CASES", cases.to_string())
    .stdout(Stdio::piped());
    if let Some(s) = seconds {
        c.env("WAF_FUZZ_SECONDS", s.to_string());
    }
    let started = Instant::now();
    let out = c.output()?;
    let seconds = started.elapsed().as_secs_f64();
    let text = String::from_utf8_lossy(&out.stdout);
    // The runner prints `fuzz NAME: cases N seconds S failures F` (after
    // other `fuzz NAME:` lines, such as the seed).
    let tag = format!("fuzz {}: cases ", t.name);
    let summary = text.lines().find_map(|l| l.find(&tag).map(|i| &l[i..]));
    let field = |name: &str| -> Option<f64> {
        let words: Vec<&str> = summary?.split_whitespace().collect();
        let i = words.iter().position(|w| *w == name)?;
        words.get(i + 1)?.parse().ok()
    };
    let failures = if out.status.success() {
        field("failures").unwrap_or(0.0) as u64
    } else {
        print!("{text}");
        eprint!("{}", String::from_utf8_lossy(&out.stderr));
        (field("failures").unwrap_or(1.0) as u64).max(1)
    };
    Ok(Outcome {
        cases: field("cases").unwrap_or(0.0) as u64,
        // The runner's own time (cargo's start-up apart), else the wall clock.
        seconds: field("seconds").unwrap_or(seconds),
        failures,
    })
}
