//! The detections page: the findings store's newest records with their
//! evidence (kind, location, rule, matched text, raw form, canonical path),
//! filters, and from a finding a drafted exclusion (rule x path x
//! parameter) or allowlist entry, shown as the config lines it stands for
//! and applied only after a confirmation, as a runtime entry through the
//! API's own handlers (`POST /v1/exclusions`, `POST /v1/allowlist`). The
//! runtime exclusions in force are listed apart, each with a remove button.

use std::fmt::Write as _;

use axum::{
    Extension, Json,
    extract::{Path, Query, RawQuery, State},
    response::Response,
};

use super::{
    Form, Ui, done, error_text, frame,
    html::{button_form, csrf_field, esc, time},
    session::Session,
};
use crate::{
    api::{
        Body,
        findings::{self as api_findings, DraftRequest, FindingsQuery},
    },
    findings::ExclusionSpec,
};

/// Findings a page shows.
const PAGE: usize = 50;

/// A query value, None when empty.
fn opt(q: &Form, name: &str) -> Option<String> {
    Some(q.text(name).trim().to_string()).filter(|v| !v.is_empty())
}

/// `GET /ui/findings?source&rule&kind&path&before`: a page of findings,
/// newest first, and the runtime exclusions.
pub async fn page(
    State(ui): State<Ui>,
    Extension(s): Extension<Session>,
    RawQuery(raw): RawQuery,
) -> Response {
    let q = Form::parse(raw.unwrap_or_default().as_bytes());
    let before = q.text("before").parse::<u64>().ok();
    let query = FindingsQuery {
        limit: Some(PAGE),
        before,
        source: opt(&q, "source"),
        rule: opt(&q, "rule"),
        path: opt(&q, "path"),
        kind: opt(&q, "kind"),
        since: None,
        verdict: opt(&q, "verdict"),
        origin: opt(&q, "origin"),
    };
    let mut b = String::new();
    let _ = write!(
        b,
        "<form method=get action=\"/ui/findings\" class=search>\
         <input name=source placeholder=\"source address\" value=\"{}\">\
         <input name=rule placeholder=rule value=\"{}\">\
         <input name=kind placeholder=\"kind (sqli, xss...)\" value=\"{}\">\
         <input name=path placeholder=\"path prefix\" value=\"{}\">\
         <select name=verdict>{}</select>\
         <select name=origin>{}</select>\
         <button type=submit>Filter</button> <a href=\"/ui/findings\">all</a></form>",
        esc(q.text("source")),
        esc(q.text("rule")),
        esc(q.text("kind")),
        esc(q.text("path")),
        options(
            &["block", "would_block", "pass"],
            q.text("verdict"),
            "any verdict"
        ),
        options(&["proxy", "mirror"], q.text("origin"), "proxy and mirror"),
    );
    match api_findings::list(State(ui.api.clone()), Ok(Query(query))).await {
        Err(e) => {
            let _ = write!(b, "<p class=\"flash err\">{}</p>", esc(&error_text(e)));
        }
        Ok(Json(p)) => {
            let _ = write!(
                b,
                "<table id=findings><thead><tr><th>Time</th><th>Source</th><th>Request</th>\
                 <th>Kind</th><th>Location</th><th>Rule</th><th>Matched</th><th>Raw</th>\
                 <th>Verdict</th><th>Seen by</th><th></th></tr></thead><tbody>"
            );
            for f in &p.findings {
                let _ = write!(
                    b,
                    "<tr data-id=\"{}\"><td>{}</td><td><code>{}</code></td><td>{} <code>{}</code></td>\
                     <td>{}</td><td><code>{}</code></td><td><code>{}</code></td>\
                     <td><code>{}</code></td><td><code>{}</code></td><td>{} ({})</td><td>{}{}</td>\
                     <td><a class=draft href=\"/ui/findings/{}/draft\">Draft exclusion</a></td></tr>",
                    f.id,
                    esc(&time(f.time_ms / 1000)),
                    esc(&f.source),
                    esc(&f.method),
                    esc(&f.path),
                    esc(&f.kind),
                    esc(&f.location),
                    esc(&f.rule),
                    esc(&f.snippet),
                    esc(&f.raw),
                    esc(&f.verdict),
                    f.score,
                    esc(&f.origin),
                    if f.repeats > 0 {
                        format!(
                            " <span class=hint title=\"like findings skipped by sampling since the last kept\">+{} alike</span>",
                            f.repeats
                        )
                    } else {
                        String::new()
                    },
                    f.id
                );
            }
            b.push_str("</tbody></table>");
            if p.findings.is_empty() {
                b.push_str("<p class=hint>No findings.</p>");
            }
            if let Some(next) = p.next {
                let mut more = format!("/ui/findings?before={next}");
                for k in ["source", "rule", "kind", "path", "verdict", "origin"] {
                    if let Some(v) = opt(&q, k) {
                        let _ = write!(more, "&{k}={}", super::form::encode(&v));
                    }
                }
                let _ = write!(b, "<p><a href=\"{}\">Older</a></p>", esc(&more));
            }
        }
    }
    exclusions(&ui, &s, &mut b).await;
    frame(&ui, &s, "Detections", "/ui/findings").render(&b)
}

/// A select's options: `any` (the empty value), then `values`, the one
/// equal to `current` selected.
fn options(values: &[&str], current: &str, any: &str) -> String {
    std::iter::once("")
        .chain(values.iter().copied())
        .map(|v| {
            format!(
                "<option value=\"{v}\"{}>{}</option>",
                if current == v { " selected" } else { "" },
                if v.is_empty() { any } else { v }
            )
        })
        .collect()
}

