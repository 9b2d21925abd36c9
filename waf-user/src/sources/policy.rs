//! A loaded source policy: the `[sources]` files read, compiled into the
//! disjoint tagged prefixes the XDP program's source-policy set holds, and
//! kept for lookups (`waf lookup`, the access log).
//!
//! Priorities, highest first, where policies overlap: networks (ASN),
//! cloud ranges, dropped countries, bogons, passed countries, addresses the
//! country database does not know. Bogons rank below the policies that drop
//! everywhere, as they drop only on the interfaces named: an address in a
//! blocked cloud range is dropped on every interface even when it is also
//! special-purpose; and above the unknown-country base, so that allow-only
//! mode with `unknown_country = "drop"` leaves private sources to
//! `block_bogons` (dropped on the interfaces named there). A prefix carries
//! one tag ([`Tag`]): the counter it is counted in.

use std::{
    collections::{HashMap, HashSet},
    fmt,
    net::IpAddr,
    path::{Path, PathBuf},
    sync::Arc,
    time::{Instant, SystemTime},
};

use ipnet::IpNet;
use waf_common::{SOURCE_TAGS, SourceEntry, source_flags};

use super::{
    SourceError, bogons,
    cloud::{self, Format},
    config::{SourcesConfig, Unknown, country_code},
    mmdb::GeoDb,
    ranges::Compiler,
};

const PRIO_UNKNOWN: u32 = 0;
const PRIO_COUNTRY_PASS: u32 = 1;
const PRIO_BOGON: u32 = 2;
const PRIO_COUNTRY: u32 = 3;
const PRIO_CLOUD: u32 = 4;
const PRIO_ASN: u32 = 5;

/// What a tag counts: `country:CN`, `asn:64500`, `cloud:aws`, `bogon`,
/// `country:unknown`; tag 0 is `other` (tags past the kernel's counter
/// array).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Tag {
    /// The counter's name.
    pub name: String,
    /// The policy it belongs to: countries, asns, cloud or bogons.
    pub policy: &'static str,
    /// Whether that policy runs in monitor mode.
    pub monitor: bool,
}

/// A file's identity for change detection: length and modification time.
type Stamp = Option<(u64, SystemTime)>;

fn stamp(path: &Path) -> Stamp {
    let m = std::fs::metadata(path).ok()?;
    Some((m.len(), m.modified().ok()?))
}

/// The `[sources]` policy, loaded and compiled.
pub struct SourcePolicy {
    cfg: SourcesConfig,
    entries: Vec<(IpNet, SourceEntry)>,
    tags: Vec<Tag>,
    country_db: Option<GeoDb>,
    asn_db: Option<GeoDb>,
    /// Every cloud range read (blocked or not), with its provider.
    cloud: Vec<(IpNet, Arc<str>)>,
    /// Bogons less the exceptions (when bogons are dropped anywhere).
    bogons: Vec<IpNet>,
    files: Vec<(PathBuf, Stamp)>,
    load_ms: u64,
}

impl fmt::Debug for SourcePolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SourcePolicy")
            .field("entries", &self.entries.len())
            .field("tags", &self.tags.len())
            .field("files", &self.files.len())
            .finish()
    }
}

/// Hands out tags by name.
struct Tags {
    list: Vec<Tag>,
    index: HashMap<String, u32>,
}

impl Tags {
    fn new() -> Self {
        Self {
            list: vec![Tag {
                name: "other".into(),
                policy: "other",
                monitor: false,
            }],
            index: HashMap::new(),
        }
    }

    /// The tag called `name`, new or not. Past the counter array, tag 0.
    fn get(&mut self, name: String, policy: &'static str, monitor: bool) -> u32 {
        if let Some(&t) = self.index.get(&name) {
            return t;
        }
        if self.list.len() >= SOURCE_TAGS as usize {
            return 0;
        }
        let t = self.list.len() as u32;
        self.index.insert(name.clone(), t);
        self.list.push(Tag {
            name,
            policy,
            monitor,
        });
        t
    }
}

fn read_text(path: &Path) -> Result<String, SourceError> {
    let bytes = std::fs::read(path).map_err(|e| SourceError::new(path, "file", e.to_string()))?;
    String::from_utf8(bytes).map_err(|e| {
        SourceError::new(
            path,
            format!("byte {}", e.utf8_error().valid_up_to()),
            "not UTF-8 text",
        )
    })
}

