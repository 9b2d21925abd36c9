//! Which values of a request are scanned, as what and how they are
//! encoded: the path and its code-like segments, query parameters,
//! cookies, headers, and the body as form, JSON, XML, multipart or raw.

use super::Engine;
use super::cache::{self, Pair};
use super::value::{self, Encoding};
use crate::detect::collect::{Collector, short};
use crate::detect::kind::{Kind, Severity};
use crate::detect::normalize::{self, Normalized};
use crate::detect::rules::targets;
use crate::detect::upload;
use crate::http::{Body, CanonicalPath, Header, JsonItem, Param, Part, Request};

/// Headers that name an uploaded file: read as file names too.
const FILENAME_HEADERS: &[&str] = &[
    "x-filename",
    "x_filename",
    "x.filename",
    "x-file-name",
    "x-upload-filename",
];

/// Longest pair without `=` also read as a name (a longer one is read as
/// a value only).
const LONG_BARE_NAME: usize = 256;

/// Most bytes of an XML body searched for DOCTYPE and ENTITY declarations.
const XML_DECLARATIONS_MAX: usize = 64 * 1024;

impl Engine {
    /// Scans every value of a request, in the order of its findings: path,
    /// query, cookies, headers, body.
    pub(super) fn scan_request(&self, req: &Request, c: &mut Collector) {
        self.scan_path(&req.canonical, c);
        for p in &req.query {
            self.scan_param(c, p, "query", Encoding::Form);
        }
        if let Some(q) = req
            .raw_query
            .as_deref()
            .filter(|q| query_splits_markup(q) || names_hold_code(&req.query))
        {
            // A raw `#` or `&` that starts a character reference cuts a
            // value into parameters (`<img src=&#106&#97...>`), an `=`
            // cuts `1' or '1'='1` into a name and a value, but a page that
            // reflects the query string, or a back end that keeps the
            // fragment, reads it whole: so is it scanned.
            self.scan(
                c,
                q,
                targets::ARGS,
                &|| "query_string".into(),
                Encoding::Form,
            );
        }
        for p in &req.cookies {
            self.scan_cookie(p, c);
        }
        for h in &req.headers {
            self.scan_header(h, c);
        }
        self.scan_body(req, c);
    }

    /// The raw path, each segment of it that reads as code, and the path
    /// as a server routes it.
    fn scan_path(&self, path: &CanonicalPath, c: &mut Collector) {
        let raw_path = path.raw.as_str();
        self.scan_value(c, raw_path, targets::PATH, &|| "path".into(), Encoding::Url);
        // REST-style applications read path segments as parameters
        // (`/users/{id}`): a segment holding what a file or directory name
        // never does (quotes, shell and code punctuation, spaces) gets the
        // rules and tokenizers of a parameter value too.
        // A back end that passes a segment on as a query parameter (a
        // rewrite of `/item/(.*)` to `?id=$1`) reads a `+` in it as a
        // space: such a segment is read as a form value.
        for segment in raw_path.split('/') {
            if segment_is_code_like(segment) {
                let enc = if segment.contains('+') {
                    Encoding::Form
                } else {
                    Encoding::Url
                };
                self.scan_value(c, segment, targets::ARGS, &|| "path_segment".into(), enc);
            }
        }
        // The path as a server routes it (`/actuator;/env`,
        // `/actuator//heapdump`, `/a/./b` are `/actuator/env`...), when it
        // differs from the decoded one: the endpoint rules read it too.
        if path.path != path.decoded && path.path != path.raw {
            self.scan_value(
                c,
                &path.path,
                targets::PATH,
                &|| "path(canonical)".into(),
                Encoding::Url,
            );
        }
    }

