//! The bans page: a page of bans at a time (the view's cursor, never the
//! whole table), a search by address or prefix (the bans inside it and
//! those covering it, with the source's escalation record) or by reason (a
//! bounded scan), and forms to ban, lift and extend through the API's own
//! handlers. Its script polls `GET /ui/bans.json` with the same query, so a
//! ban made elsewhere shows up without a reload.

use std::{fmt::Write as _, ops::Bound};

use axum::{
    Extension, Json,
    extract::{Path, RawQuery, State},
    http::StatusCode,
    response::Response,
};
use ipnet::IpNet;
use serde::Serialize;
use serde_json::json;

use super::{
    Form, Ui, done, frame,
    html::{button_form, csrf_field, esc, span, time},
    session::Session,
};
use crate::{
    api::{
        Body,
        bans::addr,
        types::{BanRequest, BanView},
    },
    firewall::{Ban, View},
    values::{parse_net, show_net},
};

/// Rows of a page unless the query says otherwise.
const PAGE: usize = 50;
/// Rows of a page at most.
const MAX_PAGE: usize = 500;
/// Bans a reason search reads at most for one page (then it offers to go
/// on from where it stopped).
pub const SCAN_CAP: usize = 100_000;

/// What a page asks for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Query {
    /// An address or prefix, or text to find in reasons ("" for all).
    pub q: String,
    /// Start after this ban.
    pub after: Option<IpNet>,
    /// Rows.
    pub limit: usize,
}

impl Query {
    /// Reads a query string; what does not parse is left at its default.
    pub fn parse(raw: &str) -> Self {
        let f = Form::parse(raw.as_bytes());
        Query {
            q: f.text("q").chars().take(256).collect(),
            after: parse_net(f.text("after")).ok(),
            limit: f
                .text("limit")
                .parse()
                .map_or(PAGE, |l: usize| l.clamp(1, MAX_PAGE)),
        }
    }

    /// The query string of this search starting after `after`.
    pub fn link(&self, after: Option<&IpNet>) -> String {
        let mut s = format!(
            "/ui/bans?q={}&limit={}",
            super::form::encode(&self.q),
            self.limit
        );
        if let Some(a) = after {
            let _ = write!(s, "&after={}", super::form::encode(&show_net(a)));
        }
        s
    }
}

/// What a search found.
#[derive(Debug, Default, Serialize)]
pub struct Found {
    /// The bans of the page, in address order.
    pub bans: Vec<BanView>,
    /// Bans wider than the prefix searched that cover it.
    pub covering: Vec<BanView>,
    /// The searched source's escalation record (not banned now).
    pub history: Option<serde_json::Value>,
    /// Where the next page starts.
    pub next: Option<String>,
    /// Bans in force in all.
    pub total: u64,
    /// Bans read for this page (reason searches).
    pub scanned: usize,
    /// What kind of search it was: `all`, `prefix` or `reason`.
    pub kind: &'static str,
}

/// The first possible key at or after `net`'s first address.
fn start_of(net: &IpNet) -> IpNet {
    IpNet::new(net.network(), 0).unwrap_or(*net)
}

