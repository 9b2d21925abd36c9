//! The libinjection tokenizers (SQL and HTML5), through the `libinjectionrs`
//! port, with cheap prefilters so most values never reach them. A panic in
//! the port is contained and reported as a suspicious value.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::OnceLock;

use aho_corasick::AhoCorasick;

/// Longest input handed to libinjection (its cost is linear, but large).
const MAX_INPUT: usize = 64 * 1024;

/// What libinjection said.
pub enum Outcome {
    /// No injection.
    Clean,
    /// Injection, with the SQL fingerprint if any.
    Injection(String),
    /// The tokenizer panicked on this input.
    Failed,
}

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

/// The SQL word matcher (None only if it failed to build: then every value
/// is a candidate).
fn sql_words() -> Option<&'static AhoCorasick> {
    static AC: OnceLock<Option<AhoCorasick>> = OnceLock::new();
    AC.get_or_init(|| {
        AhoCorasick::builder()
            .kind(Some(aho_corasick::AhoCorasickKind::DFA))
            .ascii_case_insensitive(true)
            .build(SQL_WORDS)
            .ok()
    })
    .as_ref()
}

/// Whether a decoded value is worth the SQL tokenizer: it holds a quote or a
/// comment, an SQL word, or a logical word next to a comparison.
pub fn sqli_candidate(dec: &[u8]) -> bool {
    if dec.len() < 2 {
        return false;
    }
    let strong = dec.iter().any(|&b| matches!(b, b'\'' | b'"' | b'`' | b'#'))
        || dec.windows(2).any(|w| w == b"--" || w == b"/*");
    // `1 or 1=1`: a logical word next to a comparison.
    let logic = memchr::memchr3(b'=', b'<', b'>', dec).is_some()
        && (contains_word(dec, b"or") || contains_word(dec, b"and") || contains_word(dec, b"like"));
    strong || logic || sql_words().is_none_or(|ac| ac.is_match(dec))
}

/// Whether `word` occurs in `s` as a whole word (ASCII, any case).
fn contains_word(s: &[u8], word: &[u8]) -> bool {
    s.windows(word.len()).enumerate().any(|(i, w)| {
        w.eq_ignore_ascii_case(word)
            && (i == 0 || !s[i - 1].is_ascii_alphanumeric())
            && s.get(i + word.len())
                .is_none_or(|c| !c.is_ascii_alphanumeric())
    })
}

/// Whether a value holds one of the SQL words of the prefilter.
pub fn has_sql_word(b: &[u8]) -> bool {
    sql_words().is_none_or(|ac| ac.is_match(b))
}

/// Whether a decoded value is worth the HTML tokenizer: a tag start, or an
/// attribute break-out (a quote and an `=`), or a script URL.
pub fn xss_candidate(dec: &[u8]) -> bool {
    let tag = dec.windows(2).any(|w| {
        w[0] == b'<' && (w[1].is_ascii_alphabetic() || matches!(w[1], b'/' | b'!' | b'?' | b'%'))
    });
    let attr = memchr::memchr(b'=', dec).is_some()
        && dec.iter().any(|&b| matches!(b, b'\'' | b'"' | b'`'));
    tag || attr || dec.windows(7).any(|w| w.eq_ignore_ascii_case(b"script:"))
}

/// Runs the SQL tokenizer.
pub fn sqli(dec: &[u8]) -> Outcome {
    let input = &dec[..dec.len().min(MAX_INPUT)];
    match catch_unwind(AssertUnwindSafe(|| {
        let r = libinjectionrs::detect_sqli(input);
        (r.is_injection(), r.fingerprint.map(|f| f.to_string()))
    })) {
        Ok((true, fp)) => Outcome::Injection(fp.unwrap_or_default()),
        Ok((false, _)) => Outcome::Clean,
        Err(_) => Outcome::Failed,
    }
}

/// Runs the HTML5 tokenizer.
pub fn xss(dec: &[u8]) -> Outcome {
    let input = &dec[..dec.len().min(MAX_INPUT)];
    match catch_unwind(AssertUnwindSafe(|| {
        libinjectionrs::detect_xss(input).is_injection()
    })) {
        Ok(true) => Outcome::Injection(String::new()),
        Ok(false) => Outcome::Clean,
        Err(_) => Outcome::Failed,
    }
}
