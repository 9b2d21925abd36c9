//! The `[detect]` configuration: paranoia, threshold, passive mode, limits,
//! operator rules, exclusions, exempt paths, keywords, bad user agents.

use serde::Deserialize;

use super::kind::Kind;
use crate::http::Limits;

/// Methods allowed unless configured otherwise.
pub const DEFAULT_METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/// What `[detect] exempt_paths` became.
pub const EXEMPT_MOVED: &str = "detect.exempt_paths has moved: give each path a route, \
     [[routes]] path = \"/health\" with exempt = true (routes are the one home of per-path \
     policy; the mirror and `waf inspect` honour exempt routes too)";

/// Configuration of the detection engine (the `[detect]` table).
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DetectConfig {
    /// Paranoia level 1-4 (as in the CoreRuleSet): higher runs more rules
    /// and finds more, with more false positives. Default 1.
    pub paranoia: u8,
    /// Anomaly score at which a request is blocked. Default 5 (one critical
    /// finding).
    pub threshold: u32,
    /// Log verdicts but never block.
    pub passive: bool,
    /// Parser and inspection bounds.
    pub limits: Limits,
    /// Methods accepted; others are a protocol finding.
    pub allowed_methods: Vec<String>,
    /// The globs of `[[routes]]` in file order, each with whether its
    /// route is exempt from inspection: filled by `Config::engine_config`,
    /// not read from `[detect]`. A path is exempt when every reading of it
    /// picks the same route first and that route is exempt (see
    /// `crate::routes`); an encoded slash, a `..` above the root, bad
    /// UTF-8, a NUL or a `%u` escape in the path voids every exemption.
    #[serde(skip)]
    pub exempt_paths: Vec<(String, bool)>,
    /// Moved to `[[routes]] exempt = true`; refused with a message.
    #[serde(rename = "exempt_paths")]
    pub moved_exempt_paths: Option<toml::Value>,
    /// Operator rules, evaluated in order before detection.
    pub rules: Vec<OperatorRule>,
    /// Findings to ignore, by path, location, rule id or kind.
    pub exclusions: Vec<Exclusion>,
    /// Word lists that add a weight when found in a request.
    pub keywords: Vec<KeywordList>,
    /// User-Agent substrings to treat as scanners, besides the built-in list.
    pub bad_user_agents: Vec<String>,
    /// Whether the built-in list of scanner user agents is used. Default true.
    pub builtin_bad_user_agents: bool,
}

impl Default for DetectConfig {
    fn default() -> Self {
        DetectConfig {
            paranoia: 1,
            threshold: 5,
            passive: false,
            limits: Limits::default(),
            allowed_methods: DEFAULT_METHODS.iter().map(|m| (*m).to_owned()).collect(),
            exempt_paths: Vec::new(),
            moved_exempt_paths: None,
            rules: Vec::new(),
            exclusions: Vec::new(),
            keywords: Vec::new(),
            bad_user_agents: Vec::new(),
            builtin_bad_user_agents: true,
        }
    }
}

/// What an operator rule does when it matches.
#[derive(Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum RuleAction {
    /// Pass the request without inspecting it.
    Allow,
    /// Block the request.
    Deny,
    /// Add `weight` to the anomaly score.
    #[default]
    Weigh,
}

/// One string or a list of strings.
#[derive(Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(untagged)]
pub enum OneOrMany {
    /// A single value.
    One(String),
    /// Several values.
    Many(Vec<String>),
}

impl OneOrMany {
    /// The values as a slice-like list.
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

/// A header condition: the header is present (and its value matches).
#[derive(Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct HeaderMatch {
    /// Header name (case-insensitive).
    pub name: String,
    /// Regular expression the value must match (case-insensitive); absent:
    /// the header only has to be present.
    pub value: Option<String>,
}