/// Runs a search on the view: at most `limit` bans and, for a reason,
/// at most [`SCAN_CAP`] read.
pub fn search(view: &View, q: &Query) -> Found {
    let mut found = Found {
        total: view.counts.total(),
        ..Found::default()
    };
    let views = |v: &[Ban]| v.iter().map(BanView::from).collect::<Vec<_>>();
    if q.q.is_empty() {
        let (bans, next) = view.bans_page(q.after, q.limit);
        found.kind = "all";
        found.bans = views(&bans);
        found.next = next.map(|n| show_net(&n));
        return found;
    }
    let from = |start: Bound<IpNet>| view.bans.range((start, Bound::Unbounded));
    if let Ok(net) = parse_net(&q.q) {
        found.kind = "prefix";
        let start = match q.after {
            Some(a) if a >= start_of(&net) => Bound::Excluded(a),
            _ => Bound::Included(start_of(&net)),
        };
        let mut it = from(start)
            .take_while(|(n, _)| net.contains(&n.network()))
            .filter(|(n, _)| n.prefix_len() >= net.prefix_len())
            .peekable();
        let mut page = Vec::new();
        while page.len() < q.limit {
            let Some((n, m)) = it.next() else { break };
            page.push(Ban {
                net: *n,
                meta: m.clone(),
            });
        }
        found.next = it.peek().and(page.last()).map(|b| show_net(&b.net));
        found.bans = views(&page);
        let covering: Vec<Ban> = (0..net.prefix_len())
            .filter_map(|len| IpNet::new(net.addr(), len).ok())
            .filter_map(|n| view.ban(&n.trunc()))
            .collect();
        found.covering = views(&covering);
        found.history = view.history.get(&net).map(|o| {
            json!({
                "offences": o.count,
                "last_end": (o.last_end != 0).then(|| time(u64::from(o.last_end))),
                "recent": o.recent.iter().filter(|&&t| t != 0)
                    .map(|&t| time(u64::from(t))).collect::<Vec<_>>(),
            })
        });
        return found;
    }
    found.kind = "reason";
    let needle = Needle::new(&q.q);
    let start = q.after.map_or(Bound::Unbounded, Bound::Excluded);
    let mut page = Vec::new();
    let mut last = None;
    for (n, m) in from(start).take(SCAN_CAP) {
        found.scanned += 1;
        last = Some(*n);
        if needle.found_in(&m.reason) {
            page.push(Ban {
                net: *n,
                meta: m.clone(),
            });
            if page.len() == q.limit {
                break;
            }
        }
    }
    let more = last.is_some_and(|l| {
        view.bans
            .range((Bound::Excluded(l), Bound::Unbounded))
            .next()
            .is_some()
    });
    found.next = last.filter(|_| more).map(|l| show_net(&l));
    found.bans = views(&page);
    found
}

/// Text searched for in reasons, whatever its case.
struct Needle {
    lower: String,
}

impl Needle {
    fn new(text: &str) -> Needle {
        Needle {
            lower: text.to_lowercase(),
        }
    }

    /// Whether `hay` holds the text, compared in lower case. ASCII reasons
    /// (nearly all) are compared in place, a bounded scan of a million
    /// bans allocating nothing; others as lowercased copies.
    fn found_in(&self, hay: &str) -> bool {
        let n = self.lower.as_bytes();
        if hay.is_ascii() && self.lower.is_ascii() {
            return n.is_empty()
                || hay
                    .as_bytes()
                    .windows(n.len())
                    .any(|w| w.eq_ignore_ascii_case(n));
        }
        hay.to_lowercase().contains(&self.lower)
    }
}

/// A ban's row: address, reason, source, times, offence, and its forms.
fn row(b: &BanView, csrf: &str, back: &str) -> String {
    let source = match &b.origin {
        Some(o) => format!("{} ({o})", json!(b.source).as_str().unwrap_or("")),
        None => json!(b.source).as_str().unwrap_or("").to_string(),
    };
    let expires = match (&b.expires, b.remaining_s) {
        (Some(e), Some(r)) => format!("{} ({} left)", e.replace('T', " "), span(r)),
        _ => "permanent".into(),
    };
    let mut h = format!(
        "<tr data-addr=\"{a}\"><td class=mono>{a}</td><td>{}</td><td>{}</td><td>{}</td>\
         <td>{}</td><td>{}</td><td>",
        esc(&b.reason),
        esc(&source),
        esc(&b.created.replace('T', " ")),
        esc(&expires),
        b.offence,
        a = esc(&b.addr),
    );
    h.push_str(&button_form(
        "/ui/bans/remove",
        csrf,
        &[("addr", &b.addr), ("back", back)],
        "Lift",
    ));
    let _ = write!(
        h,
        "<form method=post action=\"/ui/bans/extend\" class=\"inline extend\">{}\
         <input type=hidden name=addr value=\"{}\"><input type=hidden name=back value=\"{}\">\
         <input name=duration value=24h size=5 aria-label=duration>\
         <input name=reason value=\"{}\" size=14 aria-label=reason>\
         <button type=submit>Extend</button></form></td></tr>",
        csrf_field(csrf),
        esc(&b.addr),
        esc(back),
        esc(&b.reason),
    );
    h
}

