//! The libinjection tokenizers (SQL and HTML5), through the `libinjectionrs`
//! port, with cheap prefilters so most values never reach them. A panic in
//! the port is contained and reported as a suspicious value.

use std::panic::{AssertUnwindSafe, catch_unwind};

use super::kind::Severity;
pub use super::sqli_prefilter::{has_sql_word, sqli_candidate, sqli_candidate_in_json};

/// Longest input handed to libinjection (its cost is linear, but large).
const MAX_INPUT: usize = 64 * 1024;

/// What libinjection said.
pub enum Outcome {
    /// No injection.
    Clean,
    /// Injection, with the SQL fingerprint if any.
    Injection(String),
    /// The tokenizer panicked on this input.
    Failed,
}

/// Whether a decoded value is worth the HTML tokenizer: a tag start, or an
/// attribute break-out (a quote and an `=`), or a script URL. Rich text
/// whose tags are all bare formatting tags (`<b>`, `</p>`, `<br/>`) and
/// which holds no `=` is not: the tokenizer flags tag names, attribute
/// values and comments, and there are none to flag.
pub fn xss_candidate(dec: &[u8]) -> bool {
    xss_candidate_by(dec, true)
}

/// [`xss_candidate`], with bare formatting tags exempt or not.
fn xss_candidate_by(dec: &[u8], plain_exempt: bool) -> bool {
    let no_attributes = plain_exempt && memchr::memchr(b'=', dec).is_none();
    let no_css = no_attributes && memchr::memchr2(b'{', b'@', dec).is_none();
    let tag = memchr::memchr_iter(b'<', dec).any(|i| {
        let next = dec.get(i + 1).copied().unwrap_or(0);
        (next.is_ascii_alphabetic() || matches!(next, b'/' | b'!' | b'?' | b'%'))
            && !is_doctype(&dec[i..])
            && !(no_attributes && is_tag_of(&dec[i..], PLAIN_TAGS))
            && !(no_css && is_tag_of(&dec[i..], INERT_TAGS))
    });
    tag || attribute_breakout(dec) || {
        memchr::memchr_iter(b':', dec)
            .any(|i| i >= 6 && dec[i - 6..i].eq_ignore_ascii_case(b"script"))
    }
}

/// Formatting tags the HTML tokenizer never flags by name.
const PLAIN_TAGS: &[&[u8]] = &[
    b"b",
    b"i",
    b"u",
    b"s",
    b"em",
    b"strong",
    b"p",
    b"br",
    b"hr",
    b"span",
    b"div",
    b"li",
    b"ul",
    b"ol",
    b"h1",
    b"h2",
    b"h3",
    b"h4",
    b"h5",
    b"h6",
    b"code",
    b"pre",
    b"small",
    b"sub",
    b"sup",
    b"blockquote",
    b"table",
    b"tr",
    b"td",
    b"th",
    b"tbody",
    b"thead",
    b"mark",
    b"del",
    b"ins",
];

/// Tags the HTML tokenizer flags by name that do nothing without
/// attributes or style rules (`the <link> element and <style> blocks`, in
/// a developer's question): exempt when the value has no `=`, and no `{`
/// or `@`, without which a style sheet has no rule (`<style>@import ...`
/// and `<style>*{display:none}` still meet the tokenizer).
const INERT_TAGS: &[&[u8]] = &[b"link", b"style"];

/// `<name>`, `</name>` or `<name/>` (spaces allowed before the end) of one
/// of `tags`, at the start of `s`.
fn is_tag_of(s: &[u8], tags: &[&[u8]]) -> bool {
    let s = &s[1..];
    let s = s.strip_prefix(b"/").unwrap_or(s);
    let end = s
        .iter()
        .position(|c| !c.is_ascii_alphanumeric())
        .unwrap_or(s.len());
    let (name, rest) = s.split_at(end);
    let rest = rest.trim_ascii_start();
    let rest = rest.strip_prefix(b"/").unwrap_or(rest);
    rest.first() == Some(&b'>') && tags.iter().any(|t| t.eq_ignore_ascii_case(name))
}

/// `<!DOCTYPE html>`: markup, not an injection.
fn is_doctype(s: &[u8]) -> bool {
    s.len() >= 9 && s[..9].eq_ignore_ascii_case(b"<!doctype")
}

/// A quote, then an attribute (`name=` after a space or `/`): a break out
/// of an attribute value (`" onfocus=x`). JSON (`"a":"b?c=d"`) is none.
fn attribute_breakout(dec: &[u8]) -> bool {
    let Some(quote) = memchr::memchr3(b'\'', b'"', b'`', dec) else {
        return false;
    };
    memchr::memchr_iter(b'=', &dec[quote..]).any(|j| {
        let j = quote + j;
        let start = dec[..j]
            .iter()
            .rposition(|c| !(c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b':')))
            .map_or(0, |k| k + 1);
        start < j
            && start > quote
            && matches!(dec[start - 1], b' ' | b'\t' | b'\n' | b'\r' | b'/' | 0x0c)
    })
}

