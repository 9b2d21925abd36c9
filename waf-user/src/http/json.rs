//! JSON bodies: every key and string value with a JSONPath-like location.
//!
//! The items are kept in arenas: their texts one after another in one
//! string, their locations as a tree of path segments (`paths.rs`) written
//! out only when asked for. Memory grows linearly with the document.

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::paths::{Arena, NodeId, PathTree, ROOT};

/// Where an item is: a node of the path tree, and for a string directly in
/// an array, its index there (no node of its own; [`NO_INDEX`]: none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct At {
    node: NodeId,
    index: u32,
}

/// `At::index` of an item that is no array element.
const NO_INDEX: u32 = u32::MAX;

/// Bytes of the arena's texts, where an item is, and whether it is a key.
/// Offsets and indexes fit 32 bits: [`parse`] refuses documents of 4 GiB
/// or more, and neither texts nor indexes outgrow the document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonEntry {
    start: u32,
    end: u32,
    at: At,
    is_key: bool,
}

/// The keys and string values of a JSON document, in document order.
pub type JsonItems = Arena<JsonEntry>;

/// One JSON key or string value and where it is (`$.user.name`, `$.items[0]`).
#[derive(Debug, Clone, Copy)]
pub struct JsonItem<'a> {
    /// The key or the string value (below the depth limit, at the path of
    /// the subtree that reached it).
    pub text: &'a str,
    /// Whether `text` is an object key rather than a value.
    pub is_key: bool,
    at: At,
    paths: &'a PathTree,
}

impl JsonItem<'_> {
    /// JSONPath-like location of the value (for a key: of the member it
    /// names).
    pub fn path(&self) -> String {
        let mut p = String::from("$");
        self.paths.write(self.at.node, &mut p);
        if self.at.index != NO_INDEX {
            let i = self.at.index;
            use std::fmt::Write as _;
            // Writing to a String cannot fail.
            let _ = write!(p, "[{i}]");
        }
        p
    }
}

impl Arena<JsonEntry> {
    /// The items in document order.
    pub fn iter(&self) -> impl Iterator<Item = JsonItem<'_>> {
        self.items.iter().map(|i| JsonItem {
            text: &self.texts[i.start as usize..i.end as usize],
            is_key: i.is_key,
            at: i.at,
            paths: &self.paths,
        })
    }

    /// Appends a text; its place (below 4 GiB: see [`JsonEntry`]).
    fn push_text32(&mut self, text: &str) -> (u32, u32) {
        let (start, end) = self.push_text(text);
        (start as u32, end as u32)
    }

    fn push(&mut self, text: &str, at: At, is_key: bool) {
        let (start, end) = self.push_text32(text);
        self.items.push(JsonEntry {
            start,
            end,
            at,
            is_key,
        });
    }
}

/// Parses a JSON document and walks it as it is read: every key and
/// string value in document order, duplicate keys included (a parsed
/// `Value` keeps one of `{"q": "<payload>", "q": "x"}`, and back ends
/// differ on which they read). Returns the items and whether the depth
/// limit was hit: below it, keys and values keep the path of the subtree
/// that reached the limit.
pub fn parse(body: &[u8], max_depth: usize) -> Result<(JsonItems, bool), serde_json::Error> {
    parse_first(body, max_depth, true)
}

/// [`parse`] of the document at the start of `body`; with `whole` false,
/// text after it is left unread (as Jackson leaves it by default).
pub fn parse_first(
    body: &[u8],
    max_depth: usize,
    whole: bool,
) -> Result<(JsonItems, bool), serde_json::Error> {
    if u32::try_from(body.len()).is_err() {
        return Err(serde::de::Error::custom("a JSON document of 4 GiB or more"));
    }
    let mut walker = Walker {
        doc: JsonItems::default(),
        too_deep: false,
        max_depth,
        seg: String::new(),
    };
    let mut de = serde_json::Deserializer::from_slice(body);
    Node {
        w: &mut walker,
        depth: 0,
        at: At {
            node: ROOT,
            index: NO_INDEX,
        },
    }
    .deserialize(&mut de)?;
    if whole {
        de.end()?;
    }
    Ok((walker.doc, walker.too_deep))
}

