//! What every HTTP function's router shares: the one list of a service's routes ([`Routes`],
//! filled by [`routes!`](crate::routes)), problem+json for unknown routes and methods, a body
//! limit, response headers, and the Lambda entry point.

use axum::{
    Router,
    extract::DefaultBodyLimit,
    handler::Handler,
    http::{HeaderValue, header},
    response::Response,
    routing::MethodRouter,
};
use utoipa::openapi::{HttpMethod, OpenApi};
use utoipa_axum::{PathItemExt, router::UtoipaMethodRouter};

use crate::error::ApiError;

/// A service's routes, listed once and turned into either
///
/// - an axum router ([`Routes::into_router`]): what the Lambda binaries serve. It reads each
///   handler's path and methods from its `#[utoipa::path]` and generates no OpenAPI
///   operation or schema, which `utoipa_axum::routes!` does for every handler as soon as it
///   is listed — work a cold start would only throw away;
/// - the service's part of the OpenAPI document ([`Routes::into_openapi`]), built through
///   `utoipa_axum` exactly as before.
///
/// ```ignore
/// fn api() -> Routes<AppState> {
///     Routes::new()
///         .routes(routes!(accounts::signup))
///         .routes(routes!(profiles::get_user, profiles::update_user))
/// }
/// ```
pub struct Routes<S> {
    entries: Vec<Route<S>>,
}

/// The handlers [`routes!`](crate::routes) lists together (those of one path): how to route
/// them, and how to document them.
pub struct Route<S> {
    serve: fn() -> (Vec<String>, MethodRouter<S>),
    document: fn() -> UtoipaMethodRouter<S>,
}

impl<S> Route<S> {
    /// What [`routes!`](crate::routes) builds; not meant to be called by hand.
    #[doc(hidden)]
    pub fn new(
        serve: fn() -> (Vec<String>, MethodRouter<S>),
        document: fn() -> UtoipaMethodRouter<S>,
    ) -> Self {
        Self { serve, document }
    }
}

impl<S: Clone + Send + Sync + 'static> Route<S> {
    /// Adds `handler` on each of `methods` at `path`, as `utoipa_axum::routes!` does; used by
    /// [`routes!`](crate::routes).
    #[doc(hidden)]
    pub fn on<H, T>(
        (mut paths, router): (Vec<String>, MethodRouter<S>),
        path: String,
        methods: Vec<HttpMethod>,
        handler: H,
    ) -> (Vec<String>, MethodRouter<S>)
    where
        H: Handler<T, S>,
        T: 'static,
    {
        let router = methods.iter().fold(router, |router, method| {
            router.on(method.to_method_filter(), handler.clone())
        });
        let path = if path.is_empty() { "/".into() } else { path };
        if !paths.contains(&path) {
            paths.push(path);
        }
        (paths, router)
    }
}

impl<S: Clone + Send + Sync + 'static> Routes<S> {
    /// No routes yet.
    pub fn new() -> Self {
        Self {
            entries: Vec::new(),
        }
    }

    /// Adds the handlers of one [`routes!`](crate::routes).
    pub fn routes(mut self, route: Route<S>) -> Self {
        self.entries.push(route);
        self
    }

    /// The axum router, without generating any OpenAPI.
    pub fn into_router(self) -> Router<S> {
        self.entries
            .into_iter()
            .fold(Router::new(), |router, route| {
                let (paths, method_router) = (route.serve)();
                paths.iter().fold(router, |router, path| {
                    router.route(path, method_router.clone())
                })
            })
    }

    /// The OpenAPI document of these routes (paths, operations and the schemas they use).
    pub fn into_openapi(self) -> OpenApi {
        self.entries
            .into_iter()
            .fold(utoipa_axum::router::OpenApiRouter::new(), |api, route| {
                api.routes((route.document)())
            })
            .into_openapi()
    }
}

impl<S: Clone + Send + Sync + 'static> Default for Routes<S> {
    fn default() -> Self {
        Self::new()
    }
}

