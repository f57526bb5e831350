//! The users service (`/api/v1/users*`, `/roles*`, `/permissions*`, `/groups*`,
//! `/internal/users/*`): profiles, roles, permissions, groups and notification preferences —
//! the authorization model every service enforces from the access token.
//!
//! `router(state)` is the whole HTTP surface; the Lambda binary, the devstack and the tests
//! all serve this same router.

pub mod access;
pub mod bootstrap;
pub mod groups;
pub mod internal;
pub mod permissions;
pub mod preferences;
pub mod profiles;
pub mod roles;
pub mod state;
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
    migrations: &[
        Migration {
            version: 1,
            name: "profiles",
            sql: include_str!("../migrations/0001_profiles.sql"),
        },
        Migration {
            version: 2,
            name: "access_control",
            sql: include_str!("../migrations/0002_access_control.sql"),
        },
        Migration {
            version: 3,
            name: "directory",
            sql: include_str!("../migrations/0003_directory.sql"),
        },
        Migration {
            version: 4,
            name: "search_index_without_pending_list",
            sql: include_str!("../migrations/0004_search_index_without_pending_list.sql"),
        },
    ],
};

fn api() -> Routes<AppState> {
    Routes::new()
        .routes(routes!(profiles::list_users, profiles::create_user))
        .routes(routes!(
            profiles::get_user,
            profiles::update_user,
            profiles::delete_user
        ))
        .routes(routes!(profiles::get_user_roles, profiles::put_user_roles))
        .routes(routes!(profiles::get_user_permissions))
        .routes(routes!(
            preferences::get_preferences,
            preferences::put_preferences
        ))
        .routes(routes!(roles::list_roles, roles::create_role))
        .routes(routes!(
            roles::get_role,
            roles::update_role,
            roles::delete_role
        ))
        .routes(routes!(
            roles::get_role_permissions,
            roles::put_role_permissions
        ))
        .routes(routes!(roles::list_role_members))
        .routes(routes!(
            permissions::list_permissions,
            permissions::create_permission
        ))
        .routes(routes!(permissions::list_modules))
        .routes(routes!(groups::list_groups, groups::create_group))
        .routes(routes!(
            groups::get_group,
            groups::update_group,
            groups::delete_group
        ))
        .routes(routes!(
            groups::list_group_members,
            groups::put_group_members
        ))
        .routes(routes!(groups::get_group_roles, groups::put_group_roles))
        .routes(routes!(internal::get_user))
        .routes(routes!(internal::get_user_permissions))
}

/// Every users route, ready to serve.
pub fn router(state: AppState) -> Router {
    // No OpenAPI is generated here: a cold start has no use for it.
    lectern_shared::http::finish(api().into_router().with_state(state))
}

/// The users part of the OpenAPI document.
pub fn openapi() -> OpenApi {
    lectern_shared::openapi::finish(api().into_openapi(), "Lectern users")
}
