//! The engine: runs operator rules, protocol checks and every signature over
//! every part of a request, and turns the findings into a verdict.

use std::net::IpAddr;

use super::collect::{Collector, short};
use super::config::DetectConfig;
use super::kind::{Kind, Severity};
use super::libinj::{self, Outcome};
use super::matcher::Compiled;
use super::normalize::{self, Normalized, is_plain, is_text};
use super::operator::Operator;
use super::rules::{self, targets};
use super::scanner::Scanners;
use super::verdict::{Action, Finding, Risk, Verdict};
use super::{log4shell, path, protocol, ssrf, upload};
use crate::http::{Body, CanonicalPath, Limits, Param, ParseError, Part, Request};

/// Why an engine could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    /// The configuration is invalid (the message names the key).
    #[error("{0}")]
    Config(String),
    /// A rule did not compile.
    #[error("rule compilation: {0}")]
    Rules(String),
}

/// Longest value handed to libinjection's HTML5 tokenizer: on long texts
/// (rich content, logs) it mostly finds markup, not attacks; the XSS rules
/// still read them.
const XSS_TOKENIZER_MAX: usize = 1024;

/// The detection engine: immutable once built, shared by all threads.
pub struct Engine {
    cfg: DetectConfig,
    compiled: Compiled,
    operator: Operator,
    scanners: Scanners,
}

/// How a value is encoded where it was found.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Encoding {
    /// Query string or form: `%XX` and `+`.
    Form,
    /// Path or cookie: `%XX`.
    Url,
    /// Anything else (headers, JSON, XML): decoded anyway, no encoding findings.
    Text,
    /// Text a base64 value decoded to: the rules only (no tokenizers).
    Base64,
}

/// Index of a target bit.
fn bit(t: u16) -> usize {
    t.trailing_zeros() as usize
}

impl Engine {
    /// Validates the configuration and compiles the rules for its paranoia.
    pub fn new(cfg: &DetectConfig) -> Result<Engine, EngineError> {
        cfg.validate().map_err(EngineError::Config)?;
        let compiled = Compiled::new(rules::all(), cfg.paranoia).map_err(EngineError::Rules)?;
        let operator = Operator::new(cfg).map_err(EngineError::Config)?;
        let scanners = Scanners::new(cfg.builtin_bad_user_agents, &cfg.bad_user_agents)
            .map_err(EngineError::Config)?;
        Ok(Engine {
            cfg: cfg.clone(),
            compiled,
            operator,
            scanners,
        })
    }

    /// The configuration the engine was built from.
    pub fn config(&self) -> &DetectConfig {
        &self.cfg
    }

    /// The parser limits of the configuration.
    pub fn limits(&self) -> &Limits {
        &self.cfg.limits
    }

    /// Whether the request's path is exempt from inspection (`exempt_paths`
    /// on the canonical path). Cheap; false whenever the path carries a
    /// flag that voids exemptions (encoded slash, `..` above the root...).
    pub fn exempt(&self, req: &Request) -> bool {
        self.operator.exempt(&req.canonical)
    }

    /// [`Engine::exempt`] for a path alone, e.g. from
    /// [`CanonicalPath::from_target`] before the body is read.
    pub fn exempt_path(&self, path: &CanonicalPath) -> bool {
        self.operator.exempt(path)
    }

    /// The verdict on a request the parser refused for going over the
    /// header limits (`max_headers`, `max_header_bytes`): a critical
    /// protocol finding, so the mirror counts it as a detection (the proxy
    /// answers 431 itself). None for other parse errors: servers refuse
    /// those requests too.
    pub fn refused(&self, err: &ParseError) -> Option<Verdict> {
        if !matches!(
            err,
            ParseError::TooManyHeaders { .. } | ParseError::HeadersTooLarge { .. }
        ) {
            return None;
        }
        let finding = Finding {
            kind: Kind::Protocol,
            location: "request".into(),
            rule: "protocol-header-limit".into(),
            matched: err.to_string(),
            severity: Severity::Critical,
            value: String::new(),
        };
        Some(self.verdict(Severity::Critical.points(), vec![finding], false))
    }

    /// Inspects a request from `remote` (if known).
    pub fn inspect(&self, req: &Request, remote: Option<IpAddr>) -> Verdict {
        let mut v = self.inspect_whole(req, remote);
        v.partial = req.body_truncated;
        v
    }

