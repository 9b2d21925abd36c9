//! JavaScript escapes (`\x3c`, `\u003c`, `\u{3c}`) and CSS escapes (`\3c `,
//! `\00003c`) that yield printable ASCII; other backslashes stay, so
//! Windows paths and regular expressions keep theirs. A `\u` escape of an
//! ASCII letter inside a word (`\u0061lert`, `\u0076\u0061l\u0075e`) is
//! noted: JavaScript reads it in an identifier as the letter, and nothing
//! but a filter's evasion spells a letter of a name so.

use super::{hex4, push_char};
use crate::http::target::hex_val;

/// Longest `\u{...}` escape looked at, braces included.
const BRACED_MAX: usize = 10;
/// Most hex digits of a CSS escape.
const CSS_DIGITS: usize = 6;

/// Decodes every escape of `s`; sets `escaped_letter` when a `\u` escape
/// of an ASCII letter is part of a word.
pub(super) fn decode(s: &[u8], escaped_letter: &mut bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] != b'\\' {
            out.push(s[i]);
            i += 1;
            continue;
        }
        match escape_at(&s[i + 1..]) {
            Some((cp, len)) => {
                if !*escaped_letter && s[i + 1] == b'u' && in_word(cp, &out, &s[i + 1 + len..]) {
                    *escaped_letter = true;
                }
                push_char(cp, &mut out);
                i += 1 + len;
            }
            None => {
                out.push(b'\\');
                i += 1;
            }
        }
    }
    out
}

/// Whether an escaped code point is an ASCII letter with a word character
/// (or another `\u` escape) right before or after it: `before` is what
/// was decoded so far, `after` the raw text past the escape.
fn in_word(cp: u32, before: &[u8], after: &[u8]) -> bool {
    let word = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'$');
    u8::try_from(cp).is_ok_and(|b| b.is_ascii_alphabetic())
        && (before.last().is_some_and(word)
            || after.first().is_some_and(word)
            || after.starts_with(b"\\u"))
}

/// The code point and length of an escape body after `\`.
fn escape_at(s: &[u8]) -> Option<(u32, usize)> {
    match s.first()? {
        b'x' => {
            let cp = (u32::from(hex_val(*s.get(1)?)?) << 4) | u32::from(hex_val(*s.get(2)?)?);
            Some((cp, 3))
        }
        b'u' if s.get(1) == Some(&b'{') => {
            let end = s.iter().take(BRACED_MAX).position(|&c| c == b'}')?;
            let cp = s[2..end]
                .iter()
                .try_fold(0u32, |a, &c| hex_val(c).map(|v| (a << 4) | u32::from(v)))?;
            (end > 2).then_some((cp, end + 1))
        }
        b'u' => Some((hex4(s.get(1..5)?)?, 5)),
        c if c.is_ascii_hexdigit() => css_at(s),
        _ => None,
    }
}

/// A CSS escape: two to six hex digits of a printable ASCII character, and
/// the one space that may end it.
fn css_at(s: &[u8]) -> Option<(u32, usize)> {
    let n = s
        .iter()
        .take(CSS_DIGITS)
        .take_while(|c| c.is_ascii_hexdigit())
        .count();
    let cp = s[..n]
        .iter()
        .fold(0u32, |a, &c| (a << 4) | u32::from(hex_val(c).unwrap_or(0)));
    if !(0x20..0x7F).contains(&cp) || n < 2 {
        return None;
    }
    let len = if s.get(n) == Some(&b' ') { n + 1 } else { n };
    Some((cp, len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &str) -> String {
        String::from_utf8(decode(s.as_bytes(), &mut false)).expect("UTF-8 in, UTF-8 out")
    }

    fn escaped_letter(s: &str) -> bool {
        let mut seen = false;
        decode(s.as_bytes(), &mut seen);
        seen
    }

    #[test]
    fn notes_escaped_letters_inside_words() {
        for raw in [
            "\\u0061lert(1)",
            "\"in \\u0076\\u0061l\\u0075e\\u004F\\u0066=",
            "c\\u006fnsole.info(1)",
            "\\u{61}lert",
            "__\\u0070\\u0072oto__",
            "\\u0065\\u0076\\u0061\\u006c",
        ] {
            assert!(escaped_letter(raw), "{raw}");
        }
        // Escapes of punctuation, of letters past ASCII, `\x` (no escape
        // inside a name), a letter alone, and paths and regexes keep quiet.
        for raw in [
            "\\u003cscript\\u003e",
            "$\\u007Bjndi:ldap://x}",
            "caf\\u00e9",
            "\\x61lert",
            "say \\u0041 or \\u0042",
            "c:\\users\\u1234\\docs",
            "\\u4e2d\\u6587",
            "^\\d+\\w*$",
        ] {
            assert!(!escaped_letter(raw), "{raw}");
        }
    }

    #[test]
    fn decodes_js_escapes_in_either_case() {
        for (raw, want) in [
            ("\\x3cscript\\x3E", "<script>"),
            ("\\u003c\\u003C", "<<"),
            ("\\u{3c}\\u{00003C}", "<<"),
            ("\\u{1f600}", "\u{1f600}"),
            ("\\xe9", "\u{e9}"),
            ("\\u00e9", "\u{e9}"),
        ] {
            assert_eq!(dec(raw), want, "{raw}");
        }
    }

    #[test]
    fn decodes_css_escapes_of_printable_ascii() {
        for (raw, want) in [
            ("\\6a\\61vascript", "javascript"),
            ("\\3c script", "<script"),
            ("\\00003c", "<"),
            ("\\3C\\3e", "<>"),
        ] {
            assert_eq!(dec(raw), want, "{raw}");
        }
        // One hex digit, control characters and non-ASCII stay escaped (six
        // digits at most are read: `\000003c` is U+0003).
        for raw in ["\\a", "\\0a", "\\7f", "\\e9", "\\0000e9", "\\000003cx"] {
            assert_eq!(dec(raw), raw, "{raw}");
        }
    }

    #[test]
    fn keeps_malformed_and_truncated_escapes() {
        for raw in [
            "\\",
            "a\\",
            "\\x",
            "\\x4",
            "\\xg1",
            "\\u",
            "\\u00",
            "\\u00g0",
            "\\u{",
            "\\u{}",
            "\\u{3c",
            "\\u{3g}",
            "\\u{000000003c}",
            "\\n",
            "\\\\",
        ] {
            assert_eq!(dec(raw), raw, "{raw}");
        }
        assert_eq!(dec("c:\\windows\\dev"), "c:\\windows\\dev");
    }

    #[test]
    fn decodes_escapes_at_the_end_of_input() {
        assert_eq!(dec("a\\x3c"), "a<");
        assert_eq!(dec("a\\u003c"), "a<");
        assert_eq!(dec("a\\u{3c}"), "a<");
        assert_eq!(dec("a\\3c"), "a<");
    }

    #[test]
    fn decodes_huge_code_points_to_the_replacement_character() {
        assert_eq!(dec("\\u{110000}"), "\u{fffd}");
        assert_eq!(dec("\\u{fffffff}"), "\u{fffd}");
        assert_eq!(dec("\\ud800"), "\u{fffd}");
    }

    #[test]
    fn decodes_one_level_only() {
        assert_eq!(dec("\\x5cx3c"), "\\x3c");
        assert_eq!(dec("\\\\x3c"), "\\<");
    }
}
