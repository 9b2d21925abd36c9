//! Target `api`: the control API's request bodies. Any JSON: deserializing
//! never panics, and what deserializes is within the stated bounds (a
//! duration from 1 s to ten years, text without control characters once
//! checked). Generated valid requests round-trip.

use proptest::prelude::*;
use serde_json::{Value, json};
use waf_user::{
    api::types::{BanRequest, DurationField, Export, ListRequest, ModeRequest},
    values::{MAX_DURATION, check_text, parse_net},
};

use crate::{check, support};

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,20}".prop_map(Value::String),
        "[0-9]{1,22}(ms|s|m|h|d)?".prop_map(Value::String),
        Just(Value::String("permanent".into())),
    ];
    leaf.prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("addr".to_string()),
                    Just("duration".to_string()),
                    Just("reason".to_string()),
                    Just("force".to_string()),
                    Just("cidr".to_string()),
                    Just("comment".to_string()),
                    Just("monitor".to_string()),
                    Just("emergency".to_string()),
                    Just("version".to_string()),
                    Just("bans".to_string()),
                    ".{0,6}",
                ],
                inner,
                0..5
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

#[test]
fn fuzz_api() {
    support::run(
        "api",
        (
            json_value(),
            any::<[u8; 4]>(),
            1u64..=MAX_DURATION.as_secs(),
        ),
        |(v, ip, secs)| {
            if let Ok(b) = serde_json::from_value::<BanRequest>(v.clone()) {
                match b.duration {
                    DurationField::For(d) => check!(
                        d.0.as_secs() >= 1 && d.0 <= MAX_DURATION,
                        "duration out of bounds accepted: {d:?} from {v}"
                    ),
                    DurationField::Policy | DurationField::Permanent => {}
                }
                let _ = parse_net(&b.addr.0);
                if let Some(r) = &b.reason {
                    let _ = check_text("reason", &r.0, 256);
                }
            }
            let _ = serde_json::from_value::<ListRequest>(v.clone());
            let _ = serde_json::from_value::<ModeRequest>(v.clone());
            let _ = serde_json::from_value::<Export>(v.clone());
            let _ = serde_json::from_slice::<BanRequest>(v.to_string().as_bytes());
            // A valid request is accepted as written.
            let addr = std::net::Ipv4Addr::from(ip).to_string();
            let body = json!({"addr": addr, "duration": secs, "reason": "fuzz"});
            let b: BanRequest = serde_json::from_value(body.clone())
                .map_err(|e| TestCaseError::fail(format!("{body}: {e}")))?;
            check!(
                b.duration == DurationField::For(waf_user::values::Dur::secs(secs)),
                "{body}"
            );
            check!(parse_net(&b.addr.0).is_ok(), "{body}");
            Ok(())
        },
    );
}
