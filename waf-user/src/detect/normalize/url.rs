//! URL decoding, one round: `%XX` escapes and, in query strings and forms,
//! `+` as a space; `%uXXXX` escapes are decoded in the same pass
//! (`percent_u.rs`). The pipeline repeats rounds for double encoding.

use super::{Flags, percent_u};
use crate::http::target::decode_into;

/// One round of URL decoding; None when nothing was decoded. `plus` turns
/// `+` into a space. On the `first` round, a `%` that starts no escape is
/// noted as `invalid_percent` (on later rounds it is text that was sent
/// encoded, `%25`).
pub(super) fn round(s: &[u8], plus: bool, first: bool, flags: &mut Flags) -> Option<Vec<u8>> {
    if plus {
        memchr::memchr2(b'%', b'+', s)?;
    } else if !has_escape(s) {
        if first && memchr::memchr(b'%', s).is_some() {
            flags.invalid_percent = true;
        }
        return None;
    }
    let mut out = Vec::with_capacity(s.len());
    let changed = decode_into(s, plus, &mut out, |rest, out| {
        if let Some(cp) = percent_u::at(rest) {
            percent_u::push(cp, out, flags);
            return Some(percent_u::LEN);
        }
        if first {
            flags.invalid_percent = true;
        }
        None
    });
    changed.then_some(out)
}

/// Whether `s` holds at least one valid `%XX` or `%uXXXX` escape.
fn has_escape(s: &[u8]) -> bool {
    memchr::memchr_iter(b'%', s).any(|i| {
        let hex = |k: usize| s.get(i + k).is_some_and(u8::is_ascii_hexdigit);
        (hex(1) && hex(2)) || percent_u::at(&s[i..]).is_some()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::target::hex_val;
    use proptest::strategy::Strategy as _;

    /// One first round without `+`: the text and the flags.
    fn once(s: &str) -> (Option<String>, Flags) {
        let mut f = Flags::default();
        let out = round(s.as_bytes(), false, true, &mut f);
        (out.map(|o| String::from_utf8_lossy(&o).into_owned()), f)
    }

    #[test]
    fn decodes_escapes_in_either_case() {
        for (raw, want) in [
            ("%3Cscript%3e", "<script>"),
            ("%3c%3C%3d", "<<="),
            ("a%2Fb%2fc", "a/b/c"),
            ("%41%42%43", "ABC"),
            ("%00", "\0"),
            ("x%20", "x "),
        ] {
            assert_eq!(once(raw).0.as_deref(), Some(want), "{raw}");
        }
    }

    #[test]
    fn decodes_one_level_per_round() {
        assert_eq!(once("%253C").0.as_deref(), Some("%3C"));
        assert_eq!(once("%25%32%35").0.as_deref(), Some("%25"));
        assert!(!once("%253C").1.invalid_percent);
    }

    #[test]
    fn keeps_malformed_and_truncated_escapes() {
        for raw in [
            "%", "%4", "%G1", "%4G", "100%", "%%", "%u", "%u12", "%u12G4", "a%",
        ] {
            let (out, f) = once(raw);
            assert_eq!(out, None, "{raw}");
            assert!(f.invalid_percent, "{raw}");
        }
        // A malformed escape next to a valid one is kept as it is.
        let (out, f) = once("%%41%4");
        assert_eq!(out.as_deref(), Some("%A%4"));
        assert!(f.invalid_percent);
    }

    #[test]
    fn decodes_escapes_at_the_end_of_input() {
        assert_eq!(once("abc%3e").0.as_deref(), Some("abc>"));
        assert_eq!(once("abc%u003e").0.as_deref(), Some("abc>"));
    }

    #[test]
    fn notes_invalid_percent_only_on_the_first_round() {
        let mut f = Flags::default();
        assert_eq!(round(b"%zz", false, false, &mut f), None);
        assert_eq!(
            round(b"%zz%41", false, false, &mut f),
            Some(b"%zzA".to_vec())
        );
        assert!(!f.invalid_percent);
    }

    #[test]
    fn turns_plus_into_space_only_when_asked() {
        let mut f = Flags::default();
        assert_eq!(round(b"a+b", true, true, &mut f), Some(b"a b".to_vec()));
        assert_eq!(round(b"a+b", false, true, &mut f), None);
        assert_eq!(round(b"a%2B+b", true, true, &mut f), Some(b"a+ b".to_vec()));
    }

    #[test]
    fn leaves_invalid_utf8_bytes_as_they_are() {
        let mut f = Flags::default();
        let out = round(b"\xff%C0%AF\xc0", false, true, &mut f);
        assert_eq!(out, Some(b"\xff\xc0\xaf\xc0".to_vec()));
        assert_eq!(f, Flags::default());
    }

    /// The round as first written: a byte at a time.
    fn reference(s: &[u8], plus: bool, first: bool, flags: &mut Flags) -> Option<Vec<u8>> {
        if !plus && !has_escape(s) {
            if first && s.contains(&b'%') {
                flags.invalid_percent = true;
            }
            return None;
        }
        let mut out = Vec::new();
        let mut changed = false;
        let mut i = 0;
        while i < s.len() {
            let b = s[i];
            if b == b'%' {
                if let (Some(h), Some(l)) = (
                    s.get(i + 1).and_then(|&c| hex_val(c)),
                    s.get(i + 2).and_then(|&c| hex_val(c)),
                ) {
                    out.push(h << 4 | l);
                    i += 3;
                    changed = true;
                    continue;
                }
                if let Some(cp) = percent_u::at(&s[i..]) {
                    percent_u::push(cp, &mut out, flags);
                    i += percent_u::LEN;
                    changed = true;
                    continue;
                }
                if first {
                    flags.invalid_percent = true;
                }
            } else if plus && b == b'+' {
                out.push(b' ');
                i += 1;
                changed = true;
                continue;
            }
            out.push(b);
            i += 1;
        }
        changed.then_some(out)
    }

    proptest::proptest! {
        /// Copying the runs between `%` at once gives the bytes and the
        /// flags of the byte-at-a-time round, on text dense in escapes,
        /// broken escapes, `%u` and `+`.
        #[test]
        fn run_copying_rounds_as_bytewise(
            parts in proptest::collection::vec(
                proptest::prop_oneof![
                    "%[0-9a-fA-FgG]{0,2}",
                    "%[uU][0-9a-fA-F]{0,4}",
                    "[a-z+ %\\\\]{0,6}",
                    proptest::arbitrary::any::<char>().prop_map(String::from),
                ],
                0..24,
            ),
            plus in proptest::arbitrary::any::<bool>(),
            first in proptest::arbitrary::any::<bool>(),
        ) {
            let s = parts.concat();
            let (mut f1, mut f2) = (Flags::default(), Flags::default());
            let got = round(s.as_bytes(), plus, first, &mut f1);
            let want = reference(s.as_bytes(), plus, first, &mut f2);
            proptest::prop_assert_eq!(got, want);
            proptest::prop_assert_eq!(f1, f2);
        }
    }
}
