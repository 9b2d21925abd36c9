//! Data leaks in responses: what an application gives away when an attack
//! half-works. A database error quoting the broken query, a stack trace, a
//! PHP warning naming a file and line, an ASP.NET or IIS error page, a
//! Ruby or Python backtrace, a web shell's page, the contents of
//! `/etc/passwd` or a private key: each tells the attacker the injection
//! reached something, and how to go on. The CoreRuleSet's 95x rules read
//! responses for the same reason.
//!
//! Each rule is a family of messages written as the software writes them
//! (a product's own wording, its error-code shape), not a list of the
//! messages seen: `ORA-` and five digits is every Oracle error. Scanned on
//! bytes (a response may be in any charset), one pass of a [`RegexSet`]
//! over at most the first `proxy.response_inspect_bytes` of the body.

use regex::bytes::{Regex, RegexSet, RegexSetBuilder};

use super::kind::Severity;

/// The bytes of a response read by default (the head of a longer one):
/// `[proxy] response_inspect_bytes`, and what `waf inspect` reads of a
/// line's `response`.
pub const DEFAULT_READ: usize = 64 * 1024;

/// One response rule.
#[derive(Debug, PartialEq, Eq)]
pub struct LeakRule {
    /// Rule id (`leak-...`), as findings and exclusions name it.
    pub id: &'static str,
    /// Lowest paranoia level it runs at.
    pub paranoia: u8,
    /// Severity of a match.
    pub severity: Severity,
    /// The pattern (bytes, `(?-u)`: no charset assumed).
    pub pattern: &'static str,
}

const fn rule(id: &'static str, paranoia: u8, pattern: &'static str) -> LeakRule {
    LeakRule {
        id,
        paranoia,
        severity: Severity::Critical,
        pattern,
    }
}

