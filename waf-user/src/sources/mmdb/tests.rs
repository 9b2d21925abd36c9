//! Tests of the MaxMind DB reader on databases written here by a minimal
//! encoder of the format (<https://maxmind.github.io/MaxMind-DB/>): the
//! `maxminddb` crate ships no test data in its package.

use super::*;
use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};

/// A value of the data section.
#[derive(Clone, Debug)]
enum V {
    S(String),
    U16(u16),
    U32(u32),
    U64(u64),
    B(bool),
    M(Vec<(String, V)>),
    A(Vec<V>),
}

fn m(pairs: &[(&str, V)]) -> V {
    V::M(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    )
}

fn s(x: &str) -> V {
    V::S(x.into())
}

/// A control byte (type, size), then the extended type, then the size.
fn ctrl(kind: u8, size: usize, out: &mut Vec<u8>) {
    let (head, ext) = if kind <= 7 {
        (kind << 5, None)
    } else {
        (0, Some(kind - 7))
    };
    let (small, extra) = match size {
        0..29 => (size as u8, vec![]),
        29..285 => (29, vec![(size - 29) as u8]),
        285..65821 => (30, ((size - 285) as u16).to_be_bytes().to_vec()),
        _ => (31, ((size - 65821) as u32).to_be_bytes()[1..].to_vec()),
    };
    out.push(head | small);
    out.extend(ext);
    out.extend(extra);
}

fn uint(kind: u8, n: u64, out: &mut Vec<u8>) {
    let b = n.to_be_bytes();
    let zeros = b.iter().take_while(|&&x| x == 0).count();
    ctrl(kind, 8 - zeros, out);
    out.extend(&b[zeros..]);
}

fn encode(v: &V, out: &mut Vec<u8>) {
    match v {
        V::S(x) => {
            ctrl(2, x.len(), out);
            out.extend(x.as_bytes());
        }
        V::U16(n) => uint(5, u64::from(*n), out),
        V::U32(n) => uint(6, u64::from(*n), out),
        V::U64(n) => uint(9, *n, out),
        V::B(b) => ctrl(14, usize::from(*b), out),
        V::M(pairs) => {
            ctrl(7, pairs.len(), out);
            for (k, v) in pairs {
                encode(&V::S(k.clone()), out);
                encode(v, out);
            }
        }
        V::A(items) => {
            ctrl(11, items.len(), out);
            items.iter().for_each(|v| encode(v, out));
        }
    }
}

/// A search-tree record.
#[derive(Clone, Copy, Debug)]
enum Rec {
    Empty,
    Node(usize),
    Data(usize),
}

/// A search tree (node 0 the root) and its data section.
struct Tree {
    nodes: Vec<[Rec; 2]>,
    data: Vec<u8>,
}

impl Tree {
    /// The (node, side) of the record at depth `len` >= 1 on the path of
    /// `key` (bits from the top), creating nodes on the way.
    fn path(&mut self, key: u128, len: u32) -> (usize, usize) {
        let bit = |i: u32| (key >> (127 - i)) as usize & 1;
        let mut node = 0;
        for i in 0..len - 1 {
            node = match self.nodes[node][bit(i)] {
                Rec::Node(n) => n,
                _ => {
                    let n = self.nodes.len();
                    self.nodes.push([Rec::Empty; 2]);
                    self.nodes[node][bit(i)] = Rec::Node(n);
                    n
                }
            };
        }
        (node, bit(len - 1))
    }

    fn set(&mut self, key: u128, len: u32, rec: Rec) {
        let (n, side) = self.path(key, len);
        self.nodes[n][side] = rec;
    }

