//! Array maps mapped into this process (`BPF_F_MMAPABLE`): the ban buckets
//! and the list bitmaps are written with plain, ordered stores instead of a
//! syscall per update, so a ban reaches the kernel in nanoseconds and a
//! reader never sees a half-written slot marked as used.

use std::{
    os::fd::{AsFd as _, AsRawFd as _},
    ptr::NonNull,
    sync::atomic::{AtomicU64, Ordering},
};

use aya::maps::{Map, MapData};

use super::DataplaneError;

/// An mmapped BPF array of `len` elements of `T`.
pub struct MmapArray<T> {
    ptr: NonNull<T>,
    len: usize,
    bytes: usize,
    // Keeps the map (and its fd) for as long as the mapping is used.
    _map: MapData,
}

// SAFETY: the mapping is shared memory; all access goes through &self/&mut
// self methods with atomic or volatile operations where it matters.
unsafe impl<T: Send> Send for MmapArray<T> {}
// SAFETY: as above.
unsafe impl<T: Sync> Sync for MmapArray<T> {}

impl<T> MmapArray<T> {
    /// Maps array map `name` (taken from the object) into memory.
    pub fn new(name: &'static str, map: Map, len: u32) -> Result<Self, DataplaneError> {
        let Map::Array(data) = map else {
            return Err(DataplaneError::Invalid(format!(
                "map {name} is not an array"
            )));
        };
        assert_eq!(
            std::mem::size_of::<T>() % 8,
            0,
            "array elements are 8-byte aligned"
        );
        let info = data
            .info()
            .map_err(|source| DataplaneError::Map { name, source })?;
        if info.value_size() as usize != std::mem::size_of::<T>() || info.max_entries() != len {
            return Err(DataplaneError::Invalid(format!(
                "map {name}: value size {} x {} entries, expected {} x {len}",
                info.value_size(),
                info.max_entries(),
                std::mem::size_of::<T>()
            )));
        }
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as usize;
        let bytes = (std::mem::size_of::<T>() * len as usize).div_ceil(page) * page;
        // SAFETY: mapping a BPF array fd with the size the kernel expects.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                data.fd().as_fd().as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(DataplaneError::Invalid(format!(
                "mmap of map {name}: {} (was it created with BPF_F_MMAPABLE?)",
                std::io::Error::last_os_error()
            )));
        }
        Ok(Self {
            ptr: NonNull::new(ptr.cast()).expect("mmap returned a non-null pointer"),
            len: len as usize,
            bytes,
            _map: data,
        })
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Raw pointer to element `i` (panics when out of range).
    pub fn ptr(&self, i: usize) -> *mut T {
        assert!(i < self.len, "index {i} out of range {}", self.len);
        // SAFETY: in range of the mapping.
        unsafe { self.ptr.as_ptr().add(i) }
    }
}

impl MmapArray<u64> {
    fn word(&self, i: usize) -> &AtomicU64 {
        // SAFETY: in range, 8-byte aligned, shared memory.
        unsafe { AtomicU64::from_ptr(self.ptr(i)) }
    }

    /// Sets bit `bit` of the bitmap starting at word `base`.
    pub fn set_bit(&self, base: u32, bit: u32) {
        self.word((base + (bit >> 6)) as usize)
            .fetch_or(1 << (bit & 63), Ordering::SeqCst);
    }

    /// Clears bit `bit` of the bitmap starting at word `base`.
    pub fn clear_bit(&self, base: u32, bit: u32) {
        self.word((base + (bit >> 6)) as usize)
            .fetch_and(!(1 << (bit & 63)), Ordering::SeqCst);
    }

    /// Reads word `i`.
    pub fn load(&self, i: usize) -> u64 {
        self.word(i).load(Ordering::SeqCst)
    }

    /// Writes word `i`.
    pub fn store(&self, i: usize, v: u64) {
        self.word(i).store(v, Ordering::SeqCst);
    }

    /// Makes the words from 0 those of `want`, writing only the ones that
    /// differ (each whole, atomically).
    pub fn store_all(&self, want: &[u64]) {
        for (i, v) in want.iter().enumerate() {
            if self.load(i) != *v {
                self.store(i, *v);
            }
        }
    }

    /// Makes the bits of word `i` under `mask` those of `v`, atomically
    /// (the other bits, which another writer may own, are kept).
    pub fn replace_bits(&self, i: usize, mask: u64, v: u64) {
        let _ = self
            .word(i)
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |old| {
                Some((old & !mask) | (v & mask))
            });
    }
}

impl<T> Drop for MmapArray<T> {
    fn drop(&mut self) {
        // SAFETY: unmapping what new() mapped.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.bytes) };
    }
}
