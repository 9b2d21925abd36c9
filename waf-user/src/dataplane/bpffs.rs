//! The bpf filesystem the pins live on: found, or mounted where there is
//! none.

use std::{
    io,
    path::{Path, PathBuf},
};

use nix::{
    mount::{MsFlags, mount},
    sys::statfs::{BPF_FS_MAGIC, FsType, statfs},
};

use super::{DataplaneError, Result};

/// Default bpffs directory for pins.
pub const DEFAULT_BPF_DIR: &str = "/sys/fs/bpf/waf";

/// The type of the filesystem `path` is on; None when it cannot be told.
fn fs_type(path: &Path) -> Option<FsType> {
    statfs(path).ok().map(|st| st.filesystem_type())
}

/// Makes sure `dir` exists on a bpf filesystem, mounting one if none is:
/// at /sys/fs/bpf for paths below it, else at `dir` itself.
pub fn ensure_bpffs(dir: &Path) -> Result<()> {
    let mut probe = dir.to_path_buf();
    while !probe.exists() {
        if !probe.pop() {
            break;
        }
    }
    if fs_type(&probe) != Some(BPF_FS_MAGIC) {
        let target = if dir.starts_with("/sys/fs/bpf") {
            PathBuf::from("/sys/fs/bpf")
        } else {
            dir.to_path_buf()
        };
        std::fs::create_dir_all(&target).map_err(|source| DataplaneError::Io {
            path: target.clone(),
            source,
        })?;
        if fs_type(&target) != Some(BPF_FS_MAGIC) {
            mount(
                Some("bpf"),
                &target,
                Some("bpf"),
                MsFlags::empty(),
                None::<&str>,
            )
            .map_err(|e| DataplaneError::Bpffs {
                path: target.clone(),
                message: format!(
                    "not a bpf filesystem and mounting one failed: {} \
                     (mount it by hand: mount -t bpf bpf <dir>)",
                    io::Error::from(e)
                ),
            })?;
        }
    }
    std::fs::create_dir_all(dir).map_err(|source| DataplaneError::Io {
        path: dir.into(),
        source,
    })?;
    if fs_type(dir) != Some(BPF_FS_MAGIC) {
        return Err(DataplaneError::Bpffs {
            path: dir.into(),
            message: "not on a bpf filesystem".into(),
        });
    }
    Ok(())
}
