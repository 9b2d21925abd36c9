//! A route's CORS policy: preflights answered by the proxy, and the
//! headers of the actual responses. Never a wildcard origin together with
//! credentials (a browser would refuse it, and echoing any origin with
//! credentials would hand every site the user's session).

use super::config::CorsConfig;

/// The methods allowed when the config names none.
const DEFAULT_METHODS: [&str; 3] = ["GET", "HEAD", "POST"];

/// A compiled CORS policy.
#[derive(Clone, Debug, PartialEq)]
pub struct Cors {
    any_origin: bool,
    origins: Vec<String>,
    methods: Vec<String>,
    headers: Vec<String>,
    expose: Vec<String>,
    credentials: bool,
    max_age: Option<u64>,
}

/// The answer to a preflight request.
#[derive(Debug, PartialEq)]
pub enum Preflight {
    /// 204 with these headers.
    Allowed(Vec<(&'static str, String)>),
    /// 403: why.
    Refused(String),
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// An origin as browsers send it: `scheme://host[:port]`, lowercased.
fn origin_ok(o: &str) -> bool {
    let Some((scheme, rest)) = o.split_once("://") else {
        return false;
    };
    matches!(scheme, "http" | "https")
        && !rest.is_empty()
        && !rest.contains(['/', '@', '?', '#', ' ', '*'])
}

impl Cors {
    /// Compiles the policy; the error names the key.
    pub fn new(c: &CorsConfig) -> Result<Cors, (&'static str, String)> {
        if c.origins.is_empty() {
            return Err(("cors.origins", "an empty list".into()));
        }
        let any_origin = c.origins.iter().any(|o| o == "*");
        if any_origin && c.origins.len() > 1 {
            return Err(("cors.origins", "\"*\" together with other origins".into()));
        }
        if any_origin && c.credentials {
            return Err((
                "cors.credentials",
                "true with origins = [\"*\"]: a wildcard origin never goes with credentials \
                 (list the origins)"
                    .into(),
            ));
        }
        let mut origins = Vec::new();
        for o in c.origins.iter().filter(|o| *o != "*") {
            let l = o.trim_end_matches('/').to_ascii_lowercase();
            if !origin_ok(&l) {
                return Err((
                    "cors.origins",
                    format!(
                        "{o:?} is not an origin (scheme://host[:port], e.g. https://app.example)"
                    ),
                ));
            }
            origins.push(l);
        }
        let methods: Vec<String> = if c.methods.is_empty() {
            DEFAULT_METHODS.iter().map(|m| m.to_string()).collect()
        } else {
            c.methods.iter().map(|m| m.to_ascii_uppercase()).collect()
        };
        for (key, list) in [
            ("cors.methods", &methods),
            ("cors.headers", &c.headers),
            ("cors.expose_headers", &c.expose_headers),
        ] {
            if let Some(bad) = list.iter().find(|m| !is_token(m)) {
                return Err((key, format!("{bad:?} is not a header or method name")));
            }
        }
        Ok(Cors {
            any_origin,
            origins,
            methods,
            headers: c.headers.iter().map(|h| h.to_ascii_lowercase()).collect(),
            expose: c.expose_headers.clone(),
            credentials: c.credentials,
            max_age: c.max_age.map(|d| d.0.as_secs()),
        })
    }

    /// Whether `origin` (the request's `Origin` header) is allowed.
    pub fn allows_origin(&self, origin: &str) -> bool {
        if self.any_origin {
            return true;
        }
        let o = origin.trim().to_ascii_lowercase();
        self.origins.contains(&o)
    }

    fn origin_headers(&self, origin: &str) -> Vec<(&'static str, String)> {
        let mut h = Vec::new();
        if self.any_origin {
            h.push(("access-control-allow-origin", "*".to_string()));
        } else {
            h.push(("access-control-allow-origin", origin.trim().to_string()));
            h.push(("vary", "Origin".to_string()));
        }
        if self.credentials {
            h.push(("access-control-allow-credentials", "true".to_string()));
        }
        h
    }

    /// The answer to a preflight (`OPTIONS` with `Origin` and
    /// `Access-Control-Request-Method`).
    pub fn preflight(&self, origin: &str, method: &str, headers: Option<&str>) -> Preflight {
        if !self.allows_origin(origin) {
            return Preflight::Refused(format!("origin {:?} not allowed", trunc(origin)));
        }
        let m = method.trim().to_ascii_uppercase();
        if !self.methods.contains(&m) {
            return Preflight::Refused(format!("method {:?} not allowed", trunc(&m)));
        }
        let mut asked = Vec::new();
        for h in headers.unwrap_or("").split(',') {
            let h = h.trim().to_ascii_lowercase();
            if h.is_empty() {
                continue;
            }
            if !self.headers.contains(&h) && !safelisted(&h) {
                return Preflight::Refused(format!("header {:?} not allowed", trunc(&h)));
            }
            asked.push(h);
        }
        let mut out = self.origin_headers(origin);
        out.push(("access-control-allow-methods", self.methods.join(", ")));
        if !asked.is_empty() {
            out.push(("access-control-allow-headers", asked.join(", ")));
        }
        if let Some(a) = self.max_age {
            out.push(("access-control-max-age", a.to_string()));
        }
        Preflight::Allowed(out)
    }

    /// The headers of an actual response to a request from `origin`; none
    /// when the origin is not allowed (the browser then keeps the response
    /// from the page).
    pub fn response_headers(&self, origin: &str) -> Vec<(&'static str, String)> {
        if !self.allows_origin(origin) {
            return Vec::new();
        }
        let mut h = self.origin_headers(origin);
        if !self.expose.is_empty() {
            h.push(("access-control-expose-headers", self.expose.join(", ")));
        }
        h
    }

    /// One line for `waf route`.
    pub fn describe(&self) -> String {
        let origins = if self.any_origin {
            "*".to_string()
        } else {
            self.origins.join(" ")
        };
        format!(
            "origins {origins}; methods {}; headers {}; credentials {}",
            self.methods.join(","),
            if self.headers.is_empty() {
                "(safelisted only)".to_string()
            } else {
                self.headers.join(",")
            },
            self.credentials
        )
    }
}

/// Request headers a preflight never needs to allow (the CORS-safelisted
/// ones).
fn safelisted(h: &str) -> bool {
    matches!(
        h,
        "accept" | "accept-language" | "content-language" | "content-type" | "range"
    )
}

fn trunc(s: &str) -> String {
    s.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(origins: &[&str], credentials: bool) -> CorsConfig {
        CorsConfig {
            origins: origins.iter().map(|s| s.to_string()).collect(),
            methods: vec!["GET".into(), "PUT".into()],
            headers: vec!["X-Token".into()],
            credentials,
            ..Default::default()
        }
    }

    #[test]
    fn wildcard_with_credentials_is_refused() {
        let e = Cors::new(&cfg(&["*"], true)).unwrap_err();
        assert_eq!(e.0, "cors.credentials");
        assert!(Cors::new(&cfg(&["*"], false)).is_ok());
        assert!(Cors::new(&cfg(&["*", "https://a.example"], false)).is_err());
        assert!(Cors::new(&cfg(&[], false)).is_err());
        for bad in [
            "null",
            "a.example",
            "https://a.example/path",
            "ftp://a",
            "https://*.a",
        ] {
            assert!(Cors::new(&cfg(&[bad], false)).is_err(), "{bad}");
        }
    }

    #[test]
    fn preflights_check_origin_method_and_headers() {
        let c = Cors::new(&cfg(&["https://app.example"], true)).unwrap();
        let Preflight::Allowed(h) =
            c.preflight("https://APP.example", "put", Some("x-token, content-type"))
        else {
            panic!("refused");
        };
        assert!(h.contains(&("access-control-allow-origin", "https://APP.example".into())));
        assert!(h.contains(&("access-control-allow-credentials", "true".into())));
        assert!(h.contains(&("vary", "Origin".into())));
        assert!(matches!(
            c.preflight("https://evil.example", "GET", None),
            Preflight::Refused(_)
        ));
        assert!(matches!(
            c.preflight("https://app.example", "DELETE", None),
            Preflight::Refused(_)
        ));
        assert!(matches!(
            c.preflight("https://app.example", "GET", Some("x-other")),
            Preflight::Refused(_)
        ));
        // A suffix or prefix of an allowed origin is another origin.
        assert!(!c.allows_origin("https://app.example.evil"));
        assert!(!c.allows_origin("https://evilapp.example"));
        assert!(c.response_headers("https://evil.example").is_empty());
        let any = Cors::new(&cfg(&["*"], false)).unwrap();
        assert_eq!(
            any.response_headers("https://x.example"),
            vec![("access-control-allow-origin", "*".to_string())]
        );
    }
}
