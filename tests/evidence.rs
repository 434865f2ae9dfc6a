//! Evidence packs against a real server, registry and OpenBao: a pack of a period with signs, attests,
//! verifies, registry pulls, a key rotation and token changes verifies offline with one command, every
//! recorded signature checked again; a changed byte, a removed entry, signed bytes altered in the database
//! and a history rewritten consistently each fail naming the file and line; hostile archives are refused
//! within their limits.

use crate::support;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};
use support::{EXAMPLE_KEYS, Notarium, OPEN_WITH_BACKEND_KEYS, OpenBao, Registry, TestDatabase, client, push_image};

const VAULT_TOKEN_ENV: &str = "NOTARIUM_TEST_VAULT_TOKEN";
const EVENTS_SECRET_ENV: &str = "NOTARIUM_TEST_EVENTS_SECRET";
const EVENTS_SECRET: &str = "evidence-events-secret-3c9a";

/// A server that has seen every kind of event an auditor asks about, and where its pieces live.
struct Scenario {
    _bao: OpenBao,
    registry: Registry,
    notarium: Notarium,
    dir: tempfile::TempDir,
    log_key: PathBuf,
    auditor: String,
}

fn post(notarium: &Notarium, path: &str, body: Value) -> Value {
    let (status, _, answer) = notarium.post(path, body.to_string());
    assert!((200..300).contains(&status), "{path}: {status} {answer}");
    answer
}

fn pull_event(registry: &Registry, repository: &str, digest: &str) -> String {
    let now = time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap();
    json!({"events": [{
        "id": format!("pull-{digest}"),
        "timestamp": now,
        "action": "pull",
        "target": {"repository": repository, "digest": digest, "mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 1},
        "request": {"host": registry.host, "method": "GET", "addr": "127.0.0.1:5555", "useragent": "skopeo"},
        "actor": {},
        "source": {"addr": "registry:5000"}
    }]})
    .to_string()
}

fn scenario() -> Scenario {
    let bao = OpenBao::start();
    bao.ok(&["write", "-f", "transit/keys/evidence-p256", "type=ecdsa-p256"]);
    let registry = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("policies");
    std::fs::create_dir(&policies).unwrap();
    let policy = format!(
        "policies:\n  - name: evidence\n    images:\n      - \"{}/evidence/*\"\n    authorities:\n      - key: dev-ecdsa\n    threshold: 1\n    mode: enforce\n",
        registry.host
    );
    std::fs::write(policies.join("evidence.yaml"), policy).unwrap();
    let config = format!(
        "{OPEN_WITH_BACKEND_KEYS}{EXAMPLE_KEYS}\n{}[events]\nregistry_secret_env = \"{EVENTS_SECRET_ENV}\"\n",
        bao.key_config("vault-p256", "evidence-p256", VAULT_TOKEN_ENV)
    );
    let policies = policies.to_str().unwrap().to_owned();
    let env = [
        (VAULT_TOKEN_ENV, bao.root_token.as_str()),
        (EVENTS_SECRET_ENV, EVENTS_SECRET),
        ("NOTARIUM_POLICIES_DIR", policies.as_str()),
    ];
    let notarium = Notarium::start_with_config(&config, &[&registry.host], &env);

    let first = push_image(&registry, "evidence/app", "v1", "evidence one");
    let image = format!("{}/evidence/app@{first}", registry.host);
    post(&notarium, "/v1/sign", json!({"image": image, "key": "dev-ecdsa"}));
    post(&notarium, "/v1/sign", json!({"image": image, "key": "vault-p256"}));
    let predicate = json!({"builder": {"id": "https://ci.example/evidence"}});
    post(
        &notarium,
        "/v1/attest",
        json!({"image": image, "key": "dev-ed25519", "predicate_type": "https://example.com/evidence/v1", "predicate": predicate}),
    );
    let decision = post(&notarium, "/v1/verify", json!({"image": image}));
    assert_eq!(decision["allowed"], true, "{decision}");
    bao.ok(&["write", "-f", "transit/keys/evidence-p256/rotate"]);
    let second = push_image(&registry, "evidence/app", "v2", "evidence two");
    let rotated = post(
        &notarium,
        "/v1/sign",
        json!({"image": format!("{}/evidence/app@{second}", registry.host), "key": "vault-p256"}),
    );
    assert_eq!(rotated["key_version"], 2, "{rotated}");
    let response = client()
        .post(format!("{}/v1/events/registry", notarium.url))
        .header("Content-Type", "application/vnd.docker.distribution.events.v1+json")
        .header("Authorization", format!("Bearer {EVENTS_SECRET}"))
        .body(pull_event(&registry, "evidence/app", &first))
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    // Token changes; from the first token on, the server wants one, so the auditor keeps theirs.
    let (auditor, _) = notarium.create_token(&["--role", "auditor"]);
    let (_, revoked) = notarium.create_token(&["--role", "verifier"]);
    notarium.token_cli(&["revoke", &revoked]);
    let log_key = notarium.public_key_file("dev-log", dir.path());
    Scenario { _bao: bao, registry, notarium, dir, log_key, auditor }
}

fn cli(args: &[&str]) -> (bool, String) {
    cli_with_token(args, "")
}

fn cli_with_token(args: &[&str], token: &str) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_notarium")).args(args).env("NOTARIUM_TOKEN", token).output().unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

fn export_pack(notarium: &Notarium, target: &Path, extra: &[&str]) {
    export_pack_as(notarium, target, extra, "");
}

fn export_pack_as(notarium: &Notarium, target: &Path, extra: &[&str], token: &str) {
    let mut args = vec!["evidence", "export", "-f", target.to_str().unwrap(), "--server", &notarium.url];
    args.extend_from_slice(extra);
    let (ok, text) = cli_with_token(&args, token);
    assert!(ok, "{text}");
}

fn verify_pack(pack: &Path, log_key: &Path, extra: &[&str]) -> (bool, String) {
    let mut args = vec!["evidence", "verify", pack.to_str().unwrap(), "--log-key", log_key.to_str().unwrap()];
    args.extend_from_slice(extra);
    cli(&args)
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path).unwrap().lines().map(str::to_owned).collect()
}

