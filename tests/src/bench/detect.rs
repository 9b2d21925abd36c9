//! `cargo xtask bench detect`: detection engine throughput and latency.

/// Runs the benchmark.
pub fn run(_args: &[String]) -> anyhow::Result<()> {
    anyhow::bail!("the detection benchmark is not written yet")
}
