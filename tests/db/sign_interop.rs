//! End to end against real parts: images pushed with skopeo to a CNCF distribution registry, signed
//! through notarium's HTTP API, then verified by skopeo 1.18 and cosign 2.5; and the reverse, signatures
//! written by cosign and skopeo read and checked by notarium.

use crate::support;

use std::path::Path;
use std::process::Command;

use support::{Cosign, Notarium, Registry, push_image, signature_rows, skopeo_accepts, skopeo_sign};

const OTHER_KEYS: [(&str, &str); 2] =
    [("dev-ecdsa", "tests/fixtures/other-p256.pub"), ("dev-ed25519", "tests/fixtures/other-ed25519.pub")];

fn other_key(key: &str) -> &'static Path {
    let (_, path) = OTHER_KEYS.iter().find(|(k, _)| *k == key).unwrap();
    Path::new(path)
}

fn layers(registry: &Registry, repo: &str, digest: &str) -> Vec<serde_json::Value> {
    let tag = format!("sha256-{}.sig", &digest["sha256:".len()..]);
    let manifest: serde_json::Value = serde_json::from_slice(&registry.manifest(repo, &tag).unwrap()).unwrap();
    manifest["layers"].as_array().unwrap().clone()
}

#[test]
fn skopeo_and_cosign_accept_notarium_signatures_with_the_served_key_and_refuse_another_key() {
    let registry = Registry::start();
    let notarium = Notarium::start(&[&registry.host]);
    let keys_dir = tempfile::tempdir().unwrap();
    let cosign = Cosign::new();
    for (key, repo) in [("dev-ecdsa", "demo/p256"), ("dev-ed25519", "demo/ed25519")] {
        let digest = push_image(&registry, repo, "v1", key);
        let (status, body) = notarium.sign(&format!("{}/{repo}:v1", registry.host), key);
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["digest"], digest.as_str());
        let public_key = notarium.public_key_file(key, keys_dir.path());
        let by_digest = format!("{}/{repo}@{digest}", registry.host);
        let by_tag = format!("{}/{repo}:v1", registry.host);

        let (ok, log) = skopeo_accepts(&registry, &by_digest, &public_key, "matchRepository");
        assert!(ok, "skopeo refused {key} by digest: {log}");
        let (ok, log) = skopeo_accepts(&registry, &by_tag, &public_key, "matchRepoDigestOrExact");
        assert!(ok, "skopeo refused {key} by tag: {log}");
        let (ok, log) = cosign.verify(&by_digest, &public_key);
        assert!(ok, "cosign refused {key}: {log}");

        let wrong = Path::new(support::ROOT).join(other_key(key));
        let (ok, _) = skopeo_accepts(&registry, &by_digest, &wrong, "matchRepository");
        assert!(!ok, "skopeo accepted {key}'s signature with another key");
        let (ok, _) = cosign.verify(&by_digest, &wrong);
        assert!(!ok, "cosign accepted {key}'s signature with another key");
    }
    assert_eq!(signature_rows(&notarium.database_url()), 2);
}

#[test]
fn a_second_key_appends_a_layer_and_the_same_key_twice_adds_nothing() {
    let (registry, notarium, digest) = support::registry_notarium_and_image("demo/app", "v1", "twice");
    let image = format!("{}/demo/app@{digest}", registry.host);

    let (status, first) = notarium.sign(&image, "dev-ecdsa");
    assert_eq!(status, 201, "{first}");
    let first_layers = layers(&registry, "demo/app", &digest);
    let (status, again) = notarium.sign(&image, "dev-ecdsa");
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["signature"]["created"], false);
    assert_eq!(again["signature"]["manifest_digest"], first["signature"]["manifest_digest"]);
    assert_eq!(layers(&registry, "demo/app", &digest), first_layers);

    let (status, second_key) = notarium.sign(&image, "dev-ed25519");
    assert_eq!(status, 201, "{second_key}");
    let both = layers(&registry, "demo/app", &digest);
    assert_eq!(both.len(), 2);
    assert_eq!(both[0], first_layers[0], "the first signature layer must be kept byte for byte");
    assert_eq!(signature_rows(&notarium.database_url()), 2);

    let keys_dir = tempfile::tempdir().unwrap();
    let cosign = Cosign::new();
    for key in ["dev-ecdsa", "dev-ed25519"] {
        let (ok, log) = cosign.verify(&image, &notarium.public_key_file(key, keys_dir.path()));
        assert!(ok, "cosign refused {key} after append: {log}");
    }
}

