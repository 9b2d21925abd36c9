//! Crawler verification by forward-confirmed reverse DNS (FCrDNS).
//!
//! A request whose user agent names a known crawler
//! ([`crate::challenge::crawler_name`]) is exempt from the bot score only
//! when its address proves to belong to that crawler's operator:
//!
//! 1. **Reverse**: a PTR lookup of the client's address (`10.2.0.192.in-addr.arpa`)
//!    gives a host name, which must lie under one of the crawler's official
//!    domains (Googlebot: `*.googlebot.com`, `*.google.com`,
//!    `*.googleusercontent.com`; Bingbot: `*.search.msn.com`; …), on a label
//!    boundary (`evilgooglebot.com` is not under `googlebot.com`).
//! 2. **Forward**: an A (IPv4) or AAAA (IPv6) lookup of that host name must
//!    give back the client's address.
//!
//! Both steps are needed. The PTR records of an address are served by
//! whoever holds its reverse zone, that is by the owner of the address: an
//! attacker can make the PTR of their own servers say
//! `crawl-1-2-3-4.googlebot.com`, so the reverse step alone proves nothing.
//! The forward step asks the zone of the claimed name, which only its real
//! owner (Google) controls: it maps the name back to the client's address
//! only if the operator says that address is theirs. And the forward step
//! alone cannot start anywhere: it needs the name, which only the reverse
//! step gives.
//!
//! Crawlers whose operators publish no reverse DNS convention (DuckDuckBot,
//! GPTBot, facebookexternalhit, …: they publish address lists instead) are
//! never verified here, and score as bots.
//!
//! Bounded: at most [`MAX_PTR_NAMES`] PTR names are tried, names longer
//! than 253 bytes are skipped, each DNS query waits at most the `timeout`
//! given to [`CrawlerVerifier::new`] (one attempt), and a whole verification
//! at most twice that. Any error, refusal or timeout is "not verified".
//! Verdicts are cached per address and crawler: a success for an hour, a
//! failure for ten minutes, at most [`CACHE_CAPACITY`] entries.

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    sync::{Mutex, PoisonError},
    time::{Duration, Instant},
};

use anyhow::Context as _;
use hickory_resolver::{
    Resolver, TokioResolver,
    config::{NameServerConfig, ResolveHosts, ResolverConfig},
    net::runtime::TokioRuntimeProvider,
    proto::rr::{Name, RData, RecordType},
};

/// The most PTR names of one address tried.
pub const MAX_PTR_NAMES: usize = 4;
/// The longest host name (RFC 1035, without the root's dot).
pub const MAX_NAME_LEN: usize = 253;
/// The most verdicts cached.
pub const CACHE_CAPACITY: usize = 65_536;
/// How long a success is remembered.
pub const POSITIVE_TTL: Duration = Duration::from_secs(3600);
/// How long a failure is remembered.
pub const NEGATIVE_TTL: Duration = Duration::from_secs(600);
/// The DNS responses the resolver itself caches.
const RESOLVER_CACHE: u64 = 4096;

/// Each crawler's official reverse DNS domains, with their leading dot (a
/// PTR name must be a strict subdomain). A crawler not listed is never
/// verified.
const DOMAINS: &[(&str, &[&str])] = &[
    (
        "googlebot",
        &[".googlebot.com", ".google.com", ".googleusercontent.com"],
    ),
    ("bingbot", &[".search.msn.com"]),
    ("yandex", &[".yandex.ru", ".yandex.net", ".yandex.com"]),
    ("baiduspider", &[".baidu.com", ".baidu.jp"]),
    ("applebot", &[".applebot.apple.com"]),
    ("yahoo", &[".crawl.yahoo.net"]),
    ("petalbot", &[".petalsearch.com"]),
    ("seznambot", &[".seznam.cz"]),
    ("amazonbot", &[".crawl.amazonbot.amazon"]),
];

/// The official domains of `crawler` (empty: never verified).
pub fn domains(crawler: &str) -> &'static [&'static str] {
    DOMAINS
        .iter()
        .find(|(name, _)| *name == crawler)
        .map_or(&[], |(_, d)| d)
}

