//! Documents inside values: a JSON document sent as a query parameter, a
//! form or multipart field, a cookie, a header or a string of a JSON body
//! (`filter={"q":"1 AND (SELECT ...) LIKE 'a%'"}`), and a multipart part
//! typed JSON or XML whatever its file name (Spring's `@RequestPart`
//! reads a part by its Content-Type). The application parses such a
//! document and reads its strings alone; the tokenizers must too: in the
//! document's syntax (`{"q":"1 AND ...`) libinjection reads another
//! statement than the one the database gets. The whole value is still
//! read as well: an application that pastes it raw into a query reads SQL
//! split across its strings (`["x'or","<>password"]`).

use std::borrow::Cow;

use super::Engine;
use super::value::Encoding;
use crate::detect::collect::{Collector, short};
use crate::detect::normalize::Normalized;
use crate::detect::rules::targets;
use crate::http::{JsonItem, JsonItems, Part, json, xml};

/// Whether decoded text is shaped like a JSON object or array: `{` or `[`
/// first and `}` or `]` last, blanks aside.
pub(super) fn looks_like_json(dec: &[u8]) -> bool {
    let trimmed = dec.trim_ascii();
    matches!(trimmed.first(), Some(b'{' | b'['))
        && matches!(trimmed.last(), Some(b'}' | b']'))
        && trimmed.len() >= 2
}

/// A value decoded once, as its application decodes it: `%XX` (and `+`
/// in forms and Referer queries) where it was found URL-encoded, else as
/// sent; borrowed when there is nothing to decode.
pub(super) fn decoded_once(raw: &[u8], enc: Encoding) -> Cow<'_, [u8]> {
    let plus = matches!(enc, Encoding::Form | Encoding::Referer);
    let encoded = matches!(enc, Encoding::Form | Encoding::Url | Encoding::Referer)
        && (memchr::memchr(b'%', raw).is_some() || (plus && raw.contains(&b'+')));
    match encoded {
        true => Cow::Owned(crate::http::target::percent_decode(raw, plus)),
        false => Cow::Borrowed(raw),
    }
}

/// The JSON a value holds, decoded as its application decodes it:
/// [`decoded_once`]; a cookie or header value as sent, or once
/// percent-decoded when that is what gives a document.
fn json_text(raw: &[u8], enc: Encoding) -> Cow<'_, [u8]> {
    match enc {
        Encoding::Text if !looks_like_json(raw) => decoded_once(raw, Encoding::Url),
        _ => decoded_once(raw, enc),
    }
}

impl Engine {
    /// The JSON document a value of `target` holds (`filter={"q":...}`),
    /// when it parses: first as its application decodes it, else fully
    /// decoded (`{&quot;q&quot;:...}`). Its strings are then read alone, as
    /// the application reads them, the tokenizers included (the whole
    /// value is read as well).
    pub(super) fn embedded_json(
        &self,
        raw: &[u8],
        dec: &[u8],
        target: u16,
        enc: Encoding,
    ) -> Option<JsonItems> {
        if target & (targets::ARGS | targets::DOC | targets::HEADERS) == 0
            || matches!(enc, Encoding::Base64 | Encoding::Embedded)
            || !looks_like_json(dec)
        {
            return None;
        }
        let depth = self.limits().max_json_depth;
        let first = json_text(raw, enc);
        let parsed = json::parse(&first, depth).ok().or_else(|| {
            (*first != *dec)
                .then(|| json::parse(dec, depth).ok())
                .flatten()
        });
        parsed.map(|(items, _)| items)
    }

    /// The keys (as names) and strings (as a JSON body's) of a document
    /// inside a value. Each string is read as [`Encoding::Embedded`]: no
    /// document is looked for inside it again, so a request costs at most
    /// two levels of JSON.
    pub(super) fn scan_embedded_json(
        &self,
        c: &mut Collector,
        items: &JsonItems,
        loc: &dyn Fn() -> String,
    ) {
        for i in items.iter() {
            if i.is_key {
                let l = || format!("{}(json_key {})", loc(), short(&i.path()));
                self.scan_name(c, i.text, &l, Encoding::Embedded);
                self.scan_json_path(c, &i, &|p| format!("{}(json_key {p})", loc()));
            } else {
                let l = || format!("{}(json {})", loc(), short(&i.path()));
                self.scan_value(c, i.text, targets::DOC, &l, Encoding::Embedded);
            }
        }
    }

