//! The libinjection tokenizers (SQL and HTML5), through the `libinjectionrs`
//! port, with cheap prefilters so most values never reach them. A panic in
//! the port is contained and reported as a suspicious value.

use std::panic::{AssertUnwindSafe, catch_unwind};

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

/// Whether a decoded value is worth the SQL tokenizer: it must hold a quote,
/// a parenthesis, a comment or operator character, or spaces between words.
pub fn sqli_candidate(dec: &[u8]) -> bool {
    dec.len() >= 2
        && dec.iter().any(|&b| {
            matches!(
                b,
                b'\''
                    | b'"'
                    | b'`'
                    | b'('
                    | b')'
                    | b'#'
                    | b';'
                    | b'='
                    | b'<'
                    | b'>'
                    | b'|'
                    | b'&'
                    | b'*'
                    | b'-'
                    | b'/'
                    | b'@'
                    | b' '
                    | b'\n'
                    | b'\t'
                    | b'\\'
            )
        })
}

/// Whether a decoded value is worth the HTML tokenizer.
pub fn xss_candidate(dec: &[u8]) -> bool {
    memchr::memchr3(b'<', b'>', b'=', dec).is_some()
        || memchr::memmem::find(dec, b":").is_some() && dec.len() > 10
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
