//! The generated response set: data leaks (each family's messages written
//! the way the software writes them, with varying names, paths, codes and
//! line numbers) crossed with where a response puts them (an HTML page, a
//! `<pre>` block that escapes its text, a JSON error field, plain text, a
//! SOAP fault) and how it is sent (as is, gzip); and benign pages that
//! speak of errors, databases and stack traces without leaking one.
//! `cargo xtask corpus` writes it to `tests/data/responses.jsonl.gz`,
//! `cargo xtask eval` scores it: each line's `response` is read as the
//! proxy reads an application's answer.

use std::io::Write as _;

use serde_json::json;

/// One labeled response, to a plain request.
#[derive(Debug, Clone)]
pub struct ResponseCase {
    /// Unique within the set.
    pub id: String,
    /// The response body as sent (gzip bytes for `gzip`).
    pub body: Vec<u8>,
    /// Its Content-Type and, for `gzip`, Content-Encoding.
    pub headers: Vec<(String, String)>,
    /// "attack" (a leak) or "benign".
    pub label: &'static str,
    /// The leak family (or the one a benign page speaks of).
    pub category: &'static str,
    /// Where the text sits.
    pub placement: &'static str,
    /// How the body is sent.
    pub encoding: &'static str,
}

/// The request every response answers.
const REQUEST: &str =
    "GET /item?id=7 HTTP/1.1\r\nHost: shop.example\r\nUser-Agent: Mozilla/5.0\r\n\r\n";

impl ResponseCase {
    /// The JSON line (without newline); a gzip body is written one
    /// character per byte, as `waf inspect` reads binary text.
    pub fn line(&self) -> String {
        let body: String = if self.body.is_ascii() {
            String::from_utf8_lossy(&self.body).into_owned()
        } else {
            self.body.iter().map(|&b| char::from(b)).collect()
        };
        json!({
            "id": self.id,
            "raw": REQUEST,
            "response": {"body": body, "headers": self.headers},
            "label": self.label,
            "source": if self.label == "attack" { "response" } else { "response_lookalike" },
            "category": self.category,
            "placement": self.placement,
            "encoding": self.encoding,
        })
        .to_string()
    }
}

/// Names the messages are filled with.
const TABLES: [&str; 3] = ["users", "order_items", "tbl_accounts"];
const FILES: [&str; 3] = [
    "/var/www/html/item.php",
    "/srv/shop/app/models/order.rb",
    "C:\\inetpub\\wwwroot\\shop\\item.aspx",
];

/// Each leak family's messages, `{t}` a table, `{n}` a number, `{f}` a
/// file.
const LEAKS: &[(&str, &[&str])] = &[
    (
        "sql",
        &[
            "You have an error in your SQL syntax; check the manual that corresponds to your MySQL server version for the right syntax to use near ''{n}'' at line 1",
            "ERROR 1054 (42S22): Unknown column 'x{n}' in 'where clause'",
            "pg_query(): Query failed: ERROR:  syntax error at or near \"'\" LINE 1: SELECT * FROM {t} WHERE id='{n}''",
            "ERROR:  invalid input syntax for type integer: \"{n}'\"",
            "Microsoft OLE DB Provider for SQL Server error '80040e14' Unclosed quotation mark after the character string '{n}'.",
            "System.Data.SqlClient.SqlException (0x80131904): Incorrect syntax near '{n}'.",
            "ORA-00933: SQL command not properly ended",
            "ORA-01756: quoted string not properly terminated",
            "SQLSTATE[42000]: Syntax error or access violation: 1064 near '{t}'",
            "sqlite3.OperationalError: near \"{t}\": syntax error",
            "com.ibm.db2.jcc.am.SqlSyntaxErrorException: DB2 SQL Error: SQLCODE=-104, SQLSTATE=42601",
        ],
    ),
    (
        "java",
        &[
            "java.lang.NumberFormatException: For input string: \"{n}'\"",
            "org.hibernate.exception.SQLGrammarException: could not extract ResultSet",
            "javax.servlet.ServletException: Servlet.service() for servlet [dispatcher] threw exception\n\tat com.example.shop.ItemController.show(ItemController.java:{n})",
        ],
    ),
    (
        "php",
        &[
            "<b>Warning</b>:  mysqli_fetch_assoc() expects parameter 1 to be mysqli_result, bool given in <b>{f}</b> on line <b>{n}</b>",
            "Fatal error: Uncaught Error: Call to undefined function item_load() in {f}:{n}",
            "Notice: Undefined index: id in {f} on line {n}",
            "Warning: include(lang/{n}.php): failed to open stream: No such file or directory in {f} on line 4",
        ],
    ),
    (
        "aspnet",
        &[
            "Server Error in '/shop' Application. Input string was not in a correct format.",
            "[HttpRequestValidationException (0x80004005): A potentially dangerous Request.QueryString value was detected from the client (id=\"<{n}\").]",
            "Microsoft VBScript runtime error '800a000d' Type mismatch: 'CLng' /shop/item.asp, line {n}",
        ],
    ),
    (
        "ruby",
        &[
            "ActiveRecord::RecordNotFound (Couldn't find Item with 'id'={n})",
            "NoMethodError (undefined method `price' for nil:NilClass):\n  app/models/order.rb:{n}:in `total'",
            "ActionView::Template::Error (wrong number of arguments (given 2, expected 1))",
        ],
    ),
    (
        "python",
        &[
            "Traceback (most recent call last):\n  File \"/srv/shop/views.py\", line {n}, in item\n    return Item.objects.get(pk=pk)\nItem.DoesNotExist: Item matching query does not exist.",
            "<title>OperationalError at /item/{n}</title>",
        ],
    ),
    (
        "node",
        &[
            "TypeError: Cannot read properties of undefined (reading 'price')\n    at show (/srv/shop/routes/item.js:{n}:17)\n    at Layer.handle [as handle_request] (/srv/shop/node_modules/express/lib/router/layer.js:95:5)\n",
        ],
    ),
    (
        "system_file",
        &[
            "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\nwww-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\n",
            "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA{n}x\n-----END RSA PRIVATE KEY-----\n",
        ],
    ),
];

