//! Overlong UTF-8: two-byte (`C0 AF` for `/`) and three-byte (`E0 80 AF`)
//! encodings of characters that have a shorter one, which lax decoders
//! accept and filters miss (`..%c0%af..`); decoded to the character, with
//! a note that tells meta characters from the rest.

use super::{Flags, is_meta};

/// The code point and length of an overlong sequence at the start of `s`;
/// notes it in `flags`.
pub(super) fn at(s: &[u8], flags: &mut Flags) -> Option<(u32, usize)> {
    let cont = |i: usize| s.get(i).is_some_and(|&b| (0x80..0xC0).contains(&b));
    match *s.first()? {
        // Two bytes for an ASCII character.
        b @ (0xC0 | 0xC1) if cont(1) => {
            let c = ((b & 0x1F) << 6) | (s[1] & 0x3F);
            note(c, flags);
            Some((u32::from(c), 2))
        }
        // Three bytes for a character below U+0800 (E0 80..9F xx).
        0xE0 if s.get(1).is_some_and(|&c| (0x80..0xA0).contains(&c)) && cont(2) => {
            let cp = (u32::from(s[1] & 0x3F) << 6) | u32::from(s[2] & 0x3F);
            match u8::try_from(cp) {
                Ok(c) if c < 0x80 => note(c, flags),
                _ => flags.overlong = true,
            }
            Some((cp, 3))
        }
        _ => None,
    }
}

/// Notes an overlong ASCII character: a meta character is an evasion.
fn note(c: u8, flags: &mut Flags) {
    if is_meta(c) {
        flags.overlong_meta = true;
    } else {
        flags.overlong = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(s: &[u8]) -> (Option<(u32, usize)>, Flags) {
        let mut f = Flags::default();
        (at(s, &mut f), f)
    }

    #[test]
    fn decodes_two_byte_forms_of_ascii() {
        let (d, f) = decode(b"\xc0\xaf");
        assert_eq!(d, Some((u32::from(b'/'), 2)));
        assert!(f.overlong_meta && !f.overlong);
        let (d, f) = decode(b"\xc1\x9c..");
        assert_eq!(d, Some((u32::from(b'\\'), 2)));
        assert!(f.overlong_meta);
        let (d, f) = decode(b"\xc1\x81");
        assert_eq!(d, Some((u32::from(b'A'), 2)));
        assert!(f.overlong && !f.overlong_meta);
        assert_eq!(decode(b"\xc0\x80").0, Some((0, 2)));
    }

    #[test]
    fn decodes_three_byte_forms() {
        let (d, f) = decode(b"\xe0\x80\xae");
        assert_eq!(d, Some((u32::from(b'.'), 3)));
        assert!(f.overlong_meta);
        // A character past ASCII that has a two-byte form.
        let (d, f) = decode(b"\xe0\x83\xa9");
        assert_eq!(d, Some((0xe9, 3)));
        assert!(f.overlong && !f.overlong_meta);
        assert_eq!(decode(b"\xe0\x9f\xbf").0, Some((0x7ff, 3)));
    }

    #[test]
    fn refuses_valid_truncated_or_other_sequences() {
        for s in [
            &b"\xc0"[..],
            b"\xc0A",
            b"\xc0\xc0",
            b"\xc2\xaf",
            b"\xe0\x80",
            b"\xe0\xa0\x80",
            b"\xe0\x80A",
            b"\xe1\x80\x80",
            b"/",
            b"",
        ] {
            assert_eq!(decode(s), (None, Flags::default()), "{s:?}");
        }
    }
}
