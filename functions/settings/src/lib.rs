//! The settings service (`/api/v1/settings/*`, `/api/v1/users/{id}/settings`): system
//! settings with their audit trail, and each user's preferences.
//!
//! `router(state)` is the whole HTTP surface; the Lambda binary, the devstack and the tests
//! all serve this same router. The worker keeps the service's view of which accounts exist.

pub mod preferences;
pub mod state;
pub mod system;
pub mod user_settings;
pub mod worker;

use axum::Router;
use lectern_shared::{
    http::Routes,
    migrate::{Migration, SchemaMigrations},
    routes,
};
use utoipa::openapi::OpenApi;

pub use state::{AppState, SCHEMA};

pub const MIGRATIONS: SchemaMigrations = SchemaMigrations {
    schema: SCHEMA,
    migrations: &[Migration {
        version: 1,
        name: "settings",
        sql: include_str!("../migrations/0001_settings.sql"),
    }],
};

fn api() -> Routes<AppState> {
    Routes::new()
        .routes(routes!(
            system::list_system_settings,
            system::create_system_setting
        ))
        .routes(routes!(
            system::get_system_setting,
            system::update_system_setting
        ))
        .routes(routes!(system::system_setting_history))
        .routes(routes!(
            user_settings::get_own_settings,
            user_settings::put_own_settings
        ))
        .routes(routes!(
            user_settings::get_user_settings,
            user_settings::put_user_settings
        ))
}

/// Every settings route, ready to serve.
pub fn router(state: AppState) -> Router {
    // No OpenAPI is generated here: a cold start has no use for it.
    lectern_shared::http::finish(api().into_router().with_state(state))
}

/// The settings part of the OpenAPI document.
pub fn openapi() -> OpenApi {
    lectern_shared::openapi::finish(api().into_openapi(), "Lectern settings")
}