/// Pages that speak of the same things without leaking.
const BENIGN: &[(&str, &[&str])] = &[
    (
        "sql",
        &[
            "Our reports run on MySQL; a syntax error in a saved query is shown to its author only.",
            "Tip: use SELECT count(*) FROM {t} to see how many rows you have.",
            "Error {n}: the item could not be found. Please check the number and try again.",
        ],
    ),
    (
        "java",
        &[
            "Release notes: fixed a NullPointerException when the cart was empty (#{n}).",
            "Java exceptions are either checked or unchecked; see chapter {n}.",
        ],
    ),
    (
        "php",
        &[
            "Warning: this offer ends on line {n} of our schedule.",
            "<code>&lt;?php echo $price; ?&gt;</code> prints the price in the template.",
        ],
    ),
    (
        "aspnet",
        &["The server is in maintenance; the application will be back at {n}:00."],
    ),
    (
        "ruby",
        &["We rewrote the checkout in Rails {n}: routing errors are now rare."],
    ),
    (
        "python",
        &["The traceback module formats stack traces; read its documentation (page {n})."],
    ),
    (
        "system_file",
        &["Root access: only the administrator (uid 0) may change /etc/shop.conf."],
    ),
];

/// The text filled in.
fn fill(template: &str, i: usize) -> String {
    template
        .replace("{t}", TABLES[i % TABLES.len()])
        .replace("{n}", &(17 + 31 * i).to_string())
        .replace("{f}", FILES[i % FILES.len()])
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// The placements: a response body holding `msg`, and its Content-Type.
const PLACEMENTS: [&str; 5] = ["html", "pre_escaped", "json", "text", "soap"];

fn place(placement: &str, msg: &str) -> (String, &'static str) {
    let filler = "<p>Lorem ipsum dolor sit amet, consectetur adipiscing elit.</p>\n".repeat(12);
    match placement {
        "html" => (
            format!(
                "<!DOCTYPE html>\n<html><head><title>Shop</title></head><body>\n{filler}<div class=\"main\">{msg}</div>\n{filler}</body></html>\n"
            ),
            "text/html; charset=utf-8",
        ),
        "pre_escaped" => (
            format!(
                "<!DOCTYPE html>\n<html><head><title>Shop</title></head><body>\n{filler}<pre>{}</pre>\n</body></html>\n",
                html_escape(msg)
            ),
            "text/html; charset=utf-8",
        ),
        "json" => (
            json!({"status": 500, "error": "internal", "detail": msg}).to_string(),
            "application/json",
        ),
        "text" => (format!("{msg}\n"), "text/plain"),
        _ => (
            format!(
                "<?xml version=\"1.0\"?><soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\"><soap:Body><soap:Fault><faultcode>soap:Server</faultcode><faultstring>{}</faultstring></soap:Fault></soap:Body></soap:Envelope>",
                html_escape(msg)
            ),
            "text/xml; charset=utf-8",
        ),
    }
}

fn gzip(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    e.write_all(b).expect("gzip to memory");
    e.finish().expect("gzip to memory")
}

fn cases(label: &'static str, families: &[(&'static str, &[&str])]) -> Vec<ResponseCase> {
    let mut out = Vec::new();
    for (family, messages) in families {
        for (mi, m) in messages.iter().enumerate() {
            let msg = fill(m, mi);
            for placement in PLACEMENTS {
                let (body, ctype) = place(placement, &msg);
                for encoding in ["identity", "gzip"] {
                    let mut headers = vec![("Content-Type".to_owned(), ctype.to_owned())];
                    let body = if encoding == "gzip" {
                        headers.push(("Content-Encoding".into(), "gzip".into()));
                        gzip(body.as_bytes())
                    } else {
                        body.clone().into_bytes()
                    };
                    out.push(ResponseCase {
                        id: format!("response:{label}:{family}:{mi}:{placement}:{encoding}"),
                        body,
                        headers,
                        label,
                        category: family,
                        placement,
                        encoding,
                    });
                }
            }
        }
    }
    out
}

/// The response set: leaks, then benign pages.
pub fn responses() -> Vec<ResponseCase> {
    let mut out = cases("attack", LEAKS);
    out.extend(cases("benign", BENIGN));
    out
}

/// The JSON lines of the set.
pub fn lines(cases: &[ResponseCase]) -> String {
    let mut s = String::new();
    for c in cases {
        s.push_str(&c.line());
        s.push('\n');
    }
    s
}
