//! `/v1/allowlist` and `/v1/blocklist`: entries read from the published
//! view (paged), written through the owner.

use axum::{
    Json,
    extract::{Path, Query, State},
    http::StatusCode,
};

use super::{
    ApiError, Body, Shared, bad_request,
    bans::{PageQuery, addr},
    types::{ListEntry, ListPage, ListRequest, MAX_COMMENT, Removed},
};
use crate::{firewall::ListKind, values::check_text};

type QueryResult = Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>;

fn page(s: &Shared, kind: ListKind, q: QueryResult) -> Result<Json<ListPage>, ApiError> {
    let q = q
        .map(|Query(v)| v)
        .map_err(|e| bad_request(format!("invalid query: {}", e.body_text())))?;
    let (limit, after) = q.checked()?;
    let all = s.fw.view().list(kind);
    let start = match after {
        Some(a) => all.partition_point(|e| e.cidr <= a),
        None => 0,
    };
    let entries: Vec<ListEntry> = all[start..]
        .iter()
        .take(limit)
        .map(ListEntry::from)
        .collect();
    let more = start + entries.len() < all.len();
    let next = more
        .then(|| entries.last().map(|e| e.cidr.clone()))
        .flatten();
    Ok(Json(ListPage {
        entries,
        total: all.len() as u64,
        next,
    }))
}

/// The allowlist: config entries and API entries, a page at a time.
#[utoipa::path(get, path = "/v1/allowlist", params(PageQuery), responses(
    (status = 200, body = ListPage), (status = 400, body = super::types::ErrorBody)))]
pub async fn list_allow(
    State(s): State<Shared>,
    q: QueryResult,
) -> Result<Json<ListPage>, ApiError> {
    page(&s, ListKind::Allow, q)
}

/// The blocklist: config entries and API entries, a page at a time.
#[utoipa::path(get, path = "/v1/blocklist", params(PageQuery), responses(
    (status = 200, body = ListPage), (status = 400, body = super::types::ErrorBody)))]
pub async fn list_block(
    State(s): State<Shared>,
    q: QueryResult,
) -> Result<Json<ListPage>, ApiError> {
    page(&s, ListKind::Block, q)
}

async fn add(
    s: &Shared,
    kind: ListKind,
    req: ListRequest,
) -> Result<(StatusCode, Json<ListEntry>), ApiError> {
    let net = addr(&req.cidr.0)?;
    check_text("comment", &req.comment.0, MAX_COMMENT).map_err(bad_request)?;
    let v = s.fw.list_add(kind, net, req.comment.0).await?;
    Ok((StatusCode::CREATED, Json(ListEntry::from(&v))))
}

/// Adds an allowlist entry (and lifts the bans it covers).
#[utoipa::path(post, path = "/v1/allowlist", request_body = ListRequest, responses(
    (status = 201, body = ListEntry), (status = 400, body = super::types::ErrorBody)))]
pub async fn add_allow(
    State(s): State<Shared>,
    Body(req): Body<ListRequest>,
) -> Result<(StatusCode, Json<ListEntry>), ApiError> {
    add(&s, ListKind::Allow, req).await
}

/// Adds a blocklist entry (refused inside the allowlist).
#[utoipa::path(post, path = "/v1/blocklist", request_body = ListRequest, responses(
    (status = 201, body = ListEntry), (status = 400, body = super::types::ErrorBody),
    (status = 409, description = "protected by the allowlist", body = super::types::ErrorBody)))]
pub async fn add_block(
    State(s): State<Shared>,
    Body(req): Body<ListRequest>,
) -> Result<(StatusCode, Json<ListEntry>), ApiError> {
    add(&s, ListKind::Block, req).await
}

async fn remove(s: &Shared, kind: ListKind, cidr: &str) -> Result<Json<Removed>, ApiError> {
    let net = addr(cidr)?;
    s.fw.list_remove(kind, net).await?;
    Ok(Json(Removed {
        removed: net.to_string(),
    }))
}

/// Removes an allowlist entry added through the API.
#[utoipa::path(delete, path = "/v1/allowlist/{cidr}", params(("cidr" = super::types::Addr, Path)),
    responses((status = 200, body = Removed), (status = 404, body = super::types::ErrorBody),
        (status = 409, description = "from the config", body = super::types::ErrorBody),
        (status = 400, body = super::types::ErrorBody)))]
pub async fn delete_allow(
    State(s): State<Shared>,
    Path(cidr): Path<String>,
) -> Result<Json<Removed>, ApiError> {
    remove(&s, ListKind::Allow, &cidr).await
}

/// Removes a blocklist entry added through the API.
#[utoipa::path(delete, path = "/v1/blocklist/{cidr}", params(("cidr" = super::types::Addr, Path)),
    responses((status = 200, body = Removed), (status = 404, body = super::types::ErrorBody),
        (status = 409, description = "from the config", body = super::types::ErrorBody),
        (status = 400, body = super::types::ErrorBody)))]
pub async fn delete_block(
    State(s): State<Shared>,
    Path(cidr): Path<String>,
) -> Result<Json<Removed>, ApiError> {
    remove(&s, ListKind::Block, &cidr).await
}
