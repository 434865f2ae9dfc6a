//! Signed verdicts against a real registry: `POST /v1/verify` with `"verdict": true` answers the decision as
//! an SVR (or SLSA VSA) statement in a DSSE envelope naming the policy digest and the decision's register
//! entry; with `[verdicts] attach` the verdict is attached once per (digest, policy version, result), across
//! replicas too, and cosign `verify-attestation --type` the SVR URI accepts it, as does a second notarium
//! whose policy requires it; a denied verdict says so; the verdict key is refused as an image authority.

use crate::support;

use std::path::Path;

use base64::Engine as _;
use serde_json::{Value, json};
use support::{Cosign, CosignVersion, EXAMPLE_KEYS, Notarium, Registry, push_many, tag_of};

const SVR: &str = "https://in-toto.io/attestation/svr/v0.2";
const VSA: &str = "https://slsa.dev/verification_summary/v1";
const OURS: &str = "https://notarium.dev/verdict/v1";

fn policy_dir(text: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("policy.yaml"), text).unwrap();
    dir
}

fn producer_policy(host: &str) -> String {
    format!(
        "default: deny\npolicies:\n  - name: apps\n    images: [\"{host}/vd/*\"]\n    authorities:\n      - key: dev-ecdsa\n"
    )
}

fn start(registry: &Registry, policies: &Path, verdicts: &str) -> Notarium {
    let config = format!("{EXAMPLE_KEYS}\n[verdicts]\n{verdicts}");
    Notarium::start_with_config(&config, &[&registry.host], &[("NOTARIUM_POLICIES_DIR", policies.to_str().unwrap())])
}

fn verify_with_verdict(notarium: &Notarium, image: &str) -> Value {
    let body = json!({"image": image, "verdict": true}).to_string();
    let (status, _, answer) = notarium.post("/v1/verify", body);
    assert_eq!(status, 200, "{answer}");
    answer
}

fn statement_of(envelope: &Value) -> Value {
    let payload = base64::engine::general_purpose::STANDARD.decode(envelope["payload"].as_str().unwrap()).unwrap();
    serde_json::from_slice(&payload).unwrap()
}

/// The register's entry at `index` as `GET /v1/log/entries` lists it (`entry`, `leaf_hash`, ...).
fn register_entry(notarium: &Notarium, index: u64) -> Value {
    let (_, page) = notarium.get_text(&format!("/v1/log/entries?start={index}&end={}", index + 1));
    let page: Value = serde_json::from_str(&page).unwrap();
    page["entries"][0].clone()
}

fn entries_of_kind(notarium: &Notarium, kind: &str) -> Vec<Value> {
    let (_, page) = notarium.get_text("/v1/log/entries?start=0&end=1000");
    let page: Value = serde_json::from_str(&page).unwrap();
    page["entries"].as_array().unwrap().iter().map(|e| e["entry"].clone()).filter(|e| e["kind"] == kind).collect()
}

/// The statement of the verdict attached under `digest`'s `.att` tag (its only layer).
fn attached_statement(registry: &Registry, repo: &str, digest: &str) -> Value {
    let layers = att_layers(registry, repo, digest);
    assert_eq!(layers.len(), 1, "{layers:?}");
    let envelope: Value = serde_json::from_slice(&registry.blob(repo, layers[0]["digest"].as_str().unwrap())).unwrap();
    statement_of(&envelope)
}

/// An AdmissionReview creating a pod that runs `images`.
fn pod_review(images: &[&str]) -> Value {
    let containers: Vec<Value> =
        images.iter().enumerate().map(|(n, image)| json!({"name": format!("c{n}"), "image": image})).collect();
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"containers": containers}});
    let gvk = json!({"group": "", "version": "v1", "kind": "Pod"});
    json!({"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1", "request": {
        "uid": "5b0f7c1e-8a36-4d59-9d1c-0e2f3a4b5c6d", "kind": gvk, "resource": {"group": "", "version": "v1",
        "resource": "pods"}, "name": "web", "namespace": "shop", "operation": "CREATE",
        "userInfo": {"username": "kubernetes-admin"}, "object": pod, "oldObject": null, "dryRun": false}})
}

/// The layers of the `.att` manifest of `digest` (each an attached envelope).
fn att_layers(registry: &Registry, repo: &str, digest: &str) -> Vec<Value> {
    let manifest = registry.manifest(repo, &tag_of(digest, "att")).expect("an .att tag");
    let manifest: Value = serde_json::from_slice(&manifest).unwrap();
    manifest["layers"].as_array().unwrap().clone()
}

