//! One name per repository, against a real registry: another spelling of a registry host is governed by the
//! policy written for the canonical one (never by `default`), the register shows the canonical name, the
//! server's plain-HTTP list is canonicalized, and `notarium verify` takes cosign's `--key` and the server's
//! `NOTARIUM_INSECURE_REGISTRIES`.

use crate::support;

use std::process::{Command, Output};

use serde_json::{Value, json};
use support::{Notarium, Registry, push_image};

/// `localhost:PORT`: the test registry listens on 127.0.0.1, which `localhost` resolves to.
fn localhost(registry: &Registry) -> String {
    format!("localhost:{}", registry.host.rsplit_once(':').unwrap().1)
}

fn policies_for(host: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "default: allow\npolicies:\n  - name: team-b\n    images: [\"{host}/team-b/*\"]\n    authorities:\n      \
         - key: dev-ed25519\n"
    );
    std::fs::write(dir.path().join("team-b.yaml"), text).unwrap();
    dir
}

fn verify(notarium: &Notarium, image: &str) -> (u16, Value) {
    let (status, _, answer) = notarium.post("/v1/verify", json!({"image": image}).to_string());
    (status, answer)
}

fn verify_entries(notarium: &Notarium) -> Vec<Value> {
    let (status, page) = notarium.get_text("/v1/log/entries?start=0&end=100");
    assert_eq!(status, 200, "{page}");
    let page: Value = serde_json::from_str(&page).unwrap();
    let entries = page["entries"].as_array().unwrap().iter().map(|e| e["entry"].clone());
    entries.filter(|e| e["kind"] == "verify").collect()
}

#[test]
fn another_spelling_of_the_host_is_governed_by_the_same_policy() {
    let registry = Registry::start();
    let host = localhost(&registry);
    let shouting = host.replace("localhost", "LocalHost");
    let policies = policies_for(&host);
    // Only the uppercase spelling is on the plain-HTTP list: reaching `localhost:PORT` proves it was canonicalized.
    let notarium = Notarium::start_with(&[&shouting], &[("NOTARIUM_POLICIES_DIR", policies.path().to_str().unwrap())]);
    let digest = push_image(&registry, "team-b/app", "v1", "team-b app");
    let (status, signed) = notarium.sign(&format!("{shouting}/team-b/app@{digest}"), "dev-ecdsa");
    assert_eq!(status, 201, "{signed}");

    for spelling in [&shouting, &host, &host.to_uppercase()] {
        let (status, answer) = verify(&notarium, &format!("{spelling}/team-b/app@{digest}"));
        assert_eq!(status, 200, "{spelling}: {answer}");
        assert_eq!((&answer["allowed"], &answer["policy"]), (&json!(false), &json!("team-b")), "{spelling}: {answer}");
        assert!(answer["reasons"].to_string().contains("no valid signature by dev-ed25519"), "{answer}");
    }
    let entries = verify_entries(&notarium);
    assert_eq!(entries.len(), 3, "{entries:?}");
    for entry in &entries {
        assert_eq!(entry["subject"]["registry"], host.as_str(), "{entry}");
        assert_eq!(entry["subject"]["repository"], "team-b/app", "{entry}");
        assert_eq!(entry["details"]["policy"], "team-b", "{entry}");
    }

    let port = host.rsplit_once(':').unwrap().1;
    for ambiguous in [format!("localhost:0{port}"), format!("localhost.:{port}"), format!("127.1:{port}")] {
        let (status, answer) = verify(&notarium, &format!("{ambiguous}/team-b/app@{digest}"));
        let problem = json!("https://notarium.dev/problems/malformed-reference");
        assert_eq!((status, &answer["type"]), (400, &problem), "{answer}");
        assert!(answer["detail"].as_str().unwrap().contains(&ambiguous), "{answer}");
    }
}

fn notarium_cli(args: &[&str], insecure_env: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_notarium"));
    command.args(args).env_remove("NOTARIUM_CONFIG").env_remove("NOTARIUM_INSECURE_REGISTRIES");
    if let Some(list) = insecure_env {
        command.env("NOTARIUM_INSECURE_REGISTRIES", list);
    }
    command.output().unwrap()
}

#[test]
fn the_cli_verify_takes_cosigns_key_flag_and_the_servers_plain_http_list() {
    let registry = Registry::start();
    let host = localhost(&registry);
    let notarium = Notarium::start(&[&host]);
    let digest = push_image(&registry, "team/app", "v1", "cli app");
    let image = format!("{host}/team/app@{digest}");
    assert_eq!(notarium.sign(&image, "dev-ecdsa").0, 201);
    let dir = tempfile::tempdir().unwrap();
    let key = notarium.public_key_file("dev-ecdsa", dir.path());
    let key = key.to_str().unwrap();

    let refused = notarium_cli(&["verify", &image, "--key", key], None);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("--insecure-registry") && stderr.contains("NOTARIUM_INSECURE_REGISTRIES"), "{stderr}");
    assert!(!stderr.contains("notarium.toml"), "{stderr}");

    let listed = format!("other.example:5000, {}", host.to_uppercase());
    for (args, env) in [
        (vec!["verify", &image, "--key", key], Some(listed.as_str())),
        (vec!["verify", &image, "--public-key", key, "--insecure-registry", &host.replace("local", "Local")], None),
    ] {
        let out = notarium_cli(&[&args[..], &["--output", "json"]].concat(), env);
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(answer["verified"], true, "{answer}");
    }

    let malformed = notarium_cli(&["verify", &image, "--key", key], Some("localhost:05000"));
    let stderr = String::from_utf8_lossy(&malformed.stderr);
    assert_eq!(malformed.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("NOTARIUM_INSECURE_REGISTRIES") && stderr.contains("localhost:05000"), "{stderr}");
}