/// What the policies say of one address (see [`SourcePolicy::lookup`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SourceLookup {
    /// The country database's answer (ISO code).
    pub country: Option<String>,
    /// The ASN database's answer: number.
    pub asn: Option<u32>,
    /// And organisation.
    pub as_org: Option<String>,
    /// Providers whose ranges hold the address (blocked or not).
    pub providers: Vec<String>,
    /// Whether the address is a bogon (less the exceptions).
    pub bogon: bool,
    /// The compiled prefix that covers it, if a policy drops it.
    pub policy: Option<PolicyMatch>,
}

/// A policy prefix covering an address.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PolicyMatch {
    /// The prefix in the kernel set.
    pub prefix: IpNet,
    /// Its tag's name (`country:CN`...).
    pub tag: String,
    /// The policy (countries, asns, cloud, bogons).
    pub policy: String,
    /// Monitor mode: counted, not dropped.
    pub monitor: bool,
    /// Bogons: only dropped on these interfaces.
    pub only_on: Vec<String>,
}

impl SourcePolicy {
    /// Reads every file `cfg` names and compiles the policies. The config
    /// is assumed validated ([`SourcesConfig::validate`]).
    pub fn load(cfg: &SourcesConfig) -> Result<Self, SourceError> {
        let started = Instant::now();
        let mut files = Vec::new();
        let mut tags = Tags::new();
        let mut c: Compiler<Option<u32>> = Compiler::new();
        let open = |p: &Option<PathBuf>, files: &mut Vec<(PathBuf, Stamp)>| {
            p.as_ref()
                .map(|p| {
                    files.push((p.clone(), stamp(p)));
                    GeoDb::open(p)
                })
                .transpose()
        };
        let country_db = open(&cfg.country_db, &mut files)?;
        let asn_db = open(&cfg.asn_db, &mut files)?;
        if let Some(db) = &country_db {
            compile_countries(cfg, db, &mut tags, &mut c)?;
        }
        if let Some(db) = &asn_db
            && !cfg.block_asns.is_empty()
        {
            let block: HashSet<u32> = cfg.block_asns.iter().copied().collect();
            let mon = cfg.monitored("asns");
            for (net, asn) in db.asns()? {
                if block.contains(&asn) {
                    let t = tags.get(format!("asn:{asn}"), "asns", mon);
                    c.add_net(net, PRIO_ASN, Some(t));
                }
            }
        }
        let mut cloud_nets = Vec::new();
        for r in &cfg.cloud_ranges {
            files.push((r.file.clone(), stamp(&r.file)));
            let text = read_text(&r.file)?;
            let format = r.format().unwrap_or(Format::Cidr);
            let nets = cloud::parse(
                &r.file,
                &text,
                format,
                r.regions.as_deref(),
                r.services.as_deref(),
            )?;
            let provider: Arc<str> = Arc::from(r.provider.as_str());
            let blocked = cfg.block_cloud.contains(&r.provider);
            let t = blocked.then(|| {
                tags.get(
                    format!("cloud:{}", r.provider),
                    "cloud",
                    cfg.monitored("cloud"),
                )
            });
            for n in nets {
                if let Some(t) = t {
                    c.add_net(n, PRIO_CLOUD, Some(t));
                }
                cloud_nets.push((n, provider.clone()));
            }
        }
        let mut bogon_nets = Vec::new();
        if !cfg.block_bogons.is_empty() {
            let exceptions = cfg.exceptions().map_err(|e| {
                SourceError::new("config", "sources.bogon_exceptions", e.to_string())
            })?;
            let mut b: Compiler<bool> = Compiler::new();
            for n in bogons::bogons() {
                b.add_net(n, 0, true);
            }
            for n in exceptions {
                b.add_net(n, 1, false);
            }
            let t = tags.get("bogon".into(), "bogons", cfg.monitored("bogons"));
            for (n, is) in b.compile() {
                if is {
                    c.add_net(n, PRIO_BOGON, Some(t));
                    bogon_nets.push(n);
                }
            }
        }
        let list = tags.list;
        let entries = c
            .compile()
            .into_iter()
            .filter_map(|(n, t)| {
                let t = t?;
                let tag = &list[t as usize];
                let mut flags = 0;
                if tag.monitor {
                    flags |= source_flags::MONITOR;
                }
                if tag.policy == "bogons" {
                    flags |= source_flags::BOGON;
                }
                Some((n, SourceEntry { tag: t, flags }))
            })
            .collect();
        Ok(Self {
            cfg: cfg.clone(),
            entries,
            tags: list,
            country_db,
            asn_db,
            cloud: cloud_nets,
            bogons: bogon_nets,
            files,
            load_ms: started.elapsed().as_millis() as u64,
        })
    }

