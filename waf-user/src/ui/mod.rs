//! The dashboard: server-rendered pages under `/ui` on the API's listener.
//!
//! A person logs in once with the API token (`POST /ui/login`, compared in
//! constant time) and gets a random session id in an `HttpOnly`,
//! `SameSite=Strict`, `Path=/ui` cookie; the session lives server-side
//! ([`session`]) for at most 12 hours, 64 at most. The cookie is read here
//! only: `/v1` keeps asking for the bearer token. Every `POST` carries the
//! session's CSRF token (a hidden field or `X-CSRF-Token`); a missing or
//! wrong one is a 403 before any handler runs. Every answer has a strict
//! CSP (scripts and styles from `/ui/static/` only, embedded in the binary),
//! `nosniff`, `no-referrer` and `no-store`.
//!
//! The pages change nothing themselves: writes go through the API's own
//! handlers (`api::bans`, `api::lists`, `api::status`), so the dashboard
//! validates and refuses exactly as the API does.

mod bans;
mod findings;
mod form;
mod html;
mod lists;
mod overview;
mod samples;
pub mod session;

#[cfg(test)]
mod tests;

use std::{sync::Arc, time::Instant};

use axum::{
    Extension, Router,
    body::{Body, Bytes},
    extract::{DefaultBodyLimit, Request, State},
    http::{HeaderMap, HeaderValue, Method, StatusCode, header},
    middleware::{self, Next},
    response::{Html, IntoResponse, Redirect, Response},
    routing::{get, post},
};

pub use self::form::Form;
use self::session::{Session, Sessions, same_secret};
use crate::api::ApiState;

/// The dashboard's state: the API's, its sessions and its samples.
pub struct UiState {
    /// What the API handlers share (the dashboard calls them).
    pub api: Arc<ApiState>,
    /// Logged-in sessions.
    pub sessions: Sessions,
    /// The last hour of counters and the last ban changes.
    pub recorder: samples::Recorder,
}

type Ui = Arc<UiState>;

/// Form bodies up to this size.
const BODY_LIMIT: usize = 64 * 1024;

/// The content security policy of every answer.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
                       img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; \
                       base-uri 'none'";

/// The dashboard's router (merge it beside the API's, outside its bearer
/// check). Starts the task that samples the counters every second; call
/// it inside the runtime.
pub fn router(api: Arc<ApiState>) -> Router {
    let changes = api.fw.changes();
    let panics = api.panics.clone();
    let ui = Arc::new(UiState {
        api,
        sessions: Sessions::default(),
        recorder: samples::Recorder::default(),
    });
    samples::spawn(Arc::downgrade(&ui), changes);
    Router::new()
        .route("/ui", get(overview::page))
        .route("/ui/", get(|| async { Redirect::to("/ui") }))
        .route("/ui/live", get(overview::live))
        .route("/ui/bans", get(bans::page).post(bans::add))
        .route("/ui/bans.json", get(bans::json))
        .route("/ui/bans/remove", post(bans::remove))
        .route("/ui/bans/extend", post(bans::extend))
        .route("/ui/findings", get(findings::page))
        .route("/ui/findings/{id}/draft", get(findings::draft))
        .route("/ui/exclusions/add", post(findings::add))
        .route("/ui/exclusions/remove", post(findings::remove))
        .route("/ui/lists", get(lists::page))
        .route("/ui/lists/add", post(lists::add))
        .route("/ui/lists/remove", post(lists::remove))
        .route("/ui/modes", get(lists::modes).post(lists::set_mode))
        .route("/ui/modes/confirm", get(lists::confirm_mode))
        .route("/ui/login", get(login_form).post(login))
        .route("/ui/logout", post(logout))
        .route("/ui/static/ui.css", get(css))
        .route("/ui/static/ui.js", get(js))
        .route("/ui/{*rest}", get(not_found).post(not_found))
        .layer(middleware::from_fn_with_state(ui.clone(), gate))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            move |_: Box<dyn std::any::Any + Send>| {
                panics.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::error!("a dashboard handler panicked; answered 500");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal error (logged)").into_response()
            },
        ))
        .with_state(ui)
}

/// Answers that need no session.
fn public(path: &str) -> bool {
    path == "/ui/login" || path.starts_with("/ui/static/")
}

/// Answers for scripts (401 without a session, not a redirect).
fn data(path: &str) -> bool {
    path == "/ui/live" || path.ends_with(".json")
}

/// The session a request's cookie names, if it is live.
fn session_of(ui: &UiState, headers: &HeaderMap) -> Option<Session> {
    let cookies = headers.get(header::COOKIE)?.to_str().ok()?;
    let id = session::cookie(cookies, session::COOKIE)?;
    ui.sessions.get(id, Instant::now())
}

/// A plain-text refusal.
fn refuse(code: StatusCode, msg: &str) -> Response {
    (
        code,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        msg.to_string(),
    )
        .into_response()
}

