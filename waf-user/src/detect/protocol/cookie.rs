//! Cookie smuggling: a cookie value that opens a double quote and closes
//! it after one or more `;` (`$Version=1; session="x; PHPSESSID=secret;
//! dummy=y"`). Servers that read RFC 2109 quoted values (Tomcat, Jetty
//! and Python's `http.cookies` among them, some only after a `$Version`)
//! take the cookies in between as part of that value: the "cookie
//! sandwich" that makes an application echo an HttpOnly session cookie
//! it reflects as another one, or hides a cookie from a WAF that splits
//! on `;`. No browser sends one: a `Set-Cookie` value ends at the first
//! `;`, so a stored value never holds one.

use super::K;
use crate::detect::collect::Collector;
use crate::detect::kind::Severity::Critical;
use crate::http::Request;

/// Adds a finding for each Cookie header whose quoted value spans a `;`.
pub(super) fn quoted_span(req: &Request, c: &mut Collector) {
    for h in req
        .headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("cookie"))
    {
        if let Some(span) = spanning_quote(&h.value) {
            c.add(
                K,
                "protocol-cookie-quoted-span",
                Critical,
                1,
                "header:cookie",
                span,
                &h.value,
            );
        }
    }
}

/// The first quoted cookie value of a Cookie header that holds a `;` and
/// another `name=` before its closing quote (a backslash before either
/// quote, as some clients escape them, is read as the quote).
fn spanning_quote(v: &str) -> Option<&str> {
    let mut rest = v;
    loop {
        let eq = rest.find('=')?;
        let value = rest[eq + 1..].trim_start_matches([' ', '\t']);
        let body = value.trim_start_matches('\\');
        if let Some(quoted) = body.strip_prefix('"')
            && let Some(close) = quoted.find('"')
        {
            let inner = &quoted[..close];
            if let Some(semi) = inner.find(';')
                && inner[semi + 1..].contains('=')
            {
                return Some(&value[..value.len() - quoted.len() + close + 1]);
            }
        }
        rest = &rest[eq + 1..];
        rest = &rest[rest.find(';')? + 1..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_quoted_values_that_swallow_cookies() {
        for v in [
            r#"$Version=1; session="deadbeef; PHPSESSID=secret; dummy=qaz""#,
            r#"$Version=1; session=\"deadbeef; PHPSESSID=secret; dummy=qaz\""#,
            r#"a=1; b="x;c=2""#,
            r#"theme=dark; lang= "en; admin=true""#,
        ] {
            assert!(spanning_quote(v).is_some(), "{v}");
        }
    }

    #[test]
    fn keeps_ordinary_cookies_quiet() {
        for v in [
            r#"session=deadbeef; PHPSESSID=secret"#,
            r#"a="quoted"; b="also quoted""#,
            r#"$Version="1"; name="value"; $Path="/""#,
            r#"prefs={"a":1,"b":"x"}; sid=abc"#,
            r#"msg="unclosed; next=2"#,
            r#"note="a; b"; c=1"#,
            r#"ga=GA1.2.3; _gid="GA1.2"; x=1"#,
        ] {
            assert!(spanning_quote(v).is_none(), "{v}");
        }
    }
}
