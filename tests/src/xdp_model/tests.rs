//! The model on hand-made frames: one behaviour of the program each.

use std::net::IpAddr;

use waf_common::counter;
use waf_user::packet::{
    ETH_P_ARP, ExtHeader, FrameSpec, L4, TPID_8021AD, TPID_8021Q, non_ip_frame,
};

use super::*;

const PERMANENT: u64 = 0;
const NOW: u64 = 1_000_000_000_000;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn syn(src: &str) -> FrameSpec {
    let dst = if src.contains(':') {
        "2001:db8:ffff::1"
    } else {
        "203.0.113.1"
    };
    FrameSpec::new(ip(src), ip(dst))
}

fn state() -> MapState {
    MapState {
        now: NOW,
        ..MapState::default()
    }
}

fn verdict_of(s: &MapState, f: &[u8]) -> (u32, u32) {
    let v = s.verdict(f);
    (v.action, v.counter)
}

#[test]
fn a_clean_syn_is_parsed_and_passed() {
    let f = syn("192.0.2.10").build();
    let Parsed::V4(src, meta) = parse(&f) else {
        panic!("{:?}", parse(&f))
    };
    assert_eq!(src.to_string(), "192.0.2.10");
    assert!(meta.syn && !meta.malformed && !meta.fragment);
    assert_eq!((meta.l3_off, meta.l4_off, meta.dport), (14, 34, 80));
    assert_eq!(verdict_of(&state(), &f), (XDP_PASS, counter::PASS));
}

#[test]
fn bans_drop_and_monitor_mode_only_counts() {
    let mut s = state();
    s.bans.push((ip("192.0.2.66"), PERMANENT));
    s.bans.push((ip("2001:db8::66"), NOW + 1));
    let f4 = syn("192.0.2.66").build();
    let f6 = syn("2001:db8::66").build();
    assert_eq!(verdict_of(&s, &f4), (XDP_DROP, counter::BANNED));
    assert_eq!(verdict_of(&s, &f6), (XDP_DROP, counter::BANNED));
    assert_eq!(
        verdict_of(&s, &syn("192.0.2.67").build()),
        (XDP_PASS, counter::PASS)
    );
    s.monitor = true;
    assert_eq!(verdict_of(&s, &f4), (XDP_PASS, counter::MONITOR_BANNED));
}

#[test]
fn an_expired_exact_ban_is_counted_and_a_prefix_ban_still_applies() {
    let mut s = state();
    s.bans.push((ip("192.0.2.66"), NOW));
    let f = syn("192.0.2.66").build();
    let v = s.verdict(&f);
    assert_eq!(
        (v.action, v.counter, v.bans_expired),
        (XDP_PASS, counter::PASS, 1)
    );
    s.prefix_bans.push((net("192.0.2.0/24"), NOW + 1));
    let v = s.verdict(&f);
    assert_eq!(
        (v.action, v.counter, v.bans_expired),
        (XDP_DROP, counter::BANNED, 1)
    );
}

#[test]
fn a_prefix_ban_in_force_drops_under_an_expired_longer_one() {
    // The policy: a source under any ban in force is dropped, whatever
    // expired ban lies closer to it.
    let mut s = state();
    s.prefix_bans.push((net("2001:db8::/32"), PERMANENT));
    s.prefix_bans.push((net("2001:db8::/64"), NOW - 1));
    let v = s.verdict(&syn("2001:db8::66").build());
    assert_eq!(
        (v.action, v.counter, v.bans_expired),
        (XDP_DROP, counter::BANNED, 0)
    );
    let v = s.verdict(&syn("2001:db9::66").build());
    assert_eq!((v.action, v.bans_expired), (XDP_PASS, 0));
}

#[test]
fn the_allowlist_wins_over_everything_and_emergency_drops_the_rest() {
    let mut s = state();
    s.allow.push(net("192.0.2.0/28"));
    s.block.push(net("192.0.2.0/24"));
    s.bans.push((ip("192.0.2.1"), PERMANENT));
    s.emergency = true;
    assert_eq!(
        verdict_of(&s, &syn("192.0.2.1").build()),
        (XDP_PASS, counter::ALLOWLISTED)
    );
    assert_eq!(
        verdict_of(&s, &syn("192.0.2.16").build()),
        (XDP_DROP, counter::EMERGENCY)
    );
    s.emergency = false;
    assert_eq!(
        verdict_of(&s, &syn("192.0.2.16").build()),
        (XDP_DROP, counter::BLOCKLISTED)
    );
}

#[test]
fn neighbour_discovery_passes_only_with_hop_limit_255() {
    let mut s = state();
    s.emergency = true;
    let mut ns = syn("2001:db8::66").with_l4(L4::Icmp { kind: 135 });
    ns.ttl = 255;
    assert_eq!(verdict_of(&s, &ns.build()), (XDP_PASS, counter::PASS));
    ns.ttl = 254;
    assert_eq!(verdict_of(&s, &ns.build()), (XDP_DROP, counter::EMERGENCY));
}

