//! The lists page (allowlist and blocklist: config entries read-only, API
//! entries with a remove button, a form to add) and the modes page
//! (monitor and emergency, each switched after a page that says what will
//! happen). Every write goes through the API's own handlers.

use std::fmt::Write as _;

use axum::{
    Extension, Json,
    extract::{Path, Query, RawQuery, State},
    http::StatusCode,
    response::Response,
};

use super::{
    Form, Ui, done, error_text, frame,
    html::{button_form, csrf_field, esc, time},
    session::Session,
};
use crate::api::{
    ApiError, Body,
    bans::PageQuery,
    lists as api_lists, status,
    types::{Addr, Comment, ListPage, ListRequest, ModeRequest},
};

/// Entries of a list shown per page.
const PAGE: usize = 200;

/// Which list a form names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Which {
    Allow,
    Block,
}

impl Which {
    fn of(s: &str) -> Option<Self> {
        match s {
            "allow" => Some(Self::Allow),
            "block" => Some(Self::Block),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Block => "block",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Self::Allow => "Allowlist",
            Self::Block => "Blocklist",
        }
    }
}

async fn list_page(ui: &Ui, which: Which, after: Option<String>) -> Result<ListPage, ApiError> {
    let q = Ok(Query(PageQuery {
        limit: Some(PAGE),
        after,
    }));
    let s = State(ui.api.clone());
    let Json(p) = match which {
        Which::Allow => api_lists::list_allow(s, q).await?,
        Which::Block => api_lists::list_block(s, q).await?,
    };
    Ok(p)
}

/// `GET /ui/lists?allow_after=&block_after=`.
pub async fn page(
    State(ui): State<Ui>,
    Extension(s): Extension<Session>,
    RawQuery(raw): RawQuery,
) -> Response {
    let q = Form::parse(raw.unwrap_or_default().as_bytes());
    let mut b = String::new();
    for which in [Which::Allow, Which::Block] {
        let key = format!("{}_after", which.name());
        let after = Some(q.text(&key).to_string()).filter(|a| !a.is_empty());
        let _ = write!(b, "<section><h2>{}</h2>", which.title());
        match list_page(&ui, which, after).await {
            Err(e) => {
                let _ = write!(b, "<p class=\"flash err\">{}</p>", esc(&error_text(e)));
            }
            Ok(p) => {
                let _ = write!(
                    b,
                    "<p class=hint>{} in all</p><table id={}list><thead><tr><th>Network</th>\
                     <th>Origin</th><th>Comment</th><th>Added</th><th></th></tr></thead><tbody>",
                    p.total,
                    which.name()
                );
                for e in &p.entries {
                    let action = if e.origin == "api" {
                        button_form(
                            "/ui/lists/remove",
                            &s.csrf,
                            &[("list", which.name()), ("cidr", &e.cidr)],
                            "Remove",
                        )
                    } else {
                        "<span class=hint>read-only: from the config</span>".into()
                    };
                    let _ = write!(
                        b,
                        "<tr data-cidr=\"{c}\"><td class=mono>{c}</td><td>{}</td><td>{}</td>\
                         <td>{}</td><td>{action}</td></tr>",
                        esc(&e.origin),
                        esc(&e.comment),
                        e.created.map(time).unwrap_or_default(),
                        c = esc(&e.cidr),
                    );
                }
                b.push_str("</tbody></table>");
                if let Some(n) = &p.next {
                    let _ = write!(
                        b,
                        "<p class=pager><a href=\"/ui/lists?{key}={}\">next page</a></p>",
                        esc(&super::form::encode(n))
                    );
                }
            }
        }
        let _ = write!(
            b,
            "<form method=post action=\"/ui/lists/add\" class=add id={n}-form>{}\
             <input type=hidden name=list value={n}>\
             <label>Network <input name=cidr required placeholder=\"192.0.2.10 or 203.0.113.0/24\"></label>\
             <label>Comment <input name=comment size=24></label>\
             <button type=submit>Add to the {l}</button></form></section>",
            csrf_field(&s.csrf),
            n = which.name(),
            l = which.title().to_lowercase(),
        );
    }
    b.push_str(
        "<p class=hint>Adding an allowlist entry lifts the bans it covers; a blocklist \
         entry inside the allowlist is refused. Config entries change with the config \
         file and a reload.</p>",
    );
    frame(&ui, &s, "Allow and block lists", "/ui/lists").render(&b)
}

/// `POST /ui/lists/add`: `list` (allow or block), `cidr`, `comment`.
pub async fn add(
    State(ui): State<Ui>,
    Extension(s): Extension<Session>,
    Extension(f): Extension<Form>,
) -> Response {
    let result = match Which::of(f.text("list")) {
        None => Err("400 — list: allow or block".to_string()),
        Some(which) => {
            let req = ListRequest {
                cidr: Addr(f.text("cidr").to_string()),
                comment: Comment(f.text("comment").to_string()),
            };
            let st = State(ui.api.clone());
            match which {
                Which::Allow => api_lists::add_allow(st, Body(req)).await,
                Which::Block => api_lists::add_block(st, Body(req)).await,
            }
            .map(|(_, Json(e))| format!("added {} to the {}", e.cidr, which.title()))
            .map_err(error_text)
        }
    };
    done(&ui, &s, result, "/ui/lists")
}