/// An allow / deny / weigh rule: every condition given must hold.
#[derive(Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(default, deny_unknown_fields)]
pub struct OperatorRule {
    /// Identifier shown in findings (default `op-N`, N its 1-based position).
    pub id: Option<String>,
    /// What to do on a match.
    pub action: RuleAction,
    /// Path glob on the canonical path (as in `exempt_paths`). An `allow`
    /// rule (or a negative weight) must match every reading of the path and
    /// is void on an evasive path; a `deny` rule (or a positive weight)
    /// matches any reading, ignoring case.
    pub path: Option<String>,
    /// Method or methods (case-insensitive).
    pub method: Option<OneOrMany>,
    /// Regular expression on the User-Agent (case-insensitive; a missing
    /// User-Agent is matched as an empty one).
    pub user_agent: Option<String>,
    /// A header condition.
    pub header: Option<HeaderMatch>,
    /// Remote address CIDR or CIDRs.
    pub remote: Option<OneOrMany>,
    /// Score added by a `weigh` rule (may be negative).
    pub weight: i32,
}

/// Ignore findings: every field given must match the finding.
#[derive(Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Exclusion {
    /// Path glob of the request, on the canonical path (as in
    /// `exempt_paths`). Void on an evasive path: an exclusion with a path
    /// never applies to a request with an encoded slash or a `..` above the
    /// root (exclusions without a path still do).
    pub path: Option<String>,
    /// Location glob of the finding (`query:q`, `json:$.body.*`, `header:*`;
    /// `*` is the only wildcard, `[` and `]` are literal).
    pub location: Option<String>,
    /// Rule id or id glob (`sqli-*`).
    pub rule: Option<String>,
    /// Attack kind (`sqli`, `xss`, ...).
    pub kind: Option<Kind>,
}

/// Words that add a weight when one is found in the path, a parameter, a
/// cookie, the User-Agent or the body.
#[derive(Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(default, deny_unknown_fields)]
pub struct KeywordList {
    /// Identifier shown in findings (default `keywords-N`).
    pub id: Option<String>,
    /// The words (case-insensitive substrings).
    pub words: Vec<String>,
    /// Score added when any is found. Default 5.
    pub weight: Option<u32>,
}

impl DetectConfig {
    /// Checks values serde cannot. The error names the key, the value and
    /// what is allowed.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=4).contains(&self.paranoia) {
            return Err(format!(
                "detect.paranoia: {} is not allowed (1 to 4)",
                self.paranoia
            ));
        }
        if self.threshold == 0 {
            return Err("detect.threshold: 0 is not allowed (1 or more)".to_owned());
        }
        let l = &self.limits;
        for (key, v) in [
            ("max_headers", l.max_headers),
            ("max_header_bytes", l.max_header_bytes),
            ("max_body", l.max_body),
            ("max_file_inspect", l.max_file_inspect),
            ("max_json_depth", l.max_json_depth),
            ("max_params", l.max_params),
        ] {
            if v == 0 {
                return Err(format!("detect.limits.{key}: 0 is not allowed (1 or more)"));
            }
        }
        if l.max_json_depth > 128 {
            return Err(format!(
                "detect.limits.max_json_depth: {} is not allowed (1 to 128)",
                l.max_json_depth
            ));
        }
        for m in &self.allowed_methods {
            if m.is_empty()
                || !m
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(format!(
                    "detect.allowed_methods: {m:?} is not allowed (a method name such as GET)"
                ));
            }
        }
        if self.moved_exempt_paths.is_some() {
            return Err(EXEMPT_MOVED.into());
        }
        for (p, _) in &self.exempt_paths {
            check_glob("routes.path", p)?;
        }
        for (i, r) in self.rules.iter().enumerate() {
            let key = format!("detect.rules[{i}]");
            r.validate(&key)?;
        }
        for (i, e) in self.exclusions.iter().enumerate() {
            let key = format!("detect.exclusions[{i}]");
            if e.path.is_none() && e.location.is_none() && e.rule.is_none() && e.kind.is_none() {
                return Err(format!(
                    "{key}: an empty exclusion is not allowed (give path, location, rule or kind)"
                ));
            }
            if let Some(p) = &e.path {
                check_glob(&format!("{key}.path"), p)?;
            }
            for (field, g) in [("location", &e.location), ("rule", &e.rule)] {
                if let Some(g) = g {
                    crate::http::PathGlob::new(g).map_err(|err| format!("{key}.{field}: {err}"))?;
                }
            }
        }
        for (i, k) in self.keywords.iter().enumerate() {
            if k.words.iter().all(|w| w.trim().is_empty()) {
                return Err(format!(
                    "detect.keywords[{i}].words: an empty list is not allowed (one word or more)"
                ));
            }
        }
        for ua in &self.bad_user_agents {
            if ua.trim().is_empty() {
                return Err(
                    "detect.bad_user_agents: \"\" is not allowed (a non-empty substring)"
                        .to_owned(),
                );
            }
        }
        Ok(())
    }
}

