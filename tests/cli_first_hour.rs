//! The first hour with the CLI, run as the binary: `notarium verify --policy` asks for the configuration a
//! policy needs instead of denying, and a config file's relative paths mean its own folder.

use crate::support;

use std::path::Path;
use std::process::{Command, Output};

use support::{Notarium, ROOT, Registry};

fn notarium(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_notarium"))
        .args(args)
        .current_dir(cwd)
        .env_remove("NOTARIUM_CONFIG")
        .env_remove("NOTARIUM_TOKEN")
        .output()
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// An image signed with `dev-ecdsa` by a running server.
struct Signed {
    registry: Registry,
    _notarium: Notarium,
    image: String,
    dir: tempfile::TempDir,
}

fn signed() -> Signed {
    let (registry, notarium, digest) = support::registry_notarium_and_image("first/app", "v1", "first-hour");
    let image = format!("{}/first/app@{digest}", registry.host);
    let (status, answer) = notarium.sign(&image, "dev-ecdsa");
    assert_eq!(status, 201, "{answer}");
    Signed { registry, _notarium: notarium, image, dir: tempfile::tempdir().unwrap() }
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

fn key_policy(s: &Signed) -> String {
    let text = format!(
        "policies:\n  - name: signed\n    images: [\"{}/first/*\"]\n    authorities:\n      - key: dev-ecdsa\n",
        s.registry.host
    );
    write(s.dir.path(), "policy.yaml", &text)
}

fn verify_policy(s: &Signed, policy: &str, config: Option<&str>, cwd: &Path) -> Output {
    let mut args = vec!["verify", &s.image, "--policy", policy, "--insecure-registry", &s.registry.host];
    args.extend(config.iter().flat_map(|c| ["--config", *c]));
    notarium(&args, cwd)
}

#[test]
fn a_policy_naming_configured_keys_without_config_is_a_usage_error_naming_them() {
    let s = signed();
    let policy = key_policy(&s);
    let out = verify_policy(&s, &policy, None, Path::new(ROOT));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("--config") && err.contains("\"dev-ecdsa\""), "{err}");

    let config = write(s.dir.path(), "other.toml", "[[keys]]\nid = \"other\"\nbackend = \"file\"\npath = \"x.pem\"\n");
    std::fs::copy(Path::new(ROOT).join("keys.example/dev-ed25519.pem"), s.dir.path().join("x.pem")).unwrap();
    let out = verify_policy(&s, &policy, Some(&config), Path::new(ROOT));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("\"dev-ecdsa\") that") && stderr(&out).contains("other.toml"), "{}", stderr(&out));
}

#[test]
fn with_config_the_policy_verifies_without_reaching_other_key_backends() {
    let s = signed();
    let policy = key_policy(&s);
    let pem = Path::new(ROOT).join("keys.example/dev-ecdsa.pem");
    // A Vault key nobody answers for: verify never asks it, so it never matters.
    let config = format!(
        "[[keys]]\nid = \"dev-ecdsa\"\nbackend = \"file\"\npath = {:?}\n\n[[keys]]\nid = \"vaulted\"\nbackend = \
         \"vault\"\naddress = \"http://127.0.0.1:1\"\nkey = \"k\"\nauth = \"token\"\ntoken_env = \"NO_SUCH_TOKEN\"\n",
        pem.to_str().unwrap()
    );
    let config = write(s.dir.path(), "notarium.toml", &config);
    let out = verify_policy(&s, &policy, Some(&config), Path::new(ROOT));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("allowed"), "{out:?}");
}

