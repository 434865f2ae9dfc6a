//! `[[keys]]`: each signing key and the backend that holds it (file, PKCS#11 token, Vault Transit), and
//! the committed example keys the embedded defaults use. Names where PINs and tokens are; never reads them.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::ConfigError;
use crate::keys::SecretRef;

/// One signing key and the backend that holds it.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "backend", rename_all = "lowercase", deny_unknown_fields)]
pub enum KeyConfig {
    /// A PKCS#8 PEM file: development only.
    File {
        id: String,
        path: PathBuf,
        /// See [`KeyConfig::certificate_chain`].
        #[serde(default)]
        certificate_chain: Option<PathBuf>,
    },
    /// A key on a PKCS#11 token (HSM, SoftHSM2).
    Pkcs11(Pkcs11KeyConfig),
    /// A Vault or OpenBao Transit key.
    Vault(VaultKeyConfig),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pkcs11KeyConfig {
    pub id: String,
    /// Path of the PKCS#11 module, e.g. `/usr/lib/softhsm/libsofthsm2.so`.
    pub module: PathBuf,
    /// The token is found by label, never by slot number (slot ids change).
    pub token_label: String,
    /// CKA_LABEL of the key pair; every key pair with this label is one version, numbered by CKA_ID.
    pub key_label: Option<String>,
    /// CKA_ID in hex, to pin one key pair.
    pub key_id: Option<String>,
    /// The PIN: see [`Pkcs11KeyConfig::pin`].
    pub(super) pin_env: Option<String>,
    pub(super) pin_file: Option<PathBuf>,
    /// See [`KeyConfig::certificate_chain`].
    #[serde(default)]
    pub certificate_chain: Option<PathBuf>,
    /// Concurrent signing sessions on the token.
    #[serde(default = "default_sessions")]
    pub max_sessions: usize,
    /// Seconds between re-reads of the key list (new versions on the token).
    #[serde(default = "default_refresh")]
    pub refresh_secs: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VaultAuthMethod {
    #[default]
    Token,
    Approle,
    Kubernetes,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultKeyConfig {
    pub id: String,
    /// e.g. `https://vault.example:8200`.
    pub address: String,
    #[serde(default = "default_transit_mount")]
    pub mount: String,
    /// The Transit key's name.
    pub key: String,
    #[serde(default)]
    pub auth: VaultAuthMethod,
    /// The Vault token (`auth = "token"`): see [`VaultKeyConfig::token`].
    pub(super) token_env: Option<String>,
    pub(super) token_file: Option<PathBuf>,
    #[serde(default = "default_approle_mount")]
    pub approle_mount: String,
    pub role_id: Option<String>,
    /// The AppRole secret id (`auth = "approle"`): see [`VaultKeyConfig::secret_id`].
    pub(super) secret_id_env: Option<String>,
    pub(super) secret_id_file: Option<PathBuf>,
    #[serde(default = "default_kubernetes_mount")]
    pub kubernetes_mount: String,
    pub kubernetes_role: Option<String>,
    #[serde(default = "default_jwt_file")]
    pub jwt_file: PathBuf,
    #[serde(default = "default_vault_timeout")]
    pub timeout_secs: u64,
    /// See [`KeyConfig::certificate_chain`].
    #[serde(default)]
    pub certificate_chain: Option<PathBuf>,
    #[serde(default = "default_refresh")]
    pub refresh_secs: u64,
}

impl KeyConfig {
    pub fn id(&self) -> &str {
        match self {
            Self::File { id, .. } => id,
            Self::Pkcs11(k) => &k.id,
            Self::Vault(k) => &k.id,
        }
    }

    /// `certificate_chain`: a PEM file of the key's X.509 certificate chain, leaf first, then the
    /// intermediates, ending with the self-signed root (a Notary Project signature's `x5chain` must end
    /// with it). Checked at start-up against the key's latest version; a key without one signs no
    /// Notary Project signature unless `[ca]` issues it a certificate.
    pub fn certificate_chain(&self) -> Option<&Path> {
        match self {
            Self::File { certificate_chain, .. } => certificate_chain.as_deref(),
            Self::Pkcs11(k) => k.certificate_chain.as_deref(),
            Self::Vault(k) => k.certificate_chain.as_deref(),
        }
    }

    fn certificate_chain_mut(&mut self) -> &mut Option<PathBuf> {
        match self {
            Self::File { certificate_chain, .. } => certificate_chain,
            Self::Pkcs11(k) => &mut k.certificate_chain,
            Self::Vault(k) => &mut k.certificate_chain,
        }
    }

    /// Makes a relative `certificate_chain` relative to `base` (the config file's folder).
    pub(super) fn resolve_certificate_chain(&mut self, base: &Path) {
        if let Some(path) = self.certificate_chain_mut().as_mut().filter(|p| p.is_relative()) {
            *path = base.join(&*path);
        }
    }

    /// Every secret the key names, by [`SecretRef::from_pair`]'s rule (checked at load).
    pub(super) fn check_secrets(&self) -> Result<(), ConfigError> {
        match self {
            Self::File { .. } => {}
            Self::Pkcs11(k) => {
                k.pin()?;
            }
            Self::Vault(k) => {
                k.token()?;
                k.secret_id()?;
            }
        }
        Ok(())
    }
}

/// A `<name>_env` / `<name>_file` pair of `[[keys]] "id"` as a [`SecretRef`].
fn key_secret(
    id: &str,
    name: &str,
    env: &Option<String>,
    file: &Option<PathBuf>,
) -> Result<Option<SecretRef>, ConfigError> {
    SecretRef::from_pair(&format!("[[keys]] {id:?}"), name, env.as_deref(), file.as_deref())
        .map_err(ConfigError::Invalid)
}

impl Pkcs11KeyConfig {
    /// The token's PIN: `pin_env` or `pin_file`.
    pub fn pin(&self) -> Result<Option<SecretRef>, ConfigError> {
        key_secret(&self.id, "pin", &self.pin_env, &self.pin_file)
    }
}

impl VaultKeyConfig {
    /// The Vault token for `auth = "token"`: `token_env` or `token_file`.
    pub fn token(&self) -> Result<Option<SecretRef>, ConfigError> {
        key_secret(&self.id, "token", &self.token_env, &self.token_file)
    }

    /// The AppRole secret id for `auth = "approle"`: `secret_id_env` or `secret_id_file`.
    pub fn secret_id(&self) -> Result<Option<SecretRef>, ConfigError> {
        key_secret(&self.id, "secret_id", &self.secret_id_env, &self.secret_id_file)
    }

    /// The service account token for `auth = "kubernetes"`, always a file (`jwt_file`).
    pub fn jwt(&self) -> SecretRef {
        SecretRef::File(self.jwt_file.clone())
    }
}

fn default_sessions() -> usize {
    4
}
fn default_refresh() -> u64 {
    30
}
fn default_transit_mount() -> String {
    "transit".into()
}
fn default_approle_mount() -> String {
    "approle".into()
}
fn default_kubernetes_mount() -> String {
    "kubernetes".into()
}
fn default_jwt_file() -> PathBuf {
    "/var/run/secrets/kubernetes.io/serviceaccount/token".into()
}
fn default_vault_timeout() -> u64 {
    10
}

/// The committed example key that signs checkpoints in the embedded defaults.
pub(super) const DEV_LOG_KEY: &str = "dev-log";

pub(super) fn example_keys() -> Vec<KeyConfig> {
    ["dev-ecdsa", "dev-ed25519", DEV_LOG_KEY]
        .into_iter()
        .map(|id| KeyConfig::File {
            id: id.into(),
            path: PathBuf::from("keys.example").join(format!("{id}.pem")),
            certificate_chain: None,
        })
        .collect()
}

/// A key file from the committed `keys.example/` folder.
pub(super) fn is_example_key(path: &Path) -> bool {
    path.components().any(|c| c.as_os_str() == "keys.example")
}
