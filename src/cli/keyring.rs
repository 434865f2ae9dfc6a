//! Turns `[[keys]]` configuration into signers. Backends connect lazily: a key whose HSM or Vault is
//! down answers 503 on use while every other key keeps signing, and `/readyz` names it.
//! `notarium verify` gets the same keys verify-only ([`load_public_keys`]): they never sign.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::CliError;
use crate::config::{Config, ConfigError, KeyConfig, Pkcs11KeyConfig, VaultAuthMethod, VaultKeyConfig};
use crate::formats::digest::hex_decode;
use crate::keys::{
    FileSigner, KeyError, KeyRing, KeyVersion, Pkcs11Settings, Pkcs11Signer, SecretRef, Signature, Signer, VaultAuth,
    VaultSettings, VaultSigner,
};

pub(super) fn load_keys(config: &Config) -> Result<KeyRing, CliError> {
    check_one_pin_per_token(config)?;
    let mut ring = KeyRing::default();
    for key in &config.keys {
        let signer: Arc<dyn Signer> = match key {
            KeyConfig::File { id, path, .. } => {
                Arc::new(FileSigner::load(id, path).map_err(|e| CliError::Usage(e.to_string()))?)
            }
            KeyConfig::Pkcs11(k) => Arc::new(Pkcs11Signer::new(&k.id, pkcs11_settings(k)?)),
            KeyConfig::Vault(k) => Arc::new(VaultSigner::new(&k.id, vault_settings(k)?)),
        };
        ring.insert(key.id(), signer);
    }
    reserve_log_key(config, &mut ring)?;
    Ok(ring)
}

/// The configured keys for checking signatures only: a file key becomes the public key derived from its
/// PEM (the private key is dropped at once); a PKCS#11 or Vault key still asks its backend for its
/// public keys (connecting on first use), but every signing request is refused.
pub(super) async fn load_public_keys(config: &Config) -> Result<KeyRing, CliError> {
    check_one_pin_per_token(config)?;
    let mut ring = KeyRing::default();
    for key in &config.keys {
        let public = match key {
            KeyConfig::File { id, path, .. } => {
                let signer = FileSigner::load(id, path).map_err(|e| CliError::Usage(e.to_string()))?;
                let versions = signer.versions().await.map_err(|e| CliError::Usage(e.to_string()))?;
                PublicKeys::Known(versions)
            }
            KeyConfig::Pkcs11(k) => PublicKeys::Backend(Arc::new(Pkcs11Signer::new(&k.id, pkcs11_settings(k)?))),
            KeyConfig::Vault(k) => PublicKeys::Backend(Arc::new(VaultSigner::new(&k.id, vault_settings(k)?))),
        };
        ring.insert(key.id(), Arc::new(VerifyOnly { id: key.id().to_owned(), backend: key_backend(key), public }));
    }
    reserve_log_key(config, &mut ring)?;
    Ok(ring)
}

fn key_backend(key: &KeyConfig) -> &'static str {
    match key {
        KeyConfig::File { .. } => "file",
        KeyConfig::Pkcs11(_) => "pkcs11",
        KeyConfig::Vault(_) => "vault",
    }
}

/// Where a verify-only key's public keys come from.
enum PublicKeys {
    Known(Vec<KeyVersion>),
    Backend(Arc<dyn Signer>),
}

/// A key that checks signatures and never makes one.
struct VerifyOnly {
    id: String,
    backend: &'static str,
    public: PublicKeys,
}

#[async_trait]
impl Signer for VerifyOnly {
    fn backend(&self) -> &'static str {
        self.backend
    }

    async fn versions(&self) -> Result<Vec<KeyVersion>, KeyError> {
        match &self.public {
            PublicKeys::Known(versions) => Ok(versions.clone()),
            PublicKeys::Backend(signer) => signer.versions().await,
        }
    }

    async fn sign(&self, _version: Option<u32>, _message: &[u8]) -> Result<Signature, KeyError> {
        let reason = "loaded to verify only".to_owned();
        Err(KeyError::Backend { backend: self.backend, key: self.id.clone(), reason })
    }
}

