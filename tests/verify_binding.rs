//! Verdicts bound to what they are about, against a real registry: a signature or attestation copied to
//! another repository does not count there (unless the policy accepts that repository's identity), one key
//! never meets a threshold twice, concurrent cold verifies share one set of registry reads, and a new
//! signature is seen at once by a kept allowance it changes.

use crate::support;

use std::process::Command;

use serde_json::{Value, json};
use support::{Notarium, Registry, push_image, reasons, tag_of};

const SLSA: &str = "https://slsa.dev/provenance/v1";

fn verify(notarium: &Notarium, image: &str) -> Value {
    let (status, _, answer) = notarium.post("/v1/verify", json!({"image": image}).to_string());
    assert_eq!(status, 200, "{answer}");
    answer
}

fn sign(notarium: &Notarium, image: &str, key: &str) {
    let (status, answer) = notarium.sign(image, key);
    assert!(status == 201 || status == 200, "{answer}");
}

fn attest(notarium: &Notarium, image: &str) {
    let predicate = json!({
        "buildDefinition": {"buildType": "https://actions.github.io/buildtypes/workflow/v1",
                            "externalParameters": {"workflow": {"repository": "https://github.com/acme/app"}}},
        "runDetails": {"builder": {"id": "https://github.com/actions/runner"}},
    });
    let body = json!({"image": image, "key": "dev-ecdsa", "predicate_type": SLSA, "predicate": predicate});
    let (status, _, answer) = notarium.post("/v1/attest", body.to_string());
    assert_eq!(status, 201, "{answer}");
}

fn start(registry: &Registry, policy: &str) -> (Notarium, tempfile::TempDir) {
    let policies = tempfile::tempdir().unwrap();
    std::fs::write(policies.path().join("test.yaml"), policy).unwrap();
    let dir = policies.path().to_str().unwrap();
    let notarium = Notarium::start_with(&[&registry.host], &[("NOTARIUM_POLICIES_DIR", dir)]);
    (notarium, policies)
}

/// Copies manifest `reference` of `from` to `to` as `crane copy` does: each blob mounted across
/// repositories, then the manifest put under the same reference.
fn copy_manifest(registry: &Registry, from: &str, to: &str, reference: &str) {
    let http = support::client();
    let bytes = registry.manifest(from, reference).unwrap_or_else(|| panic!("{from}:{reference} exists"));
    let manifest: Value = serde_json::from_slice(&bytes).unwrap();
    let blobs = manifest["layers"].as_array().unwrap().iter().chain([&manifest["config"]]);
    for digest in blobs.map(|b| b["digest"].as_str().unwrap()) {
        let mounted = http
            .post(format!("http://{}/v2/{to}/blobs/uploads/?mount={digest}&from={from}", registry.host))
            .send()
            .unwrap();
        assert_eq!(mounted.status(), 201, "mount {digest}");
    }
    let media_type = manifest["mediaType"].as_str().unwrap_or("application/vnd.oci.image.manifest.v1+json");
    registry.put_manifest(to, reference, media_type, bytes);
}

#[test]
fn a_signature_copied_to_another_repository_counts_only_where_the_policy_accepts_its_identity() {
    let registry = Registry::start();
    let host = &registry.host;
    let policy = format!(
        r#"policies:
  - name: team-b
    images: ["{host}/team-b/*"]
    authorities: [{{key: dev-ecdsa}}]
  - name: team-b-provenance
    images: ["{host}/team-b-att/*"]
    authorities: [{{key: dev-ecdsa}}]
    identities: ["{host}/team-a/*"]
    attestations: [{{predicate_type: "{SLSA}"}}]
  - name: promoted
    images: ["{host}/prod/*"]
    authorities: [{{key: dev-ecdsa}}]
    identities: ["{host}/staging/*"]
"#
    );
    let (notarium, _policies) = start(&registry, &policy);
    let digest = push_image(&registry, "team-a/app", "v1", "team a's image");
    sign(&notarium, &format!("{host}/team-a/app@{digest}"), "dev-ecdsa");
    attest(&notarium, &format!("{host}/team-a/app@{digest}"));
    for to in ["team-b/app", "team-b-att/app"] {
        copy_manifest(&registry, "team-a/app", to, &digest);
        copy_manifest(&registry, "team-a/app", to, &tag_of(&digest, "sig"));
        copy_manifest(&registry, "team-a/app", to, &tag_of(&digest, "att"));
    }

    let answer = verify(&notarium, &format!("{host}/team-b/app@{digest}"));
    assert_eq!((&answer["allowed"], &answer["policy"]), (&json!(false), &json!("team-b")), "{answer}");
    let why = reasons(&answer);
    assert!(why.contains(&format!("names {host}/team-a/app; {host}/team-b/app was needed")), "{answer}");

    // The signature counts there through `identities`, the statement still names team-a's repository and
    // the policy accepts that identity too; but a statement whose subject names another repository than
    // every accepted one would not count (below).
    let answer = verify(&notarium, &format!("{host}/team-b-att/app@{digest}"));
    assert_eq!(answer["allowed"], true, "{answer}");

    // Promotion by copy: signed in staging, copied to prod, accepted through `identities`.
    let staged = push_image(&registry, "staging/app", "v2", "staged image");
    sign(&notarium, &format!("{host}/staging/app@{staged}"), "dev-ecdsa");
    copy_manifest(&registry, "staging/app", "prod/app", &staged);
    copy_manifest(&registry, "staging/app", "prod/app", &tag_of(&staged, "sig"));
    let answer = verify(&notarium, &format!("{host}/prod/app@{staged}"));
    assert_eq!(answer["allowed"], true, "{answer}");
    assert_eq!(answer["signatures"][0]["identity"], format!("{host}/staging/app"), "{answer}");
}

