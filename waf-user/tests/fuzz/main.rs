//! Property-based tests ("fuzz targets") of the HTTP layer and the mirror:
//! invariants that must hold for any input, checked on generated and random
//! inputs. Each target is one test named `fuzz_<target>`; `cargo test` runs
//! a short run of each (`WAF_FUZZ_CASES`, default 256; `WAF_FUZZ_SECONDS`
//! bounds the time), `cargo xtask fuzz [TARGET]` a long one in release
//! mode (1,000,000 cases per target by default).
//!
//! Targets: `http` (parser), `framing`, `multipart`, `json`, `xml`,
//! `canonical` (path), `mirror` (reassembly against whole requests),
//! `normalize` (the value normaliser), `config` (the config parser), `api`
//! (the control API's request bodies). Add a
//! target: a module with a `#[test] fn fuzz_<name>()` calling
//! [`support::run`], and a row in xtask's `FUZZ_TARGETS`.

mod api;
mod canonical;
mod config;
mod framing;
mod gen_req;
mod http;
mod json;
mod mirror;
mod multipart;
mod normalize;
mod support;
mod xml;
