//! `%uXXXX` decoding (IIS, and JavaScript's old `escape()`): the code point
//! as UTF-8, with a note when it hides an ASCII character or a full-width
//! form. URL decoding (`url.rs`) calls it for each `%u` it meets.

use super::{Flags, hex4, push_char};

/// Length of a `%uXXXX` escape.
pub(super) const LEN: usize = 6;

/// The code point of a `%uXXXX` escape (`u` in either case, four hex
/// digits in either case) at the start of `s`.
pub(super) fn at(s: &[u8]) -> Option<u32> {
    if s.first() != Some(&b'%') || !matches!(s.get(1), Some(b'u' | b'U')) {
        return None;
    }
    s.get(2..LEN).and_then(hex4)
}

/// Appends a decoded `%uXXXX` code point (a surrogate as U+FFFD) and notes
/// the evasions it stands for: an ASCII character, a full-width form.
pub(super) fn push(cp: u32, out: &mut Vec<u8>, flags: &mut Flags) {
    if cp < 0x80 {
        flags.percent_u_ascii = true;
    }
    if (0xFF01..=0xFF5E).contains(&cp) {
        flags.fullwidth = true;
    }
    push_char(cp, out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_four_hex_digits_in_either_case() {
        assert_eq!(at(b"%u003c"), Some(0x3c));
        assert_eq!(at(b"%U003C"), Some(0x3c));
        assert_eq!(at(b"%uFf0fxyz"), Some(0xff0f));
        assert_eq!(at(b"%u00000"), Some(0));
    }

    #[test]
    fn refuses_truncated_or_malformed_escapes() {
        for s in [
            &b"%u"[..],
            b"%u0",
            b"%u00",
            b"%u003",
            b"%u00g3",
            b"%x003c",
            b"u003c",
            b"",
        ] {
            assert_eq!(at(s), None, "{s:?}");
        }
    }

    #[test]
    fn pushes_utf8_and_notes_evasions() {
        let cases: [(u32, &[u8], bool, bool); 5] = [
            (0x3c, b"<", true, false),
            (0xe9, "\u{e9}".as_bytes(), false, false),
            (0xff1c, "\u{ff1c}".as_bytes(), false, true),
            (0xff5f, "\u{ff5f}".as_bytes(), false, false),
            (0xd800, "\u{fffd}".as_bytes(), false, false),
        ];
        for (cp, want, ascii, fullwidth) in cases {
            let mut out = Vec::new();
            let mut f = Flags::default();
            push(cp, &mut out, &mut f);
            assert_eq!(out, want, "{cp:#x}");
            assert_eq!(
                (f.percent_u_ascii, f.fullwidth),
                (ascii, fullwidth),
                "{cp:#x}"
            );
        }
    }
}
