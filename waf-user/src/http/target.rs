//! Request targets: splitting path and query, percent-decoding once, and
//! `name=value` lists (query strings, form bodies, cookies).

use super::{Anomaly, Limits, Param};

/// Splits a request target into (path, query). An absolute-form target
/// (`http://host/path?q`) yields its path. A `#` has no place in a request
/// target (clients drop fragments) and servers pass it on as data, so it
/// stays part of the path or query.
pub fn split_target(target: &str) -> (&str, Option<&str>) {
    // A scheme starts with a letter (RFC 3986 3.1): `:///x` is a path.
    let rest = match target.find("://") {
        Some(i)
            if target[..i]
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_alphabetic())
                && target[..i]
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'-' || b == b'.') =>
        {
            let after = &target[i + 3..];
            match after.find(['/', '?']) {
                Some(j) => &after[j..],
                None => "/",
            }
        }
        _ => target,
    };
    match rest.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (rest, None),
    }
}

/// The value of an ASCII hex digit.
pub fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-decodes once into bytes; with `plus`, `+` becomes a space.
/// Invalid escapes are kept as they are.
pub fn percent_decode(s: &[u8], plus: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    decode_into(s, plus, &mut out, |_, _| None);
    out
}

/// Percent-decodes `s` once into `out`: the runs between `%` are copied at
/// once (with `plus`, their `+` as spaces) and `%XX` escapes decoded. Any
/// other `%` is handed to `other` with the rest of `s` from it, which
/// appends what it stands for and returns how many bytes it took (None:
/// the `%` is kept as it is). Whether anything was decoded.
pub fn decode_into(
    s: &[u8],
    plus: bool,
    out: &mut Vec<u8>,
    mut other: impl FnMut(&[u8], &mut Vec<u8>) -> Option<usize>,
) -> bool {
    let mut changed = false;
    let mut i = 0;
    while i < s.len() {
        let next = memchr::memchr(b'%', &s[i..]).map_or(s.len(), |j| i + j);
        changed |= copy_run(&s[i..next], plus, out);
        i = next;
        if i == s.len() {
            break;
        }
        if let Some(b) = escape_at(s, i) {
            out.push(b);
            i += 3;
            changed = true;
        } else if let Some(n) = other(&s[i..], out) {
            i += n;
            changed = true;
        } else {
            out.push(b'%');
            i += 1;
        }
    }
    changed
}

/// The byte of the `%XX` escape at `s[i]` (a `%`), if it is one.
fn escape_at(s: &[u8], i: usize) -> Option<u8> {
    let h = hex_val(*s.get(i + 1)?)?;
    let l = hex_val(*s.get(i + 2)?)?;
    Some(h << 4 | l)
}

/// Appends `run` to `out`; with `plus`, its `+` become spaces. Whether any
/// did.
fn copy_run(run: &[u8], plus: bool, out: &mut Vec<u8>) -> bool {
    let start = out.len();
    out.extend_from_slice(run);
    if !plus || memchr::memchr(b'+', run).is_none() {
        return false;
    }
    for b in &mut out[start..] {
        if *b == b'+' {
            *b = b' ';
        }
    }
    true
}