#[test]
fn a_statement_whose_subject_names_another_repository_is_not_counted() {
    let registry = Registry::start();
    let host = &registry.host;
    let policy = format!(
        r#"policies:
  - name: strict
    images: ["{host}/team-c/*"]
    authorities: [{{key: dev-ecdsa}}]
    attestations: [{{predicate_type: "{SLSA}"}}]
"#
    );
    let (notarium, _policies) = start(&registry, &policy);
    let digest = push_image(&registry, "team-c/app", "v1", "team c's image");
    // Signed in team-c itself; the attestation was made in team-a and copied over.
    sign(&notarium, &format!("{host}/team-c/app@{digest}"), "dev-ecdsa");
    copy_manifest(&registry, "team-c/app", "team-a/app", &digest);
    attest(&notarium, &format!("{host}/team-a/app@{digest}"));
    copy_manifest(&registry, "team-a/app", "team-c/app", &tag_of(&digest, "att"));
    let answer = verify(&notarium, &format!("{host}/team-c/app@{digest}"));
    assert_eq!(answer["allowed"], false, "{answer}");
    let why = reasons(&answer);
    assert!(why.contains(&format!("subject names {host}/team-a/app; {host}/team-c/app was needed")), "{answer}");
}

#[test]
fn exact_identity_needs_the_tag_the_image_was_asked_for() {
    let registry = Registry::start();
    let host = &registry.host;
    let policy = format!(
        "policies:\n  - name: exact\n    images: [\"{host}/exact/*\"]\n    authorities: [{{key: dev-ecdsa}}]\n    identity: exact\n"
    );
    let (notarium, _policies) = start(&registry, &policy);
    let digest = push_image(&registry, "exact/app", "v1", "exact image");
    registry_tag(&registry, "exact/app", &digest, "v2");
    sign(&notarium, &format!("{host}/exact/app:v1"), "dev-ecdsa");
    assert_eq!(verify(&notarium, &format!("{host}/exact/app:v1"))["allowed"], true);
    let pinned = verify(&notarium, &format!("{host}/exact/app:v1@{digest}"));
    assert_eq!(
        (&pinned["allowed"], &pinned["cached"]),
        (&json!(true), &json!(true)),
        "mutate, then validate: {pinned}"
    );
    let answer = verify(&notarium, &format!("{host}/exact/app:v2"));
    assert_eq!(answer["allowed"], false, "{answer}");
    assert!(
        reasons(&answer).contains(&format!("names {host}/exact/app:v1; {host}/exact/app:v2 was needed")),
        "{answer}"
    );
}

/// Tags manifest `digest` of `repo` as `tag` too.
fn registry_tag(registry: &Registry, repo: &str, digest: &str, tag: &str) {
    let bytes = registry.manifest(repo, digest).unwrap();
    registry.put_manifest(repo, tag, "application/vnd.oci.image.manifest.v1+json", bytes);
}

fn indented(pem: &str) -> String {
    pem.lines().map(|l| format!("          {l}\n")).collect()
}

