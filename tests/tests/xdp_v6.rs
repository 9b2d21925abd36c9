//! The IPv6 CIDR tables (`waf_common::prefix6`) in the real program under
//! BPF_PROG_TEST_RUN, at their limits: more prefix lengths than targets
//! (expansion), entries too short to expand, a table filled past its slot
//! budget and buckets that overflow, prefix bans nested at many lengths
//! with expiries, removals that hand slots to shorter entries, and a
//! rebuild from the tries; and the exact IPv6 bans keyed by `[ban_policy]
//! ipv6_prefix`, moved when it changes. Every verdict is checked against a
//! model: the entries themselves, asked directly.

use std::net::{IpAddr, Ipv6Addr};

use ipnet::{IpNet, Ipv6Net};
use waf_common::{BanEntry, ListEntry, ban_reason, counter};
use waf_tests::{XDP_DROP, XDP_PASS, delta, require_root, run_xdp, xdp_fuzz::rng::Rng};
use waf_user::{
    dataplane::{Capacity, Dataplane, LoadOptions, RateLimits, Settings},
    packet::FrameSpec,
};

const SRV6: &str = "2001:db8:ffff::1";

fn frame(src: Ipv6Addr) -> Vec<u8> {
    FrameSpec::new(IpAddr::V6(src), SRV6.parse().unwrap()).build()
}

fn mask(len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(len))
    }
}

/// A random prefix of length `len` under 2001:db8::/32, in one of a few
/// /40s so that entries nest.
fn prefix(rng: &mut Rng, len: u8) -> Ipv6Net {
    let base: u128 = 0x2001_0db8 << 96 | (rng.below(4) as u128) << 88;
    let a = (base | (rng.u128() & !mask(40))) & mask(len);
    Ipv6Net::new(Ipv6Addr::from(a), len).unwrap()
}

/// Sources to ask about: inside entries (first, last, random), just
/// outside their edges, and random ones near them.
fn sources(rng: &mut Rng, nets: &[Ipv6Net], n: usize) -> Vec<Ipv6Addr> {
    (0..n)
        .map(|_| {
            let net = *rng.pick(nets);
            let first = u128::from(net.network());
            let last = u128::from(net.broadcast());
            let a = match rng.below(5) {
                0 => first,
                1 => last,
                2 => first | (rng.u128() & !mask(net.prefix_len())),
                3 => last.wrapping_add(1),
                _ => first.wrapping_sub(1),
            };
            Ipv6Addr::from(a)
        })
        .collect()
}

fn load(capacity: Capacity) -> Dataplane {
    require_root();
    Dataplane::load(&LoadOptions {
        capacity,
        ..Default::default()
    })
    .expect("load the XDP program")
}

