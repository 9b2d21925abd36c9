use proptest::prelude::*;

use super::*;

fn leaks() -> &'static Leaks {
    static L: std::sync::OnceLock<Leaks> = std::sync::OnceLock::new();
    L.get_or_init(|| Leaks::new().unwrap())
}

fn ids(body: &str, paranoia: u8) -> Vec<&'static str> {
    leaks()
        .scan(body.as_bytes(), paranoia)
        .iter()
        .map(|l| l.rule.id)
        .collect()
}

/// Messages as each product writes them, one family per rule.
const LEAKS: &[(&str, &str)] = &[
    (
        "leak-sql-error",
        "You have an error in your SQL syntax; check the manual that corresponds to your MariaDB server version for the right syntax to use near ''1'' at line 1",
    ),
    ("leak-sql-error", "ERROR 1064 (42000): something went wrong"),
    (
        "leak-sql-error",
        "<b>Warning</b>:  mysqli_fetch_assoc() expects parameter 1 to be mysqli_result",
    ),
    (
        "leak-sql-error",
        "pq: ERROR:  unterminated quoted string at or near \"'x\"",
    ),
    (
        "leak-sql-error",
        "ERROR:  column \"passwd\" does not exist\nLINE 1: select passwd",
    ),
    (
        "leak-sql-error",
        "Microsoft OLE DB Provider for ODBC Drivers error '80040e14'",
    ),
    (
        "leak-sql-error",
        "Unclosed quotation mark after the character string 'abc'.",
    ),
    (
        "leak-sql-error",
        "Exception: ORA-01756: quoted string not properly terminated",
    ),
    ("leak-sql-error", "ORA-00942: table or view does not exist"),
    (
        "leak-sql-error",
        "com.ibm.db2.jcc.am.SqlSyntaxErrorException: DB2 SQL Error: SQLCODE=-204, SQLSTATE=42704",
    ),
    (
        "leak-sql-error",
        "SQLSTATE[HY000]: General error: 1 no such table: users",
    ),
    (
        "leak-sql-error",
        "sqlite3.OperationalError: near \"FROM\": syntax error",
    ),
    ("leak-sql-error", "Warning: pg_exec(): Query failed"),
    (
        "leak-java-exception",
        "java.lang.IllegalStateException: Cannot call sendError() after the response has been committed",
    ),
    (
        "leak-java-exception",
        "Whitelabel Error Page\norg.springframework.dao.DataIntegrityViolationException",
    ),
    (
        "leak-java-exception",
        "Failure\n\tat com.example.shop.CartService.add(CartService.java:42)\n",
    ),
    (
        "leak-php-error",
        "<br />\n<b>Fatal error</b>:  Uncaught TypeError: count(): Argument #1",
    ),
    (
        "leak-php-error",
        "Notice: Undefined index: id in /var/www/html/item.php on line 7",
    ),
    (
        "leak-php-error",
        "include(lang/de.php): failed to open stream: No such file or directory",
    ),
    (
        "leak-php-source",
        "<?php\n$db = new PDO($dsn, 'app', 's3cret');\n",
    ),
    (
        "leak-aspnet-error",
        "<h1>Server Error in '/shop' Application.<hr width=100% size=1 color=silver></h1>",
    ),
    (
        "leak-aspnet-error",
        "[NullReferenceException]\n System.Data.SqlTypes.SqlNullValueException: Data is Null.",
    ),
    (
        "leak-aspnet-error",
        "Microsoft VBScript runtime  error '800a000d' ... Microsoft VBScript runtime error",
    ),
    (
        "leak-aspnet-error",
        "Physical path: C:\\inetpub\\wwwroot\\app\\web.config",
    ),
    (
        "leak-ruby-error",
        "ActiveRecord::StatementInvalid (PG::UndefinedTable: ERROR)",
    ),
    (
        "leak-ruby-error",
        "app/models/order.rb:18:in `total'\napp/controllers/orders_controller.rb:9:in `show'",
    ),
    (
        "leak-ruby-error",
        "NoMethodError (undefined method `price' for nil:NilClass)",
    ),
    (
        "leak-python-traceback",
        "Traceback (most recent call last):\n  File \"/srv/app/views.py\", line 12, in index\n",
    ),
    (
        "leak-python-traceback",
        "<title>IntegrityError at /orders/new</title>",
    ),
    (
        "leak-node-stack",
        "TypeError: x is undefined\n    at handler (/srv/app/routes/user.js:12:7)\n    at Layer.handle (/srv/app/node_modules/express/lib/router/layer.js:95:5)\n",
    ),
    ("leak-web-shell", "<html><head><title>b374k shell</title>"),
    (
        "leak-web-shell",
        "<span>Safe mode:</span> <font color=green>OFF</font> | <span>Uname:</span> Linux web1",
    ),
    (
        "leak-system-file",
        "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n",
    ),
    (
        "leak-system-file",
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n",
    ),
    (
        "leak-system-file",
        "; for 16-bit app support\r\n[fonts]\r\n[extensions]\r\n",
    ),
];

