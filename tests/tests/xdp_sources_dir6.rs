//! The source set's IPv6 directory (`waf_common::prefix6::DIR_ENTRIES`) in
//! the real program under BPF_PROG_TEST_RUN: policies whose prefixes split
//! several /32s at every length from /32 to /47 (and shorter and longer
//! ones around them), every verdict checked against the policy itself, the
//! directory known to be in use; and, while another thread swaps two such
//! policies back and forth, the addresses both policies agree on never
//! getting another verdict (the directory is rewritten at each swap).
//! Probes also fill the other /32s of the policies' /16s.

use std::{
    net::{IpAddr, Ipv6Addr},
    sync::atomic::{AtomicBool, Ordering},
};

use aya::programs::Xdp;
use aya_obj::programs::XdpAttachType;
use ipnet::{IpNet, Ipv6Net};
use waf_common::SourceEntry;
use waf_tests::{PinDir, XDP_DROP, XDP_PASS, require_root, run_xdp, xdp_fuzz::rng::Rng};
use waf_user::{
    dataplane::{Dataplane, LoadOptions},
    packet::FrameSpec,
    sources::ranges::Compiler,
};

fn frame(src: IpAddr) -> Vec<u8> {
    FrameSpec::new(src, "2001:db8:ffff::1".parse().unwrap()).build()
}

/// The /32s the policies split: four of 3fff::/20 (RFC 9637) and
/// 2001:db8::/32 (RFC 3849), documentation ranges all.
const TOPS: [u32; 5] = [
    0x3fff_0000,
    0x3fff_0001,
    0x3fff_0a00,
    0x3fff_0fff,
    0x2001_0db8,
];

/// A random policy of prefixes under [`TOPS`]: mostly /32 to /47 (the
/// directory's lengths), some /20 to /31 and /48 to /64, some passed
/// (`None`: an allowed country inside a dropped range), compiled into
/// disjoint prefixes as the daemon does.
fn policy(rng: &mut Rng) -> Vec<(IpNet, SourceEntry)> {
    let mut c: Compiler<Option<u32>> = Compiler::new();
    for _ in 0..rng.range(20, 300) {
        let tag = if rng.one_in(5) {
            None
        } else {
            Some(rng.range(1, 6) as u32)
        };
        let len = match rng.below(10) {
            0 => rng.range(20, 31),
            1 | 2 => rng.range(48, 64),
            _ => rng.range(32, 47),
        } as u8;
        // Clustered in a few /40s of each /32, so that prefixes of
        // several lengths share /40s.
        let top = u128::from(TOPS[rng.below(TOPS.len())]) << 96;
        let sub = (rng.below(6) as u128 * 37) << 88;
        let a = Ipv6Addr::from(top | sub | (rng.u128() & (u128::MAX >> 40)));
        c.add_net(IpNet::V6(Ipv6Net::new(a, len).unwrap().trunc()), 0, tag);
    }
    c.compile()
        .into_iter()
        .filter_map(|(n, t)| Some((n, SourceEntry { tag: t?, flags: 0 })))
        .collect()
}

/// Whether the policy drops `a`.
fn drops(p: &[(IpNet, SourceEntry)], a: IpAddr) -> bool {
    p.iter().any(|(n, _)| n.contains(&a))
}

/// Addresses to probe: each prefix's ends and their neighbours, and random
/// ones in the clustered /40s, their neighbours and elsewhere in the /32s.
fn probes(p: &[(IpNet, SourceEntry)], rng: &mut Rng) -> Vec<IpAddr> {
    let mut out = Vec::new();
    for (n, _) in p {
        let IpNet::V6(n) = n else { continue };
        let (lo, hi) = (u128::from(n.network()), u128::from(n.broadcast()));
        for x in [lo.wrapping_sub(1), lo, hi, hi.wrapping_add(1)] {
            out.push(IpAddr::V6(Ipv6Addr::from(x)));
        }
    }
    for _ in 0..600 {
        let top = u128::from(TOPS[rng.below(TOPS.len())]) << 96;
        let sub = match rng.below(3) {
            0 => (rng.below(6) as u128 * 37) << 88,
            1 => (rng.below(6) as u128 * 37 + 1) << 88,
            _ => (rng.below(256) as u128) << 88,
        };
        out.push(IpAddr::V6(Ipv6Addr::from(
            top | sub | (rng.u128() & (u128::MAX >> 40)),
        )));
    }
    // Other /32s of the policies' /16s (the touch map's bits), beside the
    // split ones and anywhere.
    for _ in 0..300 {
        let top = TOPS[rng.below(TOPS.len())];
        let top = match rng.below(3) {
            0 => top.wrapping_add(1),
            1 => top.wrapping_sub(1),
            _ => (top & 0xffff_0000) | rng.below(0x1_0000) as u32,
        };
        out.push(IpAddr::V6(Ipv6Addr::from(
            u128::from(top) << 96 | (rng.u128() & (u128::MAX >> 32)),
        )));
    }
    out
}

