//! `POST /v1/verify` and `notarium verify --policy` against a real registry: images signed by notarium, by
//! cosign and by skopeo, allowed or denied under policies the test writes, with reasons; each decision in the
//! register.

use crate::support;

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};
use support::{Cosign, Notarium, Registry, push_image, reasons, slsa_predicate};

const SLSA: &str = "https://slsa.dev/provenance/v1";

/// PEM lines indented for a YAML block scalar.
fn indented(pem: &str) -> String {
    pem.lines().map(|l| format!("          {l}\n")).collect()
}

fn policy_file(host: &str, other_pem: &str, cosign_pem: &str) -> String {
    format!(
        r#"default: deny
policies:
  - name: signed
    images: ["{host}/pol/signed", "{host}/pol/copy"]
    authorities:
      - key: dev-ecdsa
  - name: wrong-key
    images: ["{host}/pol/wrongkey"]
    authorities:
      - public_key: |
{other}
  - name: quorum
    images: ["{host}/pol/quorum"]
    authorities:
      - key: dev-ecdsa
      - key: dev-ed25519@1
      - public_key: |
{other}
    threshold: 2
  - name: provenance
    images: ["{host}/pol/attested"]
    authorities:
      - key: dev-ecdsa
    attestations:
      - predicate_type: {SLSA}
        conditions:
          - predicate.buildDefinition.externalParameters.workflow.repository == "https://github.com/acme/app"
  - name: rollout
    images: ["{host}/pol/warned"]
    authorities:
      - key: dev-ecdsa
    mode: warn
  - name: cosign
    images: ["{host}/pol/cosign"]
    authorities:
      - public_key: |
{cosign}
"#,
        other = indented(other_pem),
        cosign = indented(cosign_pem),
    )
}

fn verify(notarium: &Notarium, image: &str) -> Value {
    let (status, _, answer) = notarium.post("/v1/verify", json!({"image": image}).to_string());
    assert_eq!(status, 200, "{answer}");
    answer
}

/// The answer for `image`, which must be `allowed` or not.
fn decided(s: &Setup, image: &str, allowed: bool) -> Value {
    let answer = verify(&s.notarium, image);
    assert_eq!(answer["allowed"], allowed, "{answer}");
    answer
}

struct Setup {
    registry: Registry,
    notarium: Notarium,
    cosign: Cosign,
    policies: tempfile::TempDir,
}

fn setup() -> Setup {
    let registry = Registry::start();
    let cosign = Cosign::new();
    assert!(cosign.run(&["generate-key-pair"]).status.success());
    let cosign_pem = std::fs::read_to_string(cosign.dir().join("cosign.pub")).unwrap();
    let other_pem = std::fs::read_to_string(Path::new(support::ROOT).join("tests/fixtures/other-p256.pub")).unwrap();
    let policies = tempfile::tempdir().unwrap();
    std::fs::write(policies.path().join("test.yaml"), policy_file(&registry.host, &other_pem, &cosign_pem)).unwrap();
    let dir = policies.path().to_str().unwrap();
    let notarium = Notarium::start_with(&[&registry.host], &[("NOTARIUM_POLICIES_DIR", dir)]);
    Setup { registry, notarium, cosign, policies }
}

fn pushed(s: &Setup, repo: &str, tag: &str) -> String {
    let digest = push_image(&s.registry, repo, tag, &format!("{repo}:{tag}"));
    format!("{}/{repo}@{digest}", s.registry.host)
}

fn sign(s: &Setup, image: &str, key: &str) {
    let (status, answer) = s.notarium.sign(image, key);
    assert!(status == 201 || status == 200, "{answer}");
}

