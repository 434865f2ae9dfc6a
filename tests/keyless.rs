//! Keyless verification of images against a real registry and `notarium serve`, with a private test
//! Sigstore (`support::sigstore`): a policy's `keyless:` authority allows an image whose cosign v2 `.sig`
//! layer (certificate, chain and Rekor bundle annotations) or Sigstore bundle referrer carries a valid
//! keyless signature for that identity, and denies one for another identity, an expired certificate with no
//! other verified time, a tampered log entry and a certificate from an unknown CA, each reason naming what
//! failed. The register's `verify` entry names the certificate identity, issuer and log index. Also: a
//! keyless `.att` layer whose certificate must meet attestation conditions, `require_tlog` on a key, and
//! `policy check` on keyless authorities.

use crate::support;

use std::collections::BTreeMap;

use serde_json::{Value, json};
use support::sigstore::{EXPIRED, FRESH, Leaf, TestSigstore};
use support::{Notarium, Registry, RegistryKind, push_image};

use notarium::formats::Digest;
use notarium::formats::cosign_layer::CosignAnnotations;
use notarium::formats::dsse::{Envelope, IN_TOTO_PAYLOAD_TYPE};
use notarium::formats::in_toto::{COSIGN_SIGN_V1, Statement, Subject};
use notarium::formats::referrer::{ReferrersIndex, referrers_tag};
use notarium::formats::signature_manifest::{
    AttestationLayer, Descriptor, OCI_INDEX, OCI_MANIFEST, SIMPLE_SIGNING_LAYER, SignatureManifest, attestation_tag,
};
use notarium::formats::simple_signing::SimpleSigning;

const ISSUER: &str = "https://token.actions.githubusercontent.com";
const RELEASE: &str = "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main";
const STRANGER: &str = "https://github.com/evil/app/.github/workflows/release.yml@refs/heads/main";
/// Fulcio's source repository ref and build trigger extensions.
const REF_OID: &str = "1.3.6.1.4.1.57264.1.14";
const TRIGGER_OID: &str = "1.3.6.1.4.1.57264.1.20";
const SLSA: &str = "https://slsa.dev/provenance/v1";

struct Setup {
    registry: Registry,
    notarium: Notarium,
    sigstore: TestSigstore,
    _policies: tempfile::TempDir,
}

fn start() -> Setup {
    start_on(RegistryKind::Distribution)
}

fn start_on(kind: RegistryKind) -> Setup {
    let registry = Registry::start_kind(kind);
    let sigstore = TestSigstore::new(1);
    let policies = tempfile::tempdir().unwrap();
    let policy = format!(
        r#"policies:
  - name: keyless
    images: ["{host}/keyless/*"]
    authorities:
      - keyless:
          issuer: {ISSUER}
          subject: {RELEASE}
          trusted_root: test
          conditions: ["certificate.sourceRepositoryRef == 'refs/heads/main'"]
  - name: attested
    images: ["{host}/attested/*"]
    authorities:
      - keyless: {{issuer: "{ISSUER}", subject: "{RELEASE}"}}
    attestations:
      - predicate_type: {SLSA}
        conditions: ["certificate.buildTrigger == 'push' && predicate.builder == 'ci'"]
  - name: logged-key
    images: ["{host}/tlog/*"]
    authorities:
      - public_key: |
{pem}        require_tlog: true
"#,
        host = registry.host,
        pem = tlog_key_pem().lines().map(|l| format!("          {l}\n")).collect::<String>(),
    );
    std::fs::write(policies.path().join("keyless.yaml"), policy).unwrap();
    let config = format!("[sigstore]\ntrusted_roots = [{{name = \"test\", path = {:?}}}]\n", sigstore.trusted_root);
    let dir = policies.path().to_str().unwrap();
    let notarium = Notarium::start_with_config(&config, &[&registry.host], &[("NOTARIUM_POLICIES_DIR", dir)]);
    Setup { registry, notarium, sigstore, _policies: policies }
}

/// With the referrers API, notarium finds the referrers through it alone.
fn verify(setup: &Setup, image: &str) -> Value {
    let before = setup.registry.requests().len();
    let (status, _, answer) = setup.notarium.post("/v1/verify", json!({"image": image}).to_string());
    if setup.registry.kind.has_referrers_api() {
        setup.registry.assert_referrers_api_only(before);
    }
    assert_eq!(status, 200, "{answer}");
    answer
}

fn reasons(answer: &Value) -> String {
    answer["reasons"].as_array().unwrap().iter().map(|r| r.as_str().unwrap()).collect::<Vec<_>>().join(" | ")
}

