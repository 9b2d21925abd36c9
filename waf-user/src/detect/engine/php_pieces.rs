//! A PHP function name assembled from pieces and called at once:
//! `(sy.(st).em)(@id)`, `('sys'.'tem')('id')`, `("ex"."ec")($_GET[c])`.
//! PHP joins the pieces (bare words read as strings in old versions,
//! quoted strings in all) and calls the function the result names. The
//! rules see neither `system` nor any other name; this reads what the
//! pieces spell. No text needs a name split by `.` inside parentheses and
//! then called: a call on a concatenation is code. The pieces may be
//! assigned to a variable first and the variable called in parentheses:
//! `$y='sys'.'tem';($y)('id')`.

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
        if let Some(name) = spelled(&low[start..=i]).or_else(|| assigned(low, i)) {
            return Some(name);
        }
    }
    None
}

/// Bytes before a called `($var)` searched for the variable's assignment.
const ASSIGN_WINDOW: usize = 256;

/// When the `)` at `close` ends `($var)`: what the pieces last assigned to
/// `$var` before it (`$var = 'sys'.'tem';`, within [`ASSIGN_WINDOW`]
/// bytes) spell.
fn assigned(low: &[u8], close: usize) -> Option<String> {
    let head = &low[..close];
    let head = head.trim_ascii_end();
    let var_len = head
        .iter()
        .rev()
        .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_')
        .count();
    let dollar = head.len().checked_sub(var_len + 1)?;
    if var_len == 0 || head[dollar] != b'$' || head[..dollar].trim_ascii_end().last() != Some(&b'(')
    {
        return None;
    }
    let var = &head[dollar..];
    let window = &low[dollar.saturating_sub(ASSIGN_WINDOW)..dollar];
    let at = memchr::memmem::rfind_iter(window, var).find_map(|k| {
        let rest = &window[k + var.len()..];
        let next = rest.first()?;
        if next.is_ascii_alphanumeric() || *next == b'_' {
            return None;
        }
        let rest = rest.trim_ascii_start().strip_prefix(b"=")?;
        (rest.first() != Some(&b'=')).then_some(rest)
    })?;
    let end = memchr::memchr(b';', at)?;
    let rhs = &at[..end.min(SPAN_MAX)];
    let mut span = Vec::with_capacity(rhs.len() + 2);
    span.push(b'(');
    span.extend_from_slice(rhs);
    span.push(b')');
    spelled(&span)
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
            ("$y = 'sys'.'tem';($y)('uname');", "system"),
            ("$f=\"pass\".\"thru\"; ( $f ) ('ls')", "passthru"),
            ("$a='x';$y='ex'.'ec';$b=1;($y)($_get[c])", "exec"),
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
            "$y = 'sys'.'tem';($x)('uname');",
            "$y == 'sys'.'tem';($y)('uname');",
            "$yy = 'sys'.'tem';($y)('uname');",
            "$y = 'sys'.'tem'($y)('uname')",
            "$y = 'hello'.'world';($y)('x');",
            "($y)('x'); $y = 'sys'.'tem';",
            "$y='sys'.'tem';(a$y)(1)",
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
