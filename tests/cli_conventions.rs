//! The CLI's conventions, run as the binary: `--output json` prints one JSON document on stdout for every
//! command that prints a result, and exit codes follow `notarium --help` (0 ok, 1 refused, 2 usage,
//! 3 unavailable).

use crate::support;

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;
use support::{Notarium, ROOT, Registry};

fn cli(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_notarium")).args(args).env_remove("NOTARIUM_CONFIG").output().unwrap()
}

/// Runs with `--output json`; returns the exit code and stdout parsed as one JSON document.
fn json(args: &[&str]) -> (i32, Value) {
    let out = cli(&[args, &["--output", "json"]].concat());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let parsed = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "{args:?}: stdout is not one JSON document ({e}): {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap(), parsed)
}

fn code(args: &[&str]) -> i32 {
    cli(args).status.code().unwrap()
}

struct Setup {
    registry: Registry,
    notarium: Notarium,
    image: String,
    dir: tempfile::TempDir,
}

fn setup() -> Setup {
    let (registry, notarium, digest) = support::registry_notarium_and_image("cli/app", "v1", "conventions");
    let image = format!("{}/cli/app@{digest}", registry.host);
    Setup { registry, notarium, image, dir: tempfile::tempdir().unwrap() }
}

fn path(dir: &Path, name: &str) -> String {
    dir.join(name).to_str().unwrap().to_owned()
}

#[test]
fn every_command_that_prints_a_result_prints_json_with_output_json() {
    let s = setup();
    let server = s.notarium.url.as_str();
    let (exit, signed) = json(&["sign", &s.image, "--key", "dev-ecdsa", "--server", server]);
    assert_eq!((exit, signed["signature"]["created"].as_bool()), (0, Some(true)), "{signed}");
    assert!(s.image.ends_with(signed["digest"].as_str().unwrap()));

    let predicate = path(s.dir.path(), "sbom.json");
    std::fs::write(&predicate, r#"{"bomFormat": "CycloneDX"}"#).unwrap();
    let attest = ["attest", &s.image, "--key", "dev-ed25519", "--type", "https://cyclonedx.org/bom"];
    let (exit, attested) = json(&[&attest[..], &["--predicate", &predicate, "--server", server]].concat());
    assert_eq!((exit, attested["predicate_type"].as_str()), (0, Some("https://cyclonedx.org/bom")), "{attested}");

    let (exit, keys) = json(&["keys", "list", "--server", server]);
    assert_eq!(exit, 0);
    assert!(keys["keys"].as_array().unwrap().iter().any(|k| k["id"] == "dev-ecdsa"), "{keys}");
    let (exit, key) = json(&["keys", "public", "dev-ecdsa", "--server", server]);
    assert_eq!(exit, 0);
    let public_key = path(s.dir.path(), "dev-ecdsa.pub");
    std::fs::write(&public_key, key["public_key_pem"].as_str().unwrap()).unwrap();

    let verify = ["verify", &s.image, "--insecure-registry", &s.registry.host];
    let (exit, verified) = json(&[&verify[..], &["--public-key", &public_key]].concat());
    assert_eq!((exit, verified["verified"].as_bool()), (0, Some(true)), "{verified}");

    let export = path(s.dir.path(), "log.jsonl");
    let (exit, exported) = json(&["log", "export", "-f", &export, "--server", server]);
    assert_eq!((exit, exported["format"].as_str()), (0, Some("jsonl")), "{exported}");
    let log_key = path(s.dir.path(), "log.pub");
    std::fs::write(&log_key, s.notarium.get_text("/v1/keys/dev-log/public.pem").1).unwrap();
    let (exit, checked) = json(&["log", "verify", &export, "--log-key", &log_key]);
    assert_eq!((exit, &checked["entries"]), (0, &exported["entries"]), "{checked}");

    let (exit, policies) = json(&["policy", "check", &format!("{ROOT}/policies")]);
    assert_eq!(exit, 0);
    assert!(policies["policies"].as_array().unwrap().iter().any(|p| p["name"] == "production"), "{policies}");
}

#[test]
fn a_denial_is_a_result_with_exit_code_one() {
    let s = setup();
    let wrong_key = path(s.dir.path(), "dev-ed25519.pub");
    std::fs::write(&wrong_key, s.notarium.get_text("/v1/keys/dev-ed25519/public.pem").1).unwrap();
    let verify = ["verify", &s.image, "--insecure-registry", &s.registry.host, "--public-key", &wrong_key];
    let (exit, verified) = json(&verify);
    assert_eq!((exit, verified["verified"].as_bool()), (1, Some(false)), "{verified}");
}

#[test]
fn exit_codes_say_refused_usage_or_unavailable() {
    let s = setup();
    let server = s.notarium.url.as_str();
    assert_eq!(code(&["sign", &s.image, "--key", "no-such-key", "--server", server]), 1, "a 4xx problem");
    assert_eq!(code(&["sign", &s.image, "--server", server]), 2, "--key is missing");
    assert_eq!(code(&["sign", &s.image, "--key", "dev-ecdsa", "-a", "not-a-pair", "--server", server]), 2);
    assert_eq!(code(&["keys", "list", "--output", "yaml", "--server", server]), 2);
    assert_eq!(code(&["keys", "list", "--server", "http://127.0.0.1:9"]), 3, "nothing listens");
    let unlisted = s.image.replace(&s.registry.host, "127.0.0.1:9");
    assert_eq!(code(&["sign", &unlisted, "--key", "dev-ecdsa", "--server", server]), 1, "a 403: not on any list");
    assert_eq!(code(&["policy", "check", &format!("{ROOT}/README.md")]), 1, "not a policy folder");

    let help = String::from_utf8_lossy(&cli(&["--help"]).stdout).into_owned();
    for documented in ["--output", "Exit codes:", "1  refused", "2  usage", "3  unavailable"] {
        assert!(help.contains(documented), "notarium --help lacks {documented:?}:\n{help}");
    }
    drop(s.registry);
    assert_eq!(code(&["sign", &s.image, "--key", "dev-ecdsa", "--server", server]), 3, "a 502 from the server");
}
