//! The expansion pass of the shell view, after quoting is gone: one-letter
//! globs (`/e[t]c`) become the letter and brace lists (`{cat,/etc/passwd}`,
//! `c{a,oun}t`) their words; an HTML entity left undecoded (`&ensp;`)
//! becomes a space.

use super::entities;
use super::shell_quoting::word_byte;

/// Longest prefix or suffix glued to a brace list.
const BRACE_AFFIX: usize = 32;
/// Longest brace list looked at, braces included.
const BRACE_MAX: usize = 256;
/// Bytes the expansion may add to a value beyond its own length: the
/// output is at most twice the input plus this. Gluing affixes to every
/// item multiplies a value (a list of 254 empty items between two 32-byte
/// words is 65 times its length), and a body of such lists made a view
/// of 50 MB out of 1 MB, whose scan took 300 ms; past the bound, lists
/// still split into their words, without the affixes.
const GROWTH_EXTRA: usize = 4096;

/// Expands globs and brace lists of an unquoted value.
pub(super) fn expand(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    // Invariant: what is written plus what is left of the input stays
    // within the limit (nothing but a list with affixes writes more than
    // it reads, and one does only when that keeps the invariant).
    let limit = 2 * s.len() + GROWTH_EXTRA;
    let mut i = 0;
    while i < s.len() {
        let b = s[i];
        match b {
            // An HTML entity left undecoded (`&ensp;`) is not a separator.
            b'&' if entities::named_len(&s[i..]) > 0 => {
                out.push(b' ');
                i += entities::named_len(&s[i..]);
            }
            b'[' => match one_letter_class(&s[i..]) {
                Some((c, len)) => {
                    out.push(c);
                    i += len;
                }
                None => {
                    out.push(b);
                    i += 1;
                }
            },
            b'{' => match brace_list(&s[i..]) {
                Some(len) => i = expand_brace_list(s, i, len, &mut out, limit),
                None => {
                    out.push(b);
                    i += 1;
                }
            },
            // A run of bytes without `&`, `[` or `{`: copied whole.
            _ => {
                let end =
                    memchr::memchr3(b'&', b'[', b'{', &s[i + 1..]).map_or(s.len(), |j| i + 1 + j);
                out.extend_from_slice(&s[i..end]);
                i = end;
            }
        }
    }
    out
}

/// Expands the brace list of length `len` at `s[i]`, with the word before
/// it (taken back from `out`) and the word after it glued to every item:
/// `c{a,oun}t` gives `cat count`. Returns where the suffix ends. When that
/// would take `out` past `limit` (with the rest of the input still to be
/// written), the items are written between spaces, the affixes left where
/// they are (`c a oun t`).
fn expand_brace_list(s: &[u8], i: usize, len: usize, out: &mut Vec<u8>, limit: usize) -> usize {
    let keep = out.len()
        - out
            .iter()
            .rev()
            .take(BRACE_AFFIX)
            .take_while(|&&c| word_byte(c))
            .count();
    let prefix = out.split_off(keep);
    let after = i + len;
    let suffix_len = s[after..]
        .iter()
        .take(BRACE_AFFIX)
        .take_while(|&&c| word_byte(c))
        .count();
    let suffix = &s[after..after + suffix_len];
    let items = s[i + 1..i + len - 1].split(|&c| c == b',');
    let glued: usize = items
        .clone()
        .map(|item| prefix.len() + item.len() + suffix.len() + 1)
        .sum();
    if keep + glued + (s.len() - after - suffix_len) > limit {
        out.extend_from_slice(&prefix);
        for item in items {
            out.push(b' ');
            out.extend_from_slice(item);
        }
        out.push(b' ');
        return after;
    }
    let mut first = true;
    for item in items {
        if item.is_empty() && prefix.is_empty() && suffix.is_empty() {
            continue;
        }
        if !first {
            out.push(b' ');
        }
        first = false;
        out.extend_from_slice(&prefix);
        out.extend_from_slice(item);
        out.extend_from_slice(suffix);
    }
    after + suffix_len
}

