//! Offline MaxMind-format (`.mmdb`) databases: GeoLite2/GeoIP2 Country and
//! City, GeoLite2 ASN (and GeoIP2 ISP), DB-IP lite Country and ASN. Read
//! whole (for a policy: every network with its country or AS number) or
//! looked up one address at a time (`waf lookup`, the access log).
//!
//! The files are input from outside, so every read is bounded: the
//! `maxminddb` crate checks the layout and bounds each record's decoding,
//! and before trusting a file this module checks that its search tree
//! unfolds into a bounded number of networks (a tree whose nodes are shared
//! can describe 2^128 of them) and reads for at most [`WALK_DEADLINE`].
//!
//! IPv4 networks of an IPv6 database (stored under `::/96`, and reachable
//! through the aliases `::ffff:0:0/96`, `2001::/32` and `2002::/16` in
//! MaxMind's files) come out once, as IPv4 networks: the walk leaves the
//! aliases out (no [`WithinOptions::include_aliased_networks`]).

use std::{
    collections::HashMap,
    net::IpAddr,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use ipnet::IpNet;
use maxminddb::{LookupResult, MaxMindDbError, Reader, WithinOptions};
use serde::Deserialize;

use super::SourceError;

/// The most networks a search tree may unfold into: GeoLite2-City, the
/// largest common database, has a few million (counting each IPv4 alias
/// in full).
pub const MAX_NETWORKS: u64 = 1 << 25;

/// The longest a full read may take (GeoLite2-City takes seconds): past
/// it the file is refused as malformed rather than hanging a reload.
pub const WALK_DEADLINE: Duration = Duration::from_secs(120);

/// What a database maps addresses to, from its metadata `database_type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DbKind {
    /// Countries: `GeoLite2-Country`, `GeoIP2-City`, `DBIP-Country-Lite`...
    Country,
    /// Autonomous systems: `GeoLite2-ASN`, `GeoIP2-ISP`, `DBIP-ASN-Lite`...
    Asn,
}

impl DbKind {
    /// The kind of a `database_type`: its words (split at anything not a
    /// letter or digit, case-insensitive) include `Country` or `City`, or
    /// `ASN` or `ISP`, not both. `None` for anything else.
    pub fn of(database_type: &str) -> Option<Self> {
        let words = || database_type.split(|c: char| !c.is_ascii_alphanumeric());
        let has = |w: &[&str]| words().any(|x| w.iter().any(|y| x.eq_ignore_ascii_case(y)));
        match (has(&["country", "city"]), has(&["asn", "isp"])) {
            (true, false) => Some(Self::Country),
            (false, true) => Some(Self::Asn),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Country => "country",
            Self::Asn => "ASN",
        }
    }
}

/// Every network of a database with its value, in address order (IPv4
/// first), and how many networks had none (skipped).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Listing<T> {
    /// The networks and their values.
    pub networks: Vec<(IpNet, T)>,
    /// Networks with a record but no value (a country record without an
    /// ISO code, an ASN record without a number).
    pub skipped: usize,
}

/// An open MaxMind-format database of a known [`DbKind`].
pub struct GeoDb {
    path: PathBuf,
    reader: Reader<Vec<u8>>,
    kind: DbKind,
}

impl std::fmt::Debug for GeoDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeoDb")
            .field("path", &self.path)
            .field("kind", &self.kind)
            .field("database_type", &self.database_type())
            .finish_non_exhaustive()
    }
}

/// The parts of a country (or city) record a policy needs.
#[derive(Deserialize)]
struct CountryRecord<'a> {
    #[serde(borrow, default)]
    country: Option<Iso<'a>>,
    #[serde(borrow, default)]
    registered_country: Option<Iso<'a>>,
}

#[derive(Deserialize)]
struct Iso<'a> {
    #[serde(borrow, default)]
    iso_code: Option<&'a str>,
}

/// The parts of an ASN (or ISP) record a policy needs.
#[derive(Deserialize)]
struct AsnRecord<'a> {
    #[serde(default)]
    autonomous_system_number: Option<u32>,
    #[serde(borrow, default)]
    autonomous_system_organization: Option<&'a str>,
}

