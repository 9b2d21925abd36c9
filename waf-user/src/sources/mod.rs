//! Source policies: countries and networks (ASN) from offline MaxMind-format
//! databases, cloud providers' published ranges, plain CIDR list files and
//! bogons, compiled into prefixes of the XDP program's source-policy set.

pub mod bogons;
pub mod cidrfile;
pub mod cloud;
pub mod config;
pub mod mmdb;
mod policy;
pub mod ranges;

pub use self::{
    config::{SourcesConfig, Unknown},
    policy::{PolicyMatch, SourceLookup, SourcePolicy, Tag},
};

use std::path::PathBuf;

/// A policy file that could not be read or parsed: names the file and where
/// in it (a line, a record, a network).
#[derive(Debug, thiserror::Error)]
#[error("{}: {location}: {message}", file.display())]
pub struct SourceError {
    /// The file.
    pub file: PathBuf,
    /// Where in it: "line 12", "record 3 (prefixes[3])", "network 10.0.0.0/8", "file".
    pub location: String,
    /// What is wrong.
    pub message: String,
}

impl SourceError {
    /// An error at `location` of `file`.
    pub fn new(
        file: impl Into<PathBuf>,
        location: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            file: file.into(),
            location: location.into(),
            message: message.into(),
        }
    }
}

impl From<SourceError> for crate::values::ConfigError {
    fn from(e: SourceError) -> Self {
        Self::Source {
            file: e.file,
            location: e.location,
            message: e.message,
        }
    }
}
