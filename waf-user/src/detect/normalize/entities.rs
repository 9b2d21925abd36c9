//! HTML character references: named ones that spell code (`&lt;`,
//! `&colon;`...), decimal and hex ones (`&#60;`, `&#x3c;`, with or without
//! `;`, any number of leading zeros), one round at a time (the pipeline
//! runs two, for `&amp;lt;`).

use super::push_char;
use crate::http::target::hex_val;

/// Named entities worth knowing (those that spell code).
const ENTITIES: &[(&[u8], u32)] = &[
    (b"lt", 0x3C),
    (b"gt", 0x3E),
    (b"amp", 0x26),
    (b"quot", 0x22),
    (b"apos", 0x27),
    (b"nbsp", 0x20),
    (b"tab", 0x09),
    (b"newline", 0x0A),
    (b"colon", 0x3A),
    (b"lpar", 0x28),
    (b"rpar", 0x29),
    (b"sol", 0x2F),
    (b"bsol", 0x5C),
    (b"lcub", 0x7B),
    (b"rcub", 0x7D),
    (b"lbrace", 0x7B),
    (b"rbrace", 0x7D),
    (b"lsqb", 0x5B),
    (b"rsqb", 0x5D),
    (b"lbrack", 0x5B),
    (b"rbrack", 0x5D),
    (b"semi", 0x3B),
    (b"comma", 0x2C),
    (b"period", 0x2E),
    (b"excl", 0x21),
    (b"quest", 0x3F),
    (b"num", 0x23),
    (b"dollar", 0x24),
    (b"percnt", 0x25),
    (b"equals", 0x3D),
    (b"plus", 0x2B),
    (b"grave", 0x60),
    (b"hat", 0x5E),
    (b"ast", 0x2A),
    (b"vert", 0x7C),
    (b"verbar", 0x7C),
    (b"lowbar", 0x5F),
    (b"hyphen", 0x2D),
    (b"commat", 0x40),
];

/// Named entities browsers decode without their `;` (legacy ones).
const WITHOUT_SEMICOLON: &[&[u8]] = &[b"lt", b"gt", b"amp", b"quot"];

/// Decodes every character reference of `s`; None when there was none.
pub(super) fn decode(s: &[u8]) -> Option<Vec<u8>> {
    let mut out: Option<Vec<u8>> = None;
    let mut copied = 0;
    for amp in memchr::memchr_iter(b'&', s) {
        if amp < copied {
            continue;
        }
        let Some((cp, len)) = entity_at(&s[amp + 1..]) else {
            continue;
        };
        let o = out.get_or_insert_with(|| Vec::with_capacity(s.len()));
        o.extend_from_slice(&s[copied..amp]);
        push_char(cp, o);
        copied = amp + 1 + len;
    }
    let mut o = out?;
    o.extend_from_slice(&s[copied..]);
    Some(o)
}

/// The code point and length of an entity body after `&`.
fn entity_at(s: &[u8]) -> Option<(u32, usize)> {
    if s.first() == Some(&b'#') {
        numeric_at(s)
    } else {
        named_at(s)
    }
}

/// `#60`, `#x3c`, `#X3C;`: the code point (capped at U+110000, which
/// decodes to U+FFFD) and the length, `;` included when present.
fn numeric_at(s: &[u8]) -> Option<(u32, usize)> {
    let (hex, start) = match s.get(1) {
        Some(b'x' | b'X') => (true, 2),
        _ => (false, 1),
    };
    let mut j = start;
    let mut cp: u32 = 0;
    while let Some(&c) = s.get(j) {
        let d = if hex {
            hex_val(c).map(u32::from)
        } else {
            c.is_ascii_digit().then(|| u32::from(c - b'0'))
        };
        let Some(d) = d else { break };
        cp = cp
            .saturating_mul(if hex { 16 } else { 10 })
            .saturating_add(d)
            .min(0x11_0000);
        j += 1;
    }
    if j == start {
        return None;
    }
    if s.get(j) == Some(&b';') {
        j += 1;
    }
    Some((cp, j))
}

/// `lt;`, `colon;` (any case), and the legacy four without `;`: the code
/// point and the length.
fn named_at(s: &[u8]) -> Option<(u32, usize)> {
    let name_len = s
        .iter()
        .take(8)
        .take_while(|c| c.is_ascii_alphabetic())
        .count();
    let name = &s[..name_len];
    let &(_, cp) = ENTITIES
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))?;
    if s.get(name_len) == Some(&b';') {
        Some((cp, name_len + 1))
    } else if WITHOUT_SEMICOLON
        .iter()
        .any(|n| n.eq_ignore_ascii_case(name))
    {
        Some((cp, name_len))
    } else {
        None
    }
}

