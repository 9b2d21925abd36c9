//! The values of the CIDR sets that are not bans: the allow and block list
//! tries ([`ListEntry`]) and the source-policy set ([`SourceEntry`]).

/// Value of the allow and block list tries.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ListEntry {
    /// Where the entry came from (0 = API / inline config, n = nth list file).
    pub origin: u32,
    /// Reserved, zero.
    pub _reserved: u32,
}

/// Value of the source-policy set: a prefix some source policy (a country,
/// a network, a cloud provider, bogons) drops. Userspace compiles the
/// policies into disjoint prefixes, so the longest match is the only one.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SourceEntry {
    /// What matched, as an index into the per-tag counters
    /// ([`crate::map_names::SRC_COUNTS`], below [`SOURCE_TAGS`]); userspace
    /// keeps the names (`country:CN`, `asn:64500`, `cloud:aws`, `bogon`).
    pub tag: u32,
    /// [`source_flags`].
    pub flags: u32,
}

/// Flags of a [`SourceEntry`].
pub mod source_flags {
    /// The policy runs in monitor mode: counted as a would-drop, passed on
    /// to the checks after it.
    pub const MONITOR: u32 = 1;
    /// A bogon: dropped only on the interfaces named in
    /// [`crate::map_names::SRC_IFACES`].
    pub const BOGON: u32 = 2;
}

/// Entries of the per-tag counter array (tag 0 is "other": tags past the
/// array's end are counted there).
pub const SOURCE_TAGS: u32 = 4096;

impl SourceEntry {
    /// The value an IPv6 table slot keeps (`prefix6::PrefixBucketV6::values`).
    #[inline(always)]
    pub const fn to_slot(self) -> u64 {
        (self.flags as u64) << 32 | self.tag as u64
    }
    /// The entry a table slot value holds.
    #[inline(always)]
    pub const fn from_slot(v: u64) -> Self {
        Self {
            tag: v as u32,
            flags: (v >> 32) as u32,
        }
    }

    /// The entry in 16 bits, for the IPv4 tag tables (tag below
    /// [`SOURCE_TAGS`], flags in bits 12 and 13); [`TAG16_NONE`] when it
    /// does not fit.
    #[inline(always)]
    pub const fn to_tag16(self) -> u64 {
        if self.tag >= SOURCE_TAGS || self.flags > 3 {
            return TAG16_NONE;
        }
        (self.flags as u64) << 12 | self.tag as u64
    }

    /// The entry 16 bits of a tag table hold (not [`TAG16_NONE`]).
    #[inline(always)]
    pub const fn from_tag16(v: u64) -> Self {
        Self {
            tag: (v & 0xfff) as u32,
            flags: ((v >> 12) & 3) as u32,
        }
    }
}

/// A tag table's 16 bits for "ask the trie".
pub const TAG16_NONE: u64 = 0xffff;

#[cfg(feature = "user")]
mod pod {
    // SAFETY: #[repr(C)], integers only, no padding (checked below).
    unsafe impl aya::Pod for super::ListEntry {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::SourceEntry {}
}

// Layout check: a size that is not the sum of the fields means padding.
const _: () = assert!(core::mem::size_of::<ListEntry>() == 8);
const _: () = assert!(core::mem::size_of::<SourceEntry>() == 8);
const _: () = assert!(SOURCE_TAGS <= 1 << 12);
