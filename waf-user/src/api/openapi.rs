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

use super::{bans, lists, status, types};

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
        lists::list_block, lists::add_block, lists::delete_block,
    ),
    components(schemas(
        types::BanRequest, types::BanView, types::BanPage, types::ListRequest, types::ListEntry,
        types::ListPage, types::ModeRequest, types::ModeView, types::Export, types::ExportBan,
        types::ExportEntry, types::ErrorBody, types::Removed, types::Addr, types::Reason,
        types::Comment, types::DurationField, types::SourceName,
        crate::firewall::ImportReport,
    )),
    modifiers(&Bearer),
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
