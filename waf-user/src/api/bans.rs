//! `/v1/bans`, `/v1/export`, `/v1/import`: bans read from the published
//! view (paged), written through the owner.

use std::time::Duration;

use axum::{
    Json,
    extract::{Path, Query, State},
    http::StatusCode,
};
use ipnet::IpNet;
use serde::Deserialize;
use utoipa::IntoParams;

use super::{
    ApiError, Body, Shared, bad_request,
    types::{
        BanPage, BanRequest, BanView, DEFAULT_PAGE, DurationField, Export, ExportBan, ExportEntry,
        MAX_COMMENT, MAX_PAGE, MAX_REASON,
    },
};
use crate::{
    firewall::{BanDuration, BanOrder, BanSource, ImportOrder, ImportReport, ListKind},
    values::{check_text, parse_net, parse_rfc3339, rfc3339, show_net, unix_now},
};

/// Paging through a list in address order.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// At most this many (1 to 10000; default 1000).
    #[param(minimum = 1, maximum = 10000)]
    pub limit: Option<usize>,
    /// Start after this address (the `next` of the previous page).
    #[param(value_type = Option<super::types::Addr>)]
    pub after: Option<String>,
}

impl PageQuery {
    /// The page size and the cursor, checked.
    pub fn checked(&self) -> Result<(usize, Option<IpNet>), ApiError> {
        let limit = self.limit.unwrap_or(DEFAULT_PAGE);
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(bad_request(format!("limit {limit}: 1 to {MAX_PAGE}")));
        }
        let after = self
            .after
            .as_deref()
            .map(|a| parse_net(a).map_err(bad_request))
            .transpose()?;
        Ok((limit, after))
    }
}

fn query<T>(q: Result<Query<T>, axum::extract::rejection::QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(v)| v)
        .map_err(|e| bad_request(format!("invalid query: {}", e.body_text())))
}

/// Parses an address from a body or a path.
pub fn addr(s: &str) -> Result<IpNet, ApiError> {
    parse_net(s).map_err(bad_request)
}

/// Bans in force, a page at a time.
#[utoipa::path(get, path = "/v1/bans", params(PageQuery), responses(
    (status = 200, body = BanPage), (status = 400, body = super::types::ErrorBody)))]
pub async fn list(
    State(s): State<Shared>,
    q: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<BanPage>, ApiError> {
    let (limit, after) = query(q)?.checked()?;
    let view = s.fw.view();
    let (bans, next) = view.bans_page(after, limit);
    Ok(Json(BanPage {
        bans: bans.iter().map(BanView::from).collect(),
        total: view.counts.total(),
        next: next.map(|n| show_net(&n)),
    }))
}

/// The ban of exactly this address or prefix.
#[utoipa::path(get, path = "/v1/bans/{addr}", params(("addr" = super::types::Addr, Path)),
    responses((status = 200, body = BanView), (status = 404, body = super::types::ErrorBody),
        (status = 400, body = super::types::ErrorBody)))]
pub async fn get_one(
    State(s): State<Shared>,
    Path(a): Path<String>,
) -> Result<Json<BanView>, ApiError> {
    let net = addr(&a)?;
    s.fw.view()
        .ban(&net)
        .map(|b| Json(BanView::from(&b)))
        .ok_or_else(|| {
            ApiError(
                StatusCode::NOT_FOUND,
                format!("{} is not banned", show_net(&net)),
            )
        })
}

/// Bans an address or prefix.
#[utoipa::path(post, path = "/v1/bans", request_body = BanRequest, responses(
    (status = 201, body = BanView), (status = 400, body = super::types::ErrorBody),
    (status = 409, description = "protected by the allowlist", body = super::types::ErrorBody),
    (status = 507, description = "the ban map is full", body = super::types::ErrorBody)))]
pub async fn add(
    State(s): State<Shared>,
    Body(req): Body<BanRequest>,
) -> Result<(StatusCode, Json<BanView>), ApiError> {
    let net = addr(&req.addr.0)?;
    let duration = match req.duration {
        DurationField::Policy => BanDuration::Escalate,
        DurationField::Permanent => BanDuration::Permanent,
        DurationField::For(d) => BanDuration::For(d.0),
    };
    let reason = req.reason.map(|r| r.0).unwrap_or_else(|| "manual".into());
    check_text("reason", &reason, MAX_REASON).map_err(bad_request)?;
    let ban =
        s.fw.ban(BanOrder {
            net,
            duration,
            reason,
            source: BanSource::Manual,
            origin: None,
            force: req.force,
        })
        .await?;
    Ok((StatusCode::CREATED, Json(BanView::from(&ban))))
}