    /// The config it was loaded from.
    pub fn config(&self) -> &SourcesConfig {
        &self.cfg
    }

    /// The compiled prefixes, disjoint, IPv4 then IPv6 in address order.
    pub fn entries(&self) -> &[(IpNet, SourceEntry)] {
        &self.entries
    }

    /// Every tag, indexed by number (tag 0: `other`).
    pub fn tags(&self) -> &[Tag] {
        &self.tags
    }

    /// The interfaces bogons are dropped on.
    pub fn bogon_interfaces(&self) -> &[String] {
        &self.cfg.block_bogons
    }

    /// How long reading and compiling took.
    pub fn load_ms(&self) -> u64 {
        self.load_ms
    }

    /// What the files read at load look like now (length and time of
    /// each, None where one is gone): differs from [`Self::loaded_stamps`]
    /// once one changed.
    pub fn current_stamps(&self) -> Vec<Option<(u64, SystemTime)>> {
        self.files.iter().map(|(p, _)| stamp(p)).collect()
    }

    /// What the files looked like when they were read.
    pub fn loaded_stamps(&self) -> Vec<Option<(u64, SystemTime)>> {
        self.files.iter().map(|(_, s)| *s).collect()
    }

    /// The country and ASN the databases give `addr` (for logs).
    pub fn geo(&self, addr: IpAddr) -> (Option<[u8; 2]>, Option<u32>) {
        (
            self.country_db.as_ref().and_then(|d| d.country(addr)),
            self.asn_db.as_ref().and_then(|d| d.asn(addr)).map(|a| a.0),
        )
    }

    /// The compiled prefix covering `addr`, if any.
    pub fn entry_of(&self, addr: IpAddr) -> Option<(IpNet, SourceEntry)> {
        // Disjoint and sorted (IPv4 first, as `IpAddr` orders): the
        // candidate is the last prefix that starts at or before the address.
        let i = self.entries.partition_point(|(n, _)| n.network() <= addr);
        let (n, e) = *self.entries.get(i.checked_sub(1)?)?;
        n.contains(&addr).then_some((n, e))
    }

    /// What every policy says of `addr`.
    pub fn lookup(&self, addr: IpAddr) -> SourceLookup {
        let (country, asn) = (
            self.country_db.as_ref().and_then(|d| d.country(addr)),
            self.asn_db.as_ref().and_then(|d| d.asn(addr)),
        );
        let mut providers: Vec<String> = self
            .cloud
            .iter()
            .filter(|(n, _)| n.contains(&addr))
            .map(|(_, p)| p.to_string())
            .collect();
        providers.dedup();
        let policy = self.entry_of(addr).map(|(prefix, e)| {
            // Tag 0, "other", is always there.
            let tag = self.tags.get(e.tag as usize).unwrap_or(&self.tags[0]);
            PolicyMatch {
                prefix,
                only_on: if e.flags & source_flags::BOGON != 0 {
                    self.cfg.block_bogons.clone()
                } else {
                    Vec::new()
                },
                tag: tag.name.clone(),
                policy: tag.policy.into(),
                monitor: e.flags & source_flags::MONITOR != 0,
            }
        });
        SourceLookup {
            country: country.map(|c| String::from_utf8_lossy(&c).into_owned()),
            asn: asn.as_ref().map(|a| a.0),
            as_org: asn.map(|a| a.1),
            providers,
            bogon: self.bogons.iter().any(|n| n.contains(&addr)),
            policy,
        }
    }
}

