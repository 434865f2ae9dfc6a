//! An auditor's export: `notarium log export` writes a period with a signed checkpoint and proofs, and
//! `notarium log verify` checks it offline; any edit to the file or to the database is caught and named.

mod support;

use std::path::Path;
use std::process::{Command, Output};

use support::{Notarium, Registry, TestDatabase, push_image};

fn cli(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_notarium")).args(args).output().unwrap()
}

fn verify(file: &Path, key: &Path) -> (bool, String) {
    let out = cli(&["log", "verify", file.to_str().unwrap(), "--log-key", key.to_str().unwrap()]);
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
    let key = notarium.public_key_file("dev-ed25519", dir.path());
    (registry, notarium, dir, key)
}

fn export(notarium: &Notarium, dir: &Path, name: &str, extra: &[&str]) -> std::path::PathBuf {
    let file = dir.join(name);
    let mut args = vec!["log", "export", "-o", file.to_str().unwrap(), "--server", &notarium.url];
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
    assert!(ok && text.contains("verified 5 entries"), "{text}");

    let lines: Vec<String> = std::fs::read_to_string(&file).unwrap().lines().map(str::to_owned).collect();
    let write = |name: &str, lines: &[String]| {
        let path = dir.path().join(name);
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        path
    };
    let mut changed = lines.clone();
    changed[3] = changed[3].replacen("dev-ecdsa", "dev-ecdsb", 1);
    let (ok, text) = verify(&write("changed.jsonl", &changed), &key);
    assert!(!ok && text.contains("line 4") && text.contains("entry 2"), "{text}");

    let mut deleted = lines.clone();
    deleted.remove(2);
    let (ok, text) = verify(&write("deleted.jsonl", &deleted), &key);
    assert!(!ok && text.contains("line 3") && text.contains("entry 1 belongs"), "{text}");

    let mut swapped = lines.clone();
    swapped.swap(2, 3);
    let (ok, text) = verify(&write("swapped.jsonl", &swapped), &key);
    assert!(!ok && text.contains("line 3"), "{text}");

    let (ok, text) = verify(&write("truncated.jsonl", &lines[..4]), &key);
    assert!(!ok && text.contains("promises 5 entries"), "{text}");

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
                "UPDATE log_entries SET entry = convert_to(replace(convert_from(entry, 'UTF8'), 'dev-ecdsa', 'dev-other'), 'UTF8') WHERE idx = 1",
            )
        } else {
            (
                "DROP TRIGGER log_entries_no_update",
                "UPDATE log_entries SET entry = CAST(replace(CAST(entry AS TEXT), 'dev-ecdsa', 'dev-other') AS BLOB) WHERE idx = 1",
            )
        };
        database.execute(unguard).await.unwrap();
        assert_eq!(database.execute(rewrite).await.unwrap(), 1);
    });
    let file = export(&notarium, dir.path(), "after-edit.jsonl", &[]);
    let (ok, text) = verify(&file, &key);
    assert!(!ok && text.contains("entry 1") && text.contains("not in the signed tree"), "{text}");
}
