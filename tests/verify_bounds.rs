//! `POST /v1/verify` against a registry serving hostile evidence: a `.sig` manifest of 10,000 layers, a
//! `.sig` layer whose blob is gone, an `.att` envelope carrying 1,000 signatures. Each verify answers with a
//! decision made within the caps of `[policies.evidence]`, and says in `skipped` what it did not read.

use crate::support;

use serde_json::{Value, json};
use support::{Notarium, Registry, push_image, tag_of};

const SLSA: &str = "https://slsa.dev/provenance/v1";
const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// The layer cap the test's configuration sets (the default is 64): what the answers must show.
const MAX_LAYERS: usize = 50;

struct Setup {
    registry: Registry,
    notarium: Notarium,
    _dir: tempfile::TempDir,
}

/// A registry, and notarium with policies for `bounds/sig` (a dev-ecdsa signature) and `bounds/att` (also an
/// SLSA attestation), no decision cache (each verify reads the registry again) and `max_layers = 50`.
fn setup() -> Setup {
    let registry = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let host = &registry.host;
    let policies = format!(
        r#"policies:
  - name: signed
    images: ["{host}/bounds/sig"]
    authorities:
      - key: dev-ecdsa
  - name: attested
    images: ["{host}/bounds/att"]
    authorities:
      - key: dev-ecdsa
    attestations:
      - predicate_type: {SLSA}
"#
    );
    std::fs::create_dir(dir.path().join("policies")).unwrap();
    std::fs::write(dir.path().join("policies/bounds.yaml"), policies).unwrap();
    let config = dir.path().join("notarium.toml");
    std::fs::write(&config, format!("[policies]\ncache_secs = 0\n\n[policies.evidence]\nmax_layers = {MAX_LAYERS}\n"))
        .unwrap();
    let notarium = Notarium::start_with(
        &[host],
        &[
            ("NOTARIUM_CONFIG", config.to_str().unwrap()),
            ("NOTARIUM_POLICIES_DIR", dir.path().join("policies").to_str().unwrap()),
        ],
    );
    Setup { registry, notarium, _dir: dir }
}

/// Pushes a fresh image to `repo` and signs it with dev-ecdsa through notarium, in the tag scheme only;
/// returns its digest and reference.
fn signed_image(s: &Setup, repo: &str, tag: &str) -> (String, String) {
    let digest = push_image(&s.registry, repo, tag, &format!("{repo}:{tag}"));
    let image = format!("{}/{repo}@{digest}", s.registry.host);
    let (status, answer) = s.notarium.sign(&image, "dev-ecdsa");
    assert_eq!(status, 201, "{answer}");
    drop_referrers(s, repo, &digest);
    (digest, image)
}

fn verify(s: &Setup, image: &str) -> Value {
    let (status, _, answer) = s.notarium.post("/v1/verify", json!({"image": image}).to_string());
    assert_eq!(status, 200, "{answer}");
    answer
}

fn strings(answer: &Value, field: &str) -> Vec<String> {
    answer[field]
        .as_array()
        .unwrap_or_else(|| panic!("no {field} in {answer}"))
        .iter()
        .map(|r| r.as_str().unwrap().to_owned())
        .collect()
}

fn has(answer: &Value, field: &str, needle: &str) -> bool {
    strings(answer, field).iter().any(|r| r.contains(needle))
}

fn manifest_json(s: &Setup, repo: &str, reference: &str) -> Value {
    serde_json::from_slice(&s.registry.manifest(repo, reference).unwrap()).unwrap()
}

/// Puts `manifest` under `reference` of `repo` with `media_type`.
fn put_manifest(s: &Setup, repo: &str, reference: &str, media_type: &str, manifest: &Value) {
    s.registry.put_manifest(repo, reference, media_type, serde_json::to_vec(manifest).unwrap());
}

/// A signature layer over the blob `digest` whose signature (72 zero bytes) verifies nothing.
fn forged_layer(digest: &str, size: usize) -> Value {
    json!({"mediaType": SIMPLE_SIGNING, "size": size, "digest": digest, "annotations": {SIGNATURE_ANNOTATION: "A".repeat(96)}})
}

/// Empties `digest`'s referrers fallback index (distribution 2.8 has no referrers API), so that only the
/// `.sig` and `.att` tags vouch for the image.
fn drop_referrers(s: &Setup, repo: &str, digest: &str) {
    let empty = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []});
    put_manifest(s, repo, &digest.replace(':', "-"), OCI_INDEX, &empty);
}

/// A signed image of `bounds/sig`: its reference, its `.sig` tag, and the manifest there as JSON.
fn signed_sig(s: &Setup, tag: &str) -> (String, String, Value) {
    let (digest, image) = signed_image(s, "bounds/sig", tag);
    let tag = tag_of(&digest, "sig");
    let manifest = manifest_json(s, "bounds/sig", &tag);
    (image, tag, manifest)
}