    fn inspect_whole(&self, req: &Request, remote: Option<IpAddr>) -> Verdict {
        let decision = self.operator.decide(req, remote);
        if decision.allow.is_some() {
            return Verdict::pass();
        }
        if let Some(id) = decision.deny {
            let finding = Finding {
                kind: Kind::Operator,
                location: "request".into(),
                rule: id,
                matched: String::new(),
                severity: Severity::Critical,
                value: String::new(),
            };
            return self.verdict(self.cfg.threshold.max(5), vec![finding], true);
        }
        if self.operator.exempt(&req.canonical) {
            return Verdict::pass();
        }
        let scope = self.operator.exclusion_scope(&req.canonical);
        let excluded =
            |kind: Kind, rule: &str, loc: &str| self.operator.excluded(&scope, kind, rule, loc);
        let mut c = Collector::new(self.cfg.paranoia, &excluded);
        for (id, w) in &decision.weights {
            c.weigh(id, i64::from(*w), "request", "");
        }
        path::findings(req, self.cfg.paranoia, &mut c);
        protocol::anomalies(req, &mut c);
        protocol::headers(req, &self.cfg.allowed_methods, &mut c);
        protocol::session_fixation(req, &mut c);
        protocol::rfi_parameters(req, &mut c);
        self.scan_request(req, &mut c);
        let (score, findings) = c.finish();
        self.verdict(score, findings, false)
    }

    fn verdict(&self, score: u32, attacks: Vec<Finding>, denied: bool) -> Verdict {
        let t = self.cfg.threshold;
        let block = denied || score >= t;
        let risk = if block {
            Risk::High
        } else if score.saturating_mul(2) >= t && score > 0 {
            Risk::Medium
        } else {
            Risk::Low
        };
        let action = if block && !self.cfg.passive {
            Action::Block
        } else {
            Action::Pass
        };
        Verdict {
            action,
            score,
            risk,
            attacks,
            would_block: block && self.cfg.passive,
            partial: false,
        }
    }

