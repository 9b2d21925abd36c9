//! The UTF-8 pass over a value that is not ASCII: one walk that replaces
//! overlong forms (`overlong.rs`) and look-alike characters
//! (`lookalike.rs`) by what they stand for and copies every other byte,
//! invalid UTF-8 included, as it is.

use super::{Flags, lookalike, overlong, push_char};

/// Replaces overlong and look-alike sequences; notes them in `flags`.
pub(super) fn fold_forms(s: &[u8], flags: &mut Flags) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let b = s[i];
        // Every form starts with a lead byte of a multi-byte sequence.
        if b < 0x80 {
            out.push(b);
            i += 1;
        } else if let Some((cp, len)) = overlong::at(&s[i..], flags) {
            push_char(cp, &mut out);
            i += len;
        } else if let Some((ascii, len)) = lookalike::at(&s[i..], flags) {
            out.push(ascii);
            i += len;
        } else {
            out.push(b);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fold(s: &[u8]) -> (Vec<u8>, Flags) {
        let mut f = Flags::default();
        (fold_forms(s, &mut f), f)
    }

    #[test]
    fn replaces_forms_among_other_text() {
        let s = [
            "caf\u{e9} ".as_bytes(),
            &b"\xc0\xaf"[..],
            "\u{ff1c}x\u{2019}".as_bytes(),
        ]
        .concat();
        let (out, f) = fold(&s);
        assert_eq!(out, "caf\u{e9} /<x'".as_bytes());
        assert!(f.overlong_meta && f.fullwidth);
    }

    #[test]
    fn copies_invalid_and_truncated_utf8() {
        for s in [
            &b"\xff\xfe"[..],
            b"\xc0",
            b"\xc0\xc0",
            b"\xe0\x80",
            b"\xef\xbc",
            b"\xe2\x80",
            b"\x80\x80",
            b"a\xf4\x90\x80\x80",
        ] {
            let (out, f) = fold(s);
            assert_eq!(out, s, "{s:?}");
            assert_eq!(f, Flags::default(), "{s:?}");
        }
    }

    #[test]
    fn leaves_valid_text_without_forms_unchanged() {
        let s = "\u{4e2d}\u{6587}\u{3001} \u{1f600} \u{e9}\u{2026}";
        assert_eq!(fold(s.as_bytes()).0, s.as_bytes());
    }
}
