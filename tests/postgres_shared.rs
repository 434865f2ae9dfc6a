//! Two `notarium serve` replicas on one PostgreSQL database and one registry: concurrent signs through
//! both land at distinct log indexes of one register, whose export verifies offline, and every signature
//! row ends 'stored'. Always PostgreSQL, whatever `NOTARIUM_TEST_DATABASE` says.

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
