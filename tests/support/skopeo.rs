//! skopeo 1.18 (Debian 13 build under `.tools/`): copying images without a signature policy, pulling under
//! a `sigstoreSigned` policy, and signing with a sigstore key of its own.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{Registry, run, tool};

/// Pulls `image` with skopeo into a temporary directory (no signature policy).
pub(crate) fn skopeo_pull(image: &str) {
    let dir = tempfile::tempdir().unwrap();
    skopeo_copy_unverified(&format!("docker://{image}"), &format!("dir:{}", dir.path().join("out").display()), false);
}

/// `skopeo copy SOURCE DESTINATION` over plain HTTP with a policy that accepts anything.
pub(super) fn skopeo_copy_unverified(source: &str, destination: &str, all: bool) {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("accept.json");
    std::fs::write(&policy, br#"{"default":[{"type":"insecureAcceptAnything"}]}"#).unwrap();
    let mut args = vec!["copy", "--src-tls-verify=false", "--dest-tls-verify=false"];
    args.extend(all.then_some("--all"));
    let out = run(Command::new(tool("skopeo")).arg("--policy").arg(&policy).args(args).args([source, destination]));
    assert!(out.status.success(), "skopeo copy {source} {destination}: {}", String::from_utf8_lossy(&out.stderr));
}

/// skopeo 1.18 pulling `image` under a `sigstoreSigned` policy trusting `public_key`. True if accepted.
pub(crate) fn skopeo_accepts(
    registry: &Registry,
    image: &str,
    public_key: &Path,
    signed_identity: &str,
) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let policy = serde_json::json!({
        "default": [{"type": "reject"}],
        "transports": {"docker": {registry.host.clone(): [{
            "type": "sigstoreSigned",
            "keyPath": public_key,
            "signedIdentity": {"type": signed_identity},
        }]}},
    });
    std::fs::write(dir.path().join("policy.json"), policy.to_string()).unwrap();
    let registries_d = dir.path().join("registries.d");
    std::fs::create_dir(&registries_d).unwrap();
    std::fs::write(registries_d.join("default.yaml"), "default-docker:\n  use-sigstore-attachments: true\n").unwrap();
    let out = run(Command::new(tool("skopeo"))
        .arg("--policy")
        .arg(dir.path().join("policy.json"))
        .arg("--registries.d")
        .arg(&registries_d)
        .args(["copy", "--src-tls-verify=false"])
        .arg(format!("docker://{image}"))
        .arg(format!("dir:{}", dir.path().join("out").display())));
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// skopeo 1.18 signing `image` with a fresh sigstore key while copying it onto itself. Returns the
/// public key file.
pub(crate) fn skopeo_sign(registry: &Registry, repo: &str, tag: &str, dir: &Path) -> PathBuf {
    let prefix = dir.join("skopeo-key");
    let passphrase = dir.join("passphrase");
    std::fs::write(&passphrase, "notarium-test\n").unwrap();
    let out = run(Command::new(tool("skopeo"))
        .args(["generate-sigstore-key", "--output-prefix"])
        .arg(&prefix)
        .arg("--passphrase-file")
        .arg(&passphrase));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let policy = dir.join("accept.json");
    std::fs::write(&policy, br#"{"default":[{"type":"insecureAcceptAnything"}]}"#).unwrap();
    let registries_d = dir.join("registries.d");
    std::fs::create_dir_all(&registries_d).unwrap();
    std::fs::write(registries_d.join("default.yaml"), "default-docker:\n  use-sigstore-attachments: true\n").unwrap();
    let image = format!("docker://{}/{repo}:{tag}", registry.host);
    let out = run(Command::new(tool("skopeo"))
        .arg("--policy")
        .arg(&policy)
        .arg("--registries.d")
        .arg(&registries_d)
        .args(["copy", "--src-tls-verify=false", "--dest-tls-verify=false", "--sign-by-sigstore-private-key"])
        .arg(prefix.with_extension("private"))
        .arg("--sign-passphrase-file")
        .arg(&passphrase)
        .arg(&image)
        .arg(&image));
    assert!(out.status.success(), "skopeo sign failed: {}", String::from_utf8_lossy(&out.stderr));
    prefix.with_extension("pub")
}
