//! Look-alike characters folded to the ASCII they pass for: full-width
//! forms (`＜`), enclosed alphanumerics (`ⓢⓔⓛ`, `①`), typographic quotes,
//! the slashes of mathematical notation (`∕`, `∖`), the acute accent used
//! as a quote (`1´ or ´1´=´1`), and the two CJK characters that servers
//! keeping the low byte read as CR and LF.

use super::{Flags, is_meta};

/// The ASCII character and length of a look-alike at the start of `s`;
/// notes full-width and enclosed forms in `flags`.
pub(super) fn at(s: &[u8], flags: &mut Flags) -> Option<(u8, usize)> {
    match *s.first()? {
        0xEF => fullwidth(s, flags).or_else(|| slash(s)),
        0xE2 => enclosed(s, flags)
            .or_else(|| typographic_quote(s))
            .or_else(|| slash(s)),
        0xC2 if s.get(1) == Some(&0xB4) => Some((b'\'', 2)),
        0xE5 => low_byte_line_break(s),
        _ => None,
    }
}

/// Whether the byte at `i` is a UTF-8 continuation byte.
fn cont(s: &[u8], i: usize) -> bool {
    s.get(i).is_some_and(|&b| (0x80..0xC0).contains(&b))
}

/// Full-width ASCII forms U+FF01..U+FF5E (`EF BC 81`..`EF BD 9E`). CJK text
/// uses full-width punctuation (`，`, `：`): only the forms of meta
/// characters are noted as an evasion.
fn fullwidth(s: &[u8], flags: &mut Flags) -> Option<(u8, usize)> {
    if !cont(s, 2) {
        return None;
    }
    let cp = match s.get(1) {
        Some(0xBC) => 0xFF00 + u32::from(s[2] - 0x80),
        Some(0xBD) => 0xFF40 + u32::from(s[2] - 0x80),
        _ => return None,
    };
    if !(0xFF01..=0xFF5E).contains(&cp) {
        return None;
    }
    let ascii = (cp - 0xFEE0) as u8;
    flags.fullwidth |= is_meta(ascii) && !matches!(ascii, b',' | b':' | b'(' | b')' | b'.');
    Some((ascii, 3))
}

/// Enclosed alphanumerics: circled digits one to nine and zero, circled
/// capital and small letters (U+2460.., U+24B6..U+24EA).
fn enclosed(s: &[u8], flags: &mut Flags) -> Option<(u8, usize)> {
    if !(cont(s, 1) && cont(s, 2)) {
        return None;
    }
    let cp = 0x2000 + (u32::from(s[1] & 0x3F) << 6) + u32::from(s[2] & 0x3F);
    let ascii = match cp {
        0x2460..=0x2468 => b'1' + (cp - 0x2460) as u8,
        0x24EA => b'0',
        0x24B6..=0x24CF => b'a' + (cp - 0x24B6) as u8,
        0x24D0..=0x24E9 => b'a' + (cp - 0x24D0) as u8,
        _ => return None,
    };
    flags.fullwidth = true;
    Some((ascii, 3))
}

/// Typographic quotes U+2018..U+201F: single ones as `'`, double as `"`.
fn typographic_quote(s: &[u8]) -> Option<(u8, usize)> {
    if s.get(1) != Some(&0x80) {
        return None;
    }
    match s.get(2)? {
        0x98..=0x9B => Some((b'\'', 3)),
        0x9C..=0x9F => Some((b'"', 3)),
        _ => None,
    }
}

/// Slashes of mathematical notation that Windows' best-fit code page
/// tables (and some path normalisers) turn into `/` and `\`: U+2215
/// DIVISION SLASH, U+2044 FRACTION SLASH, U+29F8 BIG SOLIDUS, U+2216 SET
/// MINUS, U+29F9 BIG REVERSE SOLIDUS and U+FE68 SMALL REVERSE SOLIDUS
/// (`..∕..∕etc∕passwd`). Prose writes them in formulas and fractions,
/// where a `/` reads the same.
fn slash(s: &[u8]) -> Option<(u8, usize)> {
    match s.get(..3)? {
        [0xE2, 0x88, 0x95] | [0xE2, 0x81, 0x84] | [0xE2, 0xA7, 0xB8] => Some((b'/', 3)),
        [0xE2, 0x88, 0x96] | [0xE2, 0xA7, 0xB9] | [0xEF, 0xB9, 0xA8] => Some((b'\\', 3)),
        _ => None,
    }
}

