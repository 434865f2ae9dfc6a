//! The OpenAPI document at `GET /v1/openapi.json` against the live server's router: every documented
//! operation is routed, and no documented path answers a method the document leaves out. (That the
//! router has no path missing from the document is a unit test in `src/api/mod.rs`.)

use crate::support;

use serde_json::Value;
use support::{Notarium, Registry};

const METHODS: [&str; 5] = ["get", "post", "put", "delete", "patch"];

fn document(notarium: &Notarium) -> Value {
    let response = support::client().get(format!("{}/v1/openapi.json", notarium.url)).send().unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    response.json().unwrap()
}

/// The problem `type` slug the router answers `method path` with (path parameters filled in), if any.
fn problem_slug(notarium: &Notarium, method: &str, path: &str) -> Option<String> {
    let url = format!("{}{}", notarium.url, path.replace("{id}", "dev-ecdsa").replace("{file}", "app.js"));
    let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
    let response = support::client().request(method, url).send().unwrap();
    let body: Value = response.json().unwrap_or(Value::Null);
    body["type"].as_str().map(|t| t.rsplit('/').next().unwrap().to_owned())
}

#[test]
fn every_documented_operation_is_routed_and_no_other_method_is() {
    let registry = Registry::start();
    let notarium = Notarium::start(&[&registry.host]);
    let document = document(&notarium);
    assert_eq!(document["openapi"], "3.1.0");
    let paths = document["paths"].as_object().unwrap();
    assert!(paths.len() >= 16, "{paths:?}");
    for (path, item) in paths {
        for method in METHODS {
            let slug = problem_slug(&notarium, method, path);
            let routed = !matches!(slug.as_deref(), Some("no-such-route" | "method-not-allowed"));
            let documented = item.get(method).is_some();
            assert_eq!(routed, documented, "{method} {path}: documented {documented}, answered {slug:?}");
        }
    }
}

#[test]
fn every_operation_declares_problem_answers_and_text_routes_their_media_types() {
    let registry = Registry::start();
    let notarium = Notarium::start(&[&registry.host]);
    let document = document(&notarium);
    let problem = &document["components"]["responses"]["Problem"]["content"]["application/problem+json"];
    assert_eq!(problem["schema"]["$ref"], "#/components/schemas/Problem");
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            for range in ["4XX", "5XX"] {
                let answer = &operation["responses"][range]["$ref"];
                assert_eq!(answer, "#/components/responses/Problem", "{method} {path} {range}");
            }
        }
    }
    let media_types = |path: &str| -> Vec<String> {
        let content = document["paths"][path]["get"]["responses"]["200"]["content"].as_object().unwrap();
        content.keys().cloned().collect()
    };
    assert_eq!(media_types("/v1/log/checkpoint"), ["text/plain"]);
    assert_eq!(media_types("/v1/keys/{id}/public.pem"), ["application/x-pem-file"]);
    assert_eq!(media_types("/metrics"), ["application/openmetrics-text", "text/plain"]);
    assert_eq!(media_types("/v1/log/export"), ["application/x-ndjson", "text/csv"]);
}

#[test]
fn entry_indices_past_int64_are_refused_as_the_document_says() {
    let registry = Registry::start();
    let notarium = Notarium::start(&[&registry.host]);
    let past = (i64::MAX as u64) + 1;
    let (status, body) = notarium.get_text(&format!("/v1/log/entries?start={past}&end={past}"));
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("invalid-range"), "{body}");
}
