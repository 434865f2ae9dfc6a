//! The `vault` backend: keys in HashiCorp Vault's or OpenBao's Transit engine (vaultrs). Vault signs;
//! notarium sends a SHA-256 digest (ECDSA P-256, `prehashed`, `marshaling_algorithm=asn1`) or the whole
//! message (Ed25519) and reads the key version from the `vault:vN:` prefix of the answer.
//!
//! Auth is a token, AppRole or a Kubernetes service account; tokens with a TTL are renewed before they
//! expire, and AppRole or Kubernetes logins are redone when renewal is impossible. Public keys of every
//! version are cached for `refresh` and re-read when Vault signs with a version notarium has not seen, so a
//! rotation in Vault is picked up without a restart. No token ever appears in an error or a log line; the
//! tokens and secret ids notarium holds are overwritten when dropped (the client keeps its own copy).

use crate::error_chain::root_cause;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use sha2::{Digest as _, Sha256};
use vaultrs::api::transit::requests::SignDataRequest;
use vaultrs::api::transit::responses::ReadKeyData;
use vaultrs::api::transit::{HashAlgorithm, KeyType, MarshalingAlgorithm};
use vaultrs::client::{Client as _, VaultClient, VaultClientSettingsBuilder};
use vaultrs::error::ClientError;
use zeroize::Zeroizing;

use super::{Algorithm, KeyError, KeyVersion, PublicKey, SecretRef, Signature, Signer};

/// How notarium proves itself to Vault.
#[derive(Debug, Clone)]
pub enum VaultAuth {
    Token(SecretRef),
    AppRole { mount: String, role_id: String, secret_id: SecretRef },
    Kubernetes { mount: String, role: String, jwt: SecretRef },
}

#[derive(Debug, Clone)]
pub struct VaultSettings {
    pub address: String,
    pub mount: String,
    pub key: String,
    pub auth: VaultAuth,
    pub timeout: Duration,
    pub refresh: Duration,
}

/// A logged-in client and when its token should be renewed.
struct Session {
    client: Arc<VaultClient>,
    renew_at: Option<Instant>,
    renewable: bool,
}

struct KeyCache {
    loaded: Instant,
    algorithm: Algorithm,
    versions: Vec<KeyVersion>,
}

pub struct VaultSigner {
    id: String,
    settings: VaultSettings,
    session: tokio::sync::Mutex<Option<Session>>,
    cache: tokio::sync::RwLock<Option<KeyCache>>,
}

impl VaultSigner {
    pub fn new(id: &str, settings: VaultSettings) -> Self {
        Self {
            id: id.to_owned(),
            settings,
            session: tokio::sync::Mutex::new(None),
            cache: tokio::sync::RwLock::new(None),
        }
    }

    fn error(&self, reason: impl Into<String>) -> KeyError {
        KeyError::Backend { backend: "vault", key: self.id.clone(), reason: reason.into() }
    }

    /// Vault's answer as a short cause; Vault's own messages carry no token.
    fn describe(&self, error: &ClientError) -> String {
        let s = &self.settings;
        match error {
            ClientError::APIError { code: 503, errors } if errors.iter().any(|e| e.contains("sealed")) => {
                format!("Vault at {} is sealed", s.address)
            }
            ClientError::APIError { code: 403, .. } => {
                format!("permission denied on transit key {}/{} (check the token's policy)", s.mount, s.key)
            }
            ClientError::APIError { code, errors }
                if *code == 404
                    || (*code == 400
                        && errors.iter().any(|e| e.contains("not found") || e.contains("no existing key"))) =>
            {
                format!("transit key {}/{} does not exist", s.mount, s.key)
            }
            ClientError::APIError { code, errors } => {
                format!("Vault answered HTTP {code}: {}", errors.join("; "))
            }
            ClientError::RestClientError { source } => {
                format!("cannot reach Vault at {}: {}", s.address, root_cause(source))
            }
            other => other.to_string(),
        }
    }

