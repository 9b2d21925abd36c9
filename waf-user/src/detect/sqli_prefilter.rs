//! The SQL tokenizer's prefilter: whether a value is worth libinjection's
//! SQL tokenizer at all. It holds a quote or a comment, an SQL word, or a
//! logical word (`or`, `and`, `like`) with a comparison somewhere in the
//! value. The whole test is one regular language, walked by one lazy DFA
//! with no prefilter (on text, a prefilter's candidates come every few
//! bytes, and each restart costs more than the walk) that stops at the
//! first match: about four instructions a byte, where the tests one by one
//! (byte searches, a word splitter and an Aho-Corasick pass) cost about 35
//! a byte of a long clean text. Lazy, because the fully built DFA of this
//! language takes about 60 ms to determinize (the comparison anywhere in
//! the value multiplies the states of the words), where the few states a
//! real value visits cost nothing to build as it goes.

use std::panic::{RefUnwindSafe, UnwindSafe};
use std::sync::OnceLock;

use aho_corasick::AhoCorasick;
use regex_automata::hybrid::dfa::{Cache, DFA};
use regex_automata::nfa::thompson;
use regex_automata::util::{pool::Pool, syntax};
use regex_automata::{Input, MatchKind};

/// SQL words that make a value without quotes or comments worth tokenizing.
const SQL_WORDS: &[&str] = &[
    "select",
    "union",
    "insert",
    "update",
    "delete",
    "drop",
    "sleep",
    "benchmark",
    "waitfor",
    "exec",
    "declare",
    "having",
    "order by",
    "group by",
    "information_schema",
    "char(",
    "concat",
    "0x",
    " xor ",
    "||",
    "&&",
    " div ",
    "procedure",
    "case when",
    "cast(",
    "convert(",
    "@@",
    "rlike",
    "regexp",
    "substr",
    "ascii(",
    "version(",
    "database(",
    "user(",
];

/// The candidate test as one pattern over the lowercased value: a quote, a
/// backquote or `#` (`marks`); `--` or `/*`; an SQL word (as written,
/// lowercase); or a logical word, whole (no ASCII letter or digit on either
/// side, any case), with one of `=`, `<`, `>` before or after it. A
/// comparison byte may itself be the word's edge (`1 or=1`, `1=or 1`).
fn pattern(marks: &str) -> String {
    let words: Vec<String> = SQL_WORDS.iter().map(|w| regex_syntax::escape(w)).collect();
    let words = words.join("|");
    let logic = "(?i:or|and|like)";
    let edge = "[^a-zA-Z0-9]";
    format!(
        "[{marks}]|--|/\\*|{words}\
         |(?:^|{edge}){logic}(?:[=<>]|[^a-zA-Z0-9=<>](?s:.)*[=<>])\
         |[=<>](?:(?s:.)*{edge})?{logic}(?:{edge}|$)"
    )
}

type MakeCache = Box<dyn Fn() -> Cache + Send + Sync + UnwindSafe + RefUnwindSafe>;

/// The prefilter's lazy DFA and a cache of its states per thread.
struct Candidates {
    dfa: DFA,
    caches: Pool<Cache, MakeCache>,
}

/// The marks that make any value a candidate.
const MARKS: &str = "'\"`#";

/// The marks that make a JSON document's text a candidate: its double
/// quotes are its syntax, and the strings they delimit are read alone.
const MARKS_IN_JSON: &str = "'`#";

/// The prefilter's automaton (None only if it failed to build: then every
/// value is a candidate).
fn candidates() -> Option<&'static Candidates> {
    static C: OnceLock<Option<Candidates>> = OnceLock::new();
    C.get_or_init(|| build(MARKS)).as_ref()
}

/// The automaton of a JSON document's text.
fn candidates_in_json() -> Option<&'static Candidates> {
    static C: OnceLock<Option<Candidates>> = OnceLock::new();
    C.get_or_init(|| build(MARKS_IN_JSON)).as_ref()
}

fn build(marks: &str) -> Option<Candidates> {
    let dfa = DFA::builder()
        .syntax(syntax::Config::new().unicode(false).utf8(false))
        .thompson(thompson::Config::new().utf8(false))
        .configure(DFA::config().match_kind(MatchKind::LeftmostFirst))
        .build(&pattern(marks))
        .ok()?;
    let d = dfa.clone();
    let make: MakeCache = Box::new(move || d.create_cache());
    Some(Candidates {
        dfa,
        caches: Pool::new(make),
    })
}

/// The SQL word matcher for text of any case.
fn sql_words_any_case() -> Option<&'static AhoCorasick> {
    static AC: OnceLock<Option<AhoCorasick>> = OnceLock::new();
    AC.get_or_init(|| {
        AhoCorasick::builder()
            .kind(Some(aho_corasick::AhoCorasickKind::DFA))
            .ascii_case_insensitive(true)
            .prefilter(false)
            .build(SQL_WORDS)
            .ok()
    })
    .as_ref()
}

/// Whether a value is worth the SQL tokenizer: it holds a quote or a
/// comment, an SQL word, or a logical word next to a comparison. `low` is
/// the value decoded, lowercased and with whitespace folded.
pub fn sqli_candidate(low: &[u8]) -> bool {
    candidate(candidates(), low)
}

/// [`sqli_candidate`] of the whole text of a JSON document whose keys and
/// strings are read alone: a double quote, the document's syntax, does not
/// make it one (a single quote still does: pasted raw into a query,
/// `["x'or","<>password"]` is SQL).
pub fn sqli_candidate_in_json(low: &[u8]) -> bool {
    candidate(candidates_in_json(), low)
}