impl CountryRecord<'_> {
    /// The country's code, else the registered country's; an error for a
    /// code that is not two uppercase ASCII letters.
    fn code(&self) -> Result<Option<[u8; 2]>, String> {
        fn iso<'a>(c: &Option<Iso<'a>>) -> Option<&'a str> {
            c.as_ref().and_then(|c| c.iso_code)
        }
        let Some(code) = iso(&self.country).or_else(|| iso(&self.registered_country)) else {
            return Ok(None);
        };
        match code.as_bytes() {
            &[a, b] if a.is_ascii_uppercase() && b.is_ascii_uppercase() => Ok(Some([a, b])),
            _ => Err(format!(
                "country code \"{}\" is not two uppercase letters (ISO 3166-1)",
                printable(code, 16)
            )),
        }
    }
}

impl GeoDb {
    /// Reads and opens the database at `path`.
    ///
    /// # Errors
    ///
    /// An unreadable file, or as [`GeoDb::from_bytes`].
    pub fn open(path: &Path) -> Result<Self, SourceError> {
        let bytes =
            std::fs::read(path).map_err(|e| SourceError::new(path, "file", e.to_string()))?;
        Self::from_bytes(path, bytes)
    }

    /// Opens a database read from `path` (named in errors).
    ///
    /// # Errors
    ///
    /// Not a MaxMind DB (no metadata, a bad layout: the `maxminddb` error,
    /// with the byte offset where it gives one), a search tree with a cycle
    /// or unfolding into more than [`MAX_NETWORKS`] networks, or a
    /// `database_type` of neither kind.
    pub fn from_bytes(path: &Path, bytes: Vec<u8>) -> Result<Self, SourceError> {
        let err =
            |location: &str, e: MaxMindDbError| SourceError::new(path, location, e.to_string());
        let meta = Reader::from_source(bytes.as_slice())
            .map_err(|e| err("file", e))?
            .metadata()
            .clone();
        let kind = DbKind::of(&meta.database_type).ok_or_else(|| {
            let shown = printable(&meta.database_type, 80);
            SourceError::new(
                path,
                "metadata",
                format!(
                    "database type \"{shown}\" is neither a country database (Country, City) \
                     nor an ASN database (ASN, ISP)"
                ),
            )
        })?;
        check_tree(&bytes, meta.node_count, meta.record_size)
            .map_err(|m| SourceError::new(path, "search tree", m))?;
        let reader = Reader::from_source(bytes).map_err(|e| err("file", e))?;
        Ok(Self {
            path: path.to_path_buf(),
            reader,
            kind,
        })
    }

    /// The file it was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What it maps addresses to.
    pub fn kind(&self) -> DbKind {
        self.kind
    }

    /// Its metadata `database_type` (`GeoLite2-Country`...).
    pub fn database_type(&self) -> &str {
        &self.reader.metadata().database_type
    }

    /// When it was built (seconds since the Unix epoch): how stale it is.
    pub fn build_epoch(&self) -> u64 {
        self.reader.metadata().build_epoch
    }

    /// Every network with its country's ISO code (the registered
    /// country's where the country has none), in address order; networks
    /// with neither are left out (see [`GeoDb::country_listing`] for their
    /// count).
    ///
    /// # Errors
    ///
    /// Not a country database, a corrupt tree or record (named by network
    /// where known), a code that is not two uppercase letters.
    pub fn countries(&self) -> Result<Vec<(IpNet, [u8; 2])>, SourceError> {
        self.country_listing().map(|l| l.networks)
    }

    /// [`GeoDb::countries`] with the count of networks without a code.
    ///
    /// # Errors
    ///
    /// As [`GeoDb::countries`].
    pub fn country_listing(&self) -> Result<Listing<[u8; 2]>, SourceError> {
        self.walk(DbKind::Country, |r| match r.decode::<CountryRecord>() {
            Ok(rec) => rec.map_or(Ok(None), |rec| rec.code()),
            Err(e) => Err(e.to_string()),
        })
    }

