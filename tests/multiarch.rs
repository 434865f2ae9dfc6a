//! Multi-platform images (an OCI image index built in the test, pushed with `skopeo copy --all`):
//! `"recursive": true` signs and attests an image index and each platform manifest
//! in it, skopeo and cosign verify every one; without `recursive` an index is refused with a clear problem.
//! `notarium sign|attest --recursive` does the same from the command line; an index listing more manifests
//! than a recursive request covers, or a batch whose images and platforms exceed `[sign] max_batch_manifests`,
//! is refused before anything is signed.

use crate::support;

use std::path::Path;
use std::process::Output;

use serde_json::{Value, json};
use support::{Cosign, Notarium, Registry, push_image, push_index, skopeo_accepts};

/// No `sign` entry among the register's first 20.
fn assert_nothing_signed(notarium: &Notarium) {
    let (_, page) = notarium.get_text("/v1/log/entries?start=0&end=20");
    let page: Value = serde_json::from_str(&page).unwrap();
    assert!(page["entries"].as_array().unwrap().iter().all(|e| e["entry"]["kind"] != "sign"), "{page}");
}

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
        let out = verify_cyclonedx(&cosign, &ed25519, &image);
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

/// `cosign verify-attestation` of the CycloneDX attestation on `image` with `key`, offline.
fn verify_cyclonedx(cosign: &Cosign, key: &Path, image: &str) -> Output {
    let key = key.to_str().unwrap();
    let flags = ["--type", "cyclonedx", "--insecure-ignore-tlog", "--allow-http-registry", "--offline"];
    cosign.run(&[&["verify-attestation", "--key", key][..], &flags, &[image]].concat())
}

