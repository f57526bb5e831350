//! The users service. Today it owns profiles, created from the auth service's
//! `user.created` event by the users worker; the HTTP routes for profiles, roles, permissions
//! and groups build on the same schema.

pub mod worker;

use lectern_shared::migrate::{Migration, SchemaMigrations};

pub const SCHEMA: &str = "users";

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
    ],
};
