//! The value of the allow and block list tries.

/// Value of the allow and block list tries.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ListEntry {
    /// Where the entry came from (0 = API / inline config, n = nth list file).
    pub origin: u32,
    /// Reserved, zero.
    pub _reserved: u32,
}

#[cfg(feature = "user")]
mod pod {
    // SAFETY: #[repr(C)], integers only, no padding (checked below).
    unsafe impl aya::Pod for super::ListEntry {}
}

// Layout check: a size that is not the sum of the fields means padding.
const _: () = assert!(core::mem::size_of::<ListEntry>() == 8);