    fn scan_request(&self, req: &Request, c: &mut Collector) {
        self.scan(
            c,
            &req.raw_path,
            targets::PATH,
            &|| "path".into(),
            Encoding::Url,
        );
        // REST-style applications read path segments as parameters
        // (`/users/{id}`): a segment holding what a file or directory name
        // never does (quotes, shell and code punctuation, spaces) gets the
        // rules and tokenizers of a parameter value too.
        for segment in req.raw_path.split('/') {
            if segment_is_code_like(segment) {
                self.scan(
                    c,
                    segment,
                    targets::ARGS,
                    &|| "path_segment".into(),
                    Encoding::Url,
                );
            }
        }
        for p in &req.query {
            self.scan_param(c, p, "query");
        }
        for p in &req.cookies {
            self.scan(
                c,
                &p.raw_name,
                targets::NAMES,
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
        for h in &req.headers {
            let is = |n: &str| h.name.eq_ignore_ascii_case(n);
            if is("cookie") {
                continue;
            }
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
            if [
                "x-filename",
                "x_filename",
                "x.filename",
                "x-file-name",
                "x-upload-filename",
            ]
            .iter()
            .any(|n| is(n))
            {
                self.scan(
                    c,
                    &h.value,
                    targets::FILENAME,
                    &|| format!("header:{}", name()),
                    Encoding::Text,
                );
            }
        }
        self.scan_body(req, c);
    }

    /// Scans the name and the value of a query or form parameter. A name
    /// holding an encoded `=` (`a%3Dx`) is read by some back ends as a
    /// name and a value: its tail is scanned as a value too.
    fn scan_param(&self, c: &mut Collector, p: &Param, kind: &str) {
        self.scan(
            c,
            &p.raw_name,
            targets::NAMES,
            &|| format!("{kind}_name:{}", short(&p.name)),
            Encoding::Form,
        );
        self.scan(
            c,
            &p.raw_value,
            targets::ARGS,
            &|| format!("{kind}:{}", short(&p.name)),
            Encoding::Form,
        );
        if let Some(tail) = encoded_value_tail(&p.raw_name) {
            self.scan(
                c,
                tail,
                targets::ARGS,
                &|| format!("{kind}:{}", short(&p.name)),
                Encoding::Form,
            );
        }
    }

    fn scan_body(&self, req: &Request, c: &mut Collector) {
        match &req.parsed_body {
            Body::None => {}
            Body::Form(params) => {
                for p in params {
                    self.scan_param(c, p, "form");
                }
            }
            Body::Json(items) => {
                for i in items {
                    if i.is_key {
                        self.scan(
                            c,
                            &i.text,
                            targets::NAMES,
                            &|| format!("json_key:{}", short(&i.path)),
                            Encoding::Text,
                        );
                    } else {
                        self.scan(
                            c,
                            &i.text,
                            targets::DOC,
                            &|| format!("json:{}", short(&i.path)),
                            Encoding::Text,
                        );
                    }
                }
            }
            Body::Xml(items) => {
                for i in items {
                    self.scan(
                        c,
                        &i.text,
                        targets::DOC,
                        &|| format!("xml:{}", short(&i.path)),
                        Encoding::Text,
                    );
                }
                self.scan_xml_declarations(&req.body, c);
            }
            Body::Multipart(parts) => {
                for p in parts {
                    self.scan(
                        c,
                        &p.name,
                        targets::NAMES,
                        &|| format!("multipart_name:{}", short(&p.name)),
                        Encoding::Text,
                    );
                    let data = String::from_utf8_lossy(&p.data);
                    match &p.filename {
                        Some(f) => {
                            self.scan(
                                c,
                                f,
                                targets::FILENAME,
                                &|| format!("filename:{}", short(&p.name)),
                                Encoding::Text,
                            );
                            self.scan_file(c, p);
                        }
                        None if is_text(&p.data) => {
                            self.scan(
                                c,
                                &data,
                                targets::ARGS,
                                &|| format!("multipart:{}", short(&p.name)),
                                Encoding::Text,
                            );
                        }
                        None => self.scan(
                            c,
                            &data,
                            targets::FILE,
                            &|| format!("multipart:{}", short(&p.name)),
                            Encoding::Text,
                        ),
                    }
                }
            }
            Body::Raw => {
                let text = String::from_utf8_lossy(&req.body);
                let target = if is_text(&req.body) {
                    targets::BODY
                } else {
                    targets::FILE
                };
                self.scan(c, &text, target, &|| "body".into(), Encoding::Text);
            }
        }
    }

    /// The inspected bytes of an uploaded file (its head, and its tail when
    /// it is longer than `max_file_inspect`): the file-content rules, and
    /// the script checks of [`upload`].
    fn scan_file(&self, c: &mut Collector, p: &Part) {
        for (bytes, suffix) in [(&p.data, ""), (&p.tail, "(tail)")] {
            if bytes.is_empty() {
                continue;
            }
            let loc = || format!("file:{}{suffix}", short(&p.name));
            let text = String::from_utf8_lossy(bytes);
            self.scan(c, &text, targets::FILE, &loc, Encoding::Text);
            if let Some(hit) = upload::script(bytes, suffix.is_empty()) {
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

    /// DOCTYPE and ENTITY declarations are not values: look at the raw XML.
    fn scan_xml_declarations(&self, body: &[u8], c: &mut Collector) {
        if memchr::memmem::find(body, b"<!").is_none() {
            return;
        }
        let n = Normalized::new(&body[..body.len().min(64 * 1024)], false);
        if let Some(hit) = self.compiled.find("xxe-entity", &n) {
            let m = String::from_utf8_lossy(hit.matched);
            c.add(
                hit.rule.kind,
                hit.rule.id,
                hit.rule.severity,
                hit.rule.paranoia,
                "body",
                &m,
                "",
            );
        }
    }

    /// Normalizes one value and runs every check that applies to `target`.
    fn scan(
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
        // Binary data (compressed blobs in JSON strings...) only meets the
        // few rules meant for file contents. Values of the request line and
        // headers are never binary: a raw NUL there is an evasion.
        let target =
            if raw.len() >= 32 && target & (targets::DOC | targets::BODY) != 0 && !is_text(raw) {
                targets::FILE
            } else {
                target
            };
        let plain = is_plain(raw)
            || (target == targets::HEADERS && is_quiet_header(raw))
            || (target == targets::UA_REF && is_quiet_user_agent(raw));
        let n = if plain {
            Normalized::plain(raw)
        } else {
            Normalized::new(raw, enc == Encoding::Form)
        };
        let mut location: Option<String> = None;
        let at = |location: &mut Option<String>| location.get_or_insert_with(loc).clone();
        if !plain {
            self.encoding_findings(c, &n, target, enc, &mut || at(&mut location), value);
        }
        self.compiled.scan(bit(target), &n, plain, &mut |hit| {
            let m = String::from_utf8_lossy(hit.matched);
            let l = at(&mut location);
            c.add(
                hit.rule.kind,
                hit.rule.id,
                hit.rule.severity,
                hit.rule.paranoia,
                &l,
                &m,
                value,
            );
        });
        if self.operator.has_keywords() {
            let low = String::from_utf8_lossy(&n.low);
            let hits: Vec<(String, u32, String)> = self
                .operator
                .keywords(&low)
                .map(|(i, w, m)| (i.to_owned(), w, m.to_owned()))
                .collect();
            for (id, w, m) in hits {
                let l = at(&mut location);
                c.weigh(&id, i64::from(w), &l, &m);
            }
        }
        if plain {
            return;
        }
        if enc != Encoding::Base64 {
            self.tokenizers(c, &n, target, &mut || at(&mut location), value);
        }
        if target & (targets::ARGS | targets::NAMES | targets::BODY | targets::DOC) != 0
            && let Some((class, host)) = ssrf::check(&n.low)
        {
            let l = at(&mut location);
            c.add(
                Kind::Ssrf,
                class.rule(),
                class.severity(self.cfg.paranoia),
                1,
                &l,
                &host,
                value,
            );
        }
        if target & (targets::ARGS | targets::DOC) != 0
            && let Some(host) = ssrf::public_ip_url(&n.low)
        {
            let l = at(&mut location);
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
        match log4shell::check(&n.low) {
            Some(log4shell::Lookup::Jndi(m)) => {
                let l = at(&mut location);
                c.add(
                    Kind::Log4shell,
                    "log4shell-jndi",
                    Severity::Critical,
                    1,
                    &l,
                    &m,
                    value,
                );
            }
            Some(log4shell::Lookup::Data(m)) => {
                let l = at(&mut location);
                c.add(
                    Kind::Log4shell,
                    "log4shell-lookup",
                    Severity::Error,
                    1,
                    &l,
                    &m,
                    value,
                );
            }
            None => {}
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
    }

    /// Findings about how a value was encoded.
    fn encoding_findings(
        &self,
        c: &mut Collector,
        n: &Normalized,
        target: u16,
        enc: Encoding,
        loc: &mut dyn FnMut() -> String,
        value: &str,
    ) {
        let f = &n.flags;
        let strict = target
            & (targets::ARGS | targets::NAMES | targets::PATH | targets::HEADERS | targets::UA_REF)
            != 0;
        let k = Kind::Protocol;
        if f.null_byte && strict {
            let header = target & (targets::HEADERS | targets::UA_REF) != 0;
            let sev = if header {
                Severity::Error
            } else {
                Severity::Critical
            };
            c.add(k, "protocol-null-byte", sev, 1, &loc(), "\\0", value);
        }
        if f.overlong_meta {
            c.add(
                k,
                "protocol-overlong-utf8",
                Severity::Critical,
                1,
                &loc(),
                "overlong UTF-8",
                value,
            );
        } else if f.overlong && matches!(enc, Encoding::Form | Encoding::Url) {
            c.add(
                k,
                "protocol-overlong-utf8-other",
                Severity::Warning,
                1,
                &loc(),
                "overlong UTF-8",
                value,
            );
        }
        if matches!(enc, Encoding::Form | Encoding::Url) {
            if f.invalid_percent {
                c.add(
                    k,
                    "protocol-invalid-url-encoding",
                    Severity::Warning,
                    1,
                    &loc(),
                    "%",
                    value,
                );
            }
            if f.fullwidth {
                c.add(
                    k,
                    "protocol-unicode-fullwidth",
                    Severity::Warning,
                    1,
                    &loc(),
                    "%uFFxx",
                    value,
                );
            }
            if f.percent_u_ascii {
                c.add(
                    k,
                    "protocol-percent-u-ascii",
                    Severity::Error,
                    1,
                    &loc(),
                    "%u00xx",
                    value,
                );
            }
        }
        if f.control && strict {
            c.add(
                k,
                "protocol-control-character",
                Severity::Warning,
                2,
                &loc(),
                "control character",
                value,
            );
        }
    }

    /// libinjection's SQL and HTML5 tokenizers.
    fn tokenizers(
        &self,
        c: &mut Collector,
        n: &Normalized,
        target: u16,
        loc: &mut dyn FnMut() -> String,
        value: &str,
    ) {
        let sql_targets = targets::ARGS
            | targets::NAMES
            | targets::UA_REF
            | targets::BODY
            | targets::FILENAME
            | targets::DOC;
        let in_path = target == targets::PATH;
        // JavaScript source in JSON documents (error reports, replay
        // beacons) is code by design: the SQL tokenizer misreads it.
        // The budget is checked before the prefilter: past it, even the
        // prefilter costs too much on large bodies.
        let js_source = target == targets::DOC && n.low.trim_ascii_start().starts_with(b"function");
        if (target & sql_targets != 0 || (in_path && n.dec.contains(&b'\'')))
            && !js_source
            && c.has_tokenizer_budget(n.dec.len())
            && libinj::sqli_candidate(&n.low)
            && c.take_tokenizer_budget(n.dec.len())
        {
            match libinj::sqli(&n.dec) {
                Outcome::Injection(fp) => {
                    let m = format!(
                        "(fingerprint {fp}) {}",
                        String::from_utf8_lossy(&n.dec[..n.dec.len().min(80)])
                    );
                    c.add(
                        Kind::Sqli,
                        "sqli-libinjection",
                        libinj::severity(&fp, &n.dec),
                        1,
                        &loc(),
                        &m,
                        value,
                    );
                }
                Outcome::Failed => c.add(
                    Kind::Sqli,
                    "sqli-libinjection-error",
                    Severity::Warning,
                    1,
                    &loc(),
                    "",
                    value,
                ),
                Outcome::Clean => {}
            }
        }
        let short = n.dec.len() <= XSS_TOKENIZER_MAX;
        if short
            && (target & sql_targets != 0 || (in_path && n.dec.contains(&b'<')))
            && c.has_tokenizer_budget(n.dec.len())
            && libinj::xss_candidate(&n.dec)
            && c.take_tokenizer_budget(n.dec.len())
        {
            match libinj::xss(&n.dec) {
                Outcome::Injection(_) => {
                    let m = String::from_utf8_lossy(&n.dec[..n.dec.len().min(80)]).into_owned();
                    c.add(
                        Kind::Xss,
                        "xss-libinjection",
                        Severity::Critical,
                        1,
                        &loc(),
                        &m,
                        value,
                    );
                }
                Outcome::Failed => c.add(
                    Kind::Xss,
                    "xss-libinjection-error",
                    Severity::Warning,
                    1,
                    &loc(),
                    "",
                    value,
                ),
                Outcome::Clean => {}
            }
        }
    }
}

/// Whether a raw path segment, once decoded, holds a character file and
/// directory names do not: quotes, shell and code punctuation (`; | $ < >
/// { } ( )` and the backtick), a backslash or whitespace.
fn segment_is_code_like(segment: &str) -> bool {
    const LOUD: [bool; 256] = normalize::byte_set(b"'\";|$<>{}()`\\ \t\n\r");
    let loud = |b: &[u8]| b.iter().any(|&c| LOUD[usize::from(c)]);
    let b = segment.as_bytes();
    loud(b)
        || (b.contains(&b'%')
            && loud(&normalize::decode(
                b,
                false,
                &mut normalize::Flags::default(),
            )))
}

/// Whether a header value holds nothing the full rule set cares about:
/// none of `$ { } < > ' ` \ % | & [ ] ^ ~` nor a line break, and no `--`,
/// `..` or `/*` (Accept, Sec-Ch-Ua, Cache-Control...). Such values meet the
/// plain rules only.
fn is_quiet_header(b: &[u8]) -> bool {
    const LOUD: [bool; 256] = normalize::byte_set(b"${}<>'`\\%|&[]^~\n\r");
    // `*/*` (Accept) is no comment.
    !b.iter().any(|&c| LOUD[usize::from(c)])
        && !normalize::has_pair(b, b'-', b'-')
        && !normalize::has_pair(b, b'.', b'.')
        && !memchr::memchr_iter(b'/', b)
            .any(|i| b.get(i + 1) == Some(&b'*') && (i == 0 || b[i - 1] != b'*'))
}

/// A browser-like User-Agent: quiet as a header, no quotes or `=`, no SQL
/// word. Such values meet the plain rules only.
fn is_quiet_user_agent(b: &[u8]) -> bool {
    is_quiet_header(b)
        && !b.iter().any(|c| matches!(c, b'\'' | b'"' | b'=' | b'#'))
        && !libinj::has_sql_word(b)
        && b.starts_with(b"Mozilla/")
}

/// The part of a raw parameter name after its first encoded `=` (`%3D`).
fn encoded_value_tail(raw_name: &str) -> Option<&str> {
    let b = raw_name.as_bytes();
    let i = b
        .windows(3)
        .position(|w| w[0] == b'%' && w[1] == b'3' && (w[2] == b'D' || w[2] == b'd'))?;
    Some(&raw_name[i + 3..]).filter(|t| !t.is_empty())
}
