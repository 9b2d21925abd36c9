//! The literal screen in front of the rules. Each rule is split into
//! units, one per branch of its top-level alternation, and each unit gets
//! factors: sets of literals such that every text the unit matches holds
//! (ASCII case folded) a literal of every factor, found from the unit's own
//! syntax tree. A unit keeps its rarest factor of literals longer than a
//! byte (more would grow the automaton, which costs every value more than
//! the few extra candidates they would spare) and every factor of single
//! bytes (looked up in the text's byte table). One Aho-Corasick pass over a
//! value finds the units whose factors all occur; only those run, each as
//! its own small regex. A clean value costs one automaton pass instead of a
//! walk through a lazy DFA built over hundreds of rules at once (whose
//! states are products of every rule's NFA states, so it keeps
//! determinizing new ones).
//!
//! Sound by construction: a factor is taken only from a part of the pattern
//! every match must pass through (each part of a concatenation, a
//! repetition of at least one, every branch of an alternation), and the
//! pattern is case-folded first, so a folded literal is in the folded text
//! whenever the unit matches. Units without a factor, or whose factors are
//! all common, go to a residual set matched as before.

use regex_syntax::hir::literal::{ExtractKind, Extractor};
use regex_syntax::hir::{Class, ClassBytes, ClassBytesRange, Hir, HirKind, Repetition};

/// At most this many literals per rule (more: the rule runs unscreened).
const MAX_LITERALS: usize = 4096;

/// Literals differing only in their last byte, this many or more, are cut
/// to their shared part.
const COLLAPSE: usize = 3;

/// Units none of whose factors is rarer than this are not screened: they
/// would be candidates for most values, and run cheaper together in one
/// set than one by one.
const COMMON_ODDS: f64 = 0.0005;

/// One branch of a rule, screened by its factors.
#[derive(Debug, Clone)]
pub struct Unit {
    /// The branch's own pattern; None when the rule has one branch.
    pub pattern: Option<String>,
    /// Literal sets that must all occur (lowercase); empty: unscreened. A
    /// factor without literals: the unit never matches.
    pub factors: Vec<Vec<Vec<u8>>>,
}

/// Splits `pattern` into units and finds their factors.
pub fn units(pattern: &str) -> Result<Vec<Unit>, String> {
    let hir = parse(pattern)?;
    let mut top = &hir;
    while let HirKind::Capture(c) = top.kind() {
        top = &c.sub;
    }
    let branches: Vec<&Hir> = match top.kind() {
        HirKind::Alternation(v) => v.iter().collect(),
        _ => vec![top],
    };
    let single = branches.len() == 1;
    Ok(branches
        .into_iter()
        .map(|b| {
            let factors = choose(factors(&fold(b)));
            // A unit whose every factor is common would be a candidate for
            // most values: it goes with the unscreened ones.
            let rarest = factors
                .iter()
                .map(|f| factor_odds(f))
                .fold(f64::INFINITY, f64::min);
            Unit {
                pattern: (!single).then(|| b.to_string()),
                factors: if rarest < COMMON_ODDS {
                    factors
                } else {
                    Vec::new()
                },
            }
        })
        .collect())
}

/// The factors to screen with: the rarest of literals longer than a byte
/// and all of single bytes, each without literals that
/// hold another of its literals (a text with `(\t` has `(`), duplicates
/// dropped.
fn choose(all: Vec<Vec<Vec<u8>>>) -> Vec<Vec<Vec<u8>>> {
    let mut scored: Vec<(f64, Vec<Vec<u8>>)> = all
        .into_iter()
        .map(|f| {
            let f = minimal(f);
            (factor_odds(&f), f)
        })
        .collect();
    scored.sort_by(|a, b| a.0.total_cmp(&b.0));
    scored.dedup_by(|a, b| a.1 == b.1);
    // Factors of single bytes cost little to check (a table of the bytes
    // in the text): all are kept. Of the others, the rarest.
    let (bytes, longer): (Vec<_>, Vec<_>) =
        scored.into_iter().partition(|(_, f)| is_byte_factor(f));
    longer
        .into_iter()
        .take(1)
        .chain(bytes)
        .map(|(_, f)| f)
        .collect()
}

