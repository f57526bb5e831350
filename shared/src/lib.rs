//! The Lectern platform: what every function needs and no service owns.
//!
//! Domain code lives in each service's crate; this crate holds the plumbing they share so
//! that every function configures, logs, talks to PostgreSQL and AWS, authenticates callers
//! and answers errors the same way.

pub mod authz;
pub mod aws;
pub mod config;
pub mod db;
pub mod error;
pub mod events;
pub mod extract;
pub mod http;
pub mod internal;
pub mod jwt;
pub mod migrate;
pub mod openapi;
pub mod service;
pub mod sqs;
pub mod telemetry;
pub mod timestamp;
pub mod tokens;
pub mod validate;

pub use error::{ApiError, ApiResult, FieldError};