/// Lists handlers annotated with `#[utoipa::path]` for [`Routes::routes`], like
/// `utoipa_axum::routes!` (same syntax: the handlers of one path, comma-separated), but builds
/// nothing until [`Routes`] is turned into a router or a document.
///
/// The calling crate depends on `axum` and `utoipa`, as any crate with `#[utoipa::path]`
/// handlers does.
#[macro_export]
macro_rules! routes {
    ( $( $($segment:ident)::+ ),+ $(,)? ) => {
        $crate::http::Route::new(
            || {
                let routed = (
                    ::std::vec::Vec::new(),
                    $crate::http::__axum::routing::MethodRouter::new(),
                );
                $(
                    let routed = $crate::http::Route::on(
                        routed,
                        <$crate::__utoipa_path_struct!($($segment)::+) as $crate::http::__utoipa::Path>::path(),
                        <$crate::__utoipa_path_struct!($($segment)::+) as $crate::http::__utoipa::Path>::methods(),
                        $($segment)::+,
                    );
                )+
                routed
            },
            || $crate::http::__utoipa_axum::routes!( $( $($segment)::+ ),+ ),
        )
    };
}

/// `a::b::handler` → `a::b::__path_handler`, the type `#[utoipa::path]` generates.
#[doc(hidden)]
#[macro_export]
macro_rules! __utoipa_path_struct {
    ( @prefix [ $($prefix:ident)* ] $last:ident ) => {
        $crate::http::__paste! { $($prefix ::)* [<__path_ $last>] }
    };
    ( @prefix [ $($prefix:ident)* ] $head:ident :: $($rest:tt)+ ) => {
        $crate::__utoipa_path_struct!( @prefix [ $($prefix)* $head ] $($rest)+ )
    };
    ( $($path:tt)+ ) => {
        $crate::__utoipa_path_struct!( @prefix [] $($path)+ )
    };
}

#[doc(hidden)]
pub use {
    axum as __axum, pastey::paste as __paste, utoipa as __utoipa, utoipa_axum as __utoipa_axum,
};

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

#[cfg(test)]
mod tests {
    use axum::{body::Body, http::Request};
    use tower::ServiceExt;

    use super::Routes;

    mod articles {
        #[utoipa::path(get, path = "/articles", responses((status = 200)))]
        pub async fn list() -> &'static str {
            "list"
        }

        #[utoipa::path(post, path = "/articles", responses((status = 201)))]
        pub async fn create() -> &'static str {
            "create"
        }

        #[utoipa::path(get, path = "/articles/{id}", params(("id" = String, Path)), responses((status = 200)))]
        pub async fn get(axum::extract::Path(id): axum::extract::Path<String>) -> String {
            format!("get {id}")
        }
    }

    #[utoipa::path(get, path = "", responses((status = 200)))]
    async fn root() -> &'static str {
        "root"
    }

    fn api() -> Routes<()> {
        Routes::new()
            .routes(crate::routes!(articles::list, articles::create))
            .routes(crate::routes!(articles::get))
            .routes(crate::routes!(root))
    }

    async fn call(method: &str, uri: &str) -> (u16, String) {
        let response = api()
            .into_router()
            .oneshot(
                Request::builder()
                    .method(method)
                    .uri(uri)
                    .body(Body::empty())
                    .expect("a request"),
            )
            .await
            .expect("infallible");
        let status = response.status().as_u16();
        let body = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .expect("a body");
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn the_router_routes_each_handler_on_its_path_and_methods() {
        assert_eq!(call("GET", "/articles").await, (200, "list".into()));
        assert_eq!(call("POST", "/articles").await, (200, "create".into()));
        assert_eq!(call("GET", "/articles/7").await, (200, "get 7".into()));
        assert_eq!(call("GET", "/").await, (200, "root".into()));
        assert_eq!(call("DELETE", "/articles").await.0, 405);
        assert_eq!(call("GET", "/nothing").await.0, 404);
    }

    #[test]
    fn the_document_is_what_utoipa_axum_builds() {
        let (_, expected) = utoipa_axum::router::OpenApiRouter::<()>::new()
            .routes(utoipa_axum::routes!(articles::list, articles::create))
            .routes(utoipa_axum::routes!(articles::get))
            .routes(utoipa_axum::routes!(root))
            .split_for_parts();
        let document = api().into_openapi();
        assert_eq!(
            serde_json::to_value(&document).expect("serialises"),
            serde_json::to_value(&expected).expect("serialises")
        );
        assert_eq!(document.paths.paths.len(), 3);
    }
}
