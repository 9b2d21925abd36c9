//! Target `normalize`: the normaliser on any bytes: no panic, and the
//! views within their stated bounds (decoding never lengthens a value; the
//! folded view is no longer than the decoded one; the SQL view no longer
//! than the folded one).

use proptest::prelude::*;
use waf_user::detect::normalize::Normalized;

use crate::{check, support};

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..16),
        "(%[0-9a-fA-F]{0,2}|%u[0-9a-fA-F]{0,4}|&#x?[0-9a-f]{0,8};?|&[a-z]{0,8};?|\\\\u[0-9a-f]{0,4}|\\\\x[0-9a-f]{0,2}|/\\*!?[0-9]{0,5}|\\*/|\\$\\{IFS\\}|[a-z'\"<>]{0,6})"
            .prop_map(String::into_bytes),
    ];
    prop::collection::vec(piece, 0..24).prop_map(|v| v.concat())
}

#[test]
fn fuzz_normalize() {
    support::run("normalize", (bytes(), any::<bool>()), |(raw, plus)| {
        let n = Normalized::new(&raw, plus);
        check!(
            n.dec.len() <= raw.len().max(1) * 4,
            "decoded {} from {}",
            n.dec.len(),
            raw.len()
        );
        check!(
            n.low.len() <= n.dec.len() * 4 + 4,
            "folded {} from {}",
            n.low.len(),
            n.dec.len()
        );
        check!(n.sql().len() <= n.low.len(), "sql view longer than folded");
        Ok(())
    });
}
