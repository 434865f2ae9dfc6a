//! Attestations through `POST /v1/attest` against a real registry: cosign 2.5 `verify-attestation` accepts
//! them with the served key and refuses another key, securesystemslib (an independent DSSE implementation)
//! verifies the stored envelope, the register records them, and bad predicates are clear problems.

use crate::support;

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};
use support::{Cosign, Notarium, Registry, RegistryKind, slsa_predicate};

fn attest(notarium: &Notarium, image: &str, key: &str, predicate_type: &str, predicate: Value) -> (u16, Value) {
    let body = json!({"image": image, "key": key, "predicate_type": predicate_type, "predicate": predicate});
    let (status, _, answer) = notarium.post("/v1/attest", body.to_string());
    (status, answer)
}

fn verify_attestation(cosign: &Cosign, image: &str, key: &Path, predicate_type: &str) -> (bool, String) {
    let key = key.to_str().unwrap();
    let args = ["verify-attestation", "--key", key, "--type", predicate_type, "--insecure-ignore-tlog"];
    let out = cosign.run(&[&args[..], &["--allow-http-registry", "--offline", image]].concat());
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

fn verify_bundle_attestation(cosign: &Cosign, image: &str, key: &Path, predicate_type: &str) -> (bool, String) {
    cosign.verify_bundle("verify-attestation", image, key, &["--type", predicate_type])
}

/// The envelope stored as the first layer of the `.att` manifest, written to a file.
fn stored_envelope(registry: &Registry, repo: &str, digest: &str, dir: &Path) -> std::path::PathBuf {
    let manifest = registry.manifest(repo, &format!("{}.att", digest.replace(':', "-"))).expect(".att tag");
    let manifest: Value = serde_json::from_slice(&manifest).unwrap();
    let layer = &manifest["layers"][0];
    assert_eq!(layer["mediaType"], "application/vnd.dsse.envelope.v1+json");
    let path = dir.join("envelope.json");
    std::fs::write(&path, registry.blob(repo, layer["digest"].as_str().unwrap())).unwrap();
    path
}

fn statement_of(envelope: &Value) -> Value {
    use base64::Engine as _;
    let payload = base64::engine::general_purpose::STANDARD.decode(envelope["payload"].as_str().unwrap()).unwrap();
    serde_json::from_slice(&payload).unwrap()
}

fn securesystemslib_verifies(envelope: &Path, key: &Path, scheme: &str) -> (bool, String) {
    let script = Path::new(support::ROOT).join("tests/tools/dsse_verify.py");
    let out = Command::new("python3")
        .env("PYTHONPATH", Path::new(support::ROOT).join(".tools/python"))
        .args([script.as_path(), envelope, key, Path::new(scheme)])
        .output()
        .unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn cosign_and_securesystemslib_accept_notarium_attestations_and_refuse_another_key() {
    let (registry, notarium, digest) = support::registry_notarium_and_image("att/app", "v1", "attest me");
    let image = format!("{}/att/app@{digest}", registry.host);
    let dir = tempfile::tempdir().unwrap();
    let cosign = Cosign::new();
    let slsa = "https://slsa.dev/provenance/v1";

    let (status, answer) = attest(&notarium, &image, "dev-ecdsa", slsa, slsa_predicate("https://github.com/acme/app"));
    assert_eq!(status, 201, "{answer}");
    assert_eq!(answer["attestation"]["tag"], format!("{}.att", digest.replace(':', "-")));
    let (status, answer) = attest(
        &notarium,
        &image,
        "dev-ed25519",
        "https://cyclonedx.org/bom",
        json!({"bomFormat": "CycloneDX", "specVersion": "1.5"}),
    );
    assert_eq!(status, 201, "{answer}");

    let ecdsa = notarium.public_key_file("dev-ecdsa", dir.path());
    let ed25519 = notarium.public_key_file("dev-ed25519", dir.path());
    let (ok, text) = verify_attestation(&cosign, &image, &ecdsa, "slsaprovenance1");
    assert!(ok, "cosign refused the SLSA attestation: {text}");
    let printed: Value = serde_json::from_str(text.lines().next().unwrap()).expect("cosign prints the envelope");
    assert_eq!(
        statement_of(&printed)["predicate"]["buildDefinition"]["externalParameters"]["workflow"]["repository"],
        "https://github.com/acme/app"
    );
    let (ok, text) = verify_attestation(&cosign, &image, &ed25519, "cyclonedx");
    assert!(ok, "cosign refused the CycloneDX attestation: {text}");
    let other = Path::new(support::ROOT).join("tests/fixtures/other-p256.pub");
    let (ok, text) = verify_attestation(&cosign, &image, &other, "slsaprovenance1");
    assert!(!ok, "cosign accepted an attestation with another key: {text}");

    let index = registry.manifest("att/app", &digest.replace(':', "-")).expect("the fallback referrers index");
    let index: Value = serde_json::from_slice(&index).unwrap();
    let bundles: Vec<&Value> = index["manifests"].as_array().unwrap().iter().collect();
    assert_eq!(bundles.len(), 2, "{index}");
    assert!(bundles.iter().all(|d| d["artifactType"] == "application/vnd.dev.sigstore.bundle.v0.3+json"), "{index}");
    assert_eq!(bundles[0]["annotations"]["dev.sigstore.bundle.predicateType"], slsa);
    let (ok, text) = verify_bundle_attestation(&cosign, &image, &ecdsa, "slsaprovenance1");
    assert!(ok, "cosign refused the bundle (referrer) layout: {text}");
    let (ok, text) = verify_bundle_attestation(&cosign, &image, &ed25519, "cyclonedx");
    assert!(ok, "cosign refused the Ed25519 bundle: {text}");
    let (ok, text) = verify_bundle_attestation(&cosign, &image, &other, "slsaprovenance1");
    assert!(!ok, "cosign accepted a bundle with another key: {text}");

    let envelope = stored_envelope(&registry, "att/app", &digest, dir.path());
    let (ok, text) = securesystemslib_verifies(&envelope, &ecdsa, "ecdsa-sha2-nistp256");
    assert!(ok && text.contains("verified application/vnd.in-toto+json"), "{text}");
    let (ok, text) = securesystemslib_verifies(&envelope, &other, "ecdsa-sha2-nistp256");
    assert!(!ok && text.starts_with("rejected"), "{text}");
    let statement = statement_of(&serde_json::from_slice(&std::fs::read(&envelope).unwrap()).unwrap());
    assert_eq!(statement["_type"], "https://in-toto.io/Statement/v1");
    assert_eq!(statement["subject"][0]["digest"]["sha256"], digest.trim_start_matches("sha256:"));
    assert_eq!(statement["subject"][0]["name"], format!("{}/att/app", registry.host));

    let (_, page) = notarium.get_text("/v1/log/entries?start=0&end=10");
    let page: Value = serde_json::from_str(&page).unwrap();
    let attests: Vec<&Value> =
        page["entries"].as_array().unwrap().iter().map(|e| &e["entry"]).filter(|e| e["kind"] == "attest").collect();
    assert_eq!(attests.len(), 2, "{page}");
    assert_eq!(attests[0]["subject"]["digest"], digest.as_str());
    assert_eq!(attests[0]["details"]["predicate_type"], slsa);
}

#[test]
fn bad_predicates_and_oversized_envelopes_are_refused_before_anything_is_written() {
    let (registry, notarium, digest) = support::registry_notarium_and_image("att/bad", "v1", "bad input");
    let image = format!("{}/att/bad@{digest}", registry.host);
    let slsa = "https://slsa.dev/provenance/v1";
    let problem = |(status, answer): (u16, Value)| {
        (status, answer["type"].as_str().unwrap_or_default().to_owned(), answer["detail"].to_string())
    };

    let (status, kind, detail) = problem(attest(&notarium, &image, "dev-ecdsa", slsa, json!("{not json")));
    assert_eq!((status, kind.as_str()), (422, "https://notarium.dev/problems/invalid-predicate"), "{detail}");
    assert!(detail.contains("not JSON"), "{detail}");

    let mut missing = slsa_predicate("https://github.com/acme/app");
    missing["buildDefinition"].as_object_mut().unwrap().remove("externalParameters");
    let (status, kind, detail) = problem(attest(&notarium, &image, "dev-ecdsa", slsa, missing));
    assert_eq!((status, kind.as_str()), (422, "https://notarium.dev/problems/invalid-predicate"), "{detail}");
    assert!(detail.contains("buildDefinition.externalParameters"), "{detail}");

    let (status, kind, detail) = problem(attest(&notarium, &image, "dev-ecdsa", "not a uri", json!({})));
    assert_eq!((status, kind.as_str()), (422, "https://notarium.dev/problems/invalid-predicate"), "{detail}");

    let big = json!({"blob": "x".repeat(900 * 1024)});
    let (status, kind, detail) = problem(attest(&notarium, &image, "dev-ecdsa", "https://example.com/big/v1", big));
    assert_eq!((status, kind.as_str()), (413, "https://notarium.dev/problems/too-large"), "{detail}");
    assert!(detail.contains("DSSE envelope"), "{detail}");

    assert!(registry.manifest("att/bad", &format!("{}.att", digest.replace(':', "-"))).is_none());
    let (_, page) = notarium.get_text("/v1/log/entries?start=0&end=10");
    assert!(!page.contains("\"attest\""), "{page}");
}

#[test]
fn twenty_concurrent_attestations_on_one_digest_are_all_kept_and_cosign_finds_them_all() {
    RegistryKind::ALL.into_iter().for_each(twenty_concurrent_attestations);
}

/// The bundle referrers in the fallback index without a referrers API; listed by the API, and no fallback tag,
/// with one.
fn twenty_concurrent_attestations(kind: RegistryKind) {
    let registry = Registry::start_kind(kind);
    let notarium = Notarium::start(&[&registry.host]);
    let digest = support::push_image(&registry, "att/many", "v1", "many");
    let image = format!("{}/att/many@{digest}", registry.host);
    let threads: Vec<_> = (0..20)
        .map(|n| {
            let (url, image) = (notarium.url.clone(), image.clone());
            std::thread::spawn(move || {
                let body = json!({"image": image, "key": "dev-ecdsa", "predicate_type": "https://example.com/scan/v1",
                    "predicate": {"scan": n}});
                support::client().post(format!("{url}/v1/attest")).json(&body).send().unwrap().status().as_u16()
            })
        })
        .collect();
    let statuses: Vec<u16> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert!(statuses.iter().all(|&s| s == 201), "{statuses:?}");
    let manifest = registry.manifest("att/many", &format!("{}.att", digest.replace(':', "-"))).unwrap();
    let manifest: Value = serde_json::from_slice(&manifest).unwrap();
    assert_eq!(manifest["layers"].as_array().unwrap().len(), 20);

    let dir = tempfile::tempdir().unwrap();
    let key = notarium.public_key_file("dev-ecdsa", dir.path());
    let (ok, text) = verify_attestation(&Cosign::new(), &image, &key, "https://example.com/scan/v1");
    assert!(ok, "{text}");
    let mut scans: Vec<i64> = text
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| statement_of(&serde_json::from_str(l).unwrap())["predicate"]["scan"].as_i64().unwrap())
        .collect();
    scans.sort();
    assert_eq!(scans, (0..20).collect::<Vec<_>>());

    assert_eq!(registry.referrer_entries("att/many", &digest).len(), 20, "{kind:?}");
    assert_eq!(registry.has_fallback_tag("att/many", &digest), !kind.has_referrers_api(), "{kind:?}");
    let (ok, text) = verify_bundle_attestation(&Cosign::new(), &image, &key, "https://example.com/scan/v1");
    assert!(ok, "{text}");
    let bundles = text.lines().filter(|l| l.starts_with('{')).count();
    assert_eq!(bundles, 20, "cosign found {bundles} of 20 bundles: {text}");
}

#[test]
fn a_registry_with_referrers_off_gets_the_att_tag_only() {
    let registry = Registry::start();
    let config = format!("[registries]\nreferrers_off = [\"{}\"]\n", registry.host);
    let notarium = Notarium::start_with_config(&config, &[&registry.host], &[]);
    let digest = support::push_image(&registry, "att/tagonly", "v1", "tag only");
    let image = format!("{}/att/tagonly@{digest}", registry.host);
    let (status, answer) = attest(
        &notarium,
        &image,
        "dev-ecdsa",
        "https://slsa.dev/provenance/v1",
        slsa_predicate("https://github.com/acme/app"),
    );
    assert_eq!(status, 201, "{answer}");
    assert!(registry.manifest("att/tagonly", &digest.replace(':', "-")).is_none(), "a fallback referrers index");

    let dir = tempfile::tempdir().unwrap();
    let key = notarium.public_key_file("dev-ecdsa", dir.path());
    let cosign = Cosign::new();
    assert!(verify_attestation(&cosign, &image, &key, "slsaprovenance1").0);
    let (ok, text) = verify_bundle_attestation(&cosign, &image, &key, "slsaprovenance1");
    assert!(!ok, "cosign found a bundle that was never written: {text}");
}

#[test]
fn referrers_lists_what_notarium_and_cosign_attached() {
    let (registry, notarium, digest) = support::registry_notarium_and_image("att/list", "v1", "list me");
    let image = format!("{}/att/list@{digest}", registry.host);
    assert_eq!(notarium.sign(&image, "dev-ecdsa").0, 201);
    assert_eq!(
        attest(
            &notarium,
            &image,
            "dev-ecdsa",
            "https://slsa.dev/provenance/v1",
            slsa_predicate("https://github.com/acme/app")
        )
        .0,
        201
    );
    let cosign = Cosign::new();
    assert!(cosign.run(&["generate-key-pair"]).status.success());
    let predicate = cosign.dir().join("sbom.json");
    std::fs::write(&predicate, json!({"bomFormat": "CycloneDX", "specVersion": "1.5"}).to_string()).unwrap();
    let out = cosign.run(&[
        "attest",
        "--key",
        "cosign.key",
        "--type",
        "cyclonedx",
        "--predicate",
        predicate.to_str().unwrap(),
        "--tlog-upload=false",
        "--allow-http-registry",
        &image,
    ]);
    assert!(out.status.success(), "cosign attest: {}", String::from_utf8_lossy(&out.stderr));

    let (status, text) = notarium.get_text(&format!("/v1/referrers?image={}/att/list:v1", registry.host));
    assert_eq!(status, 200, "{text}");
    let listed: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(listed["digest"], digest.as_str());
    assert_eq!(listed["signatures"]["layers"].as_array().unwrap().len(), 1, "{listed}");
    let predicate_types: Vec<&str> = listed["attestations"]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["annotations"]["predicateType"].as_str().unwrap())
        .collect();
    assert_eq!(predicate_types, ["https://slsa.dev/provenance/v1", "https://cyclonedx.org/bom"], "{listed}");
    let referrers: Vec<&str> = listed["referrers"]
        .as_array()
        .unwrap()
        .iter()
        .inspect(|r| assert_eq!(r["artifactType"], "application/vnd.dev.sigstore.bundle.v0.3+json"))
        .map(|r| r["annotations"]["dev.sigstore.bundle.predicateType"].as_str().unwrap())
        .collect();
    assert_eq!(referrers, ["https://sigstore.dev/cosign/sign/v1", "https://slsa.dev/provenance/v1"], "{listed}");

    let (status, text) = notarium.get_text("/v1/referrers");
    assert_eq!(status, 400, "{text}");
    let (status, text) = notarium.get_text(&format!("/v1/referrers?image={}/att/nothing:v1", registry.host));
    assert_eq!(status, 404, "{text}");
}
