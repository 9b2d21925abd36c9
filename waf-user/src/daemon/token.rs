//! The API token: `[api] token`, else `WAF_API_TOKEN`, else
//! `state_dir/api.token` (generated at first start, mode 0600).

use anyhow::{Context as _, Result};

use crate::config::Config;

/// The token the API requires.
pub fn api_token(cfg: &Config) -> Result<String> {
    if let Some(t) = &cfg.api.token {
        return Ok(t.clone());
    }
    if let Ok(t) = std::env::var("WAF_API_TOKEN")
        && !t.trim().is_empty()
    {
        return Ok(t.trim().to_string());
    }
    let path = cfg.state_dir.join("api.token");
    match std::fs::read_to_string(&path) {
        Ok(t) if !t.trim().is_empty() => return Ok(t.trim().to_string()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    }
    std::fs::create_dir_all(&cfg.state_dir)
        .with_context(|| format!("creating {}", cfg.state_dir.display()))?;
    let mut raw = [0u8; 24];
    {
        use std::io::Read as _;
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut raw))
            .context("reading /dev/urandom")?;
    }
    let token: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    {
        use std::{io::Write as _, os::unix::fs::OpenOptionsExt as _};
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("creating {}", path.display()))?;
        writeln!(f, "{token}")?;
    }
    tracing::info!(path = %path.display(), "generated the API token");
    Ok(token)
}