/// Lifts a ban.
#[utoipa::path(delete, path = "/v1/bans/{addr}", params(("addr" = super::types::Addr, Path)),
    responses((status = 200, body = BanView), (status = 404, body = super::types::ErrorBody),
        (status = 400, body = super::types::ErrorBody)))]
pub async fn remove(
    State(s): State<Shared>,
    Path(a): Path<String>,
) -> Result<Json<BanView>, ApiError> {
    let net = addr(&a)?;
    let b = s.fw.unban(net).await?;
    Ok(Json(BanView::from(&b)))
}

/// Every ban and API list entry as one document.
#[utoipa::path(get, path = "/v1/export", responses((status = 200, body = Export)))]
pub async fn export(State(s): State<Shared>) -> Json<Export> {
    let view = s.fw.view();
    let entries = |kind: ListKind| -> Vec<ExportEntry> {
        view.list(kind)
            .into_iter()
            .filter(|e| e.origin == "api")
            .map(|e| ExportEntry {
                cidr: super::types::Addr(e.cidr.to_string()),
                comment: super::types::Comment(e.comment),
            })
            .collect()
    };
    Json(Export {
        version: 2,
        exported: rfc3339(unix_now()),
        bans: view
            .bans
            .iter()
            .map(|(n, m)| ExportBan {
                addr: super::types::Addr(show_net(n)),
                reason: super::types::Reason(m.reason.to_string()),
                expires: m.expires_at().map(rfc3339),
            })
            .collect(),
        allowlist: entries(ListKind::Allow),
        blocklist: entries(ListKind::Block),
    })
}

/// Checks an import document; what cannot be read is reported, not fatal.
fn import_order(doc: Export) -> Result<(ImportOrder, Vec<String>), ApiError> {
    if !(1..=2).contains(&doc.version) {
        return Err(bad_request(format!(
            "export version {}: this daemon reads versions 1 and 2",
            doc.version
        )));
    }
    let mut order = ImportOrder::default();
    let mut skipped = Vec::new();
    let now = unix_now();
    for (list, out) in [
        (doc.allowlist, &mut order.allow),
        (doc.blocklist, &mut order.block),
    ] {
        for e in list {
            let checked = parse_net(&e.cidr.0)
                .and_then(|n| check_text("comment", &e.comment.0, MAX_COMMENT).map(|_| n));
            match checked {
                Ok(n) => out.push((n, e.comment.0)),
                Err(err) => skipped.push(format!("{}: {err}", e.cidr.0)),
            }
        }
    }
    for b in doc.bans {
        let net = match parse_net(&b.addr.0) {
            Ok(n) => n,
            Err(e) => {
                skipped.push(e);
                continue;
            }
        };
        if let Err(e) = check_text("reason", &b.reason.0, MAX_REASON) {
            skipped.push(format!("ban {}: {e}", b.addr.0));
            continue;
        }
        let duration = match b.expires.as_deref().map(parse_rfc3339) {
            None => BanDuration::Permanent,
            Some(Ok(at)) if at <= now => {
                skipped.push(format!("ban {}: expired", b.addr.0));
                continue;
            }
            Some(Ok(at)) => BanDuration::For(Duration::from_secs(at - now)),
            Some(Err(e)) => {
                skipped.push(format!("ban {}: expires: {e}", b.addr.0));
                continue;
            }
        };
        order.bans.push((net, duration, b.reason.0));
    }
    Ok((order, skipped))
}

/// Adds the bans and list entries of an export document.
#[utoipa::path(post, path = "/v1/import", request_body = Export, responses(
    (status = 200, body = ImportReport), (status = 400, body = super::types::ErrorBody)))]
pub async fn import(
    State(s): State<Shared>,
    Body(doc): Body<Export>,
) -> Result<Json<ImportReport>, ApiError> {
    let (order, skipped) = import_order(doc)?;
    let mut report = s.fw.import(order).await?;
    report.skipped.splice(0..0, skipped);
    Ok(Json(report))
}
