//! `GET /v1/lookup/{addr}`: what every list, ban and source policy says of
//! one address, and the verdict XDP gives it (`waf lookup`).

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
};

use super::{ApiError, Shared};
use crate::firewall::lookup::{Lookup, RateHit, lookup};

/// What everything says of one address.
#[utoipa::path(get, path = "/v1/lookup/{addr}", params(("addr" = String, Path,
        description = "one IPv4 or IPv6 address")),
    responses((status = 200, body = Lookup), (status = 400, body = super::types::ErrorBody)))]
pub async fn get(State(s): State<Shared>, Path(a): Path<String>) -> Result<Json<Lookup>, ApiError> {
    let shown: String = a.chars().take(64).collect();
    let addr: std::net::IpAddr = a.trim().parse().map_err(|_| {
        ApiError(
            StatusCode::BAD_REQUEST,
            format!("{shown:?} is not an IPv4 or IPv6 address (one address, not a prefix)"),
        )
    })?;
    let mut out = lookup(&s.fw.view(), addr);
    out.rate =
        s.fw.rate_state(addr)
            .await
            .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
            .map(|r| RateHit {
                window_packets: r.win_packets,
                previous_packets: r.prev_packets,
                dropped: r.dropped,
            });
    Ok(Json(out))
}
