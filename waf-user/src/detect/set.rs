//! Which patterns of a set match a text: the question a `regex::RegexSet`
//! answers, with the forward automata only.
//!
//! `RegexSet` builds a full meta regex: the forward NFA and a reverse NFA
//! (for finding where a match starts, which a set never asks), each several
//! megabytes for the engine's larger sets, about a fifth of the daemon's
//! idle memory. This keeps the forward NFA, a lazy DFA over it (with the
//! literal prefilter the meta regex would use) and the PikeVM over the same
//! NFA for when the lazy DFA gives up (its cache cleared too often). Same
//! syntax (bytes, no Unicode classes), same match semantics (every pattern
//! that matches anywhere).

use std::panic::{RefUnwindSafe, UnwindSafe};

use regex_automata::{
    Input, MatchKind, PatternSet,
    hybrid::dfa::{self, DFA},
    nfa::thompson::{self, WhichCaptures, pikevm::PikeVM},
    util::{pool::Pool, prefilter::Prefilter, syntax},
};

/// Per thread: the lazy DFA's and the PikeVM's caches, and the set of
/// patterns a search found (cleared after each search that found any).
type Caches = (dfa::Cache, thompson::pikevm::Cache, PatternSet);
type MakeCaches = Box<dyn Fn() -> Caches + Send + Sync + UnwindSafe + RefUnwindSafe>;

/// A compiled set of patterns.
pub struct PatternMatcher {
    dfa: DFA,
    vm: PikeVM,
    caches: Pool<Caches, MakeCaches>,
    len: usize,
    /// No pattern matches a text shorter than this.
    min_len: usize,
}

impl std::fmt::Debug for PatternMatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PatternMatcher")
            .field("patterns", &self.len)
            .finish()
    }
}

impl PatternMatcher {
    /// Compiles `patterns` (regex syntax over bytes, no Unicode), the NFA
    /// bounded by `size_limit` bytes and the lazy DFA's cache by
    /// `cache_capacity`.
    pub fn new<P: AsRef<str>>(
        patterns: &[P],
        size_limit: usize,
        cache_capacity: usize,
    ) -> Result<Self, String> {
        let syntax = syntax::Config::new().unicode(false).utf8(false);
        let hirs = syntax::parse_many_with(patterns, &syntax).map_err(|e| e.to_string())?;
        let nfa = thompson::Compiler::new()
            .configure(
                thompson::Config::new()
                    .utf8(false)
                    .nfa_size_limit(Some(size_limit))
                    .which_captures(WhichCaptures::None),
            )
            .build_many_from_hir(&hirs)
            .map_err(|e| e.to_string())?;
        let pre = Prefilter::from_hirs_prefix(MatchKind::All, &hirs);
        // As the meta regex configures its lazy DFA, forward only.
        let dfa = DFA::builder()
            .configure(
                DFA::config()
                    .match_kind(MatchKind::All)
                    .prefilter(pre.clone())
                    .specialize_start_states(pre.is_some())
                    .unicode_word_boundary(true)
                    .cache_capacity(cache_capacity)
                    .minimum_cache_clear_count(Some(3))
                    .minimum_bytes_per_state(Some(10)),
            )
            .build_from_nfa(nfa.clone())
            .map_err(|e| e.to_string())?;
        let vm = PikeVM::builder()
            .configure(PikeVM::config().match_kind(MatchKind::All).prefilter(pre))
            .build_from_nfa(nfa)
            .map_err(|e| e.to_string())?;
        let (d, v) = (dfa.clone(), vm.clone());
        let n = patterns.len();
        let make: MakeCaches =
            Box::new(move || (d.create_cache(), v.create_cache(), PatternSet::new(n)));
        let min_len = hirs
            .iter()
            .map(|h| h.properties().minimum_len().unwrap_or(usize::MAX))
            .min()
            .unwrap_or(usize::MAX);
        Ok(Self {
            min_len,
            len: patterns.len(),
            dfa,
            vm,
            caches: Pool::new(make),
        })
    }

    /// The indexes of the patterns that match somewhere in `text`, in
    /// increasing order.
    pub fn matches(&self, text: &[u8]) -> Vec<usize> {
        let mut out = Vec::new();
        self.search(text, false, &mut |i| out.push(i));
        out
    }

