//! The screen against the rules run one by one.

use std::io::Read as _;

use proptest::prelude::*;

use super::*;

/// What `scan` must report: every rule of the target (every plain one
/// when `plain`) run alone over its view (case-sensitive rules only where
/// `needs_case` lets them).
fn oracle(c: &Compiled, bit: usize, n: &Normalized, plain: bool) -> Vec<(&'static str, Vec<u8>)> {
    let mut out = Vec::new();
    for (i, r) in c.rules.iter().enumerate() {
        if r.targets & (1 << bit) == 0 || (plain && !r.plain) {
            continue;
        }
        let text: &[u8] = match r.view {
            View::Dec if !needs_case(&n.dec) => continue,
            View::Dec => &n.dec,
            View::Low => &n.low,
            View::Sql => n.sql(),
            View::Cmd => n.cmd(),
        };
        if let Some(m) = c.regexes[i].find(text) {
            out.push((r.id, m.as_bytes().to_vec()));
        }
    }
    out.sort();
    out
}

fn scanned(c: &Compiled, bit: usize, n: &Normalized, plain: bool) -> Vec<(&'static str, Vec<u8>)> {
    let mut out = Vec::new();
    c.scan(bit, n, plain, &mut |h| {
        out.push((h.rule.id, h.matched.to_vec()))
    });
    out.sort();
    out
}

/// The lowest and the highest paranoia (every rule).
fn engines() -> &'static [Compiled] {
    static C: std::sync::OnceLock<Vec<Compiled>> = std::sync::OnceLock::new();
    C.get_or_init(|| {
        [1, 4]
            .into_iter()
            .map(|p| Compiled::new(crate::detect::rules::all(), p).unwrap())
            .collect()
    })
}

fn check(text: &[u8]) -> Result<(), TestCaseError> {
    for c in engines() {
        // Decoded (with and without `+` as a space), and as the engine
        // reads a plain value: the full rule set, then the plain rules.
        let views = [
            Normalized::new(text, false),
            Normalized::new(text, true),
            Normalized::plain(text),
        ];
        for n in &views {
            for plain in [false, true] {
                for bit in 0..targets::COUNT {
                    prop_assert_eq!(
                        scanned(c, bit, n, plain),
                        oracle(c, bit, n, plain),
                        "text {:?} target bit {} plain {}",
                        String::from_utf8_lossy(text),
                        bit,
                        plain
                    );
                }
            }
        }
    }
    Ok(())
}

/// Every line and every `&`/`;`-separated piece of the generated
/// evasion and look-alike sets: the screen misses no rule the rules
/// alone would match.
#[test]
fn screen_agrees_with_the_rules_alone_on_the_generated_sets() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data");
    let mut texts = 0;
    for name in ["evasion.jsonl.gz", "lookalike.jsonl.gz"] {
        let mut raw = Vec::new();
        flate2::read::GzDecoder::new(std::fs::File::open(dir.join(name)).unwrap())
            .read_to_end(&mut raw)
            .unwrap();
        for (i, line) in raw.split(|&b| b == b'\n').enumerate() {
            // A sample: every family, encoding and placement still shows.
            if i % 12 != 0 || line.is_empty() {
                continue;
            }
            let v: serde_json::Value = serde_json::from_slice(line).unwrap();
            let req = crate::detect::lines::text_bytes(v["raw"].as_str().unwrap());
            for piece in req.split(|&b| b == b'\n' || b == b'&' || b == b'?') {
                check(piece).unwrap();
                texts += 1;
            }
        }
    }
    assert!(texts > 2_000, "{texts} texts");
}

const TOKENS: &[&str] = &[
    "select",
    "union",
    " ",
    "'",
    "\"",
    "(",
    ")",
    "--",
    "#",
    "/*",
    "*/",
    "or",
    "1=1",
    "<",
    ">",
    "script",
    "onerror",
    "=",
    "javascript:",
    "/",
    "..",
    "etc",
    "passwd",
    "|",
    ";",
    "&&",
    "$(",
    "`",
    "{{",
    "}}",
    "${",
    "}",
    "jndi:",
    "ldap",
    "cat",
    "id",
    "ls",
    "-la",
    "\n",
    "\r",
    "%0a",
    "%27",
    "&#x3c;",
    "\\",
    "*",
    "?",
    "eval",
    "system",
    "http://",
    "169.254.169.254",
    "php://",
    "@",
    ":",
    ",",
    "sleep",
    "0x41",
    "char",
    "a",
    "B",
    "9",
    "\u{ff1c}",
    "+ADw-",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn screen_agrees_with_the_rules_alone(parts in proptest::collection::vec(
        prop_oneof![
            proptest::sample::select(TOKENS).prop_map(|t| t.as_bytes().to_vec()),
            proptest::collection::vec(any::<u8>(), 0..4),
        ],
        0..24,
    )) {
        check(&parts.concat())?;
    }
}