    /// The file: tree, separator, data, metadata.
    fn write(&self, db_type: &str, ip_version: u16, record_size: u16) -> Vec<u8> {
        let count = self.nodes.len();
        let value = |r: Rec| match r {
            Rec::Empty => count,
            Rec::Node(n) => n,
            Rec::Data(o) => count + 16 + o,
        } as u32;
        let mut out = Vec::new();
        for &[l, r] in &self.nodes {
            let (l, r) = (value(l), value(r));
            match record_size {
                24 => {
                    out.extend(&l.to_be_bytes()[1..]);
                    out.extend(&r.to_be_bytes()[1..]);
                }
                28 => {
                    out.extend(&l.to_be_bytes()[1..]);
                    out.push(((l >> 20) as u8 & 0xf0) | ((r >> 24) as u8 & 0x0f));
                    out.extend(&r.to_be_bytes()[1..]);
                }
                _ => {
                    out.extend(l.to_be_bytes());
                    out.extend(r.to_be_bytes());
                }
            }
        }
        out.extend([0u8; 16]);
        out.extend(&self.data);
        out.extend(b"\xab\xcd\xefMaxMind.com");
        let meta = m(&[
            ("binary_format_major_version", V::U16(2)),
            ("binary_format_minor_version", V::U16(0)),
            ("build_epoch", V::U64(1_700_000_000)),
            ("database_type", s(db_type)),
            ("description", m(&[("en", s("test database"))])),
            ("ip_version", V::U16(ip_version)),
            ("languages", V::A(vec![s("en")])),
            ("node_count", V::U32(count as u32)),
            ("record_size", V::U16(record_size)),
        ]);
        encode(&meta, &mut out);
        out
    }
}

/// A database of `entries` (records shared where equal); with `aliases`,
/// `::ffff:0:0/96` and `2002::/16` point at the IPv4 subtree as in
/// MaxMind's IPv6 databases.
fn build(
    db_type: &str,
    ip_version: u16,
    record_size: u16,
    entries: &[(&str, V)],
    aliases: bool,
) -> Vec<u8> {
    let mut tree = Tree {
        nodes: vec![[Rec::Empty; 2]],
        data: Vec::new(),
    };
    let mut offsets: HashMap<Vec<u8>, usize> = HashMap::new();
    for (net, v) in entries {
        let (key, len) = match (net.parse::<IpNet>().unwrap(), ip_version) {
            (IpNet::V4(n), 4) => (u128::from(u32::from(n.addr())) << 96, n.prefix_len()),
            (IpNet::V4(n), _) => (u128::from(u32::from(n.addr())), 96 + n.prefix_len()),
            (IpNet::V6(n), _) => (u128::from(n.addr()), n.prefix_len()),
        };
        let mut bytes = Vec::new();
        encode(v, &mut bytes);
        let off = *offsets.entry(bytes.clone()).or_insert_with(|| {
            tree.data.extend(&bytes);
            tree.data.len() - bytes.len()
        });
        tree.set(key, u32::from(len), Rec::Data(off));
    }
    if aliases {
        let (n, side) = tree.path(0, 96);
        let Rec::Node(v4) = tree.nodes[n][side] else {
            panic!("no IPv4 subtree")
        };
        tree.set(0xffff << 32, 96, Rec::Node(v4));
        tree.set(0x2002 << 112, 16, Rec::Node(v4));
    }
    tree.write(db_type, ip_version, record_size)
}

fn country(code: &str) -> V {
    m(&[
        (
            "continent",
            m(&[("code", s("EU")), ("names", m(&[("en", s("Europe"))]))]),
        ),
        (
            "country",
            m(&[
                ("geoname_id", V::U32(2_077_456)),
                ("is_in_european_union", V::B(false)),
                ("iso_code", s(code)),
                ("names", m(&[("de", s("Irgendwo")), ("en", s("Somewhere"))])),
            ]),
        ),
        ("traits", m(&[])),
    ])
}

fn countries_db(record_size: u16, aliases: bool) -> Vec<u8> {
    let entries = [
        ("1.0.0.0/24", country("AU")),
        ("1.0.1.0/24", country("CN")),
        (
            "2.0.0.0/8",
            m(&[("registered_country", m(&[("iso_code", s("FR"))]))]),
        ),
        ("3.0.0.0/8", m(&[("continent", m(&[("code", s("NA"))]))])),
        ("223.255.255.0/24", country("AU")),
        ("255.255.255.255/32", country("ZZ")),
        ("2001:db8::/32", country("DE")),
        ("2c0f:ffff::/32", country("ZA")),
        ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ff00/120", country("US")),
    ];
    build("GeoLite2-Country", 6, record_size, &entries, aliases)
}