fn cosign_verifies(version: CosignVersion, image: &str, key: &Path, predicate_type: &str) -> (bool, String) {
    let key = key.to_str().unwrap();
    let args = ["verify-attestation", "--key", key, "--type", predicate_type, "--insecure-ignore-tlog"];
    let out = Cosign::of(version).run(&[&args[..], &["--allow-http-registry", "--offline", image]].concat());
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn an_svr_verdict_binds_policy_and_register_entry_attaches_once_and_verifies_with_cosign_and_notarium() {
    let registry = Registry::start();
    let host = registry.host.clone();
    let policies = policy_dir(&producer_policy(&host));
    let notarium = start(&registry, policies.path(), "key = \"dev-ed25519\"\nattach = true\n");
    let digests = push_many(&registry, "vd/app", 2);
    let (signed, unsigned) = (format!("{host}/vd/app@{}", digests[0]), format!("{host}/vd/app@{}", digests[1]));
    assert_eq!(notarium.sign(&signed, "dev-ecdsa").0, 201);

    let answer = verify_with_verdict(&notarium, &signed);
    assert_eq!(answer["allowed"], true, "{answer}");
    assert_eq!(answer["verdict"]["predicate_type"], SVR);
    let statement = statement_of(&answer["verdict"]["envelope"]);
    assert_eq!(statement["predicateType"], SVR);
    assert_eq!(statement["subject"][0]["name"], format!("{host}/vd/app"));
    assert_eq!(statement["subject"][0]["digest"]["sha256"], digests[0].trim_start_matches("sha256:"));
    let predicate = &statement["predicate"];
    let policy_version = answer["policy_version"].as_str().unwrap();
    assert_eq!(
        predicate["verifier"]["policies"][0]["digest"]["sha256"],
        policy_version.trim_start_matches("sha256:"),
        "{predicate}"
    );
    assert_eq!(predicate["properties"], json!(["NOTARIUM_POLICY_ALLOWED"]));
    let index = answer["log"]["index"].as_u64().unwrap();
    assert_eq!(predicate[OURS]["register"]["index"], index);
    let listed = register_entry(&notarium, index);
    assert_eq!(predicate[OURS]["register"]["leafHash"], listed["leaf_hash"], "{listed}");
    let entry = &listed["entry"];
    assert_eq!(entry["kind"], "verify", "{entry}");
    assert_eq!(entry["subject"]["digest"], digests[0].as_str(), "{entry}");
    assert_eq!(entry["details"]["allowed"], true, "{entry}");
    assert_eq!(entry["details"]["policy_version"], policy_version, "{entry}");

    // Repeats attach nothing more.
    for _ in 0..3 {
        assert_eq!(notarium.verify_image(&signed)["allowed"], true);
    }
    assert_eq!(att_layers(&registry, "vd/app", &digests[0]).len(), 1);

    let denied = verify_with_verdict(&notarium, &unsigned);
    assert_eq!(denied["allowed"], false);
    let statement = statement_of(&denied["verdict"]["envelope"]);
    assert_eq!(statement["predicate"]["properties"], json!([]));
    assert_eq!(statement["predicate"][OURS]["allowed"], false);
    assert_eq!(att_layers(&registry, "vd/app", &digests[1]).len(), 1);

    let dir = tempfile::tempdir().unwrap();
    let key = notarium.public_key_file("dev-ed25519", dir.path());
    for version in [CosignVersion::V2_5, CosignVersion::V3_1] {
        let (ok, text) = cosign_verifies(version, &signed, &key, SVR);
        assert!(ok, "{version:?} refused the verdict: {text}");
        let other = Path::new(support::ROOT).join("tests/fixtures/other-ed25519.pub");
        assert!(!cosign_verifies(version, &signed, &other, SVR).0, "{version:?} accepted another key");
    }

    // A second notarium relies on the verdict: its policy requires an allowed SVR by the verdict key.
    let consumer_policy = format!(
        "default: deny\npolicies:\n  - name: relies\n    images: [\"{host}/vd/*\"]\n    authorities:\n      - key: dev-ecdsa\n      \
         - key: dev-ed25519\n    attestations:\n      - predicate_type: {SVR}\n        conditions:\n          \
         - '\"NOTARIUM_POLICY_ALLOWED\" in predicate.properties'\n"
    );
    let consumer_dir = policy_dir(&consumer_policy);
    let consumer = Notarium::start_with(&[&host], &[("NOTARIUM_POLICIES_DIR", consumer_dir.path().to_str().unwrap())]);
    let relied = consumer.verify_image(&signed);
    assert_eq!(relied["allowed"], true, "{relied}");
    assert_eq!(relied["attestations"][0]["predicate_type"], SVR, "{relied}");
    let refused = consumer.verify_image(&unsigned);
    assert_eq!(refused["allowed"], false);
    assert!(support::reasons(&refused).contains(SVR), "{refused}");
}

#[test]
fn admission_decisions_attach_their_verdicts_once_each() {
    let registry = Registry::start();
    let host = registry.host.clone();
    let policies = policy_dir(&producer_policy(&host));
    let notarium = start(&registry, policies.path(), "key = \"dev-ed25519\"\nattach = true\n");
    let digests = push_many(&registry, "vd/adm", 2);
    let (signed, unsigned) = (format!("{host}/vd/adm@{}", digests[0]), format!("{host}/vd/adm@{}", digests[1]));
    assert_eq!(notarium.sign(&signed, "dev-ecdsa").0, 201);
    for _ in 0..3 {
        let (status, _, answer) = notarium.post("/v1/admission", pod_review(&[&signed, &unsigned]).to_string());
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["response"]["allowed"], false, "{answer}");
    }
    let allowed = attached_statement(&registry, "vd/adm", &digests[0]);
    assert_eq!(allowed["predicate"]["properties"], json!(["NOTARIUM_POLICY_ALLOWED"]));
    let denied = attached_statement(&registry, "vd/adm", &digests[1]);
    assert_eq!(denied["predicate"]["properties"], json!([]));
    assert_eq!(denied["predicate"][OURS]["allowed"], false);
    let index = denied["predicate"][OURS]["register"]["index"].as_u64().unwrap();
    let entry = &register_entry(&notarium, index)["entry"];
    assert_eq!(
        (entry["kind"].as_str(), entry["subject"]["digest"].as_str()),
        (Some("verify"), Some(digests[1].as_str()))
    );
    assert_eq!(entries_of_kind(&notarium, "verify").len(), 6);
    let attests = entries_of_kind(&notarium, "attest");
    assert_eq!(attests.len(), 2, "one attached verdict per digest and result: {attests:?}");
}

