//! `notarium --version` names the crate version and the commit the binary was built from (build.rs).

use std::process::Command;

use crate::support::ROOT;

#[test]
fn version_names_the_crate_version_and_the_head_commit() {
    let out = Command::new(env!("CARGO_BIN_EXE_notarium")).arg("--version").output().unwrap();
    assert!(out.status.success());
    let version = String::from_utf8(out.stdout).unwrap();
    let head = Command::new("git").args(["rev-parse", "--short=12", "HEAD"]).current_dir(ROOT).output().unwrap();
    let commit = match std::env::var("NOTARIUM_BUILD_COMMIT") {
        Ok(commit) if !commit.trim().is_empty() => commit.trim().to_owned(),
        _ if head.status.success() => String::from_utf8(head.stdout).unwrap().trim().to_owned(),
        _ => "unknown".to_owned(),
    };
    let expected = format!("notarium {} ({commit}", env!("CARGO_PKG_VERSION"));
    assert!(version.starts_with(&expected), "{version:?} does not start with {expected:?}");
    assert_eq!(version.lines().count(), 1, "{version:?}");
}
