//! Path globs: the one pattern language of exempt paths, exclusions,
//! operator path rules (and the proxy's per-path policies), compiled with
//! globset and matched against the canonical path.
//!
//! Meaning, the same everywhere: `*` matches any run of characters,
//! **`/` included** (`/static/*` covers every path below `/static/`, at any
//! depth; `*.css` any path ending in `.css`). Every other character is
//! literal: `?`, `[`, `]`, `{`, `}` and `\` have no special meaning. Matching
//! is case-sensitive unless the glob is built with
//! [`PathGlob::case_insensitive`].

use globset::{GlobBuilder, GlobMatcher, GlobSet, GlobSetBuilder};

use super::canonical::CanonicalPath;

/// One compiled glob.
#[derive(Debug, Clone)]
pub struct PathGlob {
    pattern: String,
    matcher: GlobMatcher,
}

/// Turns a `*`-only pattern into a globset pattern with every other
/// meta-character escaped.
fn translate(pattern: &str) -> String {
    pattern
        .split('*')
        .map(globset::escape)
        .collect::<Vec<_>>()
        .join("*")
}

fn build(pattern: &str, case_insensitive: bool) -> Result<globset::Glob, String> {
    GlobBuilder::new(&translate(pattern))
        .literal_separator(false)
        .case_insensitive(case_insensitive)
        .backslash_escape(false)
        .empty_alternates(true)
        .build()
        .map_err(|e| format!("{pattern:?} is not a glob: {e}"))
}

impl PathGlob {
    /// Compiles a case-sensitive glob (`*` is the only wildcard).
    pub fn new(pattern: &str) -> Result<PathGlob, String> {
        Ok(PathGlob {
            pattern: pattern.to_owned(),
            matcher: build(pattern, false)?.compile_matcher(),
        })
    }

    /// Compiles a glob that ignores ASCII and Unicode case (for deny-type
    /// rules: a case-insensitive server maps `/ADMIN` to `/admin`).
    pub fn case_insensitive(pattern: &str) -> Result<PathGlob, String> {
        Ok(PathGlob {
            pattern: pattern.to_owned(),
            matcher: build(pattern, true)?.compile_matcher(),
        })
    }

    /// The pattern as written.
    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// Whether the glob matches this text.
    pub fn is_match(&self, text: &str) -> bool {
        self.matcher.is_match(text)
    }

    /// Allow-type match (exemptions, allow rules, exclusions): the glob
    /// matches the canonical path and every other reading of it, and the
    /// path carries no flag that voids exemptions.
    pub fn matches_all(&self, path: &CanonicalPath) -> bool {
        !path.voids_exemptions() && path.readings().all(|r| self.is_match(r))
    }

    /// Deny-type match (deny and weigh rules, limits): the glob matches
    /// the canonical path or any other reading of it (voiding flags do not
    /// matter: an evasive path still meets a deny rule).
    pub fn matches_any(&self, path: &CanonicalPath) -> bool {
        path.readings()
            .chain(std::iter::once(path.decoded.as_str()))
            .any(|r| self.is_match(r))
    }
}

/// Several globs matched at once (one pass per reading).
#[derive(Debug, Clone)]
pub struct PathGlobSet {
    patterns: Vec<String>,
    set: GlobSet,
}

impl Default for PathGlobSet {
    fn default() -> Self {
        PathGlobSet {
            patterns: Vec::new(),
            set: GlobSet::empty(),
        }
    }
}

impl PathGlobSet {
    /// Compiles case-sensitive globs; the error names the bad one.
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<PathGlobSet, String> {
        let mut b = GlobSetBuilder::new();
        for p in patterns {
            b.add(build(p.as_ref(), false)?);
        }
        Ok(PathGlobSet {
            patterns: patterns.iter().map(|p| p.as_ref().to_owned()).collect(),
            set: b.build().map_err(|e| e.to_string())?,
        })
    }