/// What the walk has found so far.
struct Walker {
    doc: JsonItems,
    too_deep: bool,
    max_depth: usize,
    /// Scratch space for a member's path segment.
    seg: String,
}

/// One value of the document, at `depth`, found at `at`.
struct Node<'w> {
    w: &'w mut Walker,
    depth: usize,
    at: At,
}

impl<'de> DeserializeSeed<'de> for Node<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_str<E>(self, v: &str) -> Result<(), E> {
        self.w.doc.push(v, self.at, false);
        Ok(())
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        let (here, deep) = self.enter();
        let mut i = 0u32;
        loop {
            let at = At {
                node: here,
                index: if deep { NO_INDEX } else { i },
            };
            let more = seq
                .next_element_seed(Node {
                    w: &mut *self.w,
                    depth: self.depth + 1,
                    at,
                })?
                .is_some();
            if !more {
                return Ok(());
            }
            // Fewer elements than bytes, and fewer bytes than u32::MAX.
            i = i.saturating_add(1);
        }
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        let (here, deep) = self.enter();
        while let Some((start, end)) = map.next_key_seed(Key { w: &mut *self.w })? {
            let member = if deep {
                here
            } else {
                let w = &mut *self.w;
                w.seg.clear();
                push_key(&mut w.seg, &w.doc.texts[start as usize..end as usize]);
                w.doc.paths.child(here, &[&w.seg])
            };
            let at = At {
                node: member,
                index: NO_INDEX,
            };
            self.w.doc.items.push(JsonEntry {
                start,
                end,
                at,
                is_key: true,
            });
            map.next_value_seed(Node {
                w: &mut *self.w,
                depth: self.depth + 1,
                at,
            })?;
        }
        Ok(())
    }
}

impl Node<'_> {
    /// Entering an object or array: its node, and whether it is at or past
    /// the depth limit (its contents then keep its path).
    fn enter(&mut self) -> (NodeId, bool) {
        let deep = self.depth >= self.w.max_depth;
        self.w.too_deep |= deep;
        let node = match self.at.index {
            NO_INDEX => self.at.node,
            i => self.w.doc.paths.element(self.at.node, i),
        };
        (node, deep)
    }
}

/// An object key: its text goes into the arena, its place comes back.
struct Key<'w> {
    w: &'w mut Walker,
}

impl<'de> DeserializeSeed<'de> for Key<'_> {
    type Value = (u32, u32);

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(u32, u32), D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key<'_> {
    type Value = (u32, u32);

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E>(self, v: &str) -> Result<(u32, u32), E> {
        Ok(self.w.doc.push_text32(v))
    }
}