/// The severity of a libinjection SQL fingerprint for a value, or `None`
/// when the whole value is prose the tokenizer misread (see
/// [`call_on_a_word_then_prose`]). A string, an operator and a string
/// (`sos`) between double quotes only is how prose quotes words
/// (`CHRISTMAS STOCKING "NOT" STUFFER`): an error, not enough to block
/// alone. So is a value that no SQL parser would take past its first
/// tokens (see [`breaks_sql_later`]). Everything else is critical.
pub fn severity(fingerprint: &str, dec: &[u8]) -> Option<Severity> {
    if fingerprint.starts_with("f(n)") && call_on_a_word_then_prose(dec) {
        return None;
    }
    let double_quotes_only = memchr::memchr2(b'\'', b'`', dec).is_none();
    Some(
        if (fingerprint == "sos" && double_quotes_only) || breaks_sql_later(dec) {
            Severity::Error
        } else {
            Severity::Critical
        },
    )
}

/// The quoting contexts and dialects libinjection reads a value in.
fn contexts() -> [libinjectionrs::sqli::SqliFlags; 5] {
    use libinjectionrs::sqli::SqliFlags;
    [
        SqliFlags::FLAG_QUOTE_NONE | SqliFlags::FLAG_SQL_ANSI,
        SqliFlags::FLAG_QUOTE_NONE | SqliFlags::FLAG_SQL_MYSQL,
        SqliFlags::FLAG_QUOTE_SINGLE | SqliFlags::FLAG_SQL_ANSI,
        SqliFlags::FLAG_QUOTE_SINGLE | SqliFlags::FLAG_SQL_MYSQL,
        SqliFlags::FLAG_QUOTE_DOUBLE | SqliFlags::FLAG_SQL_MYSQL,
    ]
}

/// Whether libinjection finds an injection in at least one context and
/// `holds` says yes of the whole token stream in every such context.
fn in_every_flagged_context(
    dec: &[u8],
    holds: impl Fn(&mut libinjectionrs::sqli::SqliTokenizer) -> bool,
) -> bool {
    use libinjectionrs::sqli::{SqliState, SqliTokenizer};
    let input = &dec[..dec.len().min(MAX_INPUT)];
    catch_unwind(AssertUnwindSafe(|| {
        let mut found = false;
        for flags in contexts() {
            if !SqliState::new(input, flags).is_sqli() {
                continue;
            }
            found = true;
            if !holds(&mut SqliTokenizer::new(input, flags)) {
                return false;
            }
        }
        found
    }))
    .unwrap_or(false)
}

/// Whether, read in every quoting context in which libinjection finds an
/// injection, the value holds a lone `:` outside strings and comments
/// (`char(acter) count: 140`). SQL has `::` casts, `:=` assignments and
/// `:name` binds, which the tokenizer reads as operators or variables, and
/// labels (`x'; lbl: goto lbl`, a word that starts a statement), but no
/// lone colon between expressions: the statement would not parse, so
/// nothing runs. libinjection fingerprints only the first five tokens and
/// never sees it.
pub fn breaks_sql_later(dec: &[u8]) -> bool {
    use libinjectionrs::sqli::TokenType;
    if memchr::memchr(b':', &dec[..dec.len().min(MAX_INPUT)]).is_none() {
        return false;
    }
    in_every_flagged_context(dec, |tokens| {
        // The two tokens before the current one: a label is a word at the
        // start of a statement.
        let (mut before, mut last) = (None, None);
        while let Some(t) = tokens.next_token() {
            let label = matches!(before, None | Some(TokenType::Semicolon)) && last.is_some();
            if t.token_type == TokenType::Colon && !label {
                return true;
            }
            (before, last) = (last, Some(t.token_type));
        }
        false
    })
}

/// Whether, read in every quoting context in which libinjection finds an
/// injection, the value is a function name called on one bare word and
/// then only words and numbers (`ascii(art) gallery`, `sleep(ing) bag`,
/// `char(acter) count: 140`): prose that writes a word's suffix in
/// parentheses. After a call, SQL takes a bare word only as an alias,
/// which no condition accepts, and a call on a column name alone reads
/// nothing the column name alone does not: no operator, string, keyword,
/// comment, subquery or second call follows, so nothing is injected.
/// libinjection fingerprints it `f(n)n` or `f(n)f` from its first tokens.
pub fn call_on_a_word_then_prose(dec: &[u8]) -> bool {
    use libinjectionrs::sqli::TokenType as T;
    in_every_flagged_context(dec, |tokens| {
        let head = [
            T::Function,
            T::LeftParenthesis,
            T::Bareword,
            T::RightParenthesis,
        ];
        let mut n = 0;
        while let Some(t) = tokens.next_token() {
            let ty = t.token_type;
            // Past the head, a function name not followed by `(` is a word:
            // a `(` is none of the kinds taken.
            let fits = match head.get(n) {
                Some(want) => ty == *want,
                None => matches!(ty, T::Bareword | T::Number | T::Function | T::Colon),
            };
            if !fits {
                return false;
            }
            n += 1;
        }
        n > head.len()
    })
}