/// The literals of `f` that hold no other literal of `f`, sorted, with
/// literals that differ only in their last byte (`abs(`, `abs `, `abs\t`)
/// cut to what they share when there are [`COLLAPSE`] or more of them.
fn minimal(mut f: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    loop {
        f.sort();
        f.dedup();
        let mut out: Vec<Vec<u8>> = Vec::new();
        let mut changed = false;
        let mut i = 0;
        while i < f.len() {
            let l = &f[i];
            let stem = &l[..l.len().saturating_sub(1)];
            let mut j = i + 1;
            while j < f.len() && f[j].len() == l.len() && f[j].starts_with(stem) {
                j += 1;
            }
            if l.len() > 1 && j - i >= COLLAPSE {
                out.push(stem.to_vec());
                changed = true;
            } else {
                out.extend(f[i..j].iter().cloned());
            }
            i = j;
        }
        f = out;
        if !changed {
            break;
        }
    }
    f.sort_by(|a, b| a.len().cmp(&b.len()).then_with(|| a.cmp(b)));
    let mut out: Vec<Vec<u8>> = Vec::new();
    for l in f {
        let held = out.iter().any(|k| l.windows(k.len()).any(|w| w == &k[..]));
        if !held {
            out.push(l);
        }
    }
    out.sort();
    out
}

/// Literal sets every match of `h` holds one literal of.
fn factors(h: &Hir) -> Vec<Vec<Vec<u8>>> {
    match h.kind() {
        HirKind::Capture(c) => factors(&c.sub),
        HirKind::Repetition(r) if r.min >= 1 => {
            let mut out = factors(&r.sub);
            out.extend(prefixes(h));
            out
        }
        HirKind::Concat(v) => {
            let mut out: Vec<_> = v.iter().flat_map(factors).collect();
            out.extend(best(
                (0..v.len()).filter_map(|i| prefixes(&Hir::concat(v[i..].to_vec()))),
            ));
            out
        }
        _ => required(h).into_iter().collect(),
    }
}

/// Parses `pattern` as the rules are compiled (bytes, no Unicode).
fn parse(pattern: &str) -> Result<Hir, String> {
    regex_syntax::ParserBuilder::new()
        .unicode(false)
        .utf8(false)
        .build()
        .parse(pattern)
        .map_err(|e| e.to_string())
}

/// The pattern with every byte replaced by its ASCII lowercase: whenever the
/// pattern matches a text, this matches the lowercased text.
fn fold(h: &Hir) -> Hir {
    match h.kind() {
        HirKind::Empty => Hir::empty(),
        HirKind::Literal(l) => Hir::literal(l.0.to_ascii_lowercase()),
        HirKind::Class(Class::Bytes(c)) => {
            let mut set = [false; 256];
            for r in c.ranges() {
                for b in r.start()..=r.end() {
                    set[usize::from(b.to_ascii_lowercase())] = true;
                }
            }
            Hir::class(Class::Bytes(byte_class(&set)))
        }
        // Not produced without Unicode; any byte keeps the result sound.
        HirKind::Class(Class::Unicode(_)) => Hir::class(Class::Bytes(byte_class(&[true; 256]))),
        HirKind::Look(l) => Hir::look(*l),
        HirKind::Repetition(r) => Hir::repetition(Repetition {
            min: r.min,
            max: r.max,
            greedy: r.greedy,
            sub: Box::new(fold(&r.sub)),
        }),
        HirKind::Capture(c) => fold(&c.sub),
        HirKind::Concat(v) => Hir::concat(v.iter().map(fold).collect()),
        HirKind::Alternation(v) => Hir::alternation(v.iter().map(fold).collect()),
    }
}

fn byte_class(set: &[bool; 256]) -> ClassBytes {
    let mut ranges = Vec::new();
    let mut b = 0usize;
    while b < 256 {
        if set[b] {
            let start = b;
            while b + 1 < 256 && set[b + 1] {
                b += 1;
            }
            ranges.push(ClassBytesRange::new(start as u8, b as u8));
        }
        b += 1;
    }
    ClassBytes::new(ranges)
}

/// The best literal set every match of `h` must contain, if any.
fn required(h: &Hir) -> Option<Vec<Vec<u8>>> {
    match h.kind() {
        HirKind::Empty | HirKind::Look(_) => None,
        HirKind::Literal(_) | HirKind::Class(_) => prefixes(h),
        HirKind::Capture(c) => required(&c.sub),
        HirKind::Repetition(r) if r.min >= 1 => {
            best([prefixes(h), required(&r.sub)].into_iter().flatten())
        }
        HirKind::Repetition(_) => None,
        HirKind::Alternation(v) => {
            let mut all = Vec::new();
            for sub in v {
                all.extend(required(sub)?);
                if all.len() > MAX_LITERALS {
                    return None;
                }
            }
            Some(all)
        }
        HirKind::Concat(v) => {
            // Each suffix of the concatenation starts inside every match, so
            // its prefix literals are in every match; so are each part's own.
            let candidates = (0..v.len())
                .map(|i| prefixes(&Hir::concat(v[i..].to_vec())))
                .chain(v.iter().map(required));
            best(candidates.flatten())
        }
    }
}

