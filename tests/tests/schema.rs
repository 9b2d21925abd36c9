//! The control API against its own OpenAPI description: schemathesis (pinned,
//! installed by `cargo xtask setup`) runs every phase, stateful included,
//! against the real daemon: no 5xx, no response outside the schema, no
//! dropped connection, no handler panic.

use std::{path::PathBuf, process::Command};

use waf_tests::{Lab, TEST_TOKEN, TestDaemon, api};

fn schemathesis() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/tools/venv/bin/schemathesis");
    assert!(
        p.exists(),
        "{} is missing: run `cargo xtask setup` (it installs schemathesis in a venv)",
        p.display()
    );
    p
}

#[test]
fn schemathesis_finds_no_server_error_and_no_schema_violation() {
    let st = schemathesis();
    let lab = Lab::new();
    let d = TestDaemon::start(&lab, "[allowlist]\ncidrs = [\"192.0.2.10\"]\n");
    let examples = std::env::var("WAF_SCHEMATHESIS_EXAMPLES").unwrap_or_else(|_| "200".into());
    let report = d.state_dir.join("schemathesis");
    let out = Command::new("ip")
        .args(["netns", "exec", &lab.srv.name])
        .arg(&st)
        .args([
            "run",
            "http://127.0.0.1:9876/v1/openapi.json",
            "--header",
            &format!("Authorization: Bearer {TEST_TOKEN}"),
            "--checks",
            "not_a_server_error,response_schema_conformance,status_code_conformance,\
             content_type_conformance",
            "--phases",
            "examples,coverage,fuzzing,stateful",
            "--max-examples",
            &examples,
            "--seed",
            "20261202",
            "--workers",
            "1",
            "--report-dir",
        ])
        .arg(&report)
        .env("SCHEMATHESIS_HOOKS", "")
        .env("NO_COLOR", "1")
        .output()
        .expect("run schemathesis");
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "schemathesis failed:\n{text}");
    // The summary, for the log of the run.
    if let Some(at) = text.find("SUMMARY") {
        eprintln!("{}", &text[at..]);
    }
    assert!(
        text.contains("Stateful") && !text.contains("Stateful (not applicable)"),
        "the stateful phase ran:\n{text}"
    );
    let (_, stats) = api(&lab, "GET", "/v1/stats", None);
    assert_eq!(stats["api_panics"], 0, "a handler panicked:\n{text}");
    drop(d);
}