    /// Scans the name and the value of a query or form parameter. A name
    /// holding an encoded `=` (`a%3Dx`) is read by some back ends as a
    /// name and a value: its tail is scanned as a value too.
    fn scan_param(&self, c: &mut Collector, p: &Param, kind: &str, enc: Encoding) {
        // A long pair without `=` (a beacon's text) is read as a value
        // below, which meets every rule a name does but the few anchored
        // on a whole short name (`$ne`, `a__b__startswith`).
        if p.has_value || p.raw_name.len() <= LONG_BARE_NAME {
            self.scan_name(
                c,
                &p.raw_name,
                &|| format!("{kind}_name:{}", short(&p.name)),
                enc,
            );
        }
        self.scan_value(
            c,
            &p.raw_value,
            targets::ARGS,
            &|| format!("{kind}:{}", short(&p.name)),
            enc,
        );
        // A pair without `=` (`?<payload>`, a body of one word) is all
        // name, but an application that reads the query string or the
        // body itself takes it as its input: read it as a value too.
        if !p.has_value {
            self.scan_value(
                c,
                &p.raw_name,
                targets::ARGS,
                &|| format!("{kind}:{}", short(&p.name)),
                enc,
            );
        }
        if let Some(tail) = encoded_value_tail(&p.raw_name) {
            self.scan_value(
                c,
                tail,
                targets::ARGS,
                &|| format!("{kind}:{}", short(&p.name)),
                enc,
            );
        }
    }

    /// [`Engine::scan`], unless the value was found clean before as the
    /// same target in the same encoding: a site's parameters and documents
    /// repeat values (ids, versions, flags) from request to request.
    pub(super) fn scan_value(
        &self,
        c: &mut Collector,
        value: &str,
        target: u16,
        loc: &dyn Fn() -> String,
        enc: Encoding,
    ) {
        // A plain value (ids, numbers, flags) costs about as much to scan
        // as to look up, and a body of many distinct ones would only churn
        // the cache (a 1 MB JSON array of 111,111 short strings: 26.6 ms
        // with them cached, 9.3 ms without).
        if normalize::is_plain(value.as_bytes()) {
            return self.scan(c, value, target, loc, enc);
        }
        let name = cache::value_name(target, enc.tag());
        self.cached(c, Pair::Value, &name, value, |e, c| {
            e.scan(c, value, target, loc, enc)
        });
    }

    /// A field name (parameter, cookie, JSON key, multipart part), unless
    /// found clean before: names come from an application's own vocabulary
    /// and repeat from request to request.
    pub(super) fn scan_name(
        &self,
        c: &mut Collector,
        raw: &str,
        loc: &dyn Fn() -> String,
        enc: Encoding,
    ) {
        self.cached(c, Pair::Name, enc.tag().as_bytes(), raw, |e, c| {
            e.scan(c, raw, targets::NAMES, loc, enc)
        });
    }

    /// A cookie's name and value, unless the pair was found clean before.
    fn scan_cookie(&self, p: &Param, c: &mut Collector) {
        self.cached(
            c,
            Pair::Cookie,
            p.raw_name.as_bytes(),
            &p.raw_value,
            |e, c| e.scan_cookie_uncached(p, c),
        );
    }

    /// [`Engine::scan_cookie`] without the cache.
    fn scan_cookie_uncached(&self, p: &Param, c: &mut Collector) {
        self.scan_name(
            c,
            &p.raw_name,
            &|| format!("cookie_name:{}", short(&p.name)),
            Encoding::Text,
        );
        self.scan(
            c,
            &p.raw_value,
            targets::ARGS,
            &|| format!("cookie:{}", short(&p.name)),
            Encoding::Text,
        );
    }

    /// A header value (Cookie is read as cookies): User-Agent and Referer
    /// meet their own rules, a User-Agent is also checked for scanners, a
    /// header naming an uploaded file is read as a file name too.
    fn scan_header(&self, h: &Header, c: &mut Collector) {
        if h.name.eq_ignore_ascii_case("cookie") {
            return;
        }
        self.cached(c, Pair::Header, h.name.as_bytes(), &h.value, |e, c| {
            e.scan_header_uncached(h, c)
        });
    }

