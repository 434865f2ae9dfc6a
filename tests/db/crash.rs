//! Crash safety of the sign path (ARCHITECTURE.md invariant 2): `kill -9` in the middle of a burst of signs.
//! After a restart every acknowledged sign is in the register at the index it was told, the register
//! verifies offline, and the registry holds no signature or referrer the register lacks.

use crate::support;

use std::collections::HashSet;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use support::{Notarium, Registry, push_image};

const IMAGES: usize = 24;

#[test]
fn kill_9_during_a_burst_of_signs_loses_no_acknowledged_sign_and_leaves_no_unlogged_signature() {
    let registry = Registry::start();
    let data = tempfile::tempdir().unwrap();
    // Signs whose write never reached the registry are given up 10 s after they began. Shorter is unsafe on a
    // loaded machine: a request may wait seconds for its subject's lock, and the registry may finish a write
    // the dead process sent seconds later still (a 2 s grace failed once in CI this way).
    let database_url = support::test_database_url(data.path());
    let data_env = [("NOTARIUM_DATABASE_URL", database_url.as_str()), ("NOTARIUM_PENDING_GRACE_SECS", "10")];
    let mut notarium = Notarium::start_with(&[&registry.host], &data_env);
    let images: Vec<(String, String)> = (0..IMAGES)
        .map(|i| {
            let repo = format!("crash/app{}", i % 4);
            let digest = push_image(&registry, &repo, &format!("v{i}"), &format!("crash {i}"));
            (repo, digest)
        })
        .collect();

    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let answered = Arc::new(AtomicUsize::new(0));
    let burst: Vec<_> = images
        .iter()
        .flat_map(|(repo, digest)| ["dev-ecdsa", "dev-ed25519"].map(|key| (repo.clone(), digest.clone(), key)))
        .map(|(repo, digest, key)| {
            let (url, host) = (notarium.url.clone(), registry.host.clone());
            let (acknowledged, answered) = (acknowledged.clone(), answered.clone());
            std::thread::spawn(move || {
                let body = serde_json::json!({"image": format!("{host}/{repo}@{digest}"), "key": key});
                let response = support::client().post(format!("{url}/v1/sign")).json(&body).send();
                if let Ok(response) = response.and_then(|r| r.error_for_status()) {
                    if let Ok(answer) = response.json::<serde_json::Value>() {
                        acknowledged.lock().unwrap().push(answer);
                    }
                }
                answered.fetch_add(1, Ordering::SeqCst);
            })
        })
        .collect();
    while acknowledged.lock().unwrap().len() < 6 && answered.load(Ordering::SeqCst) < burst.len() {
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    notarium.kill();
    burst.into_iter().for_each(|t| t.join().unwrap());
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(acknowledged.len() >= 6 && acknowledged.len() < 2 * IMAGES, "the kill must land mid-burst");

    let notarium = Notarium::start_with(&[&registry.host], &data_env);
    wait_for_no_pending_signs(&database_url);
    let (_, size) = notarium.get_text("/v1/log/checkpoint");
    let tree_size: u64 = size.lines().nth(1).unwrap().parse().unwrap();
    let (status, page) = notarium.get_text(&format!("/v1/log/entries?start=0&end={tree_size}"));
    assert_eq!(status, 200, "{page}");
    let page: serde_json::Value = serde_json::from_str(&page).unwrap();
    let entries = page["entries"].as_array().unwrap();
    for answer in &acknowledged {
        let index = answer["log"]["index"].as_u64().unwrap();
        let entry = &entries[index as usize]["entry"];
        assert_eq!(entry["subject"]["digest"], answer["digest"], "entry {index}: {entry}");
        assert_eq!(entry["details"]["key"], answer["key"], "entry {index}: {entry}");
    }
    // The writes of one sign are concurrent: a sign the kill interrupted may have landed its bundle referrer
    // and not its `.sig` layer (or the reverse); its entry lists what landed, and all of that is there.
    let lists = |entry: &serde_json::Value, format: &str| {
        entry["details"]["artifacts"].as_array().unwrap().iter().any(|a| a["format"] == format)
    };
    let sign_entries: Vec<&serde_json::Value> =
        entries.iter().map(|e| &e["entry"]).filter(|e| e["kind"] == "sign").collect();
    for entry in &sign_entries {
        for artifact in entry["details"]["artifacts"].as_array().unwrap().iter().filter(|a| a["format"] != "cosign") {
            let repo = entry["subject"]["repository"].as_str().unwrap();
            let referrer = artifact["manifest_digest"].as_str().unwrap();
            assert!(registry.manifest(repo, referrer).is_some(), "{entry} lists {referrer}, not in the registry");
        }
    }
    // And the reverse: every referrer the registry lists for a subject (distribution 2.8 has no referrers API,
    // so its fallback index) is an artifact of some sign entry; reconciliation logged what the kill left behind.
    let logged_referrers: HashSet<&str> = sign_entries
        .iter()
        .flat_map(|e| e["details"]["artifacts"].as_array().unwrap())
        .filter_map(|a| a["manifest_digest"].as_str())
        .collect();
    let mut listed_referrers = 0;
    for (repo, digest) in &images {
        let Some(index) = registry.manifest(repo, &digest.replace(':', "-")) else { continue };
        let index: serde_json::Value = serde_json::from_slice(&index).unwrap();
        for referrer in index["manifests"].as_array().unwrap() {
            let referrer = referrer["digest"].as_str().unwrap();
            assert!(
                logged_referrers.contains(referrer),
                "{repo}@{digest} lists referrer {referrer}, logged by no entry"
            );
            listed_referrers += 1;
        }
    }
    assert!(listed_referrers >= acknowledged.len(), "each acknowledged sign wrote a bundle referrer");
    let logged: HashSet<&str> =
        sign_entries.iter().filter(|e| lists(e, "cosign")).filter_map(|e| e["details"]["signature"].as_str()).collect();
    let mut stored = 0;
    for (repo, digest) in &images {
        let tag = digest.replace(':', "-") + ".sig";
        let Some(manifest) = registry.manifest(repo, &tag) else { continue };
        let manifest: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
        for layer in manifest["layers"].as_array().unwrap() {
            let signature = layer["annotations"]["dev.cosignproject.cosign/signature"].as_str().unwrap();
            assert!(
                logged.contains(signature),
                "{repo}@{digest} holds a signature the register lacks\n{}",
                notarium.log()
            );
            stored += 1;
        }
    }
    assert_eq!(stored, logged.len(), "every logged .sig signature is in the registry");
    assert!(stored >= acknowledged.len());
    eprintln!("acknowledged {}, stored and logged {stored}, tree size {tree_size}", acknowledged.len());

    let dir = tempfile::tempdir().unwrap();
    let (file, key) = (dir.path().join("log.jsonl"), notarium.public_key_file("dev-log", dir.path()));
    let cli = |args: &[&str]| Command::new(env!("CARGO_BIN_EXE_notarium")).args(args).output().unwrap();
    let out = cli(&["log", "export", "-f", file.to_str().unwrap(), "--server", &notarium.url]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = cli(&["log", "verify", file.to_str().unwrap(), "--log-key", key.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

fn wait_for_no_pending_signs(database_url: &str) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let database = runtime.block_on(support::TestDatabase::connect(database_url));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    loop {
        let pending = runtime.block_on(database.scalar("SELECT COUNT(*) FROM signatures WHERE state = 'pending'"));
        if pending == 0 {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "{pending} signs still pending after 90 s");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}
