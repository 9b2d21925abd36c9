//! The UTF-8 pass over a value that is not ASCII: one walk that replaces
//! overlong forms (`overlong.rs`) and look-alike characters
//! (`lookalike.rs`) by what they stand for and copies every other byte,
//! invalid UTF-8 included, as it is.

use super::{Flags, lookalike, overlong, push_char};

/// The bytes a form can start with: `overlong::at` takes only C0, C1 and
/// E0, `lookalike::at` only C2, E2, E5 and EF (a test holds both to it).
const LEADS: [bool; 256] = super::byte_set(b"\xc0\xc1\xe0\xc2\xe2\xe5\xef");

/// Replaces overlong and look-alike sequences; notes them in `flags`.
pub(super) fn fold_forms(s: &[u8], flags: &mut Flags) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        // The bytes up to the next that may start a form are copied whole.
        let run = s[i..]
            .iter()
            .position(|&c| LEADS[usize::from(c)])
            .unwrap_or(s.len() - i);
        out.extend_from_slice(&s[i..i + run]);
        i += run;
        if i == s.len() {
            break;
        }
        if let Some((cp, len)) = overlong::at(&s[i..], flags) {
            push_char(cp, &mut out);
            i += len;
        } else if let Some((ascii, len)) = lookalike::at(&s[i..], flags) {
            out.push(ascii);
            i += len;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_form_starts_with_a_byte_outside_the_leads() {
        for b in 0..=255u8 {
            if LEADS[usize::from(b)] {
                continue;
            }
            for c1 in [0x80u8, 0x8e, 0x9c, 0xa0, 0xad, 0xb4, 0xbb, 0xbc, 0xbd, 0xbf] {
                for c2 in [0x80u8, 0x82, 0x8b, 0x8e, 0x9c, 0xa1, 0xbf] {
                    let s = [b, c1, c2, 0x80];
                    let mut f = Flags::default();
                    assert_eq!(overlong::at(&s, &mut f), None, "{s:x?}");
                    assert_eq!(lookalike::at(&s, &mut f), None, "{s:x?}");
                    assert_eq!(f, Flags::default(), "{s:x?}");
                }
            }
        }
    }

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