/// Checks the program's verdict on every probe against the policy.
fn check(dp: &mut Dataplane, p: &[(IpNet, SourceEntry)], addrs: &[IpAddr], what: &str) {
    for &a in addrs {
        let want = if drops(p, a) { XDP_DROP } else { XDP_PASS };
        let got = run_xdp(dp.program().unwrap(), &frame(a));
        assert_eq!(got, want, "{what}: {a}");
    }
}

#[test]
fn ipv6_sources_under_split_32s_get_the_policys_verdicts() {
    require_root();
    let mut dp = Dataplane::load(&LoadOptions::default()).expect("load");
    let mut rng = Rng::new(0xd1_36);
    let mut last: Vec<(IpNet, SourceEntry)> = Vec::new();
    for round in 0..8 {
        let p = policy(&mut rng);
        dp.maps.sources.replace(&p).expect("replace");
        let dir = dp
            .maps
            .sources
            .v6_table()
            .dir
            .expect("the source set keeps a directory");
        assert!(dir.split > 0, "round {round}: the policy splits /32s");
        assert_eq!(dir.kept, dir.split, "round {round}: every split /32 fits");
        assert!(
            dir.covers > 0,
            "round {round}: split /40s have cover bitmaps"
        );
        let mut addrs = probes(&p, &mut rng);
        addrs.extend(probes(&last, &mut rng));
        check(&mut dp, &p, &addrs, &format!("round {round}"));
        last = p;
    }
    dp.maps.sources.replace(&[]).unwrap();
    let addrs = probes(&last, &mut rng);
    check(&mut dp, &[], &addrs, "emptied");
}

#[test]
fn addresses_two_policies_agree_on_keep_their_verdict_while_they_swap() {
    require_root();
    let mut dp = Dataplane::load(&LoadOptions::default()).expect("load");
    let mut rng = Rng::new(0x5a_a9);
    let (a, b) = (policy(&mut rng), policy(&mut rng));
    // The addresses both policies drop or both pass.
    let mut agreed: Vec<(IpAddr, u32)> = Vec::new();
    for x in probes(&a, &mut rng).into_iter().chain(probes(&b, &mut rng)) {
        if drops(&a, x) == drops(&b, x) {
            agreed.push((x, if drops(&a, x) { XDP_DROP } else { XDP_PASS }));
        }
    }
    assert!(agreed.iter().any(|(_, v)| *v == XDP_DROP));
    assert!(agreed.iter().any(|(_, v)| *v == XDP_PASS));
    dp.maps.sources.replace(&a).expect("replace");
    // A second handle on the same program for the reader thread: pinned
    // in the test's own directory (removed on drop) and opened again.
    let pins = PinDir::new();
    std::fs::create_dir_all(&pins.path).unwrap();
    let pin = pins.path.join("prog");
    dp.program().unwrap().pin(&pin).expect("pin the program");
    let reader_prog = Xdp::from_pin(&pin, XdpAttachType::Interface).expect("open the pin");
    let frames: Vec<(IpAddr, Vec<u8>, u32)> =
        agreed.iter().map(|&(x, v)| (x, frame(x), v)).collect();
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        let reader = s.spawn(|| {
            let mut runs = 0u64;
            while !done.load(Ordering::Relaxed) {
                for (x, f, want) in &frames {
                    let got = run_xdp(&reader_prog, f);
                    assert_eq!(got, *want, "{x} during a swap");
                    runs += 1;
                }
            }
            runs
        });
        for i in 0..12 {
            let p = if i % 2 == 0 { &b } else { &a };
            dp.maps.sources.replace(p).expect("replace");
        }
        done.store(true, Ordering::Relaxed);
        let runs = reader.join().expect("no verdict changed during the swaps");
        assert!(
            runs > frames.len() as u64,
            "the reader ran during the swaps"
        );
    });
    check(
        &mut dp,
        &a,
        &frames.iter().map(|f| f.0).collect::<Vec<_>>(),
        "after",
    );
}
