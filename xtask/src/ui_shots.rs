//! `cargo xtask ui-shots`: PNG screenshots of every dashboard page in
//! `target/ui/`, taken by the `ui` integration test's `shots` case (a demo
//! lab of network namespaces, the debug daemon, a headless Chromium).

use anyhow::{Context as _, Result};

use crate::{cargo, require_root, run, workspace_root};

/// Builds the daemon, runs the `shots` case and lists what it wrote.
pub fn run_shots() -> Result<()> {
    require_root("the demo lab creates network namespaces and loads the XDP program")?;
    let out = workspace_root().join("target/ui");
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    // The test runs the debug `waf` binary.
    run(cargo().args(["build", "--package", "waf-user", "--bin", "waf"]))?;
    run(cargo()
        .args([
            "test",
            "--package",
            "waf-tests",
            "--test",
            "ui",
            "--",
            "--ignored",
            "--exact",
            "shots",
            "--nocapture",
        ])
        .env("WAF_UI_SHOTS", &out))?;
    let mut shots: Vec<String> = std::fs::read_dir(&out)?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".png"))
        .collect();
    shots.sort();
    println!(
        "{} screenshots in {}: {}",
        shots.len(),
        out.display(),
        shots.join(", ")
    );
    Ok(())
}