#[test]
fn signatures_decide_under_keys_and_thresholds() {
    let s = setup();
    let signed = pushed(&s, "pol/signed", "v1");
    let answer = decided(&s, &signed, false);
    assert!(reasons(&answer).contains("no valid signature by dev-ecdsa"), "{answer}");
    sign(&s, &signed, "dev-ecdsa");
    let answer = verify(&s.notarium, &signed);
    assert_eq!((answer["allowed"].clone(), answer["policy"].clone()), (json!(true), json!("signed")), "{answer}");
    assert_eq!(answer["mode"], "enforce");
    assert_eq!(answer["signatures"][0]["authority"], "dev-ecdsa");
    assert_eq!(answer["cached"], false);
    let again = verify(&s.notarium, &signed);
    assert_eq!((again["allowed"].clone(), again["cached"].clone()), (json!(true), json!(true)), "{again}");
    let (_, metrics) = s.notarium.get_text("/metrics");
    for series in [
        r#"notarium_verify_decisions_total{outcome="denied"} 1"#,
        r#"notarium_verify_decisions_total{outcome="allowed"} 2"#,
        r#"notarium_verify_cache_lookups_total{outcome="hit"} 1"#,
        r#"notarium_verify_cache_lookups_total{outcome="miss"} 2"#,
    ] {
        assert!(metrics.contains(series), "missing {series}:\n{metrics}");
    }

    let wrong = pushed(&s, "pol/wrongkey", "v1");
    sign(&s, &wrong, "dev-ecdsa");
    let answer = decided(&s, &wrong, false);
    assert!(reasons(&answer).contains("no valid signature by public_key #1"), "{answer}");

    let quorum = pushed(&s, "pol/quorum", "v1");
    sign(&s, &quorum, "dev-ecdsa");
    let answer = decided(&s, &quorum, false);
    assert!(reasons(&answer).contains("1 of the 2 required authorities signed"), "{answer}");
    assert!(reasons(&answer).contains("no valid signature by dev-ed25519@1"), "{answer}");
    sign(&s, &quorum, "dev-ed25519");
    let answer = decided(&s, &quorum, true);
    assert_eq!(answer["signatures"].as_array().unwrap().len(), 2, "{answer}");

    let unmatched = pushed(&s, "elsewhere/app", "v1");
    let answer = verify(&s.notarium, &unmatched);
    assert_eq!((answer["allowed"].clone(), answer["policy"].clone()), (json!(false), Value::Null), "{answer}");
    assert!(reasons(&answer).contains("the default is deny"), "{answer}");
}

#[test]
fn a_signature_copied_from_another_digest_is_refused() {
    let s = setup();
    let a = push_image(&s.registry, "pol/copy", "a", "image a");
    let b = push_image(&s.registry, "pol/copy", "b", "image b");
    let host = &s.registry.host;
    sign(&s, &format!("{host}/pol/copy@{a}"), "dev-ecdsa");
    let sig_a = s.registry.manifest("pol/copy", &format!("{}.sig", a.replace(':', "-"))).unwrap();
    put_manifest(&s.registry, "pol/copy", &format!("{}.sig", b.replace(':', "-")), sig_a);
    let answer = verify(&s.notarium, &format!("{host}/pol/copy@{b}"));
    assert_eq!(answer["allowed"], false, "{answer}");
    assert!(reasons(&answer).contains("no valid signature by dev-ecdsa"), "{answer}");
    assert_eq!(verify(&s.notarium, &format!("{host}/pol/copy@{a}"))["allowed"], true);
}

fn attest(s: &Setup, image: &str, repository: &str) {
    let body =
        json!({"image": image, "key": "dev-ecdsa", "predicate_type": SLSA, "predicate": slsa_predicate(repository)});
    let (status, _, answer) = s.notarium.post("/v1/attest", body.to_string());
    assert_eq!(status, 201, "{answer}");
}

