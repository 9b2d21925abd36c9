//! Invisible characters, removed: those that render as nothing and that
//! parsers skip or tolerate (`java\u{feff}script:`, `sel\u{200b}ect`).

/// Length of an invisible character at the start of `s` (0 if none): the
/// byte-order mark, zero-width spaces and joiners and the direction marks
/// (U+200B..U+200F), the word joiner and invisible operators
/// (U+2060..U+2064), the soft hyphen.
fn invisible_len(s: &[u8]) -> usize {
    match s {
        [0xEF, 0xBB, 0xBF, ..] => 3,
        [0xE2, 0x80, 0x8B..=0x8F, ..] => 3,
        [0xE2, 0x81, 0xA0..=0xA4, ..] => 3,
        [0xC2, 0xAD, ..] => 2,
        _ => 0,
    }
}

/// Removes invisible characters; returns `s` itself when it holds none.
pub(super) fn strip(s: Vec<u8>) -> Vec<u8> {
    super::replace_finds(&s, b"", |from| next_invisible(&s, from)).unwrap_or(s)
}

/// The offset and length of the first invisible character at or after
/// `from`.
fn next_invisible(s: &[u8], from: usize) -> Option<(usize, usize)> {
    memchr::memchr3_iter(0xEF, 0xE2, 0xC2, s.get(from..)?)
        .map(|i| from + i)
        .find_map(|i| Some((i, invisible_len(&s[i..]))).filter(|&(_, n)| n > 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strip_str(s: &str) -> String {
        String::from_utf8(strip(s.as_bytes().to_vec())).expect("UTF-8 stays UTF-8")
    }

    #[test]
    fn removes_every_invisible_character() {
        for c in [
            '\u{feff}', '\u{200b}', '\u{200c}', '\u{200d}', '\u{200e}', '\u{200f}', '\u{2060}',
            '\u{2061}', '\u{2062}', '\u{2063}', '\u{2064}', '\u{ad}',
        ] {
            assert_eq!(strip_str(&format!("sel{c}ect{c}")), "select", "{c:?}");
        }
    }

    #[test]
    fn keeps_visible_neighbours_of_the_same_blocks() {
        let s = "\u{2010}\u{2026}\u{2065}\u{feff}\u{a0}\u{ac}x\u{fefe}";
        assert_eq!(
            strip_str(s),
            "\u{2010}\u{2026}\u{2065}\u{a0}\u{ac}x\u{fefe}"
        );
    }

    #[test]
    fn keeps_truncated_sequences() {
        for s in [&b"\xef\xbb"[..], b"\xe2\x80", b"\xc2", b"a\xe2\x81\xa5"] {
            assert_eq!(strip(s.to_vec()), s, "{s:?}");
        }
    }
}
