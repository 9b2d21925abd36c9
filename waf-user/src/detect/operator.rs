//! Operator rules from the configuration: allow / deny / weigh rules on
//! path, method, user agent, header and remote address; exclusions; exempt
//! paths; keyword lists. Paths are matched on the canonical path with
//! [`PathGlob`]s: allow-type matches (exempt paths, allow rules, exclusions,
//! negative weights) must hold for every reading of the path and are void
//! when the path is evasive; deny-type matches (deny rules, positive
//! weights) hold for any reading, in any case.

use std::net::IpAddr;

use aho_corasick::AhoCorasick;
use regex::{Regex, RegexBuilder};

use super::config::{DetectConfig, RuleAction, parse_cidr};
use super::kind::Kind;
use crate::http::{CanonicalPath, PathGlob, PathGlobSet, Request};

/// The outcome of the operator rules for a request.
#[derive(Debug, Default)]
pub struct Decision {
    /// An allow rule matched: pass without inspection.
    pub allow: Option<String>,
    /// A deny rule matched: block.
    pub deny: Option<String>,
    /// Weigh rules that matched: (id, weight).
    pub weights: Vec<(String, i32)>,
}

struct Compiled {
    id: String,
    action: RuleAction,
    path: Option<PathGlob>,
    methods: Vec<String>,
    user_agent: Option<Regex>,
    header: Option<(String, Option<Regex>)>,
    remote: Vec<ipnet::IpNet>,
    weight: i32,
}

/// An exclusion, compiled.
struct CompiledExclusion {
    path: Option<PathGlob>,
    location: Option<PathGlob>,
    rule: Option<PathGlob>,
    kind: Option<Kind>,
}

/// Which exclusions apply to one request (by its canonical path).
#[derive(Debug, Clone, Default)]
pub struct ExclusionScope(Vec<bool>);

/// A list of exclusions, compiled: the config's (inside [`Operator`]) and
/// those an operator adds at run time (`crate::findings`), one matcher for
/// both.
#[derive(Default)]
pub struct ExclusionSet(Vec<CompiledExclusion>);

impl ExclusionSet {
    /// Compiles exclusions; an error names `key[i]` and the field.
    pub fn new(exclusions: &[super::config::Exclusion], key: &str) -> Result<ExclusionSet, String> {
        let mut out = Vec::with_capacity(exclusions.len());
        for (i, e) in exclusions.iter().enumerate() {
            let key = format!("{key}[{i}]");
            out.push(CompiledExclusion {
                path: glob(&format!("{key}.path"), e.path.as_ref(), false)?,
                location: glob(&format!("{key}.location"), e.location.as_ref(), false)?,
                rule: glob(&format!("{key}.rule"), e.rule.as_ref(), false)?,
                kind: e.kind,
            });
        }
        Ok(ExclusionSet(out))
    }

    /// Whether the set holds no exclusion.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The exclusions that apply to a request: those without a path, and
    /// those whose path glob matches every reading of the canonical path
    /// (none of these when a flag voids exemptions).
    pub fn scope(&self, path: &CanonicalPath) -> ExclusionScope {
        ExclusionScope(
            self.0
                .iter()
                .map(|e| e.path.as_ref().is_none_or(|g| g.matches_all(path)))
                .collect(),
        )
    }

    /// Whether a finding is excluded within a request's scope.
    pub fn excluded(&self, scope: &ExclusionScope, kind: Kind, rule: &str, location: &str) -> bool {
        self.0.iter().zip(&scope.0).any(|(e, &applies)| {
            applies
                && e.location.as_ref().is_none_or(|g| g.is_match(location))
                && e.rule.as_ref().is_none_or(|g| g.is_match(rule))
                && e.kind.is_none_or(|k| k == kind)
        })
    }
}

/// The operator part of the configuration, compiled.
pub struct Operator {
    rules: Vec<Compiled>,
    exclusions: ExclusionSet,
    /// The routes' globs in file order, and which are exempt.
    routes: PathGlobSet,
    exempt: Vec<bool>,
    keywords: Vec<(String, AhoCorasick, u32)>,
}

/// Whether a rule lets requests through or weighs them down: the former
/// match every reading of a path, case-sensitively; the latter any, in any
/// case.
fn allow_type(action: RuleAction, weight: i32) -> bool {
    match action {
        RuleAction::Allow => true,
        RuleAction::Deny => false,
        RuleAction::Weigh => weight < 0,
    }
}

