//! Step 1, drop capacity: a max-rate flood from 256 banned sources (IPv4,
//! then IPv6) against each filter, the filters interleaved over several
//! rounds (each round starts at another filter), medians and spread.
//!
//! The flood is sender-bound for the XDP filters (one sending core makes
//! about as many frames as one receiving core drops), so the figure the
//! goal reads is the receiver's: CPU time per packet of the server's NAPI
//! thread (the veth ring, the filter, freeing the frame), and from it the
//! packets per second one receiving core drops (its capacity). The packets
//! handled per second are printed beside it.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use serde_json::{Value, json};

use super::{
    FloodLab, Options,
    filters::{DROP_FILTERS, Family, Filter, Kit, dropped},
    join_gen, run_ns, spread,
};

/// One measurement of one filter.
#[derive(Clone, Copy, Default)]
struct Sample {
    offered: f64,
    handled: f64,
    busy: f64,
    ns_per_pkt: f64,
    /// Share of the handled packets the IP stack received.
    stack_share: f64,
    /// Share of the handled packets the filter counted as dropped.
    dropped_share: Option<f64>,
}

/// Packets the server's IP stack received (of the family).
fn stack_received(lab: &FloodLab, fam: Family) -> u64 {
    match fam {
        Family::V4 => {
            let out = lab.srv.exec(&["cat", "/proc/net/snmp"]);
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            let mut lines = text.lines().filter(|l| l.starts_with("Ip: "));
            let (Some(names), Some(values)) = (lines.next(), lines.next()) else {
                return 0;
            };
            names
                .split_whitespace()
                .zip(values.split_whitespace())
                .find(|(n, _)| *n == "InReceives")
                .and_then(|(_, v)| v.parse().ok())
                .unwrap_or(0)
        }
        Family::V6 => {
            let out = lab.srv.exec(&["cat", "/proc/net/snmp6"]);
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .find_map(|l| l.strip_prefix("Ip6InReceives"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0)
        }
    }
}

fn measure(lab: &FloodLab, kit: &mut Kit, f: Filter, fam: Family, o: &Options) -> Result<Sample> {
    let active = kit.activate(lab, f, fam)?;
    let out = (|| -> Result<Sample> {
        let napi = lab.napi_thread()?;
        let secs = o.step + 2.0;
        let g = lab.spawn_gen(lab.gen_opts(&[fam.pool()], fam.dst(), "max", secs)?);
        std::thread::sleep(Duration::from_millis(1000));
        let (t0, rx0, cpu0, d0, s0) = (
            Instant::now(),
            lab.rx_polled(),
            run_ns(napi),
            dropped(kit, lab, f),
            stack_received(lab, fam),
        );
        std::thread::sleep(Duration::from_secs_f64(o.step));
        let (rx1, cpu1, d1, s1) = (
            lab.rx_polled(),
            run_ns(napi),
            dropped(kit, lab, f),
            stack_received(lab, fam),
        );
        let dt = t0.elapsed().as_secs_f64();
        let summary = join_gen(g)?;
        let rx = rx1.saturating_sub(rx0);
        let cpu = cpu1.saturating_sub(cpu0);
        if rx == 0 {
            bail!("{} ({}): the server polled no frames", f.name(), fam.key());
        }
        let share = |n: u64| n as f64 / rx as f64;
        Ok(Sample {
            offered: summary.pps,
            handled: rx as f64 / dt,
            busy: cpu as f64 / 1e9 / dt,
            ns_per_pkt: cpu as f64 / rx as f64,
            stack_share: share(s1.saturating_sub(s0)),
            dropped_share: d0.zip(d1).map(|(a, b)| share(b.saturating_sub(a))),
        })
    })();
    kit.deactivate(lab, active)?;
    let s = out?;
    // A filter that lets the flood through measures nothing.
    if f.is_xdp() && s.stack_share > 0.01 {
        bail!(
            "{} ({}): {:.1}% of the flood reached the IP stack",
            f.name(),
            fam.key(),
            s.stack_share * 100.0
        );
    }
    Ok(s)
}

/// Median and range of one figure over the samples.
fn fig(samples: &[Sample], get: impl Fn(&Sample) -> f64) -> (f64, f64, f64) {
    let mut v: Vec<f64> = samples.iter().map(get).collect();
    spread(&mut v)
}

pub(super) fn bench_drop(lab: &FloodLab, kit: &mut Kit, o: &Options) -> Result<Value> {
    let filters: Vec<Filter> = DROP_FILTERS
        .into_iter()
        .filter(|f| *f != Filter::XdpTools || kit.xdp_filter_missing().is_none())
        .collect();
    if let Some(why) = kit.xdp_filter_missing() {
        println!("xdp-filter left out: {why}");
    }
    let fams = [Family::V4, Family::V6];
    // samples[fam][filter], one per round.
    let mut samples = vec![vec![Vec::new(); filters.len()]; fams.len()];
    for round in 0..o.rounds {
        for (fi, fam) in fams.iter().enumerate() {
            for k in 0..filters.len() {
                let j = (k + round) % filters.len();
                let f = filters[j];
                if !f.serves(*fam) {
                    continue;
                }
                samples[fi][j].push(measure(lab, kit, f, *fam, o)?);
            }
        }
        eprintln!("drop capacity: round {} of {} done", round + 1, o.rounds);
    }
    println!(
        "\n## 1. Drop capacity: max-rate flood from 256 banned sources, receiver on one core, \
         {} rounds, filters interleaved; medians (lowest-highest)\n",
        o.rounds
    );
    let mut rows = Vec::new();
    let mut ratios = Vec::new();
    for (fi, fam) in fams.iter().enumerate() {
        println!("{}:\n", fam.key());
        println!(
            "| filter | offered Mpps | handled Mpps | receiver CPU busy | CPU ns per packet | \
             one core drops (Mpps) | reached the stack |"
        );
        println!("|---|---|---|---|---|---|---|");
        for (j, f) in filters.iter().enumerate() {
            let s = &samples[fi][j];
            if s.is_empty() {
                continue;
            }
            let offered = fig(s, |x| x.offered);
            let handled = fig(s, |x| x.handled);
            let busy = fig(s, |x| x.busy);
            let ns = fig(s, |x| x.ns_per_pkt);
            let cap = fig(s, |x| 1e3 / x.ns_per_pkt);
            let stack = fig(s, |x| x.stack_share);
            println!(
                "| {} | {:.2} | {:.2} ({:.2}-{:.2}) | {:.0}% | {:.0} ({:.0}-{:.0}) | {:.2} ({:.2}-{:.2}) | {:.1}% |",
                f.name(),
                offered.0 / 1e6,
                handled.0 / 1e6,
                handled.1 / 1e6,
                handled.2 / 1e6,
                busy.0 * 100.0,
                ns.0,
                ns.1,
                ns.2,
                cap.0,
                cap.1,
                cap.2,
                stack.0 * 100.0
            );
            let dropped = s.iter().filter_map(|x| x.dropped_share).collect::<Vec<_>>();
            rows.push(json!({
                "family": fam.key(),
                "filter": f.key(),
                "samples": s.len(),
                "offered_pps": offered.0,
                "handled_pps": handled.0,
                "handled_pps_spread": [handled.1, handled.2],
                "receiver_cpu_busy": busy.0,
                "cpu_ns_per_pkt": ns.0,
                "cpu_ns_per_pkt_spread": [ns.1, ns.2],
                "cpu_ms_per_mpkt": ns.0,
                "capacity_pps": cap.0 * 1e6,
                "capacity_pps_spread": [cap.1 * 1e6, cap.2 * 1e6],
                "reached_stack_share": stack.0,
                "filter_dropped_share": (!dropped.is_empty()).then(|| {
                    let mut d = dropped.clone();
                    spread(&mut d).0
                }),
            }));
        }
        println!();
        // waf against the others, per round.
        for ours in [Filter::Waf, Filter::Waf1M] {
            for other in [Filter::XdpTools, Filter::XdpDrop, Filter::Textbook] {
                let (Some(a), Some(b)) = (
                    filters.iter().position(|f| *f == ours),
                    filters.iter().position(|f| *f == other),
                ) else {
                    continue;
                };
                let (sa, sb) = (&samples[fi][a], &samples[fi][b]);
                if sa.is_empty() || sb.is_empty() {
                    continue;
                }
                let mut cap: Vec<f64> = sa
                    .iter()
                    .zip(sb)
                    .map(|(x, y)| y.ns_per_pkt / x.ns_per_pkt)
                    .collect();
                let mut handled: Vec<f64> = sa
                    .iter()
                    .zip(sb)
                    .map(|(x, y)| x.handled / y.handled)
                    .collect();
                let cap = spread(&mut cap);
                let handled = spread(&mut handled);
                let goal = (other == Filter::XdpTools).then_some(cap.0 >= 1.0);
                println!(
                    "{} / {}: one core drops {:.2}x ({:.2}-{:.2}), handled {:.2}x ({:.2}-{:.2}){}",
                    ours.name(),
                    other.name(),
                    cap.0,
                    cap.1,
                    cap.2,
                    handled.0,
                    handled.1,
                    handled.2,
                    match goal {
                        Some(true) => "; goal (at least xdp-filter's): met",
                        Some(false) => "; goal (at least xdp-filter's): NOT met",
                        None => "",
                    }
                );
                ratios.push(json!({
                    "family": fam.key(),
                    "filter": ours.key(),
                    "over": other.key(),
                    "capacity_ratio": cap.0,
                    "capacity_ratio_spread": [cap.1, cap.2],
                    "handled_ratio": handled.0,
                    "handled_ratio_spread": [handled.1, handled.2],
                    "goal_met": goal,
                }));
            }
        }
        println!();
    }
    Ok(json!({
        "rounds": o.rounds,
        "rows": rows,
        "ratios": ratios,
        "xdp_filter_missing": kit.xdp_filter_missing(),
    }))
}
