//! A small MaxMind DB (`.mmdb`) writer, so the tests of country/ASN blocking
//! and the benchmarks build their own databases instead of shipping
//! GeoLite2 files (format: <https://maxmind.github.io/MaxMind-DB/>).
//!
//! What it writes:
//! - an IPv6 search tree (`ip_version` 6) with 28-bit records, or 32-bit ones
//!   when a record value (node count + 16 + data section length) does not fit
//!   in 28 bits;
//! - IPv4 networks at `::a.b.c.d/(96+n)`, like MaxMind's databases, always
//!   with a node at `::/96` (the IPv4 root, also when one record covers all
//!   of IPv4 or there are no IPv4 networks), and `::ffff:0:0/96` as an alias
//!   of `::/96` (its record points to that same node), so looking up
//!   `1.2.3.4`, `::1.2.3.4` or `::ffff:1.2.3.4` gives the same record. No
//!   other aliases (6to4 `2002::/16`, Teredo `2001::/32`) are made;
//! - a data section holding each distinct [`Record`] once (many networks
//!   share a country), with the map keys written once and referred to by
//!   pointers afterwards;
//! - metadata: `node_count`, `record_size`, `ip_version` 6, `database_type`,
//!   `languages` (`["en"]`), `binary_format_major_version` 2,
//!   `binary_format_minor_version` 0, `build_epoch` (now) and
//!   `description` (`{"en": "<database_type> test database written by
//!   waf-tests"}`).
//!
//! Overlaps: later entries win. The networks are inserted in order into the
//! tree of the 128-bit space (IPv4 networks at `::/96` as above, IPv6 networks
//! inside `::ffff:0:0/96` taken as the IPv4 networks they map), each one
//! replacing whatever it covers: an address gets the record of the last entry
//! containing it, after mapping `a.b.c.d` and `::ffff:a.b.c.d` to
//! `::a.b.c.d`. So larger IPv6 networks that contain `::ffff:0:0/96` (e.g.
//! `::/0`) do not apply inside it: the alias shows the IPv4 space there.
//! Host bits of a network are ignored (`10.0.0.1/8` is `10.0.0.0/8`).
//! Networks with the same record next to each other are not merged.
//!
//! How the `maxminddb` crate (0.32) reads such a file back:
//! - `lookup` of an IPv4 address gives its IPv4 network (`1.2.3.0/24`), of an
//!   IPv4-mapped address the IPv6 one (`::ffff:1.2.3.0/120`);
//! - `networks(WithinOptions::default())` yields each IPv4 network once, as
//!   an IPv4 network (`1.2.3.0/24`, not `::1.2.3.0/120`): the default options
//!   skip the alias. With `WithinOptions::default().include_aliased_networks()`
//!   each IPv4 network comes a second time, as `::ffff:1.2.3.0/120`;
//! - without overlaps it yields exactly the networks given, except for those
//!   the tree's fixed nodes (the root, `::/96` and the path to it) cut:
//!   `0.0.0.0/0` comes back as `0.0.0.0/1` and `128.0.0.0/1`; an IPv6
//!   network containing `::/96` (`::/0`, `::/64`...) as the pieces around
//!   the path to it, plus `0.0.0.0/1` and `128.0.0.0/1` for the IPv4 space,
//!   and nothing for `::ffff:0:0/96` (the alias, skipped); IPv6 networks
//!   inside `::/96` (e.g. `::1/128`) as the IPv4 networks they are
//!   (`0.0.0.1/32`).

use std::{
    collections::{HashMap, hash_map::Entry},
    fs,
    path::Path,
    sync::atomic::{AtomicU32, Ordering},
    time::{SystemTime, UNIX_EPOCH},
};

use anyhow::{Context, Result, bail, ensure};
use ipnet::IpNet;

/// What a network of a database maps to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Record {
    /// GeoLite2-Country style: `{"country": {"iso_code": "DE"}}` (the ISO
    /// 3166-1 alpha-2 code, written as given; no `names`).
    Country(String),
    /// GeoLite2-ASN style: `{"autonomous_system_number": 64500,
    /// "autonomous_system_organization": "..."}`.
    Asn(u32, String),
}