/// U+560A and U+560D: servers that keep the low byte of a code point read
/// them as LF and CR (header injection past UTF-8 filters).
fn low_byte_line_break(s: &[u8]) -> Option<(u8, usize)> {
    if s.get(1) != Some(&0x98) {
        return None;
    }
    match s.get(2)? {
        0x8A => Some((b'\n', 3)),
        0x8D => Some((b'\r', 3)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fold(c: char) -> (Option<u8>, Flags) {
        let mut f = Flags::default();
        let mut buf = [0u8; 4];
        let s = c.encode_utf8(&mut buf).as_bytes();
        let r = at(s, &mut f);
        if let Some((_, len)) = r {
            assert_eq!(len, s.len(), "{c:?} consumed {len} bytes");
        }
        (r.map(|(a, _)| a), f)
    }

    #[test]
    fn folds_fullwidth_forms_and_notes_meta_ones() {
        for (c, ascii, noted) in [
            ('\u{ff1c}', b'<', true),
            ('\u{ff0f}', b'/', true),
            ('\u{ff07}', b'\'', true),
            ('\u{ff01}', b'!', false),
            ('\u{ff5e}', b'~', false),
            ('\u{ff33}', b'S', false),
            ('\u{ff45}', b'e', false),
            // CJK punctuation is folded but not noted.
            ('\u{ff0c}', b',', false),
            ('\u{ff1a}', b':', false),
            ('\u{ff08}', b'(', false),
            ('\u{ff0e}', b'.', false),
        ] {
            let (out, f) = fold(c);
            assert_eq!(out, Some(ascii), "{c:?}");
            assert_eq!(f.fullwidth, noted, "{c:?}");
        }
        // The ends of the block are not ASCII forms.
        assert_eq!(fold('\u{ff00}').0, None);
        assert_eq!(fold('\u{ff5f}').0, None);
        assert_eq!(fold('\u{ff61}').0, None);
    }

    #[test]
    fn folds_math_slashes_unnoted() {
        for (c, ascii) in [
            ('\u{2215}', b'/'),
            ('\u{2044}', b'/'),
            ('\u{29f8}', b'/'),
            ('\u{2216}', b'\\'),
            ('\u{29f9}', b'\\'),
            ('\u{fe68}', b'\\'),
        ] {
            let (out, f) = fold(c);
            assert_eq!(out, Some(ascii), "{c:?}");
            assert!(!f.fullwidth, "{c:?}");
        }
        // Neighbours are not slashes.
        for c in ['\u{2214}', '\u{2217}', '\u{2043}', '\u{29fa}', '\u{fe69}'] {
            assert_eq!(fold(c).0, None, "{c:?}");
        }
    }

    #[test]
    fn folds_enclosed_alphanumerics() {
        for (c, ascii) in [
            ('\u{2460}', b'1'),
            ('\u{2468}', b'9'),
            ('\u{24ea}', b'0'),
            ('\u{24b6}', b'a'),
            ('\u{24cf}', b'z'),
            ('\u{24d0}', b'a'),
            ('\u{24e9}', b'z'),
        ] {
            let (out, f) = fold(c);
            assert_eq!(out, Some(ascii), "{c:?}");
            assert!(f.fullwidth, "{c:?}");
        }
        // Circled ten and parenthesized digits have no one-character form.
        assert_eq!(fold('\u{2469}').0, None);
        assert_eq!(fold('\u{2474}').0, None);
    }

    #[test]
    fn folds_quotes_accents_and_low_byte_line_breaks() {
        for (c, ascii) in [
            ('\u{2018}', b'\''),
            ('\u{2019}', b'\''),
            ('\u{201b}', b'\''),
            ('\u{201c}', b'"'),
            ('\u{201f}', b'"'),
            ('\u{b4}', b'\''),
            ('\u{560a}', b'\n'),
            ('\u{560d}', b'\r'),
        ] {
            let (out, f) = fold(c);
            assert_eq!(out, Some(ascii), "{c:?}");
            assert_eq!(f, Flags::default(), "{c:?}");
        }
        for c in [
            '\u{2017}', '\u{2020}', '\u{2026}', '\u{a0}', '\u{5609}', '\u{e9}',
        ] {
            assert_eq!(fold(c), (None, Flags::default()), "{c:?}");
        }
    }

    #[test]
    fn refuses_truncated_sequences() {
        let mut f = Flags::default();
        for s in [
            &b"\xef\xbc"[..],
            b"\xef",
            b"\xe2\x80",
            b"\xe2",
            b"\xc2",
            b"\xe5\x98",
            b"",
        ] {
            assert_eq!(at(s, &mut f), None, "{s:?}");
        }
        assert_eq!(f, Flags::default());
    }
}