#[test]
fn relative_paths_in_a_config_file_mean_its_folder_not_the_working_directory() {
    let s = signed();
    let policy = key_policy(&s);
    let config_dir = s.dir.path().join("etc");
    std::fs::create_dir(&config_dir).unwrap();
    std::fs::copy(Path::new(ROOT).join("keys.example/dev-ecdsa.pem"), config_dir.join("signing.pem")).unwrap();
    let config = write(
        &config_dir,
        "notarium.toml",
        "[[keys]]\nid = \"dev-ecdsa\"\nbackend = \"file\"\npath = \"signing.pem\"\n",
    );
    let elsewhere = tempfile::tempdir().unwrap();
    let out = verify_policy(&s, &policy, Some(&config), elsewhere.path());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn every_client_command_names_its_server_and_token_in_its_help() {
    let commands: [&[&str]; 5] = [&["sign"], &["attest"], &["keys", "list"], &["keys", "public"], &["log", "export"]];
    for command in commands {
        let out = notarium(&[command, &["--help"]].concat(), Path::new(ROOT));
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(help.contains("--server") && help.contains("NOTARIUM_SERVER"), "{command:?}: {help}");
        assert!(help.contains("NOTARIUM_TOKEN"), "{command:?}: {help}");
    }
}

#[test]
fn a_401_says_to_pass_a_token_in_notarium_token() {
    let server = Notarium::start_with_config("[auth]\nrequired = true\n", &[], &[]);
    let sign = ["sign", "localhost:5000/app:v1", "--key", "dev-ecdsa", "--server", server.url.as_str()];
    let out = notarium(&sign, Path::new(ROOT));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("pass an API token or CI ID token in NOTARIUM_TOKEN"), "{}", stderr(&out));

    let out =
        Command::new(env!("CARGO_BIN_EXE_notarium")).args(sign).env("NOTARIUM_TOKEN", "ntk_bogus").output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("the token in NOTARIUM_TOKEN was refused"), "{}", stderr(&out));
}

fn token_create(server: &Notarium, args: &[&str], user: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_notarium"));
    command.args(["token", "create", "--output", "json"]).args(args).current_dir(ROOT);
    command.env("NOTARIUM_DATABASE_URL", server.database_url()).env_remove("NOTARIUM_CONFIG");
    match user {
        Some(user) => command.env("USER", user),
        None => command.env_remove("USER"),
    };
    command.output().unwrap()
}

#[test]
fn token_create_refuses_keys_the_configuration_lacks_unless_forced() {
    let server = Notarium::start(&[]);
    let signer = ["--role", "signer", "--repos", "reg.example/*", "--keys", "dev-ecdsa,prod"];
    let out = token_create(&server, &signer, Some("alice"));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--keys prod not configured") && stderr(&out).contains("--force"),
        "{}",
        stderr(&out)
    );

    let out = token_create(&server, &[&signer[..], &["--force"]].concat(), Some("alice"));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("warning: --keys prod not configured"), "{}", stderr(&out));
}

#[test]
fn without_user_the_cli_actor_is_the_uid_s_user_name() {
    let server = Notarium::start(&[]);
    let out = token_create(&server, &["--role", "auditor"], None);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let made: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let token = made["token"].as_str().unwrap();
    let (status, body) = support::call(&server, "GET", "/v1/log/entries?start=0&end=100", token, None);
    assert_eq!(status, 200, "{body}");
    let whoami = Command::new("id").arg("-un").output().unwrap();
    let expected = format!("cli:{}", String::from_utf8_lossy(&whoami.stdout).trim());
    let entries = body["entries"].as_array().unwrap();
    let created = entries.iter().find(|e| e["entry"]["kind"] == "token-created").expect("token-created entry");
    assert_eq!(created["entry"]["actor"]["name"], expected.as_str(), "{body}");
}

#[test]
fn logs_piped_anywhere_but_a_terminal_carry_no_colour_codes() {
    let server = Notarium::start(&[]);
    let _ = support::client().get(format!("{}/healthz", server.url)).send().unwrap();
    let log = server.log();
    assert!(log.contains("INFO") || log.contains("info"), "{log}");
    assert!(!log.contains('\u{1b}'), "ANSI escape in a piped log: {log:?}");
}
