//! `BPF_MAP_UPDATE_BATCH`: many hash entries in one syscall (aya has no
//! wrapper for the batch commands).

use std::{
    io,
    os::fd::{AsFd as _, AsRawFd as _},
};

use aya::maps::{HashMap, IterableMap as _, MapData};

/// The batch command's attribute block (`union bpf_attr`, `batch` member).
#[repr(C)]
#[derive(Default)]
struct BatchAttr {
    in_batch: u64,
    out_batch: u64,
    keys: u64,
    values: u64,
    count: u32,
    map_fd: u32,
    elem_flags: u64,
    flags: u64,
}

const BPF_MAP_UPDATE_BATCH: libc::c_long = 26;

/// Writes `keys[i] -> values[i]` into `map` in one call. On an error,
/// returns how many were written before it.
pub fn update<K: aya::Pod, V: aya::Pod>(
    map: &HashMap<MapData, K, V>,
    keys: &[K],
    values: &[V],
) -> Result<(), (usize, io::Error)> {
    assert_eq!(keys.len(), values.len(), "one value per key");
    if keys.is_empty() {
        return Ok(());
    }
    let mut attr = BatchAttr {
        keys: keys.as_ptr() as u64,
        values: values.as_ptr() as u64,
        count: u32::try_from(keys.len()).unwrap_or(u32::MAX),
        map_fd: map.map().fd().as_fd().as_raw_fd() as u32,
        ..Default::default()
    };
    // SAFETY: `attr` is a valid batch attribute block of the size passed;
    // `keys` and `values` hold `count` elements of the map's key and value
    // types (aya::Pod, checked sizes by the typed map) and outlive the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_MAP_UPDATE_BATCH,
            &mut attr as *mut BatchAttr,
            std::mem::size_of::<BatchAttr>() as u32,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    Err((attr.count.min(keys.len() as u32) as usize, e))
}
