//! Header and cookie values, field names, and parameter, path and
//! document values already found clean.
//!
//! A browser sends the same User-Agent, Accept, Sec-Ch-Ua and cookies
//! with every request, and its neighbours send the same headers too: in
//! the development corpus's browser requests, 95% of header bytes repeat
//! a (name, value) pair seen before; and the names of parameters, JSON keys
//! and form fields come from an application's own vocabulary. The scan of
//! a header or a cookie is a function of its name and value alone, that of
//! a field name of the name and its encoding (and of the engine, which
//! owns this cache), so a pair whose scan reported nothing is remembered
//! and its next scan skipped. A value's scan is a function of the value,
//! what it is read as (its target bits) and its encoding: these make its
//! key ([`Pair::Value`]), in a cache of its own. Only clean scans are kept: any finding, even
//! one the paranoia level or an exclusion then drops, and any check the
//! tokenizer budget refused, leaves the pair out, and the budget a clean
//! scan took is taken again on every hit (so later values see the budget
//! they would have seen). Verdicts are the same with and without the
//! cache (`tests/tests/corpus.rs` runs the sets both ways).
//!
//! Bounded: pairs of at most [`MAX_KEY`] bytes, [`SHARDS`] shards of two
//! generations each, a generation retired when it holds [`GEN_ENTRIES`]
//! pairs or [`GEN_BYTES`] bytes (at most about 4 MiB in all). A pair used
//! in the older generation moves to the newer one, so the pairs in use
//! outlive a flood of new ones. Keys are hashed with a seed drawn at
//! start, and compared whole.
//!
//! What an attacker can learn from it: whether a pair was scanned clean
//! recently, from a scan skipped (a few to a few tens of microseconds
//! less). Only the first probe of a pair tells anything (it is then
//! remembered), a network's jitter is far larger, and a pair worth
//! probing for (a session cookie) must be known to be probed.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use std::cell::Cell;
use std::hash::BuildHasher;

use super::Engine;
use crate::detect::collect::Collector;

/// Longest name + value remembered.
pub const MAX_KEY: usize = 4096;
/// Shards (a lock each).
const SHARDS: usize = 8;
/// Pairs a generation of a shard holds at most.
const GEN_ENTRIES: usize = 1024;
/// Key bytes a generation of a shard holds at most.
const GEN_BYTES: usize = 256 * 1024;

/// What a pair's clean scan took from the tokenizer budget: its runs.
pub type Takes = u32;

/// Which scan a key belongs to.
#[derive(Clone, Copy)]
#[repr(u8)]
pub enum Pair {
    Header = 1,
    Cookie = 2,
    /// A field name: the "name" is the tag of its encoding.
    Name = 3,
    /// A parameter, path or document value: the "name" is its target
    /// bits and the tag of its encoding ([`value_name`]).
    Value = 4,
}

/// The "name" of a [`Pair::Value`]: the target bits and the encoding's tag.
pub fn value_name(target: u16, tag: &str) -> [u8; 3] {
    let [a, b] = target.to_le_bytes();
    [a, b, tag.as_bytes().first().copied().unwrap_or(0)]
}

#[derive(Default)]
struct Generation {
    map: HashMap<Box<[u8]>, Takes, foldhash::fast::RandomState>,
    bytes: usize,
}

#[derive(Default)]
struct Shard {
    new: Generation,
    old: Generation,
}

/// The cache; see the module documentation.
pub struct CleanCache {
    shards: Box<[Mutex<Shard>]>,
    hasher: foldhash::fast::RandomState,
    enabled: AtomicBool,
    hits: AtomicU64,
    misses: AtomicU64,
}

/// What the cache did since the engine was built.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct CleanCacheStats {
    /// Scans skipped: the pair was found clean before.
    pub hits: u64,
    /// Pairs looked up and not found (then scanned).
    pub misses: u64,
}

