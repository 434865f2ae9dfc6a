//! The auditor's path through the real binary: `log verify` says what it proved (entries, the checkpoint's
//! signature, consistency with a saved checkpoint or that it was not checked), `-o`/`--output` is the
//! format and `--file`/`-f` the file (`log export -o FILE` still works, deprecated), dates may be plain
//! days, and the CSV view puts each value in its own column.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use support::{Notarium, Registry, push_image};

fn cli(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_notarium")).args(args).output().unwrap()
}

fn text(out: &Output) -> (String, String) {
    (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

struct Audit {
    registry: Registry,
    notarium: Notarium,
    dir: tempfile::TempDir,
    key: PathBuf,
}

fn signed_log(env: &[(&str, &str)]) -> Audit {
    let registry = Registry::start();
    let notarium = Notarium::start_with(&[&registry.host], env);
    let digest = push_image(&registry, "audit/app", "v1", "audit");
    let (status, body) = notarium.sign(&format!("{}/audit/app@{digest}", registry.host), "dev-ecdsa");
    assert_eq!(status, 201, "{body}");
    let dir = tempfile::tempdir().unwrap();
    let key = notarium.public_key_file("dev-log", dir.path());
    Audit { registry, notarium, dir, key }
}

impl Audit {
    fn export(&self, name: &str, extra: &[&str]) -> (PathBuf, Output) {
        let file = self.dir.path().join(name);
        let mut args = vec!["log", "export", "--server", &self.notarium.url];
        args.extend_from_slice(extra);
        args.push(file.to_str().unwrap());
        (file.clone(), cli(&args))
    }

    fn verify(&self, file: &Path, extra: &[&str]) -> Output {
        let mut args = vec!["log", "verify", file.to_str().unwrap(), "--log-key", self.key.to_str().unwrap()];
        args.extend_from_slice(extra);
        cli(&args)
    }

    fn save_checkpoint(&self) -> PathBuf {
        let (status, note) = self.notarium.get_text("/v1/log/checkpoint");
        assert_eq!(status, 200);
        let path = self.dir.path().join("saved-checkpoint.txt");
        std::fs::write(&path, note).unwrap();
        path
    }
}

#[test]
fn log_verify_says_what_it_proved_and_that_consistency_was_not_checked_without_since() {
    let audit = signed_log(&[]);
    let saved = audit.save_checkpoint();
    let digest = push_image(&audit.registry, "audit/app", "v2", "later");
    assert_eq!(audit.notarium.sign(&format!("{}/audit/app@{digest}", audit.registry.host), "dev-ecdsa").0, 201);
    let (file, out) = audit.export("all.jsonl", &["--since", saved.to_str().unwrap(), "-f"]);
    assert!(out.status.success(), "{:?}", text(&out));

    let (stdout, stderr) = text(&audit.verify(&file, &[]));
    assert!(stdout.contains("verified 5 entries (entries 0 to 4)"), "{stdout}{stderr}");
    assert!(stdout.contains("signature valid for the given log key"), "{stdout}");
    assert!(stdout.contains("consistency: NOT checked") && stdout.contains("--since"), "{stdout}");

    let (stdout, _) = text(&audit.verify(&file, &["--since", saved.to_str().unwrap()]));
    assert!(
        stdout.contains("consistency: checked: the log at size 5 extends the saved checkpoint at size 4"),
        "{stdout}"
    );

    let out = audit.verify(&file, &["-o", "json"]);
    let unchecked: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(unchecked["consistency"], serde_json::json!({"checked": false}), "{unchecked}");
    assert_eq!((&unchecked["entries"], &unchecked["checkpoint_signature"]), (&5.into(), &"valid".into()));
    let out = audit.verify(&file, &["--output", "json", "--since", saved.to_str().unwrap()]);
    let checked: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(checked["consistency"], serde_json::json!({"checked": true, "from_size": 4, "to_size": 5}));
}

#[test]
fn dash_o_is_the_format_and_the_old_export_dash_o_file_still_works_with_a_deprecation_line() {
    let audit = signed_log(&[]);
    let (file, out) = audit.export("new.jsonl", &["-o", "json", "--file"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success() && !stderr.contains("deprecated"), "{stdout}{stderr}");
    let summary: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!((&summary["entries"], &summary["file"]), (&4.into(), &file.to_str().unwrap().into()));

    let (old, out) = audit.export("old.jsonl", &["-o"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success() && stdout.contains("exported 4 entries"), "{stdout}{stderr}");
    assert!(stderr.contains("deprecated") && stderr.contains("--file"), "{stderr}");
    assert_eq!(std::fs::read_to_string(old).unwrap().lines().count(), 5);
}

#[test]
fn dates_may_be_plain_days_and_a_bad_date_is_a_usage_error_naming_the_forms() {
    let audit = signed_log(&[]);
    let (file, out) = audit.export("days.jsonl", &["--from", "2000-01-01", "--to", "2999-12-31", "-f"]);
    assert!(out.status.success() && text(&out).0.contains("exported 4 entries"), "{:?}", text(&out));
    assert!(audit.verify(&file, &[]).status.success());
    let (_, out) = audit.export("none.jsonl", &["--to", "2000-01-01", "-f"]);
    assert!(text(&out).0.contains("exported 0 entries"), "{:?}", text(&out));

    for bad in ["2026-13-01", "01/11/2026", "2026-11-01 10:00"] {
        let (_, out) = audit.export("bad.jsonl", &["--from", bad, "-f"]);
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{bad}: {stderr}");
        assert!(stderr.contains("--from") && stderr.contains("RFC 3339") && stderr.contains("YYYY-MM-DD"), "{stderr}");
    }
}

#[test]
fn csv_rows_name_the_policy_and_its_digest_and_the_tag_a_signature_was_written_under() {
    let policies = tempfile::tempdir().unwrap();
    let policy = "default: deny\npolicies:\n  - name: audited\n    images: [\"example.test/app\"]\n    authorities:\n      - key: dev-ecdsa\n";
    std::fs::write(policies.path().join("audited.yaml"), policy).unwrap();
    let audit = signed_log(&[("NOTARIUM_POLICIES_DIR", policies.path().to_str().unwrap())]);
    let (file, out) = audit.export("all.csv", &["--format", "csv", "-f"]);
    assert!(out.status.success(), "{:?}", text(&out));
    let csv = std::fs::read_to_string(file).unwrap();
    let rows: Vec<Vec<&str>> = csv.lines().map(|l| l.split(',').collect()).collect();
    let column = |name: &str| rows[0].iter().position(|c| *c == name).unwrap();
    let (key_version, tag, name, digest) =
        (column("key_version"), column("tag"), column("policy"), column("policy_digest"));

    let loaded = rows.iter().find(|r| r[2] == "policy-loaded").expect(&csv);
    let expected = support::sha256_digest(policy.as_bytes());
    assert_eq!((loaded[key_version], loaded[name], loaded[digest]), ("", "audited", expected.as_str()), "{csv}");

    let signed = rows.iter().find(|r| r[2] == "sign").expect(&csv);
    let image_digest = signed[7];
    let expected_tag = format!("{}.sig", image_digest.replace(':', "-"));
    assert_eq!((signed[tag], signed[name], signed[digest]), (expected_tag.as_str(), "", ""), "{csv}");
}
