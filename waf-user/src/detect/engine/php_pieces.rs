//! A PHP function name assembled from pieces and called at once:
//! `(sy.(st).em)(@id)`, `('sys'.'tem')('id')`, `("ex"."ec")($_GET[c])`.
//! PHP joins the pieces (bare words read as strings in old versions,
//! quoted strings in all) and calls the function the result names. The
//! rules see neither `system` nor any other name; this reads what the
//! pieces spell. No text needs a name split by `.` inside parentheses and
//! then called: a call on a concatenation is code.

use crate::detect::rules::code::is_php_function;

/// Longest parenthesised expression read before a call.
const SPAN_MAX: usize = 120;

/// Longest name read (PHP's function names are shorter).
const NAME_MAX: usize = 32;

/// The function a concatenation called at once spells, if it is a known
/// PHP function: the first such call in `low` (the lower-cased value).
/// Linear: a walk back never passes the previous call's `)`, so each byte
/// is read by one walk at most.
pub(super) fn find(low: &[u8]) -> Option<String> {
    // Each `)` followed by `(`, spaces between allowed.
    let mut from = 0;
    let mut floor = 0;
    while let Some(i) = memchr::memchr(b')', &low[from..]).map(|i| from + i) {
        from = i + 1;
        let next = low[i + 1..].iter().position(|b| !b.is_ascii_whitespace());
        if next.is_none_or(|k| low[i + 1 + k] != b'(') {
            continue;
        }
        // An expression holding another call is no concatenation.
        let start = floor.max(i.saturating_sub(SPAN_MAX));
        floor = i + 1;
        if let Some(name) = spelled(&low[start..=i]) {
            return Some(name);
        }
    }
    None
}

/// What the expression closed by the last byte of `span` (a `)`) spells,
/// when it is pieces joined by `.` (quoted or bare, in nested parentheses)
/// that make a PHP function's name.
fn spelled(span: &[u8]) -> Option<String> {
    let mut depth = 0usize;
    let mut name = [0u8; NAME_MAX];
    let mut len = 0;
    let mut dots = 0;
    for &b in span.iter().rev() {
        match b {
            b')' => depth += 1,
            b'(' => {
                depth -= 1;
                if depth == 0 {
                    if dots == 0 {
                        return None;
                    }
                    let name: String = name[..len].iter().rev().map(|&b| char::from(b)).collect();
                    return is_php_function(&name).then_some(name);
                }
            }
            b'.' => dots += 1,
            b'\'' | b'"' => {}
            b if b.is_ascii_whitespace() => {}
            b if b.is_ascii_alphanumeric() || b == b'_' => {
                *name.get_mut(len)? = b;
                len += 1;
            }
            _ => return None,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::find;
    use proptest::prelude::*;

    #[test]
    fn reads_the_name_the_pieces_spell() {
        for (v, name) in [
            ("(sy.(st).em)(@id)", "system"),
            ("('sys'.'tem')('id')", "system"),
            ("x=1;(\"ex\" . \"ec\")($_get[c]);", "exec"),
            ("((pass).(thru)) (ls)", "passthru"),
            ("('php'.'info')()", "phpinfo"),
            ("(base64_.decode)(x)", "base64_decode"),
            ("('sys'\n.\r\n'tem')('id')", "system"),
            ("(\"ex\"\x0c.\t\"ec\")\n(x)", "exec"),
        ] {
            assert_eq!(find(v.as_bytes()).as_deref(), Some(name), "{v}");
        }
    }

    #[test]
    fn passes_text_and_calls_of_other_things() {
        for v in [
            "(see p. 4)(and below)",
            "(e.g. system)(x)",
            "(a.b)(c)",
            "(system)(x)",
            "f(x)(y)",
            "(sy.st.em) and (x)",
            "(1.5)(2.5)",
            "((((",
            "))))((((",
            ")(",
            "(sy.st.em)",
            "(sy.(x)(y).stem)(z)",
            "(aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.b)(c)",
        ] {
            assert_eq!(find(v.as_bytes()), None, "{v}");
        }
    }

    proptest! {
        /// Whatever the bytes, a name found is a known function spelled by
        /// letters that stand in `low` in that order.
        #[test]
        fn any_bytes_are_read_safely(v in proptest::collection::vec(
            prop_oneof![Just(b'('), Just(b')'), Just(b'.'), Just(b'\''), any::<u8>(),
                        Just(b's'), Just(b'y'), Just(b't'), Just(b'e'), Just(b'm')],
            0..64,
        )) {
            if let Some(name) = find(&v) {
                prop_assert!(crate::detect::rules::code::is_php_function(&name));
                let mut rest = v.iter();
                prop_assert!(name.bytes().all(|b| rest.any(|&x| x == b)));
            }
        }
    }
}