fn asn(n: Option<u32>, org: Option<&str>) -> V {
    let mut pairs = Vec::new();
    if let Some(n) = n {
        pairs.push(("autonomous_system_number", V::U32(n)));
    }
    if let Some(o) = org {
        pairs.push(("autonomous_system_organization", s(o)));
    }
    m(&pairs)
}

fn asn_db() -> Vec<u8> {
    let entries = [
        ("1.0.0.0/24", asn(Some(13335), Some("CLOUDFLARENET"))),
        ("8.8.8.0/24", asn(Some(15169), Some("GOOGLE"))),
        ("9.9.9.0/24", asn(None, Some("no number"))),
        ("2606:4700::/32", asn(Some(13335), Some("CLOUDFLARENET"))),
        ("2001:4860::/32", asn(Some(15169), None)),
    ];
    build("DBIP-ASN-Lite (compat=GeoLite2-ASN)", 6, 24, &entries, true)
}

fn path() -> &'static Path {
    Path::new("/var/lib/waf/GeoLite2-Country.mmdb")
}

fn ip(x: &str) -> IpAddr {
    x.parse().unwrap()
}

fn shown<T: std::fmt::Debug>(v: &[(IpNet, T)]) -> Vec<String> {
    v.iter().map(|(n, t)| format!("{n} {t:?}")).collect()
}

#[test]
fn kinds_from_the_database_type() {
    for t in [
        "GeoLite2-Country",
        "GeoIP2-City",
        "DBIP-Country-Lite",
        "dbip-city-lite",
    ] {
        assert_eq!(DbKind::of(t), Some(DbKind::Country), "{t}");
    }
    for t in [
        "GeoLite2-ASN",
        "DBIP-ASN-Lite",
        "DBIP-ASN-Lite (compat=GeoLite2-ASN)",
        "GeoIP2-ISP",
    ] {
        assert_eq!(DbKind::of(t), Some(DbKind::Asn), "{t}");
    }
    for t in [
        "GeoIP2-Anonymous-IP",
        "",
        "Countryish",
        "Country-ASN",
        "GeoIP2-Domain",
    ] {
        assert_eq!(DbKind::of(t), None, "{t}");
    }
    let db = build(
        "GeoIP2-Anonymous-IP",
        6,
        24,
        &[("1.0.0.0/24", country("AU"))],
        false,
    );
    let e = GeoDb::from_bytes(path(), db).unwrap_err();
    assert_eq!(e.location, "metadata");
    assert!(
        e.to_string().contains("GeoLite2-Country.mmdb")
            && e.message.contains("\"GeoIP2-Anonymous-IP\"")
    );
}