/// Writes a database of `database_type` (e.g. "GeoLite2-Country",
/// "GeoLite2-ASN") mapping `networks` to their records to `path`, as laid out
/// in the module documentation (IPv6 tree, IPv4 under `::/96` and aliased at
/// `::ffff:0:0/96`, 28- or 32-bit records, later entries win on overlap).
///
/// The file is written next to `path` and renamed over it, so a reader
/// watching `path` sees the old or the new database, never half of one.
pub fn write(path: &Path, database_type: &str, networks: &[(IpNet, Record)]) -> Result<()> {
    static N: AtomicU32 = AtomicU32::new(0);
    let bytes = to_bytes(database_type, networks)?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(
        ".tmp{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let tmp = Path::new(&tmp);
    if let Err(e) = fs::write(tmp, &bytes).and_then(|()| fs::rename(tmp, path)) {
        let _ = fs::remove_file(tmp);
        return Err(e).with_context(|| format!("cannot write {}", path.display()));
    }
    Ok(())
}

/// The same as [`write`], returned as bytes.
pub fn to_bytes(database_type: &str, networks: &[(IpNet, Record)]) -> Result<Vec<u8>> {
    build(database_type, networks, 28)
}

/// The bytes of the database, with records of at least `min_record_size`
/// bits (28 or 32: the tests force 32).
fn build(
    database_type: &str,
    networks: &[(IpNet, Record)],
    min_record_size: u32,
) -> Result<Vec<u8>> {
    ensure!(!database_type.is_empty(), "the database type is empty");
    let mut tree = Tree::with_capacity(networks.len());
    let mut ids: HashMap<&Record, u32> = HashMap::new();
    let mut records: Vec<&Record> = Vec::new();
    for (net, record) in networks {
        let id = match ids.entry(record) {
            Entry::Occupied(e) => *e.get(),
            Entry::Vacant(e) => {
                let id = u32::try_from(records.len()).context("too many distinct records")?;
                records.push(record);
                *e.insert(id)
            }
        };
        let (addr, len) = place(net);
        tree.set(addr, len, Slot::Data(id))?;
    }
    // A node at `::/96`, the root of the IPv4 space, even where a leaf
    // covers it: without one the reader has no IPv4 subtree, yields IPv4
    // networks as IPv6 ones and skips, as aliases, all the networks that
    // share the record of the leaf.
    let v4 = match tree.get(0, 96) {
        Slot::Node(n) => Slot::Node(n),
        leaf => {
            let node = Slot::Node(tree.push([leaf; 2])?);
            tree.set(0, 96, node)?;
            node
        }
    };
    // `::ffff:0:0/96` shows `::/96`: the same node in both places.
    if tree.get(MAPPED, 96) != v4 {
        tree.set(MAPPED, 96, v4)?;
    }
    serialize(&tree, &records, database_type, min_record_size)
}

/// `::ffff:0:0`, the start of the IPv4-mapped range.
const MAPPED: u128 = 0xffff << 32;

/// Where a network goes in the 128-bit tree: address and prefix length.
/// IPv4 networks go under `::/96`, and so do IPv4-mapped ones.
fn place(net: &IpNet) -> (u128, u8) {
    match net.trunc() {
        IpNet::V4(n) => (u128::from(u32::from(n.network())), 96 + n.prefix_len()),
        IpNet::V6(n) => {
            let addr = u128::from(n.network());
            let len = n.prefix_len();
            if len >= 96 && addr >> 32 == 0xffff {
                (addr & 0xffff_ffff, len)
            } else {
                (addr, len)
            }
        }
    }
}

/// Bit `depth` (0 = most significant) of `addr`, as a record index.
fn bit(addr: u128, depth: u8) -> usize {
    ((addr >> (127 - depth)) & 1) as usize
}

/// One record of a node of the tree being built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slot {
    /// No data.
    Empty,
    /// Another node (an index into `Tree::nodes`).
    Node(u32),
    /// A data record (an index into the distinct records).
    Data(u32),
}

/// The search tree being built: node 0 is the root. Nodes cut off by later
/// networks stay in `nodes`, unreachable; `serialize` writes only the nodes
/// reachable from the root.
struct Tree {
    nodes: Vec<[Slot; 2]>,
}

impl Tree {
    fn with_capacity(networks: usize) -> Self {
        let mut nodes = Vec::with_capacity(networks.saturating_mul(4).saturating_add(128));
        nodes.push([Slot::Empty; 2]);
        Tree { nodes }
    }

    /// Adds a node, returning its index.
    fn push(&mut self, node: [Slot; 2]) -> Result<u32> {
        let n = u32::try_from(self.nodes.len()).context("too many tree nodes")?;
        self.nodes.push(node);
        Ok(n)
    }

    /// Makes `addr/len` hold `slot`, replacing whatever it covered (the
    /// leaves above it on the way are split into nodes).
    fn set(&mut self, addr: u128, len: u8, slot: Slot) -> Result<()> {
        let Some(last) = len.checked_sub(1) else {
            self.nodes[0] = [slot; 2];
            return Ok(());
        };
        let mut cur = 0;
        for depth in 0..last {
            let b = bit(addr, depth);
            cur = match self.nodes[cur][b] {
                Slot::Node(n) => n as usize,
                leaf => {
                    let n = self.push([leaf; 2])?;
                    self.nodes[cur][b] = Slot::Node(n);
                    n as usize
                }
            };
        }
        self.nodes[cur][bit(addr, last)] = slot;
        Ok(())
    }

    /// What `addr/len` holds: the node at depth `len`, or the leaf above it.
    fn get(&self, addr: u128, len: u8) -> Slot {
        let mut slot = Slot::Node(0);
        for depth in 0..len {
            match slot {
                Slot::Node(n) => slot = self.nodes[n as usize][bit(addr, depth)],
                leaf => return leaf,
            }
        }
        slot
    }
}

/// The 16 zero bytes between the search tree and the data section.
const SEPARATOR: usize = 16;

/// What precedes the metadata.
const METADATA_MARKER: &[u8] = b"\xAB\xCD\xEFMaxMind.com";