/// The rules. Patterns are case-sensitive where the software's wording is
/// fixed: a message quoted in prose in another case is rarer than the
/// real one, and keeps false positives down.
pub const RULES: &[LeakRule] = &[
    // Database errors: each engine's own wording or error-code shape.
    rule(
        "leak-sql-error",
        1,
        concat!(
            // MySQL / MariaDB
            r"You have an error in your SQL syntax|check the manual that (?:corresponds|fits) to your (?:MySQL|MariaDB)",
            r"|\bMySqlException\b|\bMySQL server version for the right syntax",
            r"|\bERROR \d{4} \([0-9A-Z]{5}\): |Unknown column '[^'\n]+' in '",
            r"|The used SELECT statements have a different number of columns",
            // PostgreSQL
            r"|\bPSQLException\b|\bPG::[A-Z]\w*(?:Error|Violation)\b|\bNpgsql\.\w*Exception",
            r"|ERROR:\s+(?:syntax error at or near|invalid input syntax for|unterminated quoted (?:string|identifier)|(?:relation|column) \S+ does not exist|operator does not exist)",
            // Microsoft SQL Server, Access, ODBC
            r"|Microsoft (?:OLE DB Provider for|JET Database Engine)|\[Microsoft\]\[ODBC [^\]\n]+\]|\[SQL Server\]|\[ODBC [^\]\n]+ Driver\]",
            r"|Unclosed quotation mark (?:after|before) the character string|Incorrect syntax near\b|\bSystem\.Data\.(?:SqlClient\.Sql|OleDb\.OleDb|Odbc\.Odbc)Exception",
            r"|Conversion failed when converting the \w+ value|Syntax error \(missing operator\) in query expression",
            // Oracle
            r"|\bORA-\d{5}\b|quoted string not properly terminated|SQL command not properly ended",
            // IBM DB2, Informix, Sybase, Ingres, Firebird, SAP MaxDB, HSQLDB, FrontBase
            r"|\bSQLCODE\s*=\s*-?\d{1,5}\b|\bDB2 SQL [Ee]rror|\[IBM\]\[CLI Driver\]|\bSQLSTATE\s*=\s*[0-9A-Z]{5}\b",
            // a PHP warning from a database function (`Warning: mysql_query():`)
            r"|(?:Warning|Fatal error|Notice|Deprecated)(?:</b>)?:\s+(?:mysqli?|pg|mssql|sqlsrv|oci|sqlite3?|SQLite3|sybase|maxdb|ingres|ifx|fbsql|ibase|db2|odbc|cubrid|PDO|PDOStatement)(?:_|::|->)\w+\(\)",
            r"|Dynamic SQL Error|\bSQL-status: [0-9A-Z]{5}\b|\[(?:FrontBase|Actian|Informix|Sybase|DataDirect)[^\]\n]*\]",
            r"|\borg\.hsqldb\.jdbc\b|\bcom\.(?:mysql|microsoft\.sqlserver|ibm\.db2)\.jdbc\b|\bjava\.sql\.SQL\w*Exception\b",
            r"|\bSybase message:|\bSybSQLException\b|\bInformix ODBC Driver|Warning: Sybase: Server message:",
            // SQLite
            r"|\bSQLite3?::(?:query|exec|prepare)\b|\bsqlite3?\.(?:Operational|Programming|Integrity)Error\b|\bSQLITE_ERROR\b|\bSQLiteException\b",
            r#"|near "[^"\n]+": syntax error"#,
            // PHP's PDO and generic drivers
            r"|\bSQLSTATE\[[0-9A-Z]{5}\]|\bPDOException\b",
        ),
    ),
    // A qualified Java exception or error class, and stack frames.
    rule(
        "leak-java-exception",
        1,
        concat!(
            r"\b(?:java|javax|jakarta|sun|com\.sun|org\.(?:apache|springframework|hibernate|eclipse|jboss|glassfish)|com\.(?:fasterxml|google|mysql|zaxxer))",
            r"(?:\.[a-z_][\w$]*)+\.[A-Z][\w$]*(?:Exception|Error)\b",
            r"|\n\s*at (?:[\w$]+\.)+[\w$<>]+\([\w$]+\.java:\d+\)",
        ),
    ),
    // PHP errors as PHP prints them, with the file and line.
    rule(
        "leak-php-error",
        1,
        concat!(
            r"<b>(?:Warning|Fatal error|Parse error|Notice|Deprecated|Catchable fatal error|Recoverable fatal error)</b>:\s",
            r"|(?:PHP )?(?:Warning|Fatal error|Parse error|Notice|Deprecated|Catchable fatal error): [^\n]+? in (?:<b>)?(?:/|[A-Za-z]:\\)[^\n<]+?(?:</b>)? on line (?:<b>)?\d+",
            r"|\bPHP (?:Warning|Fatal error|Parse error|Notice):  ",
            r"|Uncaught (?:exception '\w+'|\w*(?:Exception|Error): [^\n]* in /)",
            r"|\bfailed to open stream: |Call to undefined (?:function|method) \w",
        ),
    ),
    // PHP source as the whole response: the server did not run it (in
    // the middle of a page it is more often a tutorial's example).
    rule("leak-php-source", 1, r"\A(?:\xEF\xBB\xBF)?\s*<\?php\s"),
    // ASP.NET and IIS error pages.
    rule(
        "leak-aspnet-error",
        1,
        concat!(
            r"Server Error in '[^'\n]*' Application|ASP\.NET is configured to show verbose error messages",
            r"|\bSystem\.(?:Web|Data|IO|Security|Configuration|Runtime|Xml|Net)(?:\.\w+)*\.\w*Exception\b",
            r"|\b(?:ViewState|HttpRequestValidation|HttpCompile|HttpParse|HttpUnhandled)Exception\b",
            r"|Microsoft VBScript (?:runtime|compilation) (?:error|\(0x[0-9A-Fa-f]{8}\))|\bADODB\.\w+ error '",
            r"|Active Server Pages error '|<title>\d{3}\.\d{1,3} - [^<\n]+</title>",
            // `C:\inetpub\`: the drive letter left out, so the pattern starts
            // with a literal (a class first slows the whole set's prefilter)
            r"|:\\inetpub\\|\bError Code\s*0x[0-9a-fA-F]{8}\b",
        ),
    ),
    // Ruby and Rails errors, backtraces.
    rule(
        "leak-ruby-error",
        1,
        concat!(
            r"\b(?:ActiveRecord|ActionController|ActionView|ActionDispatch|ActiveModel|ActiveSupport|ActionMailer)::(?:[A-Z]\w*::)*\w*",
            r"(?:Error|Exception|NotFound|Invalid|Missing|Unknown\w*|Forbidden\w*|Mismatch|Expired|Rejected)\b",
            r"|undefined (?:local variable or )?method [`'][^`'\n]+' for ",
            r"|wrong number of arguments \(given \d+, expected \d+",
            r"|no implicit conversion (?:of|from) \w+ (?:into|to) \w+",
            r"|\.rb:\d+:in [`']|\.rb:\d+: syntax error, unexpected",
        ),
    ),
    // Python tracebacks and debug pages.
    rule(
        "leak-python-traceback",
        1,
        concat!(
            r#"Traceback \(most recent call last\):\s*\n?\s*File ""#,
            r"|You're seeing this error because you have <code>DEBUG = True</code>",
            r"|Werkzeug Debugger|<title>\w*(?:Error|Exception) at /[^<\n]*</title>",
        ),
    ),
    // Node.js stack frames with server paths.
    rule(
        "leak-node-stack",
        1,
        r"\n\s*at (?:[\w$.<>\[\] ]+ \()?/[\w./@-]+\.(?:js|mjs|cjs|ts):\d+:\d+\)?\s*\n\s*at ",
    ),
    // Web shells' pages: a shell's banner, or the server facts they all
    // print beside a file manager.
    rule(
        "leak-web-shell",
        1,
        concat!(
            r"(?i:<title>[^<\n]*(?:web ?shell|php ?shell|asp ?shell|c99 ?shell|r57 ?shell|wso \d|b374k|filesman|shell v\d))",
            r"|(?i:<h1>[^<\n]*\bshell v\d)",
            r"|Safe[ _-]?mode:\s*(?:<[^>\n]*>\s*){0,4}(?:ON|OFF)\b[^\n]*(?:Uname|Disabled functions|Open_basedir)",
            r"|(?:Uname|Disabled functions|Open_basedir):?\s*(?:<[^>\n]*>\s*){0,4}[^\n]*Safe[ _-]?mode:\s*(?:<[^>\n]*>\s*){0,4}(?:ON|OFF)\b",
        ),
    ),
    // Files read off the server: an account database, a private key.
    rule(
        "leak-system-file",
        1,
        concat!(
            // two lines of an account database, root's first (wherever a
            // page put the file: after a tag, in a JSON string)
            r"(?m:\broot:[x*!]?:0:0:[^:\n]*:[^:\n]*:[^:\n]*\r?\n[a-z_][\w.-]*:[x*!]?:\d+:\d+:[^:\n]*:[^:\n]*:[^:\n]*$)",
            r"|-----BEGIN (?:RSA |DSA |EC |OPENSSH |ENCRYPTED )?PRIVATE KEY-----",
            r"|\[boot loader\]\s*\n\s*timeout=|; for 16-bit app support\s*\n\s*\[fonts\]",
        ),
    ),
    // A server's directory listing: files nobody linked to.
    rule(
        "leak-directory-listing",
        2,
        r"<title>Index of /[^<\n]*</title>|<h1>Index of /[^<\n]*</h1>|<title>Directory Listing For /",
    ),
];