#[test]
fn countries_come_out_once_in_address_order() {
    for record_size in [24, 28, 32] {
        let db = GeoDb::from_bytes(path(), countries_db(record_size, true)).unwrap();
        assert_eq!(
            (db.kind(), db.database_type(), db.build_epoch()),
            (DbKind::Country, "GeoLite2-Country", 1_700_000_000)
        );
        let listing = db.country_listing().unwrap();
        assert_eq!(
            shown(
                &listing
                    .networks
                    .iter()
                    .map(|&(n, c)| (n, String::from_utf8_lossy(&c).into_owned()))
                    .collect::<Vec<_>>()
            ),
            [
                "1.0.0.0/24 \"AU\"",
                "1.0.1.0/24 \"CN\"",
                "2.0.0.0/8 \"FR\"",
                "223.255.255.0/24 \"AU\"",
                "255.255.255.255/32 \"ZZ\"",
                "2001:db8::/32 \"DE\"",
                "2c0f:ffff::/32 \"ZA\"",
                "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ff00/120 \"US\"",
            ],
            "record size {record_size}"
        );
        assert_eq!(listing.skipped, 1);
        assert_eq!(db.countries().unwrap(), listing.networks);
        // Point lookups, through the aliases too.
        assert_eq!(db.country(ip("1.0.0.1")), Some(*b"AU"));
        assert_eq!(db.country(ip("::ffff:1.0.1.9")), Some(*b"CN"));
        assert_eq!(db.country(ip("2002:0100:0101::1")), Some(*b"CN"));
        assert_eq!(db.country(ip("2.3.4.5")), Some(*b"FR"));
        assert_eq!(db.country(ip("3.3.3.3")), None);
        assert_eq!(db.country(ip("9.9.9.9")), None);
        assert_eq!(db.country(ip("2001:db8::1")), Some(*b"DE"));
        assert_eq!(
            db.country(ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")),
            Some(*b"US")
        );
        assert_eq!(db.asn(ip("1.0.0.1")), None);
        let e = db.asns().unwrap_err();
        assert_eq!(
            e.message,
            "GeoLite2-Country is a country database, not an ASN database"
        );
    }
    // Without aliases, and IPv4-only.
    let db = GeoDb::from_bytes(path(), countries_db(24, false)).unwrap();
    assert_eq!(db.countries().unwrap().len(), 8);
    let v4 = build(
        "GeoLite2-Country",
        4,
        24,
        &[("0.0.0.0/1", country("AU")), ("255.0.0.0/8", country("NZ"))],
        false,
    );
    let db = GeoDb::from_bytes(path(), v4).unwrap();
    assert_eq!(
        shown(&db.countries().unwrap()),
        ["0.0.0.0/1 [65, 85]", "255.0.0.0/8 [78, 90]"]
    );
    assert_eq!(db.country(ip("::ffff:255.1.1.1")), Some(*b"NZ"));
    assert_eq!(db.country(ip("2001:db8::1")), None);
    // All of IPv4 one record: `::/96`, reported as IPv4.
    let whole = [("::/96", country("NZ")), ("2001:db8::/32", country("DE"))];
    let db = GeoDb::from_bytes(path(), build("GeoLite2-Country", 6, 24, &whole, false)).unwrap();
    assert_eq!(
        shown(&db.countries().unwrap()),
        ["0.0.0.0/0 [78, 90]", "2001:db8::/32 [68, 69]"]
    );
    assert_eq!(db.country(ip("192.0.2.1")), Some(*b"NZ"));
}

#[test]
fn asns_and_organizations() {
    let db = GeoDb::from_bytes(path(), asn_db()).unwrap();
    assert_eq!(db.kind(), DbKind::Asn);
    let listing = db.asn_listing().unwrap();
    assert_eq!(
        shown(&listing.networks),
        [
            "1.0.0.0/24 13335",
            "8.8.8.0/24 15169",
            "2001:4860::/32 15169",
            "2606:4700::/32 13335"
        ]
    );
    assert_eq!(listing.skipped, 1);
    assert_eq!(db.asns().unwrap(), listing.networks);
    assert_eq!(db.asn(ip("8.8.8.8")), Some((15169, "GOOGLE".into())));
    assert_eq!(db.asn(ip("2001:4860::8888")), Some((15169, String::new())));
    assert_eq!(db.asn(ip("9.9.9.9")), None);
    assert_eq!(db.asn(ip("10.0.0.1")), None);
    assert_eq!(db.country(ip("8.8.8.8")), None);
    assert!(
        db.countries()
            .unwrap_err()
            .message
            .contains("is an ASN database, not a country database")
    );
}

#[test]
fn bad_country_codes_name_the_network() {
    for code in ["au", "AUS", "A1", "", "É1", "\u{1b}["] {
        let db = build(
            "GeoLite2-City",
            6,
            24,
            &[("1.0.0.0/24", country("AU")), ("5.0.0.0/8", country(code))],
            false,
        );
        let db = GeoDb::from_bytes(path(), db).unwrap();
        let e = db.countries().unwrap_err();
        assert_eq!(e.location, "network 5.0.0.0/8", "{code}");
        assert!(
            e.message.contains("not two uppercase letters") && !e.message.contains('\u{1b}'),
            "{e}"
        );
        assert_eq!(db.country(ip("5.1.1.1")), None);
        assert_eq!(db.country(ip("1.0.0.1")), Some(*b"AU"));
    }
}

#[test]
fn files_that_are_not_databases() {
    let e = GeoDb::from_bytes(path(), b"not a database".to_vec()).unwrap_err();
    assert_eq!(e.location, "file");
    assert!(e.message.contains("metadata"), "{e}");
    let e = GeoDb::open(Path::new("/nonexistent/waf/GeoLite2-ASN.mmdb")).unwrap_err();
    assert_eq!(
        (e.location.as_str(), e.file.as_path()),
        ("file", Path::new("/nonexistent/waf/GeoLite2-ASN.mmdb"))
    );
    let file = std::env::temp_dir().join(format!("waf-mmdb-test-{}.mmdb", std::process::id()));
    std::fs::write(&file, asn_db()).unwrap();
    let db = GeoDb::open(&file);
    std::fs::remove_file(&file).unwrap();
    assert_eq!(db.unwrap().path(), file);
}

/// Trees whose nodes are shared: a chain of 40 nodes each pointing twice
/// at the next describes 2^41 networks, a loop infinitely many; both are
/// refused at open. A small shared tree is read.
#[test]
fn shared_and_looping_trees() {
    let chain = |levels: usize| {
        let mut nodes: Vec<[Rec; 2]> = (1..=levels).map(|n| [Rec::Node(n), Rec::Node(n)]).collect();
        nodes.push([Rec::Data(0), Rec::Data(0)]);
        let mut data = Vec::new();
        encode(&country("AU"), &mut data);
        Tree { nodes, data }.write("GeoLite2-Country", 4, 24)
    };
    let e = GeoDb::from_bytes(path(), chain(40)).unwrap_err();
    assert_eq!(e.location, "search tree");
    assert!(e.message.contains("unfolds into more than"), "{e}");
    let db = GeoDb::from_bytes(path(), chain(10)).unwrap();
    let all = db.countries().unwrap();
    assert_eq!(all.len(), 2048);
    assert!(all.iter().all(|(n, c)| n.prefix_len() == 11 && c == b"AU"));

    let looping = Tree {
        nodes: vec![[Rec::Node(1), Rec::Empty], [Rec::Empty, Rec::Node(0)]],
        data: vec![0],
    };
    let e = GeoDb::from_bytes(path(), looping.write("GeoLite2-ASN", 6, 32)).unwrap_err();
    assert!(e.message.contains("cycle"), "{e}");
}

/// Everything a policy and a lookup do with a database, errors ignored.
fn exercise(bytes: Vec<u8>) {
    if let Ok(db) = GeoDb::from_bytes(path(), bytes) {
        let _ = db.country_listing();
        let _ = db.asn_listing();
        for a in [
            "1.0.0.1",
            "8.8.8.8",
            "2001:db8::1",
            "2002:0100:0001::1",
            "::ffff:1.0.1.1",
        ] {
            let _ = (db.country(ip(a)), db.asn(ip(a)));
        }
    }
}

/// A database cut short anywhere, or with any byte changed, opens and
/// reads as a database or gives an error naming the file: never a panic.
#[test]
fn truncated_or_corrupted_files_never_panic() {
    for (name, good) in [("country", countries_db(28, true)), ("asn", asn_db())] {
        for cut in 0..good.len() {
            let r = catch_unwind(|| exercise(good[..cut].to_vec()));
            assert!(r.is_ok(), "{name} cut at {cut} panicked");
            if let Err(e) = GeoDb::from_bytes(path(), good[..cut].to_vec()) {
                assert_eq!(e.file, path());
            }
        }
        for at in 0..good.len() {
            for flip in [0xff, 0x80, 0x01, 0x10] {
                let mut bad = good.clone();
                bad[at] ^= flip;
                let r = catch_unwind(AssertUnwindSafe(|| exercise(bad)));
                assert!(r.is_ok(), "{name} byte {at} ^ {flip:#x} panicked");
            }
        }
    }
}
