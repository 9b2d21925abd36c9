//! Source policies on real traffic: the daemon in the namespace lab with a
//! country and an ASN database the test writes (MaxMind format), an AWS
//! range file and bogons, pings from the attacker's addresses dropped at
//! XDP and counted per tag, the client passing; allow-only countries; a
//! broken database on reload leaving the old policy in force.

use std::{path::Path, time::Duration};

use ipnet::IpNet;
use waf_tests::{
    Lab, TestDaemon,
    mmdb::{self, Record},
};

/// Attacker addresses, one per policy (all on the attacker's interface).
const IN_CN: &str = "192.0.2.66";
const IN_ASN: &str = "192.0.2.67";
const IN_AWS: &str = "192.0.2.68";
const BOGON: &str = "192.0.2.99";

fn net(s: &str) -> IpNet {
    s.parse().expect("network")
}

/// The lab's countries: the client (and the server) in DE, the attacker's
/// IPv6 address in CN, `attacker` (an IPv4 address) in `country`, the top
/// half of the /24 in FR.
fn countries(attacker: &str, country: &str) -> Vec<(IpNet, Record)> {
    vec![
        (net("192.0.2.0/26"), Record::Country("DE".into())),
        (
            net(&format!("{attacker}/32")),
            Record::Country(country.into()),
        ),
        (net("192.0.2.128/25"), Record::Country("FR".into())),
        (net("2001:db8::/124"), Record::Country("DE".into())),
        (net("2001:db8::66/128"), Record::Country("CN".into())),
    ]
}

/// Adds the extra attacker addresses to its interface.
fn add_attacker_addresses(lab: &Lab) {
    let out = lab.attacker.exec(&["ip", "-o", "-4", "addr", "show"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let iface = text
        .lines()
        .find(|l| l.contains(Lab::ATTACKER4))
        .and_then(|l| l.split_whitespace().nth(1))
        .expect("the attacker's interface")
        .to_string();
    for a in [IN_ASN, IN_AWS, BOGON] {
        lab.attacker
            .exec(&["ip", "addr", "add", &format!("{a}/24"), "dev", &iface]);
    }
}

fn pings(lab: &Lab, src: &str) -> bool {
    let dst = if src.contains(':') {
        Lab::SRV6
    } else {
        Lab::SRV4
    };
    lab.attacker.ping(dst, Some(src), 2)
}

fn write_config_files(dir: &Path) {
    mmdb::write(
        &dir.join("country.mmdb"),
        "GeoLite2-Country",
        &countries(IN_CN, "CN"),
    )
    .expect("country db");
    mmdb::write(
        &dir.join("asn.mmdb"),
        "GeoLite2-ASN",
        &[(
            net(&format!("{IN_ASN}/32")),
            Record::Asn(64500, "Example Hosting".into()),
        )],
    )
    .expect("asn db");
    std::fs::write(
        dir.join("ip-ranges.json"),
        format!(
            r#"{{"syncToken": "1", "createDate": "2026-12-01-00-00-00",
               "prefixes": [{{"ip_prefix": "{IN_AWS}/32", "region": "eu-west-1",
                 "service": "EC2", "network_border_group": "eu-west-1"}},
                 {{"ip_prefix": "198.51.100.0/24", "region": "us-east-1",
                 "service": "S3", "network_border_group": "us-east-1"}}],
               "ipv6_prefixes": []}}"#
        ),
    )
    .expect("aws file");
}

fn sources_config(dir: &Path, iface: &str, extra: &str) -> String {
    format!(
        r#"[sources]
country_db = "{d}/country.mmdb"
asn_db = "{d}/asn.mmdb"
block_asns = [64500]
cloud_ranges = [{{ file = "{d}/ip-ranges.json", provider = "aws" }}]
block_cloud = ["aws"]
block_bogons = ["{iface}"]
# The lab's addresses are documentation space, itself a bogon: all but the
# top quarter of the /24 (and the lab's IPv6 /64) are excepted.
bogon_exceptions = ["192.0.2.0/26", "192.0.2.64/27", "2001:db8::/64"]
{extra}
"#,
        d = dir.display()
    )
}

fn tag_packets(d: &TestDaemon, tag: &str) -> u64 {
    let (code, v) = d.api("GET", "/v1/stats", None);
    assert_eq!(code, 200, "{v}");
    v["sources"]["tags"][tag]["packets"].as_u64().unwrap_or(0)
}

fn lookup(d: &TestDaemon, addr: &str) -> serde_json::Value {
    let (code, v) = d.api("GET", &format!("/v1/lookup/{addr}"), None);
    assert_eq!(code, 200, "{v}");
    v
}