fn table(rows: &[BanView], csrf: &str, back: &str, id: &str) -> String {
    let mut h = format!(
        "<table id={id}><thead><tr><th>Address</th><th>Reason</th><th>Source</th>\
         <th>Created</th><th>Expires</th><th>Offence</th><th></th></tr></thead><tbody>"
    );
    for b in rows {
        h.push_str(&row(b, csrf, back));
    }
    h.push_str("</tbody></table>");
    h
}

/// `GET /ui/bans?q=&after=&limit=`.
pub async fn page(
    State(ui): State<Ui>,
    Extension(s): Extension<Session>,
    RawQuery(raw): RawQuery,
) -> Response {
    let q = Query::parse(raw.as_deref().unwrap_or(""));
    let found = search(&ui.api.fw.view(), &q);
    let back = q.link(q.after.as_ref());
    let mut b = format!(
        "<form method=get action=\"/ui/bans\" class=search>\
         <input name=q value=\"{}\" placeholder=\"address, prefix or reason\" size=30 \
         aria-label=search><input type=hidden name=limit value={}>\
         <button type=submit>Search</button> <a href=\"/ui/bans\">all</a></form>",
        esc(&q.q),
        q.limit
    );
    let _ = write!(
        b,
        "<p class=hint id=bans-summary>{} bans in force{}</p>",
        found.total,
        match found.kind {
            "reason" => format!(
                "; reasons read in {} bans for this page (at most {SCAN_CAP})",
                found.scanned
            ),
            "prefix" => "; bans inside this prefix".into(),
            _ => String::new(),
        }
    );
    b.push_str(&table(&found.bans, &s.csrf, &back, "bans"));
    let _ = write!(
        b,
        "<p class=pager><a href=\"{}\">first page</a> <a id=next-page href=\"{}\"{}>next page</a></p>",
        esc(&q.link(None)),
        esc(&found
            .next
            .as_deref()
            .and_then(|n| parse_net(n).ok())
            .map(|n| q.link(Some(&n)))
            .unwrap_or_default()),
        if found.next.is_some() { "" } else { " hidden" },
    );
    if !found.covering.is_empty() {
        b.push_str("<h2>Wider bans covering it</h2>");
        b.push_str(&table(&found.covering, &s.csrf, &back, "covering"));
    }
    if let Some(h) = &found.history {
        let _ = write!(
            b,
            "<h2>Escalation record</h2><p>{} offences; last ban ended {}; recent: {}</p>",
            h["offences"],
            esc(h["last_end"].as_str().unwrap_or("–")),
            esc(&h["recent"].to_string())
        );
    }
    let _ = write!(
        b,
        "<h2>Ban an address or prefix</h2>\
         <form method=post action=\"/ui/bans\" class=add id=ban-form>{}\
         <input type=hidden name=back value=\"{}\">\
         <label>Address <input name=addr required placeholder=\"198.51.100.7 or 2001:db8::/64\"></label>\
         <label>Duration <input name=duration size=8 placeholder=\"policy\"></label>\
         <label>Reason <input name=reason size=24 placeholder=manual></label>\
         <label><input type=checkbox name=force> wider than the policy allows</label>\
         <button type=submit>Ban</button></form>\
         <p class=hint>Duration: 90s, 10m, 24h, 7d, permanent, or empty for the ban \
         policy's escalating duration.</p>\
         <div id=bans-poll data-poll=\"{}\" hidden></div>",
        csrf_field(&s.csrf),
        esc(&back),
        esc(&back.replacen("/ui/bans?", "/ui/bans.json?", 1)),
    );
    frame(&ui, &s, "Bans", "/ui/bans").render(&b)
}

/// `GET /ui/bans.json?q=&after=&limit=`: the rows of the same search.
pub async fn json(State(ui): State<Ui>, RawQuery(raw): RawQuery) -> Json<Found> {
    let q = Query::parse(raw.as_deref().unwrap_or(""));
    Json(search(&ui.api.fw.view(), &q))
}

/// Where to go back after an action: a dashboard page, nothing else.
pub fn back(form: &Form, default: &str) -> String {
    let b = form.text("back");
    let safe = b.starts_with("/ui")
        && !b.starts_with("//")
        && b.bytes().all(|c| c.is_ascii_graphic() && c != b'\\');
    if safe {
        b.to_string()
    } else {
        default.to_string()
    }
}

