//! The whole API's OpenAPI 3.1 document: every service's generated part, merged.

use std::sync::{Arc, LazyLock};

use axum::{Router, http::header, response::IntoResponse, routing::get};
use utoipa::openapi::{OpenApi, server::Server};

pub const PATH: &str = "/api/v1/openapi.json";

/// Merges every service's document.
pub fn document() -> OpenApi {
    let mut doc = lectern_auth::openapi();
    doc.merge(lectern_users::openapi());
    doc.merge(lectern_settings::openapi());
    doc.merge(lectern_content::openapi());
    doc.info.title = "Lectern API".into();
    doc.servers = Some(vec![Server::new("/")]);
    doc
}

static JSON: LazyLock<Arc<String>> = LazyLock::new(|| {
    Arc::new(serde_json::to_string_pretty(&document()).expect("the document serialises"))
});

async fn serve() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        JSON.as_str().to_owned(),
    )
}

/// `GET /api/v1/openapi.json`.
pub fn router() -> Router {
    lectern_shared::http::finish(Router::new().route(PATH, get(serve)))
}