#[test]
fn a_vsa_verdict_says_passed_or_failed_with_the_policy() {
    let registry = Registry::start();
    let host = registry.host.clone();
    let policies = policy_dir(&producer_policy(&host));
    let notarium = start(&registry, policies.path(), "key = \"dev-ed25519\"\nformat = \"vsa\"\n");
    let digests = push_many(&registry, "vd/vsa", 2);
    let (signed, unsigned) = (format!("{host}/vd/vsa@{}", digests[0]), format!("{host}/vd/vsa@{}", digests[1]));
    assert_eq!(notarium.sign(&signed, "dev-ecdsa").0, 201);
    let passed = verify_with_verdict(&notarium, &signed);
    let statement = statement_of(&passed["verdict"]["envelope"]);
    assert_eq!(statement["predicateType"], VSA);
    let p = &statement["predicate"];
    assert_eq!(p["verificationResult"], "PASSED");
    assert_eq!(p["policy"]["uri"], "notarium:policy/apps");
    assert_eq!(
        p["policy"]["digest"]["sha256"],
        passed["policy_version"].as_str().unwrap().trim_start_matches("sha256:")
    );
    assert_eq!(p["resourceUri"], format!("oci://{host}/vd/vsa@{}", digests[0]));
    assert!(p["timeVerified"].is_string() && p["verifier"]["id"].is_string());
    let failed = statement_of(&verify_with_verdict(&notarium, &unsigned)["verdict"]["envelope"]);
    assert_eq!(failed["predicate"]["verificationResult"], "FAILED");
    assert_eq!(failed["predicate"]["verifiedLevels"], json!(["FAILED"]));
    // attach is off: nothing was written to the registry.
    assert!(registry.manifest("vd/vsa", &tag_of(&digests[1], "att")).is_none());
}

