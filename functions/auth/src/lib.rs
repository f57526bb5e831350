//! The auth service: accounts, passwords, sessions and access tokens (`/api/v1/auth/*`).
//!
//! `router(state)` is the whole HTTP surface; the Lambda binary, the devstack and the tests
//! all serve this same router.

pub mod accounts;
pub mod config;
pub mod guard;
pub mod mail;
pub mod passwords;
pub mod recovery;
pub mod sessions;
pub mod state;
pub mod throttle;
pub mod worker;

use axum::Router;
use lectern_shared::{
    http::Routes,
    migrate::{Migration, SchemaMigrations},
    routes,
};
use utoipa::openapi::OpenApi;

pub use config::AuthConfig;
pub use state::AppState;

pub const MIGRATIONS: SchemaMigrations = SchemaMigrations {
    schema: state::SCHEMA,
    migrations: &[
        Migration {
            version: 1,
            name: "accounts_and_sessions",
            sql: include_str!("../migrations/0001_accounts_and_sessions.sql"),
        },
        Migration {
            version: 2,
            name: "user_access",
            sql: include_str!("../migrations/0002_user_access.sql"),
        },
        Migration {
            version: 3,
            name: "account_events",
            sql: include_str!("../migrations/0003_account_events.sql"),
        },
    ],
};

fn api() -> Routes<AppState> {
    Routes::new()
        .routes(routes!(accounts::signup))
        .routes(routes!(sessions::login))
        .routes(routes!(sessions::refresh))
        .routes(routes!(sessions::logout))
        .routes(routes!(sessions::logout_all))
        .routes(routes!(sessions::list_sessions))
        .routes(routes!(sessions::revoke_session))
        .routes(routes!(recovery::forgot_password))
        .routes(routes!(recovery::reset_password))
        .routes(routes!(recovery::change_password))
        .routes(routes!(accounts::verify_email))
        .routes(routes!(accounts::resend_verification))
        .routes(routes!(accounts::me))
        .routes(routes!(accounts::jwks))
}

/// Every auth route, ready to serve.
pub fn router(state: AppState) -> Router {
    // No OpenAPI is generated here: a cold start has no use for it.
    lectern_shared::http::finish(api().into_router().with_state(state))
}

/// The auth part of the OpenAPI document.
pub fn openapi() -> OpenApi {
    lectern_shared::openapi::finish(api().into_openapi(), "Lectern auth")
}
