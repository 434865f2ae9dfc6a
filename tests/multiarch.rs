//! Multi-platform images (an OCI image index built in the test, pushed with `skopeo copy --all`):
//! `"recursive": true` signs and attests an image index and each platform manifest
//! in it, skopeo and cosign verify every one; without `recursive` an index is refused with a clear problem.

use crate::support;

use std::path::Path;

use serde_json::{Value, json};
use support::{Cosign, Notarium, Registry, push_index, skopeo_accepts};

fn post(notarium: &Notarium, path: &str, body: Value) -> (u16, Value) {
    let (status, _, answer) = notarium.post(path, body.to_string());
    (status, answer)
}

#[test]
fn a_recursive_sign_and_attest_cover_the_index_and_each_platform_and_verifiers_accept_each() {
    let registry = Registry::start();
    let notarium = Notarium::start(&[&registry.host]);
    let (index, platforms) = push_index(&registry, "multi/app", "v1", &["amd64", "arm64"]);
    let by_tag = format!("{}/multi/app:v1", registry.host);

    let (status, problem) = post(&notarium, "/v1/sign", json!({"image": by_tag, "key": "dev-ecdsa"}));
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["type"], "https://notarium.dev/problems/index-needs-recursive");
    assert!(problem["detail"].as_str().unwrap().contains("2 platform manifests"), "{problem}");

    let (status, signed) = post(&notarium, "/v1/sign", json!({"image": by_tag, "key": "dev-ecdsa", "recursive": true}));
    assert_eq!(status, 201, "{signed}");
    assert_eq!(signed["digest"], index.as_str());
    let signed_platforms: Vec<&str> =
        signed["platforms"].as_array().unwrap().iter().map(|p| p["digest"].as_str().unwrap()).collect();
    assert_eq!(signed_platforms, platforms);
    assert!(signed["platforms"].as_array().unwrap().iter().all(|p| p["signature"]["created"] == true));

    let dir = tempfile::tempdir().unwrap();
    let key = notarium.public_key_file("dev-ecdsa", dir.path());
    let cosign = Cosign::new();
    for digest in platforms.iter().chain([&index]) {
        let image = format!("{}/multi/app@{digest}", registry.host);
        let (ok, log) = cosign.verify(&image, &key);
        assert!(ok, "cosign refused {image}: {log}");
        let (ok, log) = skopeo_accepts(&registry, &image, &key, "matchRepository");
        assert!(ok, "skopeo refused {image}: {log}");
    }
    let other = Path::new(support::ROOT).join("tests/fixtures/other-p256.pub");
    assert!(!cosign.verify(&format!("{}/multi/app@{}", registry.host, platforms[1]), &other).0);

    let predicate = json!({"bomFormat": "CycloneDX", "specVersion": "1.5"});
    let body = json!({"image": by_tag, "key": "dev-ed25519", "predicate_type": "https://cyclonedx.org/bom",
        "predicate": predicate, "recursive": true});
    let (status, attested) = post(&notarium, "/v1/attest", body);
    assert_eq!(status, 201, "{attested}");
    assert_eq!(attested["platforms"].as_array().unwrap().len(), 2);
    let ed25519 = notarium.public_key_file("dev-ed25519", dir.path());
    for digest in platforms.iter().chain([&index]) {
        let image = format!("{}/multi/app@{digest}", registry.host);
        let out = cosign.run(&[
            "verify-attestation",
            "--key",
            ed25519.to_str().unwrap(),
            "--type",
            "cyclonedx",
            "--insecure-ignore-tlog",
            "--allow-http-registry",
            "--offline",
            &image,
        ]);
        assert!(
            out.status.success(),
            "cosign refused the attestation on {image}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    let (_, page) = notarium.get_text("/v1/log/entries?start=0&end=20");
    let page: Value = serde_json::from_str(&page).unwrap();
    let logged = |kind: &str| page["entries"].as_array().unwrap().iter().filter(|e| e["entry"]["kind"] == kind).count();
    assert_eq!((logged("sign"), logged("attest")), (3, 3));
}