    /// `{"constructor": {"prototype": ...}}`, at any depth, through arrays
    /// too (`[{"constructor": ...}]`): the pollution is in the path, not
    /// in either key (`__proto__` is in the key, read as a name). The path
    /// is read by that rule alone: the keys joined are no value of the
    /// request for the other rules. `loc` makes the location of the
    /// (shortened) path.
    pub(super) fn scan_json_path(
        &self,
        c: &mut Collector,
        i: &JsonItem,
        loc: &dyn Fn(&str) -> String,
    ) {
        if !i.is_key || !i.text.eq_ignore_ascii_case("prototype") {
            return;
        }
        let path = i.path();
        let n = Normalized::new(path.as_bytes(), false);
        if let Some(hit) = self.compiled.find("prototype-pollution", &n) {
            c.add(
                hit.rule.kind,
                hit.rule.id,
                hit.rule.severity_at(self.cfg.paranoia),
                hit.rule.paranoia,
                &loc(&short(&path)),
                &String::from_utf8_lossy(hit.matched),
                "",
            );
        }
    }

    /// A multipart part whose Content-Type is JSON or XML, file or field:
    /// its keys and strings, or its texts, as a document's.
    pub(super) fn scan_part_document(&self, c: &mut Collector, p: &Part) {
        let Some(mime) = p.content_type.as_deref().map(crate::http::mime_of) else {
            return;
        };
        let loc = || format!("multipart:{}", short(&p.name));
        if crate::http::is_json(&mime) {
            // A field's value met the embedded-document check already. A
            // file's is read as Jackson reads it: past a byte order mark,
            // comments and trailing commas allowed, text after the document
            // ignored; what does not parse is read whole, as a field.
            if p.filename.is_none() {
                return;
            }
            let data = p.data.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&p.data);
            match crate::http::lenient::parse_lenient(data, self.limits().max_json_depth, false) {
                Some(doc) => self.scan_embedded_json(c, &doc.items, &loc),
                None => {
                    let text = crate::http::lossy(&p.data);
                    self.scan_value(c, &text, targets::ARGS, &loc, Encoding::Text);
                }
            }
        } else if crate::http::is_xml(&mime) {
            let text = crate::http::lossy(&p.data);
            let items = xml::scan(&text, self.limits().max_json_depth);
            for i in items.iter() {
                let l = || format!("{}(xml {})", loc(), short(&i.path()));
                self.scan_value(c, i.text, targets::DOC, &l, Encoding::Embedded);
            }
            self.scan_xml_declarations(&p.data, c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_shapes_and_their_text() {
        for yes in [&b"{}"[..], b" [1] ", b"{\"a\":1}", b"[{\"a\":\"]\"}]"] {
            assert!(looks_like_json(yes), "{yes:?}");
        }
        for no in [&b"{"[..], b"[", b"", b"a{}", b"{} a", b"]["] {
            assert!(!looks_like_json(no), "{no:?}");
        }
        for (raw, enc, want) in [
            (
                &b"%7B%22a%22:%22x+y%22%7D"[..],
                Encoding::Form,
                &b"{\"a\":\"x y\"}"[..],
            ),
            (b"%7B%22a%22:1%7D", Encoding::Text, b"{\"a\":1}"),
            (b"{\"a\":\"%41\"}", Encoding::Text, b"{\"a\":\"%41\"}"),
            (b"{\"a\":\"%41\"}", Encoding::Embedded, b"{\"a\":\"%41\"}"),
        ] {
            assert_eq!(&*json_text(raw, enc), want, "{raw:?} {}", enc.tag());
        }
        assert_eq!(&*decoded_once(b"a+b%41", Encoding::Url), b"a+bA");
        assert_eq!(&*decoded_once(b"a+b%41", Encoding::Referer), b"a bA");
        assert!(matches!(
            decoded_once(b"a+b", Encoding::Url),
            Cow::Borrowed(_)
        ));
    }
}
