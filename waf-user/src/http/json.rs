//! JSON bodies: every key and string value with a JSONPath-like location.

use std::fmt::Write as _;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// One JSON key or string value and where it is (`$.user.name`, `$.items[0]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonItem {
    /// JSONPath-like location of the value (for a key: of the member it names).
    pub path: String,
    /// The key or the string value (below the depth limit, at the path of
    /// the subtree that reached it).
    pub text: String,
    /// Whether `text` is an object key rather than a value.
    pub is_key: bool,
}

/// Parses a JSON document and walks it as it is read: every key and
/// string value in document order, duplicate keys included (a parsed
/// `Value` keeps one of `{"q": "<payload>", "q": "x"}`, and back ends
/// differ on which they read). Returns the items and whether the depth
/// limit was hit: below it, keys and values keep the path of the subtree
/// that reached the limit.
pub fn parse(body: &[u8], max_depth: usize) -> Result<(Vec<JsonItem>, bool), serde_json::Error> {
    let mut walker = Walker {
        items: Vec::new(),
        too_deep: false,
        path: String::from("$"),
        max_depth,
    };
    let mut de = serde_json::Deserializer::from_slice(body);
    Node {
        w: &mut walker,
        depth: 0,
    }
    .deserialize(&mut de)?;
    de.end()?;
    Ok((walker.items, walker.too_deep))
}

/// What the walk has found so far.
struct Walker {
    items: Vec<JsonItem>,
    too_deep: bool,
    /// The location being read.
    path: String,
    max_depth: usize,
}

impl Walker {
    fn push(&mut self, text: String, is_key: bool) {
        self.items.push(JsonItem {
            path: self.path.clone(),
            text,
            is_key,
        });
    }
}

/// One value of the document, at `depth`.
struct Node<'w> {
    w: &'w mut Walker,
    depth: usize,
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
        self.w.push(v.to_owned(), false);
        Ok(())
    }

    fn visit_string<E>(self, v: String) -> Result<(), E> {
        self.w.push(v, false);
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
        let deep = self.enter();
        let mut i = 0usize;
        loop {
            let len = self.w.path.len();
            if !deep {
                // Writing to a String cannot fail.
                let _ = write!(self.w.path, "[{i}]");
            }
            let more = seq
                .next_element_seed(Node {
                    w: &mut *self.w,
                    depth: self.depth + 1,
                })?
                .is_some();
            self.w.path.truncate(len);
            if !more {
                return Ok(());
            }
            i += 1;
        }
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        let deep = self.enter();
        while let Some(key) = map.next_key::<String>()? {
            let len = self.w.path.len();
            if !deep {
                push_key(&mut self.w.path, &key);
            }
            self.w.push(key, true);
            map.next_value_seed(Node {
                w: &mut *self.w,
                depth: self.depth + 1,
            })?;
            self.w.path.truncate(len);
        }
        Ok(())
    }
}

impl Node<'_> {
    /// Entering an object or array: whether it is at or past the depth
    /// limit (its contents then keep its path).
    fn enter(&mut self) -> bool {
        let deep = self.depth >= self.w.max_depth;
        self.w.too_deep |= deep;
        deep
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
mod tests {
    use proptest::prelude::*;
    use serde_json::Value;

    use super::*;

    /// The walk as first written, over a parsed `Value`.
    fn walk_reference(
        v: &Value,
        path: &mut String,
        depth: usize,
        max: usize,
        out: &mut Vec<JsonItem>,
    ) {
        match v {
            Value::String(s) => out.push(JsonItem {
                path: path.clone(),
                text: s.clone(),
                is_key: false,
            }),
            Value::Object(map) => {
                for (k, child) in map {
                    let len = path.len();
                    if depth < max {
                        push_key(path, k);
                    }
                    out.push(JsonItem {
                        path: path.clone(),
                        text: k.clone(),
                        is_key: true,
                    });
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

    fn json_value() -> impl Strategy<Value = Value> {
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

    fn sorted(v: Vec<JsonItem>) -> Vec<(String, String, bool)> {
        let mut out: Vec<_> = v.into_iter().map(|i| (i.path, i.text, i.is_key)).collect();
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
            prop_assert_eq!(sorted(items), sorted(want));
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

    #[test]
    fn duplicate_keys_are_all_read() {
        let (items, _) = parse(br#"{"q":"1 union select pass from users","q":"x"}"#, 8).unwrap();
        let values: Vec<_> = items
            .iter()
            .filter(|i| !i.is_key)
            .map(|i| (i.path.as_str(), i.text.as_str()))
            .collect();
        assert_eq!(
            values,
            [("$.q", "1 union select pass from users"), ("$.q", "x")]
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
        let got: Vec<_> = items
            .iter()
            .filter(|i| !i.is_key)
            .map(|i| (i.path.as_str(), i.text.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("$.user.name", "bob"),
                ("$.user.tags[0]", "a"),
                ("$.user.tags[2][\"x y\"]", "z")
            ]
        );
        assert!(
            items
                .iter()
                .any(|i| i.is_key && i.text == "name" && i.path == "$.user.name")
        );
    }

    #[test]
    fn deep_subtrees_keep_the_cut_path() {
        let (items, deep) = parse(br#"{"a":{"b":{"c":"' or 1=1"}}}"#, 2).unwrap();
        assert!(deep);
        assert!(
            items
                .iter()
                .any(|i| i.path == "$.a.b" && i.text.contains("or 1=1"))
        );
    }
}