/// A match of a response rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leak {
    /// The rule.
    pub rule: &'static LeakRule,
    /// What matched (lossy UTF-8, at most 100 bytes of it).
    pub matched: String,
}

/// The response rules, compiled.
pub struct Leaks {
    set: RegexSet,
    each: Vec<Regex>,
}

/// The HTML character references a message's quotes, brackets and
/// backslashes come out in (after the `&`; ASCII case ignored), and what
/// they stand for.
const ENTITIES: [(&[u8], u8); 12] = [
    (b"#39;", b'\''),
    (b"#039;", b'\''),
    (b"#x27;", b'\''),
    (b"apos;", b'\''),
    (b"quot;", b'"'),
    (b"#34;", b'"'),
    (b"#x22;", b'"'),
    (b"#96;", b'`'),
    (b"#x60;", b'`'),
    (b"lt;", b'<'),
    (b"gt;", b'>'),
    (b"#x5c;", b'\\'),
];

/// The escape at the start of `s` (which starts with `&` or `\`): its
/// length and the byte it stands for. JSON's `\"`, `\\`, `\/`, `\n`,
/// `\r`, `\t` and `\u00XX` of an ASCII character; the [`ENTITIES`].
fn escape_at(s: &[u8]) -> Option<(usize, u8)> {
    match s {
        [b'\\', b'"' | b'\\' | b'/', ..] => Some((2, s[1])),
        [b'\\', b'n', ..] => Some((2, b'\n')),
        [b'\\', b'r', ..] => Some((2, b'\r')),
        [b'\\', b't', ..] => Some((2, b'\t')),
        [b'\\', b'u', b'0', b'0', h, l, ..] => {
            let hex = |b: u8| (b as char).to_digit(16);
            let v = hex(*h)? * 16 + hex(*l)?;
            (v < 0x80).then_some((6, v as u8))
        }
        [b'&', rest @ ..] => ENTITIES.iter().find_map(|(name, byte)| {
            (rest.len() >= name.len() && rest[..name.len()].eq_ignore_ascii_case(name))
                .then_some((name.len() + 1, *byte))
        }),
        _ => None,
    }
}

