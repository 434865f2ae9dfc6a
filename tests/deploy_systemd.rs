//! deploy/systemd: the unit passes `systemd-analyze verify` with no warning and keeps its offline exposure
//! score low; the example notarium.toml it ships with serves and signs with its keys read from the
//! credentials folder, as the unit provides them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::{Notarium, ROOT, Registry, push_image};

const INSTALLED_BINARY: &str = "/usr/local/bin/notarium";
const CREDENTIALS: &str = "/run/credentials/notarium.service";
/// `systemd-analyze security --offline=true` scored the unit 1.1 (systemd 252); this leaves room for a
/// newer systemd's extra checks, not for dropping a protection.
const MAX_EXPOSURE: f64 = 1.5;

fn deploy_file(name: &str) -> String {
    std::fs::read_to_string(Path::new(ROOT).join("deploy/systemd").join(name)).unwrap()
}

/// The unit with ExecStart pointing at the binary under test (verify checks it is executable), plus
/// `extra` lines in [Service], written as notarium.service in `dir`.
fn unit_copy(dir: &Path, extra: &[&str]) -> PathBuf {
    let unit = deploy_file("notarium.service");
    assert!(unit.contains(&format!("\nExecStart={INSTALLED_BINARY} serve ")), "{unit}");
    let unit = unit
        .replace(&format!("ExecStart={INSTALLED_BINARY}"), &format!("ExecStart={}", env!("CARGO_BIN_EXE_notarium")));
    let unit = unit.replace(
        "\n[Service]\n",
        &format!("\n[Service]\n{}", extra.iter().map(|l| format!("{l}\n")).collect::<String>()),
    );
    let path = dir.join("notarium.service");
    std::fs::write(&path, unit).unwrap();
    path
}

fn analyze(args: &[&str], unit: &Path) -> Output {
    Command::new("systemd-analyze").args(args).arg(unit).output().expect("systemd-analyze runs (apt package systemd)")
}

#[test]
fn the_unit_passes_systemd_analyze_verify_without_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let unit = deploy_file("notarium.service");
    for hardening in [
        "DynamicUser=yes",
        "StateDirectory=notarium",
        "ConfigurationDirectory=notarium",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "CapabilityBoundingSet=\n",
        "UMask=0077",
        "Restart=on-failure",
    ] {
        assert!(unit.contains(&format!("\n{hardening}")), "the unit lacks {hardening:?}");
    }
    // The credentials its header tells to add, as a drop-in would.
    let credentials: Vec<&str> =
        unit.lines().filter_map(|l| l.strip_prefix("#   ")).filter(|l| l.starts_with("LoadCredential=")).collect();
    assert_eq!(credentials.len(), 4, "{unit}");
    for extra in [&[][..], &credentials] {
        let out = analyze(&["verify"], &unit_copy(dir.path(), extra));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success() && stderr.trim().is_empty(), "systemd-analyze verify: {stderr}");
    }

    // The check is live: a misspelt value and key are warnings.
    let out = analyze(&["verify"], &unit_copy(dir.path(), &["ProtectSystem=strictt", "ProtectSistem=yes"]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("strictt") && stderr.contains("ProtectSistem"), "{stderr}");
}

#[test]
fn the_unit_exposure_score_stays_low() {
    let dir = tempfile::tempdir().unwrap();
    let out = analyze(&["security", "--offline=true", "--no-pager"], &unit_copy(dir.path(), &[]));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let score = stdout
        .lines()
        .find_map(|l| l.split_once("Overall exposure level for notarium.service: "))
        .and_then(|(_, rest)| rest.split_whitespace().next()?.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no exposure score in: {stdout}{}", String::from_utf8_lossy(&out.stderr)));
    assert!(score <= MAX_EXPOSURE, "exposure {score} > {MAX_EXPOSURE}:\n{stdout}");
}

#[test]
fn the_example_configuration_signs_with_its_keys_read_from_the_credentials_folder() {
    let credentials = tempfile::tempdir().unwrap();
    for (credential, example) in [("signing-key.pem", "dev-ecdsa.pem"), ("log-key.pem", "dev-log.pem")] {
        let target = credentials.path().join(credential);
        std::fs::copy(Path::new(ROOT).join("keys.example").join(example), &target).unwrap();
        std::fs::set_permissions(&target, std::os::unix::fs::PermissionsExt::from_mode(0o400)).unwrap();
    }
    let config = deploy_file("notarium.toml");
    assert!(config.contains(CREDENTIALS), "{config}");
    let config = config.replace(CREDENTIALS, credentials.path().to_str().unwrap());

    let registry = Registry::start();
    let notarium = Notarium::start_with_config(&config, &[&registry.host], &[]);
    let digest = push_image(&registry, "deploy/app", "v1", "systemd example");
    let (status, signed) = notarium.sign(&format!("{}/deploy/app@{digest}", registry.host), "signing");
    assert_eq!(status, 201, "{signed}\n{}", notarium.log());
    assert!(signed["log"]["checkpoint"].is_string(), "the log key signs checkpoints: {signed}");
    assert!(!notarium.log().contains("open to group or others"), "no permission warning: {}", notarium.log());
}
