//! Target `json`: the JSON walk. Generated documents: every key and string
//! value is yielded once with a path, nothing else, at any depth (deeper
//! than the limit, at the path of the level that reached it, and flagged).
//! Any bytes as a JSON body: no panic.

use proptest::prelude::*;
use serde_json::Value;
use waf_user::http::{Limits, Request, json};

use crate::{check, support};

fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(6, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(".{0,8}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// (strings and keys, depth of containers).
fn census(v: &Value, depth: usize) -> (usize, usize) {
    match v {
        Value::String(_) => (1, 0),
        Value::Array(a) => a.iter().fold((0, depth + 1), |(n, d), c| {
            let (cn, cd) = census(c, depth + 1);
            (n + cn, d.max(cd))
        }),
        Value::Object(m) => m.iter().fold((0, depth + 1), |(n, d), (_, c)| {
            let (cn, cd) = census(c, depth + 1);
            (n + 1 + cn, d.max(cd))
        }),
        _ => (0, 0),
    }
}

#[test]
fn fuzz_json() {
    let limits = Limits::default();
    support::run(
        "json",
        (
            value(),
            1usize..8,
            prop::collection::vec(any::<u8>(), 0..200),
        ),
        |(doc, max_depth, noise)| {
            let text = serde_json::to_vec(&doc).unwrap_or_default();
            let (items, too_deep) = json::parse(&text, max_depth)
                .map_err(|e| proptest::test_runner::TestCaseError::fail(e.to_string()))?;
            let (strings, depth) = census(&doc, 0);
            check!(
                too_deep == (depth > max_depth),
                "too_deep {too_deep} at depth {depth} of {max_depth}"
            );
            check!(
                items.len() == strings,
                "{} items for {strings} strings",
                items.len()
            );
            check!(
                items.iter().all(|i| i.path().starts_with('$')),
                "a path without $"
            );
            let h = vec![("Content-Type".to_owned(), "application/json".to_owned())];
            for body in [text, noise] {
                let _ = Request::from_parts("POST", "/", h.clone(), body, &limits);
            }
            Ok(())
        },
    );
}
