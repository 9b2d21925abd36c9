//! Case and whitespace folding: ASCII lowercased, runs of whitespace,
//! control characters and non-breaking spaces folded to one space, or to
//! one `\n` when the run held a line break (rules anchor on line starts).

/// Whether [`fold`] would return `s` unchanged: no uppercase ASCII and
/// nothing [`has_runs`] looks for.
pub fn is_folded(s: &[u8]) -> bool {
    !s.iter().any(u8::is_ascii_uppercase) && !has_runs(s)
}

/// Whether `s` holds what folding does more than lowercase: a control
/// character, a non-breaking space's lead byte, or two spaces in a row.
fn has_runs(s: &[u8]) -> bool {
    let mut special = false;
    let mut prev_space = false;
    for &b in s {
        let space = b == b' ';
        special |= (b < 0x20) | (b == 0x7f) | (b == 0xC2) | (space & prev_space);
        prev_space = space;
    }
    special
}

/// Lowercases ASCII and folds runs of whitespace/control characters (and
/// non-breaking spaces) into one space, or one `\n` if the run had a break.
pub fn fold(s: &[u8]) -> Vec<u8> {
    // Most values have single spaces only: lowercasing is all there is.
    if !has_runs(s) {
        return s.to_ascii_lowercase();
    }
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        // Copy the run up to the next whitespace, control or NBSP lead byte
        // at once, then lowercase it in place.
        let run = s[i..]
            .iter()
            .position(|&b| b <= 0x20 || b == 0x7f || b == 0xC2)
            .map_or(s.len(), |j| i + j);
        if run > i {
            let start = out.len();
            out.extend_from_slice(&s[i..run]);
            out[start..].make_ascii_lowercase();
            i = run;
            continue;
        }
        if s[i] == 0xC2 && s.get(i + 1) != Some(&0xA0) {
            out.push(0xC2);
            i += 1;
            continue;
        }
        i = skip_space_run(s, i, &mut out);
    }
    out
}

/// Folds the run of whitespace, control characters and NBSPs at `i` into
/// one byte of `out`; returns where the run ends.
fn skip_space_run(s: &[u8], mut i: usize, out: &mut Vec<u8>) -> usize {
    let mut newline = false;
    while i < s.len() {
        let c = s[i];
        if c <= 0x20 || c == 0x7f {
            newline |= c == b'\n' || c == b'\r';
            i += 1;
        } else if c == 0xC2 && s.get(i + 1) == Some(&0xA0) {
            i += 2;
        } else {
            break;
        }
    }
    out.push(if newline { b'\n' } else { b' ' });
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowercases_ascii_only() {
        assert_eq!(fold(b"SeLeCT * FROM"), b"select * from");
        assert_eq!(fold("\u{c9}COLE".as_bytes()), "\u{c9}cole".as_bytes());
    }

    #[test]
    fn folds_runs_to_one_space_or_one_line_break() {
        for (raw, want) in [
            (&b"a  b"[..], &b"a b"[..]),
            (b"a\t\x0b\x0c b", b"a b"),
            (b"a \r\n\t b", b"a\nb"),
            (b"a\rb", b"a\nb"),
            (b"a\x00\x01\x7fb", b"a b"),
            (b"a\xc2\xa0\xc2\xa0b", b"a b"),
            (b" \n lead and trail \t", b"\nlead and trail "),
            (b"\t", b" "),
        ] {
            assert_eq!(fold(raw), want, "{raw:?}");
        }
    }

    #[test]
    fn keeps_other_c2_characters_and_invalid_utf8() {
        assert_eq!(fold("\u{e9}\u{a9}x".as_bytes()), "\u{e9}\u{a9}x".as_bytes());
        assert_eq!(fold(b"\xc2"), b"\xc2");
        assert_eq!(fold(b"\xc2 \xc2\xc2\xa0"), b"\xc2 \xc2 ");
        assert_eq!(fold(b"\xff\xfe  A"), b"\xff\xfe a");
    }
}
