//! cosign (Debian 13's 2.5 and Debian sid's 3.1, both under `.tools/`) verifying what notarium wrote and
//! signing what notarium verifies, offline and with its own HOME, so it writes nothing outside a temp dir.

use std::path::Path;
use std::process::{Command, Output};

use tempfile::TempDir;

use super::{run, tool};

/// Which cosign build runs (scripts/install-skopeo-cosign.sh installs both).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CosignVersion {
    /// Debian 13's cosign 2.5, `.tools/bin/cosign`.
    V2_5,
    /// Debian sid's cosign 3.1, `.tools/bin/cosign3`.
    V3_1,
}

/// A cosign invocation with its own HOME and TUF root, so it writes nothing outside a temp dir.
pub(crate) struct Cosign {
    home: TempDir,
    version: CosignVersion,
}

impl Cosign {
    /// cosign 2.5.
    pub(crate) fn new() -> Self {
        Self::of(CosignVersion::V2_5)
    }

    pub(crate) fn of(version: CosignVersion) -> Self {
        Self { home: tempfile::tempdir().unwrap(), version }
    }

    pub(crate) fn dir(&self) -> &Path {
        self.home.path()
    }

    pub(crate) fn run(&self, args: &[&str]) -> Output {
        let binary = match self.version {
            CosignVersion::V2_5 => "cosign",
            CosignVersion::V3_1 => "cosign3",
        };
        run(Command::new(tool(binary))
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