/// Lays out the file: the nodes reachable from the root numbered breadth
/// first, the records they point to in the order met, then the metadata.
fn serialize(
    tree: &Tree,
    records: &[&Record],
    database_type: &str,
    min_record_size: u32,
) -> Result<Vec<u8>> {
    const UNSEEN: u32 = u32::MAX;
    let mut number = vec![UNSEEN; tree.nodes.len()];
    let mut order: Vec<u32> = vec![0];
    number[0] = 0;
    let mut offsets = vec![UNSEEN; records.len()];
    let mut data = DataSection::default();
    let mut next = 0;
    while let Some(&n) = order.get(next) {
        next += 1;
        for slot in tree.nodes[n as usize] {
            match slot {
                Slot::Node(m) if number[m as usize] == UNSEEN => {
                    number[m as usize] =
                        u32::try_from(order.len()).context("too many tree nodes")?;
                    order.push(m);
                }
                Slot::Data(d) if offsets[d as usize] == UNSEEN => {
                    offsets[d as usize] = data.record(records[d as usize])?;
                }
                _ => {}
            }
        }
    }

    let node_count = order.len() as u64;
    let largest = node_count + SEPARATOR as u64 + data.buf.len() as u64;
    let record_size: u32 = if min_record_size <= 28 && largest < 1 << 28 {
        28
    } else if largest <= u64::from(u32::MAX) {
        32
    } else {
        bail!(
            "database too large for 32-bit records: {node_count} nodes, {} data bytes",
            data.buf.len()
        );
    };
    // Fits in u32: checked just above.
    let value = |slot: Slot| -> u32 {
        (match slot {
            Slot::Empty => node_count,
            Slot::Node(m) => u64::from(number[m as usize]),
            Slot::Data(d) => node_count + SEPARATOR as u64 + u64::from(offsets[d as usize]),
        }) as u32
    };

    let tree_len = order.len() * record_size as usize / 4;
    let mut out = Vec::with_capacity(tree_len + SEPARATOR + data.buf.len() + 512);
    for &n in &order {
        let [left, right] = tree.nodes[n as usize].map(value);
        if record_size == 28 {
            out.extend_from_slice(&node28(left, right));
        } else {
            out.extend_from_slice(&left.to_be_bytes());
            out.extend_from_slice(&right.to_be_bytes());
        }
    }
    out.resize(tree_len + SEPARATOR, 0);
    out.extend_from_slice(&data.buf);
    out.extend_from_slice(METADATA_MARKER);

    let build_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let m = &mut out;
    control(m, MAP, 9)?;
    string(m, "binary_format_major_version")?;
    uint(m, UINT16, 2)?;
    string(m, "binary_format_minor_version")?;
    uint(m, UINT16, 0)?;
    string(m, "build_epoch")?;
    uint(m, UINT64, build_epoch)?;
    string(m, "database_type")?;
    string(m, database_type)?;
    string(m, "description")?;
    control(m, MAP, 1)?;
    string(m, "en")?;
    string(
        m,
        &format!("{database_type} test database written by waf-tests"),
    )?;
    string(m, "ip_version")?;
    uint(m, UINT16, 6)?;
    string(m, "languages")?;
    control(m, ARRAY, 1)?;
    string(m, "en")?;
    string(m, "node_count")?;
    uint(m, UINT32, node_count)?;
    string(m, "record_size")?;
    uint(m, UINT16, u64::from(record_size))?;
    Ok(out)
}

/// A node of 28-bit records: the low 24 bits of the left one, the high 4
/// bits of the left one and of the right one, the low 24 bits of the right one.
fn node28(left: u32, right: u32) -> [u8; 7] {
    let (l, r) = (left.to_be_bytes(), right.to_be_bytes());
    [
        l[1],
        l[2],
        l[3],
        (l[0] << 4) | (r[0] & 0x0f),
        r[1],
        r[2],
        r[3],
    ]
}

/// The data section being written: each record once, each map key once
/// (later uses are pointers to it).
#[derive(Default)]
struct DataSection {
    buf: Vec<u8>,
    keys: HashMap<&'static str, u32>,
}

impl DataSection {
    fn offset(&self) -> Result<u32> {
        u32::try_from(self.buf.len()).context("data section over 4 GiB")
    }

    /// Appends `record`, returning its offset.
    fn record(&mut self, record: &Record) -> Result<u32> {
        let at = self.offset()?;
        match record {
            Record::Country(iso_code) => {
                control(&mut self.buf, MAP, 1)?;
                self.key("country")?;
                control(&mut self.buf, MAP, 1)?;
                self.key("iso_code")?;
                string(&mut self.buf, iso_code)?;
            }
            Record::Asn(number, organization) => {
                control(&mut self.buf, MAP, 2)?;
                self.key("autonomous_system_number")?;
                uint(&mut self.buf, UINT32, u64::from(*number))?;
                self.key("autonomous_system_organization")?;
                string(&mut self.buf, organization)?;
            }
        }
        Ok(at)
    }

    /// Appends a map key: the string the first time, then a pointer to it.
    fn key(&mut self, key: &'static str) -> Result<()> {
        match self.keys.get(key) {
            Some(&at) => pointer(&mut self.buf, at),
            None => {
                let at = self.offset()?;
                self.keys.insert(key, at);
                string(&mut self.buf, key)?;
            }
        }
        Ok(())
    }
}

/// Data type numbers of the format.
const POINTER: u8 = 1;
const UTF8_STRING: u8 = 2;
const UINT16: u8 = 5;
const UINT32: u8 = 6;
const MAP: u8 = 7;
const UINT64: u8 = 9;
const ARRAY: u8 = 11;

/// Appends the control byte(s) of a value of type `ty` and `size` (bytes of
/// a string or integer, entries of a map or array).
fn control(out: &mut Vec<u8>, ty: u8, size: usize) -> Result<()> {
    let (code, extra): (u8, &[u8]) = match size {
        0..29 => (size as u8, &[]),
        29..285 => (29, &[(size - 29) as u8]),
        285..65_821 => (30, &((size - 285) as u16).to_be_bytes()),
        65_821..16_843_037 => (31, &((size - 65_821) as u32).to_be_bytes()[1..]),
        _ => bail!("value of size {size} too large for the format"),
    };
    if ty <= 7 {
        out.push(ty << 5 | code);
    } else {
        out.push(code);
        out.push(ty - 7);
    }
    out.extend_from_slice(extra);
    Ok(())
}