/// A copy of the pack in `from` with `member` replaced by `lines`.
fn altered(from: &Path, to: &Path, member: &str, lines: &[String]) -> PathBuf {
    std::fs::create_dir_all(to).unwrap();
    for file in std::fs::read_dir(from).unwrap() {
        let file = file.unwrap();
        std::fs::copy(file.path(), to.join(file.file_name())).unwrap();
    }
    std::fs::write(to.join(member), lines.join("\n") + "\n").unwrap();
    to.to_owned()
}

#[test]
fn a_pack_verifies_offline_and_every_tampering_fails_naming_the_file_and_line() {
    let s = scenario();
    let (dir, key) = (s.dir.path(), s.log_key.as_path());
    let unpacked = dir.join("pack");
    export_pack_as(&s.notarium, &unpacked, &["--pdf", "/usr/bin/chromium"], &s.auditor);
    let zipped = dir.join("pack.zip");
    export_pack_as(&s.notarium, &zipped, &["--pdf", "/usr/bin/chromium"], &s.auditor);
    assert!(std::fs::read(unpacked.join("report.pdf")).unwrap().starts_with(b"%PDF-"), "no PDF report");

    let entries = lines(&unpacked.join("entries.jsonl"));
    let kinds: Vec<String> = entries[1..]
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["entry"]["kind"].as_str().unwrap().to_owned())
        .collect();
    for kind in [
        "sign",
        "attest",
        "verify",
        "registry-pull",
        "key-added",
        "key-rotated",
        "policy-loaded",
        "token-created",
        "token-revoked",
    ] {
        assert!(kinds.iter().any(|k| k == kind), "no {kind} entry in {kinds:?}");
    }
    // Every key version logged up to the period's end, with its inclusion proof: vault-p256 once, then rotated.
    let context = lines(&unpacked.join("context.jsonl"));
    let key_versions = context.iter().filter(|l| l.contains("\"kind\":\"key-")).count();
    for version in [
        r#""key-added","subject":{"key":"vault-p256","version":1}"#,
        r#""key-rotated","subject":{"key":"vault-p256","version":2}"#,
    ] {
        assert!(context.iter().any(|l| l.contains(version)), "{version} not in {context:?}");
    }
    assert!(key_versions >= 4, "{context:?}");
    for pack in [&unpacked, &zipped] {
        let (ok, text) = verify_pack(pack, key, &["--output", "json"]);
        assert!(ok, "{text}");
        let summary: Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(summary["signatures_checked"], 4, "{summary}");
        assert_eq!(summary["signatures_not_recheckable"], 0, "{summary}");
        assert_eq!(summary["key_versions"], key_versions, "{summary}");
        assert_eq!(summary["policy_versions"], 1, "{summary}");
        assert_eq!(summary["policies_without_content"], 0, "{summary}");
    }
    let (ok, text) = verify_pack(&unpacked, key, &[]);
    assert!(ok && text.contains("4 signatures checked again") && text.contains("consistency: NOT checked"), "{text}");
    let report = std::fs::read_to_string(unpacked.join("report.html")).unwrap();
    assert!(
        report.contains("evidence/app") && report.contains("https://example.com/evidence/v1"),
        "the report misses the period"
    );

    // A changed byte in an entry.
    let sign_line = entries.iter().position(|l| l.contains("\"kind\":\"sign\"")).unwrap();
    let mut changed = entries.clone();
    changed[sign_line] = changed[sign_line].replacen("evidence/app", "evidence/apq", 1);
    let (ok, text) = verify_pack(&altered(&unpacked, &dir.join("changed"), "entries.jsonl", &changed), key, &[]);
    assert!(!ok && text.contains(&format!("entries.jsonl line {}", sign_line + 1)), "{text}");

    // A removed entry.
    let mut removed = entries.clone();
    removed.remove(sign_line);
    let (ok, text) = verify_pack(&altered(&unpacked, &dir.join("removed"), "entries.jsonl", &removed), key, &[]);
    assert!(
        !ok && text.contains(&format!("entries.jsonl line {}", sign_line + 1)) && text.contains("belongs"),
        "{text}"
    );

    // A key entry taken out of the context: the signatures it made cannot be checked, and that is a failure.
    let context: Vec<String> =
        lines(&unpacked.join("context.jsonl")).into_iter().filter(|l| !l.contains("\"key-rotated\"")).collect();
    let (ok, text) = verify_pack(&altered(&unpacked, &dir.join("no-rotation"), "context.jsonl", &context), key, &[]);
    assert!(!ok && text.contains("entries.jsonl line") && text.contains("version 2"), "{text}");

    // A signature whose signed bytes were altered in the database, past its append-only trigger.
    let attest_line = entries.iter().position(|l| l.contains("\"kind\":\"attest\"")).unwrap();
    let envelope_digest =
        serde_json::from_str::<Value>(&entries[attest_line]).unwrap()["entry"]["details"]["envelope_digest"].clone();
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let db = TestDatabase::connect(&s.notarium.database_url()).await;
        let (unguard, forge) = if db.is_postgres() {
            (
                "DROP TRIGGER signed_payloads_append_only ON signed_payloads",
                "UPDATE signed_payloads SET payload = convert_to(replace(convert_from(payload, 'UTF8'), 'in-toto', 'in-tota'), 'UTF8')",
            )
        } else {
            (
                "DROP TRIGGER signed_payloads_no_update",
                "UPDATE signed_payloads SET payload = CAST(replace(CAST(payload AS TEXT), 'payloadType', 'payloadTypf') AS BLOB)",
            )
        };
        db.execute(unguard).await.unwrap();
        let digest = envelope_digest.as_str().unwrap();
        assert_eq!(db.execute(&format!("{forge} WHERE digest = '{digest}'")).await.unwrap(), 1);
    });
    let after = dir.join("after-edit.zip");
    export_pack_as(&s.notarium, &after, &[], &s.auditor);
    let (ok, text) = verify_pack(&after, key, &[]);
    assert!(
        !ok && text.contains(&format!("entries.jsonl line {}", attest_line + 1))
            && text.contains("do not hash to")
            && text.contains("signed-payloads.jsonl line"),
        "{text}"
    );
    drop(s.registry);
}