/// A ban request from a form, read by the API's own types (durations,
/// reasons and their limits as the API checks them).
fn ban_request(f: &Form, default_reason: Option<&str>) -> Result<BanRequest, String> {
    let mut req = json!({"addr": f.text("addr"), "force": f.ticked("force")});
    match f.text("duration") {
        "" => {}
        d => req["duration"] = d.parse::<u64>().map_or_else(|_| json!(d), |n| json!(n)),
    }
    match (f.text("reason"), default_reason) {
        ("", None) => {}
        ("", Some(r)) | (r, _) => req["reason"] = json!(r),
    }
    serde_json::from_value(req).map_err(|e| e.to_string())
}

fn error_text(code: StatusCode, msg: &str) -> String {
    format!("{} — {msg}", code.as_u16())
}

/// `POST /ui/bans`: bans through `POST /v1/bans`'s handler.
pub async fn add(
    State(ui): State<Ui>,
    Extension(s): Extension<Session>,
    Extension(f): Extension<Form>,
) -> Response {
    let result = match ban_request(&f, None) {
        Ok(req) => crate::api::bans::add(State(ui.api.clone()), Body(req))
            .await
            .map(|(_, Json(b))| format!("banned {} ({})", b.addr, b.reason))
            .map_err(|e| error_text(e.0, &e.1)),
        Err(e) => Err(error_text(StatusCode::BAD_REQUEST, &e)),
    };
    done(&ui, &s, result, &back(&f, "/ui/bans"))
}

/// `POST /ui/bans/extend`: bans the address again for `duration` with
/// `reason` (the firewall replaces the ban), through the same handler.
pub async fn extend(
    State(ui): State<Ui>,
    Extension(s): Extension<Session>,
    Extension(f): Extension<Form>,
) -> Response {
    let exists = addr(f.text("addr"))
        .ok()
        .and_then(|n| ui.api.fw.view().ban(&n));
    let result = match exists {
        None => Err(error_text(
            StatusCode::NOT_FOUND,
            &format!("{} is not banned", f.text("addr")),
        )),
        Some(b) => match ban_request(&f, Some(&b.meta.reason)) {
            Ok(req) => crate::api::bans::add(State(ui.api.clone()), Body(req))
                .await
                .map(|(_, Json(b))| match b.expires.as_deref() {
                    Some(e) => format!("{} now banned until {e}", b.addr),
                    None => format!("{} now banned permanently", b.addr),
                })
                .map_err(|e| error_text(e.0, &e.1)),
            Err(e) => Err(error_text(StatusCode::BAD_REQUEST, &e)),
        },
    };
    done(&ui, &s, result, &back(&f, "/ui/bans"))
}

/// `POST /ui/bans/remove`: lifts through `DELETE /v1/bans/{addr}`'s
/// handler.
pub async fn remove(
    State(ui): State<Ui>,
    Extension(s): Extension<Session>,
    Extension(f): Extension<Form>,
) -> Response {
    let result = crate::api::bans::remove(State(ui.api.clone()), Path(f.text("addr").to_string()))
        .await
        .map(|Json(b)| format!("lifted the ban of {}", b.addr))
        .map_err(|e| error_text(e.0, &e.1));
    done(&ui, &s, result, &back(&f, "/ui/bans"))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::Needle;

    proptest! {
        #[test]
        fn a_reason_search_finds_what_lowercased_copies_would(
            hay in "[a-zA-Z0-9 :K\u{212a}\u{130}é-]{0,40}",
            needle in "[a-zA-Z :K\u{212a}é]{0,4}",
        ) {
            let want = hay.to_lowercase().contains(&needle.to_lowercase());
            prop_assert_eq!(Needle::new(&needle).found_in(&hay), want);
        }
    }

    #[test]
    fn a_reason_search_ignores_case() {
        assert!(Needle::new("SQLi").found_in("detection: sqli-union"));
        assert!(Needle::new("").found_in("anything"));
        assert!(!Needle::new("scanner").found_in("rate limit"));
    }
}