fn candidate(c: Option<&Candidates>, low: &[u8]) -> bool {
    if low.len() < 2 {
        return false;
    }
    c.is_none_or(|c| {
        let mut cache = c.caches.get();
        // A search that gave up counts as a match.
        !matches!(
            c.dfa
                .try_search_fwd(&mut cache, &Input::new(low).earliest(true)),
            Ok(None)
        )
    })
}

/// Whether a value holds one of the SQL words of the prefilter.
pub fn has_sql_word(b: &[u8]) -> bool {
    sql_words_any_case().is_none_or(|ac| ac.is_match(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The tests one by one, as the prefilter read before its automaton.
    fn reference(low: &[u8]) -> bool {
        reference_with(low, MARKS.as_bytes())
    }

    /// [`reference`] with other marks.
    fn reference_with(low: &[u8], marks: &[u8]) -> bool {
        fn has_pair(s: &[u8], a: u8, b: u8) -> bool {
            s.windows(2).any(|w| w == [a, b])
        }
        fn has_logic_word(s: &[u8]) -> bool {
            s.split(|b| !b.is_ascii_alphanumeric()).any(|w| {
                w.eq_ignore_ascii_case(b"or")
                    || w.eq_ignore_ascii_case(b"and")
                    || w.eq_ignore_ascii_case(b"like")
            })
        }
        if low.len() < 2 {
            return false;
        }
        let strong = low.iter().any(|b| marks.contains(b))
            || has_pair(low, b'-', b'-')
            || has_pair(low, b'/', b'*');
        let logic = low.iter().any(|b| matches!(b, b'=' | b'<' | b'>')) && has_logic_word(low);
        strong
            || logic
            || SQL_WORDS
                .iter()
                .any(|w| low.windows(w.len()).any(|x| x == w.as_bytes()))
    }

    #[test]
    fn the_automata_build() {
        assert!(candidates().is_some(), "{}", pattern(MARKS));
        assert!(candidates_in_json().is_some());
        assert!(sql_words_any_case().is_some());
    }

    #[test]
    fn reads_each_kind_of_candidate() {
        for (v, want) in [
            ("1 or 1=1", true),
            ("1 or=1", true),
            ("1=or 1", true),
            ("a=b and", true),
            ("x_or_y<2", true),
            ("\u{e9}like\u{e9}>", true),
            ("x or y", false),
            ("for=1", false),
            ("more<b>", false),
            ("orand=1", false),
            ("it's", true),
            ("a#b", true),
            ("a--", true),
            ("a/*", true),
            ("a/b*c", false),
            ("select", true),
            ("selec", false),
            ("char(", true),
            (" xor ", true),
            ("xor", false),
            ("the quick brown fox <b>bold</b>", false),
            ("o", false),
        ] {
            assert_eq!(sqli_candidate(v.as_bytes()), want, "{v:?}");
            assert_eq!(reference(v.as_bytes()), want, "reference: {v:?}");
        }
    }

    #[test]
    fn a_json_documents_double_quotes_are_its_syntax() {
        for (v, alone, in_json) in [
            (r#"{"a":"b","c":[1,2]}"#, true, false),
            (r#"["x'or","<>password"]"#, true, true),
            (r#"{"q":"1 union all"}"#, true, true),
            (r#"{"q":"1 or 1=1"}"#, true, true),
            (r#"{"href":"/a#top"}"#, true, true),
            (r#"{"t":"`id`"}"#, true, true),
            (r#"{"c":"x--y"}"#, true, true),
        ] {
            let v = v.as_bytes();
            assert_eq!(sqli_candidate(v), alone, "{v:?}");
            assert_eq!(sqli_candidate_in_json(v), in_json, "{v:?}");
        }
    }

    fn fragments() -> impl Strategy<Value = Vec<u8>> {
        let parts: Vec<&'static [u8]> = vec![
            b"or",
            b"OR",
            b"oR",
            b"and",
            b"AnD",
            b"like",
            b"LIKE",
            b"=",
            b"<",
            b">",
            b" ",
            b"_",
            b"x",
            b"1",
            b"'",
            b"\"",
            b"`",
            b"#",
            b"-",
            b"/",
            b"*",
            b"select",
            b"union",
            b"||",
            b"&&",
            b"0x",
            b" xor ",
            b" div ",
            b"char(",
            b"order by",
            b"\xc3\xa9",
            b"\x80",
            b"\xff",
            b"\0",
            b"\n",
            b"o",
            b"r",
            b"an",
            b"d",
            b"lik",
            b"e",
        ];
        proptest::collection::vec(proptest::sample::select(parts), 0..12).prop_map(|v| v.concat())
    }

    proptest! {
        /// The automaton answers as the tests one by one do.
        #[test]
        fn answers_as_the_tests_one_by_one(v in fragments()) {
            prop_assert_eq!(sqli_candidate(&v), reference(&v), "{:?}", String::from_utf8_lossy(&v));
        }

        /// On any bytes too.
        #[test]
        fn answers_as_the_tests_one_by_one_on_any_bytes(v in proptest::collection::vec(any::<u8>(), 0..64)) {
            prop_assert_eq!(sqli_candidate(&v), reference(&v));
        }

        /// In a JSON document's text, as the tests one by one with every
        /// mark but the double quote; never a candidate where the value
        /// alone is not.
        #[test]
        fn in_json_answers_as_the_tests_without_the_double_quote(v in fragments()) {
            let json = sqli_candidate_in_json(&v);
            prop_assert_eq!(json, reference_with(&v, b"'`#"), "{:?}", String::from_utf8_lossy(&v));
            prop_assert!(!json || sqli_candidate(&v));
        }

        #[test]
        fn in_json_on_any_bytes(v in proptest::collection::vec(any::<u8>(), 0..64)) {
            prop_assert_eq!(sqli_candidate_in_json(&v), reference_with(&v, b"'`#"));
        }
    }
}