/// Sends each source; asserts the blocklist verdict is the model's.
fn check_block(dp: &mut Dataplane, entries: &[Ipv6Net], srcs: &[Ipv6Addr], what: &str) {
    let mut wrong = Vec::new();
    for &src in srcs {
        let want = entries.iter().any(|n| n.contains(&src));
        let got = run_xdp(dp.program().unwrap(), &frame(src));
        let expect = if want { XDP_DROP } else { XDP_PASS };
        if got != expect {
            wrong.push(format!("{src}: got {got}, model {expect}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "{what}: {} of {} verdicts differ from the model, first: {:?}",
        wrong.len(),
        srcs.len(),
        &wrong[..wrong.len().min(5)]
    );
}

#[test]
fn blocklist_tables_agree_with_the_model_past_their_limits() {
    // A small table (1,024 buckets of 8 slots, 4,096 before entries stay in
    // the trie) and 21 lengths for 7 targets: expansion, a full budget,
    // overflowing buckets.
    let mut dp = load(Capacity {
        blocklist_v6: 1024,
        ..Capacity::default()
    });
    let mut rng = Rng::new(0x7ab1e6);
    let lens: Vec<u8> = (40..=100).step_by(3).collect();
    let mut entries: Vec<Ipv6Net> = Vec::new();
    while entries.len() < 1000 {
        let len = *rng.pick(&lens);
        let n = prefix(&mut rng, len);
        if !entries.contains(&n) {
            dp.maps
                .block
                .insert(IpNet::V6(n), ListEntry::default())
                .unwrap();
            entries.push(n);
        }
    }
    // Two entries too short to expand at all.
    for n in ["2001:db8:4000::/34", "2001:db8:ff00::/40"] {
        let n: Ipv6Net = n.parse().unwrap();
        dp.maps
            .block
            .insert(IpNet::V6(n), ListEntry::default())
            .unwrap();
        entries.push(n);
    }
    let usage = dp.maps.block.v6_table();
    assert_eq!(usage.targets.len(), 7, "{usage:?}");
    assert!(usage.trie_only > 2, "the budget sent entries to the trie");
    assert!(usage.slots > 3000, "slots used {}", usage.slots);
    assert!(!usage.overflowed.is_empty(), "some buckets overflowed");
    let mut srcs = sources(&mut rng, &entries, 6000);
    srcs.extend(sources(&mut rng, &usage.overflowed, 500));
    check_block(&mut dp, &entries, &srcs, "full table");

    // Half the entries go: slots pass to shorter entries or are cleared.
    for _ in 0..500 {
        let n = entries.swap_remove(rng.below(entries.len()));
        assert!(dp.maps.block.remove(IpNet::V6(n)).unwrap(), "{n}");
    }
    let removed: Vec<Ipv6Net> = srcs
        .iter()
        .map(|a| Ipv6Net::new(*a, 128).unwrap())
        .collect();
    let srcs = sources(&mut rng, &entries, 3000);
    check_block(&mut dp, &entries, &srcs, "after removals");
    let near_removed = sources(&mut rng, &removed, 2000);
    check_block(&mut dp, &entries, &near_removed, "around removed entries");

    // Rebuilt from the tries (as when a daemon adopts pinned maps).
    dp.maps.block.resync().unwrap();
    check_block(&mut dp, &entries, &srcs, "after a rebuild");
    // Everything goes: nothing is blocked, nothing is left in the table.
    for n in entries.drain(..) {
        assert!(dp.maps.block.remove(IpNet::V6(n)).unwrap());
    }
    assert_eq!(dp.maps.block.v6_table().slots, 0, "no slot left");
    check_block(&mut dp, &[], &srcs, "empty");
}

#[test]
fn a_prefix_whose_bucket_is_full_is_still_found() {
    use waf_common::prefix6::{SLOTS, prefix_bucket, table_buckets};
    let capacity = 1024;
    let mut dp = load(Capacity {
        blocklist_v6: capacity,
        ..Capacity::default()
    });
    // /64s that all hash to one bucket: one more than it holds.
    let bucket_mask = table_buckets(capacity) - 1;
    let mut rng = Rng::new(0xf011);
    let mut same: Vec<Ipv6Net> = Vec::new();
    let mut want = None;
    while same.len() <= SLOTS {
        let n = prefix(&mut rng, 64);
        let hi = (u128::from(n.network()) >> 64) as u64;
        let b = prefix_bucket(hi, 0, 64, bucket_mask);
        if *want.get_or_insert(b) == b && !same.contains(&n) {
            same.push(n);
        }
    }
    for n in &same {
        dp.maps
            .block
            .insert(IpNet::V6(*n), ListEntry::default())
            .unwrap();
    }
    let usage = dp.maps.block.v6_table();
    assert_eq!(usage.overflowed, vec![same[SLOTS]], "{usage:?}");
    assert_eq!(usage.trie_only, 0);
    let srcs = sources(&mut rng, &same, 400);
    check_block(&mut dp, &same, &srcs, "a full bucket");
    // The overflowed prefix goes, then one in the bucket: all still right.
    assert!(dp.maps.block.remove(IpNet::V6(same[SLOTS])).unwrap());
    let gone = same.pop().unwrap();
    assert!(dp.maps.block.remove(IpNet::V6(same[0])).unwrap());
    let kept: Vec<Ipv6Net> = same.split_off(1);
    let mut srcs = sources(&mut rng, &kept, 200);
    srcs.extend(sources(&mut rng, &[gone, same[0]], 100));
    check_block(&mut dp, &kept, &srcs, "after removals");
}

#[test]
fn an_entry_too_short_for_the_table_still_covers_everything_under_it() {
    let mut dp = load(Capacity::default());
    let all: Ipv6Net = "::/0".parse().unwrap();
    let e = ListEntry::default();
    dp.maps
        .block
        .insert("2001:db8:1::/48".parse().unwrap(), e)
        .unwrap();
    dp.maps.block.insert(IpNet::V6(all), e).unwrap();
    let usage = dp.maps.block.v6_table();
    assert_eq!(
        (usage.targets, usage.trie_only),
        (vec![48], 1),
        "::/0 stays in the trie"
    );
    let mut rng = Rng::new(5);
    let srcs: Vec<Ipv6Addr> = (0..200).map(|_| Ipv6Addr::from(rng.u128())).collect();
    check_block(&mut dp, &[all], &srcs, "under ::/0");
    assert!(dp.maps.block.remove(IpNet::V6(all)).unwrap());
    let one: Ipv6Net = "2001:db8:1::/48".parse().unwrap();
    check_block(&mut dp, &[one], &srcs, "::/0 gone");
    check_block(
        &mut dp,
        &[one],
        &sources(&mut rng, &[one], 50),
        "the /48 stays",
    );
}

#[test]
fn nested_prefix_bans_at_many_lengths_drop_while_any_is_in_force() {
    let mut dp = load(Capacity::default());
    let now = dp.kernel_now_ns().unwrap();
    let mut rng = Rng::new(0xba115);
    // Expiries: permanent, an hour ahead, or a second ago; the shorter
    // bans mostly expired, the longer ones mostly in force, so that a
    // longer ban in force under an expired one is common.
    let (hour, ago) = (now + 3_600_000_000_000, now - 1_000_000_000);
    let mut bans: Vec<(Ipv6Net, u64)> = Vec::new();
    let lens: Vec<u8> = (43..=128).step_by(5).collect();
    while bans.len() < 400 {
        let len = *rng.pick(&lens);
        let n = prefix(&mut rng, len);
        if bans.iter().any(|(b, _)| *b == n) {
            continue;
        }
        let e = match (len < 64, rng.below(10)) {
            (true, 0..=6) | (false, 0..=2) => ago,
            (_, 3..=5) => hour,
            _ => 0,
        };
        let ban = BanEntry {
            expires_ns: e,
            reason: ban_reason::MANUAL,
            _reserved: 0,
        };
        dp.maps.prefix_bans.insert(IpNet::V6(n), ban).unwrap();
        bans.push((n, e));
    }
    let nets: Vec<Ipv6Net> = bans.iter().map(|(n, _)| *n).collect();
    let check = |dp: &mut Dataplane, rng: &mut Rng, bans: &[(Ipv6Net, u64)], what: &str| {
        let mut wrong = 0;
        for src in sources(rng, &nets, 3000) {
            let covering: Vec<u64> = bans
                .iter()
                .filter(|(n, _)| n.contains(&src))
                .map(|(_, e)| *e)
                .collect();
            let in_force = covering.iter().any(|&e| e == 0 || e > now);
            let before = dp.maps.counters().unwrap();
            let got = run_xdp(dp.program().unwrap(), &frame(src));
            let d = delta(&before, &dp.maps.counters().unwrap());
            let (want, reason) = if in_force {
                (XDP_DROP, counter::BANNED)
            } else {
                (XDP_PASS, counter::PASS)
            };
            let expired_counted = d[counter::BAN_EXPIRED as usize].packets;
            if got != want
                || d[reason as usize].packets != 1
                || expired_counted != u64::from(!in_force && !covering.is_empty())
            {
                wrong += 1;
                if wrong < 5 {
                    eprintln!("{what}: {src} covered by {covering:?}: action {got}, want {want}");
                }
            }
        }
        assert_eq!(wrong, 0, "{what}: verdicts that differ from the model");
    };
    check(&mut dp, &mut rng, &bans, "nested bans");
    for _ in 0..200 {
        let (n, _) = bans.swap_remove(rng.below(bans.len()));
        assert!(dp.maps.prefix_bans.remove(IpNet::V6(n)).unwrap());
    }
    check(&mut dp, &mut rng, &bans, "after lifting half");
}

/// Settings with IPv6 sources keyed per `/prefix` (no rate limit on).
fn keyed_per(prefix: u8) -> Settings {
    Settings {
        rate: RateLimits {
            v6_prefix: prefix,
            ..Default::default()
        },
        ..Default::default()
    }
}

/// The IPv6 bans of the test below: a /64 (exact at the default prefix),
/// a /56, a /128 and a /48 around nothing else, permanent.
const KEYED_BANS: [&str; 4] = [
    "2001:db8:a:1::/64",
    "2001:db8:b:100::/56",
    "2001:db8:c::5/128",
    "2001:db8:d::/48",
];

/// Sources at and just past the edges of `nets`, inside at random, and
/// in the next /64 and /56 (what a too-short mask would catch).
fn keyed_sources(rng: &mut Rng, nets: &[Ipv6Net]) -> Vec<Ipv6Addr> {
    let mut out = sources(rng, nets, 200);
    for n in nets {
        let first = u128::from(n.network());
        out.push(Ipv6Addr::from(first ^ (1 << 64)));
        out.push(Ipv6Addr::from(first ^ (1 << 72)));
    }
    out
}

/// `[ban_policy] ipv6_prefix` keys the exact IPv6 bans: a ban of exactly
/// that length is an exact ban (one bucket slot, found by the masked
/// source), any other length a prefix ban; changing the prefix moves the
/// bans between the stores, and every verdict on the way, with the moves
/// racing traffic on another CPU, is the bans' own: no banned source
/// passes, no source outside them is dropped (a store keyed shorter than
/// the program's mask would drop its neighbours).
#[test]
fn ipv6_exact_bans_follow_the_ban_prefix_and_move_without_a_gap() {
    let pins = waf_tests::PinDir::new();
    let mut dp = load(Capacity::default());
    let ban = BanEntry {
        expires_ns: 0,
        reason: ban_reason::DETECTION,
        _reserved: 0,
    };
    let nets: Vec<Ipv6Net> = KEYED_BANS.iter().map(|s| s.parse().unwrap()).collect();
    for n in &nets {
        dp.maps.ban(IpNet::V6(*n), ban).unwrap();
    }
    let mut rng = Rng::new(0x6464);
    let srcs = keyed_sources(&mut rng, &nets);
    let frames: Vec<(Vec<u8>, u32)> = srcs
        .iter()
        .map(|&s| {
            let banned = nets.iter().any(|n| n.contains(&s));
            (frame(s), if banned { XDP_DROP } else { XDP_PASS })
        })
        .collect();
    assert!(frames.iter().filter(|f| f.1 == XDP_DROP).count() > 50);
    assert!(frames.iter().filter(|f| f.1 == XDP_PASS).count() > 20);

    // A second handle on the program, for traffic while the maps move.
    std::fs::create_dir_all(&pins.path).unwrap();
    let pin = pins.path.join("prog");
    dp.program().unwrap().pin(&pin).expect("pin the program");
    let other = aya::programs::Xdp::from_pin(&pin, aya_obj::programs::XdpAttachType::Interface)
        .expect("the pinned program");
    let stop = std::sync::atomic::AtomicBool::new(false);
    let wrong = std::sync::Mutex::new(Vec::<String>::new());
    let rounds = std::sync::atomic::AtomicU64::new(0);
    std::thread::scope(|s| {
        s.spawn(|| {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                for (i, (f, want)) in frames.iter().enumerate() {
                    let got = run_xdp(&other, f);
                    if got != *want {
                        wrong.lock().unwrap().push(format!("{}: {got}", srcs[i]));
                    }
                }
                rounds.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        });
        for prefix in [64, 56, 128, 48, 64, 1, 64] {
            dp.maps.apply(&keyed_per(prefix)).expect("a new prefix");
            assert_eq!(dp.maps.v6_exact(), prefix);
            let exact = nets.iter().filter(|n| n.prefix_len() == prefix).count();
            assert_eq!(dp.maps.bans.v6.len(), exact, "exact IPv6 bans at /{prefix}");
            let v6_prefix_bans = |dp: &Dataplane| {
                dp.maps
                    .prefix_bans
                    .entries()
                    .into_iter()
                    .filter(|(n, _)| matches!(n, IpNet::V6(_)))
                    .count()
            };
            assert_eq!(v6_prefix_bans(&dp), nets.len() - exact, "at /{prefix}");
            let mut all: Vec<IpNet> = dp
                .maps
                .all_bans()
                .unwrap()
                .into_iter()
                .map(|b| b.0)
                .collect();
            all.sort();
            let mut want: Vec<IpNet> = nets.iter().map(|n| IpNet::V6(*n)).collect();
            want.sort();
            assert_eq!(all, want, "the bans read back at /{prefix}");
            // Each prefix long enough for a few rounds of traffic.
            let r = rounds.load(std::sync::atomic::Ordering::Relaxed);
            let t = std::time::Instant::now();
            while rounds.load(std::sync::atomic::Ordering::Relaxed) < r + 3
                && t.elapsed() < std::time::Duration::from_secs(10)
            {
                std::thread::yield_now();
            }
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    let wrong = wrong.into_inner().unwrap();
    assert!(
        wrong.is_empty(),
        "{} verdicts not the bans' own while the prefix moved: {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(5)]
    );
    assert!(
        rounds.into_inner() >= 21,
        "traffic ran through every prefix"
    );
    // Lifted by the net the operator banned, whichever store holds it.
    for n in &nets {
        assert!(dp.maps.unban(IpNet::V6(*n)).unwrap(), "{n}");
    }
    for (f, _) in &frames {
        assert_eq!(run_xdp(dp.program().unwrap(), f), XDP_PASS);
    }
}

/// A prefix change that would pass more IPv6 bans through the prefix-ban
/// store than it holds is refused, and nothing moves: the config keeps the
/// old prefix and the bans keep dropping.
#[test]
fn a_prefix_change_the_prefix_store_cannot_carry_is_refused_whole() {
    let mut dp = load(Capacity {
        prefix_bans_v6: 16,
        ..Capacity::default()
    });
    let ban = BanEntry {
        expires_ns: 0,
        reason: ban_reason::DETECTION,
        _reserved: 0,
    };
    let nets: Vec<Ipv6Net> = (0..20u128)
        .map(|i| {
            Ipv6Net::new(
                Ipv6Addr::from(0x2001_0db8_0e00_0000u128 << 64 | i << 64),
                64,
            )
            .unwrap()
        })
        .collect();
    for n in &nets {
        dp.maps.ban(IpNet::V6(*n), ban).unwrap();
    }
    assert_eq!(dp.maps.bans.v6.len(), 20);
    let e = dp.maps.apply(&keyed_per(56)).unwrap_err().to_string();
    assert!(
        e.contains("prefix_bans_v6") && e.contains("/64 to /56"),
        "{e}"
    );
    assert_eq!(dp.maps.v6_exact(), 64);
    assert_eq!(dp.maps.xdp_config().unwrap().v6_prefix, 64);
    assert_eq!(dp.maps.bans.v6.len(), 20);
    for n in &nets {
        let inside = Ipv6Addr::from(u128::from(n.network()) | 0xabcd);
        assert_eq!(
            run_xdp(dp.program().unwrap(), &frame(inside)),
            XDP_DROP,
            "{inside}"
        );
    }
}
