//! What every route shares: API Gateway routing from the template, the OpenAPI document,
//! the Lambda adapter and the sample events.

use std::collections::BTreeSet;

use axum::http::StatusCode;
use lectern_devstack::{template::Template, workspace_root};
use serde_json::Value;
use tower::ServiceExt;

use crate::helpers::TestApp;

fn template() -> Template {
    Template::load(&workspace_root().join("template.yaml")).unwrap()
}

/// `(METHOD, path)` of every HTTP route the template declares.
fn template_routes() -> BTreeSet<(String, String)> {
    template()
        .functions()
        .into_iter()
        .flat_map(|f| f.http_routes)
        .map(|r| (r.method, r.path))
        .collect()
}

#[tokio::test]
async fn a_route_the_template_does_not_declare_is_api_gateways_404() {
    let app = TestApp::spawn().await;

    let reply = app.get("/api/v1/auth/nowhere", None).await;

    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.body["message"], "Not Found");
}

#[test]
fn the_openapi_document_and_the_template_declare_the_same_routes() {
    let doc = serde_json::to_value(lectern_openapi::document()).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.insert((method.to_uppercase(), path.clone()));
        }
    }
    documented.insert(("GET".into(), lectern_openapi::PATH.into()));

    assert_eq!(documented, template_routes());
}

#[test]
fn every_operation_documents_its_error_responses_as_problem_json() {
    let doc = serde_json::to_value(lectern_openapi::document()).unwrap();
    let problem =
        &doc["components"]["responses"]["ValidationFailed"]["content"]["application/problem+json"];
    assert!(
        problem["schema"]["$ref"]
            .as_str()
            .unwrap()
            .ends_with("/Problem")
    );
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let responses = op["responses"].as_object().unwrap();
            for status in ["400", "500"] {
                assert!(
                    responses.contains_key(status),
                    "{method} {path} does not document {status}"
                );
            }
            if op.get("security").is_some() {
                assert!(
                    responses.contains_key("401"),
                    "{method} {path} is secured but documents no 401"
                );
            }
            if op.get("requestBody").is_some() {
                assert!(
                    responses.contains_key("422"),
                    "{method} {path} takes a body but documents no 422"
                );
            }
        }
    }
}

#[tokio::test]
async fn the_openapi_document_is_served() {
    let app = TestApp::spawn().await;

    let reply = app.get("/api/v1/openapi.json", None).await;

    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.body["paths"]["/api/v1/auth/login"]["post"].is_object());
}

#[test]
fn every_http_route_has_a_sample_event_and_every_sample_names_a_route() {
    let routes = template_routes();
    let mut sampled = BTreeSet::new();
    for entry in std::fs::read_dir(workspace_root().join("events")).unwrap() {
        let path = entry.unwrap().path();
        let event: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
            .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
        if let Some(route_key) = event["routeKey"].as_str() {
            let (method, path_template) = route_key.split_once(' ').unwrap();
            let route = (method.to_string(), path_template.to_string());
            assert!(
                routes.contains(&route),
                "{} samples a route the template lacks: {route_key}",
                path.display()
            );
            sampled.insert(route);
        }
    }
    assert_eq!(sampled, routes, "routes without a sample event");
}

#[tokio::test]
async fn the_sample_api_gateway_events_reach_their_handlers_through_the_lambda_adapter() {
    let app = TestApp::spawn().await;
    let routers = app.stack.routers();
    for entry in std::fs::read_dir(workspace_root().join("events")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let event: Value = serde_json::from_str(&text).unwrap();
        let Some(route_key) = event["routeKey"].as_str() else {
            continue;
        };
        let binary = template()
            .functions()
            .into_iter()
            .find(|f| {
                f.http_routes
                    .iter()
                    .any(|r| format!("{} {}", r.method, r.path) == route_key)
            })
            .unwrap()
            .binary;
        // The same conversion lambda_http applies to an API Gateway v2 event in AWS.
        let request = lambda_http::request::from_str(&text).unwrap();
        let request = request.map(|body| axum::body::Body::from(body.to_vec()));

        let response = routers[&binary].clone().oneshot(request).await.unwrap();

        let status = response.status();
        assert!(
            status != StatusCode::NOT_FOUND || route_key.contains('{'),
            "{}: {route_key} found no handler",
            path.display()
        );
        assert!(
            !status.is_server_error(),
            "{}: {route_key} answered {status}",
            path.display()
        );
    }
}