/// `[e]` or `[e//]`: one letter (slashes ignored) in brackets.
fn one_letter_class(s: &[u8]) -> Option<(u8, usize)> {
    let end = s.iter().take(8).position(|&c| c == b']')?;
    let mut letters = s[1..end].iter().filter(|&&c| c != b'/');
    let c = *letters.next()?;
    (letters.next().is_none() && c.is_ascii_alphanumeric()).then_some((c, end + 1))
}

/// `{cat,/etc/passwd}`: the length of a brace list without spaces.
fn brace_list(s: &[u8]) -> Option<usize> {
    let end = s.iter().take(BRACE_MAX).position(|&c| c == b'}')?;
    let inner = &s[1..end];
    let ok = inner.contains(&b',')
        && inner.iter().all(|&c| {
            c.is_ascii_alphanumeric()
                || matches!(c, b',' | b'/' | b'.' | b'-' | b'_' | b'~' | b'*' | b'?')
        });
    ok.then_some(end + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exp(s: &str) -> String {
        String::from_utf8(expand(s.as_bytes())).expect("UTF-8 in, UTF-8 out")
    }

    #[test]
    fn reads_one_letter_globs_as_the_letter() {
        assert_eq!(exp("/e[t]c/pa[s]swd"), "/etc/passwd");
        assert_eq!(exp("[c//]at"), "cat");
        assert_eq!(exp("[ab]c [] [-] a[1"), "[ab]c [] [-] a[1");
        // The closing bracket must come within eight bytes.
        assert_eq!(exp("[x/////]"), "x");
        assert_eq!(exp("[x//////]"), "[x//////]");
    }

    #[test]
    fn expands_brace_lists_with_their_prefix_and_suffix() {
        for (raw, want) in [
            ("{cat,/etc/passwd}", "cat /etc/passwd"),
            ("c{a,oun}t x", "cat count x"),
            (";{l,-lh}s", ";ls -lhs"),
            ("{,id,}", "id"),
            ("a{,}b", "ab ab"),
        ] {
            assert_eq!(exp(raw), want, "{raw}");
        }
    }

    #[test]
    fn leaves_other_braces() {
        for raw in ["{a}", "{a b,c}", "{a,b", "function(){return 1}", "{", "}{,"] {
            assert_eq!(exp(raw), raw, "{raw}");
        }
        let far = format!("{{a,{}}}", "b".repeat(300));
        assert_eq!(exp(&far), far);
    }

    #[test]
    fn glues_at_most_32_bytes_on_each_side() {
        let word = "w".repeat(40);
        let out = exp(&format!("{word}{{a,b}}{word}"));
        let affix = "w".repeat(32);
        assert_eq!(
            out,
            format!(
                "{}{affix}a{affix} {affix}b{affix}{}",
                "w".repeat(8),
                "w".repeat(8)
            )
        );
    }

    /// Lists glued to long words, one after another: the output stays
    /// within twice the input plus [`GROWTH_EXTRA`], and past that the
    /// lists still split into their words.
    #[test]
    fn growth_is_bounded_and_lists_past_the_bound_still_split() {
        let affix = "w".repeat(32);
        let junk = format!("{affix}{{{}}}{affix} ", ",".repeat(250));
        let raw = format!("{}{{cat,/etc/passwd}}", junk.repeat(100));
        let out = exp(&raw);
        assert!(out.len() <= 2 * raw.len() + GROWTH_EXTRA, "{}", out.len());
        assert!(
            out.ends_with(" cat /etc/passwd"),
            "{}",
            &out[out.len() - 40..]
        );
        // The first list still gets its affixes.
        assert!(out.starts_with(&format!("{affix}{affix} {affix}{affix} ")));
        // One list alone within the bound expands whole.
        assert_eq!(
            exp(&format!("{affix}{{a,b}}")),
            format!("{affix}a {affix}b")
        );
    }

    #[test]
    fn reads_undecoded_entities_as_spaces() {
        assert_eq!(exp("cat&ensp;/etc"), "cat /etc");
        assert_eq!(exp("a&b c&x;"), "a&b c&x;");
    }
}
