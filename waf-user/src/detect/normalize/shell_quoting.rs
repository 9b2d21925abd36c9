//! The quoting pass of the shell view: removes what a shell drops before
//! running a word: backslashes, quotes, `^`, empty backticks, `$'..'`,
//! special parameters (`$@`, `$*`, `$1`, `$$`...), `${IFS}` (as a space),
//! empty process substitutions `<()`, and variables that are most likely
//! unset (`c$u\at`, `$x cmd`).

/// Whether a byte can be part of a shell word next to a variable.
pub(super) fn word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'/' | b'.' | b'_' | b'-')
}

/// Removes quoting from a folded (lowercase) value.
pub(super) fn unquote(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    let mut ticks = 0usize;
    let apostrophe = lone_apostrophe(s);
    while i < s.len() {
        let b = s[i];
        match b {
            b'\'' if apostrophe == Some(i) => {
                out.push(b);
                i += 1;
            }
            b'\\' | b'\'' | b'"' | b'^' => i += 1,
            // An empty pair outside a substitution is nothing; inside one
            // it closes it and opens the next.
            b'`' if s.get(i + 1) == Some(&b'`') => {
                if ticks % 2 == 1 {
                    out.extend_from_slice(b"` `");
                    ticks += 2;
                }
                i += 2;
            }
            b'`' => {
                ticks += 1;
                out.push(b);
                i += 1;
            }
            b'<' | b'>' if s.get(i + 1) == Some(&b'(') && s.get(i + 2) == Some(&b')') => i += 3,
            b'$' => i += dollar(&s[i..], &mut out),
            // A run of bytes none of the arms above looks at: copied whole.
            _ => {
                const QUOTING: [bool; 256] = super::byte_set(b"\\'\"^`<>$");
                let end = s[i + 1..]
                    .iter()
                    .position(|&c| QUOTING[usize::from(c)])
                    .map_or(s.len(), |j| i + 1 + j);
                out.extend_from_slice(&s[i..end]);
                i = end;
            }
        }
    }
    out
}

/// The position of the value's only single quote, when it stands between
/// two letters (`I'd`, `don't`): a quote a shell cannot pair within the
/// value. Unquoted, `; I'd say` would read as `; id say`, but no shell runs
/// `id` from it: outside quotes the quote opens a string that never closes
/// (a syntax error), or that takes the rest of the line into the word
/// (`Id say...`); inside a template's quotes the `;` before it is quoted
/// too. Quoting that does join a command (`;i'd'`, `x';i'd` in `'...'`)
/// takes two quotes.
fn lone_apostrophe(s: &[u8]) -> Option<usize> {
    let i = memchr::memchr(b'\'', s)?;
    if memchr::memchr(b'\'', &s[i + 1..]).is_some() {
        return None;
    }
    let letter = |j: Option<usize>| {
        j.and_then(|j| s.get(j))
            .is_some_and(u8::is_ascii_alphabetic)
    };
    (letter(i.checked_sub(1)) && letter(Some(i + 1))).then_some(i)
}

/// What a `$` at the start of `s` stands for: appends it to `out` and
/// returns how many bytes it took.
fn dollar(s: &[u8], out: &mut Vec<u8>) -> usize {
    let rest = &s[1..];
    if rest.starts_with(b"{ifs") {
        let end = memchr::memchr(b'}', rest).map_or(rest.len(), |j| j + 1);
        out.push(b' ');
        return 1 + end;
    }
    if rest.starts_with(b"ifs") {
        out.push(b' ');
        // `$IFS$9`: a positional parameter glued to it is empty.
        let glued = s.get(4) == Some(&b'$') && s.get(5).is_some_and(u8::is_ascii_digit);
        return if glued { 6 } else { 4 };
    }
    match rest.first() {
        Some(b'@' | b'*' | b'0'..=b'9' | b'!' | b'-' | b'_' | b'#' | b'?' | b'$') => return 2,
        Some(b'\'') => {
            let mark = out.len();
            return ansi_c(s, out).unwrap_or_else(|| {
                out.truncate(mark);
                1
            });
        }
        Some(b'"') => return 1,
        _ => {}
    }
    if rest.starts_with(b"()") {
        return 3;
    }
    if rest.starts_with(b"{}") {
        return 3;
    }
    if rest.starts_with(b"{@}") {
        return 4;
    }
    let n = variable_len(s);
    if n > 0 && unset_variable(s, n, out) {
        return n;
    }
    out.push(b'$');
    1
}