#[test]
fn a_history_rewritten_consistently_on_a_fresh_database_with_the_same_log_key_is_caught_by_since() {
    let registry = Registry::start();
    let sign_some = |notarium: &Notarium, prefix: &str, count: usize| {
        for i in 0..count {
            let digest = push_image(&registry, "rewrite/app", &format!("{prefix}{i}"), &format!("{prefix} {i}"));
            let (status, body) = notarium.sign(&format!("{}/rewrite/app@{digest}", registry.host), "dev-ecdsa");
            assert_eq!(status, 201, "{body}");
        }
    };
    let honest = Notarium::start(&[&registry.host]);
    sign_some(&honest, "honest", 3);
    let dir = tempfile::tempdir().unwrap();
    let log_key = honest.public_key_file("dev-log", dir.path());
    let (_, saved) = honest.get_text("/v1/log/checkpoint");
    let saved_file = dir.path().join("saved.checkpoint");
    std::fs::write(&saved_file, &saved).unwrap();
    // A size the log never had is a problem answer, before any byte of the archive.
    let (status, problem) = honest.get_text("/v1/evidence?since=1000000");
    assert!(status == 400 && problem.contains("outside-the-log"), "{status} {problem}");
    let honest_pack = dir.path().join("honest.zip");
    export_pack(&honest, &honest_pack, &["--since", saved_file.to_str().unwrap()]);
    let (ok, text) = verify_pack(&honest_pack, &log_key, &["--since", saved_file.to_str().unwrap()]);
    assert!(ok && text.contains("consistency: checked"), "{text}");

    // The same log key, a fresh database, a different history of at least the same length.
    let forger = Notarium::start(&[&registry.host]);
    sign_some(&forger, "forged", 4);
    let forged = dir.path().join("forged.zip");
    export_pack(&forger, &forged, &["--since", saved_file.to_str().unwrap()]);
    let (ok, text) = verify_pack(&forged, &log_key, &[]);
    assert!(ok, "on its own the rewritten history verifies: {text}");
    let (ok, text) = verify_pack(&forged, &log_key, &["--since", saved_file.to_str().unwrap()]);
    assert!(!ok && text.contains("entries.jsonl line 1") && text.contains("history was rewritten"), "{text}");
}

