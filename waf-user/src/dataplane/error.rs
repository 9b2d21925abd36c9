//! The data plane's errors, and the map errors that mean "full" or "not
//! found".

use std::{io, path::PathBuf};

use aya::{maps::MapError, programs::ProgramError};

/// Errors of the data plane, each saying what failed and, where it helps,
/// what to do.
#[derive(Debug, thiserror::Error)]
pub enum DataplaneError {
    /// The object could not be loaded.
    #[error("loading the XDP object: {0}")]
    Load(#[from] aya::EbpfError),
    /// A program operation failed (load, attach, test run).
    #[error("XDP program: {0}")]
    Program(#[from] ProgramError),
    /// A map operation failed.
    #[error("map {name}: {source}")]
    Map {
        /// The map.
        name: &'static str,
        /// What the kernel or aya said.
        source: MapError,
    },
    /// A map is full: the entry was not written.
    #[error("map {name} is full ({capacity} entries): the entry was not written")]
    MapFull {
        /// The map.
        name: &'static str,
        /// Its capacity.
        capacity: u32,
    },
    /// The pinned maps were written by an incompatible build.
    #[error(
        "the pinned maps in {dir} do not match this build ({what}); \
         run `waf detach` (or remove {dir}) to start from fresh maps"
    )]
    Incompatible {
        /// The pin directory.
        dir: PathBuf,
        /// What differs.
        what: String,
    },
    /// Problems with the bpf filesystem or the pin directory.
    #[error("bpf filesystem at {path}: {message}")]
    Bpffs {
        /// The path involved.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// An interface problem.
    #[error("interface {interface}: {message}")]
    Interface {
        /// The interface name.
        interface: String,
        /// What went wrong.
        message: String,
    },
    /// A setting is out of range.
    #[error("invalid setting: {0}")]
    Invalid(String),
    /// An I/O error on a path.
    #[error("{path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
}

/// Maps "the map is full" errors (E2BIG from hashes, ENOSPC from tries) to
/// [`DataplaneError::MapFull`].
pub(crate) fn write_err(name: &'static str, capacity: u32, e: MapError) -> DataplaneError {
    if let MapError::SyscallError(s) = &e
        && matches!(
            s.io_error.raw_os_error(),
            Some(libc::E2BIG) | Some(libc::ENOSPC)
        )
    {
        return DataplaneError::MapFull { name, capacity };
    }
    DataplaneError::Map { name, source: e }
}

/// True when `e` says the key is not in the map.
pub(crate) fn is_not_found(e: &MapError) -> bool {
    match e {
        MapError::KeyNotFound => true,
        MapError::SyscallError(s) => s.io_error.raw_os_error() == Some(libc::ENOENT),
        _ => false,
    }
}