/// Runs the SQL tokenizer on the value's first [`MAX_INPUT`] bytes and,
/// for a longer value, on its last ones too: padding before a payload
/// (64 kB of spaces, digits or letters, which SQL reads as part of the
/// injected number, string or blank) does not hide it.
pub fn sqli(dec: &[u8]) -> Outcome {
    let head = sqli_window(&dec[..dec.len().min(MAX_INPUT)]);
    if dec.len() <= MAX_INPUT || !matches!(head, Outcome::Clean) {
        return head;
    }
    sqli_window(&dec[dec.len() - MAX_INPUT..])
}

/// The SQL tokenizer on one window of a value.
fn sqli_window(input: &[u8]) -> Outcome {
    match catch_unwind(AssertUnwindSafe(|| {
        let r = libinjectionrs::detect_sqli(input);
        (r.is_injection(), r.fingerprint.map(|f| f.to_string()))
    })) {
        Ok((true, fp)) => Outcome::Injection(fp.unwrap_or_default()),
        Ok((false, _)) => Outcome::Clean,
        Err(_) => Outcome::Failed,
    }
}

/// Runs the HTML5 tokenizer. A `style` attribute of plain CSS (what
/// rich-text editors write: colours, sizes, fonts) is renamed first: the
/// tokenizer flags every `style` by name, and the CSS that runs code
/// (`expression(`, `behavior:`, `-moz-binding`, `url(`, escapes,
/// comments) is kept out of "plain" and read by `xss-style-injection`.
pub fn xss(dec: &[u8]) -> Outcome {
    let input = &dec[..dec.len().min(MAX_INPUT)];
    let renamed = plain_styles_renamed(input);
    let input = renamed.as_deref().unwrap_or(input);
    match catch_unwind(AssertUnwindSafe(|| {
        libinjectionrs::detect_xss(input).is_injection()
    })) {
        Ok(true) => Outcome::Injection(String::new()),
        Ok(false) => Outcome::Clean,
        Err(_) => Outcome::Failed,
    }
}

/// `dec` with each `style` attribute of plain CSS renamed `xtyle`; None
/// when there is none.
fn plain_styles_renamed(dec: &[u8]) -> Option<Vec<u8>> {
    let mut out: Option<Vec<u8>> = None;
    for i in memchr::memchr2_iter(b's', b'S', dec) {
        let attribute = dec
            .get(i..i + 5)
            .is_some_and(|w| w.eq_ignore_ascii_case(b"style"))
            && i.checked_sub(1).is_some_and(|j| {
                matches!(
                    dec[j],
                    b' ' | b'\t' | b'\n' | b'\r' | b'\x0c' | b'/' | b'"' | b'\''
                )
            });
        if !attribute {
            continue;
        }
        let rest = &dec[i + 5..];
        let skip_ws = |s: &[u8]| s.iter().take_while(|b| b.is_ascii_whitespace()).count();
        let at = skip_ws(rest);
        if rest.get(at) != Some(&b'=') {
            continue;
        }
        let v = &rest[at + 1..];
        let v = &v[skip_ws(v)..];
        let value = match v {
            [q @ (b'"' | b'\''), rest @ ..] => match memchr::memchr(*q, rest) {
                Some(end) => &rest[..end],
                None => continue,
            },
            // The same markup written in a JSON string (`style=\"...\"`).
            [b'\\', q @ (b'"' | b'\''), rest @ ..] => {
                match memchr::memmem::find(rest, &[b'\\', *q]) {
                    Some(end) => &rest[..end],
                    None => continue,
                }
            }
            _ => {
                let end = v
                    .iter()
                    .position(|b| b.is_ascii_whitespace() || *b == b'>')
                    .unwrap_or(v.len());
                &v[..end]
            }
        };
        if plain_css(value) {
            out.get_or_insert_with(|| dec.to_vec())[i] = b'x';
        }
    }
    out
}

