//! Byte classes of values, shared by the normaliser and the engine: byte
//! sets built at compile time, two-byte pairs, values with nothing to
//! decode, and text as opposed to binary data.

/// Whether the two bytes `a b` follow each other somewhere in `s` (cheaper
/// than a substring search for such short needles).
pub fn has_pair(s: &[u8], a: u8, b: u8) -> bool {
    memchr::memchr_iter(a, s).any(|i| s.get(i + 1) == Some(&b))
}

/// A set of bytes as a 256-entry table, built at compile time
/// (`SET[usize::from(b)]` is one load per byte tested).
pub const fn byte_set(bytes: &[u8]) -> [bool; 256] {
    let mut t = [false; 256];
    let mut i = 0;
    while i < bytes.len() {
        t[bytes[i] as usize] = true;
        i += 1;
    }
    t
}

/// Whether a value holds only characters no decoder or rule cares about.
pub fn is_plain(raw: &[u8]) -> bool {
    raw.iter()
        .all(|&b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
}

/// Whether bytes look like text: no NUL, few control characters (C0, or
/// C1 as UTF-8 `C2 80..9F`, or U+FFFD from invalid UTF-8).
pub fn is_text(b: &[u8]) -> bool {
    let sample = &b[..b.len().min(4096)];
    if memchr::memchr(0, sample).is_some() {
        return false;
    }
    // C0 controls counted without an early exit (the loop vectorises);
    // C1 controls and U+FFFD start with two bytes found by memchr.
    let c0 = sample
        .iter()
        .filter(|&&c| c < 0x20 && !matches!(c, b'\t' | b'\r' | b'\n'))
        .count();
    let wide = memchr::memchr2_iter(0xC2, 0xEF, sample)
        .filter(|&i| match sample[i] {
            0xC2 => sample.get(i + 1).is_some_and(|n| (0x80..0xA0).contains(n)),
            _ => sample[i + 1..].starts_with(&[0xBF, 0xBD]),
        })
        .count();
    (c0 + wide) * 20 <= sample.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_pairs_anywhere_but_past_the_end() {
        assert!(has_pair(b"a/*b", b'/', b'*'));
        assert!(has_pair(b"//*", b'/', b'*'));
        assert!(!has_pair(b"a/ *b", b'/', b'*'));
        assert!(!has_pair(b"a/", b'/', b'*'));
        assert!(!has_pair(b"", b'/', b'*'));
    }

    #[test]
    fn byte_sets_hold_exactly_their_bytes() {
        const SET: [bool; 256] = byte_set(b"$\x00\xff");
        let members: Vec<usize> = (0..256).filter(|&i| SET[i]).collect();
        assert_eq!(members, [0x00, 0x24, 0xff]);
    }

    #[test]
    fn plain_values_hold_only_word_characters_dots_and_dashes() {
        assert!(is_plain(b"Abc_123.x-y"));
        assert!(is_plain(b""));
        for v in [&b"a b"[..], b"a%20", b"a+b", b"a'", b"caf\xc3\xa9", b"a\0"] {
            assert!(!is_plain(v), "{v:?}");
        }
    }

    #[test]
    fn text_allows_one_odd_character_in_twenty() {
        assert!(is_text(b"hello\tworld\r\n"));
        assert!(is_text(b""));
        assert!(!is_text(b"text with a NUL\0 inside"));
        let mut v = vec![b'a'; 19];
        v.push(0x01);
        assert!(is_text(&v));
        v.push(0x02);
        assert!(!is_text(&v));
        // C1 controls in UTF-8 and U+FFFD count as odd too.
        assert!(!is_text(b"\xc2\x80\xc2\x81ab"));
        assert!(!is_text("\u{fffd}ab".as_bytes()));
        // Other UTF-8 is text.
        assert!(is_text("caf\u{e9} \u{4e2d}\u{6587}".as_bytes()));
    }

    /// The definition `is_text` is held to: one pass, byte by byte.
    fn is_text_by_bytes(b: &[u8]) -> bool {
        let sample = &b[..b.len().min(4096)];
        if sample.contains(&0) {
            return false;
        }
        let mut odd = 0usize;
        for (i, &c) in sample.iter().enumerate() {
            let c1 = c == 0xC2 && sample.get(i + 1).is_some_and(|n| (0x80..0xA0).contains(n));
            let replacement =
                c == 0xEF && sample.get(i + 1) == Some(&0xBF) && sample.get(i + 2) == Some(&0xBD);
            if (c < 0x20 && !matches!(c, b'\t' | b'\r' | b'\n')) || c1 || replacement {
                odd += 1;
            }
        }
        odd * 20 <= sample.len()
    }

    proptest::proptest! {
        #[test]
        fn text_is_what_the_byte_by_byte_count_says(v in proptest::collection::vec(
            proptest::prop_oneof![
                proptest::prelude::Just(0xC2u8), proptest::prelude::Just(0xEF),
                proptest::prelude::Just(0xBF), proptest::prelude::Just(0xBD),
                proptest::prelude::Just(0x85), 1u8..0x20, 0x20u8..0x7F, proptest::prelude::any::<u8>(),
            ],
            0..5000,
        )) {
            proptest::prop_assert_eq!(is_text(&v), is_text_by_bytes(&v));
        }
    }

    #[test]
    fn text_is_judged_on_the_first_4096_bytes() {
        let mut v = vec![b'a'; 4096];
        v.extend_from_slice(&[0u8; 100]);
        assert!(is_text(&v));
    }
}
