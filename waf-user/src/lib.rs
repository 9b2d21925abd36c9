//! waf: a kernel-assisted web firewall. This library holds everything the
//! `waf` binary is made of, so tests and benchmarks use the same code.
//!
//! The layers, each calling only the ones below it:
//! - faces: [`api`] (the control API), [`ui`] (the dashboard on the API's
//!   listener), [`cli`] (its client), [`proxy`]
//!   (the inline reverse proxy), [`mirror`] (HTTP reassembled from sampled
//!   payloads), [`fleet`] (bans shared across hosts over NATS), [`r#gen`]
//!   (the packet generator);
//! - wiring: [`daemon`] (`waf run`), [`config`] (the TOML file, composed of
//!   the parts' config types), [`telemetry`] (what faces report);
//! - core: [`firewall`] (the one owner of bans, lists, modes, the kernel
//!   maps and the journal), [`dataplane`] (load, attach, pin and adopt the
//!   XDP program; typed maps), [`findings`] (the findings store, runtime
//!   exclusions), [`report`] (reports over a window);
//! - pure: [`http`] (the request model and parser), [`detect`] (the
//!   detection engine), [`values`] (durations, addresses), [`packet`]
//!   (crafted frames).

pub mod anomaly;
pub mod api;
pub mod challenge;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod dataplane;
pub mod detect;
pub mod findings;
pub mod firewall;
pub mod fleet;
pub mod r#gen;
pub mod http;
pub mod mirror;
pub mod monitors;
pub mod packet;
pub mod proxy;
pub mod report;
pub mod routes;
pub mod sources;
pub mod telemetry;
pub mod ui;
pub mod values;