/// CSS of declarations only: no escapes, comments, URLs or the words of
/// CSS that runs code.
fn plain_css(v: &[u8]) -> bool {
    const PLAIN: [bool; 256] = super::normalize::byte_set(b" \t\r\n:;,.#%!()+/_-'\"");
    v.iter()
        .all(|&b| b.is_ascii_alphanumeric() || PLAIN[usize::from(b)])
        && memchr::memmem::find(v, b"/*").is_none()
        && ![
            "expression",
            "url",
            "behavio",
            "binding",
            "script",
            "import",
        ]
        .iter()
        .any(|w| {
            v.windows(w.len())
                .any(|x| x.eq_ignore_ascii_case(w.as_bytes()))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Rich text's inline styles pass the tokenizer; styles that run
    /// code, and other attributes beside a plain style, do not.
    #[test]
    fn plain_inline_styles_are_not_flagged() {
        for clean in [
            r#"<p style="color: red">Red</p>"#,
            r#"<img alt="" src="/uploads/a.jpg" style="height:200px; width:300px" />"#,
            r#"<span style='font-family:"Times New Roman",serif;font-size:11pt'>x</span>"#,
            r#"<td style=text-align:center>1</td>"#,
            r#"{"html":"<p style=\"color: red\">Red</p>"}"#,
        ] {
            assert!(matches!(xss(clean.as_bytes()), Outcome::Clean), "{clean}");
        }
        for attack in [
            r#"<p style="color:red" onmouseover="alert(1)">x</p>"#,
            r#"<div style="width:expression(alert(1))">"#,
            r#"<div style="background:url(javascript:alert(1))">"#,
            r#"<div style="x:ex/**/pression(alert(1))">"#,
            r#"<div style="x:\65xpression(alert(1))">"#,
            r#"<div style="behavior:url(x.htc)">"#,
            r#"<p style="color:red"><script>alert(1)</script>"#,
        ] {
            assert!(
                matches!(xss(attack.as_bytes()), Outcome::Injection(_)),
                "{attack}"
            );
        }
    }

    /// A payload after 64 kB of padding is read.
    #[test]
    fn padding_past_the_tokenizer_input_hides_nothing() {
        for pad in [" ", "1", "a", "\t"] {
            let v = format!("{}' or 'a'<'b", pad.repeat(MAX_INPUT + 10));
            assert!(
                matches!(sqli(v.as_bytes()), Outcome::Injection(_)),
                "{pad:?}"
            );
        }
        let clean = "it's ".repeat(MAX_INPUT / 4);
        assert!(matches!(sqli(clean.as_bytes()), Outcome::Clean));
    }

    #[test]
    fn bare_formatting_tags_are_no_candidates() {
        for t in [
            "<b>bold</b> & more",
            "a<br/>b<BR />c",
            "<p>x</p><ul><li>1</li></ul>",
            "the <link> element and <style> blocks go in the head",
        ] {
            assert!(!xss_candidate(t.as_bytes()), "{t}");
        }
        // What the tokenizer flags in them is what a style sheet needs.
        for t in [
            "the <link> element and <style>@import'//x'</style>",
            "<style>*{display:none}</style>",
            "<link rel=import href=//x>",
            "<style>:root{}</style>",
        ] {
            assert!(xss_candidate(t.as_bytes()), "{t}");
            assert!(matches!(xss(t.as_bytes()), Outcome::Injection(_)), "{t}");
        }
        for t in [
            "<b onclick=alert(1)>x</b>",
            "<script>x</script>",
            "<b>x</b><svg>",
            "<b>x</b><img src=x>",
            "<b>x</b><!--",
            "<bold>",
            "<b>x</b>javascript:alert(1)",
        ] {
            assert!(xss_candidate(t.as_bytes()), "{t}");
        }
    }

    proptest! {
        /// A value the exemption of bare formatting tags skips is one
        /// libinjection finds clean: text, plain tags and other tag or
        /// attribute pieces mixed.
        #[test]
        fn skipped_values_are_clean_to_the_tokenizer(
            pieces in proptest::collection::vec(prop_oneof![
                "[a-z0-9 .,;:%()&!-]{0,12}",
                proptest::sample::select(PLAIN_TAGS).prop_map(|t| format!("<{}>", String::from_utf8_lossy(t))),
                proptest::sample::select(PLAIN_TAGS).prop_map(|t| format!("</{} >", String::from_utf8_lossy(t))),
                proptest::sample::select(PLAIN_TAGS).prop_map(|t| format!("<{}/>", String::from_utf8_lossy(t))),
                Just("<script>".to_owned()),
                Just(" onclick=alert(1)".to_owned()),
                Just("\"".to_owned()),
                Just("'".to_owned()),
                Just("<!--".to_owned()),
                Just("<img src=x onerror=y>".to_owned()),
                Just("javascript:".to_owned()),
            ], 0..12)
        ) {
            let v = pieces.concat();
            if xss_candidate_by(v.as_bytes(), false) && !xss_candidate(v.as_bytes()) {
                prop_assert!(matches!(xss(v.as_bytes()), Outcome::Clean), "{}", v);
            }
        }
    }
}
