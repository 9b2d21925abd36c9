//! Operator rules from the configuration: allow / deny / weigh rules on
//! path, method, user agent, header and remote address; exclusions; exempt
//! paths; keyword lists.

use std::net::IpAddr;

use aho_corasick::AhoCorasick;
use regex::{Regex, RegexBuilder};

use super::config::{DetectConfig, Exclusion, RuleAction, parse_cidr};
use super::kind::Kind;
use crate::http::Request;

/// Matches `text` against a glob where `*` matches any run of characters.
/// Linear in practice (greedy with one backtrack point).
pub fn glob(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

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
    path: Option<String>,
    methods: Vec<String>,
    user_agent: Option<Regex>,
    header: Option<(String, Option<Regex>)>,
    remote: Vec<ipnet::IpNet>,
    weight: i32,
}

/// The operator part of the configuration, compiled.
pub struct Operator {
    rules: Vec<Compiled>,
    exclusions: Vec<Exclusion>,
    exempt: Vec<String>,
    keywords: Vec<(String, AhoCorasick, u32)>,
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
            rules.push(Compiled {
                id: r.id.clone().unwrap_or_else(|| format!("op-{}", i + 1)),
                action: r.action,
                path: r.path.clone(),
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
        Ok(Operator {
            rules,
            exclusions: cfg.exclusions.clone(),
            exempt: cfg.exempt_paths.clone(),
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

    /// Whether the path is exempt from inspection.
    pub fn exempt(&self, path: &str) -> bool {
        self.exempt.iter().any(|g| glob(g, path))
    }

    /// Whether a finding is excluded for this request path.
    pub fn excluded(&self, path: &str, kind: Kind, rule: &str, location: &str) -> bool {
        self.exclusions.iter().any(|e| {
            e.path.as_deref().is_none_or(|g| glob(g, path))
                && e.location.as_deref().is_none_or(|g| glob(g, location))
                && e.rule.as_deref().is_none_or(|g| glob(g, rule))
                && e.kind.is_none_or(|k| k == kind)
        })
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
        if self.path.as_deref().is_some_and(|g| !glob(g, &req.path)) {
            return false;
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

    #[test]
    fn globs() {
        assert!(glob("/static/*", "/static/a/b.css"));
        assert!(glob("*.css", "/x/y.css"));
        assert!(glob("/health", "/health"));
        assert!(!glob("/health", "/healthz"));
        assert!(glob("json:$.a*", "json:$.abc"));
        assert!(glob("*a*b*", "xxaxxbxx"));
        assert!(!glob("*a*b", "xxaxxbxxc"));
    }
}
