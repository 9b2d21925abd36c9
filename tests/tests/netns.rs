//! The XDP program on real traffic: a veth pair in network namespaces, the
//! program attached in driver mode, pings from a client and an attacker.

use waf_common::{BanEntry, ban_reason, counter};
use waf_tests::{Lab, PinDir};
use waf_user::dataplane::{self, AttachMode, Dataplane, LoadOptions};

fn ban(dp: &mut Dataplane, net: &str) {
    dp.maps
        .ban(
            net.parse().unwrap(),
            BanEntry {
                expires_ns: 0,
                reason: ban_reason::MANUAL,
                _reserved: 0,
            },
        )
        .expect("ban");
}

fn banned_packets(dp: &Dataplane) -> u64 {
    dp.maps.counters().unwrap()[counter::BANNED as usize].packets
}

#[test]
fn a_banned_host_is_dropped_and_another_passes() {
    let lab = Lab::new();
    assert!(
        lab.client.ping(Lab::SRV4, None, 1),
        "lab works before attaching"
    );
    assert!(lab.attacker.ping(Lab::SRV4, None, 1));

    let mut dp = Dataplane::load(&LoadOptions::default()).expect("load");
    let iface = lab.srv_if.clone();
    let att = lab
        .srv
        .run(|| dp.attach(&iface, AttachMode::Native))
        .expect("attach in driver mode");
    assert!(!att.adopted);

    ban(&mut dp, &format!("{}/32", Lab::ATTACKER4));
    ban(&mut dp, &format!("{}/128", Lab::ATTACKER6));
    assert!(
        !lab.attacker.ping(Lab::SRV4, None, 2),
        "banned host's ping must fail"
    );
    assert!(
        !lab.attacker.ping(Lab::SRV6, None, 2),
        "banned host's ping6 must fail"
    );
    assert!(
        lab.client.ping(Lab::SRV4, None, 2),
        "the other host still gets through"
    );
    assert!(lab.client.ping(Lab::SRV6, None, 2), "and over IPv6");
    let dropped = banned_packets(&dp);
    assert!(dropped >= 4, "the XDP ban counter rose: {dropped}");

    // Lifting the ban readmits the host.
    assert!(
        dp.maps
            .unban(format!("{}/32", Lab::ATTACKER4).parse().unwrap())
            .unwrap()
    );
    assert!(
        lab.attacker.ping(Lab::SRV4, None, 2),
        "unbanned host passes again"
    );

    // Ban again, then detach (dropping an unpinned data plane detaches it).
    ban(&mut dp, &format!("{}/32", Lab::ATTACKER4));
    assert!(!lab.attacker.ping(Lab::SRV4, None, 1));
    drop(dp);
    assert!(
        lab.attacker.ping(Lab::SRV4, None, 2),
        "detached: passes again"
    );
}

/// Pinned enforcement outlives the process's handles, a new load adopts the
/// maps and the link without a gap, and detach removes it all.
#[test]
fn pinned_state_survives_and_is_adopted() {
    let lab = Lab::new();
    let pins = PinDir::new();
    let opts = LoadOptions {
        pin_dir: Some(pins.path.clone()),
        ..Default::default()
    };
    assert!(lab.attacker.ping(Lab::SRV4, None, 1));

    let mut dp = Dataplane::load(&opts).expect("load with pins");
    let iface = lab.srv_if.clone();
    lab.srv
        .run(|| dp.attach(&iface, AttachMode::Skb))
        .expect("attach");
    ban(&mut dp, &format!("{}/32", Lab::ATTACKER4));
    assert!(pins.path.join(format!("link_{iface}")).exists());
    assert!(pins.path.join(waf_common::map_names::BANS_V4).exists());
    drop(dp); // the "daemon" is gone; the pins keep enforcing

    assert!(
        !lab.attacker.ping(Lab::SRV4, None, 2),
        "ban enforced with no process"
    );
    assert!(lab.client.ping(Lab::SRV4, None, 1));

    let mut dp = Dataplane::load(&opts).expect("load again");
    let bans = dp.maps.all_bans().unwrap();
    assert!(
        bans.iter()
            .any(|(n, _)| n.to_string() == format!("{}/32", Lab::ATTACKER4)),
        "adopted maps still hold the ban: {bans:?}"
    );
    let att = lab
        .srv
        .run(|| dp.attach(&iface, AttachMode::Skb))
        .expect("adopt the link");
    assert!(att.adopted, "the pinned link is taken over, not re-created");
    assert!(
        !lab.attacker.ping(Lab::SRV4, None, 1),
        "still enforced after adoption"
    );
    assert!(banned_packets(&dp) >= 3, "the counters survived too");
    drop(dp);

    assert_eq!(
        dataplane::pinned_interfaces(&pins.path),
        vec![iface.clone()]
    );
    assert!(dataplane::detach(&pins.path, &iface).unwrap());
    assert!(!pins.path.exists(), "detach removed maps and directory");
    assert!(
        lab.attacker.ping(Lab::SRV4, None, 2),
        "detached: passes again"
    );
}