/// Pages that speak of the same things without leaking anything.
const BENIGN: &[&str] = &[
    "Our shop runs on MySQL and PostgreSQL; see the SQL syntax guide.",
    "An error occurred. Please try again later (reference 5f3a).",
    "<p>Use <code>&lt;?php echo $x; ?&gt;</code> to print a variable.</p>",
    "<pre>&lt;?php\nphpinfo();</pre> is how the tutorial starts.",
    "Java exceptions explained: checked and unchecked, and when to throw them.",
    "The Index of Refraction table, sorted by material.",
    "<title>Index of products</title>",
    "root: the top of the tree; leaf: a node without children",
    "Call us at ORA-1234 for support",
    "Error code 404: page not found",
    "<title>Shell Oil annual report</title>",
    "Safe mode is off by default on new phones.",
    "The traceback module prints stack traces of Python programs.",
    "Please correct the syntax of your search: near \"term\"",
    "at noon (/lunch/menu.js:12:3) we meet",
    "{\"error\":\"invalid credentials\",\"code\":401}",
    "<h1>Server error</h1><p>Something went wrong on our side.</p>",
    "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8A\n",
    "-----BEGIN CERTIFICATE-----\nMIIDdzCCAl+gAwIBAgIE\n",
];

#[test]
fn each_family_of_leak_is_found_by_its_rule() {
    for (rule, body) in LEAKS {
        let got = ids(body, 1);
        assert!(got.contains(rule), "{rule} not found in {body:?}: {got:?}");
    }
}

#[test]
fn pages_that_only_speak_of_errors_are_no_leak() {
    for body in BENIGN {
        assert_eq!(ids(body, 4), Vec::<&str>::new(), "{body:?}");
    }
}

/// Errors as JSON APIs and escaping templates send them: inside a JSON
/// string (line breaks and quotes escaped) and with a page's entities.
#[test]
fn escaped_leaks_are_read_as_written() {
    let json = serde_json::json!({
        "detail": "Traceback (most recent call last):\n  File \"/srv/app/views.py\", line 3"
    })
    .to_string();
    assert!(json.contains("\\n  File \\\""), "{json}");
    assert_eq!(ids(&json, 1), vec!["leak-python-traceback"]);
    let html = "<pre>NoMethodError (undefined method `price&#39; for nil:NilClass)</pre>";
    assert_eq!(ids(html, 1), vec!["leak-ruby-error"]);
    let django = "<pre>Unknown column &#x27;pw&#x27; in &#x27;where clause&#x27;</pre>";
    assert_eq!(ids(django, 1), vec!["leak-sql-error"]);
    let escaped_php = "&lt;b&gt;Warning&lt;/b&gt;:  include(): Failed";
    assert_eq!(ids(escaped_php, 1), vec!["leak-php-error"]);
    // One level only, and an escape needs its whole name.
    assert_eq!(
        Leaks::unescaped(b"a&amp;#39;b &#39c \\\\n \\u0041\\u00e9 &LT;x&gt;").unwrap(),
        b"a&amp;#39;b &#39c \\n A\\u00e9 <x>"
    );
    assert_eq!(Leaks::unescaped(b"plain text & more \\ end"), None);
    // Escapes alone make no leak.
    assert!(ids("{\"msg\": \"line\\nbreak \\\"quoted\\\" &amp; more\"}", 4).is_empty());
}