/// Whether host name `name` (any case, with or without its trailing dot)
/// lies strictly under one of `crawler`'s official domains, on a label
/// boundary. Names over 253 bytes, with empty labels, or with characters
/// other than letters, digits, `-` and `_` never match.
pub fn name_matches(name: &str, crawler: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty()
        || name.len() > MAX_NAME_LEN
        || name.split('.').any(|label| {
            label.is_empty()
                || label.len() > 63
                || !label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
    {
        return false;
    }
    let name = name.to_ascii_lowercase();
    // The suffix starts with a dot: it ends on a label boundary, and the
    // length check leaves at least one label before it.
    domains(crawler)
        .iter()
        .any(|suffix| name.len() > suffix.len() && name.ends_with(suffix))
}

/// A DNS name as plain text (`a.b.c`, no trailing dot), or None when a
/// label holds bytes a host name cannot have (dots or escapes inside a
/// label would make the text lie about where the labels end).
fn host_text(name: &Name) -> Option<String> {
    let mut out = String::new();
    for label in name.iter() {
        if label.is_empty()
            || !label
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
        {
            return None;
        }
        if !out.is_empty() {
            out.push('.');
        }
        out.push_str(std::str::from_utf8(label).ok()?);
        if out.len() > MAX_NAME_LEN {
            return None;
        }
    }
    (!out.is_empty()).then_some(out)
}

/// Which DNS server answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResolverChoice {
    /// The host's (`/etc/resolv.conf`).
    System,
    /// This one nameserver, over UDP.
    Server(SocketAddr),
}

/// A cached verdict.
#[derive(Clone, Copy, Debug)]
struct Verdict {
    verified: bool,
    expires: Instant,
}

/// Verifies crawlers by forward-confirmed reverse DNS ([module doc](self)),
/// with a cache. Shared by every connection (`Send + Sync`).
pub struct CrawlerVerifier {
    resolver: TokioResolver,
    timeout: Duration,
    cache: Mutex<HashMap<(IpAddr, &'static str), Verdict>>,
    capacity: usize,
}

impl std::fmt::Debug for CrawlerVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CrawlerVerifier")
            .field("timeout", &self.timeout)
            .field("cached", &self.cached_len())
            .finish_non_exhaustive()
    }
}

impl CrawlerVerifier {
    /// A verifier asking `resolver`, each query waiting at most `timeout`
    /// (one attempt; the resolver's own cache is bounded, without the hosts
    /// file). Fails when `System` and the host's resolver config cannot be
    /// read. Needs no runtime to build; [`verify`](Self::verify) runs on
    /// Tokio.
    pub fn new(resolver: ResolverChoice, timeout: Duration) -> anyhow::Result<Self> {
        let mut builder = match resolver {
            ResolverChoice::System => TokioResolver::builder_tokio()
                .context("reading the system's resolver config (/etc/resolv.conf)")?,
            ResolverChoice::Server(addr) => {
                let mut ns = NameServerConfig::udp(addr.ip());
                for c in &mut ns.connections {
                    c.port = addr.port();
                }
                Resolver::builder_with_config(
                    ResolverConfig::from_name_servers(vec![ns]),
                    TokioRuntimeProvider::default(),
                )
            }
        };
        let opts = builder.options_mut();
        opts.timeout = timeout;
        opts.attempts = 1;
        opts.cache_size = RESOLVER_CACHE;
        opts.positive_max_ttl = Some(POSITIVE_TTL);
        opts.negative_max_ttl = Some(NEGATIVE_TTL);
        opts.use_hosts_file = ResolveHosts::Never;
        let resolver = builder.build().context("building the DNS resolver")?;
        Ok(Self {
            resolver,
            timeout,
            cache: Mutex::default(),
            capacity: CACHE_CAPACITY,
        })
    }

