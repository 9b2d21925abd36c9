//! Target `canonical`: the canonical path. Any path: it is a fixed point
//! (the canonical form of a canonical path is itself), starts with `/` and
//! never holds `//`, `/./`, `/../`, `\` or `;`. An exemption never holds for
//! a path unless it holds for its canonical form and no flag voids it; and
//! a request and its canonical form get the same verdict when the path has
//! a single reading.

use std::sync::OnceLock;

use proptest::prelude::*;
use waf_user::detect::{DetectConfig, Engine, Verdict};
use waf_user::http::{CanonicalPath, Request};

use crate::{check, support};

fn engine() -> &'static Engine {
    static E: OnceLock<Engine> = OnceLock::new();
    E.get_or_init(|| {
        Engine::new(&DetectConfig {
            // The routes' globs in file order, each exempt or not.
            exempt_paths: vec![
                ("/static/*".into(), true),
                ("/health".into(), true),
                ("*.css".into(), true),
                ("/login*".into(), false),
            ],
            ..Default::default()
        })
        .expect("engine")
    })
}

fn path() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("/".to_owned()),
        Just("//".to_owned()),
        Just(".".to_owned()),
        Just("..".to_owned()),
        Just("/../".to_owned()),
        Just("\\".to_owned()),
        Just(";".to_owned()),
        Just("static".to_owned()),
        Just("health".to_owned()),
        Just("a.css".to_owned()),
        Just("login".to_owned()),
        "%(2[eEfF5]|5[cC]|25|00|c0|ae|u002e|[0-9a-fA-F]{2})".prop_map(|s| s),
        "[a-z0-9%=]{1,4}",
        "[^?#]{1,2}",
    ];
    prop::collection::vec(piece, 0..12).prop_map(|v| v.concat())
}

fn inspect(target: &str) -> Option<(Verdict, bool)> {
    let headers = vec![
        ("Host".to_owned(), "a".to_owned()),
        ("User-Agent".to_owned(), "Mozilla/5.0".to_owned()),
        ("Accept".to_owned(), "*/*".to_owned()),
    ];
    let req = Request::from_parts("GET", target, headers, Vec::new(), engine().limits()).ok()?;
    Some((engine().inspect(&req, None), engine().exempt(&req)))
}

#[test]
fn fuzz_canonical() {
    support::run("canonical", path(), |raw| {
        // As a request target: an absolute form (`http://h/p`) yields its path.
        let c = CanonicalPath::from_target(&raw);
        let p = &c.path;
        check!(p.starts_with('/'), "{p:?} does not start with /");
        for bad in ["//", "/./", "/../", "\\", ";"] {
            check!(!p.contains(bad), "{p:?} holds {bad:?} (from {raw:?})");
        }
        check!(
            !p.ends_with("/.") && !p.ends_with("/.."),
            "{p:?} ends in a dot segment"
        );
        let again = CanonicalPath::from_raw_path(p);
        check!(
            again.path == *p,
            "not a fixed point: {raw:?} -> {p:?} -> {:?}",
            again.path
        );
        let attack = "?id=1%27%20union%20select%20password%20from%20users--";
        let (Some((raw_v, raw_exempt)), Some((canon_v, canon_exempt))) = (
            inspect(&format!("{raw}{attack}")),
            inspect(&format!("{p}{attack}")),
        ) else {
            return Ok(());
        };
        if raw_exempt {
            check!(
                !c.voids_exemptions(),
                "{raw:?} exempt despite {:?}",
                c.flags
            );
            check!(canon_exempt, "{raw:?} exempt but not its canonical {p:?}");
        }
        let single = !c.voids_exemptions() && c.other_readings.is_empty();
        if single {
            check!(
                raw_exempt == canon_exempt,
                "{raw:?} exempt {raw_exempt}, {p:?} {canon_exempt}"
            );
            check!(
                raw_v.action == canon_v.action,
                "{raw:?}: {:?}, canonical {p:?}: {:?}",
                raw_v.action,
                canon_v.action
            );
        }
        Ok(())
    });
}
