//! The OpenAPI 3.1 document, generated from the handlers' `#[utoipa::path]` annotations.
//!
//! Each service builds its paths from its one list of routes ([`crate::http::Routes`], through
//! `utoipa_axum::OpenApiRouter`); [`finish`] adds what every route shares — the bearer
//! security scheme, the problem+json schema and the error responses each operation can give —
//! so the document lists every answer a client can get.

use utoipa::{
    PartialSchema,
    openapi::{
        Content, OpenApi, Ref, RefOr, Response, ResponseBuilder,
        security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
    },
};

use crate::error::{FieldError, PROBLEM_JSON, Problem};

pub const BEARER: &str = "bearer";
/// The security scheme of `/internal/*` routes.
pub const IAM: &str = "iam";

fn problem_response(description: &str) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            PROBLEM_JSON,
            Content::new(Some(Ref::from_schema_name("Problem"))),
        )
        .build()
}

const SHARED_RESPONSES: &[(&str, &str, &str)] = &[
    (
        "400",
        "BadRequest",
        "The request is malformed (unparseable JSON, bad header).",
    ),
    (
        "401",
        "Unauthorized",
        "No access token, or an invalid or expired one.",
    ),
    ("403", "Forbidden", "The caller may not do this."),
    (
        "404",
        "NotFound",
        "The resource does not exist or is not visible to the caller.",
    ),
    (
        "409",
        "Conflict",
        "The request conflicts with the resource's current state.",
    ),
    (
        "412",
        "PreconditionFailed",
        "If-Match names an outdated version.",
    ),
    (
        "413",
        "PayloadTooLarge",
        "The body is larger than the route accepts.",
    ),
    (
        "415",
        "UnsupportedMediaType",
        "The body is not application/json.",
    ),
    (
        "422",
        "ValidationFailed",
        "The body is well-formed but invalid; `errors` names each field.",
    ),
    (
        "429",
        "TooManyRequests",
        "Throttled; `Retry-After` says when to try again.",
    ),
    (
        "500",
        "InternalError",
        "An unexpected failure; details are logged, never returned.",
    ),
];

fn shared_ref(status: &str) -> RefOr<Response> {
    let name = SHARED_RESPONSES
        .iter()
        .find(|(s, _, _)| *s == status)
        .map(|(_, n, _)| *n)
        .unwrap();
    RefOr::Ref(Ref::new(format!("#/components/responses/{name}")))
}

/// Completes a service's document: info, security scheme, shared schemas and the error
/// responses every operation can produce.
pub fn finish(mut doc: OpenApi, title: &str) -> OpenApi {
    doc.info.title = title.to_string();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    doc.info.contact = None;
    doc.info.license = Some(utoipa::openapi::License::new("MIT"));
    doc.info.description = Some(
        "Lectern: articles, courses and the people around them. Errors are RFC 9457 problem+json."
            .into(),
    );
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        BEARER,
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("JWT")
                .build(),
        ),
    );
    components.add_security_scheme(
        IAM,
        SecurityScheme::ApiKey(utoipa::openapi::security::ApiKey::Header(
            utoipa::openapi::security::ApiKeyValue::with_description(
                crate::internal::SERVICE_TOKEN_HEADER,
                "Service-to-service routes: SigV4-signed by an IAM role in AWS (API Gateway IAM \
                 authorization); the local service credential in this header on the devstack.",
            ),
        )),
    );
    components
        .schemas
        .insert("Problem".into(), Problem::schema());
    components
        .schemas
        .insert("FieldError".into(), FieldError::schema());
    for (_, name, description) in SHARED_RESPONSES {
        components
            .responses
            .insert((*name).into(), RefOr::T(problem_response(description)));
    }
    for item in doc.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for operation in operations.into_iter().flatten() {
            let secured = operation.security.as_ref().is_some_and(|s| !s.is_empty());
            let mut statuses = vec!["400", "500"];
            if operation.request_body.is_some() {
                statuses.extend(["413", "415", "422"]);
            }
            if operation.parameters.as_ref().is_some_and(|p| !p.is_empty()) {
                statuses.push("422");
            }
            if secured {
                statuses.extend(["401", "403"]);
            }
            for status in statuses {
                operation
                    .responses
                    .responses
                    .entry(status.into())
                    .or_insert_with(|| shared_ref(status));
            }
            // Handlers list the rarer answers (404, 409, 412, 429) by status alone; point those
            // at the shared problem responses too.
            for (status, response) in operation.responses.responses.iter_mut() {
                if let RefOr::T(r) = response
                    && r.content.is_empty()
                    && status.starts_with(['4', '5'])
                    && SHARED_RESPONSES.iter().any(|(s, _, _)| s == status)
                {
                    *response = shared_ref(status);
                }
            }
        }
    }
    doc
}
