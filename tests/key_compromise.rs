//! Key-compromise response against a real registry and real servers: a key version revoked with
//! `compromised_at` between two signs keeps the earlier image verifying and denies the later one, naming
//! the revocation; the inventory lists both; `resign` re-signs the later one with dev-ed25519 and it verifies
//! again; a signature with no register entry (the stolen key used elsewhere) counts as later; the revocation
//! survives a restart and, on PostgreSQL, a revocation made through one replica is honoured by the other at
//! its next verify.

use crate::support;

use std::time::Duration;

use serde_json::{Value, json};
use support::{Notarium, Postgres, Registry, push_image, reasons};

fn policy(host: &str) -> String {
    format!(
        "policies:\n  - name: signed\n    images: [\"{host}/kc/*\"]\n    authorities: [{{key: dev-ecdsa}}, {{key: dev-ed25519}}]\n    threshold: 1\n"
    )
}

fn policies_dir(host: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("signed.yaml"), policy(host)).unwrap();
    dir
}

struct Setup {
    registry: Registry,
    policies: tempfile::TempDir,
    notarium: Notarium,
    token: String,
}

/// A registry, and a server deciding `kc/*` under [`policy`], with an admin token.
fn setup() -> Setup {
    let registry = Registry::start();
    let policies = policies_dir(&registry.host);
    let env = [("NOTARIUM_POLICIES_DIR", policies.path().to_str().unwrap())];
    let notarium = Notarium::start_with(&[&registry.host], &env);
    let token = admin(&notarium);
    Setup { registry, policies, notarium, token }
}

fn pushed_and_signed(registry: &Registry, notarium: &Notarium, repo: &str) -> String {
    let digest = push_image(registry, repo, "v1", repo);
    let image = format!("{}/{repo}@{digest}", registry.host);
    let (status, answer) = notarium.sign(&image, "dev-ecdsa");
    assert_eq!(status, 201, "{answer}");
    image
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap()
}

/// An admin token for `notarium` (revoking and the inventory need one, even on an open API).
fn admin(notarium: &Notarium) -> String {
    notarium.create_token(&["--role", "admin"]).0
}

fn revoke(notarium: &Notarium, token: &str, version: u32, body: &Value) -> (u16, Value) {
    let path = format!("/v1/keys/dev-ecdsa/versions/{version}/revoke");
    let response = support::client()
        .post(format!("{}{path}", notarium.url))
        .bearer_auth(token)
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .unwrap();
    (response.status().as_u16(), response.json().unwrap())
}

/// Two images signed, the compromise between them: `(earlier, later, compromised_at)`.
fn signed_around_a_compromise(registry: &Registry, notarium: &Notarium) -> (String, String, String) {
    let earlier = pushed_and_signed(registry, notarium, "kc/earlier");
    std::thread::sleep(Duration::from_millis(30));
    let compromised_at = now_rfc3339();
    std::thread::sleep(Duration::from_millis(30));
    let later = pushed_and_signed(registry, notarium, "kc/later");
    (earlier, later, compromised_at)
}

/// `POST /v1/verify` with `token`.
fn verify(notarium: &Notarium, token: &str, image: &str) -> Value {
    let response = support::client()
        .post(format!("{}/v1/verify", notarium.url))
        .bearer_auth(token)
        .json(&json!({"image": image}))
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    response.json().unwrap()
}

fn assert_earlier_allowed_later_denied(notarium: &Notarium, token: &str, earlier: &str, later: &str) {
    let answer = verify(notarium, token, earlier);
    assert_eq!(answer["allowed"], true, "{answer}");
    let answer = verify(notarium, token, later);
    assert_eq!(answer["allowed"], false, "{answer}");
    let why = reasons(&answer);
    assert!(why.contains("key dev-ecdsa@1 is revoked as compromised at") && why.contains("stolen in CI"), "{why}");
}

