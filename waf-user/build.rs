//! Builds the XDP program (waf-ebpf) for bpfel-unknown-none and leaves it in
//! OUT_DIR for `include_bytes_aligned!`.
//!
//! The BPF target needs a compiler with a `core` for it. On Debian 12 that is
//! the `rustc-web` compiler with `libstd-rust-web-dev-bpf`, linked as the
//! rustup toolchain `waf-bpf` by `cargo xtask setup`. WAF_BPF_TOOLCHAIN names
//! another toolchain (for example a nightly with rust-src).

use aya_build::{Package, Toolchain};

fn main() {
    println!("cargo:rerun-if-env-changed=WAF_BPF_TOOLCHAIN");
    // Changes to the shared types must rebuild the kernel object too.
    println!("cargo:rerun-if-changed=../waf-common/src");
    let toolchain = std::env::var("WAF_BPF_TOOLCHAIN").unwrap_or_else(|_| "waf-bpf".to_string());
    let ebpf = Package {
        name: "waf-ebpf",
        root_dir: concat!(env!("CARGO_MANIFEST_DIR"), "/../waf-ebpf"),
        ..Default::default()
    };
    if let Err(e) = aya_build::build_ebpf([ebpf], Toolchain::Custom(&toolchain)) {
        panic!(
            "building the XDP program failed: {e:#}\n\
             hint: run `cargo xtask setup` (installs the BPF toolchain `{toolchain}` and bpf-linker)"
        );
    }
}