/// The runtime exclusions in force, each with a remove button.
async fn exclusions(ui: &Ui, s: &Session, b: &mut String) {
    let Json(list) = api_findings::list_exclusions(State(ui.api.clone())).await;
    b.push_str(
        "<h2>Exclusions</h2><table id=exclusions><thead><tr><th>Source</th><th>Rule</th>\
         <th>Path</th><th>Parameter</th><th>Comment</th><th></th></tr></thead><tbody>",
    );
    let any = |v: &Option<String>| v.clone().unwrap_or_else(|| "any".into());
    for e in &list.exclusions {
        let action = match e.id {
            Some(id) => button_form(
                "/ui/exclusions/remove",
                &s.csrf,
                &[("id", &id.to_string())],
                "Remove",
            ),
            None => "config file".into(),
        };
        let _ = write!(
            b,
            "<tr><td>{}</td><td><code>{}</code></td><td><code>{}</code></td>\
             <td><code>{}</code></td><td>{}</td><td>{action}</td></tr>",
            esc(&e.source),
            esc(&any(&e.rule)),
            esc(&any(&e.path)),
            esc(&any(&e.param)),
            esc(&e.comment)
        );
    }
    b.push_str("</tbody></table>");
}

/// `GET /ui/findings/{id}/draft?any_rule&any_path&any_param`: what an
/// exclusion of this finding would be, as config lines, with a button to
/// apply it at run time, and the allowlist entry instead. Nothing changes
/// until a button is pressed.
pub async fn draft(
    State(ui): State<Ui>,
    Extension(s): Extension<Session>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let q = Form::parse(raw.unwrap_or_default().as_bytes());
    let mut b = String::new();
    let Ok(finding) = id.parse::<u64>() else {
        let msg = format!("400 — `{}` is not a finding id", id.escape_debug());
        return done(&ui, &s, Err(msg), "/ui/findings");
    };
    let req = DraftRequest {
        finding,
        any_rule: q.ticked("any_rule"),
        any_path: q.ticked("any_path"),
        any_param: q.ticked("any_param"),
    };
    match api_findings::draft(State(ui.api.clone()), Body(req.clone())).await {
        Err(e) => return done(&ui, &s, Err(error_text(e)), "/ui/findings"),
        Ok(Json(d)) => {
            let x = &d.exclusion;
            let _ = write!(
                b,
                "<p>From finding {finding}. Widen it: \
                 <form method=get action=\"/ui/findings/{finding}/draft\" class=inline>\
                 <label><input type=checkbox name=any_rule value=on{}> any rule</label> \
                 <label><input type=checkbox name=any_path value=on{}> any path</label> \
                 <label><input type=checkbox name=any_param value=on{}> any parameter</label> \
                 <button type=submit>Redraft</button></form></p>\
                 <h2>Exclusion</h2><p>These lines in the config file would do the same; \
                 applying adds a runtime exclusion through the API (kept across restarts, \
                 listed apart; the config file is not written):</p><pre id=toml>{}</pre>\
                 <form method=post action=\"/ui/exclusions/add\" id=apply>{}",
                if req.any_rule { " checked" } else { "" },
                if req.any_path { " checked" } else { "" },
                if req.any_param { " checked" } else { "" },
                esc(&d.toml),
                csrf_field(&s.csrf)
            );
            for (k, v) in [("rule", &x.rule), ("path", &x.path), ("param", &x.param)] {
                if let Some(v) = v {
                    let _ = write!(b, "<input type=hidden name={k} value=\"{}\">", esc(v));
                }
            }
            let _ = write!(
                b,
                "<input type=hidden name=comment value=\"{}\">\
                 <button type=submit>Apply this exclusion</button></form>\
                 <h2>Or allowlist the source</h2><p><code>{}</code> would never be \
                 banned, rate-limited or dropped (the allowlist wins over bans, lists and \
                 limits).</p>{}",
                esc(&x.comment),
                esc(&d.allowlist.cidr),
                button_form(
                    "/ui/lists/add",
                    &s.csrf,
                    &[
                        ("list", "allow"),
                        ("cidr", &d.allowlist.cidr),
                        ("comment", &d.allowlist.comment)
                    ],
                    "Allowlist this source"
                )
            );
        }
    }
    frame(&ui, &s, "Draft an exclusion", "/ui/findings").render(&b)
}

/// `POST /ui/exclusions/add`: `rule`, `path`, `param`, `comment` through
/// `POST /v1/exclusions`'s handler.
pub async fn add(
    State(ui): State<Ui>,
    Extension(s): Extension<Session>,
    Extension(f): Extension<Form>,
) -> Response {
    let spec = ExclusionSpec {
        rule: opt(&f, "rule"),
        path: opt(&f, "path"),
        param: opt(&f, "param"),
        comment: f.text("comment").to_string(),
    };
    let result = api_findings::add(State(ui.api.clone()), Body(spec))
        .await
        .map(|(_, Json(e))| format!("exclusion {} in force from the next request", e.id))
        .map_err(error_text);
    done(&ui, &s, result, "/ui/findings")
}

/// `POST /ui/exclusions/remove`: `id` through `DELETE /v1/exclusions/{id}`.
pub async fn remove(
    State(ui): State<Ui>,
    Extension(s): Extension<Session>,
    Extension(f): Extension<Form>,
) -> Response {
    let result = api_findings::remove(State(ui.api.clone()), Path(f.text("id").to_string()))
        .await
        .map(|Json(e)| format!("removed exclusion {}", e.id))
        .map_err(error_text);
    done(&ui, &s, result, "/ui/findings")
}