/// The finite prefix literals of `h` (each match starts with one), if
/// there are few enough and none is empty.
fn prefixes(h: &Hir) -> Option<Vec<Vec<u8>>> {
    let seq = Extractor::new()
        .kind(ExtractKind::Prefix)
        .limit_total(MAX_LITERALS)
        .extract(h);
    let lits = seq.literals()?;
    if lits.iter().any(|l| l.as_bytes().is_empty()) || lits.len() > MAX_LITERALS {
        return None;
    }
    Some(lits.iter().map(|l| l.as_bytes().to_vec()).collect())
}

/// The most selective set: the least likely to occur in ordinary text
/// ([`factor_odds`]).
fn best(sets: impl Iterator<Item = Vec<Vec<u8>>>) -> Option<Vec<Vec<u8>>> {
    sets.map(|s| (factor_odds(&s), s))
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, s)| s)
}

/// Rough odds of a factor (a set of literals) in ordinary web text: the sum
/// of its literals' odds.
pub fn factor_odds(f: &[Vec<u8>]) -> f64 {
    f.iter().map(|l| literal_odds(l)).sum()
}

/// Whether a factor is of single bytes only (looked up in a text's byte
/// table rather than searched for).
pub fn is_byte_factor(f: &[Vec<u8>]) -> bool {
    !f.is_empty() && f.iter().all(|l| l.len() == 1)
}

/// Rough odds of a literal at one position of ordinary web text (prose,
/// identifiers, URLs), as the product of its bytes' odds.
fn literal_odds(l: &[u8]) -> f64 {
    l.iter().map(|&b| byte_odds(b)).product()
}

/// Rough odds of a (lowercased) byte in ordinary web text.
fn byte_odds(b: u8) -> f64 {
    match b {
        b' ' => 0.12,
        b'e' | b't' | b'a' | b'o' | b'i' | b'n' | b's' | b'r' => 0.05,
        b'a'..=b'z' => 0.02,
        b'0'..=b'9' => 0.02,
        b'/' | b'.' | b'-' | b'_' | b'=' | b',' | b'&' | b'%' | b':' => 0.01,
        b'(' | b')' | b';' | b'+' | b'\'' | b'"' | b'?' => 0.004,
        b'\n' | b'\t' | b'\r' => 0.002,
        0x21..=0x7e => 0.001,
        _ => 0.0002,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lowercase literals, one of which occurs in the ASCII-lowercased text of
    /// every match of `pattern`; None when there is no useful set (the pattern
    /// can match without any literal, or the set is too large). An empty set
    /// means the pattern never matches.
    fn required_literals(pattern: &str) -> Result<Option<Vec<Vec<u8>>>, String> {
        let hir = fold(&parse(pattern)?);
        Ok(required(&hir).map(|mut lits| {
            lits.sort();
            lits.dedup();
            lits
        }))
    }

    fn lits(p: &str) -> Option<Vec<String>> {
        required_literals(p).unwrap().map(|v| {
            v.into_iter()
                .map(|l| String::from_utf8_lossy(&l).into_owned())
                .collect()
        })
    }

    /// Whether some literal of `p` occurs in the lowercased `text`.
    fn screened(p: &str, text: &str) -> bool {
        let lits = required_literals(p).unwrap().expect("literals");
        let low = text.to_ascii_lowercase();
        lits.iter()
            .any(|l| low.as_bytes().windows(l.len()).any(|w| w == &l[..]))
    }

    #[test]
    fn literals_of_common_shapes() {
        let union = lits(r"(?i)\bunion\b\s+select").unwrap();
        assert!(union == ["union"] || union == ["select"], "{union:?}");
        assert_eq!(lits(r"[^a-z]or[^a-z]"), Some(vec!["or".into()]));
        assert_eq!(lits(r"\w+\s*="), Some(vec!["=".into()]));
        assert_eq!(lits(r"(?:a|\d+)x"), Some(vec!["x".into()]));
        assert_eq!(lits(r"ABC"), Some(vec!["abc".into()]));
        assert!(screened(r"(?:sleep|benchmark)\s*\(", "x SLEEP (5)"));
        assert!(screened(r"(?:sleep|benchmark)\s*\(", "BenchMark\t("));
        assert!(!screened(r"(?:sleep|benchmark)\s*\(", "sleek bench"));
    }

    #[test]
    fn no_literals_where_a_match_needs_none() {
        assert_eq!(lits(r"\w*"), None);
        assert_eq!(lits(r"a?b?"), None);
        assert_eq!(lits(r"^$"), None);
        assert_eq!(lits(r"(?:abc|\w)"), None);
        assert_eq!(lits(r"[\x00-\x7f]{3}"), None);
    }

    #[test]
    fn a_pattern_that_cannot_match_has_an_empty_set() {
        assert_eq!(lits(r"[^\x00-\xff]"), Some(vec![]));
    }
}
