//! `[allowlist]` and `[blocklist]`: inline CIDRs and list files (one address
//! or CIDR a line), read into entries that remember where they were written.

use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde::Deserialize;

use crate::{
    firewall::ListItem,
    values::{ConfigError, invalid, parse_net},
};

/// One list's config: inline entries and files.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ListConfig {
    /// Inline entries.
    pub cidrs: Vec<String>,
    /// Files to read entries from.
    pub files: Vec<PathBuf>,
}

impl ListConfig {
    /// Checks the inline entries (files are read when used).
    pub fn validate(&self, key: &str) -> Result<(), ConfigError> {
        for c in &self.cidrs {
            parse_net(c).map_err(|e| invalid(&format!("{key}.cidrs"), c, &e))?;
        }
        Ok(())
    }

    /// Every entry: inline ones, then each file's.
    pub fn items(&self, key: &str) -> Result<Vec<ListItem>, ConfigError> {
        let mut out = Vec::new();
        for c in &self.cidrs {
            let net: IpNet = parse_net(c).map_err(|e| invalid(&format!("{key}.cidrs"), c, &e))?;
            out.push(ListItem {
                net,
                origin: "config".into(),
            });
        }
        for path in &self.files {
            out.extend(read_list_file(path)?);
        }
        Ok(out)
    }
}

/// Reads a list file: one address or CIDR a line; `#` (and `;`, as some
/// published lists use) starts a comment; blank lines are skipped.
pub fn read_list_file(path: &Path) -> Result<Vec<ListItem>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::ListFile {
        path: path.into(),
        line: 0,
        message: e.to_string(),
    })?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let body = line.split('#').next().unwrap_or("").trim();
        let body = body.split(';').next().unwrap_or("").trim();
        if body.is_empty() {
            continue;
        }
        let net = parse_net(body).map_err(|message| ConfigError::ListFile {
            path: path.into(),
            line: i + 1,
            message,
        })?;
        out.push(ListItem {
            net,
            origin: format!("{}:{}", path.display(), i + 1),
        });
    }
    Ok(out)
}