/// `serve` with `config` and a policy folder holding `policy`: refused within 30 s, its stderr (a server that
/// starts instead is killed and fails the test).
fn refused_start(config: &str, policy: &str) -> String {
    let dir = policy_dir(policy);
    let path = dir.path().join("notarium.toml");
    std::fs::write(&path, config).unwrap();
    let log = dir.path().join("stderr.log");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_notarium"))
        .args(["serve"])
        .env("NOTARIUM_CONFIG", &path)
        .env("NOTARIUM_POLICIES_DIR", dir.path())
        .env("NOTARIUM_DATA_DIR", dir.path())
        .env("NOTARIUM_LISTEN", "127.0.0.1:0")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let stderr = std::fs::read_to_string(&log).unwrap();
    assert!(status.is_some_and(|s| !s.success()), "serve started: {stderr}");
    stderr
}

#[test]
fn the_verdict_key_is_refused_as_an_image_authority_and_a_verdict_needs_verdicts_configured() {
    let registry = Registry::start();
    let config = format!("{EXAMPLE_KEYS}\n[verdicts]\nkey = \"dev-ecdsa\"\n");
    let stderr = refused_start(&config, &producer_policy(&registry.host));
    assert!(stderr.contains("[verdicts] key \"dev-ecdsa\"") && stderr.contains("\"apps\""), "{stderr}");

    // The same key written as a policy's public_key is the same trust.
    let dir = tempfile::tempdir().unwrap();
    let plain = Notarium::start(&[&registry.host]);
    let pem = std::fs::read_to_string(plain.public_key_file("dev-ecdsa", dir.path())).unwrap();
    let pem: String = pem.lines().map(|l| format!("          {l}\n")).collect();
    let by_pem = format!(
        "default: deny\npolicies:\n  - name: pinned\n    images: [\"{}/vd/*\"]\n    authorities:\n      \
         - public_key: |\n{pem}",
        registry.host
    );
    let stderr = refused_start(&config, &by_pem);
    assert!(stderr.contains("[verdicts] key \"dev-ecdsa\"") && stderr.contains("\"pinned\""), "{stderr}");

    let digest = push_many(&registry, "vd/none", 1).remove(0);
    let body = json!({"image": format!("{}/vd/none@{digest}", registry.host), "verdict": true}).to_string();
    let (status, _, answer) = plain.post("/v1/verify", body);
    assert_eq!(status, 400, "{answer}");
    assert!(answer["type"].as_str().unwrap_or_default().ends_with("no-verdicts"), "{answer}");
}

/// Always PostgreSQL: two replicas on one database, each deciding one image eight times at once, attach its
/// verdict once between them (one `.att` layer, one bundle referrer, one `attest` entry): the attachment is
/// claimed in the database, not only remembered in each process.
#[test]
fn concurrent_verifies_on_two_replicas_attach_one_verdict() {
    let registry = Registry::start();
    let host = registry.host.clone();
    let policies = policy_dir(&producer_policy(&host));
    let database_url = support::Postgres::shared().database();
    let config = format!("{EXAMPLE_KEYS}\n[verdicts]\nkey = \"dev-ed25519\"\nattach = true\n");
    let env = [
        ("NOTARIUM_POLICIES_DIR", policies.path().to_str().unwrap()),
        ("NOTARIUM_DATABASE_URL", database_url.as_str()),
    ];
    let replicas = [0, 1].map(|_| Notarium::start_with_config(&config, &[&host], &env));
    let digest = push_many(&registry, "vd/replicas", 1).remove(0);
    let image = format!("{host}/vd/replicas@{digest}");
    assert_eq!(replicas[0].sign(&image, "dev-ecdsa").0, 201);

    std::thread::scope(|scope| {
        for n in 0..16 {
            let (replica, image) = (&replicas[n % 2], &image);
            scope.spawn(move || assert_eq!(replica.verify_image(image)["allowed"], true));
        }
    });
    assert_eq!(att_layers(&registry, "vd/replicas", &digest).len(), 1, "one verdict in the .att tag");
    let verdict_referrers = (registry.referrer_entries("vd/replicas", &digest).iter())
        .map(|entry| registry.manifest("vd/replicas", entry["digest"].as_str().unwrap()).unwrap())
        .map(|manifest| serde_json::from_slice::<Value>(&manifest).unwrap())
        .filter(|manifest| manifest["annotations"]["dev.sigstore.bundle.predicateType"] == SVR)
        .count();
    assert_eq!(verdict_referrers, 1, "one verdict bundle referrer");
    assert_eq!(entries_of_kind(&replicas[1], "attest").len(), 1, "one attest entry in the shared register");
}