    /// [`Engine::scan_header`] without the cache of clean pairs.
    fn scan_header_uncached(&self, h: &Header, c: &mut Collector) {
        let is = |n: &str| h.name.eq_ignore_ascii_case(n);
        let ua = is("user-agent");
        let target = if ua || is("referer") {
            targets::UA_REF
        } else {
            targets::HEADERS
        };
        let name = || h.name.to_ascii_lowercase();
        if ua && let Some(word) = self.scanners.find(&h.value) {
            c.add(
                Kind::Scanner,
                "scanner-user-agent",
                Severity::Critical,
                1,
                "header:user-agent",
                word,
                &h.value,
            );
        }
        self.scan(
            c,
            &h.value,
            target,
            &|| format!("header:{}", name()),
            Encoding::Text,
        );
        // Applications read headers as they read parameters (logged,
        // stored, put into queries, fetched): a header of the application's
        // own, and a protocol header's value that is not quiet, meet the
        // parameter rules and tokenizers too. A Referer is a URL
        // to the page before, often this site's: its query part is read,
        // not its host, and only when it holds punctuation that could end
        // the string it is stored as (plain words there, `select 1 from a`
        // searched for on the page before, are no injection).
        if is("referer") {
            let query = h.value.split_once('?').map_or("", |(_, q)| q);
            let query = query.split('#').next().unwrap_or("");
            let mut anomalies = Vec::new();
            for p in crate::http::target::parse_pairs(query, self.limits(), &mut anomalies) {
                if is_loud(&p.raw_name) || is_loud(&p.raw_value) {
                    self.scan_param(c, &p, "referer_query", Encoding::Referer);
                }
            }
        } else {
            let quiet = if ua {
                value::is_quiet_user_agent(h.value.as_bytes())
            } else {
                value::is_protocol_header(&h.name) && value::is_quiet_header(h.value.as_bytes())
            };
            // Host and Origin name this site (an internal or local name
            // is normal there); any other header holding a URL or a call
            // (`1 AND SLEEP(5)`) is read as a parameter too.
            let protocol = is("host") || is("origin");
            if !protocol && (!quiet || h.value.contains("://") || h.value.contains('(')) {
                self.scan(
                    c,
                    &h.value,
                    targets::ARGS,
                    &|| format!("header:{}", name()),
                    Encoding::Text,
                );
            }
        }
        if FILENAME_HEADERS.iter().any(|n| is(n)) {
            self.scan(
                c,
                &h.value,
                targets::FILENAME,
                &|| format!("header:{}", name()),
                Encoding::Text,
            );
        }
    }

    /// The body as its parser understood it.
    fn scan_body(&self, req: &Request, c: &mut Collector) {
        match &req.parsed_body {
            Body::None => {}
            Body::Form(params) => {
                for p in params {
                    self.scan_param(c, p, "form", Encoding::Form);
                }
                if names_hold_code(params) {
                    let body = crate::http::lossy(&req.body);
                    self.scan(
                        c,
                        &body,
                        targets::ARGS,
                        &|| "form_body".into(),
                        Encoding::Form,
                    );
                }
            }
            Body::Json(items) => {
                for i in items.iter() {
                    self.scan_json_item(&i, c);
                }
            }
            Body::Xml(items) => {
                for i in items.iter() {
                    self.scan_value(
                        c,
                        i.text,
                        targets::DOC,
                        &|| format!("xml:{}", short(&i.path())),
                        Encoding::Text,
                    );
                }
                self.scan_xml_declarations(&req.body, c);
            }
            Body::Multipart(parts) => {
                for p in parts {
                    self.scan_part(p, c);
                }
            }
            Body::Raw => {
                // Text or file is decided in `scan` by `value::is_binary`,
                // as for every body and document value: a short raw body
                // with a NUL (`*))\0`) is a payload, not data.
                let text = crate::http::lossy(&req.body);
                self.scan(c, &text, targets::BODY, &|| "body".into(), Encoding::Text);
            }
        }
    }

    /// A JSON key (as a name) or a JSON string or number (as a document value).
    fn scan_json_item(&self, i: &JsonItem, c: &mut Collector) {
        if i.is_key {
            self.scan_name(
                c,
                i.text,
                &|| format!("json_key:{}", short(&i.path())),
                Encoding::Text,
            );
            self.scan_json_path(c, i, &|p| format!("json_key:{p}"));
        } else {
            self.scan_value(
                c,
                i.text,
                targets::DOC,
                &|| format!("json:{}", short(&i.path())),
                Encoding::Text,
            );
        }
    }

