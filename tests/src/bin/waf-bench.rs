//! Benchmark runner: `waf-bench <name> [args]` (called by `cargo xtask bench`).

use waf_tests::bench;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((name, rest)) = args.split_first() else {
        anyhow::bail!(
            "usage: waf-bench <xdp|bans|api|ban-latency|proxy|detect|flood|fleet|sources|ui> [args]"
        );
    };
    match name.as_str() {
        "xdp" => bench::xdp::run(rest),
        "bans" => bench::bans::run(rest),
        "api" => bench::api::run(rest),
        "ban-latency" => bench::ban_latency::run(rest),
        "proxy" => bench::proxy::run(rest),
        "detect" => bench::detect::run(rest),
        "leaks" => bench::leaks::run(rest),
        "flood" => bench::flood::run(rest),
        "fleet" => bench::fleet::run(rest),
        "sources" => bench::sources::run(rest),
        "ui" => bench::ui::run(rest),
        other => anyhow::bail!("unknown benchmark `{other}`"),
    }
}
