//! The Sigstore client conformance suite's offline bundle-verify cases, every one of them, through the built
//! `notarium verify-blob` binary as the suite's CLI protocol drives a client
//! (tests/fixtures/third-party/sigstore-conformance/README.md): a case passes when a folder whose name ends
//! in `_fail` exits 1 and any other exits 0. Nothing is skipped.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const DEFAULT_IDENTITY: &str = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main";
const DEFAULT_ISSUER: &str = "https://token.actions.githubusercontent.com";

fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/third-party/sigstore-conformance/bundle-verify")
}

fn cases() -> Vec<PathBuf> {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(cases_dir())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_dir())
        .collect();
    cases.sort();
    cases
}

fn read_trimmed(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok().map(|text| text.trim().to_owned())
}

/// `notarium verify-bundle` with the arguments the suite gives for this case, the artifact as a path.
fn run_case(case: &Path, artifact_argument: Option<String>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_notarium"));
    command.arg("verify-bundle").arg("--bundle").arg(case.join("bundle.sigstore.json"));
    if case.join("key.pub").exists() {
        command.arg("--key").arg(case.join("key.pub"));
    } else {
        let identity = read_trimmed(&case.join("identity")).unwrap_or_else(|| DEFAULT_IDENTITY.to_owned());
        let issuer = read_trimmed(&case.join("issuer")).unwrap_or_else(|| DEFAULT_ISSUER.to_owned());
        command.args(["--certificate-identity", &identity, "--certificate-oidc-issuer", &issuer]);
    }
    if case.join("trusted_root.json").exists() {
        command.arg("--trusted-root").arg(case.join("trusted_root.json"));
    }
    command.arg(artifact_argument.unwrap_or_else(|| artifact(case).display().to_string()));
    command.output().unwrap()
}

fn artifact(case: &Path) -> PathBuf {
    let own = case.join("artifact");
    if own.exists() { own } else { cases_dir().join("a.txt") }
}

fn name(case: &Path) -> String {
    case.file_name().unwrap().to_string_lossy().into_owned()
}

/// What is wrong with this case's outcome, if anything.
fn judge(case: &Path, output: &Output) -> Option<String> {
    let stderr = String::from_utf8_lossy(&output.stderr);
    let expect_failure = name(case).ends_with("_fail");
    match (expect_failure, output.status.code()) {
        (false, Some(0)) => None,
        (true, Some(1)) if stderr.trim().lines().count() == 1 => None,
        (true, Some(1)) => Some(format!("{}: failed without exactly one reason line: {stderr}", name(case))),
        (_, code) => Some(format!("{}: exit {code:?}: {}", name(case), stderr.trim())),
    }
}

#[test]
fn every_bundle_verify_case_has_its_expected_outcome() {
    let cases = cases();
    assert!(cases.len() >= 70, "the suite has 70 cases, found {}", cases.len());
    let failures: Vec<String> = cases.iter().filter_map(|case| judge(case, &run_case(case, None))).collect();
    assert!(failures.is_empty(), "{} of {} cases wrong:\n{}", failures.len(), cases.len(), failures.join("\n"));
}

#[test]
fn a_message_signature_verifies_over_the_artifact_digest_too() {
    let case = cases_dir().join("happy-path-v0.3");
    let digest = sha256_hex(&std::fs::read(artifact(&case)).unwrap());
    let output = run_case(&case, Some(format!("sha256:{digest}")));
    assert_eq!(judge(&case, &output), None);
    let wrong = run_case(&case, Some(format!("sha256:{}", "0".repeat(64))));
    assert_eq!(wrong.status.code(), Some(1));
}

#[test]
fn an_in_toto_bundle_verifies_for_a_subject_only() {
    let case = cases_dir().join("happy-path-intoto-in-dsse-v3");
    let not_a_subject = cases_dir().join("README.md");
    let output = run_case(&case, Some(not_a_subject.display().to_string()));
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("not a subject"));
}

#[test]
fn another_identity_or_issuer_is_refused() {
    let case = cases_dir().join("happy-path-v0.3");
    for (identity, issuer) in
        [("https://github.com/someone/else", DEFAULT_ISSUER), (DEFAULT_IDENTITY, "https://accounts.google.com")]
    {
        let output = Command::new(env!("CARGO_BIN_EXE_notarium"))
            .args(["verify-blob", "--bundle"])
            .arg(case.join("bundle.sigstore.json"))
            .args(["--certificate-identity", identity, "--certificate-oidc-issuer", issuer])
            .arg(artifact(&case))
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(1), "{identity} {issuer}");
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// `notarium verify-blob` of `bundle` with the managed-key case's key, trusted root and artifact.
fn verify_with_managed_key(bundle: &Path, extra: &[&str]) -> Output {
    let case = cases_dir().join("managed-key-and-trusted-root");
    Command::new(env!("CARGO_BIN_EXE_notarium"))
        .arg("verify-blob")
        .args(extra)
        .arg("--bundle")
        .arg(bundle)
        .arg("--key")
        .arg(case.join("key.pub"))
        .arg("--trusted-root")
        .arg(case.join("trusted_root.json"))
        .arg(artifact(&case))
        .output()
        .unwrap()
}

#[test]
fn a_verified_bundle_is_a_result_in_json_too() {
    let bundle = cases_dir().join("managed-key-and-trusted-root/bundle.sigstore.json");
    let output = verify_with_managed_key(&bundle, &["--output", "json"]);
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    let result: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(result["verified"], true);
    assert_eq!(result["log_indexes"][0], 51_753_644);
}

#[test]
fn a_key_signed_bundle_without_a_log_entry_or_timestamp_is_refused() {
    let original = cases_dir().join("managed-key-and-trusted-root/bundle.sigstore.json");
    let mut bundle: serde_json::Value = serde_json::from_slice(&std::fs::read(original).unwrap()).unwrap();
    bundle["verificationMaterial"].as_object_mut().unwrap().remove("tlogEntries");
    let dir = std::env::temp_dir().join(format!("notarium-verify-blob-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bundle.sigstore.json");
    std::fs::write(&path, bundle.to_string()).unwrap();
    let output = verify_with_managed_key(&path, &[]);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("neither a transparency-log entry nor a timestamp"));
}