#[test]
fn directory_listings_count_from_paranoia_two() {
    let page = "<html><head><title>Index of /backup</title></head><body><h1>Index of /backup</h1>";
    assert!(ids(page, 1).is_empty());
    assert_eq!(ids(page, 2), vec!["leak-directory-listing"]);
}

#[test]
fn php_source_counts_only_as_the_whole_response() {
    assert_eq!(
        ids("\u{feff}  <?php\nsystem($_GET['c']);", 1),
        vec!["leak-php-source"]
    );
    assert!(ids("<p>Example:</p>\n<?php echo 1; ?>", 1).is_empty());
}

#[test]
fn what_matched_is_reported_and_bounded() {
    let body = format!(
        "{}ORA-00933: SQL command not properly ended",
        "x ".repeat(50)
    );
    let l = leaks().scan(body.as_bytes(), 1);
    assert_eq!(l.len(), 1);
    assert!(l[0].matched.starts_with("ORA-00933"), "{:?}", l[0].matched);
    let long = format!("Server Error in '{}' Application", "a".repeat(500));
    let l = leaks().scan(long.as_bytes(), 1);
    assert_eq!(l[0].matched.len(), 100);
}

#[test]
fn every_rule_is_named_once_and_has_a_level() {
    let mut seen = std::collections::HashSet::new();
    for r in RULES {
        assert!(seen.insert(r.id), "{} twice", r.id);
        assert!(r.id.starts_with("leak-"), "{}", r.id);
        assert!((1..=4).contains(&r.paranoia), "{}", r.id);
    }
}

proptest! {
    /// Any bytes: no panic, and the set agrees with each rule run alone,
    /// on the body as sent or, when that has none, with its escapes
    /// undone.
    #[test]
    fn the_set_agrees_with_each_rule_alone(
        body in proptest::collection::vec(
            prop_oneof![
                any::<u8>(),
                Just(b'&'),
                Just(b'\\'),
                Just(b';'),
                Just(b'#'),
            ],
            0..600,
        ),
    ) {
        let got: Vec<&str> = leaks().scan(&body, 4).iter().map(|l| l.rule.id).collect();
        let on = |b: &[u8]| -> Vec<&str> {
            RULES
                .iter()
                .zip(&leaks().each)
                .filter(|(_, re)| re.is_match(b))
                .map(|(r, _)| r.id)
                .collect()
        };
        let want = on(Leaks::unescaped(&body).as_deref().unwrap_or(&body));
        prop_assert_eq!(got, want);
    }

    /// A leak is found wherever it sits in a page, in any charset's bytes
    /// around it, as long as it is on lines of its own.
    #[test]
    fn a_leak_is_found_anywhere_in_a_page(
        i in 0..LEAKS.len(),
        before in proptest::collection::vec(any::<u8>(), 0..300),
        after in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        let (rule, leak) = LEAKS[i];
        // The one rule that holds to the start of the body.
        prop_assume!(rule != "leak-php-source");
        let mut body = before.clone();
        body.extend_from_slice(b"\n");
        body.extend_from_slice(leak.as_bytes());
        body.extend_from_slice(b"\n");
        body.extend_from_slice(&after);
        let got: Vec<&str> = leaks().scan(&body, 1).iter().map(|l| l.rule.id).collect();
        prop_assert!(got.contains(&rule), "{} not in {:?}", rule, got);
    }
}