fn upload(registry: &Registry, repo: &str, bytes: &[u8]) {
    let http = support::client();
    let base = format!("http://{}/v2/{repo}", registry.host);
    let started = http.post(format!("{base}/blobs/uploads/")).send().unwrap();
    let location = started.headers()["location"].to_str().unwrap().to_owned();
    let location = if location.starts_with("http") { location } else { format!("http://{}{location}", registry.host) };
    let separator = if location.contains('?') { '&' } else { '?' };
    let digest = support::sha256_digest(bytes);
    let put = http.put(format!("{location}{separator}digest={digest}")).body(bytes.to_vec()).send().unwrap();
    assert_eq!(put.status(), 201, "blob upload");
}

/// Pushes an image `keyless/<name>` and returns its reference by digest, the digest and the repository name.
fn image(setup: &Setup, name: &str) -> (String, Digest, String) {
    let repo = format!("keyless/{name}");
    let digest = push_image(&setup.registry, &repo, "v1", name);
    let named = format!("{}/{repo}", setup.registry.host);
    (format!("{named}@{digest}"), Digest::parse(&digest).unwrap(), named)
}

/// Puts a cosign v2 `.sig` manifest of one layer with `payload` and `annotations` on `digest`.
fn push_sig_layer(setup: &Setup, repo: &str, digest: &Digest, payload: &[u8], annotations: BTreeMap<String, String>) {
    let mut layer = Descriptor::for_blob(SIMPLE_SIGNING_LAYER, payload);
    layer.annotations = Some(annotations);
    let encoded = SignatureManifest::encode(vec![layer]);
    upload(&setup.registry, repo, payload);
    upload(&setup.registry, repo, &encoded.config);
    let tag = format!("{}.sig", digest.as_str().replace(':', "-"));
    setup.registry.put_manifest(repo, &tag, OCI_MANIFEST, encoded.manifest);
}

/// Signs `named`@`digest` keyless with `leaf` as cosign v2 does, the Rekor entry integrated now (or with
/// `tamper` applied to the Rekor bundle after it was signed), and pushes the `.sig` layer.
fn sign_sig_layer(setup: &Setup, leaf: &Leaf, named: &str, digest: &Digest, tamper: impl Fn(&mut Value)) {
    let payload = SimpleSigning::new(named, digest, None).to_bytes();
    let signature = leaf.sign(&payload);
    let body = leaf.hashedrekord(&payload, &signature);
    let mut rekor = setup.sigstore.rekor_bundle(&body, support::unix_now(), 1001);
    tamper(&mut rekor);
    let repo = named.split_once('/').unwrap().1;
    push_sig_layer(setup, repo, digest, &payload, leaf.sig_annotations(&signature, &rekor));
}

/// The key of the `require_tlog` authority.
fn tlog_key() -> p256::ecdsa::SigningKey {
    p256::ecdsa::SigningKey::from_slice(&[9; 32]).unwrap()
}

fn tlog_key_pem() -> String {
    use p256::pkcs8::EncodePublicKey as _;
    tlog_key().verifying_key().to_public_key_pem(p256::pkcs8::LineEnding::LF).unwrap()
}

fn main_leaf(sigstore: &TestSigstore, subject: &str, window: support::sigstore::Window) -> Leaf {
    sigstore.leaf(subject, ISSUER, &[(REF_OID, "refs/heads/main")], window)
}

#[test]
fn a_keyless_sig_layer_for_the_identity_is_allowed_and_the_register_names_the_certificate() {
    let setup = start();
    let (reference, digest, named) = image(&setup, "good");
    let leaf = main_leaf(&setup.sigstore, RELEASE, FRESH);
    sign_sig_layer(&setup, &leaf, &named, &digest, |_| {});
    let answer = verify(&setup, &reference);
    assert_eq!(answer["allowed"], true, "{}", reasons(&answer));
    let used = &answer["signatures"][0];
    assert_eq!(used["authority"], format!("keyless {RELEASE} from {ISSUER}"));
    assert_eq!((&used["certificate_identity"], &used["certificate_issuer"]), (&json!(RELEASE), &json!(ISSUER)));
    assert_eq!((&used["log_index"], &used["trusted_root"]), (&json!(1001), &json!("test")));

    let index = answer["log"]["index"].as_u64().unwrap();
    let (status, text) = setup.notarium.get_text(&format!("/v1/log/entries?start={index}&end={}", index + 1));
    assert_eq!(status, 200, "{text}");
    let entry: Value = serde_json::from_str(&text).unwrap();
    let recorded = &entry["entries"][0]["entry"]["details"]["signatures"][0];
    assert_eq!(recorded["certificate_identity"], RELEASE, "{entry}");
    assert_eq!((&recorded["certificate_issuer"], &recorded["log_index"]), (&json!(ISSUER), &json!(1001)));
}