#[test]
fn a_revocation_with_compromised_at_denies_only_what_is_not_provably_earlier_and_survives_a_restart() {
    let Setup { registry, policies, mut notarium, token } = setup();
    let env = [("NOTARIUM_POLICIES_DIR", policies.path().to_str().unwrap())];
    let (earlier, later, compromised_at) = signed_around_a_compromise(&registry, &notarium);
    for image in [&earlier, &later] {
        assert_eq!(notarium.verify_image(image)["allowed"], true, "both verify before the revocation");
    }

    let (status, inventory) = notarium_get(&notarium, &token, "/v1/keys/dev-ecdsa/versions/1/signed");
    assert_eq!(status, 200, "{inventory}");
    let digests: Vec<&str> =
        inventory["items"].as_array().unwrap().iter().map(|i| i["digest"].as_str().unwrap()).collect();
    assert_eq!(digests, [digest_of(&later), digest_of(&earlier)], "{inventory}");
    assert_eq!(inventory["items"][0]["repository"], "kc/later");
    assert_eq!(inventory["items"][0]["kind"], "sign");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_notarium"))
        .args(["--output", "json", "keys", "inventory", "dev-ecdsa@1", "--since", "1h", "--server", &notarium.url])
        .env("NOTARIUM_TOKEN", &token)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed["items"], inventory["items"], "the CLI lists what the route does");

    for (body, field) in [
        (json!({"reason": "x", "compromised_at": "yesterday"}), "compromised_at"),
        (json!({"reason": "x", "compromised_at": "2999-01-01T00:00:00Z"}), "compromised_at"),
        (json!({"reason": "x".repeat(1025)}), "reason"),
        (json!({"reason": ""}), "reason"),
    ] {
        let (status, answer) = revoke(&notarium, &token, 1, &body);
        assert_eq!(status, 400, "{answer}");
        assert!(answer["detail"].as_str().unwrap().starts_with(field), "{answer}");
    }
    let (status, answer) = revoke(&notarium, &token, 9, &json!({"reason": "x"}));
    assert_eq!((status, answer["type"].as_str().unwrap().ends_with("unknown-key-version")), (404, true), "{answer}");

    let body = json!({"reason": "stolen in CI", "compromised_at": compromised_at});
    let (status, answer) = revoke(&notarium, &token, 1, &body);
    assert_eq!(status, 201, "{answer}");
    assert_eq!((answer["key"].clone(), answer["version"].clone()), (json!("dev-ecdsa"), json!(1)));
    let (status, again) = revoke(&notarium, &token, 1, &body);
    assert_eq!(status, 409, "a version is revoked once: {again}");
    assert_earlier_allowed_later_denied(&notarium, &token, &earlier, &later);

    let (status, entries) = notarium_get(&notarium, &token, "/v1/log/search?kind=key-revoked");
    assert_eq!(status, 200);
    assert_eq!(entries["entries"].as_array().unwrap().len(), 1, "one key-revoked entry: {entries}");
    assert_eq!(entries["entries"][0]["entry"]["details"]["reason"], "stolen in CI");

    notarium.kill();
    let data_dir = std::mem::replace(&mut notarium.data_dir, tempfile::tempdir().unwrap());
    let restarted = Notarium::start_in(data_dir, &[&registry.host], &env);
    assert_earlier_allowed_later_denied(&restarted, &token, &earlier, &later);

    let only_later = format!("{}/kc/later", registry.host);
    let (code, report) = resign_with_scope(&restarted, &token, "elsewhere/*", &["--repository", &only_later]);
    assert_eq!(code, 1, "what could not be re-signed is reported, exit 1: {report}");
    assert_eq!(report["failed"][0]["image"], later.as_str(), "{report}");
    assert!(report["failed"][0]["error"].as_str().unwrap().contains("forbidden"), "{report}");
    let (code, report) = resign(&restarted, &token, &["--repository", &only_later]);
    assert_eq!(code, 0, "{report}");
    assert_eq!((report["affected"].clone(), report["signed"].clone()), (json!(1), json!(1)), "{report}");
    let answer = verify(&restarted, &token, &later);
    assert_eq!(answer["allowed"], true, "re-signed with dev-ed25519: {answer}");
    assert_eq!(answer["signatures"][0]["authority"], "dev-ed25519");
    // Run again over every repository: what dev-ed25519 signed already is skipped (an interrupted run resumes).
    let (code, report) = resign(&restarted, &token, &[]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(
        (report["affected"].clone(), report["already_signed"].clone(), report["signed"].clone()),
        (json!(2), json!(1), json!(1)),
        "{report}"
    );
    let (_, inventory) = notarium_get(&restarted, &token, "/v1/keys/dev-ed25519/versions/1/signed");
    assert_eq!(inventory["items"].as_array().unwrap().len(), 2, "each image re-signed once: {inventory}");
}