/// `POST /ui/lists/remove`: `list` and `cidr` (API entries only).
pub async fn remove(
    State(ui): State<Ui>,
    Extension(s): Extension<Session>,
    Extension(f): Extension<Form>,
) -> Response {
    let result = match Which::of(f.text("list")) {
        None => Err("400 — list: allow or block".to_string()),
        Some(which) => {
            let st = State(ui.api.clone());
            let cidr = Path(f.text("cidr").to_string());
            match which {
                Which::Allow => api_lists::delete_allow(st, cidr).await,
                Which::Block => api_lists::delete_block(st, cidr).await,
            }
            .map(|Json(r)| format!("removed {} from the {}", r.removed, which.title()))
            .map_err(error_text)
        }
    };
    done(&ui, &s, result, "/ui/lists")
}

/// What switching a mode does, in words.
fn consequence(mode: &str, on: bool) -> Option<&'static str> {
    Some(match (mode, on) {
        ("monitor", true) => {
            "Monitor mode: the XDP program stops dropping. Bans, the blocklist, rate limits, \
             source policies and emergency mode are only counted (\"would drop\"); every \
             packet passes."
        }
        ("monitor", false) => {
            "Enforcing again: banned, blocklisted, rate-limited and policy-matched packets \
             are dropped from now on."
        }
        ("emergency", true) => {
            "Emergency mode: every packet from a source that is not on the allowlist is \
             dropped, this dashboard's users included unless they are allowlisted. It is \
             refused while the allowlist is empty."
        }
        ("emergency", false) => {
            "Emergency mode off: sources outside the allowlist are let in again (bans, lists \
             and limits still apply)."
        }
        _ => return None,
    })
}

/// `GET /ui/modes`.
pub async fn modes(State(ui): State<Ui>, Extension(s): Extension<Session>) -> Response {
    let m = ui.api.fw.view().modes;
    let v = ui.api.fw.view();
    let mut b = format!(
        "<table class=kv><tbody><tr><th>Monitor</th><td id=mode-monitor>{}</td></tr>\
         <tr><th>Emergency</th><td id=mode-emergency>{}</td></tr>\
         <tr><th>Allowlist entries</th><td>{}</td></tr></tbody></table><p>",
        if m.monitor { "on" } else { "off" },
        if m.emergency { "on" } else { "off" },
        v.allow_config.len() + v.allow_api.len(),
    );
    for (mode, now) in [("monitor", m.monitor), ("emergency", m.emergency)] {
        let _ = write!(
            b,
            "<a class=button href=\"/ui/modes/confirm?mode={mode}&amp;on={}\">Turn {mode} {}</a> ",
            u8::from(!now),
            if now { "off" } else { "on" }
        );
    }
    b.push_str("</p>");
    frame(&ui, &s, "Modes", "/ui/modes").render(&b)
}

/// `GET /ui/modes/confirm?mode=&on=`: what will happen, and the button.
pub async fn confirm_mode(
    State(ui): State<Ui>,
    Extension(s): Extension<Session>,
    RawQuery(raw): RawQuery,
) -> Response {
    let q = Form::parse(raw.unwrap_or_default().as_bytes());
    let (mode, on) = (q.text("mode"), q.text("on") == "1");
    let Some(what) = consequence(mode, on) else {
        return done(
            &ui,
            &s,
            Err("400 — mode: monitor or emergency".into()),
            "/ui/modes",
        );
    };
    let title = format!("Turn {mode} {}?", if on { "on" } else { "off" });
    let mut b = format!("<p class=confirm>{}</p>", esc(what));
    if mode == "emergency" && on && ui.api.fw.view().allow_is_empty() {
        b.push_str(
            "<p class=\"flash err\">The allowlist is empty: the firewall will refuse this.</p>",
        );
    }
    b.push_str(&button_form(
        "/ui/modes",
        &s.csrf,
        &[("mode", mode), ("on", if on { "1" } else { "0" })],
        &format!("Yes, turn {mode} {}", if on { "on" } else { "off" }),
    ));
    b.push_str(" <a href=\"/ui/modes\">Cancel</a>");
    frame(&ui, &s, &title, "/ui/modes").render(&b)
}

/// `POST /ui/modes`: `mode` and `on`, through `PUT /v1/mode`'s handler
/// (emergency with an empty allowlist refused, never forced from here).
pub async fn set_mode(
    State(ui): State<Ui>,
    Extension(s): Extension<Session>,
    Extension(f): Extension<Form>,
) -> Response {
    let on = f.text("on") == "1";
    let req = match f.text("mode") {
        "monitor" => Some(ModeRequest {
            monitor: Some(on),
            emergency: None,
            force: false,
        }),
        "emergency" => Some(ModeRequest {
            monitor: None,
            emergency: Some(on),
            force: false,
        }),
        _ => None,
    };
    let result = match req {
        None => Err(format!(
            "{} — mode: monitor or emergency",
            StatusCode::BAD_REQUEST.as_u16()
        )),
        Some(req) => status::set_mode(State(ui.api.clone()), Body(req))
            .await
            .map(|Json(m)| {
                format!(
                    "monitor {} · emergency {}",
                    if m.monitor { "on" } else { "off" },
                    if m.emergency { "on" } else { "off" }
                )
            })
            .map_err(error_text),
    };
    done(&ui, &s, result, "/ui/modes")
}
