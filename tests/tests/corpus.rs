//! The generated detection sets: the committed files are what the
//! generator makes, and the engine (default configuration, paranoia 1)
//! keeps its measured rates on them: evasions blocked at least the floor,
//! look-alikes blocked at most the ceiling. The floors sit a little under
//! the rates measured when they were set (README, Detection); a change that
//! loses detection or gains false positives fails here.

use std::{collections::BTreeMap, io::Read as _, path::Path};

use waf_tests::corpus::{self, Case};
use waf_user::detect::{Action, DetectConfig, Engine};
use waf_user::http::Request;

/// Lowest share of the evasion set blocked at paranoia 1.
const EVASION_FLOOR: f64 = 97.5;
/// Highest share of the look-alikes blocked at paranoia 1.
const LOOKALIKE_CEILING: f64 = 1.0;

/// The text of a gzip file.
fn gunzip(path: &Path) -> std::io::Result<String> {
    let mut s = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path)?).read_to_string(&mut s)?;
    Ok(s)
}

fn committed(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data")
        .join(name);
    gunzip(&path).unwrap_or_else(|e| panic!("{}: {e} (run `cargo xtask corpus`)", path.display()))
}

#[test]
fn committed_sets_are_the_generators_output() {
    for (name, cases) in [
        ("evasion.jsonl.gz", corpus::evasion()),
        ("lookalike.jsonl.gz", corpus::lookalikes()),
    ] {
        assert!(
            committed(name) == corpus::lines(&cases),
            "tests/data/{name} differs from the generator: run `cargo xtask corpus`"
        );
    }
}

/// The generated responses: the committed file is the generator's, and
/// read as `waf inspect` reads a line's `response` (the proxy's reading:
/// gzip undone, escapes undone) every leak blocks at paranoia 1 and no
/// benign page does, in every placement and encoding.
#[test]
fn generated_responses_are_committed_and_every_leak_is_found() {
    use waf_tests::corpus::responses;
    let cases = responses::responses();
    assert!(
        committed("responses.jsonl.gz") == responses::lines(&cases),
        "tests/data/responses.jsonl.gz differs from the generator: run `cargo xtask corpus`"
    );
    let engine = Engine::new(&DetectConfig::default()).unwrap();
    let mut wrong = Vec::new();
    for c in &cases {
        let (out, _) = waf_user::detect::inspect_line(c.line().as_bytes(), &engine);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        let blocked = v["action"] == "block";
        if blocked != (c.label == "attack") {
            wrong.push(format!("{} {}", c.id, v["attacks"]));
        }
    }
    let leaks = cases.iter().filter(|c| c.label == "attack").count();
    assert!(
        leaks >= 250 && cases.len() - leaks >= 100,
        "{leaks} of {}",
        cases.len()
    );
    assert!(
        wrong.is_empty(),
        "{} wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

/// Blocked share of `cases` overall and by category, placement, encoding.
fn blocked(engine: &Engine, cases: &[Case]) -> (f64, BTreeMap<String, (u32, u32)>) {
    let mut by = BTreeMap::<String, (u32, u32)>::new();
    let mut n_blocked = 0;
    for c in cases {
        let block = match Request::parse(c.raw.as_bytes(), engine.limits()) {
            Ok(req) => engine.inspect(&req, None).action == Action::Block,
            Err(e) => panic!("{}: does not parse: {e}", c.id),
        };
        n_blocked += u32::from(block);
        for k in [
            format!("category {}", c.category),
            format!("placement {}", c.placement),
            format!("encoding {}", c.encoding),
        ] {
            let e = by.entry(k).or_default();
            e.0 += 1;
            e.1 += u32::from(block);
        }
    }
    (100.0 * f64::from(n_blocked) / cases.len() as f64, by)
}

fn show(by: &BTreeMap<String, (u32, u32)>) -> String {
    by.iter()
        .map(|(k, (n, b))| format!("{k}: {b}/{n}\n"))
        .collect()
}

#[test]
fn engine_keeps_its_rates_on_the_generated_sets() {
    let engine = Engine::new(&DetectConfig::default()).unwrap();
    let (evasion, by) = blocked(&engine, &corpus::evasion());
    assert!(
        evasion >= EVASION_FLOOR,
        "evasion set: {evasion:.2}% blocked, floor {EVASION_FLOOR}%\n{}",
        show(&by)
    );
    let (lookalike, by) = blocked(&engine, &corpus::lookalikes());
    assert!(
        lookalike <= LOOKALIKE_CEILING,
        "look-alikes: {lookalike:.2}% blocked, ceiling {LOOKALIKE_CEILING}%\n{}",
        show(&by)
    );
}

/// The development corpus's requests (every `step`th), when the shared
/// corpus is on this machine.
fn dev_requests(step: usize) -> Vec<String> {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/dev-requests.jsonl.gz");
    if !path.exists() {
        return Vec::new();
    }
    let s = gunzip(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    s.lines()
        .step_by(step)
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["raw"].as_str().map(str::to_owned))
        .collect()
}

/// The cache of clean header and cookie values changes no verdict and no
/// finding: each request of the generated sets and of the development
/// corpus gets the same verdict from an engine without the cache, from
/// one meeting it for the first time in a stream, and from one that has
/// seen every request before (every header a hit), at paranoia 1 and 4.
#[test]
fn the_clean_header_cache_changes_no_verdict() {
    let mut raws: Vec<String> = corpus::evasion()
        .into_iter()
        .step_by(2)
        .chain(corpus::lookalikes())
        .map(|c| c.raw)
        .collect();
    raws.extend(dev_requests(6));
    for paranoia in [1, 4] {
        let cfg = DetectConfig {
            paranoia,
            ..DetectConfig::default()
        };
        let plain = Engine::new(&cfg).unwrap();
        plain.set_clean_cache(false);
        let cached = Engine::new(&cfg).unwrap();
        let mut hits = 0usize;
        for pass in 0..2 {
            for raw in &raws {
                let Ok(req) = Request::parse(raw.as_bytes(), plain.limits()) else {
                    continue;
                };
                let want = plain.inspect(&req, None);
                let got = cached.inspect(&req, None);
                assert_eq!(got, want, "paranoia {paranoia}, pass {pass}:\n{raw}");
                hits += usize::from(pass == 1 && want.attacks.is_empty());
            }
        }
        assert!(hits > 1000, "too few clean requests to test: {hits}");
    }
}
