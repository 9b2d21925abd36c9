//! waf: a kernel-assisted web firewall. This library holds everything the
//! `waf` binary is made of, so tests and benchmarks use the same code.
//!
//! - [`api`]: the local control API (axum).
//! - [`cli`]: the operator's commands, a client of the API.
//! - [`config`]: the TOML configuration, parsed and validated in one place.
//! - [`daemon`]: `waf run`.
//! - [`dataplane`]: load, attach, pin and adopt the XDP program; typed maps.
//! - [`firewall`]: bans, strikes, lists and modes; the one writer of the maps.
//! - [`r#gen`]: `waf gen`, the packet generator (XDP live frames, AF_PACKET).
//! - [`journal`]: the persistent record of bans and list changes.
//! - [`mirror`]: the passive mirror: HTTP reassembled from sampled TCP payloads.
//! - [`packet`]: crafted Ethernet/IP frames with valid checksums.
//! - [`proxy`]: the inline reverse proxy.
//! - [`http`]: the HTTP request model and its HTTP/1.1 parser.
//! - [`detect`]: the detection engine: request in, verdict out.

pub mod api;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod dataplane;
pub mod detect;
pub mod firewall;
pub mod r#gen;
pub mod http;
pub mod journal;
pub mod mirror;
pub mod packet;
pub mod proxy;
