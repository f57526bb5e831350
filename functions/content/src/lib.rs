//! The content service (`/api/v1/articles*`, `/categories*`, `/tags*`,
//! `/internal/articles/*`): categories with group access rules, articles made of content
//! blocks with their SEO settings, tags and version history; the editorial status workflow,
//! scheduled publishing and full-text search.
//!
//! `router(state)` is the whole HTTP surface; the Lambda binary, the devstack and the tests
//! all serve this same router. `publishing::publish_due` is what the scheduler runs every
//! minute; the worker keeps the service's view of the users service's groups.

pub mod access;
pub mod article_tags;
pub mod articles;
pub mod blocks;
pub mod categories;
pub mod internal;
pub mod model;
pub mod publishing;
pub mod seo;
pub mod slug;
pub mod state;
pub mod tags;
pub mod versions;
pub mod worker;

use axum::Router;
use lectern_shared::{
    http::Routes,
    migrate::{Migration, SchemaMigrations},
    routes,
};
use utoipa::openapi::OpenApi;

pub use state::{AppState, EVENT_SOURCE, SCHEMA};

pub const MIGRATIONS: SchemaMigrations = SchemaMigrations {
    schema: SCHEMA,
    migrations: &[Migration {
        version: 1,
        name: "content",
        sql: include_str!("../migrations/0001_content.sql"),
    }],
};

fn api() -> Routes<AppState> {
    Routes::new()
        .routes(routes!(articles::list_articles, articles::create_article))
        .routes(routes!(
            articles::get_article,
            articles::update_article,
            articles::delete_article
        ))
        .routes(routes!(articles::get_article_by_slug))
        .routes(routes!(publishing::change_status))
        .routes(routes!(publishing::publish_article))
        .routes(routes!(publishing::schedule_article))
        .routes(routes!(
            blocks::list_blocks,
            blocks::replace_blocks,
            blocks::add_block
        ))
        .routes(routes!(blocks::update_block, blocks::delete_block))
        .routes(routes!(blocks::reorder_blocks))
        .routes(routes!(seo::get_seo, seo::put_seo))
        .routes(routes!(
            article_tags::get_article_tags,
            article_tags::put_article_tags
        ))
        .routes(routes!(versions::list_versions))
        .routes(routes!(versions::get_version))
        .routes(routes!(versions::restore_version))
        .routes(routes!(internal::get_article))
        .routes(routes!(
            categories::list_categories,
            categories::create_category
        ))
        .routes(routes!(
            categories::get_category,
            categories::update_category,
            categories::delete_category
        ))
        .routes(routes!(
            categories::get_category_access,
            categories::put_category_access
        ))
        .routes(routes!(tags::list_tags, tags::create_tag))
        .routes(routes!(tags::get_tag, tags::delete_tag))
}

/// Every content route, ready to serve.
pub fn router(state: AppState) -> Router {
    // No OpenAPI is generated here: a cold start has no use for it.
    lectern_shared::http::finish(api().into_router().with_state(state))
}

/// The content part of the OpenAPI document.
pub fn openapi() -> OpenApi {
    lectern_shared::openapi::finish(api().into_openapi(), "Lectern content")
}