/// `notarium resign --from dev-ecdsa@1 --to dev-ed25519 ARGS --output json` with a signer token for `repos`.
fn resign_command(notarium: &Notarium, auditor: &str, repos: &str, args: &[&str]) -> std::process::Command {
    let (signer, _) = notarium.create_token(&["--role", "signer", "--repos", repos, "--keys", "dev-ed25519"]);
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_notarium"));
    command
        .args(["--output", "json", "resign", "--from", "dev-ecdsa@1", "--to", "dev-ed25519", "--server", &notarium.url])
        .args(args)
        .env("NOTARIUM_TOKEN", signer)
        .env("NOTARIUM_AUDITOR_TOKEN", auditor);
    command
}

/// `notarium resign --from dev-ecdsa@1 --to dev-ed25519 ARGS --output json`: exit code and report.
fn resign(notarium: &Notarium, auditor: &str, args: &[&str]) -> (i32, Value) {
    resign_with_scope(notarium, auditor, "**", args)
}

fn resign_with_scope(notarium: &Notarium, auditor: &str, repos: &str, args: &[&str]) -> (i32, Value) {
    let out = resign_command(notarium, auditor, repos, args).output().unwrap();
    let report = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&out.stderr).into_owned()));
    (out.status.code().unwrap(), report)
}

#[test]
fn a_revocation_without_compromised_at_refuses_every_signature_of_the_version() {
    let Setup { registry, policies: _policies, notarium, token } = setup();
    let image = pushed_and_signed(&registry, &notarium, "kc/any");
    assert_eq!(notarium.verify_image(&image)["allowed"], true, "and the allowance is kept");
    let (status, answer) = revoke(&notarium, &token, 1, &json!({"reason": "retired"}));
    assert_eq!(status, 201, "{answer}");
    let answer = notarium.verify_image(&image);
    assert_eq!(answer["allowed"], false, "the kept allowance does not outlive the revocation: {answer}");
    assert!(reasons(&answer).contains("key dev-ecdsa@1 is revoked: retired"), "{answer}");
}

/// Always PostgreSQL: the revocation goes through one replica, the other denies at its next verify,
/// though it kept an allowance of that image.
#[test]
fn a_revocation_through_one_replica_is_honoured_by_the_other() {
    let registry = Registry::start();
    let database_url = Postgres::shared().database();
    let policies = policies_dir(&registry.host);
    let env = [
        ("NOTARIUM_DATABASE_URL", database_url.as_str()),
        ("NOTARIUM_POLICIES_DIR", policies.path().to_str().unwrap()),
    ];
    let (a, b) = (Notarium::start_with(&[&registry.host], &env), Notarium::start_with(&[&registry.host], &env));
    let (earlier, later, compromised_at) = signed_around_a_compromise(&registry, &a);
    for image in [&earlier, &later] {
        assert_eq!(b.verify_image(image)["allowed"], true);
    }
    let token = admin(&a);
    let (status, answer) = revoke(&a, &token, 1, &json!({"reason": "stolen in CI", "compromised_at": compromised_at}));
    assert_eq!(status, 201, "{answer}");
    assert_earlier_allowed_later_denied(&b, &token, &earlier, &later);
}

fn digest_of(image: &str) -> &str {
    image.split_once('@').unwrap().1
}

fn notarium_get(notarium: &Notarium, token: &str, path: &str) -> (u16, Value) {
    let response = support::client().get(format!("{}{path}", notarium.url)).bearer_auth(token).send().unwrap();
    (response.status().as_u16(), response.json().unwrap())
}

/// The thief's signature: made with the stolen dev-ecdsa key file by another notarium on its own database,
/// so this server's register holds no entry for it. It verifies until the revocation; under `compromised_at`
/// it counts as later, while this server's own earlier signature keeps counting.
#[test]
fn a_signature_made_outside_the_register_with_the_stolen_key_counts_as_later() {
    let Setup { registry, policies: _policies, notarium, token } = setup();
    let earlier = pushed_and_signed(&registry, &notarium, "kc/earlier");
    std::thread::sleep(Duration::from_millis(30));
    let compromised_at = now_rfc3339();

    let thief_server = Notarium::start(&[&registry.host]);
    let thief = pushed_and_signed(&registry, &thief_server, "kc/thief");
    drop(thief_server);
    let answer = verify(&notarium, &token, &thief);
    assert_eq!(answer["allowed"], true, "the stolen key's signature verifies before the revocation: {answer}");

    let body = json!({"reason": "stolen in CI", "compromised_at": compromised_at});
    let (status, answer) = revoke(&notarium, &token, 1, &body);
    assert_eq!(status, 201, "{answer}");
    assert_earlier_allowed_later_denied(&notarium, &token, &earlier, &thief);
}

