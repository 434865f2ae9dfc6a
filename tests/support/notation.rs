//! notation 1.3.2 (Debian sid build under `.tools/`) signing and verifying against the test registry, with a
//! configuration directory of its own (`XDG_CONFIG_HOME` and `HOME` in a temp dir), so it reads and writes
//! nothing outside it. Owns: that directory (keys, trust stores, trust policy); must not touch the registry
//! beyond what a test asks.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tempfile::TempDir;

use super::{Registry, push_image, run, tool};

/// A notation 1.3.2 invocation with its own configuration directory.
pub(crate) struct Notation {
    home: TempDir,
}

impl Notation {
    pub(crate) fn new() -> Self {
        Self { home: tempfile::tempdir().unwrap() }
    }

    /// notation's configuration directory (`$XDG_CONFIG_HOME/notation`).
    pub(crate) fn config_dir(&self) -> PathBuf {
        self.home.path().join("config/notation")
    }

    pub(crate) fn run(&self, args: &[&str]) -> Output {
        run(Command::new(tool("notation"))
            .args(args)
            .current_dir(self.home.path())
            .env("HOME", self.home.path())
            .env("XDG_CONFIG_HOME", self.home.path().join("config"))
            .env_remove("NOTATION_USERNAME")
            .env_remove("NOTATION_PASSWORD"))
    }

    /// Runs and panics with notation's output unless it succeeds; returns stdout and stderr.
    pub(crate) fn run_ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let text = output_text(&out);
        assert!(out.status.success(), "notation {args:?} failed: {text}");
        text
    }

    /// `notation cert generate-test NAME`: an RSA key and a self-signed code-signing certificate (valid one
    /// day), added to the key list and to the trust store `ca:NAME`. Returns the key and certificate paths.
    pub(crate) fn generate_test(&self, name: &str) -> (PathBuf, PathBuf) {
        self.run_ok(&["cert", "generate-test", name]);
        let keys = self.config_dir().join("localkeys");
        (keys.join(format!("{name}.key")), keys.join(format!("{name}.crt")))
    }

    /// Adds a local signing key NAME (a PEM private key and the PEM certificate chain, leaf first) to
    /// notation's key list, as `signingkeys.json` names them (notation 1.3 adds local keys only this way).
    pub(crate) fn add_key(&self, name: &str, key: &Path, chain: &Path) {
        let path = self.config_dir().join("signingkeys.json");
        let mut keys: serde_json::Value = std::fs::read(&path)
            .map(|bytes| serde_json::from_slice(&bytes).unwrap())
            .unwrap_or_else(|_| serde_json::json!({"keys": []}));
        keys["keys"].as_array_mut().unwrap().push(serde_json::json!({
            "name": name, "keyPath": key.to_str().unwrap(), "certPath": chain.to_str().unwrap()}));
        std::fs::create_dir_all(self.config_dir()).unwrap();
        std::fs::write(path, serde_json::to_vec_pretty(&keys).unwrap()).unwrap();
    }

    /// `notation cert add --type KIND --store STORE CERT` (KIND: ca, signingAuthority or tsa).
    pub(crate) fn add_trusted_cert(&self, kind: &str, store: &str, cert: &Path) {
        self.run_ok(&["cert", "add", "--type", kind, "--store", store, cert.to_str().unwrap()]);
    }

    /// Writes the OCI trust policy: one policy for every registry scope, at `level` (strict, permissive,
    /// audit, skip), trusting the stores (`ca:NAME`, `signingAuthority:NAME`, `tsa:NAME`) and identities
    /// (`*` or `x509.subject: C=US, ...`).
    pub(crate) fn write_trust_policy(&self, level: &str, stores: &[&str], identities: &[&str]) {
        let policy = serde_json::json!({"version": "1.0", "trustPolicies": [{
            "name": "notarium-tests", "registryScopes": ["*"],
            "signatureVerification": {"level": level},
            "trustStores": stores, "trustedIdentities": identities}]});
        self.write_trust_policy_json(&policy);
    }

    /// Writes a trust policy document as given (notation 1.3.2 reads `trustpolicy.json`).
    pub(crate) fn write_trust_policy_json(&self, policy: &serde_json::Value) {
        std::fs::create_dir_all(self.config_dir()).unwrap();
        std::fs::write(self.config_dir().join("trustpolicy.json"), serde_json::to_vec_pretty(policy).unwrap()).unwrap();
    }

    /// `notation sign --key KEY` over plain HTTP, with `extra` flags (`--signature-format cose`, `-e 1h`,
    /// `--timestamp-url ...`). True if signed; stdout and stderr.
    pub(crate) fn sign(&self, image: &str, key: &str, extra: &[&str]) -> (bool, String) {
        let out = self.run(&[&["sign", "--insecure-registry", "--key", key], extra, &[image]].concat());
        (out.status.success(), output_text(&out))
    }

    /// Pushes an image holding `content` to `repo` of `registry` and signs it with key `key` (and `extra`
    /// flags); the image by digest.
    pub(crate) fn signed_image(
        &self,
        registry: &Registry,
        repo: &str,
        content: &str,
        key: &str,
        extra: &[&str],
    ) -> String {
        let digest = push_image(registry, repo, "v1", content);
        let image = format!("{}/{repo}@{digest}", registry.host);
        let (signed, out) = self.sign(&image, key, extra);
        assert!(signed, "{out}");
        image
    }

    /// `notation verify` over plain HTTP under the trust policy written. True if accepted; stdout and stderr.
    pub(crate) fn verify(&self, image: &str) -> (bool, String) {
        let out = self.run(&["verify", "--insecure-registry", image]);
        (out.status.success(), output_text(&out))
    }
}

fn output_text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// The certificates of a PEM file, DER, in file order.
pub(crate) fn der_certificates(pem_file: &Path) -> Vec<Vec<u8>> {
    let text = std::fs::read_to_string(pem_file).unwrap();
    text.split_inclusive("-----END CERTIFICATE-----\n")
        .filter(|block| block.contains("BEGIN CERTIFICATE"))
        .map(|block| p256::pkcs8::Document::from_pem(block).unwrap().1.as_bytes().to_vec())
        .collect()
}
