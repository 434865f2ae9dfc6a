//! The register over HTTP after real signs: sign responses name their entry, checkpoints are C2SP signed
//! notes that verify with the log key, and inclusion and consistency proofs from the API verify offline.

use crate::support;

use notarium::formats::canonical::canonical_json;
use notarium::formats::checkpoint::{Checkpoint, verify_ed25519_note};
use notarium::formats::digest::hex_decode;
use notarium::keys::PublicKey;
use notarium::merkle::{Hash, leaf_hash, verify_consistency, verify_inclusion};
use support::{Notarium, push_image};

fn hashes(v: &serde_json::Value) -> Vec<Hash> {
    v["hashes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| hex_decode(h.as_str().unwrap()).unwrap().try_into().unwrap())
        .collect()
}

fn get_json(notarium: &Notarium, path: &str) -> (u16, serde_json::Value) {
    let (status, text) = notarium.get_text(path);
    (status, serde_json::from_str(&text).unwrap())
}

fn open_checkpoint(note: &str, log_key: &[u8; 32]) -> Checkpoint {
    let body = verify_ed25519_note(note, "notarium.local/log", log_key).expect("checkpoint verifies with the log key");
    Checkpoint::parse_body(&body).unwrap()
}

#[test]
fn signs_are_logged_and_checkpoints_and_proofs_verify_offline() {
    let (registry, notarium, first_digest) = support::registry_notarium_and_image("log/app", "one", "one");
    let second_digest = push_image(&registry, "log/app", "two", "two");
    let log_key =
        PublicKey::from_pem(&notarium.get_text("/v1/keys/dev-log/public.pem").1).unwrap().ed25519_bytes().unwrap();

    // Before the first sign, the register already names the keys in force, public keys included.
    let (_, keys) = get_json(&notarium, "/v1/log/entries?start=0&end=3");
    let mut named: Vec<(String, String)> = keys["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            assert_eq!(e["entry"]["kind"], "key-added", "{e}");
            let id = e["entry"]["subject"]["key"].as_str().unwrap().to_owned();
            let served = notarium.get_text(&format!("/v1/keys/{id}/public.pem")).1;
            assert_eq!(e["entry"]["details"]["public_key"], served.as_str());
            (id, e["entry"]["details"]["backend"].as_str().unwrap().to_owned())
        })
        .collect();
    named.sort();
    let file = |id: &str| (id.to_owned(), "file".to_owned());
    assert_eq!(named, [file("dev-ecdsa"), file("dev-ed25519"), file("dev-log")]);

    let (status, first) = notarium.sign(&format!("{}/log/app@{first_digest}", registry.host), "dev-ecdsa");
    assert_eq!(status, 201, "{first}");
    assert_eq!((first["log"]["index"].as_u64(), first["log"]["tree_size"].as_u64()), (Some(3), Some(4)));
    let first_checkpoint = open_checkpoint(first["log"]["checkpoint"].as_str().unwrap(), &log_key);
    assert_eq!(first_checkpoint.size, 4);

    let (status, second) = notarium.sign(&format!("{}/log/app:two", registry.host), "dev-ed25519");
    assert_eq!(status, 201, "{second}");
    assert_eq!((second["log"]["index"].as_u64(), second["log"]["tree_size"].as_u64()), (Some(4), Some(5)));

    // Signing again with the same key writes nothing and logs nothing; a refused sign logs nothing.
    let (status, again) = notarium.sign(&format!("{}/log/app@{first_digest}", registry.host), "dev-ecdsa");
    assert_eq!((status, again["log"].is_null()), (200, true), "{again}");
    assert_eq!(notarium.sign(&format!("{}/log/app@{first_digest}", registry.host), "nope").0, 404);

    let (status, note) = notarium.get_text("/v1/log/checkpoint");
    assert_eq!(status, 200);
    let checkpoint = open_checkpoint(&note, &log_key);
    assert_eq!(checkpoint.size, 5);

    let (_, entries) = get_json(&notarium, "/v1/log/entries?start=3&end=5");
    let entries = entries["entries"].as_array().unwrap().clone();
    assert_eq!(entries.len(), 2);
    for (i, (entry, digest)) in (3..).zip(entries.iter().zip([&first_digest, &second_digest])) {
        assert_eq!(entry["index"], i);
        assert_eq!(entry["entry"]["kind"], "sign");
        assert_eq!(entry["entry"]["subject"]["digest"], digest.as_str());
        let leaf = leaf_hash(&canonical_json(&entry["entry"]));
        assert_eq!(entry["leaf_hash"], notarium::formats::digest::hex_lower(&leaf));
        let (_, proof) = get_json(&notarium, &format!("/v1/log/proof/inclusion?index={i}&tree_size=5"));
        verify_inclusion(&leaf, i, 5, &hashes(&proof), &checkpoint.root_hash).unwrap();
    }
    assert_eq!(entries[1]["entry"]["details"]["key"], "dev-ed25519");
    assert_eq!(entries[1]["entry"]["details"]["manifest_digest"], second["signature"]["manifest_digest"]);

    let (_, proof) = get_json(&notarium, "/v1/log/proof/consistency?first=4&second=5");
    verify_consistency(4, 5, &first_checkpoint.root_hash, &checkpoint.root_hash, &hashes(&proof)).unwrap();

    let (status, problem) = get_json(&notarium, "/v1/log/proof/inclusion?index=6&tree_size=5");
    assert_eq!((status, problem["type"].as_str()), (400, Some("https://notarium.dev/problems/outside-the-log")));
    let (status, problem) = get_json(&notarium, "/v1/log/proof/consistency?first=1&second=9");
    assert_eq!((status, problem["type"].as_str()), (400, Some("https://notarium.dev/problems/outside-the-log")));
    let (status, problem) = get_json(&notarium, "/v1/log/proof/inclusion?index=x");
    assert_eq!((status, problem["type"].as_str()), (400, Some("https://notarium.dev/problems/invalid-query")));
}