fn reserve_log_key(config: &Config, ring: &mut KeyRing) -> Result<(), CliError> {
    if let Some(log_key) = config.log_key() {
        let id = crate::keys::KeyRef::parse(&log_key).map_err(|e| CliError::Usage(format!("[log] key: {e}")))?.id;
        ring.reserve_for_checkpoints(id);
    }
    if let Some(ca) = &config.ca {
        ring.reserve_for_ca(ca.key.clone());
    }
    Ok(())
}

/// PKCS#11 logs in once per token and process, so keys on one token must agree on its PIN; otherwise a
/// key configured with a wrong PIN would sign on the strength of another key's login.
fn check_one_pin_per_token(config: &Config) -> Result<(), CliError> {
    let mut pins = std::collections::HashMap::new();
    for key in &config.keys {
        let KeyConfig::Pkcs11(k) = key else { continue };
        let token = (k.module.clone(), k.token_label.clone());
        let pin = k.pin().map_err(|e| invalid(&k.id, e))?;
        if let Some((first, first_pin)) = pins.insert(token, (k.id.clone(), pin.clone())) {
            if first_pin != pin {
                return Err(invalid(
                    &k.id,
                    format!("it shares token {:?} with key {first:?} but names another PIN source", k.token_label),
                ));
            }
        }
    }
    Ok(())
}

fn invalid(id: &str, reason: impl std::fmt::Display) -> CliError {
    CliError::Usage(format!("key {id:?}: {reason}"))
}

/// A secret key `id` cannot do without.
fn required(id: &str, name: &str, secret: Result<Option<SecretRef>, ConfigError>) -> Result<SecretRef, CliError> {
    secret.map_err(|e| invalid(id, e))?.ok_or_else(|| invalid(id, SecretRef::missing(name)))
}

fn pkcs11_settings(k: &Pkcs11KeyConfig) -> Result<Pkcs11Settings, CliError> {
    if k.key_label.is_none() && k.key_id.is_none() {
        return Err(invalid(&k.id, "set key_label or key_id"));
    }
    let key_id = match &k.key_id {
        Some(hex) => {
            Some(hex_decode(hex.trim_start_matches("0x")).ok_or_else(|| invalid(&k.id, "key_id must be hex"))?)
        }
        None => None,
    };
    Ok(Pkcs11Settings {
        module: k.module.clone(),
        token_label: k.token_label.clone(),
        key_label: k.key_label.clone(),
        key_id,
        pin: required(&k.id, "pin", k.pin())?,
        max_sessions: k.max_sessions,
        refresh: Duration::from_secs(k.refresh_secs),
    })
}

fn vault_settings(k: &VaultKeyConfig) -> Result<VaultSettings, CliError> {
    let auth = match k.auth {
        VaultAuthMethod::Token => VaultAuth::Token(required(&k.id, "token", k.token())?),
        VaultAuthMethod::Approle => VaultAuth::AppRole {
            mount: k.approle_mount.clone(),
            role_id: k.role_id.clone().ok_or_else(|| invalid(&k.id, "auth = \"approle\" needs role_id"))?,
            secret_id: required(&k.id, "secret_id", k.secret_id())?,
        },
        VaultAuthMethod::Kubernetes => VaultAuth::Kubernetes {
            mount: k.kubernetes_mount.clone(),
            role: k
                .kubernetes_role
                .clone()
                .ok_or_else(|| invalid(&k.id, "auth = \"kubernetes\" needs kubernetes_role"))?,
            jwt: k.jwt(),
        },
    };
    Ok(VaultSettings {
        address: k.address.clone(),
        mount: k.mount.clone(),
        key: k.key.clone(),
        auth,
        timeout: Duration::from_secs(k.timeout_secs),
        refresh: Duration::from_secs(k.refresh_secs),
    })
}