    /// Whether `ip` belongs to `crawler` (a [`crate::challenge::crawler_name`]):
    /// a cached verdict, else the reverse then forward lookups. Never
    /// fails: any error or timeout is false.
    pub async fn verify(&self, ip: IpAddr, crawler: &'static str) -> bool {
        if domains(crawler).is_empty() {
            return false;
        }
        let ip = ip.to_canonical();
        if let Some(v) = self.cached(ip, crawler, Instant::now()) {
            return v;
        }
        let verified =
            tokio::time::timeout(self.timeout.saturating_mul(2), self.resolve(ip, crawler))
                .await
                .unwrap_or(false);
        self.remember(ip, crawler, verified, Instant::now());
        verified
    }

    /// The reverse lookup, then the forward lookup of each matching name.
    async fn resolve(&self, ip: IpAddr, crawler: &'static str) -> bool {
        let Ok(ptr) = self.resolver.reverse_lookup(Name::from(ip)).await else {
            return false;
        };
        let names: Vec<String> = ptr
            .answers()
            .iter()
            .filter_map(|r| match &r.data {
                RData::PTR(p) => Some(&p.0),
                _ => None,
            })
            .take(MAX_PTR_NAMES)
            .filter_map(host_text)
            .filter(|n| name_matches(n, crawler))
            .collect();
        for name in names {
            if self.forward_has(&name, ip).await {
                return true;
            }
        }
        false
    }