/// Sessions, CSRF and the security headers, for every answer under `/ui`.
async fn gate(State(ui): State<Ui>, req: Request, next: Next) -> Response {
    let mut resp = match admit(&ui, req).await {
        Ok(req) => next.run(req).await,
        Err(resp) => resp,
    };
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// Lets a request through with its session (and, for a write, its form)
/// as extensions, or answers for it: 303 to the login page or 401 without
/// a session, 403 without the session's CSRF token.
async fn admit(ui: &UiState, req: Request) -> Result<Request, Response> {
    let path = req.uri().path().to_string();
    if public(&path) {
        return Ok(req);
    }
    let Some(session) = session_of(ui, req.headers()) else {
        return Err(if req.method() == Method::GET && !data(&path) {
            Redirect::to("/ui/login").into_response()
        } else {
            refuse(StatusCode::UNAUTHORIZED, "log in first: /ui/login")
        });
    };
    let (mut parts, body) = req.into_parts();
    let mut form = Form::default();
    if parts.method != Method::GET && parts.method != Method::HEAD {
        let bytes = axum::body::to_bytes(body, BODY_LIMIT)
            .await
            .map_err(|_| refuse(StatusCode::PAYLOAD_TOO_LARGE, "form too large"))?;
        form = Form::parse(&bytes);
        let token = parts
            .headers
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok())
            .or_else(|| form.get("csrf"));
        if !token.is_some_and(|t| same_secret(t, &session.csrf)) {
            return Err(refuse(
                StatusCode::FORBIDDEN,
                "missing or wrong CSRF token: reload the page and try again",
            ));
        }
        parts.extensions.insert(form);
        parts.extensions.insert(session);
        return Ok(Request::from_parts(parts, Body::from(bytes)));
    }
    parts.extensions.insert(form);
    parts.extensions.insert(session);
    Ok(Request::from_parts(parts, body))
}

/// `GET /ui/login`: the form, with a fresh double-submit token (a
/// session already open goes to the overview).
async fn login_form(State(ui): State<Ui>, headers: HeaderMap) -> Response {
    if session_of(&ui, &headers).is_some() {
        return Redirect::to("/ui").into_response();
    }
    let token = session::random_token();
    (
        [(header::SET_COOKIE, session::login_cookie(&token))],
        Html(html::login_page(&token, None)),
    )
        .into_response()
}

/// `POST /ui/login`: the API token against the configured one, in
/// constant time; a session on success.
async fn login(State(ui): State<Ui>, headers: HeaderMap, body: Bytes) -> Response {
    let form = Form::parse(&body);
    let expected = headers
        .get(header::COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|c| session::cookie(c, session::LOGIN_COOKIE));
    let sent = form.get("csrf");
    let csrf_ok = matches!((expected, sent), (Some(e), Some(s)) if same_secret(e, s));
    if !csrf_ok {
        return refuse(
            StatusCode::FORBIDDEN,
            "missing or wrong login form token: open /ui/login again",
        );
    }
    let token = form.get("token").unwrap_or("").trim();
    if !same_secret(token, &ui.api.token) {
        // Slows a guesser down a little; the token is long and random.
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        let again = session::random_token();
        return (
            StatusCode::UNAUTHORIZED,
            [(header::SET_COOKIE, session::login_cookie(&again))],
            Html(html::login_page(&again, Some("wrong token"))),
        )
            .into_response();
    }
    let id = ui.sessions.open(Instant::now());
    let mut resp = Redirect::to("/ui").into_response();
    let h = resp.headers_mut();
    for c in [
        session::session_cookie(&id),
        session::cleared(session::LOGIN_COOKIE, "/ui/login"),
    ] {
        if let Ok(v) = HeaderValue::from_str(&c) {
            h.append(header::SET_COOKIE, v);
        }
    }
    resp
}

/// `POST /ui/logout`: ends the session.
async fn logout(State(ui): State<Ui>, Extension(s): Extension<Session>) -> Response {
    ui.sessions.close(&s);
    let mut resp = Redirect::to("/ui/login").into_response();
    if let Ok(v) = HeaderValue::from_str(&session::cleared(session::COOKIE, "/ui")) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

async fn not_found() -> Response {
    refuse(StatusCode::NOT_FOUND, "no such page")
}

async fn css() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("static/ui.css"),
    )
        .into_response()
}

async fn js() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("static/ui.js"),
    )
        .into_response()
}

/// The frame of a page for this session (takes the last action's message).
fn frame<'a>(ui: &UiState, s: &'a Session, title: &'a str, nav: &'a str) -> html::Frame<'a> {
    html::Frame {
        title,
        nav,
        csrf: &s.csrf,
        flash: ui.sessions.take_flash(s),
    }
}

/// An API handler's refusal, as a page's message: `404 — no ban of ...`.
fn error_text(e: crate::api::ApiError) -> String {
    format!("{} — {}", e.0.as_u16(), e.1)
}

/// After an action: its result as the next page's message, and back to
/// `to` (303, so a reload does not post again).
fn done(ui: &UiState, s: &Session, result: Result<String, String>, to: &str) -> Response {
    match result {
        Ok(m) => ui.sessions.flash(s, true, m),
        Err(e) => ui.sessions.flash(s, false, e),
    }
    Redirect::to(to).into_response()
}
