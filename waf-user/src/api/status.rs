//! `/v1/health`, `/v1/stats`, `/metrics`, `/v1/mode`, `/v1/inspect`,
//! `/v1/fleet`: what
//! the firewall, the kernel and the faces report, read without waiting on
//! a write; modes switched through the owner.

use std::sync::atomic::Ordering;

use axum::{
    Json,
    extract::State,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};

use super::metrics::{named_counters, source_tag_counters};
use super::{
    ApiError, Body, Shared, bad_request,
    types::{FleetStatus, ModeRequest, ModeView},
};
use crate::detect::Risk;

/// Status, alarms, interfaces and modes.
#[utoipa::path(get, path = "/v1/health", responses((status = 200, body = Object)))]
pub async fn health(State(s): State<Shared>) -> Json<Value> {
    let v = s.fw.view();
    Json(json!({
        "status": if v.alarms.is_empty() { "ok" } else { "alarm" },
        "alarms": v.alarms,
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_s": s.started.elapsed().as_secs(),
        "interfaces": s.attachments.iter().map(|a| json!({
            "interface": a.interface, "mode": a.mode.to_string(), "adopted": a.adopted
        })).collect::<Vec<_>>(),
        "bans": v.counts.total(),
        "mode": {"monitor": v.modes.monitor, "emergency": v.modes.emergency},
        // The fleet link in brief (null: `[fleet]` is off); `/v1/fleet`
        // has the rest.
        "fleet": s.fleet.as_ref().map(|f| {
            let st = f.status();
            json!({
                "connected": st.connected, "lag": st.lag, "outbox": st.outbox,
                "last_sync": st.last_sync,
            })
        }),
    }))
}

/// Every kernel, firewall and face counter.
#[utoipa::path(get, path = "/v1/stats", responses((status = 200, body = Object),
    (status = 500, body = super::types::ErrorBody)))]
pub async fn stats(State(s): State<Shared>) -> Result<Json<Value>, ApiError> {
    let counters = s
        .counters
        .read()
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let named: serde_json::Map<String, Value> = named_counters(&counters)
        .into_iter()
        .map(|(k, c)| {
            (
                k.to_string(),
                json!({"packets": c.packets, "bytes": c.bytes}),
            )
        })
        .collect();
    let v = s.fw.view();
    let mut out = json!({
        "counters": named,
        "bans": {
            "total": v.counts.total(),
            "ipv6": v.counts.v6_hosts + v.counts.v6_prefixes,
            "prefixes": v.counts.v4_prefixes + v.counts.v6_prefixes,
        },
        "strikes_pending": v.strikes_pending,
        "daemon": v.stats,
        "mode": {"monitor": v.modes.monitor, "emergency": v.modes.emergency},
        "alarms": v.alarms,
        "uptime_s": s.started.elapsed().as_secs(),
        "api_panics": s.panics.load(Ordering::Relaxed),
    });
    if let Some(p) = &v.sources {
        let tags: serde_json::Map<String, Value> = source_tag_counters(&s, p)
            .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e))?
            .into_iter()
            .map(|(t, c)| {
                (
                    t.name.clone(),
                    json!({"policy": t.policy, "monitor": t.monitor,
                           "packets": c.packets, "bytes": c.bytes}),
                )
            })
            .collect();
        out["sources"] = json!({
            "prefixes": p.entries().len(),
            "load_ms": p.load_ms(),
            "tags": tags,
        });
    }
    for f in &s.faces {
        out[f.section()] = f.json();
    }
    Ok(Json(out))
}

/// Prometheus text format (OpenMetrics).
#[utoipa::path(get, path = "/metrics", responses((status = 200, body = String,
    content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8"),
    (status = 500, body = super::types::ErrorBody)))]
pub async fn metrics(State(s): State<Shared>) -> Result<Response, ApiError> {
    let text =
        super::metrics::render(&s).map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e))?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

/// The modes in force.
/// The fleet link: connected or not, this host's name, what it shared and
/// applied (`enabled: false` when `[fleet]` is off).
#[utoipa::path(get, path = "/v1/fleet", responses((status = 200, body = FleetStatus)))]
pub async fn fleet(State(s): State<Shared>) -> Json<FleetStatus> {
    Json(s.fleet.as_ref().map(|f| f.status()).unwrap_or_default())
}

#[utoipa::path(get, path = "/v1/mode", responses((status = 200, body = ModeView)))]
pub async fn get_mode(State(s): State<Shared>) -> Json<ModeView> {
    let m = s.fw.view().modes;
    Json(ModeView {
        monitor: m.monitor,
        emergency: m.emergency,
    })
}

/// Switches monitor or emergency mode.
#[utoipa::path(put, path = "/v1/mode", request_body = ModeRequest, responses(
    (status = 200, body = ModeView), (status = 400, body = super::types::ErrorBody),
    (status = 409, description = "emergency with an empty allowlist", body = super::types::ErrorBody)))]
pub async fn set_mode(
    State(s): State<Shared>,
    Body(req): Body<ModeRequest>,
) -> Result<Json<ModeView>, ApiError> {
    if req.monitor.is_none() && req.emergency.is_none() {
        return Err(bad_request(
            "give `monitor` and/or `emergency` (true or false)",
        ));
    }
    let m =
        s.fw.set_modes(req.monitor, req.emergency, req.force)
            .await?;
    Ok(Json(ModeView {
        monitor: m.monitor,
        emergency: m.emergency,
    }))
}

/// Runs the detection engine on one request: `{"raw": "GET / HTTP/1.1..."}`
/// or `{"method", "uri", "headers", "body"}`.
#[utoipa::path(post, path = "/v1/inspect", request_body = super::types::InspectRequest, responses(
    (status = 200, body = Object), (status = 400, body = super::types::ErrorBody)))]
pub async fn inspect(
    State(s): State<Shared>,
    Body(v): Body<Value>,
) -> Result<Json<Value>, ApiError> {
    let engine = s.engine.clone();
    let (req, remote) = crate::detect::lines::request_of(&v, &engine).map_err(bad_request)?;
    let verdict = tokio::task::spawn_blocking(move || engine.inspect(&req, remote))
        .await
        .map_err(|e| {
            ApiError(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("inspection failed: {e}"),
            )
        })?;
    let risk = match verdict.risk {
        Risk::Low => "low",
        Risk::Medium => "medium",
        Risk::High => "high",
    };
    let mut out = serde_json::to_value(&verdict)
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    out["risk"] = json!(risk);
    if let Some(id) = v.get("id") {
        out["id"] = id.clone();
    }
    Ok(Json(out))
}