#[test]
fn attestations_must_exist_and_meet_their_conditions() {
    let s = setup();
    let missing = pushed(&s, "pol/attested", "missing");
    sign(&s, &missing, "dev-ecdsa");
    let answer = decided(&s, &missing, false);
    assert!(reasons(&answer).contains(&format!("no valid {SLSA} attestation signed by an authority")), "{answer}");

    let evil = pushed(&s, "pol/attested", "evil");
    sign(&s, &evil, "dev-ecdsa");
    attest(&s, &evil, "https://github.com/evil/app");
    let answer = decided(&s, &evil, false);
    let expected = "buildDefinition.externalParameters.workflow.repository was \"https://github.com/evil/app\", \
                    policy requires predicate.buildDefinition.externalParameters.workflow.repository == \
                    \"https://github.com/acme/app\"";
    assert!(reasons(&answer).contains(expected), "{answer}");

    let good = pushed(&s, "pol/attested", "good");
    sign(&s, &good, "dev-ecdsa");
    attest(&s, &good, "https://github.com/acme/app");
    let answer = decided(&s, &good, true);
    assert_eq!(answer["attestations"][0]["predicate_type"], SLSA);

    let (status, page) = s.notarium.get_text(&format!("/v1/log/entries?start=0&end={}", answer["log"]["tree_size"]));
    assert_eq!(status, 200, "{page}");
    let page: Value = serde_json::from_str(&page).unwrap();
    let decisions: Vec<&Value> =
        page["entries"].as_array().unwrap().iter().map(|e| &e["entry"]).filter(|e| e["kind"] == "verify").collect();
    assert_eq!(decisions.len(), 3, "{page}");
    let last = decisions[2];
    assert_eq!(last["subject"]["digest"], answer["digest"]);
    assert_eq!(last["details"]["policy"], "provenance");
    assert_eq!(last["details"]["allowed"], true);
    assert_eq!(last["details"]["signatures"][0]["authority"], "dev-ecdsa");

    // The good image's attestation put under another signed image's .att tag is about the wrong digest.
    let copied = pushed(&s, "pol/attested", "copied");
    sign(&s, &copied, "dev-ecdsa");
    let att_tag = |image: &str| format!("{}.att", image.rsplit_once('@').unwrap().1.replace(':', "-"));
    let good_attestation = s.registry.manifest("pol/attested", &att_tag(&good)).unwrap();
    put_manifest(&s.registry, "pol/attested", &att_tag(&copied), good_attestation);
    let answer = decided(&s, &copied, false);
    assert!(reasons(&answer).contains(&format!("a {SLSA} statement names another digest")), "{answer}");
}

#[test]
fn cosign_signatures_verify_under_a_public_key_authority_in_the_server_and_the_cli() {
    let s = setup();
    let image = pushed(&s, "pol/cosign", "v1");
    decided(&s, &image, false);
    let out = s.cosign.run(&["sign", "--key", "cosign.key", "--tlog-upload=false", "--allow-http-registry", &image]);
    assert!(out.status.success(), "cosign sign: {}", String::from_utf8_lossy(&out.stderr));
    decided(&s, &image, true);

    let policy = s.policies.path().join("test.yaml");
    let cli = |image: &str| {
        Command::new(env!("CARGO_BIN_EXE_notarium"))
            .args(["verify", image, "--policy", policy.to_str().unwrap(), "--insecure-registry", &s.registry.host])
            // The policy's other authorities name configured keys.
            .args(["--config", &format!("{}/notarium.example.toml", support::ROOT)])
            .env_remove("NOTARIUM_CONFIG")
            .output()
            .unwrap()
    };
    let out = cli(&image);
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("allowed "));
    let unsigned = pushed(&s, "pol/cosign", "unsigned");
    let out = cli(&unsigned);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("no valid signature by public_key #1"));
}

#[test]
fn a_named_policy_decides_instead_of_the_one_matching_the_image() {
    let s = setup();
    let signed = pushed(&s, "pol/signed", "named");
    sign(&s, &signed, "dev-ecdsa");
    let under = |policy: &str| s.notarium.post("/v1/verify", json!({"image": signed, "policy": policy}).to_string());
    let (status, _, answer) = under("quorum");
    assert_eq!((status, &answer["allowed"], &answer["policy"]), (200, &json!(false), &json!("quorum")), "{answer}");
    assert!(reasons(&answer).contains("1 of the 2 required authorities signed"), "{answer}");
    let (status, _, answer) = under("signed");
    assert_eq!((status, &answer["allowed"], &answer["policy"]), (200, &json!(true), &json!("signed")), "{answer}");
    let (status, kind, answer) = under("no-such-policy");
    assert_eq!((status, kind.as_str()), (404, "application/problem+json"), "{answer}");
    assert_eq!(answer["type"], "https://notarium.dev/problems/unknown-policy");
    assert!(answer["detail"].as_str().unwrap().contains("\"no-such-policy\""), "{answer}");
}

#[test]
fn malformed_input_is_a_problem() {
    let s = setup();
    let (status, kind, answer) = s.notarium.post("/v1/verify", json!({"image": "no-host"}).to_string());
    assert!((400..500).contains(&status), "{status} {answer}");
    assert_eq!(kind, "application/problem+json");
    let (status, _, answer) = s.notarium.post("/v1/verify", json!({"img": "x"}).to_string());
    assert_eq!(status, 422, "{answer}");
}

