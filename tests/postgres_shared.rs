//! Two `notarium serve` replicas on one PostgreSQL database and one registry: concurrent signs through
//! both land at distinct log indexes of one register, whose export verifies offline, and every signature
//! row ends 'stored'; signs and attests of one digest through both keep every `.sig` and `.att` layer and
//! every fallback-index entry, each logged once. Always PostgreSQL, whatever `NOTARIUM_TEST_DATABASE` says.

use crate::support;

use std::collections::BTreeSet;
use std::process::Command;

use support::{Notarium, Postgres, Registry, TestDatabase, push_image};

const IMAGES: usize = 24;

/// Pushes `IMAGES` distinct images, four skopeo copies at a time; returns `host/repo@digest` references.
fn push_images(registry: &Registry) -> Vec<String> {
    let chunks: Vec<Vec<usize>> = (0..IMAGES).collect::<Vec<_>>().chunks(IMAGES / 4).map(<[usize]>::to_vec).collect();
    std::thread::scope(|scope| {
        let pushers: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                scope.spawn(move || {
                    chunk
                        .into_iter()
                        .map(|n| {
                            let repo = format!("shared/app{}", n % 6);
                            let digest = push_image(registry, &repo, &format!("v{n}"), &format!("shared {n}"));
                            format!("{}/{repo}@{digest}", registry.host)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        pushers.into_iter().flat_map(|p| p.join().unwrap()).collect()
    })
}

/// Two servers started together on `database_url` (their migrations race for sqlx's advisory lock).
fn two_servers(registry: &Registry, database_url: &str) -> [Notarium; 2] {
    let env = [("NOTARIUM_DATABASE_URL", database_url)];
    std::thread::scope(|scope| {
        let a = scope.spawn(|| Notarium::start_with(&[&registry.host], &env));
        let b = scope.spawn(|| Notarium::start_with(&[&registry.host], &env));
        [a.join().unwrap(), b.join().unwrap()]
    })
}

/// Signs every image at once, alternating servers and keys; returns each 201 answer.
fn sign_all(servers: &[Notarium; 2], images: &[String]) -> Vec<serde_json::Value> {
    std::thread::scope(|scope| {
        let signers: Vec<_> = images
            .iter()
            .enumerate()
            .map(|(n, image)| {
                let key = ["dev-ecdsa", "dev-ed25519"][(n / 2) % 2];
                scope.spawn(move || servers[n % 2].sign(image, key))
            })
            .collect();
        signers
            .into_iter()
            .map(|s| {
                let (status, body) = s.join().unwrap();
                assert_eq!(status, 201, "{body}");
                body
            })
            .collect()
    })
}

fn tree_size_of_checkpoint(notarium: &Notarium) -> u64 {
    let (status, checkpoint) = notarium.get_text("/v1/log/checkpoint");
    assert_eq!(status, 200, "{checkpoint}");
    checkpoint.lines().nth(1).unwrap().parse().unwrap()
}

/// The example keys (dev-ecdsa, dev-ed25519, dev-log), each logged once as `key-added`.
const KEYS: u64 = 3;

#[test]
fn two_servers_on_one_postgres_database_share_one_register_that_verifies() {
    let registry = Registry::start();
    let database_url = Postgres::shared().database();
    let images = push_images(&registry);
    let servers = two_servers(&registry, &database_url);

    let answers = sign_all(&servers, &images);
    let indexes: BTreeSet<u64> = answers.iter().map(|a| a["log"]["index"].as_u64().unwrap()).collect();
    assert_eq!(indexes.len(), IMAGES, "two signs share a log index: {indexes:?}");
    // Both servers recorded the two example keys at start-up; the register holds each once, first.
    let total = KEYS + IMAGES as u64;
    assert_eq!(indexes, (KEYS..total).collect(), "after the key entries, signs are the only entries");
    assert!(answers.iter().all(|a| a["log"]["tree_size"].as_u64().unwrap() > a["log"]["index"].as_u64().unwrap()));
    for server in &servers {
        assert_eq!(tree_size_of_checkpoint(server), total);
    }
    let entries = |s: &Notarium| s.get_text(&format!("/v1/log/entries?start=0&end={total}"));
    assert_eq!(entries(&servers[0]), entries(&servers[1]));
    let (_, page) = entries(&servers[0]);
    let page: serde_json::Value = serde_json::from_str(&page).unwrap();
    let kinds: Vec<&str> =
        page["entries"].as_array().unwrap().iter().map(|e| e["entry"]["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds[..KEYS as usize], ["key-added"; KEYS as usize]);

    let dir = tempfile::tempdir().unwrap();
    let (status, export) = servers[0].get_text("/v1/log/export");
    assert_eq!(status, 200, "{export}");
    let file = dir.path().join("export.jsonl");
    std::fs::write(&file, export).unwrap();
    let key = servers[1].public_key_file("dev-log", dir.path());
    let out = Command::new(env!("CARGO_BIN_EXE_notarium"))
        .args(["log", "verify", file.to_str().unwrap(), "--log-key", key.to_str().unwrap()])
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && text.contains(&format!("verified {total} entries")), "{text}");

    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let database = TestDatabase::connect(&database_url).await;
        assert_eq!(database.scalar("SELECT COUNT(*) FROM signatures").await, IMAGES as i64);
        assert_eq!(database.scalar("SELECT COUNT(*) FROM signatures WHERE state = 'stored'").await, IMAGES as i64);
    });
}

/// A warn-mode allowance kept by one replica is forgotten when the other replica signs the digest: the
/// register is followed, so the kept answer does not outlive its cause by its TTL (30 s), only by about a second.
#[test]
fn a_signature_through_one_replica_reaches_the_decisions_kept_by_the_other() {
    let registry = Registry::start();
    let database_url = Postgres::shared().database();
    let policies = tempfile::tempdir().unwrap();
    let policy = format!(
        "policies:\n  - name: rollout\n    images: [\"{}/shared/*\"]\n    authorities: [{{key: dev-ecdsa}}, {{key: dev-ed25519}}]\n    threshold: 2\n    mode: warn\n",
        registry.host
    );
    std::fs::write(policies.path().join("rollout.yaml"), policy).unwrap();
    let env = [
        ("NOTARIUM_DATABASE_URL", database_url.as_str()),
        ("NOTARIUM_POLICIES_DIR", policies.path().to_str().unwrap()),
    ];
    let (a, b) = (Notarium::start_with(&[&registry.host], &env), Notarium::start_with(&[&registry.host], &env));
    let digest = push_image(&registry, "shared/rollout", "v1", "rolled out");
    let image = format!("{}/shared/rollout@{digest}", registry.host);
    assert_eq!(a.sign(&image, "dev-ecdsa").0, 201);
    let verify = |server: &Notarium| {
        let (status, _, answer) = server.post("/v1/verify", serde_json::json!({"image": image}).to_string());
        assert_eq!(status, 200, "{answer}");
        answer
    };
    assert_eq!(verify(&a)["allowed"], true);
    assert_eq!(verify(&a)["cached"], true, "replica a keeps the warn-mode allowance");
    assert_eq!(b.sign(&image, "dev-ed25519").0, 201);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let answer = verify(&a);
        if answer["reasons"] == serde_json::json!([]) {
            assert_eq!(answer["cached"], false, "{answer}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "replica a still answers from its cache: {answer}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// Signs and attests of one digest, split between two replicas with distinct keys.
const ONE_DIGEST_WRITES: usize = 40;

/// `count` P-256 file keys `k0`, `k1`, … in `dir`, and the configuration naming them and the checkpoint key.
fn many_keys_config(dir: &std::path::Path, count: usize) -> String {
    let mut config = String::new();
    for n in 0..count {
        let path = support::p256_key_file(dir, &format!("k{n}"));
        config.push_str(&format!("[[keys]]\nid = \"k{n}\"\nbackend = \"file\"\npath = {:?}\n\n", path));
    }
    let log_key = std::path::Path::new(support::ROOT).join("keys.example/dev-log.pem");
    config + &format!("[[keys]]\nid = \"dev-log\"\nbackend = \"file\"\npath = {log_key:?}\n")
}

/// The annotation `name` of every layer of `tag`'s manifest in `repo`.
fn layer_values(registry: &Registry, repo: &str, tag: &str, name: &str) -> Vec<String> {
    let manifest: serde_json::Value = serde_json::from_slice(&registry.manifest(repo, tag).unwrap()).unwrap();
    let layers = manifest["layers"].as_array().unwrap();
    layers.iter().map(|l| if name == "digest" { &l["digest"] } else { &l["annotations"][name] }).map(text).collect()
}

fn text(value: &serde_json::Value) -> String {
    value.as_str().unwrap_or_else(|| panic!("not a string: {value}")).to_owned()
}

/// Every register entry of `kind`, through `server`.
fn entries_of_kind(server: &Notarium, kind: &str) -> Vec<serde_json::Value> {
    let size = tree_size_of_checkpoint(server);
    let (status, page) = server.get_text(&format!("/v1/log/entries?start=0&end={size}"));
    assert_eq!(status, 200, "{page}");
    let page: serde_json::Value = serde_json::from_str(&page).unwrap();
    let entries = page["entries"].as_array().unwrap().iter().map(|e| e["entry"].clone());
    entries.filter(|e| e["kind"] == kind).collect()
}

/// Each value once, as a set; fails naming the repeated ones.
fn each_once(values: Vec<String>, what: &str) -> BTreeSet<String> {
    let set: BTreeSet<String> = values.iter().cloned().collect();
    assert_eq!(set.len(), values.len(), "{what}: a value appears twice in {values:?}");
    set
}

/// The race across replicas: signs (a `.sig` layer and a bundle referrer each) and attests (an `.att` layer and
/// a bundle referrer each) of ONE digest, all at once through two servers on one database. Each server
/// serializes its own writers, and the PostgreSQL advisory lock serializes the two: without it the
/// servers' read-merge-writes of the same tags overwrite each other and layers or index entries vanish.
#[test]
fn concurrent_signs_and_attests_of_one_digest_through_two_replicas_keep_every_layer_and_index_entry() {
    let registry = Registry::start();
    let database_url = Postgres::shared().database();
    let keys = tempfile::tempdir().unwrap();
    let signs = ONE_DIGEST_WRITES / 2;
    let config = many_keys_config(keys.path(), signs);
    let env = [("NOTARIUM_DATABASE_URL", database_url.as_str())];
    let servers = std::thread::scope(|scope| {
        let start = || scope.spawn(|| Notarium::start_with_config(&config, &[&registry.host], &env));
        let (a, b) = (start(), start());
        [a.join().unwrap(), b.join().unwrap()]
    });
    let repo = "shared/one";
    let digest = push_image(&registry, repo, "v1", "one digest, many writers");
    let image = format!("{}/{repo}@{digest}", registry.host);

    let barrier = std::sync::Barrier::new(ONE_DIGEST_WRITES);
    let answers: Vec<(usize, u16, serde_json::Value)> = std::thread::scope(|scope| {
        let writers: Vec<_> = (0..ONE_DIGEST_WRITES)
            .map(|n| {
                let (server, image, barrier) = (&servers[n % 2], &image, &barrier);
                scope.spawn(move || {
                    // Within each run of four: two signs, one per server, then two attests; each sign has a key of its own.
                    let key = format!("k{}", n % 2 + 2 * (n / 4));
                    let body = match n % 4 < 2 {
                        true => serde_json::json!({"image": image, "key": key}),
                        false => serde_json::json!({"image": image, "key": key,
                            "predicate_type": "https://example.com/scan/v1", "predicate": {"scan": n}}),
                    };
                    let path = if n % 4 < 2 { "/v1/sign" } else { "/v1/attest" };
                    barrier.wait();
                    let (status, _, answer) = server.post(path, body.to_string());
                    (n, status, answer)
                })
            })
            .collect();
        writers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    for (n, status, answer) in &answers {
        assert_eq!(*status, 201, "write {n}: {answer}");
    }
    let tag = digest.replace(':', "-");

    let sign_entries = entries_of_kind(&servers[0], "sign");
    let logged_signatures = each_once(sign_entries.iter().map(|e| text(&e["details"]["signature"])).collect(), "sign");
    let layers =
        each_once(layer_values(&registry, repo, &format!("{tag}.sig"), "dev.cosignproject.cosign/signature"), ".sig");
    assert_eq!(layers.len(), signs, "every sign's .sig layer");
    assert_eq!(layers, logged_signatures, "each .sig layer is logged once, and only those");

    let attest_entries = entries_of_kind(&servers[1], "attest");
    let logged_envelopes =
        each_once(attest_entries.iter().map(|e| text(&e["details"]["envelope_digest"])).collect(), "attest");
    let layers = each_once(layer_values(&registry, repo, &format!("{tag}.att"), "digest"), ".att");
    assert_eq!(layers.len(), ONE_DIGEST_WRITES - signs, "every attest's .att layer");
    assert_eq!(layers, logged_envelopes, "each .att layer is logged once, and only those");

    let listed =
        each_once(registry.referrer_entries(repo, &digest).iter().map(|e| text(&e["digest"])).collect(), "index");
    assert_eq!(listed.len(), ONE_DIGEST_WRITES, "a bundle referrer per sign and per attest: {listed:?}");
    let signed_bundles = sign_entries.iter().flat_map(|e| e["details"]["artifacts"].as_array().unwrap().clone());
    let signed_bundles: Vec<String> =
        signed_bundles.filter(|a| a["format"] == "bundle").map(|a| text(&a["manifest_digest"])).collect();
    let signed_bundles = each_once(signed_bundles, "logged bundle referrers");
    assert_eq!(signed_bundles.len(), signs);
    assert!(signed_bundles.is_subset(&listed), "every logged bundle referrer is in the fallback index");
    let indexes: Vec<String> = answers.iter().map(|(_, _, a)| a["log"]["index"].to_string()).collect();
    each_once(indexes, "log indexes of the answers");
}
