//! End-to-end tests: every request goes through the devstack's API Gateway stand-in to the
//! real routers, against a fresh PostgreSQL database and fresh emulator resources per test.

mod helpers;

mod auth;
mod events;
mod platform;
mod users;