/// Puts `bytes` as the OCI manifest `reference` of `repo`, as any registry client could.
fn put_manifest(registry: &Registry, repo: &str, reference: &str, bytes: Vec<u8>) {
    registry.put_manifest(repo, reference, "application/vnd.oci.image.manifest.v1+json", bytes);
}

fn put_blob(registry: &Registry, repo: &str, bytes: Vec<u8>) -> String {
    registry.put_blob(repo, bytes)
}

#[test]
fn a_tampered_payload_is_refused_and_warn_mode_allows_with_reasons() {
    let s = setup();
    // cosign 2.5 writes only the tag scheme: no bundle referrer vouches for the image besides the payload.
    let (repo, host) = ("pol/cosign", s.registry.host.clone());
    let digest = push_image(&s.registry, repo, "tampered", "tampered image");
    let image = format!("{host}/{repo}@{digest}");
    let out = s.cosign.run(&["sign", "--key", "cosign.key", "--tlog-upload=false", "--allow-http-registry", &image]);
    assert!(out.status.success(), "cosign sign: {}", String::from_utf8_lossy(&out.stderr));
    let tag = format!("{}.sig", digest.replace(':', "-"));
    let mut manifest: Value = serde_json::from_slice(&s.registry.manifest(repo, &tag).unwrap()).unwrap();
    let layer = &mut manifest["layers"][0];
    let mut payload: Value = serde_json::from_slice(&s.registry.blob(repo, layer["digest"].as_str().unwrap())).unwrap();
    payload["optional"] = json!({"tampered": "yes"});
    let payload = serde_json::to_vec(&payload).unwrap();
    layer["size"] = json!(payload.len());
    layer["digest"] = json!(put_blob(&s.registry, repo, payload));
    put_manifest(&s.registry, repo, &tag, serde_json::to_vec(&manifest).unwrap());
    let answer = decided(&s, &image, false);
    assert!(reasons(&answer).contains("no valid signature by public_key #1"), "{answer}");

    let warned = pushed(&s, "pol/warned", "v1");
    let answer = decided(&s, &warned, true);
    assert_eq!(answer["mode"], "warn");
    assert!(reasons(&answer).contains("no valid signature by dev-ecdsa"), "{answer}");
}

