//! End-to-end tests: every request goes through the devstack's API Gateway stand-in to the
//! real routers, against a fresh PostgreSQL database and fresh emulator resources per test.

mod helpers;

mod account_events;
mod articles;
mod auth;
mod authorization;
mod categories;
mod content_access;
mod directory;
mod events;
mod groups;
mod platform;
mod roles;
mod settings;
mod users;
