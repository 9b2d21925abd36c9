//! What the two objects of waf-ebpf share (the firewall's `waf-xdp` and the
//! tools' `waf-tools`): the one bounds-checked access to packet bytes.
#![no_std]

use aya_ebpf::programs::XdpContext;

/// A pointer to a `T` at `offset` bytes into the frame, if the whole `T`
/// lies within the frame: the one bounds check that every packet access of
/// both objects goes through (the parser's and the sampler's reads, the
/// reference filter's, the generator's in-place rewrite).
///
/// The verifier follows it: the comparison with `data_end` covers exactly
/// the bytes of `T`. The caller dereferences the pointer in an `unsafe`
/// block; packet bytes sit at any alignment, so a `T` read at an offset that
/// is not a multiple of its alignment is read unaligned (or as bytes).
#[inline(always)]
pub fn ptr_at<T>(ctx: &XdpContext, offset: usize) -> Option<*mut T> {
    let start = ctx.data();
    let end = ctx.data_end();
    if start + offset + core::mem::size_of::<T>() > end {
        return None;
    }
    Some((start + offset) as *mut T)
}
