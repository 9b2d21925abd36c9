//! The source-policy set in the real program under BPF_PROG_TEST_RUN:
//! random policies of nested and adjacent ranges (both families, every
//! prefix length, /24s with longer prefixes inside), compiled by the
//! daemon's range compiler, written with `CidrSet::replace`, swapped for
//! others and emptied; every verdict and the per-tag counters checked
//! against the compiled list itself, including policies in monitor mode and
//! bogons, which drop only on the interfaces named.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use waf_common::{SourceEntry, counter, source_flags};
use waf_tests::{XDP_DROP, XDP_PASS, delta, require_root, run_xdp, xdp_fuzz::rng::Rng};
use waf_user::{
    dataplane::{Dataplane, LoadOptions},
    packet::FrameSpec,
    sources::ranges::Compiler,
};

fn frame(src: IpAddr) -> Vec<u8> {
    let dst: IpAddr = match src {
        IpAddr::V4(_) => "203.0.113.1".parse().unwrap(),
        IpAddr::V6(_) => "2001:db8:ffff::1".parse().unwrap(),
    };
    FrameSpec::new(src, dst).build()
}

/// Tags 1..=8: tag 7 is a policy in monitor mode, tag 8 bogons.
fn entry(tag: u32) -> SourceEntry {
    let flags = match tag {
        7 => source_flags::MONITOR,
        8 => source_flags::BOGON,
        _ => 0,
    };
    SourceEntry { tag, flags }
}

/// A random policy: ranges in a few /8s (IPv4) and /32s (IPv6) so that
/// they nest and touch, some of them passed (`None`, as a country allowed
/// inside a blocked range).
fn policy(rng: &mut Rng) -> Vec<(IpNet, SourceEntry)> {
    let mut c: Compiler<Option<u32>> = Compiler::new();
    for _ in 0..rng.range(1, 399) {
        let tag = if rng.one_in(5) {
            None
        } else {
            Some(rng.range(1, 8) as u32)
        };
        let prio = rng.below(3) as u32;
        if rng.one_in(2) {
            let len = rng.range(8, 32) as u8;
            let base = [10u32, 100, 198][rng.below(3)] << 24;
            let a = Ipv4Addr::from(base | (rng.u32() & 0x00ff_ffff));
            c.add_net(IpNet::V4(Ipv4Net::new(a, len).unwrap().trunc()), prio, tag);
        } else {
            let len = rng.range(16, 128) as u8;
            let base: u128 = (0x2001_0db8u128 << 96) | (rng.below(3) as u128) << 80;
            let a = Ipv6Addr::from(base | (rng.u128() & (u128::MAX >> 48)));
            c.add_net(IpNet::V6(Ipv6Net::new(a, len).unwrap().trunc()), prio, tag);
        }
    }
    c.compile()
        .into_iter()
        .filter_map(|(n, t)| Some((n, entry(t?))))
        .collect()
}

/// The entry covering `a`, asked of the list itself.
fn covering(p: &[(IpNet, SourceEntry)], a: IpAddr) -> Option<SourceEntry> {
    p.iter().find(|(n, _)| n.contains(&a)).map(|(_, e)| *e)
}

/// Addresses to probe: each prefix's ends and their neighbours, and random
/// ones in the same regions.
fn probes(p: &[(IpNet, SourceEntry)], rng: &mut Rng) -> Vec<IpAddr> {
    let mut out = Vec::new();
    for (n, _) in p.iter().take(150) {
        match n {
            IpNet::V4(n) => {
                let (lo, hi) = (u32::from(n.network()), u32::from(n.broadcast()));
                for x in [lo.wrapping_sub(1), lo, hi, hi.wrapping_add(1)] {
                    out.push(IpAddr::V4(Ipv4Addr::from(x)));
                }
            }
            IpNet::V6(n) => {
                let (lo, hi) = (u128::from(n.network()), u128::from(n.broadcast()));
                for x in [lo.wrapping_sub(1), lo, hi, hi.wrapping_add(1)] {
                    out.push(IpAddr::V6(Ipv6Addr::from(x)));
                }
            }
        }
    }
    for _ in 0..200 {
        let base = [10u32, 100, 198][rng.below(3)] << 24;
        out.push(IpAddr::V4(Ipv4Addr::from(base | (rng.u32() & 0x00ff_ffff))));
        let base6: u128 = (0x2001_0db8u128 << 96) | (rng.below(3) as u128) << 80;
        out.push(IpAddr::V6(Ipv6Addr::from(
            base6 | (rng.u128() & (u128::MAX >> 48)),
        )));
    }
    out
}

