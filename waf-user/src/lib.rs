//! waf: a kernel-assisted web firewall. This library holds everything the
//! `waf` binary is made of, so tests and benchmarks use the same code.
//!
//! - [`dataplane`]: load, attach, pin and adopt the XDP program; typed maps.
//! - [`packet`]: crafted Ethernet/IP frames with valid checksums.

pub mod dataplane;
pub mod packet;
