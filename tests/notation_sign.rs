//! `POST /v1/sign` writing every format for one digest, judged by the real tools: notation 1.3.2 verifies the
//! Notary Project JWS signature under a trust store holding notarium's CA (and refuses it under another),
//! oras 1.3.3 lists the three artifacts as referrers, an Ed25519 key gets a note instead of a notation
//! signature.

use crate::support;

use support::{Notarium, Notation, Registry, oras_discover, push_image};

const NOTARY_SIGNATURE: &str = "application/vnd.cncf.notary.signature";
const SIGSTORE_BUNDLE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";

/// A notarium whose `dev-ecdsa` carries the committed chain (a leaf for it under `root.pem`), `dev-ed25519`
/// none, with `extra` TOML appended.
fn notarium_with_chain(registry: &Registry, extra: &str) -> Notarium {
    let (root, keys) = (support::ROOT, format!("{}/keys.example", support::ROOT));
    let config = format!(
        "[[keys]]\nid = \"dev-ecdsa\"\nbackend = \"file\"\npath = \"{keys}/dev-ecdsa.pem\"\n\
         certificate_chain = \"{root}/tests/fixtures/certificates/dev-ecdsa.chain.pem\"\n\n\
         [[keys]]\nid = \"dev-ed25519\"\nbackend = \"file\"\npath = \"{keys}/dev-ed25519.pem\"\n\n\
         [[keys]]\nid = \"dev-log\"\nbackend = \"file\"\npath = \"{keys}/dev-log.pem\"\n\n{extra}"
    );
    Notarium::start_with_config(&config, &[&registry.host], &[])
}

fn sign(notarium: &Notarium, body: serde_json::Value) -> (u16, serde_json::Value) {
    let (status, _, answer) = notarium.post("/v1/sign", body.to_string());
    (status, answer)
}

fn formats_of(answer: &serde_json::Value) -> Vec<&str> {
    answer["artifacts"].as_array().unwrap().iter().map(|a| a["format"].as_str().unwrap()).collect()
}

#[test]
fn one_sign_writes_three_formats_that_notation_verifies_under_notariums_ca_only_and_oras_lists() {
    let registry = Registry::start();
    let notarium = notarium_with_chain(&registry, "[sign]\nnotation_expiry_days = 30\n");
    let digest = push_image(&registry, "notation/app", "v1", "three formats");
    let image = format!("{}/notation/app@{digest}", registry.host);
    let (status, answer) = sign(&notarium, serde_json::json!({"image": image, "key": "dev-ecdsa"}));
    assert_eq!(status, 201, "{answer}\n{}", notarium.log());
    assert_eq!(formats_of(&answer), ["cosign", "bundle", "notation"], "{answer}");
    assert!(answer.get("notes").is_none(), "{answer}");

    // One register entry lists all three artifacts.
    let index = answer["log"]["index"].as_u64().unwrap();
    let (_, page) = notarium.get_text(&format!("/v1/log/entries?start={index}&end={}", index + 1));
    let page: serde_json::Value = serde_json::from_str(&page).unwrap();
    let listed = &page["entries"][0]["entry"]["details"]["artifacts"];
    let digests: Vec<&str> =
        answer["artifacts"].as_array().unwrap().iter().map(|a| a["manifest_digest"].as_str().unwrap()).collect();
    let logged: Vec<&str> = listed.as_array().unwrap().iter().map(|a| a["manifest_digest"].as_str().unwrap()).collect();
    assert_eq!(logged, digests, "{listed}");

    // oras sees the bundle and the Notary signature as referrers (the `.sig` layer is a tag, not a referrer).
    let referrers = oras_discover(&image);
    let types: Vec<&str> = referrers.iter().map(|r| r.artifact_type.as_str()).collect();
    assert!(types.contains(&NOTARY_SIGNATURE) && types.contains(&SIGSTORE_BUNDLE), "{referrers:?}");
    assert!(referrers.iter().any(|r| r.digest == digests[2] && r.artifact_type == NOTARY_SIGNATURE));
    assert!(referrers.iter().any(|r| r.digest == digests[1] && r.artifact_type == SIGSTORE_BUNDLE));
    assert!(registry.manifest("notation/app", &(digest.replace(':', "-") + ".sig")).is_some());

    // notation accepts it with notarium's CA in the trust store...
    let root = format!("{}/tests/fixtures/certificates/root.pem", support::ROOT);
    let trusting = Notation::new();
    trusting.add_trusted_cert("ca", "notarium", std::path::Path::new(&root));
    trusting.write_trust_policy("strict", &["ca:notarium"], &["*"]);
    let (ok, text) = trusting.verify(&image);
    assert!(ok, "notation refused notarium's signature: {text}");
    // ... and under a trust store holding another CA (notation's own test CA) refuses it.
    let other = Notation::new();
    other.generate_test("other-ca");
    other.write_trust_policy("strict", &["ca:other-ca"], &["*"]);
    let (ok, text) = other.verify(&image);
    assert!(!ok, "notation accepted a signature under a CA it was not given: {text}");

    // Signing again with the same key writes nothing in any format.
    let (status, again) = sign(&notarium, serde_json::json!({"image": image, "key": "dev-ecdsa"}));
    assert_eq!(status, 200, "{again}");
    assert_eq!(oras_discover(&image).len(), referrers.len());
}

