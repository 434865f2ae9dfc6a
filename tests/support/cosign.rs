//! cosign 2.5 (Debian 13 build under `.tools/`) verifying what notarium wrote, offline and with its own
//! HOME, so it writes nothing outside a temp dir.

use std::path::Path;
use std::process::{Command, Output};

use tempfile::TempDir;

use super::{run, tool};

/// A cosign 2.5 invocation with its own HOME and TUF root, so it writes nothing outside a temp dir.
pub(crate) struct Cosign {
    home: TempDir,
}

impl Cosign {
    pub(crate) fn new() -> Self {
        Self { home: tempfile::tempdir().unwrap() }
    }

    pub(crate) fn dir(&self) -> &Path {
        self.home.path()
    }

    pub(crate) fn run(&self, args: &[&str]) -> Output {
        run(Command::new(tool("cosign"))
            .args(args)
            .current_dir(self.home.path())
            .env("HOME", self.home.path())
            .env("TUF_ROOT", self.home.path().join("tuf"))
            .env("COSIGN_PASSWORD", "")
            .env("COSIGN_YES", "true"))
    }

    /// `cosign verify --new-bundle-format` or `cosign verify-attestation --new-bundle-format` (`command`):
    /// reads only the OCI 1.1 referrer (Sigstore bundle) layout, with a trusted root that lists no log, CA
    /// or timestamp authority, as a plain key needs none. True if accepted; stdout and stderr.
    pub(crate) fn verify_bundle(
        &self,
        command: &str,
        image: &str,
        public_key: &Path,
        extra: &[&str],
    ) -> (bool, String) {
        let root = self.dir().join("empty-trusted-root.json");
        let empty = serde_json::json!({"mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
            "tlogs": [], "certificateAuthorities": [], "ctlogs": [], "timestampAuthorities": []});
        std::fs::write(&root, empty.to_string()).unwrap();
        let (key, root) = (public_key.to_str().unwrap(), root.to_str().unwrap());
        let args = [command, "--new-bundle-format", "--trusted-root", root, "--key", key, "--insecure-ignore-tlog"];
        let out = self.run(&[&args[..], extra, &["--allow-http-registry", image]].concat());
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        (out.status.success(), text)
    }

    /// `cosign verify --key` offline, without a transparency log. True if accepted.
    pub(crate) fn verify(&self, image: &str, public_key: &Path) -> (bool, String) {
        let key = public_key.to_str().unwrap();
        let out =
            self.run(&["verify", "--key", key, "--insecure-ignore-tlog", "--allow-http-registry", "--offline", image]);
        (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
    }
}
