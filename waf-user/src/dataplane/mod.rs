//! The kernel half, seen from userspace: loads the embedded XDP object,
//! attaches it to interfaces, pins maps and links in a bpffs directory so
//! enforcement outlives the process, adopts that pinned state when started
//! again, and offers typed handles for every map.
//!
//! This module does not decide anything (who is banned, for how long): the
//! ban manager does, and writes through these handles.
//!
//! - [`loader`]: load, pin and adopt the object; layout checks of pinned maps.
//! - [`attach`]: attach and detach, link pins, pinned interfaces.
//! - [`bpffs`]: the bpf filesystem the pins live on.
//! - [`settings`]: what the program reads from its config map.
//! - [`clock`]: the program's clock and the offset to `CLOCK_MONOTONIC`.
//! - [`maps`]: typed handles for every map, and the counters' reader.
//! - [`bans`], [`sets`], [`mmap`]: the ban tables, the CIDR sets and the
//!   mmapped arrays behind them; [`deep24`]: the source set's deep /24 table.

pub mod attach;
pub mod bans;
mod batch;
pub mod bpffs;
pub mod clock;
pub mod deep24;
pub mod dir6;
mod error;
pub mod loader;
pub mod maps;
pub mod mmap;
pub mod sets;
pub mod settings;
pub mod table6;
mod trie_value;

use std::path::{Path, PathBuf};

use aya::{Ebpf, maps::Array, maps::MapData};

pub(crate) use self::error::{is_not_found, write_err};
pub use self::{
    attach::{AttachMode, Attachment, detach, link_pin_path, pinned_interfaces},
    bpffs::{DEFAULT_BPF_DIR, ensure_bpffs},
    clock::{KernelClock, coarse_resolution_ns, monotonic_ns},
    error::DataplaneError,
    loader::{Capacity, LoadOptions, XDP_OBJECT, remove_pinned_maps},
    maps::{CountersReader, Maps},
    settings::{RateLimits, Settings},
};

type Result<T, E = DataplaneError> = std::result::Result<T, E>;

/// The loaded XDP program and its maps.
pub struct Dataplane {
    ebpf: Ebpf,
    /// Typed map handles.
    pub maps: Maps,
    clock: Array<MapData, u64>,
    pin_dir: Option<PathBuf>,
    attachments: Vec<Attachment>,
}

impl Dataplane {
    /// The pin directory, if pinning.
    pub fn pin_dir(&self) -> Option<&Path> {
        self.pin_dir.as_deref()
    }

    /// What this process attached.
    pub fn attachments(&self) -> &[Attachment] {
        &self.attachments
    }
}