/// How a case signs the image it is given (its name and digest).
type SignWith = dyn Fn(&Setup, &str, &Digest);

#[test]
fn keyless_signatures_that_fail_are_denied_naming_what_failed() {
    let setup = start();
    let cases: [(&str, Box<SignWith>, &[&str]); 5] = [
        (
            "stranger",
            Box::new(|s, named, digest| {
                sign_sig_layer(s, &main_leaf(&s.sigstore, STRANGER, FRESH), named, digest, |_| {})
            }),
            &[&format!("the keyless signatures found are by {STRANGER} from {ISSUER}")],
        ),
        (
            "expired",
            Box::new(|s, named, digest| {
                sign_sig_layer(s, &main_leaf(&s.sigstore, RELEASE, EXPIRED), named, digest, |_| {})
            }),
            &["did not verify", "under test: certificate: leaf certificate is not valid at"],
        ),
        (
            "tampered",
            Box::new(|s, named, digest| {
                let later = |rekor: &mut Value| {
                    let time = rekor["Payload"]["integratedTime"].as_i64().unwrap();
                    rekor["Payload"]["integratedTime"] = json!(time + 60);
                };
                sign_sig_layer(s, &main_leaf(&s.sigstore, RELEASE, FRESH), named, digest, later)
            }),
            &["did not verify", "transparency log: the signed entry timestamp does not verify"],
        ),
        (
            "unknown-ca",
            Box::new(|s, named, digest| {
                let other = TestSigstore::new(2);
                sign_sig_layer(s, &main_leaf(&other, RELEASE, FRESH), named, digest, |_| {})
            }),
            &["did not verify", "certificate: no trusted authority issued it"],
        ),
        (
            "other-branch",
            Box::new(|s, named, digest| {
                let leaf = s.sigstore.leaf(RELEASE, ISSUER, &[(REF_OID, "refs/heads/dev")], FRESH);
                sign_sig_layer(s, &leaf, named, digest, |_| {})
            }),
            &["certificate.sourceRepositoryRef was \"refs/heads/dev\""],
        ),
    ];
    for (name, sign, expected) in cases {
        let (reference, digest, named) = image(&setup, name);
        sign(&setup, &named, &digest);
        let answer = verify(&setup, &reference);
        assert_eq!(answer["allowed"], false, "{name}");
        let why = reasons(&answer);
        for part in expected {
            assert!(why.contains(part), "{name}: {part:?} not in {why}");
        }
    }
}

#[test]
fn a_keyless_bundle_referrer_for_the_identity_is_allowed_and_one_for_another_identity_denied() {
    RegistryKind::ALL.into_iter().for_each(keyless_bundle_referrer);
}

fn keyless_bundle_referrer(kind: RegistryKind) {
    let setup = start_on(kind);
    for (name, subject, allowed) in [("referrer", RELEASE, true), ("referrer-stranger", STRANGER, false)] {
        let (reference, digest, named) = image(&setup, name);
        let leaf = main_leaf(&setup.sigstore, subject, FRESH);
        let statement = Statement::v1(vec![Subject::sha256(Some(&named), &digest)], COSIGN_SIGN_V1, json!({}));
        let mut envelope = Envelope::unsigned(IN_TOTO_PAYLOAD_TYPE, statement.to_json());
        let signature = leaf.sign(&envelope.pae());
        envelope.add_signature(signature.clone());
        let body = leaf.dsse_entry(&envelope.to_json(), &envelope.payload, &signature);
        let rekor = setup.sigstore.rekor_bundle(&body, support::unix_now(), 2002);
        let annotations = CosignAnnotations {
            certificate: Some(leaf.certificate_pem.clone()),
            chain: Some(leaf.chain_pem.clone()),
            bundle: Some(rekor.to_string()),
            rfc3161_timestamp: None,
        };
        let bundle = annotations.dsse_bundle(&envelope).unwrap().to_json();
        let repo = named.split_once('/').unwrap().1;
        let image_manifest = setup.registry.manifest(repo, "v1").unwrap();
        let subject_descriptor = Descriptor::new(OCI_MANIFEST, &digest, image_manifest.len() as u64);
        let referrer = SignatureManifest::for_bundle(subject_descriptor, &bundle, "dsse-envelope", None);
        let manifest = referrer.to_json();
        upload(&setup.registry, repo, &bundle);
        upload(&setup.registry, repo, b"{}");
        setup.registry.put_manifest(repo, &support::sha256_digest(&manifest), OCI_MANIFEST, manifest.clone());
        // Without a referrers API, the referrer is listed under the fallback tag, as cosign does; with one, the
        // registry lists it.
        if !kind.has_referrers_api() {
            let mut index = ReferrersIndex::empty();
            index.manifests.push(referrer.index_entry(&manifest));
            setup.registry.put_manifest(repo, &referrers_tag(&digest), OCI_INDEX, index.to_json());
        }

        let answer = verify(&setup, &reference);
        assert_eq!(answer["allowed"], allowed, "{name}: {}", reasons(&answer));
        if allowed {
            assert_eq!(answer["signatures"][0]["log_index"], 2002, "{answer}");
        } else {
            assert!(reasons(&answer).contains(STRANGER), "{}", reasons(&answer));
        }
    }
}

