//! SoftHSM2 tokens in a temporary `SOFTHSM2_CONF`, keys generated on them by pkcs11-tool (OpenSC), and the
//! `[[keys]]` entries naming them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tempfile::TempDir;

use super::run;

pub(crate) const SOFTHSM_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";

/// A fresh SoftHSM2 token in a temporary `SOFTHSM2_CONF`, with keys generated on it by pkcs11-tool
/// (sensitive, not extractable).
pub(crate) struct SoftHsm {
    pub(crate) dir: TempDir,
    pub(crate) conf: PathBuf,
    pub(crate) token_label: String,
    pub(crate) pin: String,
}

impl SoftHsm {
    pub(crate) fn new(token_label: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("tokens")).unwrap();
        let conf = dir.path().join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                dir.path().join("tokens").display()
            ),
        )
        .unwrap();
        let hsm = Self { dir, conf, token_label: token_label.to_owned(), pin: "4711-notarium-pin".to_owned() };
        let out = hsm.command(
            "softhsm2-util",
            &["--init-token", "--free", "--label", token_label, "--so-pin", "so-pin-0815", "--pin", &hsm.pin],
        );
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        hsm
    }

    /// Another token in the same SoftHSM2 configuration, with its own PIN.
    pub(crate) fn add_token(&self, token_label: &str) -> SoftHsmToken {
        let pin = format!("{token_label}-pin-31337");
        let out = self.command(
            "softhsm2-util",
            &["--init-token", "--free", "--label", token_label, "--so-pin", "so-pin-0815", "--pin", &pin],
        );
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        SoftHsmToken { conf: self.conf.clone(), token_label: token_label.to_owned(), pin }
    }

    fn token(&self) -> SoftHsmToken {
        SoftHsmToken { conf: self.conf.clone(), token_label: self.token_label.clone(), pin: self.pin.clone() }
    }

    pub(crate) fn generate(&self, key_type: &str, label: &str, id_hex: &str) {
        self.token().generate(key_type, label, id_hex);
    }

    pub(crate) fn public_key_pem(&self, label: &str, id_hex: &str) -> String {
        self.token().public_key_pem(label, id_hex, self.dir.path())
    }

    pub(crate) fn key_config(&self, id: &str, key_label: &str, pin_env: &str) -> String {
        self.token().key_config(id, key_label, pin_env)
    }

    pub(crate) fn command(&self, program: &str, args: &[&str]) -> Output {
        run(Command::new(program).args(args).env("SOFTHSM2_CONF", &self.conf))
    }

    /// pkcs11-tool's description of the private keys on the main token (labels, ids, access flags).
    pub(crate) fn private_keys(&self) -> String {
        let out = self.token().pkcs11_tool(&["--list-objects", "--type", "privkey"]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// One token of a [`SoftHsm`].
pub(crate) struct SoftHsmToken {
    pub(crate) conf: PathBuf,
    pub(crate) token_label: String,
    pub(crate) pin: String,
}

impl SoftHsmToken {
    /// pkcs11-tool logged in to this token, with `args` after the module, token and PIN.
    fn pkcs11_tool(&self, args: &[&str]) -> Output {
        run(Command::new("pkcs11-tool")
            .args(["--module", SOFTHSM_MODULE, "--token-label", &self.token_label, "--login", "--pin", &self.pin])
            .args(args)
            .env("SOFTHSM2_CONF", &self.conf))
    }

    /// Generates a key pair on the token. `key_type` is pkcs11-tool's (`EC:prime256v1`, `EC:edwards25519`).
    pub(crate) fn generate(&self, key_type: &str, label: &str, id_hex: &str) {
        let out = self.pkcs11_tool(&[
            "--keypairgen",
            "--key-type",
            key_type,
            "--label",
            label,
            "--id",
            id_hex,
            "--usage-sign",
            "--private",
        ]);
        assert!(out.status.success(), "keypairgen: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// The public key of `label`/`id` as pkcs11-tool reads it from the token, as a PEM SubjectPublicKeyInfo
    /// (pkcs11-tool writes DER for EC keys and PEM for EdDSA keys).
    pub(crate) fn public_key_pem(&self, label: &str, id_hex: &str, dir: &Path) -> String {
        let path = dir.join(format!("{}-{label}-{id_hex}.out", self.token_label));
        let output = path.to_str().unwrap();
        let out = self.pkcs11_tool(&[
            "--read-object",
            "--type",
            "pubkey",
            "--label",
            label,
            "--id",
            id_hex,
            "--output-file",
            output,
        ]);
        assert!(out.status.success(), "read-object: {}", String::from_utf8_lossy(&out.stderr));
        let bytes = std::fs::read(path).unwrap();
        if bytes.starts_with(b"-----BEGIN") {
            return String::from_utf8(bytes).unwrap();
        }
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode(&bytes);
        let lines: Vec<&str> = b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
        format!("-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n", lines.join("\n"))
    }

    /// A `[[keys]]` entry for a key on this token.
    pub(crate) fn key_config(&self, id: &str, key_label: &str, pin_env: &str) -> String {
        format!(
            "[[keys]]\nid = \"{id}\"\nbackend = \"pkcs11\"\nmodule = \"{SOFTHSM_MODULE}\"\ntoken_label = \"{}\"\nkey_label = \"{key_label}\"\npin_env = \"{pin_env}\"\nrefresh_secs = 0\n\n",
            self.token_label
        )
    }
}
