use proptest::prelude::*;

use super::*;

fn routes(toml_text: &str) -> Result<Routes, ConfigError> {
    #[derive(serde::Deserialize)]
    struct F {
        routes: Vec<RouteConfig>,
    }
    let f: F = toml::from_str(toml_text).map_err(|e| invalid("routes", e, "toml"))?;
    Routes::new(&f.routes)
}

const SITE: &str = r#"
[[routes]]
path = "/health"
exempt = true
methods = ["GET", "HEAD"]

[[routes]]
path = "/api/*"
methods = ["GET", "POST"]
challenge = "skip"
max_body = "64k"
rate_limits = [{ requests = 10, per = "1s" }]
cors = { origins = ["https://app.example"], credentials = true, headers = ["x-token"] }

[[routes]]
path = "/admin/*"
challenge = "challenge"
hours = "08:00-18:00"
days = ["mon", "tue", "wed", "thu", "fri"]
timezone = "Europe/Paris"
max_body = 1024

[[routes]]
path = "/*"
"#;

fn sel(r: &Routes, target: &str) -> Selection {
    r.select(&CanonicalPath::from_target(target))
}

#[test]
fn first_match_wins_on_the_canonical_path() {
    let r = routes(SITE).unwrap();
    let s = sel(&r, "/api/v1/items?x=1");
    assert_eq!((s.routes.clone(), s.exact), (vec![1], Some(1)));
    assert_eq!(r.challenge(&s), RouteChallenge::Skip);
    assert_eq!(r.max_body(&s), Some(64 << 10));
    assert!(r.check_method(&s, "POST").is_ok());
    assert_eq!(
        r.check_method(&s, "DELETE"),
        Err(vec!["GET".to_string(), "POST".to_string()])
    );
    assert!(r.cors(&s).is_some());
    // Dot segments and doubled slashes resolve before matching.
    assert_eq!(sel(&r, "/static/..//admin/users").routes, vec![2, 3]);
    assert_eq!(sel(&r, "/health").routes, vec![0]);
    assert!(r.exempt(&sel(&r, "/health")));
    assert!(!r.exempt(&sel(&r, "/health/x")));
    assert_eq!(sel(&r, "/other").routes, vec![3]);
    assert_eq!(r.exempt_globs(), vec!["/health".to_string()]);
}

#[test]
fn an_ambiguous_path_meets_every_route_it_could_be() {
    let r = routes(SITE).unwrap();
    // Every server resolves this to /admin/x: that route, and the decoded
    // path's route (/*) adds its restrictions, not an exemption.
    let s = sel(&r, "/health;/../admin/x");
    assert_eq!((s.routes.clone(), s.exact), (vec![2, 3], Some(2)));
    assert!(!r.exempt(&s));
    assert_eq!(r.challenge(&s), RouteChallenge::Challenge);
    // ;params: "/health;x/" reads as /health/ (Tomcat) and /health;x/.
    let s = sel(&r, "/health;x");
    assert!(!r.exempt(&s), "{s:?}");
    // An encoded slash voids the exemption even when every reading agrees.
    let s = sel(&r, "/health%2f");
    assert!(!r.exempt(&s), "{s:?}");
    // Double encoding: /api/..%252fadmin/ decodes twice to /admin/.
    let s = sel(&r, "/api/..%252fadmin/panel");
    assert!(s.routes.contains(&2), "{s:?}");
    assert_eq!(r.challenge(&s), RouteChallenge::Challenge);
    assert_eq!(r.max_body(&s), Some(1024));
    assert!(r.cors(&s).is_none());
}