#[test]
fn policy_check_reports_a_bad_regex_an_unknown_trusted_root_and_a_missing_issuer() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("notarium.toml");
    std::fs::write(&config, "[sigstore]\ntrusted_roots = [{name = \"public-good\"}]\n").unwrap();
    let cases = [
        ("keyless: {issuer: i, subject_regex: \"(unclosed\"}", "subject_regex is not a valid regular expression"),
        (
            "keyless: {issuer: i, subject: s, trusted_root: private}",
            "trusted_root \"private\" is not a configured trusted root ([sigstore] trusted_roots: public-good)",
        ),
        ("keyless: {subject: s}", "keyless.issuer is missing"),
    ];
    for (authority, expected) in cases {
        let policies = dir.path().join("policies");
        std::fs::create_dir_all(&policies).unwrap();
        let file = policies.join("p.yaml");
        std::fs::write(
            &file,
            format!("policies:\n  - name: p\n    images: [a]\n    authorities:\n      - {authority}\n"),
        )
        .unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_notarium"))
            .args(["policy", "check", policies.to_str().unwrap(), "--config", config.to_str().unwrap()])
            .env_remove("NOTARIUM_CONFIG")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{authority}: {stderr}");
        let at = format!("{} line 5: policy \"p\", authorities: ", file.display());
        assert!(stderr.contains(&at) && stderr.contains(expected), "{authority}: {stderr}");
    }
}

#[test]
fn require_tlog_counts_a_key_signature_only_with_a_log_entry_that_verifies() {
    use base64::Engine as _;
    use p256::ecdsa::signature::Signer as _;
    let setup = start();
    for (name, logged, tampered) in [("plain", false, false), ("logged", true, false), ("forged-set", true, true)] {
        let (reference, digest, named) = {
            let repo = format!("tlog/{name}");
            let digest = push_image(&setup.registry, &repo, "v1", name);
            let named = format!("{}/{repo}", setup.registry.host);
            (format!("{named}@{digest}"), Digest::parse(&digest).unwrap(), named)
        };
        let payload = SimpleSigning::new(&named, &digest, None).to_bytes();
        let signature: p256::ecdsa::Signature = tlog_key().sign(&payload);
        let signature = signature.to_der().as_bytes().to_vec();
        let mut annotations = BTreeMap::from([(
            notarium::formats::signature_manifest::SIGNATURE_ANNOTATION.to_owned(),
            base64::engine::general_purpose::STANDARD.encode(&signature),
        )]);
        if logged {
            let body = support::sigstore::hashedrekord(&payload, &signature, &tlog_key_pem());
            let mut rekor = setup.sigstore.rekor_bundle(&body, support::unix_now(), 3003);
            if tampered {
                rekor["Payload"]["logIndex"] = json!(3004);
            }
            annotations.insert(notarium::formats::cosign_layer::BUNDLE_ANNOTATION.to_owned(), rekor.to_string());
        }
        push_sig_layer(&setup, named.split_once('/').unwrap().1, &digest, &payload, annotations);
        let answer = verify(&setup, &reference);
        let why = reasons(&answer);
        match (logged, tampered) {
            (false, _) => {
                assert!(why.contains("has no verified transparency-log entry or timestamp (require_tlog)"), "{why}")
            }
            (true, false) => {
                assert_eq!(answer["allowed"], true, "{why}");
                assert_eq!(answer["signatures"][0]["log_index"], 3003);
            }
            (true, true) => assert!(why.contains("the signed entry timestamp does not verify"), "{why}"),
        }
        assert_eq!(answer["allowed"], logged && !tampered, "{name}: {why}");
    }
}

