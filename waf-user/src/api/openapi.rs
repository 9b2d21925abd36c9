//! The OpenAPI description, generated from the handlers and the types they
//! validate with (utoipa), served at `/v1/openapi.json`.

use axum::{
    http::header,
    response::{IntoResponse, Response},
};
use utoipa::{
    Modify, OpenApi,
    openapi::security::{Http, HttpAuthScheme, SecurityScheme},
};

use super::{bans, findings, lists, lookup, report, status, types};

struct Bearer;

impl Modify for Bearer {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let c = doc.components.get_or_insert_with(Default::default);
        c.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// The answers every operation can give: 401 without the token; and for
/// those with a body, 413 past the size limit and 415 without
/// `Content-Type: application/json`.
struct CommonResponses;

impl Modify for CommonResponses {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{Content, Ref, ResponseBuilder};
        let error = |why: &str| {
            ResponseBuilder::new()
                .description(why)
                .content(
                    "application/json",
                    Content::new(Some(Ref::from_schema_name("ErrorBody"))),
                )
                .build()
        };
        for item in doc.paths.paths.values_mut() {
            let ops = [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.delete,
            ];
            for op in ops.into_iter().flatten() {
                let has_body = op.request_body.is_some();
                let r = &mut op.responses.responses;
                r.insert("401".into(), error("missing or wrong bearer token").into());
                if has_body {
                    r.insert("413".into(), error("body too large").into());
                    r.insert("415".into(), error("not application/json").into());
                }
            }
        }
    }
}

/// Links from what creates a resource to what reads and removes it, so the
/// stateful phase of a schema-driven test (schemathesis) chains them.
struct Links;

impl Modify for Links {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{RefOr, link::LinkBuilder};
        let chains = [
            (
                "/v1/bans",
                "201",
                "addr",
                &[("GetBan", "get_one"), ("DeleteBan", "remove")][..],
            ),
            (
                "/v1/allowlist",
                "201",
                "cidr",
                &[("DeleteAllow", "delete_allow")][..],
            ),
            (
                "/v1/blocklist",
                "201",
                "cidr",
                &[("DeleteBlock", "delete_block")][..],
            ),
            (
                "/v1/exclusions",
                "201",
                "id",
                &[("DeleteExclusion", "delete_exclusion")][..],
            ),
        ];
        for (path, status, field, links) in chains {
            let Some(op) = doc.paths.paths.get_mut(path).and_then(|i| i.post.as_mut()) else {
                continue;
            };
            let Some(RefOr::T(resp)) = op.responses.responses.get_mut(status) else {
                continue;
            };
            for (name, target) in links {
                let link = LinkBuilder::new()
                    .operation_id(*target)
                    .parameter(field, format!("$response.body#/{field}"))
                    .build();
                resp.links.insert((*name).to_string(), link.into());
            }
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "waf control API",
        description = "Bans, allow and block lists, modes, stats and inspection of a waf daemon. \
                       Every request needs `Authorization: Bearer <token>`."
    ),
    paths(
        status::health, status::stats, status::metrics, status::get_mode, status::set_mode,
        status::inspect, bans::list, bans::add, bans::get_one, bans::remove, bans::export,
        bans::import, lists::list_allow, lists::add_allow, lists::delete_allow,
        lists::list_block, lists::add_block, lists::delete_block, status::fleet, lookup::get,
        findings::list, findings::list_exclusions, findings::add, findings::remove,
        findings::draft, report::get,
    ),
    components(schemas(
        types::BanRequest, types::BanView, types::BanPage, types::ListRequest, types::ListEntry,
        types::ListPage, types::ModeRequest, types::ModeView, types::Export, types::ExportBan,
        types::ExportEntry, types::ErrorBody, types::Removed, types::Addr, types::Reason,
        types::Comment, types::DurationField, types::SourceName, types::InspectRequest,
        types::FleetStatus,
        crate::firewall::ImportReport, crate::firewall::lookup::Lookup,
        crate::firewall::lookup::ListHit, crate::firewall::lookup::BanHit,
        crate::firewall::lookup::RateHit,
        findings::FindingsPage, findings::ExclusionView, findings::ExclusionList,
        findings::DraftRequest, findings::Draft, findings::AllowDraft,
        crate::findings::FindingRecord, crate::findings::ExclusionSpec,
        crate::findings::RuntimeExclusion, crate::report::Report, crate::report::Count,
        crate::report::SourceCount, crate::report::Hour, crate::report::BanSummary,
        crate::report::Inputs,
    )),
    modifiers(&Bearer, &CommonResponses, &Links),
    security(("bearer" = []))
)]
struct ApiDoc;

/// The OpenAPI document.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// `GET /v1/openapi.json`.
pub async fn serve() -> Response {
    let text = document()
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    ([(header::CONTENT_TYPE, "application/json")], text).into_response()
}
