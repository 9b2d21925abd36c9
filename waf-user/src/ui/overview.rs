//! The overview (`GET /ui`) and what its script polls every second
//! (`GET /ui/live`): packets passed and dropped per second by verdict over
//! the last hour, the proxy's requests and the engine's inspections, the
//! top sources, paths, rules and categories of findings over the last hour
//! and five minutes (`findings::live`, in memory: no store scan), bans in
//! force, the last ban changes with the sources and reasons seen most among
//! them, alarms, modes and the fleet link.

use std::fmt::Write as _;

use axum::{
    Extension, Json,
    extract::{RawQuery, State},
    response::Response,
};
use serde_json::{Value, json};

use super::{
    Form, Ui, frame,
    html::{esc, span},
    samples::{self, INSPECTION, REQUESTS},
    session::Session,
};
use crate::{
    findings::live::{LiveTops, WindowTops},
    values::unix_now,
};

/// Changes the live list shows at most.
const LIVE_CHANGES: usize = 20;
/// Entries of each top list.
const TOPS: usize = 10;

/// The page: its numbers as the last sample had them; the script fills in
/// the charts and keeps everything current.
pub async fn page(State(ui): State<Ui>, Extension(s): Extension<Session>) -> Response {
    let v = ui.api.fw.view();
    let mut b = String::new();
    let modes = format!(
        "monitor {} · emergency {}",
        if v.modes.monitor { "on" } else { "off" },
        if v.modes.emergency { "on" } else { "off" }
    );
    let _ = write!(
        b,
        "<section class=cards>\
         <div class=card><span class=label>Dropped / s</span><span class=big data-live=cards.dropped>–</span></div>\
         <div class=card><span class=label>Passed / s</span><span class=big data-live=cards.passed>–</span></div>\
         <div class=card><span class=label>Bans in force</span><span class=big data-live=cards.bans>{}</span></div>\
         <div class=card><span class=label>Modes</span><span data-live=cards.modes>{}</span></div>\
         <div class=card><span class=label>Alarms</span><span data-live=cards.alarms>{}</span></div>\
         <div class=card><span class=label>Up</span><span data-live=cards.uptime>{}</span></div>\
         </section>",
        v.counts.total(),
        esc(&modes),
        v.alarms.len(),
        span(ui.api.started.elapsed().as_secs()),
    );
    b.push_str(
        "<section><h2>Dropped packets per second, by reason (last hour)</h2>\
         <canvas id=chart-dropped width=1100 height=200 class=chart></canvas>\
         <ul class=legend id=legend-dropped></ul></section>\
         <section><h2>Passed packets per second, by verdict (last hour)</h2>\
         <canvas id=chart-passed width=1100 height=200 class=chart></canvas>\
         <ul class=legend id=legend-passed></ul></section>\
         <section><h2>Proxy requests per second (last hour)</h2>\
         <canvas id=chart-requests width=1100 height=160 class=chart></canvas>\
         <ul class=legend id=legend-requests></ul>",
    );
    b.push_str("<table class=kv><tbody>");
    for (name, label) in REQUESTS.iter().zip(["received", "blocked", "challenged"]) {
        let _ = write!(
            b,
            "<tr><th>Requests {label}</th><td data-live=requests.{name}>–</td></tr>"
        );
    }
    for (name, label) in INSPECTION.iter().zip([
        "Requests inspected",
        "Requests that would be blocked (passive)",
        "Mirror: requests inspected",
        "Mirror: detections",
    ]) {
        let _ = write!(
            b,
            "<tr><th>{label}</th><td data-live=inspection.{name}>–</td></tr>"
        );
    }
    b.push_str("</tbody></table></section>");
    let tops = ui
        .api
        .findings
        .as_ref()
        .map(|f| f.live.tops(unix_now(), TOPS))
        .unwrap_or_default();
    findings_section(&mut b, &tops.hour);
    b.push_str(
        "<div class=columns><section><h2>Last ban changes</h2>\
         <table id=recent><thead><tr><th>When</th><th>What</th><th>Address</th>\
         <th>Reason</th><th>Source</th></tr></thead><tbody></tbody></table></section>\
         <section><h2>Top sources</h2><p class=hint>bans and strikes among the last 500 \
         changes</p><table id=top-sources><tbody></tbody></table>\
         <h2>Top ban reasons</h2><table id=top-reasons><tbody></tbody></table>\
         </section></div>",
    );
    if ui.api.fleet.is_some() {
        b.push_str("<section><h2>Fleet</h2><table class=kv><tbody>");
        for (k, label) in [
            ("connected", "Connected"),
            ("node", "This host"),
            ("published", "Published"),
            ("applied", "Applied"),
            ("lag", "Lag"),
            ("outbox", "Outbox"),
            ("last_sync", "Last sync"),
        ] {
            let _ = write!(b, "<tr><th>{label}</th><td data-live=fleet.{k}>–</td></tr>");
        }
        b.push_str("</tbody></table></section>");
    }
    b.push_str("<div id=overview data-poll=/ui/live hidden></div>");
    frame(&ui, &s, "Overview", "/ui").render(&b)
}