#[test]
fn a_keyless_att_layer_meets_an_attestation_only_when_its_certificate_meets_the_conditions() {
    let setup = start();
    for (name, trigger, allowed) in [("push", "push", true), ("dispatch", "workflow_dispatch", false)] {
        let repo = format!("attested/{name}");
        let digest = Digest::parse(&push_image(&setup.registry, &repo, "v1", name)).unwrap();
        let named = format!("{}/{repo}", setup.registry.host);
        sign_sig_layer(&setup, &main_leaf(&setup.sigstore, RELEASE, FRESH), &named, &digest, |_| {});

        let leaf = setup.sigstore.leaf(RELEASE, ISSUER, &[(REF_OID, "refs/heads/main"), (TRIGGER_OID, trigger)], FRESH);
        let statement = Statement::v1(vec![Subject::sha256(Some(&named), &digest)], SLSA, json!({"builder": "ci"}));
        let mut envelope = Envelope::unsigned(IN_TOTO_PAYLOAD_TYPE, statement.to_json());
        let signature = leaf.sign(&envelope.pae());
        envelope.add_signature(signature.clone());
        let envelope_json = envelope.to_json();
        let body = leaf.dsse_entry(&envelope_json, &envelope.payload, &signature);
        let rekor = setup.sigstore.rekor_bundle(&body, support::unix_now(), 4004);
        let mut layer = AttestationLayer::new(&envelope_json, SLSA).descriptor;
        let annotations = layer.annotations.get_or_insert_default();
        annotations.extend(leaf.sig_annotations(&signature, &rekor));
        // cosign leaves an attestation layer's signature annotation empty: the envelope holds it.
        annotations.insert(notarium::formats::signature_manifest::SIGNATURE_ANNOTATION.to_owned(), String::new());
        let encoded = SignatureManifest::encode(vec![layer]);
        upload(&setup.registry, &repo, &envelope_json);
        upload(&setup.registry, &repo, &encoded.config);
        setup.registry.put_manifest(&repo, &attestation_tag(&digest), OCI_MANIFEST, encoded.manifest);

        let answer = verify(&setup, &format!("{named}@{digest}"));
        let why = reasons(&answer);
        assert_eq!(answer["allowed"], allowed, "{name}: {why}");
        if allowed {
            assert_eq!(answer["attestations"][0]["authority"], format!("keyless {RELEASE} from {ISSUER}"));
        } else {
            assert!(why.contains("certificate.buildTrigger was \"workflow_dispatch\""), "{why}");
        }
    }
}

#[test]
fn serve_stops_at_start_naming_a_bad_trusted_root_file_or_an_unknown_root_a_policy_names() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("policies")).unwrap();
    let broken = dir.path().join("private.json");
    std::fs::write(&broken, "{\"mediaType\": \"application/vnd.dev.sigstore.trustedroot+json;version=0.1\"").unwrap();
    let serve = |config: &str, policy: &str| {
        std::fs::write(dir.path().join("notarium.toml"), config).unwrap();
        std::fs::write(dir.path().join("policies/p.yaml"), policy).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_notarium"))
            .arg("serve")
            .current_dir(support::ROOT)
            .env("NOTARIUM_CONFIG", dir.path().join("notarium.toml"))
            .env("NOTARIUM_LISTEN", "127.0.0.1:0")
            .env("NOTARIUM_DATA_DIR", dir.path())
            .env("NOTARIUM_POLICIES_DIR", dir.path().join("policies"))
            .env_remove("NOTARIUM_DATABASE_URL")
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let no_policy = "policies: []\n";
    let config = format!("[sigstore]\ntrusted_roots = [{{name = \"private\", path = {broken:?}}}]\n");
    let (exit, stderr) = serve(&config, no_policy);
    assert_eq!(exit, Some(2), "{stderr}");
    assert!(stderr.contains(&broken.display().to_string()) && stderr.contains("trusted root \"private\""), "{stderr}");

    let config = "[sigstore]\ntrusted_roots = [{name = \"public-good\"}]\n";
    let policy = "policies:\n  - name: p\n    images: [a]\n    authorities:\n      - keyless: {issuer: i, subject: s, trusted_root: private}\n";
    let (exit, stderr) = serve(config, policy);
    assert_eq!(exit, Some(2), "{stderr}");
    assert!(
        stderr.contains("p.yaml line 5: policy \"p\", authorities: trusted_root \"private\" is not a configured"),
        "{stderr}"
    );
}