    /// Every network with its AS number, in address order; networks
    /// without one are left out (see [`GeoDb::asn_listing`]).
    ///
    /// # Errors
    ///
    /// Not an ASN database, a corrupt tree or record.
    pub fn asns(&self) -> Result<Vec<(IpNet, u32)>, SourceError> {
        self.asn_listing().map(|l| l.networks)
    }

    /// [`GeoDb::asns`] with the count of networks without a number.
    ///
    /// # Errors
    ///
    /// As [`GeoDb::asns`].
    pub fn asn_listing(&self) -> Result<Listing<u32>, SourceError> {
        self.walk(DbKind::Asn, |r| match r.decode::<AsnRecord>() {
            Ok(rec) => Ok(rec.and_then(|r| r.autonomous_system_number)),
            Err(e) => Err(e.to_string()),
        })
    }

    /// The country of `ip` (IPv4-mapped IPv6 addresses as IPv4): `None`
    /// when unknown, in an ASN database, or when the record is corrupt.
    pub fn country(&self, ip: IpAddr) -> Option<[u8; 2]> {
        if self.kind != DbKind::Country {
            return None;
        }
        let found = self.reader.lookup(ip.to_canonical()).ok()?;
        found.decode::<CountryRecord>().ok()??.code().ok()?
    }

    /// The AS number and organization (empty when the record has none) of
    /// `ip`: `None` when unknown, in a country database, or when corrupt.
    pub fn asn(&self, ip: IpAddr) -> Option<(u32, String)> {
        if self.kind != DbKind::Asn {
            return None;
        }
        let found = self.reader.lookup(ip.to_canonical()).ok()?;
        let rec = found.decode::<AsnRecord>().ok()??;
        let org = rec.autonomous_system_organization.unwrap_or("");
        Some((rec.autonomous_system_number?, org.to_string()))
    }

