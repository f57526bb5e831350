//! What every HTTP function's router shares: the one list of a service's routes ([`Routes`],
//! filled by [`routes!`](crate::routes)), problem+json for unknown routes and methods, a body
//! limit, response headers, and the Lambda entry point.

use std::task::{Context, Poll};

use axum::{
    Router,
    extract::DefaultBodyLimit,
    handler::Handler,
    http::{HeaderValue, Request, header},
    response::Response,
    routing::MethodRouter,
};
use futures::{TryFutureExt, future::MapOk};
use tower::{Layer, Service, ServiceBuilder};
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

/// The headers every answer carries: `nosniff`, and `no-store` unless the handler chose a
/// cache policy.
fn harden(mut response: Response) -> Response {
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

/// [`harden`] as a tower layer. A plain service whose future is the inner one mapped, where
/// `axum::middleware::map_response` clones the inner service and boxes a future on every
/// request; about 0.2 µs a request on one core (BENCHMARKS.md, *The floor, taken apart*).
#[derive(Debug, Clone, Copy)]
struct HardenLayer;

impl<S> Layer<S> for HardenLayer {
    type Service = Harden<S>;

    fn layer(&self, inner: S) -> Harden<S> {
        Harden(inner)
    }
}

#[derive(Debug, Clone)]
struct Harden<S>(S);

impl<S, B> Service<Request<B>> for Harden<S>
where
    S: Service<Request<B>, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = MapOk<S::Future, fn(Response) -> Response>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        self.0
            .call(request)
            .map_ok(harden as fn(Response) -> Response)
    }
}

/// Wraps a service's routes with the shared fallbacks, limits and headers. The body limit and
/// the headers are one layer: axum wraps every route once per `layer` call, and each wrapping
/// costs a request a boxed service clone and a boxed future.
pub fn finish(router: Router) -> Router {
    router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(
            ServiceBuilder::new()
                .layer(HardenLayer)
                .layer(DefaultBodyLimit::max(DEFAULT_BODY_LIMIT)),
        )
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

    /// Every answer of a finished router: its status, the two headers [`super::harden`]
    /// sets, and the body's problem type if it is one.
    async fn finished(request: Request<Body>) -> (u16, Option<String>, Option<String>, String) {
        use axum::{
            Json, Router,
            http::{HeaderValue, header},
            routing::{get, post},
        };
        let router =
            super::finish(
                Router::new()
                    .route("/plain", get(|| async { "plain" }))
                    .route(
                        "/cached",
                        get(|| async {
                            (
                                [(
                                    header::CACHE_CONTROL,
                                    HeaderValue::from_static("max-age=60"),
                                )],
                                "cached",
                            )
                        }),
                    )
                    .route(
                        "/echo",
                        post(
                            |crate::extract::Json(body): crate::extract::Json<
                                serde_json::Value,
                            >| async move { Json(body) },
                        ),
                    ),
            );
        let response = router.oneshot(request).await.expect("infallible");
        let header = |name| {
            response
                .headers()
                .get(name)
                .map(|v: &HeaderValue| v.to_str().expect("ascii").to_string())
        };
        let (nosniff, cache) = (
            header(header::X_CONTENT_TYPE_OPTIONS),
            header(header::CACHE_CONTROL),
        );
        let status = response.status().as_u16();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .expect("a body");
        let body = String::from_utf8_lossy(&body).into_owned();
        (status, nosniff, cache, body)
    }

    fn request(method: &str, uri: &str, body: Body) -> Request<Body> {
        Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", "application/json")
            .body(body)
            .expect("a request")
    }

    #[tokio::test]
    async fn every_answer_is_hardened_and_bodies_are_limited() {
        let nosniff = Some("nosniff".to_string());
        let no_store = Some("no-store".to_string());
        let (status, sniff, cache, body) = finished(request("GET", "/plain", Body::empty())).await;
        assert_eq!(
            (status, &sniff, &cache, body.as_str()),
            (200, &nosniff, &no_store, "plain")
        );
        // A handler's own cache policy stays.
        let (status, sniff, cache, _) = finished(request("GET", "/cached", Body::empty())).await;
        assert_eq!(
            (status, &sniff, cache.as_deref()),
            (200, &nosniff, Some("max-age=60"))
        );
        // The fallbacks are problems, hardened the same way.
        for (method, uri, expected) in [("GET", "/nothing", 404), ("DELETE", "/plain", 405)] {
            let (status, sniff, cache, body) = finished(request(method, uri, Body::empty())).await;
            assert_eq!(
                (status, &sniff, &cache),
                (expected, &nosniff, &no_store),
                "{method} {uri}"
            );
            assert!(body.contains("\"status\":"), "{method} {uri}: {body}");
        }
        // 64 KiB of JSON is taken; one byte more is a 413 problem.
        let fits = format!(
            "{{\"a\":\"{}\"}}",
            "a".repeat(super::DEFAULT_BODY_LIMIT - 8)
        );
        let (status, _, _, body) =
            finished(request("POST", "/echo", Body::from(fits.clone()))).await;
        assert_eq!((status, body.len()), (200, fits.len()));
        let over = format!(
            "{{\"a\":\"{}\"}}",
            "a".repeat(super::DEFAULT_BODY_LIMIT - 7)
        );
        let (status, sniff, cache, body) =
            finished(request("POST", "/echo", Body::from(over))).await;
        assert_eq!((status, &sniff, &cache), (413, &nosniff, &no_store));
        assert!(body.contains("\"status\":413"), "{body}");
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