fn glob(
    key: &str,
    pattern: Option<&String>,
    case_insensitive: bool,
) -> Result<Option<PathGlob>, String> {
    pattern
        .map(|p| {
            if case_insensitive {
                PathGlob::case_insensitive(p)
            } else {
                PathGlob::new(p)
            }
            .map_err(|e| format!("{key}: {e}"))
        })
        .transpose()
}

fn ci_regex(key: &str, r: &str) -> Result<Regex, String> {
    RegexBuilder::new(r)
        .case_insensitive(true)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| format!("{key}: {e}"))
}

impl Operator {
    /// Compiles the operator rules of a (validated) configuration.
    pub fn new(cfg: &DetectConfig) -> Result<Operator, String> {
        let mut rules = Vec::new();
        for (i, r) in cfg.rules.iter().enumerate() {
            let key = format!("detect.rules[{i}]");
            let remote = r
                .remote
                .iter()
                .flat_map(|o| o.to_vec())
                .map(|c| parse_cidr(&c).ok_or_else(|| format!("{key}.remote: {c:?} is not a CIDR")))
                .collect::<Result<Vec<_>, _>>()?;
            let deny_type = !allow_type(r.action, r.weight);
            rules.push(Compiled {
                id: r.id.clone().unwrap_or_else(|| format!("op-{}", i + 1)),
                action: r.action,
                path: glob(&format!("{key}.path"), r.path.as_ref(), deny_type)?,
                methods: r
                    .method
                    .iter()
                    .flat_map(|m| m.to_vec())
                    .map(|m| m.to_ascii_uppercase())
                    .collect(),
                user_agent: r
                    .user_agent
                    .as_deref()
                    .map(|u| ci_regex(&format!("{key}.user_agent"), u))
                    .transpose()?,
                header: match &r.header {
                    Some(h) => Some((
                        h.name.to_ascii_lowercase(),
                        h.value
                            .as_deref()
                            .map(|v| ci_regex(&format!("{key}.header.value"), v))
                            .transpose()?,
                    )),
                    None => None,
                },
                remote,
                weight: r.weight,
            });
        }
        let mut keywords = Vec::new();
        for (i, k) in cfg.keywords.iter().enumerate() {
            let words: Vec<&str> = k
                .words
                .iter()
                .map(|w| w.trim())
                .filter(|w| !w.is_empty())
                .collect();
            let ac = AhoCorasick::builder()
                .ascii_case_insensitive(true)
                .build(&words)
                .map_err(|e| format!("detect.keywords[{i}]: {e}"))?;
            keywords.push((
                k.id.clone()
                    .unwrap_or_else(|| format!("keywords-{}", i + 1)),
                ac,
                k.weight.unwrap_or(5),
            ));
        }
        let exclusions = ExclusionSet::new(&cfg.exclusions, "detect.exclusions")?;
        Ok(Operator {
            rules,
            exclusions,
            routes: PathGlobSet::new(
                &cfg.exempt_paths
                    .iter()
                    .map(|(p, _)| p.as_str())
                    .collect::<Vec<_>>(),
            )
            .map_err(|e| format!("routes.path: {e}"))?,
            exempt: cfg.exempt_paths.iter().map(|(_, e)| *e).collect(),
            keywords,
        })
    }

    /// Evaluates the allow / deny / weigh rules in order; the first allow or
    /// deny decides.
    pub fn decide(&self, req: &Request, remote: Option<IpAddr>) -> Decision {
        let mut d = Decision::default();
        for r in &self.rules {
            if !r.matches(req, remote) {
                continue;
            }
            match r.action {
                RuleAction::Allow => {
                    d.allow = Some(r.id.clone());
                    return d;
                }
                RuleAction::Deny => {
                    d.deny = Some(r.id.clone());
                    return d;
                }
                RuleAction::Weigh => d.weights.push((r.id.clone(), r.weight)),
            }
        }
        d
    }

    /// Whether the path is exempt from inspection: every reading of it
    /// picks the same route first, that route is exempt, and no flag voids
    /// exemptions (as `crate::routes::Routes::exempt` decides for the
    /// proxy).
    pub fn exempt(&self, path: &CanonicalPath) -> bool {
        if !self.exempt.contains(&true) || path.voids_exemptions() {
            return false;
        }
        let mut picked = path.readings().map(|r| self.routes.first_match(r));
        let Some(Some(first)) = picked.next() else {
            return false;
        };
        self.exempt[first] && picked.all(|p| p == Some(first))
    }

