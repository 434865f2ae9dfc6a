//! An auditor's export: `notarium log export` writes a period with a signed checkpoint and proofs, and
//! `notarium log verify` checks it offline; any edit to the file or to the database is caught and named.

use crate::support;

use std::path::Path;
use std::process::{Command, Output};

use sha2::{Digest as _, Sha256};
use support::{Notarium, Registry, TestDatabase, push_image};

fn cli(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_notarium")).args(args).output().unwrap()
}

fn verify(file: &Path, key: &Path) -> (bool, String) {
    let out = cli(&["log", "verify", file.to_str().unwrap(), "--log-key", key.to_str().unwrap()]);
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

fn verify_since(file: &Path, key: &Path, since: &Path) -> (bool, String) {
    let (file, key, since) = (file.to_str().unwrap(), key.to_str().unwrap(), since.to_str().unwrap());
    let out = cli(&["log", "verify", file, "--log-key", key, "--since", since]);
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

fn signed_log(entries: usize) -> (Registry, Notarium, tempfile::TempDir, std::path::PathBuf) {
    let registry = Registry::start();
    let notarium = Notarium::start(&[&registry.host]);
    for i in 0..entries {
        let digest = push_image(&registry, "audit/app", &format!("v{i}"), &format!("audit {i}"));
        let (status, body) = notarium.sign(&format!("{}/audit/app@{digest}", registry.host), "dev-ecdsa");
        assert_eq!(status, 201, "{body}");
    }
    let dir = tempfile::tempdir().unwrap();
    let key = notarium.public_key_file("dev-log", dir.path());
    (registry, notarium, dir, key)
}

fn export(notarium: &Notarium, dir: &Path, name: &str, extra: &[&str]) -> std::path::PathBuf {
    let file = dir.join(name);
    let mut args = vec!["log", "export", "-f", file.to_str().unwrap(), "--server", &notarium.url];
    args.extend_from_slice(extra);
    let out = cli(&args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    file
}

#[test]
fn an_export_verifies_offline_and_every_tampering_of_the_file_is_named() {
    let (_registry, notarium, dir, key) = signed_log(5);
    let file = export(&notarium, dir.path(), "all.jsonl", &[]);
    let (ok, text) = verify(&file, &key);
    assert!(ok && text.contains("verified 8 entries"), "{text}");

    let lines: Vec<String> = std::fs::read_to_string(&file).unwrap().lines().map(str::to_owned).collect();
    let write = |name: &str, lines: &[String]| {
        let path = dir.path().join(name);
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        path
    };
    let mut changed = lines.clone();
    changed[4] = changed[4].replacen("dev-ecdsa", "dev-ecdsb", 1);
    let (ok, text) = verify(&write("changed.jsonl", &changed), &key);
    assert!(!ok && text.contains("line 5") && text.contains("entry 3"), "{text}");

    let mut deleted = lines.clone();
    deleted.remove(2);
    let (ok, text) = verify(&write("deleted.jsonl", &deleted), &key);
    assert!(!ok && text.contains("line 3") && text.contains("entry 1 belongs"), "{text}");

    let mut swapped = lines.clone();
    swapped.swap(2, 3);
    let (ok, text) = verify(&write("swapped.jsonl", &swapped), &key);
    assert!(!ok && text.contains("line 3"), "{text}");

    let (ok, text) = verify(&write("truncated.jsonl", &lines[..4]), &key);
    assert!(!ok && text.contains("promises 8 entries"), "{text}");

    let other_key = Path::new(support::ROOT).join("tests/fixtures/other-ed25519.pub");
    let (ok, text) = verify(&file, &other_key);
    assert!(!ok && text.contains("line 1") && text.contains("not signed by this log key"), "{text}");

    let (ok, text) = verify(&write("empty-period.jsonl", &lines[..1]), &key);
    assert!(!ok, "{text}");
    let future = export(&notarium, dir.path(), "future.jsonl", &["--from", "2999-01-01T00:00:00Z"]);
    let (ok, text) = verify(&future, &key);
    assert!(ok && text.contains("verified 0 entries"), "{text}");
}

#[test]
fn an_entry_edited_in_the_database_fails_verification_and_names_the_entry() {
    let (_registry, notarium, dir, key) = signed_log(4);
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let database = TestDatabase::connect(&notarium.database_url()).await;
        // Someone with write access to the database removes the append-only guard and rewrites history.
        let (unguard, rewrite) = if database.is_postgres() {
            (
                "DROP TRIGGER log_entries_append_only ON log_entries",
                "UPDATE log_entries SET entry = convert_to(replace(convert_from(entry, 'UTF8'), 'dev-ecdsa', 'dev-other'), 'UTF8') WHERE idx = 3",
            )
        } else {
            (
                "DROP TRIGGER log_entries_no_update",
                "UPDATE log_entries SET entry = CAST(replace(CAST(entry AS TEXT), 'dev-ecdsa', 'dev-other') AS BLOB) WHERE idx = 3",
            )
        };
        database.execute(unguard).await.unwrap();
        assert_eq!(database.execute(rewrite).await.unwrap(), 1);
    });
    let file = export(&notarium, dir.path(), "after-edit.jsonl", &[]);
    let (ok, text) = verify(&file, &key);
    assert!(!ok && text.contains("entry 3") && text.contains("not in the signed tree"), "{text}");
}

/// Rewrites entry `index` the thorough way: new content, new leaf hash, and every stored subtree hash
/// above it recomputed, so the database is self-consistent and only an earlier checkpoint can tell.
async fn rewrite_history(database_url: &str, index: i64) {
    let db = TestDatabase::connect(database_url).await;
    let unguard = if db.is_postgres() {
        ["DROP TRIGGER log_entries_append_only ON log_entries", "DROP TRIGGER log_nodes_append_only ON log_nodes"]
    } else {
        ["DROP TRIGGER log_entries_no_update", "DROP TRIGGER log_nodes_no_update"]
    };
    for statement in unguard {
        db.execute(statement).await.unwrap();
    }
    let entry = db.bytes(&format!("SELECT entry FROM log_entries WHERE idx = {index}")).await.unwrap();
    let forged = String::from_utf8(entry).unwrap().replacen("dev-ecdsa", "dev-forged", 1).into_bytes();
    let mut hash: [u8; 32] = Sha256::new().chain_update([0u8]).chain_update(&forged).finalize().into();
    let (entry, leaf) = (db.blob_literal(&forged), db.blob_literal(&hash));
    let rewrite = format!("UPDATE log_entries SET entry = {entry}, leaf_hash = {leaf} WHERE idx = {index}");
    assert_eq!(db.execute(&rewrite).await.unwrap(), 1);
    for level in 0..40i64 {
        if level > 0 {
            let child = index >> (level - 1);
            let sibling_query =
                format!("SELECT hash FROM log_nodes WHERE level = {} AND idx = {}", level - 1, child ^ 1);
            let Some(sibling) = db.bytes(&sibling_query).await else { break };
            let (left, right) = if child & 1 == 0 { (hash.to_vec(), sibling) } else { (sibling, hash.to_vec()) };
            hash = Sha256::new().chain_update([1u8]).chain_update(left).chain_update(right).finalize().into();
        }
        let update = format!(
            "UPDATE log_nodes SET hash = {} WHERE level = {level} AND idx = {}",
            db.blob_literal(&hash),
            index >> level
        );
        if db.execute(&update).await.unwrap() == 0 {
            break;
        }
    }
}

#[test]
fn a_rewritten_history_passes_on_its_own_but_fails_against_a_checkpoint_saved_before() {
    let (registry, mut notarium, dir, key) = signed_log(4);
    let (status, saved) = notarium.get_text("/v1/log/checkpoint");
    assert_eq!(status, 200);
    let saved_file = dir.path().join("saved-checkpoint.txt");
    std::fs::write(&saved_file, &saved).unwrap();
    let digest = push_image(&registry, "audit/app", "later", "later");
    assert_eq!(notarium.sign(&format!("{}/audit/app@{digest}", registry.host), "dev-ed25519").0, 201);

    let since = ["--since", saved_file.to_str().unwrap()];
    let honest = export(&notarium, dir.path(), "honest.jsonl", &since);
    let (ok, text) = verify_since(&honest, &key, &saved_file);
    assert!(ok && text.contains("verified 8 entries"), "{text}");

    let (_, signed) = notarium.get_text("/v1/log/checkpoint");
    tokio::runtime::Runtime::new().unwrap().block_on(rewrite_history(&notarium.database_url(), 3));
    // The running server never signs a second root for a size it has signed ...
    assert_eq!(notarium.get_text("/v1/log/checkpoint").1, signed, "two roots signed for one tree size");
    // ... so whoever rewrites the database restarts it as well.
    notarium.kill();
    let data_dir = std::mem::replace(&mut notarium.data_dir, tempfile::tempdir().unwrap());
    let notarium = Notarium::start_in(data_dir, &[&registry.host], &[]);
    let rewritten = export(&notarium, dir.path(), "rewritten.jsonl", &since);
    let (ok, text) = verify(&rewritten, &key);
    assert!(ok, "a thorough rewrite is self-consistent, which is why auditors keep checkpoints: {text}");
    let (ok, text) = verify_since(&rewritten, &key, &saved_file);
    assert!(
        !ok && text.contains("line 1") && text.contains("does not extend the saved checkpoint at size 7"),
        "{text}"
    );

    let (_, proof) = notarium.get_text("/v1/log/proof/consistency?first=7&second=8");
    let proof: serde_json::Value = serde_json::from_str(&proof).unwrap();
    let hashes: Vec<[u8; 32]> = proof["hashes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| notarium::formats::digest::hex_decode(h.as_str().unwrap()).unwrap().try_into().unwrap())
        .collect();
    let root_of = |note: &str| {
        let (body, _) = notarium::formats::checkpoint::parse_note(note).unwrap();
        notarium::formats::checkpoint::Checkpoint::parse_body(&body).unwrap().root_hash
    };
    let (_, current) = notarium.get_text("/v1/log/checkpoint");
    let served = notarium::merkle::verify_consistency(7, 8, &root_of(&saved), &root_of(&current), &hashes);
    assert!(served.is_err(), "the server's own consistency proof must not bridge a rewritten history");
}

#[test]
fn the_csv_view_lists_every_entry_with_its_leaf_hash() {
    let (_registry, notarium, dir, _key) = signed_log(3);
    let csv = std::fs::read_to_string(export(&notarium, dir.path(), "all.csv", &["--format", "csv"])).unwrap();
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows.len(), 7, "{csv}");
    assert!(rows[1..4].iter().all(|row| row.contains(",key-added,notarium,")), "{csv}");
    assert!(rows[0].starts_with("index,time,kind,actor,source,registry,repository,digest,key,key_version"));
    let jsonl = std::fs::read_to_string(export(&notarium, dir.path(), "all.jsonl", &[])).unwrap();
    for (row, line) in rows[4..].iter().zip(jsonl.lines().skip(4)) {
        let line: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(row.starts_with(&format!("{},", line["index"])), "{row}");
        assert!(row.contains(",sign,") && row.contains(",audit/app,") && row.contains(",dev-ecdsa,1,"), "{row}");
        assert!(row.ends_with(line["leaf_hash"].as_str().unwrap()), "{row}");
    }
}
