//! GraphQL documents in a field (`{"query": "{ user(name: \"...\") {...} }"}`,
//! `?query=...`): the resolver receives each string argument as a value of
//! its own, so each is read as a parameter (`admin' --` inside a string
//! literal is the same injection as in a query parameter); and an
//! introspection query (`__schema`, `__type`) maps the whole API.
//!
//! The lexer follows the GraphQL specification (October 2021, section 2.1):
//! whitespace, commas and `#` comments are ignored; strings are `"..."`
//! with escapes or `"""..."""` block strings; names are
//! `[_A-Za-z][_0-9A-Za-z]*`. A string left open runs to the end.

use super::normalize::{hex4, push_char};

/// Most string literals read from one document (as many as parameters a
/// request may have: past them the document counts as an anomaly, so a
/// payload after as many decoys is not passed unseen).
pub const MAX_STRINGS: usize = 1024;

/// What a document holds.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Document {
    /// Its string literals, unescaped, in order.
    pub strings: Vec<String>,
    /// The introspection field it asks for (`__schema`, `__type`).
    pub introspection: Option<&'static str>,
    /// Whether it is a whole document and nothing else: only GraphQL's
    /// tokens, no comment, brackets balanced, a `}` last. Outside its
    /// strings such a value holds no text an interpreter would take for
    /// code that the rules do not see (a comment could hide anything).
    pub whole: bool,
    /// Whether it held more than [`MAX_STRINGS`] strings.
    pub overflow: bool,
}

/// Reads `v` when it is a GraphQL document: a selection set (`{` then a
/// name) or an operation or fragment keyword first. A JSON object (`{"`)
/// is none.
pub fn read(v: &[u8]) -> Option<Document> {
    document_start(v).map(|start| lex(v, start))
}

/// Whether `v` starts as a GraphQL document does (the test of [`read`]
/// without the lexing).
pub fn starts_document(v: &[u8]) -> bool {
    document_start(v).is_some()
}

fn document_start(v: &[u8]) -> Option<usize> {
    let start = skip_ignored(v, 0);
    let rest = &v[start..];
    let doc = match rest.first()? {
        b'{' => {
            let i = skip_ignored(v, start + 1);
            v.get(i).is_some_and(|&c| is_name_start(c))
        }
        _ => ["query", "mutation", "subscription", "fragment"]
            .iter()
            .any(|k| {
                rest.starts_with(k.as_bytes()) && !rest.get(k.len()).is_some_and(|&c| is_name(c))
            }),
    };
    doc.then_some(start)
}

fn lex(v: &[u8], mut i: usize) -> Document {
    let mut d = Document::default();
    // Open brackets of each kind, whether a byte outside the grammar (or a
    // comment, or a string left open) was met, and the last token.
    let mut depth = [0i64; 3];
    let mut stray = false;
    let mut last = 0u8;
    while i < v.len() {
        let c = v[i];
        if !matches!(c, b' ' | b'\t' | b'\n' | b'\r' | b',') {
            last = c;
        }
        match c {
            b'#' => {
                stray = true;
                i = memchr::memchr2(b'\n', b'\r', &v[i..]).map_or(v.len(), |n| i + n);
            }
            b'"' if v[i..].starts_with(b"\"\"\"") => {
                let (s, end, closed) = block_string(v, i + 3);
                stray |= !closed;
                push(&mut d, s);
                i = end;
            }
            b'"' => {
                let (s, end, closed) = string(v, i + 1);
                stray |= !closed;
                push(&mut d, s);
                i = end;
            }
            b'{' | b'(' | b'[' | b'}' | b')' | b']' => {
                let k = match c {
                    b'{' | b'}' => 0,
                    b'(' | b')' => 1,
                    _ => 2,
                };
                depth[k] += if matches!(c, b'{' | b'(' | b'[') {
                    1
                } else {
                    -1
                };
                stray |= depth[k] < 0;
                i += 1;
            }
            b'!' | b'$' | b'&' | b':' | b'=' | b'@' | b'|' | b'.' | b' ' | b'\t' | b'\n'
            | b'\r' | b',' | b'-' | b'+' => i += 1,
            c if c.is_ascii_digit() => i += 1,
            c if is_name_start(c) => {
                let end = i + v[i..].iter().take_while(|&&c| is_name(c)).count();
                let name = &v[i..end];
                if d.introspection.is_none() {
                    d.introspection = match name {
                        b"__schema" => Some("__schema"),
                        b"__type" => Some("__type"),
                        _ => None,
                    };
                }
                i = end;
            }
            _ => {
                stray = true;
                i += 1;
            }
        }
    }
    // Strings past MAX_STRINGS are not read alone: the whole document is
    // read then, so decoys cannot push a payload out of every reading.
    d.whole = !stray && depth == [0; 3] && last == b'}' && !d.overflow;
    d
}