impl Leaks {
    /// Compiles [`RULES`].
    pub fn new() -> Result<Leaks, regex::Error> {
        let pats = RULES.iter().map(|r| format!("(?-u){}", r.pattern));
        let set = RegexSetBuilder::new(pats.clone())
            .size_limit(64 << 20)
            .build()?;
        let each = pats.map(|p| Regex::new(&p)).collect::<Result<_, _>>()?;
        Ok(Leaks { set, each })
    }

    /// The rules matching `body`, each with what it matched (rules above
    /// `paranoia` are skipped). A body with HTML or JSON escapes is read
    /// with them undone (one level; [`Leaks::unescaped`]): an error inside
    /// a JSON string (`{"detail": "Traceback ...\n  File \"/srv/a.py\""}`)
    /// or a page that escapes its quotes (`undefined method `price&#39;
    /// for nil`) is read as the application wrote it.
    pub fn scan(&self, body: &[u8], paranoia: u8) -> Vec<Leak> {
        let view = Self::unescaped(body);
        let text = view.as_deref().unwrap_or(body);
        // Nearly every response has none: one pass that stops at the
        // first match (about a quarter faster than collecting them all).
        if !self.set.is_match(text) {
            return Vec::new();
        }
        self.collect(text, paranoia)
    }

    /// `body` with its escapes ([`escape_at`]) undone, when it has any.
    pub fn unescaped(body: &[u8]) -> Option<Vec<u8>> {
        let mut out: Option<Vec<u8>> = None;
        let mut copied = 0;
        for i in memchr::memchr2_iter(b'&', b'\\', body) {
            if i < copied {
                continue;
            }
            if let Some((len, byte)) = escape_at(&body[i..]) {
                let o = out.get_or_insert_with(|| Vec::with_capacity(body.len()));
                o.extend_from_slice(&body[copied..i]);
                o.push(byte);
                copied = i + len;
            }
        }
        let mut o = out?;
        o.extend_from_slice(&body[copied..]);
        Some(o)
    }

    fn collect(&self, body: &[u8], paranoia: u8) -> Vec<Leak> {
        self.set
            .matches(body)
            .into_iter()
            .filter(|&i| RULES[i].paranoia <= paranoia)
            .map(|i| {
                let m = self.each[i]
                    .find(body)
                    .map_or(&[][..], |m| &body[m.start()..m.end().min(m.start() + 100)]);
                Leak {
                    rule: &RULES[i],
                    matched: String::from_utf8_lossy(m).into_owned(),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
