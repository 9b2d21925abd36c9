//! Least privilege, measured: the daemon runs as an unprivileged user with
//! exactly CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON (CAP_NET_BIND_SERVICE for
//! a proxy below port 1024), fails at start with a clear error when any of
//! the three is missing, and holds no capability at all once it is
//! enforcing; the data plane works from a thread without any.

use std::process::Command;

use serde_json::json;
use waf_tests::{Lab, TestDaemon, api, require_root};
use waf_user::dataplane::{Dataplane, LoadOptions};

/// The unprivileged user the tests run the daemon as ("nobody").
const UID: &str = "65534";

fn status_line(pid: u32, key: &str) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(key))
        .unwrap_or_default()
        .to_string()
}

fn as_user(d: &mut TestDaemon, caps: &[&str]) {
    let list: Vec<String> = caps.iter().map(|c| format!("+{c}")).collect();
    let list = list.join(",");
    d.wrap = vec![
        "setpriv".into(),
        format!("--reuid={UID}"),
        format!("--regid={UID}"),
        "--clear-groups".into(),
        format!("--inh-caps=-all,{list}"),
        format!("--ambient-caps=-all,{list}"),
        format!("--bounding-set=-all,{list}"),
    ];
}

fn prepare(d: &TestDaemon) {
    let out = Command::new(waf_tests::waf_bin())
        .args(["prepare", "--user", &format!("{UID}:{UID}"), "--config"])
        .arg(&d.config)
        .output()
        .expect("waf prepare");
    assert!(
        out.status.success(),
        "waf prepare: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_daemon_runs_as_a_user_with_three_capabilities_and_keeps_none() {
    let lab = Lab::new();
    let mut d = TestDaemon::configure(&lab, "");
    // Pins made by a daemon running as root first: adopted after `prepare`.
    d.spawn(&lab);
    let (code, _) = api(
        &lab,
        "POST",
        "/v1/bans",
        Some(json!({"addr": Lab::ATTACKER4, "duration": "1h"})),
    );
    assert_eq!(code, 201);
    d.stop();
    prepare(&d);

    // The measurement: each capability is needed.
    for missing in ["bpf", "net_admin", "perfmon"] {
        let caps: Vec<&str> = ["bpf", "net_admin", "perfmon"]
            .into_iter()
            .filter(|c| *c != missing)
            .collect();
        as_user(&mut d, &caps);
        let err = d
            .try_spawn(&lab)
            .expect_err(&format!("started without CAP_{}", missing.to_uppercase()));
        assert!(
            err.contains("Operation not permitted")
                || err.contains("EPERM")
                || err.contains("permission"),
            "without {missing}, a clear error: {err}"
        );
    }

    as_user(&mut d, &["bpf", "net_admin", "perfmon"]);
    d.try_spawn(&lab)
        .expect("starts with the three capabilities");
    let pid = d.pid().expect("running");
    assert_eq!(
        status_line(pid, "Uid:").split_whitespace().nth(1),
        Some(UID)
    );
    for key in ["CapEff:", "CapPrm:", "CapAmb:", "CapInh:"] {
        assert_eq!(
            status_line(pid, key).split_whitespace().nth(1),
            Some("0000000000000000"),
            "{key} once enforcing"
        );
    }
    let nnp = status_line(pid, "NoNewPrivs:");
    assert!(nnp.ends_with('1'), "{nnp}");
    // It still enforces and manages bans: the root daemon's ban was kept.
    assert!(
        !lab.attacker.ping(Lab::SRV4, None, 2),
        "the adopted ban drops the attacker"
    );
    assert_eq!(
        api(
            &lab,
            "DELETE",
            &format!("/v1/bans/{}", Lab::ATTACKER4),
            None
        )
        .0,
        200
    );
    assert!(lab.attacker.ping(Lab::SRV4, None, 2), "unbanned");
    let (code, _) = api(
        &lab,
        "POST",
        "/v1/blocklist",
        Some(json!({"cidr": Lab::ATTACKER4})),
    );
    assert_eq!(code, 201);
    assert!(!lab.attacker.ping(Lab::SRV4, None, 2), "blocklisted");
    let (_, st) = api(&lab, "GET", "/v1/stats", None);
    assert!(
        st["counters"]["blocklisted"]["packets"]
            .as_u64()
            .unwrap_or(0)
            > 0,
        "{st}"
    );
}

#[test]
fn the_data_plane_works_from_a_thread_without_capabilities() {
    require_root();
    let mut dp = Dataplane::load(&LoadOptions::default()).expect("load");
    // The daemon loads the clock probe at start, with its capabilities.
    dp.calibrate_clock().expect("clock probe loaded");
    std::thread::scope(|s| {
        s.spawn(|| {
            for set in [
                caps::CapSet::Ambient,
                caps::CapSet::Inheritable,
                caps::CapSet::Effective,
                caps::CapSet::Permitted,
            ] {
                caps::clear(None, set).unwrap();
            }
            assert!(
                caps::read(None, caps::CapSet::Permitted)
                    .unwrap()
                    .is_empty()
            );
            let net: ipnet::IpNet = "198.51.100.9/32".parse().unwrap();
            let e = waf_common::BanEntry {
                expires_ns: 0,
                reason: 1,
                _reserved: 0,
            };
            dp.maps.ban(net, e).expect("exact ban (mmap)");
            let p: ipnet::IpNet = "203.0.113.0/24".parse().unwrap();
            dp.maps
                .ban(p, e)
                .expect("prefix ban (LPM trie, bpf syscall)");
            dp.maps
                .block
                .insert(
                    "192.0.2.0/24".parse().unwrap(),
                    waf_common::ListEntry::default(),
                )
                .expect("blocklist entry");
            assert!(dp.maps.unban(net).unwrap());
            assert!(dp.maps.unban(p).unwrap());
            dp.maps.counters().expect("counters");
            dp.calibrate_clock()
                .expect("the clock probe (BPF_PROG_TEST_RUN)");
        })
        .join()
        .unwrap();
    });
}