#[test]
fn cosign_and_skopeo_append_to_a_sig_manifest_notarium_wrote_and_every_signature_verifies() {
    let (registry, notarium, digest) = support::registry_notarium_and_image("demo/app", "v1", "appended");
    let image = format!("{}/demo/app@{digest}", registry.host);
    let (status, body) = notarium.sign(&image, "dev-ecdsa");
    assert_eq!(status, 201, "{body}");
    let tag = format!("sha256-{}.sig", &digest["sha256:".len()..]);
    let ours: serde_json::Value = serde_json::from_slice(&registry.manifest("demo/app", &tag).unwrap()).unwrap();
    assert_eq!(ours["config"]["mediaType"], "application/vnd.oci.empty.v1+json", "{ours}");

    let cosign = Cosign::new();
    assert!(cosign.run(&["generate-key-pair"]).status.success());
    let out = cosign.run(&["sign", "--key", "cosign.key", "--tlog-upload=false", "--allow-http-registry", &image]);
    assert!(out.status.success(), "cosign sign: {}", String::from_utf8_lossy(&out.stderr));
    let skopeo_dir = tempfile::tempdir().unwrap();
    let skopeo_pub = skopeo_sign(&registry, "demo/app", "v1", skopeo_dir.path());
    let (status, body) = notarium.sign(&image, "dev-ed25519");
    assert_eq!(status, 201, "{body}");
    assert_eq!(layers(&registry, "demo/app", &digest).len(), 4, "notarium, cosign, skopeo, notarium");

    let keys_dir = tempfile::tempdir().unwrap();
    let signers = [
        ("notarium", notarium.public_key_file("dev-ecdsa", keys_dir.path())),
        ("cosign", cosign.dir().join("cosign.pub")),
        ("skopeo", skopeo_pub),
        ("notarium ed25519", notarium.public_key_file("dev-ed25519", keys_dir.path())),
    ];
    for (signer, public_key) in &signers {
        let (ok, log) = cosign.verify(&image, public_key);
        assert!(ok, "cosign refused {signer}'s signature: {log}");
        let (ok, log) = skopeo_accepts(&registry, &image, public_key, "matchRepository");
        assert!(ok, "skopeo refused {signer}'s signature: {log}");
        let (ok, text) = notarium_verify(&image, public_key, &registry);
        assert!(ok, "notarium refused {signer}'s signature: {text}");
    }
}

#[test]
fn a_tag_is_resolved_at_the_registry_and_names_the_identity() {
    let (registry, notarium, digest) = support::registry_notarium_and_image("team/app", "1.0", "tagged");
    let (status, by_tag) = notarium.sign(&format!("{}/team/app:1.0", registry.host), "dev-ecdsa");
    assert_eq!(status, 201, "{by_tag}");
    assert_eq!(by_tag["digest"], digest.as_str());
    assert_eq!(by_tag["identity"], format!("{}/team/app:1.0", registry.host));
    assert_eq!(by_tag["image"], format!("{}/team/app:1.0@{digest}", registry.host));

    let (status, by_digest) = notarium.sign(&format!("{}/team/app@{digest}", registry.host), "dev-ed25519");
    assert_eq!(status, 201, "{by_digest}");
    assert_eq!(by_digest["identity"], format!("{}/team/app", registry.host));

    let tag = by_tag["signature"]["tag"].as_str().unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(&registry.manifest("team/app", tag).unwrap()).unwrap();
    let payload_digest = manifest["layers"][0]["digest"].as_str().unwrap();
    let payload: serde_json::Value = serde_json::from_slice(&registry.blob("team/app", payload_digest)).unwrap();
    assert_eq!(payload["critical"]["image"]["docker-manifest-digest"], digest.as_str());
    assert_eq!(payload["critical"]["type"], "cosign container image signature");
    assert!(payload.as_object().unwrap().contains_key("optional"));
}

fn notarium_verify(image: &str, public_key: &Path, registry: &Registry) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_notarium"))
        .args(["verify", image, "--insecure-registry", &registry.host, "--key"])
        .arg(public_key)
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