    /// DOCTYPE and ENTITY declarations are not values: look at the raw XML.
    pub(super) fn scan_xml_declarations(&self, body: &[u8], c: &mut Collector) {
        // An XInclude needs no declaration, only its namespace.
        if memchr::memmem::find(body, b"<!").is_none()
            && memchr::memmem::find(body, b"/XInclude").is_none()
        {
            return;
        }
        let n = Normalized::new(&body[..body.len().min(XML_DECLARATIONS_MAX)], false);
        if let Some(hit) = self.compiled.find("xxe-entity", &n) {
            let m = String::from_utf8_lossy(hit.matched);
            c.add(
                hit.rule.kind,
                hit.rule.id,
                hit.rule.severity_at(self.cfg.paranoia),
                hit.rule.paranoia,
                "body",
                &m,
                "",
            );
        }
    }

    /// A multipart part: its name, then a file (name and content) or a
    /// field (a parameter value, unless [`value::is_binary`]: then file
    /// content).
    fn scan_part(&self, p: &Part, c: &mut Collector) {
        self.scan_name(
            c,
            &p.name,
            &|| format!("multipart_name:{}", short(&p.name)),
            Encoding::Text,
        );
        for f in p.filename.iter().chain(&p.other_filenames) {
            self.scan_value(
                c,
                f,
                targets::FILENAME,
                &|| format!("filename:{}", short(&p.name)),
                Encoding::Text,
            );
        }
        // A part that names a file to some readers only (two
        // dispositions) is read as both.
        if p.filename.is_some() || !p.other_filenames.is_empty() {
            self.scan_file(c, p);
        }
        if p.filename.is_none() {
            let data = crate::http::lossy(&p.data);
            let loc = || format!("multipart:{}", short(&p.name));
            if value::is_binary(&p.data) {
                self.scan_binary(c, &data, targets::ARGS, &loc, Encoding::Text);
            } else {
                self.scan_value(c, &data, targets::ARGS, &loc, Encoding::Text);
            }
        }
        self.scan_part_document(c, p);
    }
}

impl Engine {
    /// The inspected bytes of an uploaded file (its head, and its tail when
    /// it is longer than `max_file_inspect`): the file-content rules, and
    /// the script checks of [`crate::detect::upload`].
    fn scan_file(&self, c: &mut Collector, p: &Part) {
        let names = p
            .filename
            .iter()
            .chain(&p.other_filenames)
            .map(String::as_str);
        let markup = upload::renders_markup(names, p.content_type.as_deref(), &p.data);
        for (bytes, suffix) in [(&p.data, ""), (&p.tail, "(tail)")] {
            if bytes.is_empty() {
                continue;
            }
            let loc = || format!("file:{}{suffix}", short(&p.name));
            let text = crate::http::lossy(bytes);
            self.scan(c, &text, targets::FILE, &loc, Encoding::Text);
            if let Some(hit) = upload::script(bytes, suffix.is_empty(), markup) {
                c.add(
                    Kind::FileUpload,
                    hit.rule,
                    Severity::Critical,
                    1,
                    &loc(),
                    &hit.matched,
                    "",
                );
            }
        }
    }
}

/// Whether a raw query string holds what no browser sends and what cuts a
/// value into parameters: a `#` (browsers keep fragments to themselves
/// and encode a `#` in a value) or an `&` that starts an HTML character
/// reference (`&#106`, `&#x6A`, `&lt;`: a browser encodes an `&` in a value
/// as `%26`).
fn query_splits_markup(q: &str) -> bool {
    if q.contains('#') {
        return true;
    }
    let b = q.as_bytes();
    memchr::memchr_iter(b'&', b).any(|i| {
        // Nine letters are already too many for a reference's name.
        let name = b[i + 1..]
            .iter()
            .take(9)
            .take_while(|c| c.is_ascii_alphabetic())
            .count();
        (2..=8).contains(&name) && b.get(i + 1 + name) == Some(&b';')
    })
}

/// Whether a pair with a value has a name that holds what ends a string
/// in some interpreter (`1' or '1'` of `1' or '1'='1`): the `=` cut a
/// payload in two.
fn names_hold_code(params: &[Param]) -> bool {
    params.iter().any(|p| p.has_value && is_loud(&p.raw_name))
}