/// Appends a UTF-8 string.
fn string(out: &mut Vec<u8>, s: &str) -> Result<()> {
    control(out, UTF8_STRING, s.len())?;
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

/// Appends an unsigned integer of type `ty` (UINT16, UINT32 or UINT64) in
/// as few bytes as it needs.
fn uint(out: &mut Vec<u8>, ty: u8, value: u64) -> Result<()> {
    let bytes = value.to_be_bytes();
    let skip = value.leading_zeros() as usize / 8;
    control(out, ty, 8 - skip)?;
    out.extend_from_slice(&bytes[skip..]);
    Ok(())
}

/// Appends a pointer to offset `at` of the data section.
fn pointer(out: &mut Vec<u8>, at: u32) {
    let p = POINTER << 5;
    match at {
        0..2048 => {
            out.push(p | (at >> 8) as u8);
            out.push(at as u8);
        }
        2048..526_336 => {
            let v = at - 2048;
            out.push(p | 1 << 3 | (v >> 16) as u8);
            out.extend_from_slice(&v.to_be_bytes()[2..]);
        }
        526_336..134_744_064 => {
            let v = at - 526_336;
            out.push(p | 2 << 3 | (v >> 24) as u8);
            out.extend_from_slice(&v.to_be_bytes()[1..]);
        }
        _ => {
            out.push(p | 3 << 3);
            out.extend_from_slice(&at.to_be_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{
        collections::BTreeSet,
        net::{IpAddr, Ipv4Addr, Ipv6Addr},
        time::Instant,
    };

    use maxminddb::{Reader, WithinOptions, geoip2};

    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().expect("test network")
    }

    fn country(iso: &str) -> Record {
        Record::Country(iso.to_owned())
    }

    fn reader(database_type: &str, networks: &[(IpNet, Record)]) -> Reader<Vec<u8>> {
        let bytes = to_bytes(database_type, networks).expect("to_bytes");
        let reader = Reader::from_source(bytes).expect("read back");
        reader.verify().expect("verify");
        reader
    }

    /// The country of `ip`, or None where the database has no data.
    fn lookup_country(reader: &Reader<Vec<u8>>, ip: IpAddr) -> Option<String> {
        let found = reader.lookup(ip).expect("lookup");
        let c: Option<geoip2::Country> = found.decode().expect("decode");
        c.map(|c| c.country.iso_code.expect("iso_code").to_owned())
    }

    fn lookup_str(reader: &Reader<Vec<u8>>, ip: &str) -> Option<String> {
        lookup_country(reader, ip.parse().expect("test address"))
    }

    /// The network of the lookup of `ip`, as written by the reader.
    fn lookup_network(reader: &Reader<Vec<u8>>, ip: &str) -> String {
        let found = reader
            .lookup(ip.parse().expect("test address"))
            .expect("lookup");
        found.network().expect("network").to_string()
    }

    /// Every network `networks()` yields with `options`, with its country.
    fn all_networks(reader: &Reader<Vec<u8>>, options: WithinOptions) -> Vec<(IpNet, String)> {
        reader
            .networks(options)
            .expect("networks")
            .map(|found| {
                let found = found.expect("network");
                let net: IpNet = found
                    .network()
                    .expect("network")
                    .to_string()
                    .parse()
                    .expect("IpNet");
                let c: geoip2::Country = found.decode().expect("decode").expect("data");
                (net, c.country.iso_code.expect("iso_code").to_owned())
            })
            .collect()
    }

    fn sorted(mut v: Vec<(IpNet, String)>) -> Vec<(IpNet, String)> {
        v.sort();
        v
    }

    fn sample() -> Vec<(IpNet, Record)> {
        vec![
            (net("1.2.3.0/24"), country("DE")),
            (net("10.0.0.0/8"), country("US")),
            (net("192.0.2.128/25"), country("DE")),
            (net("203.0.113.7/32"), country("FR")),
            (net("2001:db8::/32"), country("FR")),
            (net("2a00:1450::/29"), country("US")),
            (net("2a02:ab::1/128"), country("JP")),
        ]
    }

    #[test]
    fn point_lookups_of_v4_and_v6() {
        let r = reader("GeoLite2-Country", &sample());
        for (ip, want) in [
            ("1.2.3.0", Some("DE")),
            ("1.2.3.255", Some("DE")),
            ("1.2.2.255", None),
            ("1.2.4.0", None),
            ("10.255.0.1", Some("US")),
            ("11.0.0.0", None),
            ("192.0.2.127", None),
            ("192.0.2.128", Some("DE")),
            ("203.0.113.7", Some("FR")),
            ("203.0.113.6", None),
            ("0.0.0.0", None),
            ("255.255.255.255", None),
            // The IPv4-mapped alias and the IPv4 space in IPv6 form.
            ("::ffff:1.2.3.4", Some("DE")),
            ("::ffff:10.1.2.3", Some("US")),
            ("::ffff:11.0.0.0", None),
            ("::1.2.3.4", Some("DE")),
            ("::", None),
            ("::1", None),
            ("2001:db8::1", Some("FR")),
            ("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", Some("FR")),
            ("2001:db9::", None),
            ("2001:db7:ffff::", None),
            ("2a00:1457:1::", Some("US")),
            ("2a00:1458::", None),
            ("2a02:ab::1", Some("JP")),
            ("2a02:ab::2", None),
            ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", None),
        ] {
            assert_eq!(lookup_str(&r, ip).as_deref(), want, "{ip}");
        }
        // The networks of lookups: IPv4 for IPv4, IPv6 for the mapped form.
        assert_eq!(lookup_network(&r, "1.2.3.4"), "1.2.3.0/24");
        assert_eq!(lookup_network(&r, "::ffff:1.2.3.4"), "::ffff:1.2.3.0/120");
        assert_eq!(lookup_network(&r, "2001:db8::1"), "2001:db8::/32");
        assert_eq!(lookup_network(&r, "2a02:ab::1"), "2a02:ab::1/128");
    }

    #[test]
    fn asn_records() {
        let networks = [
            (net("8.8.8.0/24"), Record::Asn(15169, "GOOGLE".into())),
            (
                net("1.1.1.0/24"),
                Record::Asn(13335, "CLOUDFLARENET".into()),
            ),
            (
                net("2606:4700::/32"),
                Record::Asn(13335, "CLOUDFLARENET".into()),
            ),
            (net("192.0.2.0/24"), Record::Asn(u32::MAX, String::new())),
            (net("198.51.100.0/24"), Record::Asn(0, "Zero".into())),
            (
                net("203.0.113.0/24"),
                Record::Asn(64_500, "x".repeat(70_000)),
            ),
        ];
        let r = reader("GeoLite2-ASN", &networks);
        let asn = |ip: &str| {
            let found = r.lookup(ip.parse().expect("test address")).expect("lookup");
            let a: Option<geoip2::Asn> = found.decode().expect("decode");
            a.map(|a| {
                (
                    a.autonomous_system_number.expect("number"),
                    a.autonomous_system_organization
                        .expect("organization")
                        .to_owned(),
                )
            })
        };
        assert_eq!(asn("8.8.8.8"), Some((15169, "GOOGLE".into())));
        assert_eq!(asn("1.1.1.1"), Some((13335, "CLOUDFLARENET".into())));
        assert_eq!(
            asn("2606:4700::1111"),
            Some((13335, "CLOUDFLARENET".into()))
        );
        assert_eq!(asn("192.0.2.1"), Some((u32::MAX, String::new())));
        assert_eq!(asn("198.51.100.1"), Some((0, "Zero".into())));
        assert_eq!(asn("203.0.113.1"), Some((64_500, "x".repeat(70_000))));
        assert_eq!(asn("8.8.4.4"), None);
        assert_eq!(asn("2606:4701::"), None);
        // One record for the two Cloudflare networks.
        let offset = |ip: &str| {
            r.lookup(ip.parse().expect("test address"))
                .expect("lookup")
                .offset()
        };
        assert_eq!(offset("1.1.1.1"), offset("2606:4700::1"));
        assert_ne!(offset("1.1.1.1"), offset("8.8.8.8"));
    }

    #[test]
    fn identical_records_are_stored_once() {
        // The length of the data section and metadata.
        let after_tree = |networks: &[(IpNet, Record)]| {
            let bytes = to_bytes("GeoLite2-Country", networks).expect("to_bytes");
            let r = Reader::from_source(bytes.clone()).expect("read back");
            r.verify().expect("verify");
            (bytes.len() - r.metadata().node_count as usize * 7, r)
        };
        let (one, _) = after_tree(&[(net("10.0.0.0/8"), country("DE"))]);
        let many: Vec<_> = (0..1000u32)
            .map(|i| {
                (
                    IpNet::new(IpAddr::V4(Ipv4Addr::from(i << 8)), 24).expect("prefix"),
                    country("DE"),
                )
            })
            .collect();
        let (len, r) = after_tree(&many);
        // The same but for the digits of the node count.
        assert!(len.abs_diff(one) <= 2, "{len} vs {one}");
        let offsets: BTreeSet<_> = (0..1000u32)
            .map(|i| {
                r.lookup(IpAddr::V4(Ipv4Addr::from(i << 8 | 1)))
                    .expect("lookup")
                    .offset()
            })
            .collect();
        assert_eq!(offsets.len(), 1);
        assert!(offsets.iter().all(Option::is_some));
    }

    #[test]
    fn networks_yields_exactly_the_written_networks() {
        let networks = sample();
        let r = reader("GeoLite2-Country", &networks);
        let want: Vec<(IpNet, String)> = networks
            .iter()
            .map(|(n, rec)| {
                let Record::Country(c) = rec else {
                    unreachable!()
                };
                (n.trunc(), c.clone())
            })
            .collect();
        // Default options: IPv4 networks once, as IPv4 networks.
        assert_eq!(
            sorted(all_networks(&r, WithinOptions::default())),
            sorted(want.clone())
        );
        // With the aliases: the IPv4 networks again, as ::ffff:a.b.c.d/(96+n).
        let mut with_aliases = want.clone();
        for (n, c) in &want {
            if let IpNet::V4(v4) = n {
                let mapped = v4.network().to_ipv6_mapped();
                with_aliases.push((
                    IpNet::new(IpAddr::V6(mapped), 96 + v4.prefix_len()).expect("prefix"),
                    c.clone(),
                ));
            }
        }
        assert_eq!(
            sorted(all_networks(
                &r,
                WithinOptions::default().include_aliased_networks()
            )),
            sorted(with_aliases)
        );
        // within() of an IPv4 range yields IPv4 networks too.
        let within: Vec<String> = r
            .within(
                "10.0.0.0/7".parse().expect("cidr"),
                WithinOptions::default(),
            )
            .expect("within")
            .map(|f| f.expect("network").network().expect("network").to_string())
            .collect();
        assert_eq!(within, ["10.0.0.0/8"]);
    }

    #[test]
    fn special_networks() {
        // IPv4-mapped IPv6 networks are the IPv4 networks they map; IPv6
        // networks inside ::/96 are in the IPv4 space.
        let r = reader(
            "GeoLite2-Country",
            &[
                (net("::ffff:1.2.3.0/120"), country("DE")),
                (net("::5/128"), country("FR")),
            ],
        );
        assert_eq!(lookup_str(&r, "1.2.3.4").as_deref(), Some("DE"));
        assert_eq!(lookup_str(&r, "0.0.0.5").as_deref(), Some("FR"));
        assert_eq!(lookup_str(&r, "::ffff:0.0.0.5").as_deref(), Some("FR"));
        assert_eq!(
            sorted(all_networks(&r, WithinOptions::default())),
            sorted(vec![
                (net("1.2.3.0/24"), "DE".into()),
                (net("0.0.0.5/32"), "FR".into())
            ])
        );
        // 0.0.0.0/0: both halves of the IPv4 root; the networks sharing its
        // record are not mistaken for aliases.
        let r = reader(
            "GeoLite2-Country",
            &[
                (net("0.0.0.0/0"), country("DE")),
                (net("2001:db8::/32"), country("DE")),
            ],
        );
        assert_eq!(lookup_str(&r, "1.2.3.4").as_deref(), Some("DE"));
        assert_eq!(lookup_str(&r, "::ffff:1.2.3.4").as_deref(), Some("DE"));
        assert_eq!(lookup_str(&r, "2001:db8::1").as_deref(), Some("DE"));
        assert_eq!(lookup_str(&r, "2001:db9::1"), None);
        assert_eq!(lookup_network(&r, "1.2.3.4"), "0.0.0.0/1");
        assert_eq!(
            sorted(all_networks(&r, WithinOptions::default())),
            sorted(vec![
                (net("0.0.0.0/1"), "DE".into()),
                (net("128.0.0.0/1"), "DE".into()),
                (net("2001:db8::/32"), "DE".into())
            ])
        );
        // ::/0: everywhere, in pieces around ::/96; the alias is skipped, so
        // the pieces cover all but ::ffff:0:0/96.
        let r = reader("GeoLite2-Country", &[(net("::/0"), country("DE"))]);
        for ip in ["1.2.3.4", "::ffff:1.2.3.4", "::1", "2001:db8::1", "ffff::"] {
            assert_eq!(lookup_str(&r, ip).as_deref(), Some("DE"), "{ip}");
        }
        let pieces = all_networks(&r, WithinOptions::default());
        for n in ["0.0.0.0/1", "128.0.0.0/1", "8000::/1", "::fffe:0:0/96"] {
            assert!(pieces.contains(&(net(n), "DE".into())), "{n} in {pieces:?}");
        }
        let covered: u128 = pieces
            .iter()
            .map(|(n, _)| match n {
                IpNet::V4(n) => 1u128 << (32 - n.prefix_len()),
                IpNet::V6(n) => 1u128 << (128 - n.prefix_len()),
            })
            .sum();
        assert_eq!(covered, (u128::MAX - (1 << 32)) + 1);
        // An empty database is valid and finds nothing.
        let r = reader("GeoLite2-Country", &[]);
        // The path to ::/96, the IPv4 root and the rest of the alias's path.
        assert_eq!(r.metadata().node_count, 96 + 1 + 15);
        assert_eq!(lookup_str(&r, "1.2.3.4"), None);
        assert_eq!(lookup_str(&r, "2001:db8::1"), None);
        assert!(all_networks(&r, WithinOptions::default()).is_empty());
        // No database type: refused.
        assert!(to_bytes("", &sample()).is_err());
    }

    #[test]
    fn later_entries_win() {
        let r = reader(
            "GeoLite2-Country",
            &[
                (net("10.0.0.0/8"), country("US")),
                (net("10.1.0.0/16"), country("DE")),
                (net("10.1.2.0/24"), country("FR")),
                (net("10.0.0.0/12"), country("GB")),
                (net("10.1.2.3/32"), country("JP")),
                (net("2001:db8::/32"), country("US")),
                (net("2001:db8::/48"), country("DE")),
            ],
        );
        for (ip, want) in [
            ("10.1.2.3", "JP"),
            ("10.1.2.4", "GB"),
            ("10.1.3.1", "GB"),
            ("10.15.255.255", "GB"),
            ("10.16.0.0", "US"),
            ("10.255.255.255", "US"),
            ("2001:db8::1", "DE"),
            ("2001:db8:1::1", "US"),
        ] {
            assert_eq!(lookup_str(&r, ip).as_deref(), Some(want), "{ip}");
        }
        assert_eq!(lookup_network(&r, "10.1.2.4"), "10.1.2.4/30");
    }

    #[test]
    fn metadata() {
        let before = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_secs();
        let r = reader(
            "GeoLite2-ASN",
            &[(net("8.8.8.0/24"), Record::Asn(15169, "GOOGLE".into()))],
        );
        let m = r.metadata();
        assert_eq!(m.database_type, "GeoLite2-ASN");
        assert_eq!(m.ip_version, 6);
        assert_eq!(m.record_size, 28);
        assert_eq!(m.binary_format_major_version, 2);
        assert_eq!(m.binary_format_minor_version, 0);
        assert_eq!(m.languages, ["en"]);
        assert_eq!(
            m.description.get("en").map(String::as_str),
            Some("GeoLite2-ASN test database written by waf-tests")
        );
        assert!(
            m.build_epoch >= before && m.build_epoch <= before + 60,
            "{}",
            m.build_epoch
        );
        // 96 nodes down to ::/96, 24 more to 8.8.8.0/24, and 15 for the path
        // to ::ffff:0:0/96 where it leaves the one to ::/96 (at bit 80).
        assert_eq!(m.node_count, 96 + 24 + 15);
        let bytes = to_bytes(
            "GeoLite2-ASN",
            &[(net("8.8.8.0/24"), Record::Asn(15169, "GOOGLE".into()))],
        )
        .expect("to_bytes");
        let data_and_metadata = bytes.len() - m.node_count as usize * 7;
        assert!(data_and_metadata < 400, "{data_and_metadata}");
    }

    #[test]
    fn records_of_32_bits() {
        let networks = sample();
        let bytes = build("GeoLite2-Country", &networks, 32).expect("build");
        let r = Reader::from_source(bytes).expect("read back");
        r.verify().expect("verify");
        assert_eq!(r.metadata().record_size, 32);
        assert_eq!(lookup_str(&r, "1.2.3.4").as_deref(), Some("DE"));
        assert_eq!(lookup_str(&r, "::ffff:10.0.0.1").as_deref(), Some("US"));
        assert_eq!(lookup_str(&r, "2a02:ab::1").as_deref(), Some("JP"));
        assert_eq!(lookup_str(&r, "2a02:ab::2"), None);
    }

    #[test]
    fn encodings() {
        // The 28-bit node layout of the specification (and of maxminddb's test).
        assert_eq!(
            node28(0x0123_4567, 0x089A_BCDE),
            [0x23, 0x45, 0x67, 0x18, 0x9A, 0xBC, 0xDE]
        );
        // Control bytes and sizes.
        let enc = |ty, size| {
            let mut v = Vec::new();
            control(&mut v, ty, size).expect("control");
            v
        };
        assert_eq!(enc(UTF8_STRING, 28), [0x5c]);
        assert_eq!(enc(UTF8_STRING, 29), [0x5d, 0]);
        assert_eq!(enc(UTF8_STRING, 284), [0x5d, 255]);
        assert_eq!(enc(UTF8_STRING, 285), [0x5e, 0, 0]);
        assert_eq!(enc(UTF8_STRING, 65_820), [0x5e, 255, 255]);
        assert_eq!(enc(UTF8_STRING, 65_821), [0x5f, 0, 0, 0]);
        assert_eq!(enc(UINT64, 8), [0x08, 2]);
        assert_eq!(enc(ARRAY, 1), [0x01, 4]);
        assert!(control(&mut Vec::new(), UTF8_STRING, 16_843_037).is_err());
        // Pointers at each size.
        let ptr = |at| {
            let mut v = Vec::new();
            pointer(&mut v, at);
            v
        };
        assert_eq!(ptr(0x7ff), [0x27, 0xff]);
        assert_eq!(ptr(2048), [0x28, 0, 0]);
        assert_eq!(ptr(526_335), [0x2f, 0xff, 0xff]);
        assert_eq!(ptr(526_336), [0x30, 0, 0, 0]);
        assert_eq!(ptr(134_744_064), [0x38, 8, 8, 8, 0]);
    }

    #[test]
    fn write_to_a_file() {
        let dir = std::env::temp_dir().join(format!("waf-mmdb-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("mkdir");
        let path = dir.join("country.mmdb");
        write(&path, "GeoLite2-Country", &sample()).expect("write");
        write(
            &path,
            "GeoLite2-Country",
            &[(net("1.2.3.0/24"), country("FR"))],
        )
        .expect("rewrite");
        let r = Reader::open_readfile(&path).expect("open");
        assert_eq!(lookup_str(&r, "1.2.3.4").as_deref(), Some("FR"));
        assert_eq!(lookup_str(&r, "10.0.0.1"), None);
        let left: Vec<_> = fs::read_dir(&dir).expect("read_dir").collect();
        assert_eq!(left.len(), 1, "temporary files left: {left:?}");
        fs::remove_dir_all(&dir).expect("cleanup");
        assert!(write(&dir.join("missing/x.mmdb"), "GeoLite2-Country", &sample()).is_err());
    }

    /// splitmix64: the same seed gives the same cases.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }

        fn u128(&mut self) -> u128 {
            u128::from(self.next()) << 64 | u128::from(self.next())
        }
    }

    const COUNTRIES: [&str; 8] = ["DE", "US", "FR", "GB", "JP", "CN", "RU", "BR"];

    /// A random network: IPv4 ones in 10.0.0.0/8 (lengths 8 to 32), IPv6 ones
    /// in 2001:db8::/32 (lengths 32 to 128), so that they overlap often;
    /// with `specials`, now and then an IPv4-mapped one or one containing
    /// ::/96 or ::ffff:0:0/96.
    fn random_net(rng: &mut Rng, specials: bool) -> IpNet {
        let pick = rng.below(if specials { 12 } else { 10 });
        let ip = |addr: IpAddr, len: u64| IpNet::new(addr, len as u8).expect("prefix").trunc();
        match pick {
            0..5 => {
                let addr = Ipv4Addr::from(0x0a00_0000 | (rng.next() as u32 & 0x00ff_ffff));
                ip(IpAddr::V4(addr), 8 + rng.below(25))
            }
            5..10 => {
                let addr = Ipv6Addr::from((0x2001_0db8u128 << 96) | (rng.u128() >> 32));
                ip(IpAddr::V6(addr), 32 + rng.below(97))
            }
            10 => {
                let v4 = Ipv4Addr::from(0x0a00_0000 | (rng.next() as u32 & 0x00ff_ffff));
                ip(IpAddr::V6(v4.to_ipv6_mapped()), 104 + rng.below(25))
            }
            _ => {
                let (addr, len) = [
                    ("::", 0),
                    ("::", 64),
                    ("::", 80),
                    ("::", 96),
                    ("::ffff:0:0", 95),
                    ("::ffff:0:0", 96),
                ][rng.below(6) as usize];
                ip(addr.parse().expect("test address"), len)
            }
        }
    }

    /// A random address: most inside one of `networks` (in IPv4, IPv4-mapped
    /// or `::a.b.c.d` form for IPv4 ones), some anywhere.
    fn random_addr(rng: &mut Rng, networks: &[(IpNet, Record)]) -> IpAddr {
        if networks.is_empty() || rng.below(5) == 0 {
            return match rng.below(3) {
                0 => IpAddr::V4(Ipv4Addr::from(rng.next() as u32)),
                1 => IpAddr::V6(Ipv6Addr::from(rng.u128())),
                _ => IpAddr::V4(Ipv4Addr::from(
                    0x0a00_0000 | (rng.next() as u32 & 0x00ff_ffff),
                )),
            };
        }
        let (n, _) = &networks[rng.below(networks.len() as u64) as usize];
        match n {
            IpNet::V4(n) => {
                let host = u32::from(n.hostmask()) & rng.next() as u32;
                let v4 = Ipv4Addr::from(u32::from(n.network()) | host);
                match rng.below(3) {
                    0 => IpAddr::V4(v4),
                    1 => IpAddr::V6(v4.to_ipv6_mapped()),
                    _ => IpAddr::V6(v4.to_ipv6_compatible()),
                }
            }
            IpNet::V6(n) => {
                let host = u128::from(n.hostmask()) & rng.u128();
                IpAddr::V6(Ipv6Addr::from(u128::from(n.network()) | host))
            }
        }
    }

    /// The address a lookup of `ip` goes through, in the 128-bit tree (IPv4
    /// and IPv4-mapped addresses under `::/96`).
    fn normalize(ip: IpAddr) -> u128 {
        match ip {
            IpAddr::V4(v4) => u128::from(u32::from(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => u128::from(u32::from(v4)),
                None => u128::from(v6),
            },
        }
    }

    /// The brute-force model: the record of the last network containing
    /// `ip`, all in the 128-bit space with IPv4 (and IPv4-mapped) at ::/96.
    fn model(networks: &[(IpNet, Record)], ip: IpAddr) -> Option<String> {
        let a = normalize(ip);
        networks.iter().rev().find_map(|(n, rec)| {
            let (addr, len) = match n {
                IpNet::V4(v4) => (u128::from(u32::from(v4.network())), 96 + v4.prefix_len()),
                IpNet::V6(v6) => match v6.network().to_ipv4_mapped() {
                    Some(v4) if v6.prefix_len() >= 96 => {
                        (u128::from(u32::from(v4)), v6.prefix_len())
                    }
                    _ => (u128::from(v6.network()), v6.prefix_len()),
                },
            };
            let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            let Record::Country(c) = rec else {
                unreachable!()
            };
            (a & mask == addr).then(|| c.clone())
        })
    }

    fn overlap(a: &IpNet, b: &IpNet) -> bool {
        a.contains(b) || b.contains(a)
    }

    fn check_lookups(rng: &mut Rng, networks: &[(IpNet, Record)], r: &Reader<Vec<u8>>, case: u64) {
        for _ in 0..300 {
            let ip = random_addr(rng, networks);
            assert_eq!(
                lookup_country(r, ip),
                model(networks, ip),
                "case {case}: {ip} in {networks:?}"
            );
        }
    }

    #[test]
    fn random_disjoint_networks_match_the_model() {
        let mut rng = Rng(0x6d6d_6462);
        for case in 0..200 {
            let count = rng.below(60) as usize;
            let mut networks: Vec<(IpNet, Record)> = Vec::new();
            while networks.len() < count {
                let n = random_net(&mut rng, false);
                if networks.iter().all(|(m, _)| !overlap(&n, m)) {
                    networks.push((n, country(COUNTRIES[rng.below(8) as usize])));
                }
            }
            let r = reader("GeoLite2-Country", &networks);
            check_lookups(&mut rng, &networks, &r, case);
            let want: Vec<_> = networks
                .iter()
                .map(|(n, rec)| {
                    let Record::Country(c) = rec else {
                        unreachable!()
                    };
                    (*n, c.clone())
                })
                .collect();
            assert_eq!(
                sorted(all_networks(&r, WithinOptions::default())),
                sorted(want),
                "case {case}"
            );
        }
    }

    #[test]
    fn random_overlapping_networks_match_the_model() {
        let mut rng = Rng(0x6f76_6572);
        for case in 0..300 {
            let count = rng.below(40) as usize;
            let networks: Vec<(IpNet, Record)> = (0..count)
                .map(|_| {
                    (
                        random_net(&mut rng, true),
                        country(COUNTRIES[rng.below(8) as usize]),
                    )
                })
                .collect();
            let r = reader("GeoLite2-Country", &networks);
            check_lookups(&mut rng, &networks, &r, case);
            // The networks the reader yields, as far as they go, agree too.
            for (n, c) in all_networks(&r, WithinOptions::default()) {
                for ip in [n.network(), n.broadcast()] {
                    assert_eq!(
                        model(&networks, ip).as_deref(),
                        Some(c.as_str()),
                        "case {case}: {n}"
                    );
                }
            }
        }
    }

    /// `n` disjoint networks, like a benchmark's: three IPv4 /24s for one
    /// IPv6 /48, in scattered order, with 64 countries.
    fn synthetic(n: usize) -> Vec<(IpNet, Record)> {
        let codes: Vec<String> = (0..64u8)
            .map(|i| format!("{}{}", (b'A' + i / 8) as char, (b'A' + i % 8) as char))
            .collect();
        (0..n)
            .map(|i| {
                let scattered = (i as u64).wrapping_mul(0x9e37_79b9) as u32;
                let net = if i % 4 == 3 {
                    let addr = (0x2a00u128 << 112) | (u128::from(scattered) << 80);
                    IpNet::new(IpAddr::V6(Ipv6Addr::from(addr)), 48)
                } else {
                    IpNet::new(IpAddr::V4(Ipv4Addr::from(scattered << 8)), 24)
                };
                (net.expect("prefix"), Record::Country(codes[i % 64].clone()))
            })
            .collect()
    }

    #[test]
    fn large_databases_write_in_bounded_time() {
        // 500,000 in release builds only (a debug build is much slower).
        let sizes: &[usize] = if cfg!(debug_assertions) {
            &[100_000]
        } else {
            &[100_000, 500_000]
        };
        for &n in sizes {
            let networks = synthetic(n);
            let start = Instant::now();
            let bytes = to_bytes("GeoLite2-Country", &networks).expect("to_bytes");
            let took = start.elapsed();
            println!(
                "mmdb: {n} networks written in {took:.2?} ({} bytes, {})",
                bytes.len(),
                if cfg!(debug_assertions) {
                    "debug"
                } else {
                    "release"
                }
            );
            let r = Reader::from_source(bytes).expect("read back");
            assert_eq!(
                r.networks(WithinOptions::default())
                    .expect("networks")
                    .count(),
                n
            );
            let mut rng = Rng(n as u64);
            for _ in 0..1000 {
                let (net, Record::Country(c)) = &networks[rng.below(n as u64) as usize] else {
                    unreachable!()
                };
                assert_eq!(
                    lookup_country(&r, net.network()).as_deref(),
                    Some(c.as_str()),
                    "{net}"
                );
            }
        }
    }
}
