//! `[tsa]`: the Notary Project signatures notarium writes carry an RFC 3161 countersignature from a real
//! TSA (`openssl ts -reply` behind `support::TestTsa`). openssl checks the token over the JWS signature value,
//! `notation verify` 1.3.2 accepts the signature with the TSA's root in a `tsa` store (and refuses it under
//! another TSA root), and notarium's own `POST /v1/verify` does likewise under a `notation:` authority. A TSA
//! that answers a token over another imprint, with another nonce, from an untrusted TSA, too large, or that
//! the egress rules refuse fails the sign with a 502 problem naming the TSA and the check, and leaves no row,
//! referrer, `.sig` tag or register entry.

use crate::support;

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};
use support::{Notarium, Notation, Registry, TestTsa, TsaMode, oras_discover, push_image, reasons, signature_rows};

const TIMESTAMP_HEADER: &str = "io.cncf.notary.timestampSignature";

/// A notarium whose `dev-ecdsa` carries the committed chain, with `[tsa]` pointing at `tsa` (trusting
/// `roots`), the TSA's host listed in `[registries] allow` when `listed`, and `extra` TOML appended.
fn notarium_with_tsa(registry: &Registry, tsa: &TestTsa, roots: &Path, listed: bool, env: &[(&str, &str)]) -> Notarium {
    let (root, keys) = (support::ROOT, format!("{}/keys.example", support::ROOT));
    let allow = if listed { format!("[registries]\nallow = [\"{}\"]\n\n", tsa.host) } else { String::new() };
    let config = format!(
        "[[keys]]\nid = \"dev-ecdsa\"\nbackend = \"file\"\npath = \"{keys}/dev-ecdsa.pem\"\n\
         certificate_chain = \"{root}/tests/fixtures/certificates/dev-ecdsa.chain.pem\"\n\n\
         [[keys]]\nid = \"dev-log\"\nbackend = \"file\"\npath = \"{keys}/dev-log.pem\"\n\n{allow}\
         [tsa]\nurl = \"{}\"\nroots = [\"{}\"]\ntimeout_secs = 10\n",
        tsa.url,
        roots.display()
    );
    Notarium::start_with_config(&config, &[&registry.host], env)
}

fn sign(notarium: &Notarium, image: &str) -> (u16, Value) {
    let (status, _, answer) = notarium.post("/v1/sign", json!({"image": image, "key": "dev-ecdsa"}).to_string());
    (status, answer)
}

/// The JWS envelope of the notation artifact a sign answer lists.
fn envelope(registry: &Registry, repo: &str, answer: &Value) -> Value {
    let artifacts = answer["artifacts"].as_array().unwrap();
    let notation = artifacts.iter().find(|a| a["format"] == "notation").expect("a notation artifact");
    let manifest = registry.manifest(repo, notation["manifest_digest"].as_str().unwrap()).unwrap();
    let manifest: Value = serde_json::from_slice(&manifest).unwrap();
    serde_json::from_slice(&registry.blob(repo, manifest["layers"][0]["digest"].as_str().unwrap())).unwrap()
}