/// Whether a raw path segment, once decoded, holds a character file and
/// directory names do not: quotes, shell and code punctuation (`; | $ < >
/// { } ( )` and the backtick), a backslash or whitespace; or a slash, which
/// only an encoded one (`%2F`) puts inside a segment: a back end that keeps
/// it reads the segment as one parameter (`/items/{id}` with the id
/// `http://203.0.113.9/shell.txt?`), so it meets a parameter's rules.
fn segment_is_code_like(segment: &str) -> bool {
    const LOUD: [bool; 256] = normalize::byte_set(b"'\";|$<>{}()`\\ +\t\n\r");
    let b = segment.as_bytes();
    b.iter().any(|&c| LOUD[usize::from(c)])
        || (b.contains(&b'%')
            && normalize::decode(b, false, &mut normalize::Flags::default())
                .iter()
                .any(|&c| LOUD[usize::from(c)] || c == b'/'))
}

/// The part of a raw parameter name after its first encoded `=` (`%3D`).
fn encoded_value_tail(raw_name: &str) -> Option<&str> {
    let b = raw_name.as_bytes();
    let i = b
        .windows(3)
        .position(|w| w[0] == b'%' && w[1] == b'3' && (w[2] == b'D' || w[2] == b'd'))?;
    Some(&raw_name[i + 3..]).filter(|t| !t.is_empty())
}

/// Whether a value of a Referer's query, decoded, holds punctuation that
/// ends a string in some interpreter (quotes, markup, shell and template
/// characters, command separators, comments, line breaks, URLs, parent
/// directories).
fn is_loud(q: &str) -> bool {
    if normalize::is_plain(q.as_bytes()) {
        return false;
    }
    let n = normalize::Normalized::new(q.as_bytes(), true);
    const LOUD: [bool; 256] = normalize::byte_set(b"'\"`<>;|&#${}()*\\\r\n\0");
    n.dec.iter().any(|&b| LOUD[usize::from(b)])
        || memchr::memmem::find(&n.dec, b"--").is_some()
        || memchr::memmem::find(&n.dec, b"://").is_some()
        || memchr::memmem::find(&n.dec, b"..").is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_like_segments_hold_code_punctuation_raw_or_encoded() {
        for s in [
            "1'", "a;b", "$(id)", "a%20b", "%27", "%253C", "x%7Cy", "a\\b", "a%2Fb", "a%252fb",
            "a+b",
        ] {
            assert!(segment_is_code_like(s), "{s}");
        }
        for s in [
            "users",
            "42",
            "file.tar.gz",
            "a-b_c",
            "%41",
            "caf%C3%A9",
            "100%",
            "",
        ] {
            assert!(!segment_is_code_like(s), "{s}");
        }
    }

    #[test]
    fn a_raw_hash_or_character_reference_marks_a_split_query() {
        for q in [
            "id=<img src=&#106&#97",
            "a=1#frag",
            "x=&lt;script&gt;",
            "x=1&#x6A;",
            "x=&amp;",
        ] {
            assert!(query_splits_markup(q), "{q}");
        }
        for q in [
            "a=1&b=2",
            "a=%26%23106",
            "lang=en&copy=2",
            "a=1&verylongname;",
            "a=1&x;",
            "&",
            "a=1&",
            "",
        ] {
            assert!(!query_splits_markup(q), "{q}");
        }
    }

    proptest::proptest! {
        /// Only a `#` or an `&` can mark a split query, and a character
        /// reference appended to any query always does.
        #[test]
        fn a_split_query_needs_a_hash_or_an_ampersand(q in ".{0,64}", name in "[a-z]{2,8}") {
            if !q.contains('#') && !q.contains('&') {
                proptest::prop_assert!(!query_splits_markup(&q));
            }
            let with_ref = format!("{q}&{name};");
            proptest::prop_assert!(query_splits_markup(&with_ref));
        }
    }

    #[test]
    fn finds_the_value_hidden_in_a_parameter_name() {
        assert_eq!(encoded_value_tail("a%3Dx"), Some("x"));
        assert_eq!(encoded_value_tail("a%3d1%3D2"), Some("1%3D2"));
        assert_eq!(encoded_value_tail("a%3D"), None);
        assert_eq!(encoded_value_tail("a=b"), None);
        assert_eq!(encoded_value_tail("%3"), None);
    }
}
