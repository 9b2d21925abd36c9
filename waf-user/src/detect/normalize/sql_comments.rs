//! SQL block comments, each replaced by a space (`1/**/union`); MySQL
//! executable comments `/*!50000 ... */` keep their content, a stray `*/`
//! becomes a space too, and an unterminated `/*` runs to the end.

/// Replaces SQL block comments by a space; MySQL `/*!50000 ... */` keeps
/// its content.
pub(super) fn strip(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'/' && s.get(i + 1) == Some(&b'*') {
            if s.get(i + 2) == Some(&b'!') {
                i += 3;
                while i < s.len() && s[i].is_ascii_digit() {
                    i += 1;
                }
                out.push(b' ');
                continue;
            }
            match memchr::memmem::find(&s[i + 2..], b"*/") {
                Some(j) => i += 2 + j + 2,
                None => i = s.len(),
            }
            out.push(b' ');
            continue;
        }
        if s[i] == b'*' && s.get(i + 1) == Some(&b'/') {
            out.push(b' ');
            i += 2;
            continue;
        }
        out.push(s[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_comments_by_a_space() {
        for (raw, want) in [
            (&b"1/**/union/**/select"[..], &b"1 union select"[..]),
            (b"un/*x*/ion", b"un ion"),
            (b"/*a*//*b*/", b"  "),
            (b"a/*/b*/c", b"a c"),
            (b"a/**/", b"a "),
        ] {
            assert_eq!(strip(raw), want, "{raw:?}");
        }
    }

    #[test]
    fn keeps_the_content_of_mysql_executable_comments() {
        assert_eq!(strip(b"/*!50000select*/ 1"), b" select  1");
        assert_eq!(strip(b"/*!select*/"), b" select ");
        assert_eq!(strip(b"/*!"), b" ");
        assert_eq!(strip(b"/*!123"), b" ");
    }

    #[test]
    fn handles_unterminated_and_stray_delimiters() {
        assert_eq!(strip(b"1 union/* select"), b"1 union ");
        assert_eq!(strip(b"/*"), b" ");
        assert_eq!(strip(b"1*/union"), b"1 union");
        assert_eq!(strip(b"a/b*c/"), b"a/b*c/");
        assert_eq!(strip(b"/"), b"/");
    }
}
