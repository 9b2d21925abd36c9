//! Benchmarks run by `cargo xtask bench <name>` through the `waf-bench`
//! binary. Each prints a table, compares against a reference measured in the
//! same run, and writes its figures as JSON under target/bench/.

pub mod ban_latency;
pub mod bans;
pub mod detect;
pub mod flood;
pub mod proxy;
pub mod xdp;

use std::path::PathBuf;

/// target/bench under the workspace root, created if missing.
pub fn out_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/bench");
    std::fs::create_dir_all(&dir).expect("create target/bench");
    dir
}

/// Writes `value` as pretty JSON to target/bench/`name` and says where.
pub fn write_json(name: &str, value: &serde_json::Value) {
    let path = out_dir().join(name);
    let text = serde_json::to_string_pretty(value).expect("serialize");
    std::fs::write(&path, text + "\n").expect("write bench json");
    println!("wrote {}", path.display());
}
