//! Session fixation: a web framework's session cookie name given as a
//! query or body parameter, by a request that comes from no page or from
//! another site.

use crate::detect::collect::Collector;
use crate::detect::kind::{Kind, Severity::Critical};
use crate::http::{Body, Request};

/// Session cookie names of web frameworks. One of them as a query or body
/// parameter name is how a session id is planted in a victim's browser.
const SESSION_NAMES: &[&str] = &[
    "jsessionid",
    "phpsessid",
    "phpsession",
    "asp.net_sessionid",
    "aspsessionid",
    "laravel_session",
    "connect.sid",
    "_flask_session",
    "next-auth.session-token",
    "__host-next-auth.session-token",
    "__secure-next-auth.session-token",
    "meteor_login_token",
    "rack.session",
    "_rails_session",
    "play_session",
    "sails.sid",
    "cakephp",
    "ci_session",
    "koa.sess",
    "koa:sess",
    "zend_session_id",
    "weblogicsession",
    "jservsession",
    "jwsession",
    "shiny-token",
    "cfid",
    "cftoken",
    "cfsid",
    "_session_id",
];

/// Session fixation: a framework's session cookie name given as a
/// parameter, by a request that comes from no page or from another site.
pub fn session_fixation(req: &Request, c: &mut Collector) {
    let Some(name) = session_parameter(req) else {
        return;
    };
    if off_site(req) {
        c.add(
            Kind::SessionFixation,
            "session-fixation-parameter",
            Critical,
            1,
            "request",
            name,
            "",
        );
    }
}

/// Whether a parameter name is a session cookie name (a long one may carry
/// a suffix: `aspsessionidabcd`).
fn is_session(n: &str) -> bool {
    let n = n.trim().as_bytes();
    // Every name is 4 bytes or more; one compare of the first byte rules
    // out all but a few (a JSON body's keys can be hundreds).
    let Some(first) = n.first().filter(|_| n.len() >= 4) else {
        return false;
    };
    let first = first.to_ascii_lowercase();
    SESSION_NAMES.iter().any(|s| {
        let s = s.as_bytes();
        s[0] == first
            && (n.eq_ignore_ascii_case(s)
                || (s.len() > 8 && n.len() > s.len() && n[..s.len()].eq_ignore_ascii_case(s)))
    })
}

/// The first query parameter, then body field (form, JSON key, multipart
/// part), whose name is a session cookie name.
fn session_parameter(req: &Request) -> Option<&str> {
    let query = req.query.iter().map(|p| p.name.as_str());
    match &req.parsed_body {
        Body::Form(params) => query
            .chain(params.iter().map(|p| p.name.as_str()))
            .find(|n| is_session(n)),
        Body::Json(items) => query
            .chain(items.iter().filter(|i| i.is_key).map(|i| i.text))
            .find(|n| is_session(n)),
        Body::Multipart(parts) => query
            .chain(parts.iter().map(|p| p.name.as_str()))
            .find(|n| is_session(n)),
        _ => query.into_iter().find(|n| is_session(n)),
    }
}

/// Whether the request comes from no page (no Referer) or from a site
/// that is neither the Host, a subdomain of it, nor a parent of it.
fn off_site(req: &Request) -> bool {
    let host = req
        .header("host")
        .map(|h| {
            let h = h.trim().to_ascii_lowercase();
            h.rsplit_once(':')
                .filter(|(_, p)| p.bytes().all(|b| b.is_ascii_digit()))
                .map_or(h.clone(), |(h, _)| h.to_owned())
        })
        .unwrap_or_default();
    match req.header("referer").and_then(url_host) {
        None => true,
        Some(r) => {
            !(r == host || r.ends_with(&format!(".{host}")) || host.ends_with(&format!(".{r}")))
        }
    }
}

/// The host of a URL (`https://user@host:1/x` gives `host`), lowercased.
fn url_host(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let auth = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = auth.rsplit_once('@').map_or(auth, |(_, h)| h);
    let host = host.rsplit_once(':').map_or(host, |(h, p)| {
        if p.bytes().all(|b| b.is_ascii_digit()) {
            h
        } else {
            host
        }
    });
    Some(host.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_host_of_a_url() {
        assert_eq!(
            url_host("https://User@Shop.Example:8443/x?y").as_deref(),
            Some("shop.example")
        );
        assert_eq!(url_host("http://a.example#f").as_deref(), Some("a.example"));
        assert_eq!(url_host("http://[::1]:80/").as_deref(), Some("[::1]"));
        assert_eq!(url_host("/relative/path"), None);
    }

    #[test]
    fn knows_session_names_and_their_suffixed_forms() {
        assert!(is_session(" PHPSESSID"));
        assert!(is_session("aspsessionidqqabcd"));
        assert!(!is_session("cfidx"));
        assert!(!is_session("session"));
    }

    /// `is_session` as first written: every name compared whole or as a
    /// prefix, with no first-byte filter.
    fn is_session_reference(n: &str) -> bool {
        let n = n.trim().as_bytes();
        SESSION_NAMES.iter().any(|s| {
            n.eq_ignore_ascii_case(s.as_bytes())
                || (s.len() > 8
                    && n.len() > s.len()
                    && n[..s.len()].eq_ignore_ascii_case(s.as_bytes()))
        })
    }

    proptest::proptest! {
        #[test]
        fn the_first_byte_filter_changes_nothing(
            name in proptest::sample::select(SESSION_NAMES.to_vec()),
            upper in proptest::bool::ANY,
            cut in 0usize..40,
            tail in "[a-zA-Z0-9_ .-]{0,6}",
            other in "[ -~]{0,40}",
        ) {
            let name = if upper { name.to_ascii_uppercase() } else { name.to_owned() };
            let cut = cut.min(name.len());
            for n in [format!("{name}{tail}"), name[..cut].to_owned(), format!(" {name}"), other] {
                proptest::prop_assert_eq!(is_session(&n), is_session_reference(&n), "{:?}", n);
            }
        }
    }
}
