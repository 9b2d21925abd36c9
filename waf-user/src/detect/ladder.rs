//! The paranoia ladder of the checks that are not regex rules (protocol
//! checks, SSRF, GraphQL, open redirects): findings that only add to the
//! score at paranoia 1 (a browser or an application sends them now and
//! then) and block alone from a higher level, as the CoreRuleSet's
//! stricter levels do. Regex rules say the same with
//! `Rule::critical_from`. Each level trades false positives for
//! detection; `cargo xtask eval --paranoia all` measures what each step
//! buys.

/// Rule ids and the paranoia level from which their findings are critical.
const CRITICAL_FROM: &[(&str, u8)] = &[
    // A `..` that climbs above the root: no browser sends one.
    ("protocol-path-above-root", 2),
    // An encoded slash in the path (`%2F`, `%5C`): APIs and storage
    // services name objects with one (`/o/assets%2Fid`, `/v3%2Fmaster`,
    // `/npm-search/%40types%2Freact-dom`); at paranoia 2 it blocked 21
    // browser requests in 16,632 alone and no attack of the dev corpus
    // that other findings did not block: level 3. Below it, it still
    // voids path exemptions and adds 4 points to other findings.
    ("protocol-path-encoded-slash", 3),
    // A text body without a Content-Type: no browser sends one (binary
    // beacons, which do go untyped, are `protocol-untyped-binary-body`).
    // 73 attacks in 8,655 for no browser request in 16,632: level 2.
    ("protocol-missing-content-type", 2),
    // A parameter or path whose bytes decode to no UTF-8 (`%C0`, `%FF`):
    // browsers encode them as UTF-8; no browser request in 16,632 has one.
    ("protocol-invalid-utf8", 2),
    // Encodings no browser makes (a `%` not followed by two hex digits, a
    // NUL or a control character in a value, full-width forms of ASCII).
    // At paranoia 2 they cost about 30 browser requests in 16,632 for 9
    // attacks in 8,655: level 3.
    ("protocol-invalid-url-encoding", 3),
    ("protocol-null-byte", 3),
    ("protocol-control-character", 3),
    ("protocol-unicode-fullwidth", 3),
    // Requests to an address instead of a name, or without a User-Agent
    // (42 browser requests in 16,632 name an address).
    ("protocol-host-is-ip", 4),
    ("protocol-missing-user-agent", 4),
    // A private address in a URL: LAN devices' pages link to them.
    ("ssrf-private-range", 2),
    // A GraphQL schema query: development tools send one.
    ("graphql-introspection", 2),
    // A host name as a URL's user name (`https://app.example@evil`):
    // rare, but a link can carry one.
    ("open-redirect-userinfo", 2),
];

/// The level from which `rule`'s findings are critical, if it has one.
pub fn critical_from(rule: &str) -> Option<u8> {
    CRITICAL_FROM
        .iter()
        .find(|(r, _)| *r == rule)
        .map(|&(_, level)| level)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_rule_is_listed_once_at_a_level_above_one() {
        let regex_rules = crate::detect::rules::all();
        for (i, (r, level)) in CRITICAL_FROM.iter().enumerate() {
            assert!((2..=4).contains(level), "{r}");
            // Regex rules carry their own level (`Rule::critical_from`).
            assert!(
                regex_rules.iter().all(|rule| rule.id != *r),
                "{r} is a regex rule"
            );
            assert!(CRITICAL_FROM[..i].iter().all(|(o, _)| o != r), "{r} twice");
        }
        assert_eq!(critical_from("protocol-null-byte"), Some(3));
        assert_eq!(critical_from("sqli-union-select"), None);
    }
}
