//! JSON bodies: every key and string value with a JSONPath-like location.

use std::fmt::Write as _;

use serde_json::Value;

/// One JSON key or string value and where it is (`$.user.name`, `$.items[0]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonItem {
    /// JSONPath-like location of the value (for a key: of the member it names).
    pub path: String,
    /// The key or the string value; for a subtree deeper than the depth limit,
    /// its JSON text.
    pub text: String,
    /// Whether `text` is an object key rather than a value.
    pub is_key: bool,
}

/// Walks a parsed JSON document, taking its strings rather than copying
/// them. Returns the items and whether the depth limit was hit (deeper
/// subtrees are kept as one item holding their text).
pub fn walk(doc: Value, max_depth: usize) -> (Vec<JsonItem>, bool) {
    let mut items = Vec::new();
    let mut too_deep = false;
    let mut path = String::from("$");
    walk_value(doc, &mut path, 0, max_depth, &mut items, &mut too_deep);
    (items, too_deep)
}

fn walk_value(
    v: Value,
    path: &mut String,
    depth: usize,
    max_depth: usize,
    items: &mut Vec<JsonItem>,
    too_deep: &mut bool,
) {
    match v {
        Value::String(s) => items.push(JsonItem {
            path: path.clone(),
            text: s,
            is_key: false,
        }),
        v @ (Value::Object(_) | Value::Array(_)) if depth >= max_depth => {
            *too_deep = true;
            items.push(JsonItem {
                path: path.clone(),
                text: v.to_string(),
                is_key: false,
            });
        }
        Value::Object(map) => {
            for (k, child) in map {
                let len = path.len();
                push_key(path, &k);
                items.push(JsonItem {
                    path: path.clone(),
                    text: k,
                    is_key: true,
                });
                walk_value(child, path, depth + 1, max_depth, items, too_deep);
                path.truncate(len);
            }
        }
        Value::Array(list) => {
            for (i, child) in list.into_iter().enumerate() {
                let len = path.len();
                // Writing to a String cannot fail.
                let _ = write!(path, "[{i}]");
                walk_value(child, path, depth + 1, max_depth, items, too_deep);
                path.truncate(len);
            }
        }
        Value::Number(_) | Value::Bool(_) | Value::Null => {}
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
    use super::*;

    #[test]
    fn walks_nested_values_with_paths() {
        let doc: Value =
            serde_json::from_str(r#"{"user":{"name":"bob","tags":["a",1,{"x y":"z"}]}}"#).unwrap();
        let (items, deep) = walk(doc, 32);
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
    fn keeps_too_deep_subtrees_as_text() {
        let doc: Value = serde_json::from_str(r#"{"a":{"b":{"c":"' or 1=1"}}}"#).unwrap();
        let (items, deep) = walk(doc, 2);
        assert!(deep);
        assert!(
            items
                .iter()
                .any(|i| i.path == "$.a.b" && i.text.contains("or 1=1"))
        );
    }
}