/// Length of a named entity `&name;` at the start of `s` (0 if none), known
/// or not: the shell view reads one left undecoded (`&ensp;`) as a space,
/// not as a separator.
pub(super) fn named_len(s: &[u8]) -> usize {
    let n = s
        .iter()
        .skip(1)
        .take(10)
        .take_while(|c| c.is_ascii_alphanumeric())
        .count();
    if n >= 2 && s.get(n + 1) == Some(&b';') {
        n + 2
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &str) -> Option<String> {
        decode(s.as_bytes()).map(|o| String::from_utf8_lossy(&o).into_owned())
    }

    #[test]
    fn decodes_named_entities_in_any_case() {
        for (raw, want) in [
            ("&lt;script&gt;", "<script>"),
            ("&LT;&Gt;", "<>"),
            ("javascript&colon;alert&lpar;1&rpar;", "javascript:alert(1)"),
            ("&quot;&apos;&amp;", "\"'&"),
            ("a&nbsp;b&Tab;c&NewLine;", "a b\tc\n"),
        ] {
            assert_eq!(dec(raw).as_deref(), Some(want), "{raw}");
        }
    }

    #[test]
    fn needs_the_semicolon_except_for_the_legacy_four() {
        assert_eq!(dec("&lt&gt&amp&quot").as_deref(), Some("<>&\""));
        assert_eq!(dec("&lt1 &gt ").as_deref(), Some("<1 > "));
        assert_eq!(dec("&colon"), None);
        assert_eq!(dec("&lpar1"), None);
        // Unknown names stay as they are.
        assert_eq!(dec("&ensp;&foo;"), None);
        assert_eq!(dec("AT&T &"), None);
    }

    #[test]
    fn decodes_numeric_references_with_or_without_semicolon() {
        for (raw, want) in [
            ("&#60;", "<"),
            ("&#60", "<"),
            ("&#x3c;", "<"),
            ("&#X3C", "<"),
            ("&#x3C;&#x3c", "<<"),
            ("&#60&#62x", "<>x"),
            ("&#x6a&#x61vascript", "javascript"),
        ] {
            assert_eq!(dec(raw).as_deref(), Some(want), "{raw}");
        }
    }

    #[test]
    fn reads_digits_greedily() {
        // Hex digits run on: `&#x3cab` is U+3CAB, not `<ab`.
        assert_eq!(dec("&#x3cab").as_deref(), Some("\u{3cab}"));
        assert_eq!(dec("&#601").as_deref(), Some("\u{259}"));
    }

    #[test]
    fn accepts_any_number_of_leading_zeros() {
        assert_eq!(dec("&#0000000000000000060;").as_deref(), Some("<"));
        assert_eq!(dec("&#x0000000000000003c").as_deref(), Some("<"));
    }

    #[test]
    fn decodes_huge_and_invalid_code_points_to_the_replacement_character() {
        for raw in [
            "&#99999999999999999999999;",
            "&#x110000;",
            "&#xFFFFFFFFFFFF",
            "&#xd800;",
            "&#55296",
        ] {
            assert_eq!(dec(raw).as_deref(), Some("\u{fffd}"), "{raw}");
        }
        assert_eq!(dec("&#x10ffff;").as_deref(), Some("\u{10ffff}"));
        assert_eq!(dec("&#0;").as_deref(), Some("\0"));
    }

    #[test]
    fn keeps_truncated_and_malformed_references() {
        for raw in ["&", "&#", "&#x", "&#;", "&#x;", "&#xg", "&#-1", "a&", "&&"] {
            assert_eq!(dec(raw), None, "{raw}");
        }
        assert_eq!(dec("&#&#60;").as_deref(), Some("&#<"));
    }

    #[test]
    fn decodes_one_level_per_round() {
        assert_eq!(dec("&amp;lt;").as_deref(), Some("&lt;"));
        assert_eq!(dec("&#38;#60;").as_deref(), Some("&#60;"));
    }

    #[test]
    fn measures_named_entities_known_or_not() {
        assert_eq!(named_len(b"&ensp;x"), 6);
        assert_eq!(named_len(b"&lt;"), 4);
        assert_eq!(named_len(b"&x;"), 0);
        assert_eq!(named_len(b"&ensp"), 0);
        assert_eq!(named_len(b"&abcdefghijk;"), 0);
        assert_eq!(named_len(b"&"), 0);
    }
}