    /// Calls `each` with the index of every pattern that matches somewhere
    /// in `text`, in increasing order (allocates nothing when none does).
    pub fn for_each_match(&self, text: &[u8], each: &mut dyn FnMut(usize)) {
        self.search(text, false, each);
    }

    fn search(&self, text: &[u8], vm_only: bool, each: &mut dyn FnMut(usize)) {
        if text.len() < self.min_len {
            return;
        }
        let input = Input::new(text);
        let mut c = self.caches.get();
        let (dc, vc, set) = &mut *c;
        // Most texts match no pattern: a search that stops at the first
        // match state says so for less than the overlapping one, which
        // follows every pattern to the end.
        if !vm_only && let Ok(None) = self.dfa.try_search_fwd(dc, &input.clone().earliest(true)) {
            return;
        }
        if vm_only
            || self
                .dfa
                .try_which_overlapping_matches(dc, &input, set)
                .is_err()
        {
            set.clear();
            self.vm.which_overlapping_matches(vc, &input, set);
        }
        if !set.is_empty() {
            for p in set.iter() {
                each(p.as_usize());
            }
            set.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use regex::bytes::RegexSetBuilder;

    use super::*;

    const PATTERNS: &[&str] = &[
        r"(?i)union\s+select",
        r"<script\b",
        r"\.\./",
        r"(?i)\bor\b\s*\d+\s*=\s*\d+",
        r"%00",
        r"a+b",
        r"(?-u:\xac\xed)",
        r"^GET",
        r"x$",
        r"",
    ];

    fn reference(text: &[u8]) -> Vec<usize> {
        RegexSetBuilder::new(PATTERNS)
            .unicode(false)
            .build()
            .unwrap()
            .matches(text)
            .iter()
            .collect()
    }

    #[test]
    fn agrees_with_regex_set_on_examples() {
        let m = PatternMatcher::new(PATTERNS, 64 << 20, 16 << 20).unwrap();
        for text in [
            &b"1' UNION  SELECT a"[..],
            b"<script>",
            b"../../etc/passwd",
            b"x or 1=1",
            b"\xac\xed\x00\x05",
            b"GET / x",
            b"",
            b"aaab",
        ] {
            assert_eq!(m.matches(text), reference(text), "{text:?}");
            let mut vm = Vec::new();
            m.search(text, true, &mut |i| vm.push(i));
            assert_eq!(vm, reference(text), "{text:?}");
        }
    }

    #[test]
    fn texts_at_and_below_the_shortest_pattern() {
        let m = PatternMatcher::new(&["abc", "de", "f+g"], 64 << 20, 16 << 20).unwrap();
        assert_eq!(m.matches(b"d"), Vec::<usize>::new());
        assert_eq!(m.matches(b"de"), vec![1]);
        assert_eq!(m.matches(b"fg"), vec![2]);
        assert_eq!(m.matches(b"abcde"), vec![0, 1]);
        assert_eq!(m.matches(b""), Vec::<usize>::new());
    }

    #[test]
    fn bad_patterns_are_refused() {
        assert!(PatternMatcher::new(&["(unclosed"], 64 << 20, 16 << 20).is_err());
        assert!(PatternMatcher::new(&["a{1000}{1000}"], 1 << 10, 16 << 20).is_err());
    }

    proptest! {
        #[test]
        fn agrees_with_regex_set(text in proptest::collection::vec(
            prop_oneof![
                Just(b'a'), Just(b'b'), Just(b'.'), Just(b'/'), Just(b' '), Just(b'x'),
                Just(b'<'), Just(b'='), Just(b'1'), Just(0xac), Just(0xed), Just(b'%'),
                Just(b'0'), any::<u8>(),
            ],
            0..200,
        )) {
            let m = PatternMatcher::new(PATTERNS, 64 << 20, 16 << 20).unwrap();
            let want = reference(&text);
            prop_assert_eq!(m.matches(&text), want.clone());
            // The fallback the lazy DFA gives way to answers the same.
            let mut vm = Vec::new();
            m.search(&text, true, &mut |i| vm.push(i));
            prop_assert_eq!(vm, want);
            // And again: the set kept between searches starts empty.
            prop_assert_eq!(m.matches(&text), reference(&text));
        }
    }
}