/// A bash ANSI-C string (`$'\151\144'`) at the start of `s`: appends
/// what bash makes of it (octal, hex and letter escapes undone, ASCII
/// lowercased) and returns its length; None when it does not close.
fn ansi_c(s: &[u8], out: &mut Vec<u8>) -> Option<usize> {
    let mut i = 2;
    while i < s.len() {
        match s[i] {
            b'\\' => {
                let (c, n) = match s.get(i + 1)? {
                    b'0'..=b'7' => {
                        let digits = s[i + 1..]
                            .iter()
                            .take(3)
                            .take_while(|c| matches!(c, b'0'..=b'7'))
                            .count();
                        let v = s[i + 1..i + 1 + digits]
                            .iter()
                            .fold(0u32, |a, &c| a * 8 + u32::from(c - b'0'));
                        // Past `\377` bash keeps the low byte.
                        (v as u8, 1 + digits)
                    }
                    b'x' => {
                        let digits = s[i + 2..]
                            .iter()
                            .take(2)
                            .take_while(|c| c.is_ascii_hexdigit())
                            .count();
                        let v = s[i + 2..i + 2 + digits].iter().fold(0u8, |a, &c| {
                            (a << 4) | crate::http::target::hex_val(c).unwrap_or(0)
                        });
                        (v, 2 + digits)
                    }
                    b'n' => (b'\n', 2),
                    b't' => (b' ', 2),
                    &c if c.is_ascii() => (c, 2),
                    // Before a character past ASCII: kept whole.
                    _ => (b'\\', 1),
                };
                // A byte past ASCII stands as `?`: the view stays UTF-8.
                out.push(if c.is_ascii() {
                    c.to_ascii_lowercase()
                } else {
                    b'?'
                });
                i += n;
            }
            b'\'' => return Some(i + 1),
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    None
}

/// Whether the variable of length `n` at the start of `s` is most likely
/// unset: glued to a word (`c$u\at`), or alone between separators
/// (`;$x id`).
fn unset_variable(s: &[u8], n: usize, out: &[u8]) -> bool {
    let inside = out.last().is_some_and(|&c| word_byte(c));
    let alone = out
        .last()
        .is_none_or(|&c| matches!(c, b' ' | b';' | b'|' | b'&' | b'`' | b'(' | b'\n'))
        && s.get(n).is_some_and(|&c| c == b' ');
    inside || alone
}

/// Length of `$name` or `${name}` at the start of `s` (0 if none).
fn variable_len(s: &[u8]) -> usize {
    if s.get(1) == Some(&b'{') {
        let n = s[2..]
            .iter()
            .take(32)
            .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
            .count();
        if n > 0 && s.get(2 + n) == Some(&b'}') && !s[2].is_ascii_digit() {
            return n + 3;
        }
        return 0;
    }
    match s.get(1) {
        Some(c) if c.is_ascii_alphabetic() || *c == b'_' => {
            1 + s[1..]
                .iter()
                .take(32)
                .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
                .count()
        }
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unq(s: &str) -> String {
        String::from_utf8(unquote(s.as_bytes())).expect("UTF-8 in, UTF-8 out")
    }

    #[test]
    fn removes_quotes_backslashes_and_carets() {
        assert_eq!(unq("c\\a't' \"/e\"tc/pa^ss^wd"), "cat /etc/passwd");
        assert_eq!(unq("''\"\"\\"), "");
    }

    #[test]
    fn keeps_a_lone_apostrophe_inside_a_word() {
        // Prose: the only quote, between letters.
        assert_eq!(unq("great post; i'd say"), "great post; i'd say");
        assert_eq!(unq("don't"), "don't");
        // Quotes a shell pairs, or that stand outside a word, still go.
        assert_eq!(unq(";i'd'"), ";id");
        assert_eq!(unq("x';i'd"), "x;id");
        assert_eq!(unq(";'id"), ";id");
        assert_eq!(unq(";id'"), ";id");
        assert_eq!(unq("i'd \"x\""), "i'd x");
    }

    #[test]
    fn handles_backtick_pairs_by_context() {
        assert_eq!(unq("pi``ng"), "ping");
        // Inside a substitution an empty pair closes it and opens the next.
        assert_eq!(unq("`id``whoami`"), "`id` `whoami`");
        assert_eq!(unq("`id`"), "`id`");
    }

    #[test]
    fn removes_special_parameters_and_empty_expansions() {
        for (raw, want) in [
            ("ca$@t", "cat"),
            ("ca$*t /e$1tc", "cat /etc"),
            ("c$$at$?", "cat"),
            ("$'id'", "id"),
            ("w$()hoami", "whoami"),
            ("w${}ho${@}ami", "whoami"),
            ("pi<()ng>()", "ping"),
        ] {
            assert_eq!(unq(raw), want, "{raw}");
        }
    }

    #[test]
    fn undoes_ansi_c_strings_as_bash_does() {
        assert_eq!(unq(r"x;$'\151\144'"), "x;id");
        assert_eq!(unq(r"$'\143\141\164' $'\57etc'"), "cat /etc");
        assert_eq!(unq(r"$'\x69d'"), "id");
        // Unclosed: the `$` and quote go, as before.
        assert_eq!(unq(r"$'\151"), "151");
    }

    #[test]
    fn reads_ifs_as_a_space() {
        for (raw, want) in [
            ("cat${ifs}/etc/passwd", "cat /etc/passwd"),
            ("cat$ifs/etc", "cat /etc"),
            ("cat$ifs$9/etc", "cat /etc"),
            ("cat${ifs", "cat "),
            ("cat${ifs%??}x", "cat x"),
        ] {
            assert_eq!(unq(raw), want, "{raw}");
        }
    }

    #[test]
    fn removes_variables_glued_to_words_or_standing_alone() {
        for (raw, want) in [
            ("c$u\\at /etc$u/passwd", "cat /etc/passwd"),
            (";$a id", "; id"),
            ("$a id", " id"),
            ("c${u}at", "cat"),
            ("x;$home", "x;$home"),
            ("echo $home", "echo $home"),
            ("${1}", "${1}"),
            ("$", "$"),
            ("a$", "a$"),
        ] {
            assert_eq!(unq(raw), want, "{raw}");
        }
    }

    #[test]
    fn measures_variables() {
        assert_eq!(variable_len(b"$abc def"), 4);
        assert_eq!(variable_len(b"$_1"), 3);
        assert_eq!(variable_len(b"${abc}x"), 6);
        assert_eq!(variable_len(b"${abc"), 0);
        assert_eq!(variable_len(b"${9a}"), 0);
        assert_eq!(variable_len(b"$9"), 0);
        assert_eq!(variable_len(b"$"), 0);
        let long = [b"$".as_slice(), &[b'a'; 40]].concat();
        assert_eq!(variable_len(&long), 33);
    }
}