    async fn login(&self) -> Result<Session, KeyError> {
        let settings = VaultClientSettingsBuilder::default()
            .address(&self.settings.address)
            .token("")
            .timeout(Some(self.settings.timeout))
            .build()
            .map_err(|e| self.error(format!("invalid Vault settings: {e}")))?;
        let mut client = VaultClient::new(settings).map_err(|e| self.error(self.describe(&e)))?;
        let (token, ttl, renewable) = match &self.settings.auth {
            VaultAuth::Token(secret) => {
                client.set_token(&secret.read().map_err(|e| self.error(e))?);
                let me = vaultrs::token::lookup_self(&client).await.map_err(|e| self.error(self.describe(&e)))?;
                (None, me.ttl, me.renewable.unwrap_or(false))
            }
            VaultAuth::AppRole { mount, role_id, secret_id } => {
                let secret = secret_id.read().map_err(|e| self.error(e))?;
                let auth = vaultrs::auth::approle::login(&client, mount, role_id, &secret)
                    .await
                    .map_err(|e| self.error(format!("AppRole login failed: {}", self.describe(&e))))?;
                (Some(Zeroizing::new(auth.client_token)), auth.lease_duration, auth.renewable)
            }
            VaultAuth::Kubernetes { mount, role, jwt } => {
                let jwt = jwt.read().map_err(|e| self.error(e))?;
                let auth = vaultrs::auth::kubernetes::login(&client, mount, role, &jwt)
                    .await
                    .map_err(|e| self.error(format!("Kubernetes login failed: {}", self.describe(&e))))?;
                (Some(Zeroizing::new(auth.client_token)), auth.lease_duration, auth.renewable)
            }
        };
        if let Some(token) = token {
            client.set_token(&token);
        }
        Ok(Session { client: Arc::new(client), renew_at: renew_deadline(ttl), renewable })
    }

    /// Runs `call` with a live session: logs in when needed, renews a token nearing its end, and logs
    /// in again once if Vault says the token is no longer valid.
    async fn with_client<T, F, Fut>(&self, call: F) -> Result<T, KeyError>
    where
        F: Fn(Arc<VaultClient>) -> Fut,
        Fut: std::future::Future<Output = Result<T, ClientError>>,
    {
        let client = self.live_client().await?;
        match call(client).await {
            Err(ClientError::APIError { code: 403, .. }) if !matches!(self.settings.auth, VaultAuth::Token(_)) => {
                *self.session.lock().await = None;
                let client = self.live_client().await?;
                call(client).await.map_err(|e| self.error(self.describe(&e)))
            }
            other => other.map_err(|e| self.error(self.describe(&e))),
        }
    }

    async fn live_client(&self) -> Result<Arc<VaultClient>, KeyError> {
        let mut guard = self.session.lock().await;
        if let Some(session) = guard.as_mut() {
            if session.renew_at.is_none_or(|at| Instant::now() < at) {
                return Ok(session.client.clone());
            }
            if session.renewable {
                if let Ok(auth) = vaultrs::token::renew_self(session.client.as_ref(), None).await {
                    tracing::info!(key = %self.id, ttl_secs = auth.lease_duration, "renewed the Vault token");
                    session.renew_at = renew_deadline(auth.lease_duration);
                    return Ok(session.client.clone());
                }
            }
            tracing::info!(key = %self.id, "Vault token near its end and not renewable; logging in again");
        }
        let session = self.login().await?;
        let client = session.client.clone();
        *guard = Some(session);
        Ok(client)
    }

    async fn load_key(&self) -> Result<KeyCache, KeyError> {
        let (mount, key) = (self.settings.mount.clone(), self.settings.key.clone());
        let read = self
            .with_client(|client| {
                let (mount, key) = (mount.clone(), key.clone());
                async move { vaultrs::transit::key::read(client.as_ref(), &mount, &key).await }
            })
            .await?;
        let algorithm = match read.key_type {
            KeyType::EcdsaP256 => Algorithm::EcdsaP256Sha256,
            KeyType::Ed25519 => Algorithm::Ed25519,
            other => {
                return Err(
                    self.error(format!("transit key type {other:?} is not supported: use ecdsa-p256 or ed25519"))
                );
            }
        };
        let ReadKeyData::Asymmetric(entries) = read.keys else {
            return Err(self.error("transit key has no public keys"));
        };
        let mut versions = Vec::new();
        for (version, entry) in entries {
            let version: u32 = version.parse().map_err(|_| self.error(format!("odd key version {version:?}")))?;
            let public_key = parse_public_key(algorithm, &entry.public_key).map_err(|e| self.error(e))?;
            versions.push(KeyVersion { version, public_key });
        }
        versions.sort_by_key(|v| v.version);
        Ok(KeyCache { loaded: Instant::now(), algorithm, versions })
    }