    /// The config's exclusions that apply to a request (see
    /// [`ExclusionSet::scope`]).
    pub fn exclusion_scope(&self, path: &CanonicalPath) -> ExclusionScope {
        self.exclusions.scope(path)
    }

    /// Whether a finding is excluded by the config within a request's scope.
    pub fn excluded(&self, scope: &ExclusionScope, kind: Kind, rule: &str, location: &str) -> bool {
        self.exclusions.excluded(scope, kind, rule, location)
    }

    /// The keyword lists that match a text: (id, weight, word).
    pub fn keywords<'a>(
        &'a self,
        text: &'a str,
    ) -> impl Iterator<Item = (&'a str, u32, &'a str)> + 'a {
        self.keywords.iter().filter_map(move |(id, ac, w)| {
            ac.find(text).map(|m| (id.as_str(), *w, &text[m.range()]))
        })
    }

    /// Whether any keyword list is configured.
    pub fn has_keywords(&self) -> bool {
        !self.keywords.is_empty()
    }
}

impl Compiled {
    fn matches(&self, req: &Request, remote: Option<IpAddr>) -> bool {
        if let Some(g) = &self.path {
            let hit = if allow_type(self.action, self.weight) {
                g.matches_all(&req.canonical)
            } else {
                g.matches_any(&req.canonical)
            };
            if !hit {
                return false;
            }
        }
        if !self.methods.is_empty()
            && !self
                .methods
                .iter()
                .any(|m| m.eq_ignore_ascii_case(&req.method))
        {
            return false;
        }
        if let Some(re) = &self.user_agent
            && !re.is_match(req.header("user-agent").unwrap_or(""))
        {
            return false;
        }
        if let Some((name, value)) = &self.header {
            let mut values = req.header_all(name);
            let ok = match value {
                Some(re) => values.any(|v| re.is_match(v)),
                None => values.next().is_some(),
            };
            if !ok {
                return false;
            }
        }
        if !self.remote.is_empty() {
            match remote {
                Some(ip) if self.remote.iter().any(|n| n.contains(&ip)) => {}
                _ => return false,
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::config::{Exclusion, OperatorRule};
    use crate::http::Limits;

    fn req(target: &str) -> Request {
        Request::from_parts("GET", target, Vec::new(), Vec::new(), &Limits::default())
            .expect("request")
    }

    #[test]
    fn allow_and_deny_rules_read_the_canonical_path() {
        let cfg = DetectConfig {
            rules: vec![
                OperatorRule {
                    action: RuleAction::Deny,
                    path: Some("/admin*".into()),
                    ..Default::default()
                },
                OperatorRule {
                    action: RuleAction::Allow,
                    path: Some("/public/*".into()),
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let op = Operator::new(&cfg).expect("operator");
        let d = |t: &str| op.decide(&req(t), None);
        assert!(d("/x/../admin").deny.is_some());
        assert!(d("/x/%2e%2e/ADMIN/").deny.is_some());
        assert!(d("/x/..;/admin").deny.is_some());
        assert!(d("/public/a").allow.is_some());
        assert!(d("/public/../secret").allow.is_none());
        assert!(d("/public%2f..%2fsecret").allow.is_none());
    }

    #[test]
    fn exclusions_with_a_path_are_void_on_evasive_paths() {
        let cfg = DetectConfig {
            exclusions: vec![
                Exclusion {
                    path: Some("/cms/*".into()),
                    kind: Some(Kind::Xss),
                    ..Default::default()
                },
                Exclusion {
                    rule: Some("protocol-path-*".into()),
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let op = Operator::new(&cfg).expect("operator");
        let ex = |t: &str, kind, rule: &str| {
            op.excluded(
                &op.exclusion_scope(&req(t).canonical),
                kind,
                rule,
                "query:q",
            )
        };
        assert!(ex("/cms/page", Kind::Xss, "xss-x"));
        assert!(!ex("/cms/../login", Kind::Xss, "xss-x"));
        assert!(!ex("/cms/%2e%2e/login", Kind::Xss, "xss-x"));
        assert!(!ex("/cms%2fpage", Kind::Xss, "xss-x"));
        assert!(!ex("/../cms/page", Kind::Xss, "xss-x"));
        // An exclusion without a path does not read the path.
        assert!(ex(
            "/cms%2fpage",
            Kind::Protocol,
            "protocol-path-encoded-slash"
        ));
    }
}
