//! What every HTTP function's router shares: problem+json for unknown routes and methods, a
//! body limit, response headers, and the Lambda entry point.

use axum::{
    Router,
    extract::DefaultBodyLimit,
    http::{HeaderValue, header},
    response::Response,
};

use crate::error::ApiError;

/// Default body limit for JSON routes (64 KiB).
pub const DEFAULT_BODY_LIMIT: usize = 64 * 1024;

async fn not_found() -> ApiError {
    ApiError::NotFound
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

async fn harden(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

/// Wraps a service's routes with the shared fallbacks, limits and headers.
pub fn finish(router: Router) -> Router {
    router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(DEFAULT_BODY_LIMIT))
        .layer(axum::middleware::map_response(harden))
}

/// Serves `router` as a Lambda function behind API Gateway.
pub async fn run_lambda(router: Router) -> Result<(), lambda_http::Error> {
    lambda_http::run(router).await
}
