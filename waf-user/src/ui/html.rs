//! HTML for the dashboard: escaping (every value from outside goes through
//! [`esc`]), the page frame (navigation, the session's CSRF token for the
//! script, the last action's message), and small pieces the pages share.
//! No inline script or style: the CSP allows only `/ui/static/`.

use std::fmt::Write as _;

use axum::response::{Html, IntoResponse, Response};

/// Escapes text for an HTML element or a quoted attribute.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The pages of the navigation bar: path and title.
const NAV: &[(&str, &str)] = &[
    ("/ui", "Overview"),
    ("/ui/bans", "Bans"),
    ("/ui/findings", "Detections"),
    ("/ui/lists", "Lists"),
    ("/ui/modes", "Modes"),
];

/// What frames a page: its title, where it sits in the navigation, the
/// session's CSRF token, and the message the last action left.
pub struct Frame<'a> {
    /// The page's title.
    pub title: &'a str,
    /// Its path in [`NAV`].
    pub nav: &'a str,
    /// The session's CSRF token.
    pub csrf: &'a str,
    /// The last action's message (`true`: it succeeded).
    pub flash: Option<(bool, String)>,
}

impl Frame<'_> {
    /// The whole page around `body` (which the caller built escaped).
    pub fn render(&self, body: &str) -> Response {
        let mut h = String::with_capacity(body.len() + 2048);
        let _ = write!(
            h,
            "<!doctype html><html lang=en><head><meta charset=utf-8>\
             <meta name=viewport content=\"width=device-width, initial-scale=1\">\
             <meta name=csrf-token content=\"{}\">\
             <title>{} · waf</title>\
             <link rel=stylesheet href=\"/ui/static/ui.css\">\
             <script src=\"/ui/static/ui.js\" defer></script></head><body>\
             <header><span class=brand>waf</span><nav>",
            esc(self.csrf),
            esc(self.title)
        );
        for (path, name) in NAV {
            let cls = if *path == self.nav {
                " class=active"
            } else {
                ""
            };
            let _ = write!(h, "<a href=\"{path}\"{cls}>{name}</a>");
        }
        let _ = write!(
            h,
            "</nav><form method=post action=\"/ui/logout\" class=logout>{}\
             <button type=submit>Log out</button></form></header><main>",
            csrf_field(self.csrf)
        );
        if let Some((ok, msg)) = &self.flash {
            let cls = if *ok { "flash ok" } else { "flash err" };
            let _ = write!(h, "<p class=\"{cls}\" role=status>{}</p>", esc(msg));
        }
        let _ = write!(h, "<h1>{}</h1>{body}</main></body></html>", esc(self.title));
        Html(h).into_response()
    }
}

/// The hidden CSRF field of a form.
pub fn csrf_field(csrf: &str) -> String {
    format!("<input type=hidden name=csrf value=\"{}\">", esc(csrf))
}

/// A form that posts `fields` (hidden) to `action` behind one button.
pub fn button_form(action: &str, csrf: &str, fields: &[(&str, &str)], label: &str) -> String {
    let mut h = format!("<form method=post action=\"{}\" class=inline>", esc(action));
    h.push_str(&csrf_field(csrf));
    for (k, v) in fields {
        let _ = write!(
            h,
            "<input type=hidden name=\"{}\" value=\"{}\">",
            esc(k),
            esc(v)
        );
    }
    let _ = write!(h, "<button type=submit>{}</button></form>", esc(label));
    h
}

/// The login page (no session yet: no navigation).
pub fn login_page(login_csrf: &str, error: Option<&str>) -> String {
    let err = error
        .map(|e| format!("<p class=\"flash err\" role=alert>{}</p>", esc(e)))
        .unwrap_or_default();
    format!(
        "<!doctype html><html lang=en><head><meta charset=utf-8>\
         <meta name=viewport content=\"width=device-width, initial-scale=1\">\
         <title>Log in · waf</title><link rel=stylesheet href=\"/ui/static/ui.css\">\
         </head><body class=login><main><h1>waf dashboard</h1>{err}\
         <form method=post action=\"/ui/login\" id=login>\
         <input type=hidden name=csrf value=\"{}\">\
         <label>API token <input type=password name=token id=token autocomplete=off \
         required autofocus></label>\
         <button type=submit>Log in</button></form>\
         <p class=hint>The token is in <code>state_dir/api.token</code> (or <code>[api] token</code>).</p>\
         </main></body></html>",
        esc(login_csrf)
    )
}

/// A Unix time as `2026-12-04 10:00:00Z` (UTC).
pub fn time(unix: u64) -> String {
    crate::values::rfc3339(unix).replace('T', " ")
}

/// Seconds as `3d 4h`, `12m 5s`, `40s`.
pub fn span(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}