    /// Whether the set holds no glob.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// The patterns as written, in order.
    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }

    /// Whether any glob matches this text.
    pub fn is_match(&self, text: &str) -> bool {
        self.set.is_match(text)
    }

    /// The first glob (in the order given) that matches this text.
    pub fn first_match(&self, text: &str) -> Option<usize> {
        self.set.matches(text).into_iter().min()
    }

    /// Allow-type: whether one glob of the set matches every reading of the
    /// path (and no voiding flag is set). See [`PathGlob::matches_all`].
    pub fn matches_all(&self, path: &CanonicalPath) -> bool {
        !self.which_all(path).is_empty()
    }

    /// Allow-type, per glob: the indexes of the globs that match every
    /// reading of the path; empty when a flag voids exemptions.
    pub fn which_all(&self, path: &CanonicalPath) -> Vec<usize> {
        if self.is_empty() || path.voids_exemptions() {
            return Vec::new();
        }
        let mut readings = path.readings();
        let Some(first) = readings.next() else {
            return Vec::new();
        };
        let mut hits = self.set.matches(first);
        for r in readings {
            if hits.is_empty() {
                break;
            }
            let more = self.set.matches(r);
            hits.retain(|i| more.contains(i));
        }
        hits
    }

    /// Deny-type: whether any glob matches any reading of the path.
    pub fn matches_any(&self, path: &CanonicalPath) -> bool {
        !self.is_empty()
            && path
                .readings()
                .chain(std::iter::once(path.decoded.as_str()))
                .any(|r| self.set.is_match(r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(p: &str) -> PathGlob {
        PathGlob::new(p).expect("glob")
    }

    #[test]
    fn star_crosses_slashes_and_nothing_else_is_special() {
        assert!(g("/static/*").is_match("/static/a/b.css"));
        assert!(g("/static/*").is_match("/static/"));
        assert!(!g("/static/*").is_match("/static"));
        assert!(g("*.css").is_match("/x/y.css"));
        assert!(g("/health").is_match("/health"));
        assert!(!g("/health").is_match("/healthz"));
        assert!(g("*a*b*").is_match("xxaxxbxx"));
        assert!(!g("*a*b").is_match("xxaxxbxxc"));
        assert!(g("/a?b").is_match("/a?b"));
        assert!(!g("/a?b").is_match("/axb"));
        assert!(g("json:$.items[0]").is_match("json:$.items[0]"));
        assert!(!g("json:$.items[0]").is_match("json:$.items0"));
        assert!(g("/{a,b}").is_match("/{a,b}"));
        assert!(!g("/{a,b}").is_match("/a"));
        assert!(g("/a\\b").is_match("/a\\b"));
        assert!(g("/a/**").is_match("/a/b/c"));
        assert!(!g("/Admin").is_match("/admin"));
        assert!(
            PathGlob::case_insensitive("/Admin*")
                .expect("glob")
                .is_match("/aDMIN/x")
        );
    }

    #[test]
    fn readings_and_voiding_flags() {
        let exempt = PathGlobSet::new(&["/health", "/static/*"]).expect("set");
        let cp = |t: &str| CanonicalPath::from_target(t);
        assert!(exempt.matches_all(&cp("/static/app.js")));
        assert!(exempt.matches_all(&cp("/static/a//b/./c.js")));
        assert!(!exempt.matches_all(&cp("/static/../login")));
        assert!(!exempt.matches_all(&cp("/static/%2e%2e/login")));
        assert!(!exempt.matches_all(&cp("/static/..;/login")));
        assert!(!exempt.matches_all(&cp("/static/%252e%252e/login")));
        assert!(!exempt.matches_all(&cp("/static%2f..%2flogin")));
        assert!(!exempt.matches_all(&cp("/health;x")));
        assert!(!exempt.matches_all(&cp("/../static/x")));
        assert_eq!(exempt.which_all(&cp("/static/x")), [1]);
        let deny = PathGlob::case_insensitive("/admin*").expect("glob");
        assert!(deny.matches_any(&cp("/static/..%2fADMIN")));
        assert!(deny.matches_any(&cp("/x/..;/admin")));
        assert!(!deny.matches_any(&cp("/x/admin")));
    }
}
