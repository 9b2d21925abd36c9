//! Target `config`: the config parser. Any text: no panic, and an error is
//! one line that names what is wrong. Generated configs of in-range values:
//! accepted, with the values written read back (durations through their
//! printed form too).

use std::path::Path;

use proptest::prelude::*;
use waf_user::{config::Config, values::Dur};

use crate::{check, support};

/// TOML fragments: keys of the real schema with values of every kind, in
/// range or not, plus noise.
fn fragment() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        Just("[ban_policy]\nstrikes"),
        Just("[ban_policy]\nwindow"),
        Just("[ban_policy]\nduration"),
        Just("[ban_policy]\nfactor"),
        Just("[ban_policy]\nipv6_prefix"),
        Just("[rate_limit]\npps"),
        Just("[rate_limit]\nburst_bytes"),
        Just("[rate_limit]\nevent_interval"),
        Just("[proxy]\ntrusted_depth"),
        Just("[proxy]\nmax_upload"),
        Just("[mirror]\nports"),
        Just("[allowlist]\ncidrs"),
        Just("[detect]\nparanoia"),
        Just("interface"),
        Just("state_dir"),
    ];
    let value = prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|f| format!("{f:?}")),
        "[0-9]{1,22}(ms|s|m|h|d|x)?".prop_map(|s| format!("\"{s}\"")),
        ".{0,24}".prop_map(|s| format!("{s:?}")),
        prop::collection::vec(".{0,12}", 0..4).prop_map(|v| format!("{v:?}")),
        Just("[]".to_string()),
        Just("true".to_string()),
    ];
    (key, value).prop_map(|(k, v)| format!("{k} = {v}\n"))
}

#[test]
fn fuzz_config() {
    support::run(
        "config",
        (
            prop::collection::vec(fragment(), 0..4),
            prop::collection::vec(any::<u8>(), 0..120),
            1u32..1000,
            1u64..3650 * 86_400,
            1u8..=128,
        ),
        |(frags, noise, strikes, secs, v6)| {
            let path = Path::new("fuzz.toml");
            for text in [frags.concat(), String::from_utf8_lossy(&noise).into_owned()] {
                if let Err(e) = Config::parse(&text, path) {
                    let msg = e.to_string();
                    check!(!msg.contains('\n'), "a multi-line error: {msg:?}");
                    check!(!msg.is_empty(), "an empty error");
                }
            }
            let dur = Dur::secs(secs);
            let good = format!(
                "[ban_policy]\nstrikes = {strikes}\nwindow = \"{dur}\"\nduration = {secs}\n\
                 max_duration = \"{dur}\"\nipv6_prefix = {v6}\nmax_prefix_v6 = 0\n"
            );
            let cfg = Config::parse(&good, path)
                .map_err(|e| TestCaseError::fail(format!("{good}: {e}")))?;
            check!(cfg.ban_policy.strikes == strikes, "strikes");
            check!(cfg.ban_policy.window == dur, "window {dur}");
            check!(cfg.ban_policy.duration == dur, "duration {secs}");
            check!(cfg.ban_policy.ipv6_prefix == v6, "ipv6_prefix");
            check!(cfg.settings().is_ok(), "settings of a valid config");
            Ok(())
        },
    );
}