#[test]
fn countries_networks_cloud_ranges_and_bogons_are_dropped_at_xdp_and_counted() {
    let lab = Lab::new();
    add_attacker_addresses(&lab);
    let mut d = TestDaemon::configure(&lab, "");
    let dir = d.state_dir.clone();
    write_config_files(&dir);
    let cfg = std::fs::read_to_string(&d.config).unwrap();
    std::fs::write(
        &d.config,
        format!(
            "{cfg}\n{}",
            sources_config(&dir, &lab.srv_if, "block_countries = [\"cn\"]")
        ),
    )
    .unwrap();
    d.spawn(&lab);

    assert!(lab.client.ping(Lab::SRV4, None, 2), "DE client passes");
    assert!(lab.client.ping(Lab::SRV6, None, 2), "and over IPv6");
    for (src, tag) in [
        (IN_CN, "country:CN"),
        ("2001:db8::66", "country:CN"),
        (IN_ASN, "asn:64500"),
        (IN_AWS, "cloud:aws"),
        (BOGON, "bogon"),
    ] {
        assert!(!pings(&lab, src), "{src} ({tag}) must be dropped");
        assert!(
            tag_packets(&d, tag) >= 2,
            "{tag} counted: {}",
            d.api("GET", "/v1/stats", None).1["sources"]
        );
    }
    let (_, stats) = d.api("GET", "/v1/stats", None);
    assert!(
        stats["counters"]["source_policy"]["packets"]
            .as_u64()
            .unwrap()
            >= 10,
        "{stats}"
    );
    let out = d.cli(&["stats"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("source policies") && text.contains("asn:64500"),
        "{text}"
    );
    let (_, metrics) = d.api("GET", "/metrics", None);
    let text = metrics.as_str().map(str::to_string).unwrap_or_default();
    assert!(
        text.contains("waf_source_policy_packets_total{policy=\"asns\",tag=\"asn:64500\"}"),
        "{text}"
    );

    // What a person sees of each address.
    let v = lookup(&d, IN_CN);
    assert_eq!(v["verdict"], "drop", "{v}");
    assert_eq!(v["reason"], "source_policy", "{v}");
    assert_eq!(v["sources"]["country"], "CN", "{v}");
    assert_eq!(v["sources"]["policy"]["tag"], "country:CN", "{v}");
    let v = lookup(&d, IN_ASN);
    assert_eq!(v["sources"]["asn"], 64500, "{v}");
    assert_eq!(v["sources"]["as_org"], "Example Hosting", "{v}");
    let v = lookup(&d, "198.51.100.7");
    assert_eq!(v["sources"]["providers"][0], "aws", "{v}");
    assert_eq!(v["verdict"], "drop", "blocked provider: {v}");
    let v = lookup(&d, BOGON);
    assert_eq!(v["sources"]["bogon"], true, "{v}");
    assert_eq!(v["verdict"], "drop_on", "{v}");
    let v = lookup(&d, Lab::CLIENT4);
    assert_eq!(v["verdict"], "pass", "{v}");
    assert_eq!(v["sources"]["country"], "DE", "{v}");
    assert_eq!(v["sources"]["bogon"], false, "excepted: {v}");
    let out = d.cli(&["lookup", IN_AWS]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("cloud:aws") && text.contains("drop"),
        "{text}"
    );

    // The allowlist wins over every policy.
    let (code, body) = d.api(
        "POST",
        "/v1/allowlist",
        Some(serde_json::json!({"cidr": IN_CN, "comment": "a partner"})),
    );
    assert!(code == 201 || code == 200, "{code} {body}");
    assert!(pings(&lab, IN_CN), "allowlisted inside a blocked country");
    assert_eq!(lookup(&d, IN_CN)["verdict"], "pass");
    assert!(!pings(&lab, IN_ASN), "the others stay dropped");
}

#[test]
fn allow_only_countries_and_a_broken_database_on_reload() {
    let lab = Lab::new();
    let mut d = TestDaemon::configure(&lab, "");
    let dir = d.state_dir.clone();
    write_config_files(&dir);
    let base = std::fs::read_to_string(&d.config).unwrap();
    let with = |extra: &str| {
        format!(
            "{base}\n{}",
            sources_config(&dir, &lab.srv_if, extra).replace("block_bogons", "# block_bogons")
        )
    };
    // Refused while the allowlist is empty: it could lock everyone out.
    std::fs::write(&d.config, with("allow_countries = [\"DE\"]")).unwrap();
    let err = d
        .try_spawn(&lab)
        .expect_err("allow-only without an allowlist");
    assert!(err.contains("allowlist is empty"), "{err}");

    let cfg = with("allow_countries = [\"DE\"]").replace(
        "[sources]",
        "[allowlist]\ncidrs = [\"203.0.113.1\"]\n\n[sources]",
    );
    std::fs::write(&d.config, &cfg).unwrap();
    d.spawn(&lab);
    assert!(lab.client.ping(Lab::SRV4, None, 2), "DE passes");
    assert!(!lab.attacker.ping(Lab::SRV4, None, 2), "CN is not allowed");
    assert!(!lab.attacker.ping(Lab::SRV6, None, 2), "nor over IPv6");
    assert!(tag_packets(&d, "country:CN") >= 4);

    // A broken database: the reload is refused, the policy stays.
    let db = dir.join("country.mmdb");
    let good = std::fs::read(&db).unwrap();
    std::fs::write(&db, &good[..good.len() / 2]).unwrap();
    d.signal(libc::SIGHUP);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !d.log_text().contains("country.mmdb") && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = d.log_text();
    assert!(
        log.contains("reload") && log.contains("country.mmdb"),
        "the error names the file: {log}"
    );
    assert!(
        !lab.attacker.ping(Lab::SRV4, None, 2),
        "old policy in force"
    );
    assert!(lab.client.ping(Lab::SRV4, None, 2));

    // A fixed database where the attacker is in DE: picked up by the file
    // watcher, no signal needed.
    mmdb::write(&db, "GeoLite2-Country", &countries(IN_CN, "DE")).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while lookup(&d, Lab::ATTACKER4)["verdict"] != "pass" && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        lookup(&d, Lab::ATTACKER4)["sources"]["country"],
        "DE",
        "{}",
        d.log_text()
    );
    assert!(lab.attacker.ping(Lab::SRV4, None, 2), "now in DE: passes");
}
