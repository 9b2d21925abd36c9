//! JSON as lenient readers take it (Jackson's `ALLOW_COMMENTS`, JSON5,
//! .NET's `JsonCommentHandling.Skip`): comments and trailing commas
//! rewritten away before the strict walk of [`json`].

use super::json::{self, JsonItems};

/// A document read as lenient readers read it.
pub struct Lenient {
    /// Its keys and strings.
    pub items: JsonItems,
    /// Whether the depth limit was hit.
    pub too_deep: bool,
    /// Whether it needed [`relaxed`]'s rewrite (it is no strict JSON).
    pub rewritten: bool,
}

/// [`json::parse_first`] of `body`, and when that fails, of the text
/// [`relaxed`] rewrites.
pub fn parse_lenient(body: &[u8], max_depth: usize, whole: bool) -> Option<Lenient> {
    let (parsed, rewritten) = match json::parse_first(body, max_depth, whole) {
        Ok(parsed) => (parsed, false),
        Err(_) => (
            json::parse_first(&relaxed(body)?, max_depth, whole).ok()?,
            true,
        ),
    };
    let (items, too_deep) = parsed;
    Some(Lenient {
        items,
        too_deep,
        rewritten,
    })
}

/// A document JSON readers that allow comments and trailing commas
/// (Jackson's `ALLOW_COMMENTS`, JSON5, .NET's `JsonCommentHandling.Skip`)
/// read, rewritten as strict JSON: `//` and `/* */` comments outside
/// strings become spaces, a comma before `}` or `]` goes. `None` when
/// there is nothing to rewrite.
pub fn relaxed(body: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(body.len());
    let mut changed = false;
    let mut i = 0;
    // Where the last comma outside strings was written, while only blanks
    // and comments followed it.
    let mut comma: Option<usize> = None;
    while i < body.len() {
        let b = body[i];
        match b {
            b'"' => {
                let end = string_end(body, i);
                out.extend_from_slice(&body[i..end]);
                i = end;
                comma = None;
                continue;
            }
            b'/' if body.get(i + 1) == Some(&b'/') => {
                let end = line_comment_end(body, i);
                out.push(b' ');
                i = end;
                changed = true;
                continue;
            }
            b'/' if body.get(i + 1) == Some(&b'*') => {
                let end =
                    memchr::memmem::find(&body[i + 2..], b"*/").map_or(body.len(), |n| i + n + 4);
                out.push(b' ');
                i = end;
                changed = true;
                continue;
            }
            b'}' | b']' => {
                if let Some(at) = comma.take() {
                    out[at] = b' ';
                    changed = true;
                }
            }
            b',' => comma = Some(out.len()),
            _ if b.is_ascii_whitespace() => {}
            _ => comma = None,
        }
        out.push(b);
        i += 1;
    }
    changed.then_some(out)
}

/// Where a `//` comment at `start` ends: at the first line terminator any
/// lenient reader knows (LF; CR, which Jackson and JSON5 end it at; U+2028
/// and U+2029, JSON5's), so that no reader sees text the rewrite hid.
fn line_comment_end(body: &[u8], start: usize) -> usize {
    let rest = &body[start..];
    let crlf = memchr::memchr2(b'\n', b'\r', rest);
    let separator = memchr::memmem::find_iter(rest, b"\xE2\x80")
        .find(|&j| matches!(rest.get(j + 2), Some(0xA8 | 0xA9)));
    // A CR or LF stays (as a blank); U+2028 or U+2029, no JSON blank, goes.
    match (crlf, separator) {
        (Some(a), Some(b)) if a < b => start + a,
        (_, Some(b)) => start + b + 3,
        (Some(a), None) => start + a,
        (None, None) => body.len(),
    }
}

/// The offset just past the JSON string starting at `start` (a `"`), or
/// the end of `body` when it is not closed.
fn string_end(body: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    while let Some(n) = memchr::memchr2(b'"', b'\\', &body[i..]) {
        let at = i + n;
        if body[at] == b'\\' {
            i = at + 2;
            if i >= body.len() {
                return body.len();
            }
        } else {
            return at + 1;
        }
    }
    body.len()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::Value;

    use super::*;
    use crate::http::json::tests::json_value;

    /// Strict JSON text with comments after every `{`, `[` and `,`, and a
    /// trailing comma in every non-empty container.
    fn loosen(strict: &str) -> String {
        let mut out = String::new();
        let mut in_string = false;
        let mut escaped = false;
        let mut last = ' ';
        for c in strict.chars() {
            if in_string {
                out.push(c);
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == '"' {
                    in_string = false;
                }
                last = c;
                continue;
            }
            if matches!(c, '}' | ']') && !matches!(last, '{' | '[') {
                out.push_str(" , /* end */ ");
            }
            out.push(c);
            match c {
                '"' => in_string = true,
                '{' | '[' => out.push_str("// open\n"),
                ',' => out.push_str("/* next */"),
                _ => {}
            }
            last = c;
        }
        out
    }

    #[test]
    fn relaxed_reads_comments_and_trailing_commas() {
        let loose = b"{\"a\": [1, 2,], // note\n \"b\": \"x//y /* z */\", /* c */ }";
        let strict = relaxed(loose).expect("rewritten");
        let v: Value = serde_json::from_slice(&strict).expect("strict");
        assert_eq!(v, serde_json::json!({"a": [1, 2], "b": "x//y /* z */"}));
        assert_eq!(relaxed(b"{\"a\": \"1,]\"}"), None);
        // A line comment ends at any reader's line terminator.
        for end in ["\r", "\n", "\u{2028}", "\u{2029}"] {
            let loose = format!("{{\"a\":\"b\" // x{end}, \"q\": \"<p>\" // y\n}}");
            let strict = relaxed(loose.as_bytes()).expect("rewritten");
            let v: Value = serde_json::from_slice(&strict).expect("strict");
            assert_eq!(v, serde_json::json!({"a": "b", "q": "<p>"}), "{end:?}");
        }
        // Unclosed strings and comments end at the end of the text.
        assert!(relaxed(b"{\"a\": 1 /* open").is_some());
        assert_eq!(relaxed(b"{\"a\": \"\\"), None);
    }

    proptest! {
        #[test]
        fn relaxed_gives_back_the_strict_document(v in json_value()) {
            let strict = serde_json::to_string(&v).unwrap();
            prop_assert_eq!(relaxed(strict.as_bytes()), None);
            let loose = loosen(&strict);
            let back = relaxed(loose.as_bytes()).unwrap_or_else(|| loose.clone().into_bytes());
            let read: Value = serde_json::from_slice(&back).unwrap();
            prop_assert_eq!(read, v);
        }
    }
}