/// The tables of findings' tops, as the page first shows them (the last
/// hour); the script keeps them current and switches to the last five
/// minutes. Keys come from requests: every one is escaped.
fn findings_section(b: &mut String, t: &WindowTops) {
    let _ = write!(
        b,
        "<section id=findings-tops><h2>Findings: top rules, paths, sources and categories</h2>\
         <p class=hint>Requests with findings (blocked or passed, proxy and mirror) in \
         <select id=tops-window aria-label=window><option value=hour selected>the last hour\
         </option><option value=short>the last 5 minutes</option></select>: \
         <span id=tops-summary>{}</span></p><div class=columns>",
        esc(&summary(t))
    );
    for (id, title, rows) in [
        ("top-rules", "Rule", &t.rules),
        ("top-paths", "Path", &t.paths),
        ("top-finding-sources", "Source", &t.sources),
        ("top-kinds", "Category", &t.kinds),
    ] {
        let _ = write!(
            b,
            "<section><table id={id}><thead><tr><th>{title}</th><th>Requests</th></tr></thead>\
             <tbody>"
        );
        for (k, n) in rows {
            let _ = write!(b, "<tr><td>{}</td><td>{n}</td></tr>", esc(k));
        }
        b.push_str("</tbody></table></section>");
    }
    b.push_str("</div></section>");
}

/// `12 requests, 10 blocked, 0 would_block (counts approximate)`.
fn summary(t: &WindowTops) -> String {
    format!(
        "{} requests, {} blocked, {} would block{}",
        t.requests,
        t.blocked,
        t.would_block,
        if t.approximate {
            " (ranked counts are estimates)"
        } else {
            ""
        }
    )
}

/// `GET /ui/live?since=T&seq=N`: the chart points after Unix second `T`
/// (all of the last hour for 0), the changes after `N`, and the numbers of
/// the page now.
pub async fn live(State(ui): State<Ui>, RawQuery(q): RawQuery) -> Json<Value> {
    let q = Form::parse(q.unwrap_or_default().as_bytes());
    let num = |k: &str| q.text(k).parse::<u64>().unwrap_or(0);
    let (since, seq) = (num("since"), num("seq"));
    let rec = &ui.recorder;
    let points = rec.points_since(since);
    let verdicts = samples::verdicts();
    let (dropped, passed) = points.last().map_or((0.0, 0.0), |p| {
        verdicts
            .iter()
            .zip(&p.packets)
            .fold((0.0, 0.0), |(d, pa), (v, r)| {
                if v.dropped { (d + r, pa) } else { (d, pa + r) }
            })
    });
    let view = ui.api.fw.view();
    let last = rec.last().unwrap_or_default();
    let (sources, reasons) = rec.tops(TOPS);
    let findings: LiveTops = ui
        .api
        .findings
        .as_ref()
        .map(|f| f.live.tops(unix_now(), TOPS))
        .unwrap_or_default();
    let fleet = ui.api.fleet.as_ref().map(|f| {
        let st = f.status();
        json!({
            "connected": if st.connected { "yes" } else { "no" },
            "node": st.node, "published": st.published, "applied": st.applied,
            "lag": st.lag, "outbox": st.outbox, "last_sync": st.last_sync,
        })
    });
    Json(json!({
        "now": last.t,
        "verdicts": verdicts,
        "requests_names": REQUESTS,
        "inspection_names": INSPECTION,
        "points": points,
        "cards": {
            "dropped": format!("{dropped:.0}"),
            "passed": format!("{passed:.0}"),
            "bans": view.counts.total(),
            "modes": format!(
                "monitor {} · emergency {}",
                if view.modes.monitor { "on" } else { "off" },
                if view.modes.emergency { "on" } else { "off" }
            ),
            "alarms": if view.alarms.is_empty() {
                "none".to_string()
            } else {
                format!("{} raised", view.alarms.len())
            },
            "uptime": span(ui.api.started.elapsed().as_secs()),
        },
        "requests": REQUESTS.iter().zip(last.requests).map(|(k, v)| (k.to_string(), json!(v)))
            .collect::<serde_json::Map<_, _>>(),
        "inspection": INSPECTION.iter().zip(rec.last_inspection())
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect::<serde_json::Map<_, _>>(),
        "findings": {
            "hour": findings.hour, "short": findings.short,
            "summary": {"hour": summary(&findings.hour), "short": summary(&findings.short)},
        },
        "changes": rec.changes_after(seq, LIVE_CHANGES),
        "tops": {"sources": sources, "reasons": reasons},
        "fleet": fleet,
    }))
}