/// `openssl ts -verify` of the envelope's token over its signature value, under `root`.
fn openssl_verifies_token(jws: &Value, root: &Path, dir: &Path) -> (bool, String) {
    let token = STANDARD.decode(jws["header"][TIMESTAMP_HEADER].as_str().unwrap()).unwrap();
    let signature = URL_SAFE_NO_PAD.decode(jws["signature"].as_str().unwrap()).unwrap();
    std::fs::write(dir.join("token.der"), token).unwrap();
    std::fs::write(dir.join("signature.bin"), signature).unwrap();
    let out = std::process::Command::new("openssl")
        .args(["ts", "-verify", "-token_in", "-in", "token.der", "-data", "signature.bin", "-CAfile"])
        .arg(root)
        .current_dir(dir)
        .output()
        .unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn a_timestamped_signature_verifies_with_openssl_notation_and_notariums_verify() {
    let registry = Registry::start();
    let tsa = TestTsa::start(TsaMode::Honest);
    let work = tempfile::tempdir().unwrap();
    let stores = work.path().join("stores");
    std::fs::create_dir_all(&stores).unwrap();
    let ca_root = format!("{}/tests/fixtures/certificates/root.pem", support::ROOT);
    std::fs::copy(&ca_root, stores.join("ca.pem")).unwrap();
    std::fs::copy(tsa.root(), stores.join("tsa.pem")).unwrap();
    std::fs::copy(tsa.other_root(), stores.join("other-tsa.pem")).unwrap();
    let host = &registry.host;
    let policy = |name: &str, tsa_store: &str| {
        format!(
            "  - name: {name}\n    images: [\"{host}/tsa/{name}\"]\n    authorities:\n      - notation:\n          \
             trust_stores: {{ca: [stores/ca.pem], tsa: [stores/{tsa_store}]}}\n          trusted_identities: [\"*\"]\n          \
             signature_verification: {{level: strict}}\n"
        )
    };
    let policies =
        ["default: deny\npolicies:\n".to_owned(), policy("app", "tsa.pem"), policy("other", "other-tsa.pem")];
    std::fs::write(work.path().join("tsa.yaml"), policies.concat()).unwrap();
    let dir = work.path().to_str().unwrap();
    let notarium = notarium_with_tsa(&registry, &tsa, &tsa.root(), true, &[("NOTARIUM_POLICIES_DIR", dir)]);

    let digest = push_image(&registry, "tsa/app", "v1", "timestamped");
    let image = format!("{host}/tsa/app@{digest}");
    let (status, answer) = sign(&notarium, &image);
    assert_eq!(status, 201, "{answer}\n{}", notarium.log());
    let formats: Vec<&str> =
        answer["artifacts"].as_array().unwrap().iter().filter_map(|a| a["format"].as_str()).collect();
    assert_eq!(formats, ["cosign", "bundle", "notation"], "{answer}");

    // The token in the unprotected header stamps the JWS signature value: openssl verifies it under the
    // TSA's root and refuses it under another TSA's.
    let jws = envelope(&registry, "tsa/app", &answer);
    let (ok, text) = openssl_verifies_token(&jws, &tsa.root(), work.path());
    assert!(ok, "openssl refused the token: {text}");
    let (ok, _) = openssl_verifies_token(&jws, &tsa.other_root(), work.path());
    assert!(!ok, "openssl accepted the token under another TSA's root");

    // notation accepts it with notarium's CA and the TSA's root...
    let notation = Notation::new();
    notation.add_trusted_cert("ca", "notarium", Path::new(&ca_root));
    notation.add_trusted_cert("tsa", "test-tsa", &tsa.root());
    notation.write_trust_policy("strict", &["ca:notarium", "tsa:test-tsa"], &["*"]);
    let (ok, text) = notation.verify(&image);
    assert!(ok, "notation refused the timestamped signature: {text}");
    // ... and refuses it when its tsa store holds another TSA's root.
    let other = Notation::new();
    other.add_trusted_cert("ca", "notarium", Path::new(&ca_root));
    other.add_trusted_cert("tsa", "other-tsa", &tsa.other_root());
    other.write_trust_policy("strict", &["ca:notarium", "tsa:other-tsa"], &["*"]);
    let (ok, text) = other.verify(&image);
    assert!(!ok, "notation accepted a timestamp under another TSA's root: {text}");

    // notarium's own verify: allowed under the TSA's root; under another TSA's root the strict authority
    // names the authentic-timestamp check.
    let verify = |image: &str| {
        let (status, _, answer) = notarium.post("/v1/verify", json!({"image": image}).to_string());
        assert_eq!(status, 200, "{answer}");
        answer
    };
    let verdict = verify(&image);
    assert_eq!(verdict["allowed"], true, "{verdict}");
    let other_digest = push_image(&registry, "tsa/other", "v1", "timestamped elsewhere");
    let other_image = format!("{host}/tsa/other@{other_digest}");
    assert_eq!(sign(&notarium, &other_image).0, 201);
    let verdict = verify(&other_image);
    assert_eq!(verdict["allowed"], false, "{verdict}");
    assert!(reasons(&verdict).contains("timestamp"), "{verdict}");
}

/// Signs with a TSA answering in `mode` (or refused by the egress rules when not `listed`) and checks the
/// sign failed with a 502 naming the TSA and `expected`, and wrote nothing anywhere.
fn sign_fails_and_writes_nothing(mode: TsaMode, listed: bool, expected: &str) {
    let registry = Registry::start();
    let tsa = TestTsa::start(mode);
    let notarium = notarium_with_tsa(&registry, &tsa, &tsa.root(), listed, &[]);
    let repo = format!("tsa/{mode:?}-{listed}").to_lowercase();
    let digest = push_image(&registry, &repo, "v1", &format!("{mode:?} {listed}"));
    let image = format!("{}/{repo}@{digest}", registry.host);
    let (status, problem) = sign(&notarium, &image);
    assert_eq!(status, 502, "{mode:?}: {problem}");
    assert!(problem["type"].as_str().unwrap().ends_with("/timestamp-unavailable"), "{problem}");
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.starts_with(&format!("the timestamp authority {} gave no usable timestamp", tsa.host)), "{detail}");
    assert!(detail.contains(expected), "{mode:?}: {detail}");

    assert_eq!(signature_rows(&notarium.database_url()), 0, "{mode:?}: a row was left");
    assert!(oras_discover(&image).is_empty(), "{mode:?}: a referrer was written");
    assert!(registry.manifest(&repo, &(digest.replace(':', "-") + ".sig")).is_none(), "{mode:?}: a .sig was written");
    let (_, entries) = notarium.get_text("/v1/log/entries?start=0&end=1000");
    assert!(!entries.contains(&digest), "{mode:?}: the register names the image: {entries}");
}