    /// Whether the A (or AAAA) records of `name` hold `ip`.
    async fn forward_has(&self, name: &str, ip: IpAddr) -> bool {
        // Fully qualified: no search domain is appended.
        let Ok(fqdn) = Name::from_ascii(format!("{name}.")) else {
            return false;
        };
        let rtype = match ip {
            IpAddr::V4(_) => RecordType::A,
            IpAddr::V6(_) => RecordType::AAAA,
        };
        let Ok(found) = self.resolver.lookup(fqdn, rtype).await else {
            return false;
        };
        found.answers().iter().any(|r| match (&r.data, ip) {
            (RData::A(a), IpAddr::V4(want)) => a.0 == want,
            (RData::AAAA(a), IpAddr::V6(want)) => a.0 == want,
            _ => false,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(IpAddr, &'static str), Verdict>> {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// An unexpired cached verdict.
    fn cached(&self, ip: IpAddr, crawler: &'static str, now: Instant) -> Option<bool> {
        self.lock()
            .get(&(ip, crawler))
            .filter(|v| v.expires > now)
            .map(|v| v.verified)
    }

    /// Caches a verdict; when full, drops the expired ones first, and if
    /// still full does not cache.
    fn remember(&self, ip: IpAddr, crawler: &'static str, verified: bool, now: Instant) {
        let ttl = if verified { POSITIVE_TTL } else { NEGATIVE_TTL };
        let mut cache = self.lock();
        let key = (ip, crawler);
        if cache.len() >= self.capacity && !cache.contains_key(&key) {
            cache.retain(|_, v| v.expires > now);
            if cache.len() >= self.capacity {
                return;
            }
        }
        cache.insert(
            key,
            Verdict {
                verified,
                expires: now + ttl,
            },
        );
    }

    /// How many verdicts are cached (expired ones included).
    pub fn cached_len(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use std::{
        collections::HashMap,
        net::{Ipv4Addr, Ipv6Addr, UdpSocket},
        sync::{
            Arc,
            atomic::{AtomicUsize, Ordering},
        },
    };

    use hickory_resolver::proto::{
        op::{Message, OpCode, ResponseCode},
        rr::{
            Record,
            rdata::{A, AAAA, PTR},
        },
    };

    use super::*;

    #[test]
    fn names_match_on_a_label_boundary() {
        assert!(name_matches("crawl-66-249-66-1.googlebot.com", "googlebot"));
        assert!(name_matches(
            "rate-limited-proxy-66-249-90-77.google.com",
            "googlebot"
        ));
        assert!(name_matches("x.y.googleusercontent.com", "googlebot"));
        // Not a subdomain, or not on a label boundary.
        assert!(!name_matches("googlebot.com", "googlebot"));
        assert!(!name_matches("evilgooglebot.com", "googlebot"));
        assert!(!name_matches("crawl.evilgooglebot.com", "googlebot"));
        assert!(!name_matches(
            "crawl.googlebot.com.evil.example",
            "googlebot"
        ));
        assert!(!name_matches("crawl.googlebot.co", "googlebot"));
        assert!(!name_matches(".googlebot.com", "googlebot"));
        assert!(!name_matches("a..googlebot.com", "googlebot"));
        assert!(!name_matches("", "googlebot"));
        assert!(!name_matches(".", "googlebot"));
        // Another crawler's domain.
        assert!(!name_matches("msnbot-1-2-3-4.search.msn.com", "googlebot"));
        assert!(name_matches("msnbot-1-2-3-4.search.msn.com", "bingbot"));
        assert!(!name_matches("msnbot.msn.com", "bingbot"));
        assert!(name_matches("spider-5-255-253-1.yandex.com", "yandex"));
        assert!(name_matches(
            "baiduspider-1-2-3-4.crawl.baidu.jp",
            "baiduspider"
        ));
        assert!(name_matches("17-58-101-179.applebot.apple.com", "applebot"));
        assert!(!name_matches("x.apple.com", "applebot"));
    }

    #[test]
    fn matching_ignores_case_and_a_trailing_dot() {
        assert!(name_matches("Crawl-1.GoogleBot.COM", "googlebot"));
        assert!(name_matches("crawl-1.googlebot.com.", "googlebot"));
        assert!(name_matches("CRAWL-1.GOOGLEBOT.COM.", "googlebot"));
        assert!(!name_matches("crawl-1.googlebot.com..", "googlebot"));
        assert!(!name_matches("EVILGOOGLEBOT.COM.", "googlebot"));
    }

    #[test]
    fn odd_or_long_names_and_unlisted_crawlers_never_match() {
        let long = format!("{}.googlebot.com", vec!["a".repeat(60); 4].join("."));
        assert!(long.len() > MAX_NAME_LEN);
        assert!(!name_matches(&long, "googlebot"));
        let fits = format!("{}.googlebot.com", vec!["a".repeat(58); 4].join("."));
        assert!(fits.len() <= MAX_NAME_LEN);
        assert!(name_matches(&fits, "googlebot"));
        assert!(!name_matches(
            &format!("{}.googlebot.com", "a".repeat(64)),
            "googlebot"
        ));
        assert!(!name_matches("a b.googlebot.com", "googlebot"));
        assert!(!name_matches("a\\.googlebot.com", "googlebot"));
        assert!(!name_matches("crawl.googlebot.com\0", "googlebot"));
        assert!(!name_matches("crawl-1.googlebot.com", "duckduckbot"));
        assert!(!name_matches("crawl-1.googlebot.com", "nobody"));
        assert!(domains("duckduckbot").is_empty());
        assert!(domains("gptbot").is_empty());
    }

    #[test]
    fn the_table_uses_the_scores_crawler_names() {
        for (ua, name) in [
            ("Mozilla/5.0 (compatible; Googlebot/2.1)", "googlebot"),
            ("Mozilla/5.0 (compatible; bingbot/2.0)", "bingbot"),
            ("Mozilla/5.0 (compatible; YandexBot/3.0)", "yandex"),
            ("Mozilla/5.0 (compatible; Baiduspider/2.0)", "baiduspider"),
            ("Mozilla/5.0 (Macintosh) Applebot/0.1", "applebot"),
            ("Mozilla/5.0 (compatible; Yahoo! Slurp)", "yahoo"),
            ("Mozilla/5.0 (compatible; PetalBot)", "petalbot"),
            ("Mozilla/5.0 (compatible; SeznamBot/4.0)", "seznambot"),
            ("Mozilla/5.0 (compatible; Amazonbot/0.1)", "amazonbot"),
        ] {
            assert_eq!(crate::challenge::crawler_name(ua), Some(name), "{ua}");
            assert!(!domains(name).is_empty(), "{name}");
        }
        assert_eq!(DOMAINS.len(), 9);
        for (_, suffixes) in DOMAINS {
            for s in *suffixes {
                assert!(s.starts_with('.') && s.len() > 3, "{s}");
                assert_eq!(*s, s.to_ascii_lowercase());
            }
        }
    }

    #[test]
    fn a_label_with_a_dot_in_it_is_not_a_host_name() {
        let plain = Name::from_ascii("crawl-1.googlebot.com.").unwrap();
        assert_eq!(host_text(&plain).as_deref(), Some("crawl-1.googlebot.com"));
        // One label "x.googlebot" under "com": not under googlebot.com.
        let tricky = Name::from_labels([&b"x.googlebot"[..], &b"com"[..]]).unwrap();
        assert_eq!(host_text(&tricky), None);
        assert_eq!(host_text(&Name::root()), None);
    }

    /// A DNS server on 127.0.0.1 answering from tables; a query for a name
    /// in neither table is never answered (the resolver times out).
    struct FakeDns {
        addr: SocketAddr,
        queries: Arc<AtomicUsize>,
    }

    impl FakeDns {
        fn start(ptr: &[(IpAddr, &str)], fwd: &[(&str, IpAddr)]) -> Self {
            let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
            let addr = sock.local_addr().unwrap();
            let ptr: HashMap<Name, Name> = ptr
                .iter()
                .map(|(ip, n)| (Name::from(*ip), Name::from_ascii(n).unwrap()))
                .collect();
            let fwd: Vec<(Name, IpAddr)> = fwd
                .iter()
                .map(|(n, ip)| (Name::from_ascii(n).unwrap(), *ip))
                .collect();
            let queries = Arc::new(AtomicUsize::new(0));
            let count = queries.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 1500];
                loop {
                    let Ok((n, from)) = sock.recv_from(&mut buf) else {
                        return;
                    };
                    let Ok(q) = Message::from_vec(&buf[..n]) else {
                        continue;
                    };
                    count.fetch_add(1, Ordering::SeqCst);
                    let Some(query) = q.queries.first().cloned() else {
                        continue;
                    };
                    let qname = query.name().to_lowercase();
                    let mut answers = Vec::new();
                    match query.query_type() {
                        RecordType::PTR => {
                            if let Some(target) = ptr.get(&qname) {
                                answers.push(Record::from_rdata(
                                    query.name().clone(),
                                    60,
                                    RData::PTR(PTR(target.clone())),
                                ));
                            }
                        }
                        RecordType::A | RecordType::AAAA => {
                            for (name, ip) in &fwd {
                                if name.to_lowercase() == qname {
                                    let data = match ip {
                                        IpAddr::V4(a) => RData::A(A(*a)),
                                        IpAddr::V6(a) => RData::AAAA(AAAA(*a)),
                                    };
                                    if data.record_type() == query.query_type() {
                                        answers.push(Record::from_rdata(
                                            query.name().clone(),
                                            60,
                                            data,
                                        ));
                                    }
                                }
                            }
                        }
                        _ => {}
                    }
                    let known = ptr.contains_key(&qname)
                        || fwd.iter().any(|(n, _)| n.to_lowercase() == qname);
                    if !known {
                        continue; // silence: a timeout
                    }
                    let mut resp = Message::response(q.metadata.id, OpCode::Query);
                    resp.metadata.recursion_desired = q.metadata.recursion_desired;
                    resp.metadata.recursion_available = true;
                    resp.metadata.authoritative = true;
                    resp.metadata.response_code = ResponseCode::NoError;
                    resp.add_query(query);
                    resp.add_answers(answers);
                    let _ = sock.send_to(&resp.to_vec().unwrap(), from);
                }
            });
            Self { addr, queries }
        }

        fn verifier(&self) -> CrawlerVerifier {
            CrawlerVerifier::new(
                ResolverChoice::Server(self.addr),
                Duration::from_millis(300),
            )
            .unwrap()
        }
    }

    fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(a, b, c, d))
    }

