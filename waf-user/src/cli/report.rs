//! `waf report [--since 24h] [--json] [--config FILE]`: the daemon's
//! report over a window, as `GET /v1/report` answers it (the CLI is a
//! client of the API, as for every other command: the daemon holds the
//! findings store, the bans and the path of the access log). With
//! `--config`, the API's address and token file come from that config
//! (`[api] listen`, `state_dir/api.token`) unless `--api`/`--token` say
//! otherwise.

use std::path::Path;

use anyhow::{Result, anyhow};

use super::{ApiArgs, Client, print};
use crate::report::{Report, parse_since, render};

/// Runs `waf report`.
pub fn report(a: &ApiArgs, since: &str, config: Option<&Path>) -> Result<()> {
    parse_since(since).map_err(|e| anyhow!("{e}"))?;
    let mut a = a.clone();
    if let Some(path) = config {
        let cfg = crate::config::Config::load(path)?;
        if a.api == "http://127.0.0.1:9876" {
            a.api = format!("http://{}", cfg.api.listen);
        }
        if a.token.is_none() {
            a.token = cfg.api.token.clone();
            a.token_file = cfg.state_dir.join("api.token");
        }
    }
    let r: Report = Client::new(&a)?.get(&format!("/v1/report?since={since}"))?;
    print(&a, &r, render);
    Ok(())
}