#[test]
fn two_vlan_tags_are_stepped_over_and_a_third_is_unparsable() {
    let two = syn("192.0.2.10")
        .with_vlans(&[(TPID_8021AD, 1), (TPID_8021Q, 2)])
        .build();
    assert!(matches!(parse(&two), Parsed::V4(_, m) if m.l3_off == 22));
    let three = syn("192.0.2.10")
        .with_vlans(&[(TPID_8021AD, 1), (TPID_8021Q, 2), (TPID_8021Q, 3)])
        .build();
    assert_eq!(parse(&three), Parsed::Unparsable);
    assert_eq!(
        verdict_of(&state(), &three),
        (XDP_PASS, counter::UNPARSABLE)
    );
    assert_eq!(
        verdict_of(&state(), &non_ip_frame(ETH_P_ARP)),
        (XDP_PASS, counter::NOT_IP)
    );
}

#[test]
fn truncation_before_the_source_passes_after_it_the_source_is_checked() {
    let mut s = state();
    s.bans.push((ip("192.0.2.66"), PERMANENT));
    let f = syn("192.0.2.66").build();
    // IPv4 header cut: unparsable, passed.
    assert_eq!(verdict_of(&s, &f[..33]), (XDP_PASS, counter::UNPARSABLE));
    // TCP header cut: malformed, but the ban applies.
    assert_eq!(verdict_of(&s, &f[..40]), (XDP_DROP, counter::BANNED));
    // Passed malformed packets count as unparsable.
    assert_eq!(
        verdict_of(&state(), &f[..40]),
        (XDP_PASS, counter::UNPARSABLE)
    );
    // Options announced beyond the frame: unparsable.
    let mut bad_ihl = f.clone();
    bad_ihl[14] = 0x4f;
    bad_ihl.truncate(60);
    assert_eq!(parse(&bad_ihl), Parsed::Unparsable);
}

#[test]
fn fragments_and_long_extension_chains_are_counted_and_checked() {
    let mut s = state();
    s.bans.push((ip("192.0.2.66"), PERMANENT));
    s.bans.push((ip("2001:db8::66"), PERMANENT));
    let mut frag = syn("192.0.2.66");
    frag.frag_offset = 10;
    let v = s.verdict(&frag.build());
    assert!(v.fragment);
    assert_eq!((v.action, v.counter), (XDP_DROP, counter::BANNED));
    let mut long = syn("2001:db8::66");
    long.ext_headers = vec![ExtHeader::DestOpts; MAX_EXT_HEADERS + 1];
    let v = s.verdict(&long.build());
    assert!(v.too_many_ext_headers);
    assert_eq!((v.action, v.counter), (XDP_DROP, counter::BANNED));
    let mut walked = syn("2001:db8::10");
    walked.ext_headers = vec![
        ExtHeader::HopByHop,
        ExtHeader::Routing,
        ExtHeader::Fragment(0),
    ];
    assert!(
        matches!(parse(&walked.build()), Parsed::V6(_, m) if m.syn && m.l4_off == 14 + 40 + 24)
    );
}

#[test]
fn rate_keys_mask_ipv6_sources_and_the_table_refuses_evictions() {
    let a = RateKey::of(ip("2001:db8::1"), 64);
    assert_eq!(a, RateKey::of(ip("2001:db8::ffff"), 64));
    assert_ne!(a, RateKey::of(ip("2001:db8:0:1::1"), 64));
    assert_eq!(
        RateKey::of(ip("2001:db8::1"), 128),
        RateKey::of(ip("2001:db8::1"), 0)
    );
    let mut t = RateTable::default();
    assert_eq!(t.charge(a), Ok(true));
    assert_eq!(t.charge(a), Ok(false));
    // Fill a's set with another key, then a third must be refused.
    let others: Vec<RateKey> = (1u32..)
        .map(|i| {
            RateKey::of(
                IpAddr::V6(std::net::Ipv6Addr::from(u128::from(i) << 64)),
                64,
            )
        })
        .filter(|k| t.set_members(*k).contains(&a))
        .take(2)
        .collect();
    let (b, c) = (others[0], others[1]);
    assert_eq!(t.charge(b), Ok(true));
    assert!(t.would_evict(c));
    assert!(t.charge(c).is_err());
}

#[test]
fn passed_tcp_to_a_sampled_port_is_sampled_with_its_payload_head() {
    let mut s = state();
    s.sample_ports[0] = 80;
    s.sample_bytes = 4;
    let f = syn("192.0.2.10")
        .with_l4(L4::Tcp {
            sport: 40000,
            dport: 80,
            flags: 0x18,
        })
        .with_payload(b"GET / HTTP/1.1\r\n")
        .build();
    let v = s.verdict(&f);
    assert!(v.sampled);
    let sample = Sample::expected(&f, s.sample_bytes).unwrap();
    assert_eq!(
        (sample.sport, sample.dport, sample.payload_len),
        (40000, 80, 16)
    );
    assert_eq!(sample.data, b"GET ");
    // Dropped segments are not sampled.
    s.bans.push((ip("192.0.2.10"), PERMANENT));
    assert!(!s.verdict(&f).sampled);
}