/// How many images the interrupted resign covers: three batches of two, and one image it cannot reach.
const RESIGNED: usize = 7;

/// `notarium resign` killed (SIGKILL) once its first batch of two is done, then run again: every image ends
/// up signed by dev-ed25519 exactly once (its inventory, and one new `.sig` layer per image), the second run
/// counts what the first did as `already_signed`, and it reports the image whose manifest is gone, exit 1.
#[test]
fn a_resign_killed_after_its_first_batch_resumes_signing_each_image_once_and_reports_what_it_cannot_reach() {
    let registry = Registry::start();
    let policies = policies_dir(&registry.host);
    // A sign the kill cut off between its registry write and its register entry is settled by
    // reconciliation (every 3 s with this grace) before the second run.
    let env = [("NOTARIUM_POLICIES_DIR", policies.path().to_str().unwrap()), ("NOTARIUM_PENDING_GRACE_SECS", "6")];
    let notarium = Notarium::start_with(&[&registry.host], &env);
    let images: Vec<String> =
        (0..RESIGNED).map(|i| pushed_and_signed(&registry, &notarium, &format!("kc/r{i}"))).collect();
    let token = admin(&notarium);
    // Resign goes oldest first: the last image, deleted from its repository, is the one it cannot reach.
    let gone = &images[RESIGNED - 1];
    registry.delete_manifest(&format!("kc/r{}", RESIGNED - 1), digest_of(gone));

    let mut first = resign_command(&notarium, &token, "**", &["--batch", "2"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let progress = std::io::BufReader::new(first.stderr.take().unwrap());
    let first_batch = format!("resign: 2/{RESIGNED} done");
    let line = std::io::BufRead::lines(progress).map(Result::unwrap).find(|l| l.starts_with(&first_batch));
    assert!(line.is_some(), "the first run shows its first batch done");
    first.kill().unwrap();
    assert!(!first.wait().unwrap().success(), "killed");
    settled(&notarium);
    let signed_before = signed_digests(&notarium, &token);
    assert!((2..RESIGNED - 1).contains(&signed_before.len()), "interrupted after its first batch: {signed_before:?}");

    let (code, report) = resign(&notarium, &token, &["--batch", "2"]);
    assert_eq!(code, 1, "the image it could not reach is reported, exit 1: {report}");
    assert_eq!(report["affected"], RESIGNED, "{report}");
    assert_eq!(report["already_signed"], signed_before.len(), "{report}");
    assert_eq!(report["signed"], RESIGNED - 1 - signed_before.len(), "{report}");
    assert_eq!(report["failed"].as_array().unwrap().len(), 1, "{report}");
    assert_eq!(report["failed"][0]["image"], gone.as_str(), "{report}");

    let mut signed = signed_digests(&notarium, &token);
    let mut expected: Vec<&str> = images[..RESIGNED - 1].iter().map(|i| digest_of(i)).collect();
    signed.sort();
    expected.sort();
    assert_eq!(signed, expected, "every reachable image re-signed once, per the register");
    for (i, image) in images[..RESIGNED - 1].iter().enumerate() {
        let tag = format!("{}.sig", digest_of(image).replace(':', "-"));
        let manifest: Value = serde_json::from_slice(&registry.manifest(&format!("kc/r{i}"), &tag).unwrap()).unwrap();
        assert_eq!(
            manifest["layers"].as_array().unwrap().len(),
            2,
            "dev-ecdsa's layer and one of dev-ed25519: {manifest}"
        );
    }
}

/// Waits until no sign is pending in `notarium`'s database: each one the kill cut off is logged (its
/// signature landed) or given up (it did not) by reconciliation.
fn settled(notarium: &Notarium) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let pending = || {
        let database = notarium.database_url();
        tokio::runtime::Runtime::new().unwrap().block_on(async move {
            let sql = "SELECT COUNT(*) FROM signatures WHERE state = 'pending'";
            support::TestDatabase::connect(&database).await.scalar(sql).await
        })
    };
    while pending() > 0 {
        assert!(std::time::Instant::now() < deadline, "interrupted signs still pending");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The digest of each image dev-ed25519@1 signed, one per sign entry.
fn signed_digests(notarium: &Notarium, token: &str) -> Vec<String> {
    let (status, inventory) = notarium_get(notarium, token, "/v1/keys/dev-ed25519/versions/1/signed?kind=sign");
    assert_eq!(status, 200, "{inventory}");
    inventory["items"].as_array().unwrap().iter().map(|i| i["digest"].as_str().unwrap().to_owned()).collect()
}