#[test]
fn notarium_reads_and_checks_signatures_that_cosign_and_skopeo_wrote_live() {
    let registry = Registry::start();
    let cosign = Cosign::new();
    let out = cosign.run(&["generate-key-pair"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let cosign_digest = push_image(&registry, "third/cosign", "v1", "cosign-signed");
    let cosign_image = format!("{}/third/cosign@{cosign_digest}", registry.host);
    let out =
        cosign.run(&["sign", "--key", "cosign.key", "--tlog-upload=false", "--allow-http-registry", &cosign_image]);
    assert!(out.status.success(), "cosign sign: {}", String::from_utf8_lossy(&out.stderr));
    let cosign_pub = cosign.dir().join("cosign.pub");

    let skopeo_dir = tempfile::tempdir().unwrap();
    let skopeo_digest = push_image(&registry, "third/skopeo", "v1", "skopeo-signed");
    let skopeo_pub = skopeo_sign(&registry, "third/skopeo", "v1", skopeo_dir.path());
    let skopeo_image = format!("{}/third/skopeo@{skopeo_digest}", registry.host);

    let (ok, text) = notarium_verify(&cosign_image, &cosign_pub, &registry);
    assert!(ok && text.contains("valid"), "{text}");
    let (ok, text) = notarium_verify(&skopeo_image, &skopeo_pub, &registry);
    assert!(ok, "{text}");
    let (ok, text) = notarium_verify(&cosign_image, &skopeo_pub, &registry);
    assert!(!ok && text.contains("no valid signature"), "{text}");
    let (ok, _) = notarium_verify(&skopeo_image, &cosign_pub, &registry);
    assert!(!ok);

    // notarium appends to the manifest cosign wrote without disturbing cosign's layer.
    let notarium = Notarium::start(&[&registry.host]);
    let before = layers(&registry, "third/cosign", &cosign_digest);
    let (status, body) = notarium.sign(&cosign_image, "dev-ecdsa");
    assert_eq!(status, 201, "{body}");
    let after = layers(&registry, "third/cosign", &cosign_digest);
    assert_eq!(after.len(), 2);
    assert_eq!(after[0], before[0]);
    let keys_dir = tempfile::tempdir().unwrap();
    let (ok, log) = cosign.verify(&cosign_image, &cosign_pub);
    assert!(ok, "cosign's own signature broke after notarium appended: {log}");
    let (ok, log) = cosign.verify(&cosign_image, &notarium.public_key_file("dev-ecdsa", keys_dir.path()));
    assert!(ok, "{log}");
}

#[test]
fn the_cli_sign_step_exits_zero_on_success_and_one_line_with_a_reason_otherwise() {
    let (registry, notarium, digest) = support::registry_notarium_and_image("ci/app", "main", "cli");
    let image = format!("{}/ci/app@{digest}", registry.host);
    let cli = |args: &[&str]| Command::new(env!("CARGO_BIN_EXE_notarium")).args(args).output().unwrap();

    let out = cli(&["sign", &image, "--key", "dev-ecdsa", "--server", &notarium.url]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("signed "));

    let out = cli(&["sign", &image, "--key", "nope", "--server", &notarium.url]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("unknown key \"nope\""), "{stderr}");

    let out = cli(&["sign", &image, "--key", "dev-ecdsa", "--server", "http://127.0.0.1:9", "--output", "json"]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(String::from_utf8_lossy(&out.stderr).lines().count(), 1);

    let out = cli(&["keys", "list", "--server", &notarium.url]);
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(listed.contains("dev-ecdsa@1\tecdsa-p256-sha256\tfile"), "{listed}");
    assert!(listed.contains("dev-ed25519@1\ted25519\tfile"), "{listed}");
    let out = cli(&["keys", "public", "dev-ed25519@1", "--server", &notarium.url]);
    let (_, served) = notarium.get_text("/v1/keys/dev-ed25519/public.pem");
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), served);
    let out = cli(&["keys", "public", "dev-ed25519@9", "--server", &notarium.url]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn cosign_reads_the_bundle_referrer_of_a_notarium_signature_too() {
    let (registry, notarium, digest) = support::registry_notarium_and_image("bundle/app", "v1", "bundle me");
    let image = format!("{}/bundle/app@{digest}", registry.host);
    let dir = tempfile::tempdir().unwrap();
    let cosign = Cosign::new();
    for key in ["dev-ecdsa", "dev-ed25519"] {
        let (status, body) = notarium.sign(&image, key);
        assert_eq!(status, 201, "{body}");
        let public_key = notarium.public_key_file(key, dir.path());
        let (ok, text) = cosign.verify_bundle("verify", &image, &public_key, &[]);
        assert!(ok, "cosign --new-bundle-format refused the {key} signature: {text}");
        let other = Path::new(support::ROOT).join(other_key(key));
        let (ok, text) = cosign.verify_bundle("verify", &image, &other, &[]);
        assert!(!ok, "cosign accepted another key: {text}");
    }
    let index = registry.manifest("bundle/app", &digest.replace(':', "-")).expect("the fallback referrers index");
    let index: serde_json::Value = serde_json::from_slice(&index).unwrap();
    let predicate_types: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["annotations"]["dev.sigstore.bundle.predicateType"].as_str().unwrap())
        .collect();
    assert_eq!(predicate_types, ["https://sigstore.dev/cosign/sign/v1"; 2]);
}
