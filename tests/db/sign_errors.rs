//! Bad input and failing dependencies: each answered with a problem+json naming the cause, and no row
//! written (ARCHITECTURE.md invariant 5; invariant 2 for the failed registry write).

use crate::support;

use support::{Notarium, Registry, free_port, push_image, signature_rows};

fn assert_problem(
    notarium: &Notarium,
    body: impl Into<reqwest::blocking::Body>,
    status: u16,
    slug: &str,
    detail: &str,
) {
    let (got, content_type, problem) = notarium.post("/v1/sign", body);
    assert_eq!(got, status, "{problem}");
    assert_eq!(content_type, "application/problem+json");
    assert_eq!(problem["type"], format!("https://notarium.dev/problems/{slug}"), "{problem}");
    assert_eq!(problem["status"], status);
    assert!(problem["title"].as_str().is_some_and(|t| !t.is_empty()));
    let text = problem["detail"].as_str().unwrap();
    assert!(text.contains(detail), "detail {text:?} does not name {detail:?}");
    assert_eq!(signature_rows(&notarium.database_url()), 0, "a failed sign wrote a row");
}

fn sign_body(image: &str, key: &str) -> String {
    serde_json::json!({"image": image, "key": key}).to_string()
}

#[test]
fn bad_requests_are_named_problems_that_change_nothing() {
    let (registry, notarium, digest) = support::registry_notarium_and_image("demo/app", "v1", "errors");
    let good_image = format!("{}/demo/app@{digest}", registry.host);
    let host = &registry.host;

    assert_problem(&notarium, r#"{"image": "#, 400, "malformed-json", "EOF");
    assert_problem(&notarium, format!(r#"{{"image": "{good_image}"}}"#), 422, "invalid-request", "missing field `key`");
    assert_problem(&notarium, r#"{"key": "dev-ecdsa"}"#, 422, "invalid-request", "missing field `image`");
    assert_problem(&notarium, sign_body("demo/app:v1", "dev-ecdsa"), 400, "missing-registry-host", "no registry host");
    assert_problem(
        &notarium,
        sign_body(&format!("{host}/demo/app@sha256:1234"), "dev-ecdsa"),
        400,
        "malformed-digest",
        "sha256:1234",
    );
    assert_problem(&notarium, sign_body(&good_image, "no-such-key"), 404, "unknown-key", "no-such-key");
    assert_problem(
        &notarium,
        sign_body(&format!("{host}/demo/absent:v1"), "dev-ecdsa"),
        404,
        "image-not-found",
        "demo/absent",
    );
    let big = format!(r#"{{"image": "{good_image}", "key": "dev-ecdsa", "pad": "{}"}}"#, "x".repeat(1024 * 1024));
    assert_problem(&notarium, big, 413, "body-too-large", "length limit");
    assert!(registry.manifest("demo/app", &format!("sha256-{}.sig", &digest[7..])).is_none());
}

#[test]
fn unreachable_and_plain_http_registries_are_named_problems() {
    let registry = Registry::start();
    let digest = push_image(&registry, "demo/app", "v1", "not-allowed");
    let dead = format!("127.0.0.1:{}", free_port());
    // The registry is allowed but not on the plain-HTTP list: notarium speaks HTTPS to it.
    let notarium =
        Notarium::start_with_config(&format!("[registries]\nallow = [\"{}\"]\n", registry.host), &[&dead], &[]);
    assert_problem(
        &notarium,
        sign_body(&format!("{dead}/demo/app:v1"), "dev-ecdsa"),
        502,
        "registry-unreachable",
        &format!("registry {dead} could not be reached"),
    );
    assert_problem(
        &notarium,
        sign_body(&format!("{}/demo/app@{digest}", registry.host), "dev-ecdsa"),
        502,
        "registry-unreachable",
        "plain HTTP is spoken only to registries listed in [registries] insecure",
    );
}

#[test]
fn a_registry_that_refuses_the_write_leaves_no_row_claiming_a_signature() {
    let mut registry = Registry::start();
    let digest = push_image(&registry, "demo/app", "v1", "read-only");
    registry.restart("  maintenance:\n    readonly:\n      enabled: true\n");
    let notarium = Notarium::start(&[&registry.host]);
    assert_problem(
        &notarium,
        sign_body(&format!("{}/demo/app@{digest}", registry.host), "dev-ecdsa"),
        502,
        "registry-error",
        "answered status",
    );
    assert!(registry.manifest("demo/app", &format!("sha256-{}.sig", &digest[7..])).is_none());
}

#[test]
fn keys_are_listed_with_their_versions_and_unknown_ones_are_404_problems() {
    let notarium = Notarium::start(&[]);
    let (status, body) = notarium.get_text("/v1/keys");
    assert_eq!(status, 200);
    let keys: serde_json::Value = serde_json::from_str(&body).unwrap();
    let listed: Vec<_> = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| (k["id"].as_str().unwrap(), k["algorithm"].as_str().unwrap(), k["version"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        listed,
        [("dev-ecdsa", "ecdsa-p256-sha256", 1), ("dev-ed25519", "ed25519", 1), ("dev-log", "ed25519", 1)]
    );
    let (status, pem) = notarium.get_text("/v1/keys/dev-ed25519@1/public.pem");
    assert_eq!(status, 200);
    assert_eq!(pem, keys["keys"][1]["public_key_pem"]);
    let (status, body) = notarium.get_text("/v1/keys/dev-ed25519@7/public.pem");
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("unknown-key-version"));
    let (status, body) = notarium.get_text("/v1/keys/nope/public.pem");
    assert_eq!(status, 404);
    assert!(body.contains("unknown-key"));
    assert_eq!(notarium.get_text("/healthz").0, 200);
    assert_eq!(notarium.get_text("/readyz").0, 200);
    assert!(notarium.log().contains("NOT FOR PRODUCTION"), "the example-key warning must be loud");
}
