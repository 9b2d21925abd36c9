//! The config parser's tests: defaults, errors that name the key, moved
//! keys, list files.

use std::{path::PathBuf, time::Duration};

use super::*;

fn parse(s: &str) -> Result<Config, ConfigError> {
    Config::parse(s, Path::new("test.toml"))
}

#[test]
fn the_shipped_example_config_is_valid() {
    let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/dist/waf.toml"));
    let cfg = Config::load(path).unwrap();
    assert_eq!(cfg.interface.0, ["eth0"]);
    assert_eq!(cfg.allow_items().unwrap().len(), 2);
}

#[test]
fn the_shipped_fleet_example_is_valid_once_uncommented() {
    let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/dist/waf.toml"));
    let text = std::fs::read_to_string(path).unwrap();
    let at = text.find("#[fleet]").expect("a [fleet] example");
    let fleet: String = text[at..]
        .lines()
        .filter(|l| l.starts_with('#') && !l.starts_with("# ") && l.len() > 1)
        .map(|l| format!("{}\n", &l[1..]))
        .collect();
    let fleet = fleet.replace("token = \"...\"\n", "");
    let cfg = parse(&fleet).unwrap_or_else(|e| panic!("{e}\n{fleet}"));
    let f = cfg.fleet.expect("[fleet] read");
    assert_eq!(f.url.0.len(), 2);
    assert_eq!(f.node, "web-1");
    assert!(parse("").unwrap().fleet.is_none(), "absent: fleet off");
    let e = parse("[fleet]\nurl = \"nats://192.0.2.1\"\nnode = \"a b\"\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("fleet.node"), "{e}");
}

#[test]
fn defaults_are_sane_and_valid() {
    let cfg = parse("").unwrap();
    assert_eq!(cfg.api.listen.to_string(), "127.0.0.1:9876");
    assert_eq!(cfg.bpf_dir, PathBuf::from("/sys/fs/bpf/waf"));
    assert_eq!(cfg.state_dir, PathBuf::from("/var/lib/waf"));
    assert!(cfg.interface.0.is_empty());
    assert_eq!(cfg.ban_policy.strikes, 5);
}

#[test]
fn interface_is_one_or_a_list() {
    assert_eq!(
        parse("interface = \"eth0\"").unwrap().interface.0,
        vec!["eth0"]
    );
    assert_eq!(
        parse("interface = [\"eth0\", \"eth1\"]")
            .unwrap()
            .interface
            .0,
        vec!["eth0", "eth1"]
    );
}

#[test]
fn errors_name_key_value_and_what_is_allowed() {
    let e = parse("[rate_limit]\npps = 0\n").unwrap_err().to_string();
    assert!(
        e.contains("rate_limit.pps") && e.contains("positive"),
        "{e}"
    );
    let e = parse("[ban_policy]\nfactor = 0.5\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("ban_policy.factor = 0.5") && e.contains("1 to 100"),
        "{e}"
    );
    let e = parse("[allowlist]\ncidrs = [\"10.0.0.0/33\"]\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("allowlist.cidrs") && e.contains("10.0.0.0/33"),
        "{e}"
    );
    let e = parse("xdp_mode = \"turbo\"").unwrap_err().to_string();
    assert!(e.contains("turbo") && e.contains("auto"), "{e}");
    let e = parse("[api]\nlisten = \"nowhere\"")
        .unwrap_err()
        .to_string();
    assert!(e.contains("listen"), "{e}");
    let e = parse("bogus = 1").unwrap_err().to_string();
    assert!(e.contains("bogus"), "{e}");
    let e = parse("[ban_policy]\nwindow = \"soon\"")
        .unwrap_err()
        .to_string();
    assert!(e.contains("soon") && e.contains("10m"), "{e}");
    let e = parse("bpf_dir = \"relative\"").unwrap_err().to_string();
    assert!(e.contains("bpf_dir") && e.contains("absolute"), "{e}");
    let e = parse("interface = \"a-very-long-interface-name\"")
        .unwrap_err()
        .to_string();
    assert!(e.contains("15 characters"), "{e}");
}

#[test]
fn burst_defaults_to_one_second_of_rate() {
    let s = parse("[rate_limit]\npps = 500\nsyn_pps = 20\n")
        .unwrap()
        .settings()
        .unwrap();
    assert_eq!(s.rate.pps, Some(500));
    assert_eq!(s.rate.burst, 500);
    assert_eq!(s.rate.syn_burst, 20);
    assert_eq!(s.rate.bps, None);
}

#[test]
fn list_files_with_comments() {
    let dir = std::env::temp_dir().join(format!("waf-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("block.txt");
    std::fs::write(
        &f,
        "# spamhaus style\n203.0.113.0/24 ; SBL123\n\n198.51.100.7  # one host\n2001:db8:bad::/48\n",
    )
    .unwrap();
    let cfg = Config {
        blocklist: super::ListConfig {
            cidrs: vec!["192.0.2.9".into()],
            files: vec![f.clone()],
        },
        ..Default::default()
    };
    let items = cfg.block_items().unwrap();
    let nets: Vec<String> = items.iter().map(|i| i.net.to_string()).collect();
    assert_eq!(
        nets,
        [
            "192.0.2.9/32",
            "203.0.113.0/24",
            "198.51.100.7/32",
            "2001:db8:bad::/48"
        ]
    );
    assert_eq!(items[2].origin, format!("{}:4", f.display()));
    std::fs::write(&f, "10.0.0.0/8\nnot-an-address\n").unwrap();
    let e = cfg.block_items().unwrap_err().to_string();
    assert!(
        e.contains("block.txt:2") && e.contains("not-an-address"),
        "{e}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn durations_parse_once_at_load() {
    let cfg = parse("[ban_policy]\nwindow = 120\nduration = \"2h\"\n").unwrap();
    assert_eq!(cfg.ban_policy.window.0, Duration::from_secs(120));
    assert_eq!(cfg.ban_policy.duration.0, Duration::from_secs(7200));
    let e = parse("[ban_policy]\nduration = \"99999999999d\"")
        .unwrap_err()
        .to_string();
    assert!(e.contains("10 years"), "{e}");
}

#[test]
fn moved_keys_are_refused_with_their_new_home() {
    let e = parse("[rate_limit]\nipv6_prefix = 48\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("rate_limit.ipv6_prefix") && e.contains("ban_policy.ipv6_prefix"),
        "{e}"
    );
    let cfg = parse("[ban_policy]\nipv6_prefix = 48\n").unwrap();
    assert_eq!(cfg.settings().unwrap().rate.v6_prefix, 48);
}

#[test]
fn capacity_sizes_the_tries_within_bounds() {
    let c = parse("").unwrap().capacity;
    assert_eq!(c, crate::dataplane::Capacity::default());
    let c = parse(
        "[capacity]\nblocklist = 1000000\nallowlist = 10\nbans = 2000000\n\
         blocklist_v6 = 300000\nrate_sources = 4096\n",
    )
    .unwrap()
    .capacity;
    assert_eq!(
        (
            c.blocklist,
            c.allowlist,
            c.bans,
            c.blocklist_v6,
            c.rate_sources
        ),
        (1_000_000, 10, 2_000_000, 300_000, 4096)
    );
    // One family's size leaves the other's at its default.
    assert_eq!(
        (c.allowlist_v6, c.prefix_bans_v6),
        (waf_common::V6_LIST_CAPACITY, waf_common::V6_LIST_CAPACITY)
    );
    for (text, key) in [
        ("[capacity]\nblocklist = 0\n", "capacity.blocklist = 0"),
        (
            "[capacity]\nprefix_bans = 16777217\n",
            "capacity.prefix_bans",
        ),
        ("[capacity]\nbans = 0\n", "capacity.bans = 0"),
        (
            "[capacity]\nrate_sources = 0\n",
            "capacity.rate_sources = 0",
        ),
        (
            "[capacity]\nallowlist_v6 = 16777217\n",
            "capacity.allowlist_v6",
        ),
    ] {
        let e = parse(text).unwrap_err().to_string();
        assert!(e.contains(key) && e.contains("16777216"), "{e}");
    }
    let e = parse("[capacity]\nbuckets = 5\n").unwrap_err().to_string();
    assert!(e.contains("buckets"), "an unknown key: {e}");
    let e = parse("[capacity]\nblocklist = -1\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("blocklist"), "{e}");
}
