//! API Gateway's routing: a request reaches a function only if the template declares its
//! method and path for that function; anything else is API Gateway's own 404.

use std::collections::HashMap;

use axum::{
    Router,
    body::Body,
    extract::Request,
    http::{Method, StatusCode},
    response::{IntoResponse, Response},
};
use tower::ServiceExt;

use crate::template::FunctionSpec;

#[derive(Clone)]
struct Route {
    method: Option<Method>,
    segments: Vec<String>,
    binary: String,
}

impl Route {
    fn matches(&self, method: &Method, path: &str) -> bool {
        if self.method.as_ref().is_some_and(|m| m != method) {
            return false;
        }
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let mut i = 0;
        for segment in &self.segments {
            if segment.ends_with("+}") {
                return i < parts.len();
            }
            let Some(part) = parts.get(i) else {
                return false;
            };
            let is_param = segment.starts_with('{') && segment.ends_with('}');
            if !(is_param && !part.is_empty() || segment == part) {
                return false;
            }
            i += 1;
        }
        i == parts.len()
    }

    /// API Gateway prefers the most specific route: more literal segments first.
    fn specificity(&self) -> usize {
        self.segments.iter().filter(|s| !s.starts_with('{')).count()
    }
}

pub fn router(
    functions: &[FunctionSpec],
    routers: HashMap<String, Router>,
) -> anyhow::Result<Router> {
    let mut routes: Vec<Route> = Vec::new();
    for function in functions {
        if !function.http_routes.is_empty() && !routers.contains_key(&function.binary) {
            anyhow::bail!(
                "template.yaml routes to {}, which the devstack does not serve",
                function.binary
            );
        }
        for route in &function.http_routes {
            routes.push(Route {
                method: (route.method != "ANY")
                    .then(|| route.method.parse())
                    .transpose()?,
                segments: route
                    .path
                    .trim_start_matches('/')
                    .split('/')
                    .map(str::to_string)
                    .collect(),
                binary: function.binary.clone(),
            });
        }
    }
    routes.sort_by_key(|r| std::cmp::Reverse(r.specificity()));
    let dispatch = move |request: Request<Body>| {
        let routes = routes.clone();
        let routers = routers.clone();
        async move {
            let route = routes
                .iter()
                .find(|r| r.matches(request.method(), request.uri().path()));
            match route.and_then(|r| routers.get(&r.binary)) {
                Some(router) => router.clone().oneshot(request).await.into_response(),
                None => not_found(),
            }
        }
    };
    Ok(Router::new().fallback(dispatch))
}

/// What API Gateway answers for a route no function declares.
fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [("content-type", "application/json")],
        r#"{"message":"Not Found"}"#,
    )
        .into_response()
}
