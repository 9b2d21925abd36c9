//! Base64 (standard or URL-safe) values that decode to code-like text:
//! payloads sent encoded in cookies, tokens or `eval` arguments.

/// Shortest base64 body tried (without padding).
const BASE64_MIN: usize = 12;
/// Longest base64 value tried.
const BASE64_MAX: usize = 64 * 1024;

/// The text a base64 (standard or URL-safe) value decodes to, when it is
/// printable ASCII holding code punctuation (`(`, `;`, `$`, `<`...) or a
/// parent directory (`../`, a file parameter sent encoded). Such
/// text is no base64 itself, so decoding never nests.
pub fn base64_text(v: &[u8]) -> Option<String> {
    let v = v.trim_ascii();
    let body = v
        .strip_suffix(b"==")
        .or_else(|| v.strip_suffix(b"="))
        .unwrap_or(v);
    if body.len() < BASE64_MIN || v.len() > BASE64_MAX || body.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(body.len() / 4 * 3 + 2);
    for chunk in body.chunks(4) {
        let mut n = 0u32;
        for &c in chunk {
            n = (n << 6) | sextet(c)?;
        }
        n <<= 6 * (4 - chunk.len() as u32);
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..chunk.len() - 1]);
    }
    let printable = out
        .iter()
        .all(|&b| (0x20..0x7F).contains(&b) || matches!(b, b'\t' | b'\r' | b'\n'));
    let code = out.iter().any(|b| {
        matches!(
            b,
            b'(' | b')' | b';' | b'{' | b'}' | b'$' | b'<' | b'>' | b'|' | b'`' | b'\'' | b'"'
        )
    }) || memchr::memmem::find_iter(&out, b"..")
        .any(|i| matches!(out.get(i + 2), Some(b'/' | b'\\')));
    (printable && code)
        .then(|| String::from_utf8(out).ok())
        .flatten()
}

/// The text the base64 payload of a `data:` URI in `v` decodes to
/// (`data:;base64,PD9waHAg...`, `data:text/html;base64,...`), on the
/// terms of [`base64_text`]: an image's bytes are not text.
pub fn data_uri_text(v: &[u8]) -> Option<String> {
    const MARK: &[u8] = b";base64,";
    let at = memchr::memmem::find_iter(v, b",")
        .find(|&i| i + 1 >= MARK.len() && v[i + 1 - MARK.len()..=i].eq_ignore_ascii_case(MARK))?;
    let head = &v[..at + 1 - MARK.len()];
    let scheme = head
        .windows(5)
        .rposition(|w| w.eq_ignore_ascii_case(b"data:"))?;
    // Only a media type and parameters between `data:` and `;base64`.
    if head[scheme + 5..]
        .iter()
        .any(|&c| !(c.is_ascii_alphanumeric() || b"/+.-;=_ ".contains(&c)))
    {
        return None;
    }
    let rest = &v[at + 1..];
    let end = rest
        .iter()
        .position(|&c| !(c.is_ascii_alphanumeric() || b"+/=-_".contains(&c)))
        .unwrap_or(rest.len());
    base64_text(&rest[..end])
}

/// The six bits a base64 character stands for (both alphabets).
pub fn sextet(c: u8) -> Option<u32> {
    match c {
        b'A'..=b'Z' => Some(u32::from(c - b'A')),
        b'a'..=b'z' => Some(u32::from(c - b'a') + 26),
        b'0'..=b'9' => Some(u32::from(c - b'0') + 52),
        b'+' | b'-' => Some(62),
        b'/' | b'_' => Some(63),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_base64_code_only() {
        assert_eq!(
            base64_text(b"d2hpbGUodHJ1ZSk7Cg==").as_deref(),
            Some("while(true);\n")
        );
        assert_eq!(base64_text(b"aGVsbG8gd29ybGQgYWdhaW4="), None);
        assert_eq!(base64_text(b"not base64 at all!"), None);
        assert_eq!(base64_text(b"AAECAwQFBgcICQoL"), None);
        // A path that leaves its directory is worth reading; one that
        // does not is not.
        assert_eq!(
            base64_text(b"Li4vLi4vZXRjL3Bhc3N3ZA==").as_deref(),
            Some("../../etc/passwd")
        );
        assert_eq!(
            base64_text(b"Li5cLi5cd2luLmluaQ==").as_deref(),
            Some("..\\..\\win.ini")
        );
        assert_eq!(base64_text(b"aW1hZ2VzL2xvZ28ucG5n"), None);
    }

    #[test]
    fn reads_both_alphabets_with_or_without_padding() {
        // `<?php system($_GET[c]);?>` in the standard and URL-safe alphabets.
        let std = b"PD9waHAgc3lzdGVtKCRfR0VUW2NdKTs/Pg==";
        let url = b"PD9waHAgc3lzdGVtKCRfR0VUW2NdKTs_Pg";
        let want = Some("<?php system($_GET[c]);?>");
        assert_eq!(base64_text(std).as_deref(), want);
        assert_eq!(base64_text(url).as_deref(), want);
        assert_eq!(
            base64_text(b"  PD9waHAgc3lzdGVtKCRfR0VUW2NdKTs/Pg==\n").as_deref(),
            want
        );
    }

    #[test]
    fn refuses_short_truncated_or_oversized_values() {
        // `id;` is too short to try.
        assert_eq!(base64_text(b"aWQ7"), None);
        // A body of 4n+1 characters is no base64.
        assert_eq!(base64_text(b"KGEpOyhiKTsoYyk7K"), None);
        // Characters outside both alphabets.
        assert_eq!(base64_text(b"KGEpOyhiKTsoYyk7*A=="), None);
        let huge = vec![b'K'; BASE64_MAX + 4];
        assert_eq!(base64_text(&huge), None);
    }

    #[test]
    fn data_uris_decode_their_base64_text_only() {
        let php = b"data:;base64,PD9waHAgZWNobyAndzRwMXQxJzsgPz4=";
        assert_eq!(
            data_uri_text(php).as_deref(),
            Some("<?php echo 'w4p1t1'; ?>")
        );
        let html = b"x=DATA:text/html;charset=utf-8;BASE64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==&y";
        assert_eq!(
            data_uri_text(html).as_deref(),
            Some("<script>alert(1)</script>")
        );
        // An image is no text; base64 without `data:` is base64_text's.
        assert_eq!(
            data_uri_text(b"data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAAB"),
            None
        );
        assert_eq!(data_uri_text(b"PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg=="), None);
        assert_eq!(data_uri_text(b";base64,"), None);
        assert_eq!(
            data_uri_text(b"data:<x>;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg=="),
            None
        );
    }
}