    #[tokio::test]
    async fn forward_confirmed_reverse_dns() {
        let good = v4(66, 249, 66, 1);
        let fake = v4(203, 0, 113, 5);
        let moved = v4(203, 0, 113, 6);
        let silent = v4(203, 0, 113, 7);
        let v6 = IpAddr::V6("2001:4860:4801:10::1".parse::<Ipv6Addr>().unwrap());
        let dns = FakeDns::start(
            &[
                (good, "crawl-66-249-66-1.googlebot.com."),
                (fake, "crawl.googlebot.com.evil.example."),
                (moved, "crawl-x.googlebot.com."),
                (v6, "crawl-v6.googlebot.com."),
            ],
            &[
                ("crawl-66-249-66-1.googlebot.com.", good),
                ("crawl.googlebot.com.evil.example.", fake),
                ("crawl-x.googlebot.com.", v4(66, 249, 66, 2)),
                ("crawl-v6.googlebot.com.", v6),
            ],
        );
        let v = dns.verifier();
        assert!(v.verify(good, "googlebot").await);
        // The same address as IPv4-mapped IPv6.
        let mapped = match good {
            IpAddr::V4(a) => IpAddr::V6(a.to_ipv6_mapped()),
            IpAddr::V6(_) => unreachable!(),
        };
        assert!(v.verify(mapped, "googlebot").await);
        assert!(v.verify(v6, "googlebot").await);
        // Right name, wrong crawler.
        assert!(!v.verify(good, "bingbot").await);
        assert!(!v.verify(fake, "googlebot").await);
        assert!(!v.verify(moved, "googlebot").await);
        let start = Instant::now();
        assert!(!v.verify(silent, "googlebot").await);
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "{:?}",
            start.elapsed()
        );
        // Crawlers without published rDNS: no query at all.
        let before = dns.queries.load(Ordering::SeqCst);
        assert!(!v.verify(good, "duckduckbot").await);
        assert_eq!(dns.queries.load(Ordering::SeqCst), before);
        // Cached: no more queries, same verdicts.
        assert!(v.verify(good, "googlebot").await);
        assert!(!v.verify(moved, "googlebot").await);
        assert!(!v.verify(silent, "googlebot").await);
        assert_eq!(dns.queries.load(Ordering::SeqCst), before);
    }

    #[tokio::test]
    async fn an_unreachable_server_is_not_verified() {
        // A bound socket that never answers.
        let quiet = UdpSocket::bind("127.0.0.1:0").unwrap();
        let v = CrawlerVerifier::new(
            ResolverChoice::Server(quiet.local_addr().unwrap()),
            Duration::from_millis(200),
        )
        .unwrap();
        let start = Instant::now();
        assert!(!v.verify(v4(66, 249, 66, 1), "googlebot").await);
        assert!(start.elapsed() < Duration::from_secs(2));
        assert_eq!(v.cached_len(), 1);
    }

    #[test]
    fn the_cache_expires_and_is_bounded() {
        let mut v = CrawlerVerifier::new(
            ResolverChoice::Server("127.0.0.1:9".parse().unwrap()),
            Duration::from_millis(100),
        )
        .unwrap();
        v.capacity = 2;
        let t0 = Instant::now();
        let (a, b, c) = (v4(192, 0, 2, 1), v4(192, 0, 2, 2), v4(192, 0, 2, 3));
        v.remember(a, "googlebot", true, t0);
        v.remember(b, "googlebot", false, t0);
        assert_eq!(v.cached(a, "googlebot", t0), Some(true));
        assert_eq!(v.cached(b, "googlebot", t0), Some(false));
        assert_eq!(v.cached(a, "bingbot", t0), None);
        // Full of live entries: not cached.
        v.remember(c, "googlebot", true, t0);
        assert_eq!(v.cached(c, "googlebot", t0), None);
        // A failure expires after 10 minutes, a success after an hour.
        let later = t0 + NEGATIVE_TTL + Duration::from_secs(1);
        assert_eq!(v.cached(b, "googlebot", later), None);
        assert_eq!(v.cached(a, "googlebot", later), Some(true));
        // Full, but one is expired: dropped to make room.
        v.remember(c, "googlebot", true, later);
        assert_eq!(v.cached(c, "googlebot", later), Some(true));
        assert_eq!(v.cached_len(), 2);
        let much_later = t0 + POSITIVE_TTL + Duration::from_secs(1);
        assert_eq!(v.cached(a, "googlebot", much_later), None);
        // Updating a present key works when full.
        v.remember(a, "googlebot", false, later);
        assert_eq!(v.cached(a, "googlebot", later), Some(false));
    }
}