/// Checks every probe's verdict; returns the drops expected per tag.
fn check(dp: &mut Dataplane, p: &[(IpNet, SourceEntry)], addrs: &[IpAddr], bogons_here: bool) {
    let before = dp.maps.counters().unwrap();
    let tags_before = dp.maps.source_counters().unwrap();
    let mut want_tags = vec![0u64; tags_before.len()];
    let (mut drops, mut monitored) = (0, 0);
    for &a in addrs {
        let e = covering(p, a);
        let applies = e.is_some_and(|e| e.flags & source_flags::BOGON == 0 || bogons_here);
        let drop = applies && e.is_some_and(|e| e.flags & source_flags::MONITOR == 0);
        if applies {
            want_tags[e.unwrap().tag as usize] += 1;
            if drop {
                drops += 1;
            } else {
                monitored += 1;
            }
        }
        let want = if drop { XDP_DROP } else { XDP_PASS };
        let got = run_xdp(dp.program().unwrap(), &frame(a));
        assert_eq!(
            got, want,
            "{a}: covered by {e:?} (bogons here: {bogons_here})"
        );
    }
    let d = delta(&before, &dp.maps.counters().unwrap());
    assert_eq!(d[counter::SOURCE_POLICY as usize].packets, drops);
    assert_eq!(
        d[counter::SOURCE_POLICY_MONITORED as usize].packets,
        monitored
    );
    let tags = delta(&tags_before, &dp.maps.source_counters().unwrap());
    for (t, want) in want_tags.iter().enumerate() {
        assert_eq!(tags[t].packets, *want, "tag {t}");
    }
}

#[test]
fn random_policies_swapped_and_emptied_give_the_compiled_verdicts() {
    require_root();
    let mut dp = Dataplane::load(&LoadOptions::default()).expect("load");
    let mut rng = Rng::new(0x50_0c_e5);
    let mut last: Vec<(IpNet, SourceEntry)> = Vec::new();
    for round in 0..6 {
        let p = policy(&mut rng);
        let r = dp.maps.sources.replace(&p).expect("replace");
        assert!(!r.gap, "the set holds both policies");
        let stale = last.iter().filter(|(n, _)| !p.iter().any(|(m, _)| m == n));
        assert_eq!(r.removed, stale.count(), "round {round}");
        // BPF_PROG_TEST_RUN runs on the loopback device of the namespace
        // (ifindex 1): bogons drop there only once it is named.
        let bogons_here = round % 2 == 1;
        if bogons_here {
            dp.maps.bogon_ifaces.insert(1, 1, 0).unwrap();
        } else {
            let _ = dp.maps.bogon_ifaces.remove(&1);
        }
        let mut addrs = probes(&p, &mut rng);
        addrs.extend(probes(&last, &mut rng));
        check(&mut dp, &p, &addrs, bogons_here);
        last = p;
    }
    // Emptied: everything passes.
    let r = dp.maps.sources.replace(&[]).unwrap();
    assert_eq!(r.removed, last.len());
    let addrs = probes(&last, &mut rng);
    check(&mut dp, &[], &addrs, true);
}

#[test]
fn a_policy_too_big_for_the_set_is_refused_and_the_old_stays() {
    require_root();
    let mut dp = Dataplane::load(&LoadOptions {
        capacity: waf_user::dataplane::Capacity {
            sources: 64,
            ..Default::default()
        },
        ..Default::default()
    })
    .expect("load");
    let small: Vec<(IpNet, SourceEntry)> = vec![("198.51.100.0/24".parse().unwrap(), entry(1))];
    dp.maps.sources.replace(&small).unwrap();
    let big: Vec<(IpNet, SourceEntry)> = (0..65u32)
        .map(|i| {
            let a = Ipv4Addr::from((10 << 24) | (i << 8));
            (IpNet::V4(Ipv4Net::new(a, 24).unwrap()), entry(2))
        })
        .collect();
    let err = dp.maps.sources.replace(&big).expect_err("65 entries in 64");
    assert!(err.to_string().contains("65 entries"), "{err}");
    let drop = run_xdp(
        dp.program().unwrap(),
        &frame("198.51.100.9".parse().unwrap()),
    );
    assert_eq!(drop, XDP_DROP, "the old policy is in force");
    let pass = run_xdp(dp.program().unwrap(), &frame("10.0.3.1".parse().unwrap()));
    assert_eq!(pass, XDP_PASS);
}