impl Default for CleanCache {
    fn default() -> Self {
        CleanCache {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            hasher: foldhash::fast::RandomState::default(),
            enabled: AtomicBool::new(true),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }
}

/// Writes the key of a pair into `buf`: its part, the name's length, the
/// name, the value. False when it is too long to remember.
pub fn key(part: Pair, name: &[u8], value: &str, buf: &mut Vec<u8>) -> bool {
    let len = 3 + name.len() + value.len();
    if len > MAX_KEY {
        return false;
    }
    buf.clear();
    buf.push(part as u8);
    // MAX_KEY < 65,536: the name's length fits two bytes.
    buf.extend_from_slice(&(name.len() as u16).to_le_bytes());
    buf.extend_from_slice(name);
    buf.extend_from_slice(value.as_bytes());
    true
}

impl CleanCache {
    fn shard(&self, key: &[u8]) -> &Mutex<Shard> {
        let h = self.hasher.hash_one(key);
        &self.shards[(h >> 32) as usize % SHARDS]
    }

    /// Whether the cache is in use.
    pub fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    /// Turns the cache on or off (off: forgets everything).
    pub fn set_enabled(&self, on: bool) {
        self.enabled.store(on, Ordering::Relaxed);
        if !on {
            self.clear();
        }
    }

    /// Forgets every pair.
    pub fn clear(&self) {
        for s in self.shards.iter() {
            let mut s = s.lock().unwrap_or_else(|e| e.into_inner());
            *s = Shard::default();
        }
    }

    /// Whether a pair was found clean before; if so, `hit` gets the
    /// budget takes of its scan.
    pub fn get(&self, key: &[u8], hit: impl FnOnce(Takes)) -> bool {
        let found = self.find(key, hit);
        let counter = if found { &self.hits } else { &self.misses };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    fn find(&self, key: &[u8], hit: impl FnOnce(Takes)) -> bool {
        let mut s = self.shard(key).lock().unwrap_or_else(|e| e.into_inner());
        if let Some(&t) = s.new.map.get(key) {
            hit(t);
            return true;
        }
        let Some((k, t)) = s.old.map.remove_entry(key) else {
            return false;
        };
        hit(t);
        s.old.bytes -= k.len();
        s.insert(k, t);
        true
    }

    /// Hits and misses so far.
    pub fn stats(&self) -> CleanCacheStats {
        CleanCacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
        }
    }

    /// Remembers a pair whose scan was clean.
    pub fn put(&self, key: &[u8], takes: Takes) {
        let mut s = self.shard(key).lock().unwrap_or_else(|e| e.into_inner());
        if s.new.map.contains_key(key) {
            return;
        }
        s.insert(key.into(), takes);
    }

    /// Pairs held (both generations, every shard).
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                let s = s.lock().unwrap_or_else(|e| e.into_inner());
                s.new.map.len() + s.old.map.len()
            })
            .sum()
    }
}