#[test]
fn authorities_that_stand_for_one_key_are_refused_by_policy_check_and_at_reload() {
    let dir = tempfile::tempdir().unwrap();
    let versions = "policies:\n  - name: twice\n    images: [\"r.example/a/*\"]\n    authorities:\n      - key: prod\n      - key: prod@2\n    threshold: 2\n";
    std::fs::write(dir.path().join("twice.yaml"), versions).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_notarium")).args(["policy", "check"]).arg(dir.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("twice.yaml line 6: policy \"twice\", authorities: prod and prod@2 stand for the same key"),
        "{stderr}"
    );

    // A key and its own PEM: only the key ring tells; the server keeps the policy in force.
    let registry = Registry::start();
    let host = &registry.host;
    let good =
        format!("policies:\n  - name: k\n    images: [\"{host}/k/*\"]\n    authorities:\n      - key: dev-ecdsa\n");
    let (notarium, policies) = start(&registry, &good);
    let digest = push_image(&registry, "k/app", "v1", "k image");
    let image = format!("{host}/k/app@{digest}");
    sign(&notarium, &image, "dev-ecdsa");
    assert_eq!(verify(&notarium, &image)["allowed"], true);
    let pem = std::fs::read_to_string(notarium.public_key_file("dev-ecdsa", policies.path())).unwrap();
    let overlapping = format!("{good}      - public_key: |\n{}    threshold: 2\n", indented(&pem));
    std::fs::write(policies.path().join("test.yaml"), overlapping).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !notarium.log().contains("policy change rejected") {
        assert!(std::time::Instant::now() < deadline, "the overlapping policy was not rejected: {}", notarium.log());
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let log = notarium.log();
    assert!(log.contains("dev-ecdsa and public_key #2 stand for the same key"), "{log}");
    let answer = verify(&notarium, &image);
    assert_eq!((&answer["allowed"], &answer["policy"]), (&json!(true), &json!("k")), "{answer}");
}

#[test]
fn concurrent_cold_verifies_share_one_set_of_registry_reads() {
    let registry = Registry::start_logging();
    let host = &registry.host;
    let policy =
        format!("policies:\n  - name: p\n    images: [\"{host}/hot/*\"]\n    authorities: [{{key: dev-ecdsa}}]\n");
    let (notarium, _policies) = start(&registry, &policy);
    let digest = push_image(&registry, "hot/app", "v1", "hot image");
    let image = format!("{host}/hot/app@{digest}");
    sign(&notarium, &image, "dev-ecdsa");
    let before = registry.requests().len();
    let answers: Vec<Value> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..50).map(|_| scope.spawn(|| verify(&notarium, &image))).collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    assert!(answers.iter().all(|a| a["allowed"] == true), "{answers:?}");
    let reads: Vec<String> = registry.requests()[before..].to_vec();
    let sig_reads = reads.iter().filter(|r| r.contains(&tag_of(&digest, "sig"))).count();
    assert_eq!(sig_reads, 1, "one read of the .sig manifest for 50 verifies: {reads:#?}");
    let cold = reads.len();
    assert!(verify(&notarium, &image)["cached"] == true);
    assert_eq!(registry.requests().len() - before, cold, "a warm verify reads nothing");
}

#[test]
fn a_new_signature_is_seen_at_once_by_a_kept_allowance_it_changes() {
    let registry = Registry::start();
    let host = &registry.host;
    let policy = format!(
        "policies:\n  - name: rollout\n    images: [\"{host}/roll/*\"]\n    authorities: [{{key: dev-ecdsa}}, {{key: dev-ed25519}}]\n    threshold: 2\n    mode: warn\n"
    );
    let (notarium, _policies) = start(&registry, &policy);
    let digest = push_image(&registry, "roll/app", "v1", "rolling image");
    let image = format!("{host}/roll/app@{digest}");
    sign(&notarium, &image, "dev-ecdsa");
    let first = verify(&notarium, &image);
    assert_eq!(first["allowed"], true);
    assert!(reasons(&first).contains("no valid signature by dev-ed25519"), "{first}");
    assert_eq!(verify(&notarium, &image)["cached"], true, "the warn-mode allowance is kept");
    sign(&notarium, &image, "dev-ed25519");
    let after = verify(&notarium, &image);
    assert_eq!((&after["cached"], &after["reasons"]), (&json!(false), &json!([])), "{after}");
    assert_eq!(after["signatures"].as_array().unwrap().len(), 2, "{after}");
}

#[test]
fn require_digest_denies_a_tag_in_enforce_mode() {
    let registry = Registry::start();
    let host = &registry.host;
    let policy = format!(
        "policies:\n  - name: pinned\n    images: [\"{host}/pin/*\"]\n    authorities: [{{key: dev-ecdsa}}]\n    require_digest: true\n"
    );
    let (notarium, _policies) = start(&registry, &policy);
    let digest = push_image(&registry, "pin/app", "v1", "pinned image");
    sign(&notarium, &format!("{host}/pin/app@{digest}"), "dev-ecdsa");
    let answer = verify(&notarium, &format!("{host}/pin/app:v1"));
    assert_eq!(answer["allowed"], false, "{answer}");
    assert!(reasons(&answer).contains("requires a digest (require_digest)"), "{answer}");
    assert_eq!(verify(&notarium, &format!("{host}/pin/app@{digest}"))["allowed"], true);
    assert_eq!(verify(&notarium, &format!("{host}/pin/app:v1@{digest}"))["allowed"], true);
}