#[test]
fn a_sig_of_10000_layers_is_decided_within_the_layer_cap_and_says_so() {
    let s = setup();
    let (image, tag, mut manifest) = signed_sig(&s, "many");
    let valid = manifest["layers"][0].clone();
    let forged = forged_layer(valid["digest"].as_str().unwrap(), valid["size"].as_u64().unwrap() as usize);
    let too_many = format!("the .sig manifest has 10000 layers; only the first {MAX_LAYERS} were read");

    // The valid signature past the cap is not read: denied, and the answer says why.
    let mut layers = vec![forged; 9_999];
    layers.push(valid);
    manifest["layers"] = json!(layers);
    put_manifest(&s, "bounds/sig", &tag, OCI_MANIFEST, &manifest);
    let answer = verify(&s, &image);
    assert_eq!(answer["allowed"], false, "{answer}");
    assert!(has(&answer, "reasons", "no valid signature by dev-ecdsa"), "{answer}");
    assert_eq!(strings(&answer, "skipped"), [too_many.as_str()], "{answer}");

    // Within the cap it counts: allowed, with the same reason for what was not read.
    layers.rotate_right(1);
    manifest["layers"] = json!(layers);
    put_manifest(&s, "bounds/sig", &tag, OCI_MANIFEST, &manifest);
    let answer = verify(&s, &image);
    assert_eq!(answer["allowed"], true, "{answer}");
    assert_eq!(answer["signatures"][0]["authority"], "dev-ecdsa", "{answer}");
    assert_eq!(strings(&answer, "skipped"), [too_many.as_str()], "{answer}");
}

#[test]
fn a_sig_layer_whose_blob_is_missing_is_skipped_with_a_reason() {
    let s = setup();
    let (image, tag, mut manifest) = signed_sig(&s, "missing");
    let payload = b"a payload whose blob the registry loses".to_vec();
    let size = payload.len();
    let lost = s.registry.put_blob("bounds/sig", payload);
    let valid = manifest["layers"][0].clone();
    manifest["layers"] = json!([forged_layer(&lost, size), valid]);
    // distribution accepts a manifest only when it holds the blobs it names: delete the blob afterwards.
    put_manifest(&s, "bounds/sig", &tag, OCI_MANIFEST, &manifest);
    let url = format!("http://{}/v2/bounds/sig/blobs/{lost}", s.registry.host);
    let deleted = support::client().delete(&url).send().unwrap();
    assert_eq!(deleted.status(), 202, "DELETE blob");
    assert_eq!(support::client().get(&url).send().unwrap().status(), 404);

    let answer = verify(&s, &image);
    assert_eq!(answer["allowed"], true, "{answer}");
    let why = format!("layer {lost} of the .sig manifest: blob not found");
    assert_eq!(strings(&answer, "skipped"), [why], "{answer}");
}

#[test]
fn an_envelope_with_1000_signatures_is_skipped_naming_the_limit() {
    let s = setup();
    let (digest, image) = signed_image(&s, "bounds/att", "v1");
    let predicate = json!({"buildDefinition": {"buildType": "https://example.com/build/v1", "externalParameters": {"ref": "main"}},
                           "runDetails": {"builder": {"id": "https://example.com/builder"}}});
    let body = json!({"image": image, "key": "dev-ecdsa", "predicate_type": SLSA, "predicate": predicate});
    let (status, _, answer) = s.notarium.post("/v1/attest", body.to_string());
    assert_eq!(status, 201, "{answer}");
    let answer = verify(&s, &image);
    assert_eq!(answer["allowed"], true, "{answer}");
    assert_eq!(strings(&answer, "skipped"), Vec::<String>::new(), "{answer}");

    // The referrer copies are dropped, and the .att envelope replaced by the same one carrying its valid
    // signature 1,000 times.
    drop_referrers(&s, "bounds/att", &digest);
    let tag = tag_of(&digest, "att");
    let mut manifest = manifest_json(&s, "bounds/att", &tag);
    let mut envelope: Value =
        serde_json::from_slice(&s.registry.blob("bounds/att", manifest["layers"][0]["digest"].as_str().unwrap()))
            .unwrap();
    let signature = envelope["signatures"][0].clone();
    envelope["signatures"] = json!(vec![signature; 1000]);
    let bytes = serde_json::to_vec(&envelope).unwrap();
    manifest["layers"][0]["size"] = json!(bytes.len());
    let crowded = s.registry.put_blob("bounds/att", bytes);
    manifest["layers"][0]["digest"] = json!(crowded);
    put_manifest(&s, "bounds/att", &tag, OCI_MANIFEST, &manifest);

    let answer = verify(&s, &image);
    assert_eq!(answer["allowed"], false, "{answer}");
    assert!(has(&answer, "reasons", &format!("no valid {SLSA} attestation signed by an authority")), "{answer}");
    let why = format!("envelope {crowded}: the DSSE envelope has 1000 signatures; the limit is 16");
    assert_eq!(strings(&answer, "skipped"), [why], "{answer}");
}