fn zip_of(path: &Path, members: &[(&str, &[u8])]) {
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (name, bytes) in members {
        zip.start_file(*name, options).unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.finish().unwrap();
}

#[test]
fn hostile_archives_are_refused_within_their_limits_naming_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let key = Path::new(support::ROOT).join("tests/fixtures/other-ed25519.pub");
    let case = |name: &str, members: &[(&str, &[u8])]| {
        let path = dir.path().join(name);
        zip_of(&path, members);
        verify_pack(&path, &key, &[])
    };
    let (ok, text) = case("traversal.zip", &[("../../etc/evil", b"x"), ("manifest.json", b"{}")]);
    assert!(!ok && text.contains("is not a member of a pack"), "{text}");
    let (ok, text) = case("nested.zip", &[("pack/entries.jsonl", b"x")]);
    assert!(!ok && text.contains("is not a member of a pack"), "{text}");
    // 64 MiB of zeros deflate to about 64 KiB: the manifest's limit is 1 MiB.
    let zeros = vec![0u8; 64 << 20];
    let (ok, text) = case("bomb.zip", &[("manifest.json", &zeros)]);
    assert!(!ok && text.contains("manifest.json") && text.contains("limit"), "{text}");
    // One endless line in the entries: refused at the line limit, not read into memory whole.
    let manifest = json!({"type": "notarium-evidence-pack", "version": 1, "origin": "o", "from": null, "to": null,
        "tree_size": 1, "first_index": 0, "count": 1, "start_size": 0, "start_consistency": [], "members": [],
        "signatures_without_payload": 0})
    .to_string();
    let endless = vec![b'a'; 20 << 20];
    let (ok, text) = case("endless.zip", &[("manifest.json", manifest.as_bytes()), ("entries.jsonl", &endless)]);
    assert!(!ok && text.contains("entries.jsonl line 1") && text.contains("longer than the limit"), "{text}");
    let many: Vec<(String, Vec<u8>)> = (0..20).map(|i| (format!("m{i}"), vec![])).collect();
    let many: Vec<(&str, &[u8])> = many.iter().map(|(n, b)| (n.as_str(), b.as_slice())).collect();
    let (ok, text) = case("many.zip", &many);
    assert!(!ok && text.contains("members"), "{text}");
}