impl OperatorRule {
    fn validate(&self, key: &str) -> Result<(), String> {
        let any = self.path.is_some()
            || self.method.is_some()
            || self.user_agent.is_some()
            || self.header.is_some()
            || self.remote.is_some();
        if !any {
            return Err(format!(
                "{key}: a rule without condition is not allowed (give path, method, user_agent, header or remote)"
            ));
        }
        if self.action == RuleAction::Weigh && self.weight == 0 {
            return Err(format!(
                "{key}.weight: 0 is not allowed for a weigh rule (a non-zero number)"
            ));
        }
        if let Some(p) = &self.path {
            check_glob(&format!("{key}.path"), p)?;
        }
        if let Some(ua) = &self.user_agent {
            check_regex(&format!("{key}.user_agent"), ua)?;
        }
        if let Some(h) = &self.header {
            if h.name.is_empty() {
                return Err(format!(
                    "{key}.header.name: \"\" is not allowed (a header name)"
                ));
            }
            if let Some(v) = &h.value {
                check_regex(&format!("{key}.header.value"), v)?;
            }
        }
        if let Some(r) = &self.remote {
            for c in r.to_vec() {
                parse_cidr(&c).ok_or_else(|| format!("{key}.remote: {c:?} is not allowed (an IP address or CIDR such as 10.0.0.0/8)"))?;
            }
        }
        Ok(())
    }
}

fn check_glob(key: &str, g: &str) -> Result<(), String> {
    if g.is_empty() {
        return Err(format!(
            "{key}: \"\" is not allowed (a path or glob such as /static/*)"
        ));
    }
    crate::http::PathGlob::new(g)
        .map(|_| ())
        .map_err(|e| format!("{key}: {e} (a path or glob such as /static/*)"))
}

fn check_regex(key: &str, r: &str) -> Result<(), String> {
    regex::RegexBuilder::new(r)
        .size_limit(1 << 20)
        .build()
        .map(|_| ())
        .map_err(|e| format!("{key}: {r:?} is not allowed (a regular expression: {e})"))
}

/// Parses `10.0.0.0/8`, `::1/128` or a bare address.
pub fn parse_cidr(s: &str) -> Option<ipnet::IpNet> {
    let s = s.trim();
    if let Ok(n) = s.parse::<ipnet::IpNet>() {
        return Some(n);
    }
    s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate() {
        let c = DetectConfig::default();
        assert_eq!((c.paranoia, c.threshold), (1, 5));
        assert!(c.validate().is_ok());
    }

    #[test]
    fn errors_name_key_value_and_allowed() {
        let c = DetectConfig {
            paranoia: 7,
            ..Default::default()
        };
        assert_eq!(
            c.validate().unwrap_err(),
            "detect.paranoia: 7 is not allowed (1 to 4)"
        );
        let c = DetectConfig {
            rules: vec![OperatorRule {
                remote: Some(OneOrMany::One("10.0.0.0/33".into())),
                action: RuleAction::Deny,
                ..Default::default()
            }],
            ..Default::default()
        };
        let e = c.validate().unwrap_err();
        assert!(
            e.starts_with("detect.rules[0].remote: \"10.0.0.0/33\" is not allowed"),
            "{e}"
        );
    }

    #[test]
    fn deserializes_from_toml() {
        let c: DetectConfig = toml::from_str(
            r#"
            paranoia = 2
            [[rules]]
            action = "deny"
            remote = ["192.0.2.0/24"]
            [[exclusions]]
            path = "/cms/*"
            location = "form:body"
            kind = "xss"
            "#,
        )
        .unwrap();
        assert_eq!(c.paranoia, 2);
        assert_eq!(c.exclusions[0].kind, Some(Kind::Xss));
        assert!(c.validate().is_ok());
        assert!(toml::from_str::<DetectConfig>("bogus = 1").is_err());
        let old: DetectConfig = toml::from_str("exempt_paths = [\"/health\"]").unwrap();
        assert!(old.validate().unwrap_err().contains("exempt = true"));
    }
}