/// Percent-decodes once into a string (invalid UTF-8 becomes U+FFFD).
pub fn decode_lossy(s: &str, plus: bool) -> String {
    let special = if plus {
        memchr::memchr2(b'%', b'+', s.as_bytes())
    } else {
        memchr::memchr(b'%', s.as_bytes())
    };
    if special.is_none() {
        return s.to_owned();
    }
    // Checked in place; copied again only when it is not UTF-8.
    String::from_utf8(percent_decode(s.as_bytes(), plus))
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Parses `a=1&b=2` (query strings and urlencoded forms). Keeps order and
/// duplicates; at most `limits.max_params` entries, then an anomaly.
pub fn parse_pairs(s: &str, limits: &Limits, anomalies: &mut Vec<Anomaly>) -> Vec<Param> {
    let mut out = Vec::new();
    for piece in s.split('&') {
        if piece.is_empty() {
            continue;
        }
        if out.len() >= limits.max_params {
            if !anomalies.contains(&Anomaly::TooManyParams) {
                anomalies.push(Anomaly::TooManyParams);
            }
            break;
        }
        let (n, v, has_value) = match piece.split_once('=') {
            Some((n, v)) => (n, v, true),
            None => (piece, "", false),
        };
        out.push(Param {
            name: decode_lossy(n, true),
            value: decode_lossy(v, true),
            raw_name: n.to_owned(),
            raw_value: v.to_owned(),
            has_value,
        });
    }
    out
}

/// Parses one Cookie header value (`a=1; b=2`) into parameters.
pub fn parse_cookies(s: &str, out: &mut Vec<Param>) {
    for piece in s.split(';') {
        let piece = piece.trim();
        if piece.is_empty() {
            continue;
        }
        let (n, v, has_value) = match piece.split_once('=') {
            Some((n, v)) => (n.trim(), v.trim(), true),
            None => (piece, "", false),
        };
        out.push(Param {
            name: decode_lossy(n, false),
            value: decode_lossy(v, false),
            raw_name: n.to_owned(),
            raw_value: v.to_owned(),
            has_value,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn splits_origin_and_absolute_forms() {
        assert_eq!(split_target("/a/b?x=1#f"), ("/a/b", Some("x=1#f")));
        assert_eq!(split_target("http://h:80/p?q"), ("/p", Some("q")));
        assert_eq!(split_target("http://h"), ("/", None));
        assert_eq!(split_target("*"), ("*", None));
        assert_eq!(split_target(":///health"), (":///health", None));
        assert_eq!(split_target("1x://h/p"), ("1x://h/p", None));
    }

    #[test]
    fn decodes_percent_and_plus() {
        assert_eq!(decode_lossy("a%20b+c", true), "a b c");
        assert_eq!(decode_lossy("a+b", false), "a+b");
        assert_eq!(decode_lossy("%zz%4", true), "%zz%4");
        assert_eq!(decode_lossy("%", true), "%");
    }

    #[test]
    fn parses_pairs_in_order_with_duplicates() {
        let mut an = Vec::new();
        let p = parse_pairs("a=1&b&a=%32&&", &Limits::default(), &mut an);
        let v: Vec<_> = p
            .iter()
            .map(|p| (p.name.as_str(), p.value.as_str(), p.has_value))
            .collect();
        assert_eq!(v, [("a", "1", true), ("b", "", false), ("a", "2", true)]);
        assert!(an.is_empty());
    }

    /// The decoder a byte at a time, as it was written first.
    fn reference(s: &[u8], plus: bool) -> Vec<u8> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < s.len() {
            let b = s[i];
            if b == b'%'
                && i + 2 < s.len()
                && let (Some(h), Some(l)) = (hex_val(s[i + 1]), hex_val(s[i + 2]))
            {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
            out.push(if plus && b == b'+' { b' ' } else { b });
            i += 1;
        }
        out
    }

    proptest! {
        /// Copying runs between escapes decodes as the byte-at-a-time
        /// decoder does, on text dense in escapes, broken escapes and `+`.
        #[test]
        fn run_copying_decodes_as_bytewise(
            parts in proptest::collection::vec(
                prop_oneof![
                    Just("%".to_owned()),
                    Just("+".to_owned()),
                    "%[0-9a-fA-FgG]{0,2}",
                    "[a-z+ %\\xe9]{0,6}",
                    any::<char>().prop_map(String::from),
                ],
                0..24,
            ),
            plus in any::<bool>(),
        ) {
            let s = parts.concat();
            let want = reference(s.as_bytes(), plus);
            prop_assert_eq!(percent_decode(s.as_bytes(), plus), want.clone());
            prop_assert_eq!(decode_lossy(&s, plus), String::from_utf8_lossy(&want).into_owned());
        }
    }
}