#[test]
fn a_token_over_another_imprint_fails_the_sign_and_writes_nothing() {
    sign_fails_and_writes_nothing(TsaMode::OtherImprint, true, "the message imprint does not match the signature");
}

#[test]
fn a_token_with_another_nonce_fails_the_sign_and_writes_nothing() {
    sign_fails_and_writes_nothing(TsaMode::OtherNonce, true, "the nonce is not the one asked for");
}

#[test]
fn a_token_from_an_untrusted_tsa_fails_the_sign_and_writes_nothing() {
    sign_fails_and_writes_nothing(TsaMode::Untrusted, true, "the timestamp's signer");
}

#[test]
fn an_oversized_answer_fails_the_sign_and_writes_nothing() {
    sign_fails_and_writes_nothing(TsaMode::Oversized, true, "larger than the limit of 65536 bytes");
}

#[test]
fn a_tsa_the_egress_rules_refuse_fails_the_sign_and_writes_nothing() {
    sign_fails_and_writes_nothing(TsaMode::Honest, false, "is not contacted: internal addresses");
}

#[test]
fn a_tsa_section_with_a_bad_url_or_unreadable_roots_stops_the_start_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let keys = format!("{}/keys.example", support::ROOT);
    let start = |tsa: &str| {
        let config =
            format!("[[keys]]\nid = \"dev-ecdsa\"\nbackend = \"file\"\npath = \"{keys}/dev-ecdsa.pem\"\n\n{tsa}\n");
        let path = dir.path().join("notarium.toml");
        std::fs::write(&path, config).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_notarium"))
            .args(["serve", "--config", path.to_str().unwrap()])
            .env("NOTARIUM_DATA_DIR", dir.path())
            .env("NOTARIUM_LISTEN", "127.0.0.1:0")
            .env_remove("NOTARIUM_CONFIG")
            .output()
            .unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let missing = dir.path().join("missing.pem");
    let text = start(&format!("[tsa]\nurl = \"ftp://tsa.example\"\nroots = [\"{}\"]", missing.display()));
    assert!(text.contains("[tsa] url \"ftp://tsa.example\": write an http:// or https:// URL"), "{text}");
    let text = start(&format!("[tsa]\nurl = \"http://tsa.example\"\nroots = [\"{}\"]", missing.display()));
    assert!(text.contains(&format!("[tsa] roots {}: cannot be read", missing.display())), "{text}");
    let text = start("[tsa]\nurl = \"http://tsa.example\"\nroots = []");
    assert!(text.contains("[tsa] roots is empty"), "{text}");
    let text =
        start(&format!("[tsa]\nurl = \"http://tsa.example\"\nroots = [\"{}\"]\ntimeout_secs = 0", missing.display()));
    assert!(text.contains("[tsa] timeout_secs 0 must be from 1 to 60"), "{text}");
}