#[test]
fn bad_routes_name_the_key() {
    let cases = [
        ("[[routes]]\npath = \"api\"", "routes[0].path"),
        (
            "[[routes]]\npath = \"/a\"\nmethods = []",
            "routes[0].methods",
        ),
        (
            "[[routes]]\npath = \"/a\"\nmethods = [\"GE T\"]",
            "routes[0].methods",
        ),
        (
            "[[routes]]\npath = \"/a\"\nrate_limits = [{requests = 0, per = \"1s\"}]",
            "routes[0].rate_limits[0]",
        ),
        (
            "[[routes]]\npath = \"/a\"\nmax_body = 0",
            "routes[0].max_body",
        ),
        (
            "[[routes]]\npath = \"/a\"\nhours = \"8-18\"",
            "routes[0].hours",
        ),
        (
            "[[routes]]\npath = \"/a\"\ndays = [\"someday\"]",
            "routes[0].days",
        ),
        (
            "[[routes]]\npath = \"/a\"\nhours = \"08:00-09:00\"\ntimezone = \"Mars/Base\"",
            "routes[0].timezone",
        ),
        (
            "[[routes]]\npath = \"/a\"\ncors = {origins = [\"*\"], credentials = true}",
            "routes[0].cors.credentials",
        ),
        (
            "[[routes]]\npath = \"/a\"\nexempt = true\nchallenge = \"block\"",
            "routes[0].exempt",
        ),
    ];
    for (text, key) in cases {
        let e = routes(text).unwrap_err().to_string();
        assert!(e.contains(key), "{text}: {e}");
    }
    assert!(routes("[[routes]]\npath = \"/a\"\nmax_body = \"2m\"").is_ok());
    assert!(routes("[[routes]]\npath = \"/a\"\nmax_body = \"2 parsecs\"").is_err());
    assert!(routes("[[routes]]\npath = \"/a\"\nunknown = 1").is_err());
}

#[test]
fn sizes_parse_with_binary_units() {
    assert_eq!(ByteSize::parse("1024"), Ok(ByteSize(1024)));
    assert_eq!(ByteSize::parse("64k"), Ok(ByteSize(64 << 10)));
    assert_eq!(ByteSize::parse("10MiB"), Ok(ByteSize(10 << 20)));
    assert_eq!(ByteSize::parse("1g"), Ok(ByteSize(1 << 30)));
    assert!(ByteSize::parse("").is_err());
    assert!(ByteSize::parse("k").is_err());
    assert!(ByteSize::parse("99999999999999999999g").is_err());
    assert!(ByteSize::parse("18446744073709551615k").is_err());
}

fn segment() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "/", "admin", "api", "health", "..", ".", "%2e%2e", "%2f", "%252f", ";", ";x", "%25", "//",
        "\\", "%5c", "x", "%00", "%c0%af",
    ])
}

proptest! {
    /// Whatever the path, the route its canonical reading picks is among
    /// the routes it meets, its restrictions hold, and a leniency holds
    /// only when every reading agrees on its route.
    #[test]
    fn no_path_escapes_its_route(parts in prop::collection::vec(segment(), 1..12)) {
        let r = routes(SITE).unwrap();
        let raw = format!("/{}", parts.concat());
        let p = CanonicalPath::from_raw_path(&raw);
        let s = r.select(&p);
        match r.all().iter().position(|x| x.glob.is_match(&p.path)) {
            Some(i) => prop_assert!(s.routes.contains(&i), "{raw} -> {:?}", s),
            None => prop_assert!(s.unrouted),
        }
        for reading in p.readings() {
            if r.all()[2].glob.is_match(reading) {
                prop_assert_eq!(r.challenge(&s), RouteChallenge::Challenge);
                prop_assert_eq!(r.max_body(&s), Some(1024));
            }
        }
        if r.exempt(&s) {
            prop_assert!(!p.voids_exemptions());
            prop_assert!(p.readings().all(|x| r.all()[0].glob.is_match(x)));
        }
        if r.challenge(&s) == RouteChallenge::Skip {
            prop_assert!(s.exact.is_some());
        }
        if let Some(i) = s.exact {
            prop_assert!(p.readings().all(|x| r.all().iter().position(|y| y.glob.is_match(x)) == Some(i)));
        }
    }
}