/// Appends `.key`, or `["key"]` when the key is not a plain identifier.
fn push_key(path: &mut String, key: &str) {
    let plain = !key.is_empty()
        && key.len() <= 64
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if plain {
        path.push('.');
        path.push_str(key);
    } else {
        let shown: String = key.chars().take(64).collect();
        path.push('[');
        path.push_str(&serde_json::Value::String(shown).to_string());
        path.push(']');
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::fmt::Write as _;

    use proptest::prelude::*;
    use serde_json::Value;

    use super::*;

    /// The walk as first written, over a parsed `Value`.
    fn walk_reference(
        v: &Value,
        path: &mut String,
        depth: usize,
        max: usize,
        out: &mut Vec<(String, String, bool)>,
    ) {
        match v {
            Value::String(s) => out.push((path.clone(), s.clone(), false)),
            Value::Object(map) => {
                for (k, child) in map {
                    let len = path.len();
                    if depth < max {
                        push_key(path, k);
                    }
                    out.push((path.clone(), k.clone(), true));
                    walk_reference(child, path, depth + 1, max, out);
                    path.truncate(len);
                }
            }
            Value::Array(list) => {
                for (i, child) in list.iter().enumerate() {
                    let len = path.len();
                    if depth < max {
                        let _ = write!(path, "[{i}]");
                    }
                    walk_reference(child, path, depth + 1, max, out);
                    path.truncate(len);
                }
            }
            _ => {}
        }
    }

    /// Any JSON document, strings with quotes, slashes and non-ASCII.
    pub(crate) fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| Value::Number(n.into())),
            "[a-z '\\\"<>/$.\u{e9}\u{1F600}]{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(5, 48, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::btree_map("[a-z $.\"-]{0,8}", inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn sorted(v: &JsonItems) -> Vec<(String, String, bool)> {
        let mut out: Vec<_> = v
            .iter()
            .map(|i| (i.path(), i.text.to_owned(), i.is_key))
            .collect();
        out.sort();
        out
    }

    proptest! {
        /// Walking while parsing finds every key and string a parsed
        /// document holds, at the same paths, at any depth limit.
        #[test]
        fn streaming_walk_finds_what_the_value_holds(v in json_value(), max in 0usize..6) {
            let text = v.to_string();
            let (items, _) = parse(text.as_bytes(), max).unwrap();
            let mut want = Vec::new();
            walk_reference(&v, &mut String::from("$"), 0, max, &mut want);
            want.sort();
            prop_assert_eq!(sorted(&items), want);
        }

        /// Any bytes: an error or items, never a panic; what parses as a
        /// `Value` parses here too.
        #[test]
        fn any_bytes_parse_or_fail_cleanly(b in proptest::collection::vec(any::<u8>(), 0..64)) {
            let ours = parse(&b, 4);
            let theirs = serde_json::from_slice::<Value>(&b);
            prop_assert_eq!(ours.is_ok(), theirs.is_ok());
        }
    }

    /// The values' paths and texts.
    fn values(items: &JsonItems) -> Vec<(String, &str)> {
        items
            .iter()
            .filter(|i| !i.is_key)
            .map(|i| (i.path(), i.text))
            .collect()
    }

    /// Paths are not written out per item: a document of empty strings
    /// 31 members of 64 bytes deep (each path about 2 kB) keeps memory in
    /// proportion to its length, where one path per item would take
    /// hundreds of times the document.
    #[test]
    fn memory_grows_with_the_document_not_with_its_depth() {
        let key = "k".repeat(64);
        let mut doc = format!("{{\"{key}\":").repeat(31);
        doc.push('[');
        doc.push_str(&"\"\",".repeat(30_000));
        doc.push_str("\"\"]");
        doc.push_str(&"}".repeat(31));
        let (items, deep) = parse(doc.as_bytes(), 32).unwrap();
        assert!(!deep);
        assert_eq!(items.len(), 31 + 30_001);
        let last = items.iter().last().unwrap();
        assert_eq!(
            last.path(),
            format!("${}[30000]", format!(".{key}").repeat(31))
        );
        let written_out: usize = items.iter().map(|i| i.path().len()).sum();
        assert!(written_out > 500 * doc.len(), "{written_out}");
        assert!(
            items.heap_bytes() < 16 * doc.len(),
            "{} for {} bytes",
            items.heap_bytes(),
            doc.len()
        );
    }

    #[test]
    fn duplicate_keys_are_all_read() {
        let (items, _) = parse(br#"{"q":"1 union select pass from users","q":"x"}"#, 8).unwrap();
        assert_eq!(
            values(&items),
            [
                ("$.q".to_owned(), "1 union select pass from users"),
                ("$.q".to_owned(), "x")
            ]
        );
    }

    #[test]
    fn trailing_bytes_and_deep_nesting_are_errors() {
        assert!(parse(br#"{"a":"b"} x"#, 8).is_err());
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert!(parse(deep.as_bytes(), 8).is_err());
        assert!(parse(b"", 8).is_err());
    }

    #[test]
    fn walks_nested_values_with_paths() {
        let (items, deep) =
            parse(br#"{"user":{"name":"bob","tags":["a",1,{"x y":"z"}]}}"#, 32).unwrap();
        assert!(!deep);
        assert_eq!(
            values(&items),
            [
                ("$.user.name".to_owned(), "bob"),
                ("$.user.tags[0]".to_owned(), "a"),
                ("$.user.tags[2][\"x y\"]".to_owned(), "z")
            ]
        );
        assert!(
            items
                .iter()
                .any(|i| i.is_key && i.text == "name" && i.path() == "$.user.name")
        );
    }

    #[test]
    fn deep_subtrees_keep_the_cut_path() {
        let (items, deep) = parse(br#"{"a":{"b":{"c":"' or 1=1"}}}"#, 2).unwrap();
        assert!(deep);
        assert!(
            items
                .iter()
                .any(|i| i.path() == "$.a.b" && i.text.contains("or 1=1"))
        );
    }
}