/// Pieces of what the case-sensitive rules look for, and of what they
/// must not be skipped for.
const CASE_TOKENS: &[&str] = &[
    "O:8:\"",
    "C:1:\"",
    "a:2:{",
    "s:3:\"",
    "i:1;",
    ":",
    "\"",
    "{",
    "}",
    ";",
    "stdClass",
    "+ADw-",
    "+AD4-",
    "+ACI-",
    "+ADs-",
    "rO0AB",
    "KztAAU",
    "Cs7QAF",
    "ACED0005",
    "aced0005",
    "\u{ac}\u{ed}",
    "\u{bc}",
    "\u{be}",
    "script",
    "cnVudGlt",
    "J1bnRp",
    "ydW50aW1l",
    "==",
    "/",
    "https://",
    "cos",
    "cposix",
    "csubprocess",
    "system",
    "popen",
    "(",
    ".",
    "p0",
    "0001000000",
    "ffffffff",
    "FFFFFFFF",
    "01",
    "12:30",
    "A",
    "Z",
    "a",
    "0",
    "9",
    " ",
    "\n",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]
    /// `needs_case` never skips a text a case-sensitive rule matches.
    #[test]
    fn case_sensitive_rules_never_match_where_needs_case_skips(parts in proptest::collection::vec(
        prop_oneof![
            proptest::sample::select(CASE_TOKENS).prop_map(|t| t.as_bytes().to_vec()),
            proptest::collection::vec(any::<u8>(), 0..3),
        ],
        0..16,
    )) {
        let text = parts.concat();
        if !needs_case(&text) {
            let c = &engines()[1];
            for (i, r) in c.rules.iter().enumerate() {
                if r.view == View::Dec {
                    prop_assert!(!c.regexes[i].is_match(&text), "{} matches {:?}", r.id, text);
                }
            }
        }
    }
}

/// The same on every case-sensitive rule's own literals, and on the
/// gadget names in base64 that `java-gadget-base64` is built from.
#[test]
fn case_sensitive_rules_need_case_on_their_own_examples() {
    let c = &engines()[1];
    let mut texts: Vec<Vec<u8>> = CASE_TOKENS.iter().map(|t| t.as_bytes().to_vec()).collect();
    texts.extend([
        b"O:8:\"stdClass\":1:{s:1:\"a\";i:1;}".to_vec(),
        b"a:1:{s:1:\"x\";}".to_vec(),
        b"+ADw-script+AD4-".to_vec(),
        b"cposix\nsystem\np0\n(Vid\np1\ntp2\nRp3\n.".to_vec(),
        b"0001000000ffffffff01000000000000000c02".to_vec(),
    ]);
    for (i, r) in c.rules.iter().enumerate() {
        if r.view != View::Dec {
            continue;
        }
        for piece in r.pattern.split('|') {
            let literal: Vec<u8> = piece.bytes().filter(u8::is_ascii_alphanumeric).collect();
            texts.push(literal);
        }
        for t in &texts {
            if c.regexes[i].is_match(t) {
                assert!(
                    needs_case(t),
                    "{} matches {:?} but needs_case skips it",
                    r.id,
                    t
                );
            }
        }
    }
}

/// The build's parallel map keeps the items' order, whatever the thread
/// that mapped each, for no item, one, and many of uneven cost.
#[test]
fn par_map_keeps_order() {
    assert!(super::par_map(&[] as &[u32], |x| *x).is_empty());
    assert_eq!(super::par_map(&[7u32], |x| x + 1), vec![8]);
    let items: Vec<u64> = (0..1000).collect();
    let out = super::par_map(&items, |&x| {
        // Uneven work: some items take far longer than others.
        std::hint::black_box((0..(x % 7) * 1000).fold(x, |a, i| a.wrapping_mul(31) ^ i));
        x * x
    });
    assert_eq!(out, items.iter().map(|x| x * x).collect::<Vec<_>>());
}

/// Plain texts a rule's own alternatives spell: each alternative with its
/// escapes read as the characters they stand for and everything but
/// `[A-Za-z0-9_.-]` dropped.
fn plain_spellings(pattern: &str) -> Vec<Vec<u8>> {
    pattern
        .split('|')
        .map(|alt| {
            let alt = alt
                .replace("\\.", ".")
                .replace("\\-", "-")
                .replace("\\d+", "1")
                .replace("\\d", "1")
                .replace("\\w+", "a")
                .replace("\\w", "a")
                .replace("\\b", "")
                .replace("\\s*", "")
                .replace("(?:", "");
            alt.bytes()
                .filter(|&b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
                .collect::<Vec<u8>>()
        })
        .filter(|t| !t.is_empty())
        .collect()
}

/// A value of `[A-Za-z0-9_.-]` alone meets the plain rules only: a rule
/// that matches such a value spelled from its own alternatives is plain
/// (`class.module.classLoader.resources...`, Spring4Shell's parameter
/// names, went unread), or listed here with the reason it is not.
#[test]
fn rules_that_match_plain_values_are_plain() {
    // Rules whose plain spellings are words a value of prose or a search
    // holds alone (`and`, `execute`, `mkfifo`, `instance_eval`,
    // `c99shell`), names other plain rules read (`lfi-os-file` reads
    // `wp-config.php`, `java-gadget` `runtime.getruntime`,
    // `node-code-value` `process.env`, `sqli-db-identifier`
    // `dbms_pipe.receive_message`), or dots alone, which read no path.
    const NOT_PLAIN: &[&str] = &[
        "cmdi-shell-path",
        "code-injection-path",
        "java-runtime-exec",
        "lfi-os-file-shell",
        "lfi-path-traversal",
        "node-code-shape",
        "ruby-injection",
        "sqli-fragment-alone",
        "sqli-leading-statement",
        "sqli-logic-literal-compare",
        "sqli-operator-alone",
        "sqli-separator-statement",
        "sqli-statement-fragment",
        "sqli-time-function",
        "webshell-marker",
    ];
    let c = &engines()[1];
    let mut found = Vec::new();
    for (i, r) in c.rules.iter().enumerate() {
        if r.plain || NOT_PLAIN.contains(&r.id) {
            continue;
        }
        for t in plain_spellings(&r.pattern) {
            let text = match r.view {
                View::Dec => t.clone(),
                _ => t.to_ascii_lowercase(),
            };
            if c.regexes[i].is_match(&text) && r.stands(&text) {
                found.push(format!("{} {:?}", r.id, String::from_utf8_lossy(&t)));
            }
        }
    }
    assert!(found.is_empty(), "not plain: {found:#?}");
}
