//! The demo lab (filled in below).
use std::path::Path;

use anyhow::Result;

pub fn run(_waf: &Path, _config: Option<&Path>, _duration: Option<u64>) -> Result<()> {
    anyhow::bail!("demo not built yet")
}