#[test]
fn an_ed25519_key_or_a_key_without_a_chain_skips_notation_with_a_note_not_a_failure() {
    let registry = Registry::start();
    let notarium = notarium_with_chain(&registry, "");
    let digest = push_image(&registry, "notation/ed", "v1", "ed25519");
    let image = format!("{}/notation/ed@{digest}", registry.host);
    let (status, answer) = sign(&notarium, serde_json::json!({"image": image, "key": "dev-ed25519"}));
    assert_eq!(status, 201, "{answer}");
    assert_eq!(formats_of(&answer), ["cosign", "bundle"], "{answer}");
    let note = answer["notes"][0].as_str().unwrap();
    assert!(note.starts_with("notation not written: key dev-ed25519 is Ed25519"), "{note}");
    assert!(note.contains("ECDSA P-256/P-384/P-521 and RSA"), "{note}");
    assert!(oras_discover(&image).iter().all(|r| r.artifact_type != NOTARY_SIGNATURE));

    // Asking for notation alone with that key: nothing can be written, and the answer says why.
    let (status, answer) =
        sign(&notarium, serde_json::json!({"image": image, "key": "dev-ed25519", "formats": ["notation"]}));
    assert_eq!(status, 400, "{answer}");
    assert!(answer["type"].as_str().unwrap().ends_with("/invalid-formats"), "{answer}");

    // The default notarium keys have no chain: notation is skipped, with the reason.
    let plain = Notarium::start(&[&registry.host]);
    let (status, answer) = sign(&plain, serde_json::json!({"image": image, "key": "dev-ecdsa"}));
    assert_eq!(status, 201, "{answer}");
    assert!(answer["notes"][0].as_str().unwrap().contains("has no X.509 certificate chain"), "{answer}");
}

#[test]
fn formats_per_request_and_per_registry_choose_what_is_written() {
    let registry = Registry::start();
    let extra = format!("[registries.formats]\n\"{}\" = [\"notation\"]\n", registry.host);
    let notarium = notarium_with_chain(&registry, &extra);
    let digest = push_image(&registry, "notation/only", "v1", "notation only");
    let image = format!("{}/notation/only@{digest}", registry.host);
    let (status, answer) = sign(&notarium, serde_json::json!({"image": image, "key": "dev-ecdsa"}));
    assert_eq!(status, 201, "{answer}");
    assert_eq!(formats_of(&answer), ["notation"], "the registry's formats: {answer}");
    assert!(registry.manifest("notation/only", &(digest.replace(':', "-") + ".sig")).is_none());
    let (status, answer) =
        sign(&notarium, serde_json::json!({"image": image, "key": "dev-ecdsa", "formats": ["cosign", "bundle"]}));
    assert_eq!(status, 201, "{answer}");
    assert_eq!(formats_of(&answer), ["cosign", "bundle"], "the request's formats: {answer}");
    let (status, answer) = sign(&notarium, serde_json::json!({"image": image, "key": "dev-ecdsa", "formats": []}));
    assert_eq!(status, 400, "{answer}");
    assert!(answer["type"].as_str().unwrap().ends_with("/invalid-formats"), "{answer}");
}
