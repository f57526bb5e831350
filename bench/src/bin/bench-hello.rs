//! The cold-start and size baseline: the smallest `lambda_http` + axum function, built with
//! the same release profile as the real ones.

use axum::{Json, Router, routing::get};
use serde_json::{Value, json};

async fn hello() -> Json<Value> {
    Json(json!({ "hello": "world" }))
}

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_http::run(Router::new().route("/hello", get(hello))).await
}