    /// Walks every network with data, decoding each record once (networks
    /// share records) with `value`.
    fn walk<T: Copy>(
        &self,
        want: DbKind,
        value: impl Fn(&LookupResult<'_, Vec<u8>>) -> Result<Option<T>, String>,
    ) -> Result<Listing<T>, SourceError> {
        let err =
            |location: String, message: String| SourceError::new(&self.path, location, message);
        if self.kind != want {
            return Err(err(
                "file".into(),
                format!(
                    "{} is {} database, not {} database",
                    printable(self.database_type(), 80),
                    article(self.kind),
                    article(want)
                ),
            ));
        }
        let started = Instant::now();
        // Leaves without data are yielded too, so that every step of the
        // walk comes back here and the deadline holds.
        let options = WithinOptions::default().include_networks_without_data();
        let walk = self
            .reader
            .networks(options)
            .map_err(|e| err("file".into(), e.to_string()))?;
        let mut cache: HashMap<usize, Option<T>> = HashMap::new();
        let mut out = Listing {
            networks: Vec::new(),
            skipped: 0,
        };
        for (n, item) in walk.enumerate() {
            if n % 4096 == 0 && started.elapsed() > WALK_DEADLINE {
                return Err(err(
                    "file".into(),
                    format!("reading took over {WALK_DEADLINE:?}: a malformed database"),
                ));
            }
            let found = item.map_err(|e| err("search tree".into(), e.to_string()))?;
            let Some(offset) = found.offset() else {
                continue;
            };
            let net = found
                .network()
                .map(|n| (n.ip(), n.prefix()))
                .map_err(|e| err("search tree".into(), e.to_string()))
                .and_then(|(ip, len)| {
                    IpNet::new(ip, len).map_err(|e| err("search tree".into(), e.to_string()))
                })
                .map(v4_in_v6)?;
            let v = match cache.get(&offset) {
                Some(v) => *v,
                None => {
                    let v = value(&found).map_err(|m| err(format!("network {net}"), m))?;
                    cache.insert(offset, v);
                    v
                }
            };
            match v {
                Some(v) => out.networks.push((net, v)),
                None => out.skipped += 1,
            }
        }
        out.networks.sort_unstable_by_key(|&(net, _)| net);
        Ok(out)
    }
}

/// An IPv6 network inside `::/96` as the IPv4 network it stands for in
/// an IPv6 database (`::a.b.c.d/(96 + n)` is `a.b.c.d/n`): for databases
/// whose whole IPv4 space is one record, which the crate reports as IPv6.
fn v4_in_v6(net: IpNet) -> IpNet {
    match net {
        IpNet::V6(n) if n.prefix_len() >= 96 && u128::from(n.addr()) >> 32 == 0 => {
            let addr = std::net::Ipv4Addr::from(u128::from(n.addr()) as u32);
            IpNet::V4(ipnet::Ipv4Net::new_assert(addr, n.prefix_len() - 96))
        }
        other => other,
    }
}

/// Text from the file as it may be shown: at most `max` characters,
/// control characters and quotes escaped.
fn printable(s: &str, max: usize) -> String {
    s.chars().take(max).flat_map(char::escape_default).collect()
}

/// "a country" / "an ASN".
fn article(kind: DbKind) -> String {
    match kind {
        DbKind::Country => format!("a {}", kind.name()),
        DbKind::Asn => format!("an {}", kind.name()),
    }
}

/// Child `side` (0, 1) of search-tree node `node`, or `None` past the end
/// of `tree` (the crate has checked the layout; this does not rely on it).
fn child(tree: &[u8], record_size: u16, node: usize, side: usize) -> Option<usize> {
    let be = |b: &[u8]| b.iter().fold(0usize, |v, &x| (v << 8) | usize::from(x));
    match record_size {
        24 => tree
            .get(node * 6 + side * 3..node * 6 + side * 3 + 3)
            .map(be),
        28 => {
            let b = tree.get(node * 7..node * 7 + 7)?;
            let (high, low) = if side == 0 {
                (b[3] >> 4, &b[0..3])
            } else {
                (b[3] & 0x0f, &b[4..7])
            };
            Some((usize::from(high) << 24) | be(low))
        }
        32 => tree
            .get(node * 8 + side * 4..node * 8 + side * 4 + 4)
            .map(be),
        _ => None,
    }
}

/// Checks that the search tree of `bytes` has no cycle and unfolds into
/// at most [`MAX_NETWORKS`] leaves, counting a node reached from several
/// parents (the IPv4 aliases) once per parent: an upper bound of what a
/// walk visits. One pass over the nodes.
fn check_tree(bytes: &[u8], node_count: u32, record_size: u16) -> Result<(), String> {
    const UNSEEN: u32 = u32::MAX;
    const OPEN: u32 = u32::MAX - 1;
    let cap = MAX_NETWORKS as u32 + 1;
    let nodes = node_count as usize;
    let broken = |node: usize| format!("node {node} lies past the end of the file");
    if nodes == 0 {
        return Err("the tree has no nodes".into());
    }
    let mut leaves = vec![UNSEEN; nodes];
    // (node, whether its children are counted)
    let mut stack = vec![(0usize, false)];
    while let Some((node, done)) = stack.pop() {
        let kids = [0, 1].map(|side| child(bytes, record_size, node, side));
        let [Some(left), Some(right)] = kids else {
            return Err(broken(node));
        };
        if done {
            let count = |c: usize| if c >= nodes { 1 } else { leaves[c] };
            leaves[node] = count(left).saturating_add(count(right)).min(cap);
            continue;
        }
        if leaves[node] != UNSEEN {
            continue; // reached twice before it was expanded: counted once done
        }
        leaves[node] = OPEN;
        stack.push((node, true));
        for c in [right, left] {
            if c < nodes {
                match leaves[c] {
                    UNSEEN => stack.push((c, false)),
                    OPEN => return Err(format!("node {node} leads back to node {c} (a cycle)")),
                    _ => {}
                }
            }
        }
    }
    match leaves.first() {
        Some(&n) if n <= MAX_NETWORKS as u32 => Ok(()),
        _ => Err(format!(
            "the tree unfolds into more than {MAX_NETWORKS} networks (nodes shared between \
             branches): not a database this reader accepts"
        )),
    }
}

#[cfg(test)]
mod tests;