/// `notarium witness serve` with a fresh key, as an auditor runs it; killed when dropped.
struct Witness {
    url: String,
    vkey: String,
    child: std::process::Child,
}

impl Drop for Witness {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_witness(dir: &Path) -> Witness {
    let key = dir.join("witness.pem");
    let out = Command::new(env!("CARGO_BIN_EXE_notarium"))
        .args(["witness", "key", "generate", "--name", "witness.test/evidence", "--output", "json", "--key"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let vkey = serde_json::from_slice::<Value>(&out.stdout).unwrap()["vkey"].as_str().unwrap().to_owned();
    let pem = std::fs::read_to_string(Path::new(support::ROOT).join("keys.example/dev-log.pem")).unwrap();
    let log = <ed25519_dalek::SigningKey as ed25519_dalek::pkcs8::DecodePrivateKey>::from_pkcs8_pem(&pem).unwrap();
    let origin = "notarium.local/log";
    let log_vkey = notarium::formats::checkpoint::ed25519_verifier_key(origin, &log.verifying_key().to_bytes());
    let mut child = Command::new(env!("CARGO_BIN_EXE_notarium"))
        .args(["witness", "serve", "--listen", &format!("127.0.0.1:{}", support::free_port())])
        .args(["--name", "witness.test/evidence", "--log", &format!("{origin}={log_vkey}")])
        .arg("--key")
        .arg(&key)
        .arg("--state")
        .arg(dir.join("witness-state"))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (url, _) = support::listening_url(&mut child, |line| line.split_once(" listening on ").map(|(_, url)| url));
    Witness { url, vkey, child }
}

#[test]
fn a_pack_carries_witness_cosignatures_k_of_n_and_a_fork_the_witness_refused_fails() {
    let dir = tempfile::tempdir().unwrap();
    let witness = start_witness(dir.path());
    let host = witness.url.trim_start_matches("http://").to_owned();
    let config = format!(
        "[log]\nwitness_interval_secs = 1\nwitness_timeout_secs = 5\n\n[[log.witnesses]]\nurl = \"{}\"\nvkey = \"{}\"\n{EXAMPLE_KEYS}",
        witness.url, witness.vkey
    );
    let honest = Notarium::start_with_config(&config, &[&host], &[]);
    let (auditor, _) = honest.create_token(&["--role", "auditor"]);
    honest.create_token(&["--role", "auditor"]);
    let log_key = honest.public_key_file("dev-log", dir.path());
    let pack = dir.path().join("honest.zip");
    export_pack_as(&honest, &pack, &[], &auditor);
    let policy = ["--witness", &witness.vkey, "--witnesses-required", "1"];
    let (ok, text) = verify_pack(&pack, &log_key, &policy);
    assert!(ok && text.contains("1 of the given witnesses cosigned"), "{text}");
    let (ok, text) = verify_pack(&pack, &log_key, &["--witness", &witness.vkey, "--witnesses-required", "2"]);
    assert!(!ok && text.contains("witness-cosignatures.txt") && text.contains("required"), "{text}");

    // The same log key on a fresh database, a longer history: the witness refuses the fork, so the forged
    // pack carries no cosignature of it.
    let forger = Notarium::start_with_config(&config, &[&host], &[]);
    let (forged_auditor, _) = forger.create_token(&["--role", "auditor"]);
    for _ in 0..4 {
        forger.create_token(&["--role", "verifier"]);
    }
    let forged = dir.path().join("forged.zip");
    export_pack_as(&forger, &forged, &[], &forged_auditor);
    let (ok, text) = verify_pack(&forged, &log_key, &[]);
    assert!(ok, "without a witness policy the fork verifies on its own: {text}");
    let (ok, text) = verify_pack(&forged, &log_key, &policy);
    assert!(!ok && text.contains("witness-cosignatures.txt") && text.contains("0 of the 1 required"), "{text}");
}