thread_local! {
    /// A key buffer a thread reuses.
    static KEY: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

impl Engine {
    /// Runs `scan` on a header, a cookie, a field name or a value unless
    /// the pair was found clean before; remembers it when it is clean now.
    /// Values have a cache of their own: the ids and timestamps of a
    /// stream of requests would otherwise push out the headers and names,
    /// which repeat far more.
    pub(super) fn cached(
        &self,
        c: &mut Collector,
        part: Pair,
        name: &[u8],
        value: &str,
        scan: impl FnOnce(&Engine, &mut Collector),
    ) {
        let cache = match part {
            Pair::Value => &self.clean_values,
            Pair::Header | Pair::Cookie | Pair::Name => &self.clean,
        };
        if !cache.enabled() {
            return scan(self, c);
        }
        let mut buf = KEY.take();
        if !key(part, name, value, &mut buf) {
            KEY.set(buf);
            return scan(self, c);
        }
        if cache.get(&buf, |takes| c.replay_takes(takes)) {
            KEY.set(buf);
            return;
        }
        let mark = c.mark();
        scan(self, c);
        if let Some(takes) = c.clean_since(mark) {
            cache.put(&buf, takes);
        }
        KEY.set(buf);
    }

    /// Turns the caches of clean header and cookie values, field names and
    /// values on or off (they are on; off forgets them). Verdicts are the
    /// same either way: for measuring and testing.
    pub fn set_clean_cache(&self, on: bool) {
        self.clean.set_enabled(on);
        self.clean_values.set_enabled(on);
    }

    /// Forgets the clean header and cookie values, field names and values
    /// (a benchmark starts each pass with none).
    pub fn clear_clean_cache(&self) {
        self.clean.clear();
        self.clean_values.clear();
    }

    /// The caches' hits and misses since the engine was built (headers,
    /// cookies and names, and values, added up).
    pub fn clean_cache_stats(&self) -> CleanCacheStats {
        let (a, b) = (self.clean.stats(), self.clean_values.stats());
        CleanCacheStats {
            hits: a.hits + b.hits,
            misses: a.misses + b.misses,
        }
    }
}

impl Shard {
    fn insert(&mut self, key: Box<[u8]>, takes: Takes) {
        if self.new.map.len() >= GEN_ENTRIES || self.new.bytes + key.len() > GEN_BYTES {
            self.old = std::mem::take(&mut self.new);
        }
        self.new.bytes += key.len();
        self.new.map.insert(key, takes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::rules::targets;

    fn k(name: &str, value: &str) -> Vec<u8> {
        let mut b = Vec::new();
        assert!(key(Pair::Header, name.as_bytes(), value, &mut b));
        b
    }

    #[test]
    fn clean_pairs_are_hits_the_second_time_and_findings_never_are() {
        use crate::detect::{Action, DetectConfig};
        use crate::http::Request;
        let engine = Engine::new(&DetectConfig::default()).unwrap();
        let raw = "GET /a HTTP/1.1\r\nHost: shop\r\nAccept: text/html\r\n\
                   X-Note: 1' or '1'='1\r\nCookie: sid=abc; theme=dark\r\n\r\n";
        let req = Request::parse(raw.as_bytes(), engine.limits()).unwrap();
        let first = engine.inspect(&req, None);
        assert_eq!(first.action, Action::Block, "{first:?}");
        // The path, Host, Accept, X-Note, two cookies and their two names
        // (looked up inside the cookies' scans): all looked up, none known.
        assert_eq!(
            engine.clean_cache_stats(),
            CleanCacheStats { hits: 0, misses: 8 }
        );
        let second = engine.inspect(&req, None);
        assert_eq!(second, first);
        // The path, Host, Accept and the two cookies are hits (their
        // scans, names included, skipped); the injection is scanned again.
        assert_eq!(
            engine.clean_cache_stats(),
            CleanCacheStats { hits: 5, misses: 9 }
        );
        engine.set_clean_cache(false);
        assert_eq!(engine.inspect(&req, None), first);
        assert_eq!(
            engine.clean_cache_stats(),
            CleanCacheStats { hits: 5, misses: 9 }
        );
    }

    /// A hit takes the tokenizer budget its scan took: a later value then
    /// meets the budget it would have met without the cache.
    #[test]
    fn a_hit_takes_the_tokenizer_budget_its_scan_took() {
        use crate::detect::DetectConfig;
        use crate::detect::collect::{TOKENIZER_BUDGET, TOKENIZER_LIMIT_RULE};
        use crate::http::Request;
        let cfg = DetectConfig::default();
        let plain = Engine::new(&cfg).unwrap();
        plain.set_clean_cache(false);
        let cached = Engine::new(&cfg).unwrap();
        let rules = |v: &crate::detect::Verdict| {
            v.attacks.iter().map(|f| f.rule.clone()).collect::<Vec<_>>()
        };
        let req = |json: &str| {
            let raw = format!(
                "POST / HTTP/1.1\r\nHost: shop\r\nContent-Type: application/json\r\n\
                 Content-Length: {}\r\n\r\n{json}",
                json.len()
            );
            Request::parse(raw.as_bytes(), plain.limits()).unwrap()
        };
        // A clean value the SQL tokenizer reads (it holds a quote), and an
        // injection the tokenizer finds when it has the budget.
        let pair = r#""it's a pair""#;
        let payload = r#""1' or 1=1--""#;
        let alone = plain.inspect(&req(&format!("[{payload}]")), None);
        assert!(
            rules(&alone).contains(&"sqli-libinjection".into()),
            "{alone:?}"
        );
        // Fillers the tokenizer reads that leave one run, for the pair:
        // the injection after them is refused, and the request has the
        // finding of the limit.
        let fillers: Vec<String> = (1..TOKENIZER_BUDGET)
            .map(|i| format!(r#""it's {i}""#))
            .collect();
        let b = req(&format!("[{},{pair},{payload}]", fillers.join(",")));
        let want = plain.inspect(&b, None);
        assert!(
            !rules(&want).contains(&"sqli-libinjection".into()),
            "{want:?}"
        );
        assert!(
            rules(&want).contains(&TOKENIZER_LIMIT_RULE.into()),
            "{want:?}"
        );
        // The pair remembered from an earlier request, then the same
        // request: the same verdict.
        let _ = cached.inspect(&req(&format!("[{pair}]")), None);
        let hits = cached.clean_cache_stats().hits;
        assert_eq!(cached.inspect(&b, None), want);
        assert!(cached.clean_cache_stats().hits > hits, "the pair was a hit");
    }

    /// Values are remembered per target and encoding, apart from the
    /// headers, and an injection never is.
    #[test]
    fn clean_values_are_hits_per_target_and_encoding_and_attacks_never_are() {
        use crate::detect::{Action, DetectConfig};
        use crate::http::Request;
        let engine = Engine::new(&DetectConfig::default()).unwrap();
        let inspect = |raw: &str| {
            let req = Request::parse(raw.as_bytes(), engine.limits()).unwrap();
            engine.inspect(&req, None)
        };
        let query =
            "GET /a?id=ab+12&n=7&q=1%27%20or%20%271%27%3D%271 HTTP/1.1\r\nHost: shop\r\n\r\n";
        let first = inspect(query);
        assert_eq!(first.action, Action::Block, "{first:?}");
        // The path, three names, two values and Host: all new. `7` is
        // plain: scanned without a lookup.
        let after_first = engine.clean_cache_stats();
        assert_eq!(after_first, CleanCacheStats { hits: 0, misses: 7 });
        assert_eq!(inspect(query), first);
        // All but the injection are hits now.
        assert_eq!(
            engine.clean_cache_stats(),
            CleanCacheStats { hits: 6, misses: 8 }
        );
        assert_eq!(engine.clean_values.len(), 2, "the path and ab+12");
        // The same text as a JSON value is another key: scanned, then kept.
        let body = r#"{"id":"ab+12","n":"7"}"#;
        let json = format!(
            "POST /a HTTP/1.1\r\nHost: shop\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let before = engine.clean_cache_stats();
        assert_eq!(inspect(&json).action, Action::Pass);
        let after = engine.clean_cache_stats();
        // Path and Host hit; the two new headers, the two keys (names in
        // another encoding) and the value `ab+12` are new.
        assert_eq!(after.hits - before.hits, 2, "{after:?}");
        assert_eq!(after.misses - before.misses, 5, "{after:?}");
        assert_eq!(engine.clean_values.len(), 3);
        assert_ne!(
            value_name(targets::ARGS, "f"),
            value_name(targets::DOC, "f")
        );
        assert_ne!(
            value_name(targets::ARGS, "f"),
            value_name(targets::ARGS, "t")
        );
    }

    #[test]
    fn keys_keep_name_and_value_apart_and_long_pairs_are_not_kept() {
        // "ab" + "c" and "a" + "bc" are different pairs.
        assert_ne!(k("ab", "c"), k("a", "bc"));
        let mut b = Vec::new();
        assert!(key(Pair::Cookie, b"a", "b", &mut b));
        assert_ne!(b, k("a", "b"));
        assert!(!key(Pair::Header, b"n", &"x".repeat(MAX_KEY), &mut b));
        assert!(key(Pair::Header, b"n", &"x".repeat(MAX_KEY - 4), &mut b));
    }

    #[test]
    fn a_flood_of_new_pairs_keeps_the_cache_bounded_and_the_pairs_in_use() {
        let c = CleanCache::default();
        let hot = k("user-agent", "Mozilla/5.0");
        c.put(&hot, 7);
        for i in 0..200_000 {
            c.put(&k("x-flood", &format!("{i:0>200}")), 0);
            if i % 500 == 0 {
                let mut takes = None;
                assert!(c.get(&hot, |t| takes = Some(t)), "after {i}");
                assert_eq!(takes, Some(7), "after {i}");
            }
        }
        let bytes: usize = c
            .shards
            .iter()
            .map(|s| {
                let s = s.lock().unwrap();
                s.new.bytes + s.old.bytes
            })
            .sum();
        assert!(c.len() <= SHARDS * GEN_ENTRIES * 2, "{}", c.len());
        assert!(bytes <= SHARDS * GEN_BYTES * 2, "{bytes}");
        c.clear();
        assert_eq!(c.len(), 0);
        assert!(!c.get(&hot, |_| panic!("forgotten")));
    }
}