/// Country prefixes: blocked countries (or, in allow-only mode, every
/// country not allowed), and addresses the database does not know when
/// they are dropped.
fn compile_countries(
    cfg: &SourcesConfig,
    db: &GeoDb,
    tags: &mut Tags,
    c: &mut Compiler<Option<u32>>,
) -> Result<(), SourceError> {
    let allow_only = !cfg.allow_countries.is_empty();
    let listed: HashSet<[u8; 2]> = if allow_only {
        &cfg.allow_countries
    } else {
        &cfg.block_countries
    }
    .iter()
    .filter_map(|s| country_code(s))
    .collect();
    let unknown_drops = cfg.unknown_country == Unknown::Drop;
    if listed.is_empty() && !unknown_drops {
        return Ok(());
    }
    let mon = cfg.monitored("countries");
    if unknown_drops {
        let t = tags.get("country:unknown".into(), "countries", mon);
        for n in ["0.0.0.0/0", "::/0"] {
            if let Ok(n) = n.parse() {
                c.add_net(n, PRIO_UNKNOWN, Some(t));
            }
        }
    }
    for (net, cc) in db.countries()? {
        let drop = listed.contains(&cc) != allow_only;
        if drop {
            let name = format!("country:{}", String::from_utf8_lossy(&cc));
            let t = tags.get(name, "countries", mon);
            c.add_net(net, PRIO_COUNTRY, Some(t));
        } else if unknown_drops {
            // Known and passed: shields it from the unknown-country base.
            c.add_net(net, PRIO_COUNTRY_PASS, None);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::config::CloudRanges;

    fn temp(name: &str, text: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("waf-policy-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn cidr(file: &Path, provider: &str) -> CloudRanges {
        CloudRanges {
            file: file.into(),
            provider: provider.into(),
            format: Some("cidr".into()),
            regions: None,
            services: None,
        }
    }

    #[test]
    fn policies_overlap_by_priority_and_bogons_keep_their_flag() {
        // A provider range over documentation space (a bogon), and one
        // excepted from the bogons.
        let f = temp("hoster.txt", "198.51.100.0/25\n203.0.113.7\n# done\n");
        let cfg = SourcesConfig {
            cloud_ranges: vec![cidr(&f, "hoster")],
            block_cloud: vec!["hoster".into()],
            block_bogons: vec!["eth0".into()],
            bogon_exceptions: vec!["203.0.113.0/24".into()],
            monitor: vec!["bogons".into()],
            ..Default::default()
        };
        let p = SourcePolicy::load(&cfg).unwrap();
        let at = |a: &str| {
            let (n, e) = p.entry_of(a.parse().unwrap()).expect(a);
            (n, p.tags()[e.tag as usize].name.clone(), e.flags)
        };
        // Dropped everywhere as the provider's, though special-purpose.
        assert_eq!(at("198.51.100.1").1, "cloud:hoster");
        assert_eq!(at("198.51.100.1").2, 0);
        // The rest of the /24 is a bogon, in monitor mode.
        let (_, tag, flags) = at("198.51.100.200");
        assert_eq!(tag, "bogon");
        assert_eq!(flags, source_flags::BOGON | source_flags::MONITOR);
        // Excepted from the bogons, but still the provider's.
        assert_eq!(at("203.0.113.7").1, "cloud:hoster");
        assert!(p.entry_of("203.0.113.8".parse().unwrap()).is_none());
        assert!(p.entry_of("8.8.8.8".parse().unwrap()).is_none());
        let l = p.lookup("203.0.113.7".parse().unwrap());
        assert_eq!(l.providers, vec!["hoster".to_string()]);
        assert!(!l.bogon);
        assert!(p.lookup("10.1.2.3".parse().unwrap()).bogon);
        // Disjoint and sorted, as the kernel set and entry_of need.
        for w in p.entries().windows(2) {
            assert!(w[0].0.broadcast() < w[1].0.network() || w[0].0.addr() < w[1].0.addr());
            assert!(!w[0].0.contains(&w[1].0.network()));
        }
    }

    #[test]
    fn a_changed_file_is_seen_and_a_broken_one_named() {
        let f = temp("list.txt", "192.0.2.0/24\n");
        let cfg = SourcesConfig {
            cloud_ranges: vec![cidr(&f, "x")],
            block_cloud: vec!["x".into()],
            ..Default::default()
        };
        let p = SourcePolicy::load(&cfg).unwrap();
        assert_eq!(p.current_stamps(), p.loaded_stamps());
        std::fs::write(&f, "192.0.2.0/24\nnot an address\n").unwrap();
        assert_ne!(p.current_stamps(), p.loaded_stamps());
        let err = SourcePolicy::load(&cfg).unwrap_err().to_string();
        assert!(err.contains("list.txt") && err.contains("line 2"), "{err}");
        std::fs::remove_file(&f).unwrap();
        let err = SourcePolicy::load(&cfg).unwrap_err().to_string();
        assert!(err.contains("list.txt"), "{err}");
    }
}