#[test]
fn skopeo_signatures_verify_under_a_public_key_authority_in_the_server_and_the_cli() {
    let registry = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let digest = push_image(&registry, "pol/skopeo", "v1", "skopeo-signed");
    let public_key = std::fs::read_to_string(support::skopeo_sign(&registry, "pol/skopeo", "v1", dir.path())).unwrap();
    let policy = dir.path().join("skopeo.yaml");
    let text = format!(
        "policies:\n  - name: skopeo\n    images: [\"{}/pol/*\"]\n    authorities:\n      - public_key: |\n{}",
        registry.host,
        indented(&public_key)
    );
    std::fs::write(&policy, text).unwrap();
    let image = format!("{}/pol/skopeo@{digest}", registry.host);
    let notarium = Notarium::start_with(&[&registry.host], &[("NOTARIUM_POLICIES_DIR", dir.path().to_str().unwrap())]);
    let answer = verify(&notarium, &image);
    assert_eq!((answer["allowed"].clone(), answer["policy"].clone()), (json!(true), json!("skopeo")), "{answer}");
    let out = Command::new(env!("CARGO_BIN_EXE_notarium"))
        .args(["verify", &image, "--output", "json"])
        .args(["--policy", policy.to_str().unwrap(), "--insecure-registry", &registry.host])
        .env_remove("NOTARIUM_CONFIG")
        .output()
        .unwrap();
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{out:?}"));
    assert!(out.status.success(), "{answer} {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!((answer["allowed"].clone(), answer["policy"].clone()), (json!(true), json!("skopeo")), "{answer}");
}

fn reload_policy(host: &str, key: &str, conditions: &str) -> String {
    format!(
        "policies:\n  - name: reload\n    images: [\"{host}/pol/reload\"]\n    authorities:\n      - key: {key}\n{conditions}"
    )
}

/// Polls `check` for up to 20 s (the folder is checked every 2 s).
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !check() {
        assert!(std::time::Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

#[test]
fn a_changed_policy_takes_effect_and_a_broken_one_keeps_the_policy_in_force() {
    let registry = Registry::start();
    let policies = tempfile::tempdir().unwrap();
    let file = policies.path().join("reload.yaml");
    std::fs::write(&file, reload_policy(&registry.host, "dev-ecdsa", "")).unwrap();
    let dir = policies.path().to_str().unwrap();
    let notarium = Notarium::start_with(&[&registry.host], &[("NOTARIUM_POLICIES_DIR", dir)]);
    let digest = push_image(&registry, "pol/reload", "v1", "reloaded");
    let image = format!("{}/pol/reload@{digest}", registry.host);
    assert_eq!(notarium.sign(&image, "dev-ecdsa").0, 201);
    assert_eq!(verify(&notarium, &image)["allowed"], true);

    std::fs::write(&file, reload_policy(&registry.host, "dev-ed25519", "")).unwrap();
    eventually("the new policy", || verify(&notarium, &image)["allowed"] == false);

    let broken = "    attestations:\n      - predicate_type: x\n        conditions: [\"predicate.a ==\"]\n";
    std::fs::write(&file, reload_policy(&registry.host, "dev-ecdsa", broken)).unwrap();
    eventually("the rejection", || notarium.log().contains("policy change rejected"));
    let log = notarium.log();
    assert!(log.contains("reload.yaml line 8: policy \"reload\", attestations.conditions"), "{log}");
    let answer = verify(&notarium, &image);
    assert_eq!(answer["allowed"], false, "{answer}");
    assert!(reasons(&answer).contains("no valid signature by dev-ed25519"), "{answer}");

    // The register names each version put in force, once, and never the rejected one.
    let (_, page) = notarium.get_text("/v1/log/entries?start=0&end=100");
    let page: serde_json::Value = serde_json::from_str(&page).unwrap();
    let loaded: Vec<&serde_json::Value> = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["entry"])
        .filter(|e| e["kind"] == "policy-loaded")
        .collect();
    let authorities: Vec<&serde_json::Value> = loaded.iter().map(|e| &e["details"]["authorities"][0]).collect();
    assert_eq!(authorities, [&json!("dev-ecdsa"), &json!("dev-ed25519")], "{page}");
    assert!(loaded.iter().all(|e| e["subject"]["policy"] == "reload"));
    assert_ne!(loaded[0]["subject"]["version"], loaded[1]["subject"]["version"]);
}

#[test]
fn signatures_and_attestations_in_sigstore_bundle_referrers_count() {
    let s = setup();
    let (repo, host) = ("pol/attested", s.registry.host.clone());
    let other = push_image(&s.registry, repo, "other", "other image");
    let digest = push_image(&s.registry, repo, "bundled", "bundled image");
    let image = format!("{host}/{repo}@{digest}");
    sign(&s, &format!("{host}/{repo}@{other}"), "dev-ecdsa");
    attest(&s, &format!("{host}/{repo}@{other}"), "https://github.com/acme/app");
    sign(&s, &image, "dev-ecdsa");
    attest(&s, &image, "https://github.com/acme/app");
    // The tag scheme now holds only the other image's signature and attestation: only the referrers count.
    for suffix in ["sig", "att"] {
        let copied = s.registry.manifest(repo, &format!("{}.{suffix}", other.replace(':', "-"))).unwrap();
        put_manifest(&s.registry, repo, &format!("{}.{suffix}", digest.replace(':', "-")), copied);
    }
    let answer = decided(&s, &image, true);
    assert_eq!(answer["signatures"][0]["identity"], format!("{host}/{repo}"), "{answer}");
    assert_eq!(answer["attestations"][0]["predicate_type"], SLSA, "{answer}");
}

#[test]
fn policy_check_lints_a_folder() {
    let cli =
        |dir: &Path| Command::new(env!("CARGO_BIN_EXE_notarium")).arg("policy").arg("check").arg(dir).output().unwrap();
    let out = cli(&Path::new(support::ROOT).join("policies"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("production (enforce, 2 of 3 authorities)"));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.yaml"),
        "policies:\n  - name: x\n    images: [a]\n    authorities:\n      - key: \"a b\"\n",
    )
    .unwrap();
    let out = cli(dir.path());
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bad.yaml line 5: policy \"x\", authorities"), "{stderr}");
}