#[test]
fn the_cli_signs_and_attests_an_index_and_each_platform_only_with_recursive() {
    let registry = Registry::start();
    let notarium = Notarium::start(&[&registry.host]);
    let (index, platforms) = push_index(&registry, "multi/cli", "v1", &["amd64", "arm64", "s390x"]);
    let by_tag = format!("{}/multi/cli:v1", registry.host);
    let dir = tempfile::tempdir().unwrap();
    let key = notarium.public_key_file("dev-ecdsa", dir.path());
    let cosign = Cosign::new();
    let every_manifest: Vec<String> =
        [&index].into_iter().chain(&platforms).map(|d| format!("{}/multi/cli@{d}", registry.host)).collect();

    let out = notarium.cli(&["sign", &by_tag, "--key", "dev-ecdsa"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("3 platform manifests") && stderr.contains("--recursive"), "{stderr}");
    assert!(every_manifest.iter().all(|image| !cosign.verify(image, &key).0), "nothing is signed without --recursive");

    let out = notarium.cli(&["sign", &by_tag, "--key", "dev-ecdsa", "--recursive"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(stdout.lines().count(), 4, "{stdout}");
    for digest in &platforms {
        assert!(stdout.lines().any(|l| l.starts_with("  signed ") && l.contains(digest.as_str())), "{stdout}");
    }
    for image in &every_manifest {
        let (ok, log) = cosign.verify(image, &key);
        assert!(ok, "cosign refused {image}: {log}");
    }

    let out = notarium.cli(&["--output", "json", "sign", &by_tag, "--key", "dev-ecdsa", "-r"]);
    let again: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(again["digest"], index.as_str());
    let platform_answers = again["platforms"].as_array().unwrap();
    assert_eq!(platform_answers.iter().map(|p| p["digest"].as_str().unwrap()).collect::<Vec<_>>(), platforms);
    assert!(platform_answers.iter().all(|p| p["signature"]["created"] == false), "{again}");

    let predicate = dir.path().join("sbom.json");
    std::fs::write(&predicate, json!({"bomFormat": "CycloneDX", "specVersion": "1.5"}).to_string()).unwrap();
    let attest = ["attest", &by_tag, "--key", "dev-ed25519", "--type", "https://cyclonedx.org/bom", "--predicate"];
    let out = notarium.cli(&[&attest[..], &[predicate.to_str().unwrap()]].concat());
    assert_eq!(out.status.code(), Some(1), "an index without --recursive is refused");
    let out = notarium.cli(&[&attest[..], &[predicate.to_str().unwrap(), "--recursive"]].concat());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let ed25519 = notarium.public_key_file("dev-ed25519", dir.path());
    for image in &every_manifest {
        let out = verify_cyclonedx(&cosign, &ed25519, image);
        assert!(out.status.success(), "cosign refused {image}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

#[test]
fn a_recursive_request_on_an_index_of_more_than_64_manifests_is_refused_and_signs_nothing() {
    let registry = Registry::start();
    let notarium = Notarium::start(&[&registry.host]);
    let child = push_image(&registry, "multi/wide", "one", "the only platform");
    let size = registry.manifest("multi/wide", "one").unwrap().len();
    let entry = json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": child, "size": size,
        "platform": {"architecture": "amd64", "os": "linux"}});
    let index_type = "application/vnd.oci.image.index.v1+json";
    let index =
        |entries: usize| json!({"schemaVersion": 2, "mediaType": index_type, "manifests": vec![&entry; entries]});
    registry.put_manifest("multi/wide", "wide", index_type, index(65).to_string().into_bytes());
    registry.put_manifest("multi/wide", "widest-allowed", index_type, index(64).to_string().into_bytes());

    let image = format!("{}/multi/wide:wide", registry.host);
    let (status, problem) = post(&notarium, "/v1/sign", json!({"image": image, "key": "dev-ecdsa", "recursive": true}));
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["type"], "https://notarium.dev/problems/index-too-large");
    assert!(problem["detail"].as_str().unwrap().contains("65 manifests"), "{problem}");
    assert_nothing_signed(&notarium);

    let image = format!("{}/multi/wide:widest-allowed", registry.host);
    let (status, signed) = post(&notarium, "/v1/sign", json!({"image": image, "key": "dev-ecdsa", "recursive": true}));
    assert_eq!(status, 201, "{signed}");
    assert_eq!(signed["platforms"].as_array().unwrap().len(), 64);
}

#[test]
fn a_batch_whose_images_and_platforms_exceed_max_batch_manifests_is_refused_and_signs_nothing() {
    let registry = Registry::start();
    let config = format!("[sign]\nmax_batch_manifests = 4\n{}", support::EXAMPLE_KEYS);
    let notarium = Notarium::start_with_config(&config, &[&registry.host], &[]);
    push_index(&registry, "multi/one", "v1", &["amd64", "arm64"]);
    push_index(&registry, "multi/two", "v1", &["amd64", "arm64"]);
    push_image(&registry, "multi/plain", "v1", "one manifest");
    let image = |repo: &str| format!("{}/multi/{repo}:v1", registry.host);

    let both_indexes = json!({"images": [image("one"), image("two")], "key": "dev-ecdsa", "recursive": true});
    let (status, problem) = post(&notarium, "/v1/sign", both_indexes);
    assert_eq!(status, 413, "{problem}");
    assert_eq!(problem["type"], "https://notarium.dev/problems/batch-too-large");
    assert!(problem["detail"].as_str().unwrap().contains("make 6 manifests"), "{problem}");
    assert_nothing_signed(&notarium);

    let at_the_limit = json!({"images": [image("one"), image("plain")], "key": "dev-ecdsa", "recursive": true});
    let (status, signed) = post(&notarium, "/v1/sign", at_the_limit);
    assert_eq!(status, 201, "{signed}");
    let platforms = signed["results"][0]["outcome"]["platforms"].as_array().unwrap();
    assert_eq!(platforms.len(), 2, "{signed}");
    assert!(platforms.iter().all(|p| p["signature"]["created"] == true), "{signed}");
}