    /// The cached key description, re-read when stale or when `must_have` is missing from it.
    async fn key(&self, must_have: Option<u32>) -> Result<(Algorithm, Vec<KeyVersion>), KeyError> {
        if let Some(cache) = self.cache.read().await.as_ref() {
            let fresh = cache.loaded.elapsed() < self.settings.refresh;
            let complete = must_have.is_none_or(|v| cache.versions.iter().any(|k| k.version == v));
            if fresh && complete {
                return Ok((cache.algorithm, cache.versions.clone()));
            }
        }
        let loaded = self.load_key().await?;
        let result = (loaded.algorithm, loaded.versions.clone());
        *self.cache.write().await = Some(loaded);
        Ok(result)
    }
}

#[async_trait]
impl Signer for VaultSigner {
    fn backend(&self) -> &'static str {
        "vault"
    }

    async fn versions(&self) -> Result<Vec<KeyVersion>, KeyError> {
        Ok(self.key(None).await?.1)
    }

    async fn sign(&self, version: Option<u32>, message: &[u8]) -> Result<Signature, KeyError> {
        let (algorithm, _) = self.key(version).await?;
        let input = match algorithm {
            Algorithm::EcdsaP256Sha256 => BASE64.encode(Sha256::digest(message)),
            Algorithm::Ed25519 => BASE64.encode(message),
        };
        let (mount, key) = (self.settings.mount.clone(), self.settings.key.clone());
        let signed = self
            .with_client(|client| {
                let (mount, key, input) = (mount.clone(), key.clone(), input.clone());
                async move {
                    let mut request = SignDataRequest::builder();
                    if algorithm == Algorithm::EcdsaP256Sha256 {
                        request
                            .hash_algorithm(HashAlgorithm::Sha2_256)
                            .prehashed(true)
                            .marshaling_algorithm(MarshalingAlgorithm::Asn1);
                    }
                    if let Some(v) = version {
                        request.key_version(u64::from(v));
                    }
                    vaultrs::transit::data::sign(client.as_ref(), &mount, &key, &input, Some(&mut request)).await
                }
            })
            .await?;
        let (version, bytes) = parse_vault_signature(&signed.signature).map_err(|e| self.error(e))?;
        self.key(Some(version)).await?;
        Ok(Signature { bytes, version })
    }
}

/// Renew when two thirds of the TTL are gone; a TTL of 0 never expires (root tokens).
fn renew_deadline(ttl_secs: u64) -> Option<Instant> {
    (ttl_secs > 0).then(|| Instant::now() + Duration::from_secs(ttl_secs * 2 / 3))
}

/// `vault:v3:BASE64` → (3, signature bytes).
fn parse_vault_signature(signature: &str) -> Result<(u32, Vec<u8>), String> {
    let mut parts = signature.splitn(3, ':');
    let (Some("vault"), Some(version), Some(encoded)) = (parts.next(), parts.next(), parts.next()) else {
        return Err("Vault returned a signature without the vault:vN: prefix".into());
    };
    let version = version
        .strip_prefix('v')
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("Vault returned an unreadable key version {version:?}"))?;
    let bytes = BASE64.decode(encoded).map_err(|e| format!("Vault returned a signature that is not base64: {e}"))?;
    Ok((version, bytes))
}

/// Transit gives ECDSA public keys as PEM and Ed25519 ones as base64 of the raw 32 bytes.
fn parse_public_key(algorithm: Algorithm, text: &str) -> Result<PublicKey, String> {
    match algorithm {
        Algorithm::EcdsaP256Sha256 => PublicKey::from_pem(text).map_err(|e| e.to_string()),
        Algorithm::Ed25519 => {
            let raw: [u8; 32] = BASE64
                .decode(text.trim())
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or("Vault's Ed25519 public key is not 32 base64 bytes")?;
            ed25519_dalek::VerifyingKey::from_bytes(&raw)
                .map(|k| PublicKey::from_ed25519(&k))
                .map_err(|e| e.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vault_signatures_carry_their_key_version() {
        assert_eq!(parse_vault_signature("vault:v3:AAEC").unwrap(), (3, vec![0, 1, 2]));
        for bad in ["v3:AAEC", "vault:3:AAEC", "vault:v3:!!", "vault:vx:AAEC"] {
            assert!(parse_vault_signature(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tokens_are_renewed_at_two_thirds_of_their_ttl() {
        assert!(renew_deadline(0).is_none());
        let at = renew_deadline(30).unwrap();
        let left = at.duration_since(Instant::now());
        assert!(left <= Duration::from_secs(20) && left > Duration::from_secs(19));
    }
}
