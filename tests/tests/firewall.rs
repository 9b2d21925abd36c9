//! The firewall core against real kernel maps: what happens when a ban map
//! is full (an alarm and the configured policy, never a silent loss).

use std::time::Duration;

use ipnet::{IpNet, Ipv4Net};
use waf_common::PBAN_CAPACITY;
use waf_tests::require_root;
use waf_user::{
    config::{BanPolicy, Config, OnFull},
    dataplane::{Dataplane, LoadOptions},
    firewall::{BanDuration, BanSource, Firewall, FirewallError},
};

fn firewall(on_full: OnFull, tag: &str) -> (Firewall, std::path::PathBuf) {
    require_root();
    let dir = std::env::temp_dir().join(format!("waf-fw-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let cfg = Config {
        state_dir: dir.clone(),
        ban_policy: BanPolicy {
            on_full,
            ..Default::default()
        },
        ..Default::default()
    };
    let dp = Dataplane::load(&LoadOptions::default()).expect("load");
    let fw = Firewall::start(cfg.firewall().expect("config"), dp, Default::default())
        .expect("start")
        .0;
    (fw, dir)
}

/// The n-th /30 in 100.64.0.0/10 (prefix bans fill the trie fastest).
fn prefix(n: u32) -> IpNet {
    IpNet::V4(Ipv4Net::new((0x6440_0000u32 + n * 4).into(), 30).unwrap())
}

fn fill(fw: &mut Firewall) {
    for n in 0..PBAN_CAPACITY {
        // Later bans expire later: the first one is the soonest.
        fw.ban(
            prefix(n),
            BanDuration::For(Duration::from_secs(3600 + u64::from(n))),
            "fill",
            BanSource::Import,
            false,
        )
        .unwrap_or_else(|e| panic!("ban {n}: {e}"));
    }
    assert!(fw.alarms().is_empty());
}

#[test]
fn full_map_evicts_the_soonest_with_an_alarm() {
    let (mut fw, dir) = firewall(OnFull::EvictSoonest, "evict");
    fill(&mut fw);
    let extra = prefix(PBAN_CAPACITY);
    let ban = fw
        .ban(
            extra,
            BanDuration::For(Duration::from_secs(60)),
            "extra",
            BanSource::Manual,
            false,
        )
        .expect("evicting makes room");
    assert_eq!(ban.net, extra);
    let alarms = fw.alarms();
    assert_eq!(alarms.len(), 1);
    assert_eq!(alarms[0].kind, "ban_map_full");
    assert_eq!(fw.stats().bans_evicted, 1);
    assert!(
        !fw.state().bans.contains_key(&prefix(0)),
        "the soonest to expire was evicted"
    );
    assert!(fw.state().bans.contains_key(&prefix(1)));
    assert_eq!(
        fw.state().bans.len(),
        PBAN_CAPACITY as usize,
        "no silent loss: one out, one in"
    );
    let in_kernel = fw.dataplane().maps.prefix_bans.len();
    assert_eq!(in_kernel, PBAN_CAPACITY as usize);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn full_map_with_reject_policy_refuses_with_an_alarm() {
    let (mut fw, dir) = firewall(OnFull::Reject, "reject");
    fill(&mut fw);
    let err = fw
        .ban(
            prefix(PBAN_CAPACITY),
            BanDuration::Permanent,
            "extra",
            BanSource::Manual,
            false,
        )
        .unwrap_err();
    assert!(matches!(err, FirewallError::Full(_)), "{err}");
    assert!(err.to_string().contains("reject"), "{err}");
    assert_eq!(fw.alarms()[0].kind, "ban_map_full");
    assert_eq!(fw.stats().bans_refused_full, 1);
    assert!(
        fw.state().bans.contains_key(&prefix(0)),
        "nothing was evicted"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A bulk restore fills bucket slots and, in batches, the overflow hash;
/// every ban drops at XDP (slot or overflow), lifting works on both, and
/// the counts are exact.
#[test]
fn bulk_insert_fills_slots_and_the_overflow_hash() {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    use waf_common::BanEntry;
    use waf_tests::{XDP_DROP, XDP_PASS, run_xdp};
    require_root();
    let mut dp = Dataplane::load(&LoadOptions::default()).expect("load");
    // More than the bucket slots of one family: many overflow.
    let n = 600_000u32;
    let e = BanEntry {
        expires_ns: 0,
        reason: 1,
        _reserved: 0,
    };
    let v4 = |i: u32| IpAddr::V4(Ipv4Addr::from(0x6440_0000 + i));
    // IPv6 exact bans are /64s (the default `ipv6_prefix`).
    let v6 = |i: u32| {
        IpAddr::V6(Ipv6Addr::from(
            (0x2001_0db8_0bad_u128 << 80) | (u128::from(i) << 64),
        ))
    };
    let mut items: Vec<(IpAddr, BanEntry)> = (0..n).map(|i| (v4(i), e)).collect();
    items.extend((0..1000).map(|i| (v6(i), e)));
    dp.maps.bans.insert_many(&items).expect("bulk insert");
    assert_eq!(dp.maps.bans.len(), n as usize + 1000);
    let spilled = dp.maps.bans.v4.overflowed();
    assert!(spilled > 50_000, "overflowed: {spilled}");
    // Every 997th ban, through the real program.
    let frame = |a: IpAddr| {
        let dst: IpAddr = match a {
            IpAddr::V4(_) => "192.0.2.1".parse().unwrap(),
            IpAddr::V6(_) => "2001:db8::1".parse().unwrap(),
        };
        waf_user::packet::FrameSpec::new(a, dst).build()
    };
    let prog = dp.program().expect("program");
    for i in (0..n).step_by(997) {
        assert_eq!(run_xdp(prog, &frame(v4(i))), XDP_DROP, "{}", v4(i));
    }
    assert_eq!(run_xdp(prog, &frame(v6(7))), XDP_DROP);
    let in_v6 = IpAddr::V6(Ipv6Addr::from(
        u128::from_be_bytes(match v6(7) {
            IpAddr::V6(a) => a.octets(),
            IpAddr::V4(_) => unreachable!(),
        }) | 0xfeed,
    ));
    assert_eq!(run_xdp(prog, &frame(in_v6)), XDP_DROP, "{in_v6}");
    assert_eq!(run_xdp(prog, &frame(v6(1001))), XDP_PASS);
    assert_eq!(run_xdp(prog, &frame(v4(n + 1))), XDP_PASS);
    // Lift some of each kind: slots refill from the overflow, nothing lost.
    for i in (0..n).step_by(10) {
        assert!(dp.maps.bans.remove(v4(i)).unwrap(), "{}", v4(i));
    }
    assert_eq!(dp.maps.bans.len(), (n - n / 10) as usize + 1000);
    let prog = dp.program().expect("program");
    for i in (1..n).step_by(991) {
        let want = if i % 10 == 0 { XDP_PASS } else { XDP_DROP };
        assert_eq!(run_xdp(prog, &frame(v4(i))), want, "{}", v4(i));
    }
}

/// What the fleet asks of the firewall, decided on its own state: another
/// host's ban carries its origin, expiry and offence; it never replaces
/// this host's own ban unless this host lost the race for the key; a
/// delete lifts fleet bans and this host's shared bans no newer than it;
/// other hosts' strikes count in the window but never ban by themselves.
#[test]
fn fleet_ops_apply_lift_and_count_strikes_by_the_owners_rules() {
    use waf_user::firewall::{FleetBan, FleetOp, Strike, StrikeKind, fleet::source_bit};
    let (mut fw, dir) = firewall(OnFull::EvictSoonest, "fleetops");
    let now = waf_user::values::unix_now();
    let net = |s: &str| -> IpNet { s.parse().unwrap() };
    let remote = |n: &str, adopt: bool| {
        FleetOp::Ban(FleetBan {
            net: net(n),
            expires: now + 3600,
            reason: "from b".into(),
            origin: "b".into(),
            offence: 3,
            adopt,
        })
    };
    // Another host's ban: origin, expiry and offence travel.
    assert!(fw.fleet(remote("192.0.2.10/32", false)).unwrap());
    let m = fw.state().bans.get(&net("192.0.2.10/32")).unwrap().clone();
    assert_eq!(m.source, BanSource::Fleet);
    assert_eq!(m.origin.name().as_deref(), Some("b"));
    assert_eq!((u64::from(m.expires), m.offence), (now + 3600, 3));
    assert!(
        !fw.fleet(remote("192.0.2.10/32", false)).unwrap(),
        "the same ban again changes nothing"
    );
    // Expired, or wider than max_prefix: not applied.
    let mut old = remote("192.0.2.11/32", false);
    if let FleetOp::Ban(b) = &mut old {
        b.expires = now - 1;
    }
    assert!(!fw.fleet(old).unwrap());
    assert!(matches!(
        fw.fleet(remote("16.0.0.0/4", false)),
        Err(FirewallError::TooWide { .. })
    ));
    // This host's own ban stands, unless it lost the race for the key.
    fw.ban(
        net("192.0.2.12/32"),
        BanDuration::Escalate,
        "mine",
        BanSource::Detection,
        false,
    )
    .unwrap();
    assert!(!fw.fleet(remote("192.0.2.12/32", false)).unwrap());
    assert_eq!(
        fw.state().bans.get(&net("192.0.2.12/32")).unwrap().source,
        BanSource::Detection
    );
    assert!(fw.fleet(remote("192.0.2.12/32", true)).unwrap());
    let m = fw.state().bans.get(&net("192.0.2.12/32")).unwrap().clone();
    assert_eq!(
        (m.source, m.offence),
        (BanSource::Fleet, 3),
        "the winner's ban and offence"
    );

    // Deletes: a fleet ban is lifted; an own ban only for a shared source
    // and when no newer than the delete.
    let lift = |n: &str, deleted_at: u64, own_sources: u16| FleetOp::Lift {
        net: net(n),
        deleted_at,
        own_sources,
    };
    assert!(fw.fleet(lift("192.0.2.10/32", now, 0)).unwrap());
    assert!(!fw.state().bans.contains_key(&net("192.0.2.10/32")));
    fw.ban(
        net("192.0.2.13/32"),
        BanDuration::Escalate,
        "mine",
        BanSource::Manual,
        false,
    )
    .unwrap();
    let manual = source_bit(BanSource::Manual);
    assert!(
        !fw.fleet(lift("192.0.2.13/32", now + 10, 0)).unwrap(),
        "own, not shared"
    );
    assert!(
        !fw.fleet(lift("192.0.2.13/32", now.saturating_sub(10), manual))
            .unwrap(),
        "made after the delete: it stands"
    );
    assert!(fw.fleet(lift("192.0.2.13/32", now + 10, manual)).unwrap());
    assert!(
        !fw.fleet(lift("192.0.2.14/32", now, manual)).unwrap(),
        "nothing to lift"
    );

    // Strikes: policy default strikes in the window; the fleet's count,
    // but only a local strike bans.
    let threshold = fw.policy().strikes;
    assert!(
        threshold >= 2,
        "the default policy needs more than one strike"
    );
    let src: std::net::IpAddr = "198.51.100.77".parse().unwrap();
    for _ in 0..threshold + 3 {
        let op = FleetOp::Strike {
            source: src,
            kind: StrikeKind::Detection,
        };
        assert!(fw.fleet(op).unwrap());
    }
    assert!(
        !fw.state().bans.contains_key(&net("198.51.100.77/32")),
        "other hosts' strikes never ban by themselves"
    );
    let ban = fw
        .strike(Strike {
            source: src,
            kind: StrikeKind::Detection,
            score: 0,
            evidence: "x".into(),
            decided: None,
            ban: false,
        })
        .expect("one local strike over the fleet's count bans");
    assert_eq!(
        (ban.meta.source, ban.meta.offence),
        (BanSource::Detection, 1)
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// An IPv6 ban of `[ban_policy] ipv6_prefix` bits (what strikes ban) is an
/// exact ban in the kernel; a reload that changes the prefix moves it to
/// the prefix bans, where it keeps dropping; a restart with the old prefix
/// over the pinned maps moves it back, adopting nothing twice.
#[test]
fn ipv6_bans_of_the_ban_prefix_are_exact_across_reloads_and_restarts() {
    use waf_user::firewall::state::State;
    require_root();
    let pins = waf_tests::PinDir::new();
    let dir = std::env::temp_dir().join(format!("waf-fw-v6key-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let config = |prefix: u8| Config {
        state_dir: dir.clone(),
        ban_policy: BanPolicy {
            ipv6_prefix: prefix,
            ..Default::default()
        },
        ..Default::default()
    };
    let load = || {
        Dataplane::load(&LoadOptions {
            pin_dir: Some(pins.path.clone()),
            ..Default::default()
        })
        .expect("load")
    };
    let mut dp = load();
    // A handle on the program that outlives the firewalls below (the maps
    // are the pinned ones).
    let pin = pins.path.join("prog");
    dp.program().unwrap().pin(&pin).expect("pin the program");
    let prog = aya::programs::Xdp::from_pin(&pin, aya_obj::programs::XdpAttachType::Interface)
        .expect("the pinned program");
    let verdict = |src: &str| {
        let frame = waf_user::packet::FrameSpec::new(
            src.parse().unwrap(),
            "2001:db8:ffff::1".parse().unwrap(),
        )
        .build();
        waf_tests::run_xdp(&prog, &frame)
    };
    let (mut fw, _) =
        Firewall::start(config(64).firewall().unwrap(), dp, State::default()).unwrap();
    let struck: IpNet = "2001:db8:a:1::/64".parse().unwrap();
    let host: IpNet = "2001:db8:c::5/128".parse().unwrap();
    for net in [struck, host] {
        fw.ban(
            net,
            BanDuration::Permanent,
            "test",
            BanSource::Detection,
            false,
        )
        .unwrap();
    }
    let stores = |fw: &Firewall| {
        let m = &fw.dataplane().maps;
        let v6_prefixes = m
            .prefix_bans
            .entries()
            .into_iter()
            .filter(|(n, _)| matches!(n, IpNet::V6(_)))
            .count();
        (m.bans.v6.len(), v6_prefixes)
    };
    let drops = |what: &str| {
        for src in ["2001:db8:a:1::1", "2001:db8:a:1:ffff::9", "2001:db8:c::5"] {
            assert_eq!(verdict(src), waf_tests::XDP_DROP, "{src} {what}");
        }
        for src in ["2001:db8:a:2::1", "2001:db8:c::6"] {
            assert_eq!(verdict(src), waf_tests::XDP_PASS, "{src} {what}");
        }
    };
    assert_eq!(stores(&fw), (1, 1), "the /64 exact, the /128 a prefix ban");
    drops("at /64");
    fw.reload(config(56).firewall().unwrap()).unwrap();
    assert_eq!(stores(&fw), (0, 2), "both prefix bans at /56");
    drops("at /56");
    let state = fw.state().clone();
    drop(fw);
    let (fw, report) = Firewall::start(config(64).firewall().unwrap(), load(), state).unwrap();
    assert_eq!((report.restored, report.adopted), (2, 0));
    assert_eq!(stores(&fw), (1, 1), "back to exact at /64");
    drops("after the restart");
    drop(fw);
    let _ = std::fs::remove_dir_all(&dir);
}