fn push(d: &mut Document, s: String) {
    if s.is_empty() {
        return;
    }
    if d.strings.len() < MAX_STRINGS {
        d.strings.push(s);
    } else {
        d.overflow = true;
    }
}

/// A `"` string from `i` (past the quote), escapes undone; the string, the
/// index past its closing quote and whether it was closed.
fn string(v: &[u8], mut i: usize) -> (String, usize, bool) {
    let mut out = Vec::new();
    while i < v.len() {
        match v[i] {
            b'"' => return (String::from_utf8_lossy(&out).into_owned(), i + 1, true),
            b'\\' if i + 1 < v.len() => {
                let e = v[i + 1];
                i += 2;
                match e {
                    b'n' => out.push(b'\n'),
                    b'r' => out.push(b'\r'),
                    b't' => out.push(b'\t'),
                    b'b' => out.push(8),
                    b'f' => out.push(12),
                    b'u' => match v.get(i..i + 4).and_then(hex4) {
                        Some(cp) => {
                            push_char(cp, &mut out);
                            i += 4;
                        }
                        None => out.extend_from_slice(b"\\u"),
                    },
                    other => out.push(other),
                }
            }
            // A line break ends a `"` string (it is an error): what follows
            // is read as the document again.
            b'\n' | b'\r' => return (String::from_utf8_lossy(&out).into_owned(), i, false),
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    (String::from_utf8_lossy(&out).into_owned(), i, false)
}

/// A `"""` block string from `i` (past the quotes), `\"""` undone.
fn block_string(v: &[u8], i: usize) -> (String, usize, bool) {
    let mut out = Vec::new();
    let mut j = i;
    while j < v.len() {
        if v[j..].starts_with(b"\\\"\"\"") {
            out.extend_from_slice(b"\"\"\"");
            j += 4;
        } else if v[j..].starts_with(b"\"\"\"") {
            return (String::from_utf8_lossy(&out).into_owned(), j + 3, true);
        } else {
            out.push(v[j]);
            j += 1;
        }
    }
    (String::from_utf8_lossy(&out).into_owned(), j, false)
}

/// The index of the first byte at or after `i` that is not whitespace, a
/// comma, a byte order mark or in a comment.
fn skip_ignored(v: &[u8], mut i: usize) -> usize {
    while i < v.len() {
        match v[i] {
            b' ' | b'\t' | b'\n' | b'\r' | b',' => i += 1,
            b'#' => i = memchr::memchr2(b'\n', b'\r', &v[i..]).map_or(v.len(), |n| i + n),
            0xEF if v[i..].starts_with("\u{FEFF}".as_bytes()) => i += 3,
            _ => break,
        }
    }
    i
}

fn is_name_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}

fn is_name(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn string_arguments_are_read_unescaped() {
        let d = read(br#"{ user(name: "admin' --", note: "a\"b\u0041") { id } }"#).expect("doc");
        assert_eq!(d.strings, ["admin' --", "a\"bA"]);
        assert_eq!(d.introspection, None);
        let d =
            read(b"query Q {\n  # a comment with \"quotes\"\n  f(x: \"\"\"line\\\"\"\"\"\"\") }")
                .expect("doc");
        assert_eq!(d.strings, ["line\"\"\""]);
        let d = read(b"mutation { ping(host: \"127.0.0.1; id").expect("doc");
        assert_eq!(d.strings, ["127.0.0.1; id"]);
    }

    #[test]
    fn a_whole_document_is_tokens_and_balanced_brackets_only() {
        for v in [
            &b"{ user(id: 1, name: \"O'Brien -- x\") { id name } }"[..],
            b"query Q($a: [Int!] = [1, -2.5e3]) @live { a(x: $a) { ...F } } fragment F on T { b }",
        ] {
            assert!(
                read(v).expect("doc").whole,
                "{}",
                String::from_utf8_lossy(v)
            );
        }
        for v in [
            &b"{ a } # ' or '1'='1"[..],
            b"{ a } ' or 1=1 --",
            b"{ a(x: \"open) }",
            b"{ a } }{",
            b"{ a { b }",
            b"{ a } or 1 = 1",
            b"{ a; drop table t }",
        ] {
            assert!(
                !read(v).expect("doc").whole,
                "{}",
                String::from_utf8_lossy(v)
            );
        }
    }

    #[test]
    fn a_document_with_more_strings_than_read_is_not_whole() {
        let mut q = String::from("{ a(");
        for i in 0..MAX_STRINGS {
            q.push_str(&format!("x{i}: \"d\" "));
        }
        q.push_str(") }");
        let d = read(q.as_bytes()).expect("doc");
        assert!(d.whole && !d.overflow);
        let q = q.replace(") }", "y: \"admin' --\") }");
        let d = read(q.as_bytes()).expect("doc");
        assert!(!d.whole && d.overflow);
        assert_eq!(d.strings.len(), MAX_STRINGS);
    }

    #[test]
    fn introspection_is_named_and_typename_is_not() {
        let d = read(b"query IntrospectionQuery { __schema { types { name } } }").expect("doc");
        assert_eq!(d.introspection, Some("__schema"));
        let d = read(b"{__type(name: \"User\") { fields { name } }}").expect("doc");
        assert_eq!(d.introspection, Some("__type"));
        let d = read(b"{ user { id __typename } }").expect("doc");
        assert_eq!(d.introspection, None);
        // Inside a string it is text.
        let d = read(b"{ search(q: \"__schema\") { id } }").expect("doc");
        assert_eq!(d.introspection, None);
    }

    #[test]
    fn json_objects_and_text_are_no_documents() {
        for v in [
            &br#"{"a": 1}"#[..],
            b"queryset",
            b"hello { world",
            b"",
            b"{ }",
            b"{ 1 }",
        ] {
            assert_eq!(read(v), None, "{}", String::from_utf8_lossy(v));
        }
        assert!(read(b" \n{ a }").is_some());
        assert!(read(b"subscription{a}").is_some());
    }

    proptest! {
        /// Any bytes after a document's start: no panic, at most
        /// MAX_STRINGS strings, none longer than the input.
        #[test]
        fn any_document_is_read_safely(tail in proptest::collection::vec(
            prop_oneof![
                Just(b'"'), Just(b'\\'), Just(b'#'), Just(b'\n'), Just(b'u'), Just(b'_'),
                Just(b'{'), any::<u8>(),
            ],
            0..200,
        )) {
            let mut v = b"{ a".to_vec();
            v.extend_from_slice(&tail);
            let d = read(&v).expect("a document");
            prop_assert!(d.strings.len() <= MAX_STRINGS);
            for s in &d.strings {
                // `\uXXXX` and lossy bytes can grow a byte into three.
                prop_assert!(s.len() <= 3 * v.len());
            }
        }

        /// A quoted value written with GraphQL's escapes reads back as
        /// itself.
        #[test]
        fn strings_round_trip(s in "[ -~]{0,40}") {
            let escaped: String = s
                .chars()
                .map(|c| match c {
                    '"' => "\\\"".to_owned(),
                    '\\' => "\\\\".to_owned(),
                    c => c.to_string(),
                })
                .collect();
            let doc = format!("{{ f(x: \"{escaped}\") }}");
            let d = read(doc.as_bytes()).expect("doc");
            let want: Vec<String> = if s.is_empty() { vec![] } else { vec![s.clone()] };
            prop_assert_eq!(d.strings, want);
        }
    }
}
