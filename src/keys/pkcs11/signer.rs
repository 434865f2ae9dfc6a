//! The [`Signer`] over a token: opens it on first use, signs with a pooled session on the blocking pool,
//! and recovers once from a lost session, login or token.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use sha2::{Digest as _, Sha256};

use super::TokenError;
use super::login::{PIN_RETRY_AFTER, Pkcs11Settings};
use super::lookup::TokenKey;
use super::session::Token;
use crate::keys::{Algorithm, KeyError, KeyVersion, Signature, Signer};

pub struct Pkcs11Signer {
    id: String,
    settings: Pkcs11Settings,
    token: tokio::sync::Mutex<Option<Arc<Token>>>,
    pin_refused: tokio::sync::Mutex<Option<(Instant, String)>>,
    permits: tokio::sync::Semaphore,
}

impl Pkcs11Signer {
    pub fn new(id: &str, settings: Pkcs11Settings) -> Self {
        let permits = tokio::sync::Semaphore::new(settings.max_sessions.max(1));
        Self {
            id: id.to_owned(),
            settings,
            token: tokio::sync::Mutex::new(None),
            pin_refused: tokio::sync::Mutex::new(None),
            permits,
        }
    }

    fn backend_error(&self, reason: impl Into<String>) -> KeyError {
        KeyError::Backend { backend: "pkcs11", key: self.id.clone(), reason: reason.into() }
    }

    /// The open token, opening it first if needed.
    async fn token(&self) -> Result<Arc<Token>, TokenError> {
        let mut slot = self.token.lock().await;
        if let Some(token) = slot.as_ref() {
            return Ok(token.clone());
        }
        let mut refused = self.pin_refused.lock().await;
        if let Some((at, reason)) = refused.as_ref().filter(|(at, _)| at.elapsed() < PIN_RETRY_AFTER) {
            let wait = PIN_RETRY_AFTER.saturating_sub(at.elapsed()).as_secs();
            return Err(TokenError::Pin(format!("{reason}; not retrying for {wait} s to keep the token from locking")));
        }
        let settings = self.settings.clone();
        let opened = match run_blocking(move || Token::open(&settings)).await {
            Err(TokenError::Pin(reason)) => {
                *refused = Some((Instant::now(), reason.clone()));
                return Err(TokenError::Pin(reason));
            }
            other => other?,
        };
        *refused = None;
        let token = Arc::new(opened);
        *slot = Some(token.clone());
        Ok(token)
    }

    async fn forget_token(&self) {
        *self.token.lock().await = None;
    }

    async fn current_keys(&self) -> Result<Vec<Arc<TokenKey>>, TokenError> {
        self.keys_of(self.token().await?).await
    }

    /// `token`'s key list, re-read from the token when stale.
    async fn keys_of(&self, token: Arc<Token>) -> Result<Vec<Arc<TokenKey>>, TokenError> {
        if let Some(keys) = token.fresh_keys(self.settings.refresh) {
            return Ok(keys);
        }
        let settings = self.settings.clone();
        run_blocking(move || token.reload_keys(&settings)).await
    }

    async fn sign_once(&self, version: Option<u32>, message: &[u8]) -> Result<Signature, TokenError> {
        let token = self.token().await?;
        let keys = self.keys_of(token.clone()).await?;
        let key = match version {
            Some(v) => keys.iter().find(|k| k.version == v),
            None => keys.last(),
        }
        .cloned()
        .ok_or_else(|| TokenError::Other(format!("no version {} of this key on the token", version.unwrap_or(0))))?;
        let algorithm = key.public_key.algorithm;
        let data = match algorithm {
            Algorithm::EcdsaP256Sha256 => Sha256::digest(message).to_vec(),
            Algorithm::Ed25519 => message.to_vec(),
        };
        let _permit = self.permits.acquire().await.expect("semaphore never closes");
        let signing_key = key.clone();
        let raw = run_blocking(move || token.sign(&signing_key, &data)).await?;
        let bytes = match algorithm {
            Algorithm::EcdsaP256Sha256 => raw_ecdsa_to_der(&raw)?,
            Algorithm::Ed25519 => raw,
        };
        Ok(Signature { bytes, version: key.version })
    }

    /// Runs `attempt`, and once more on a fresh token if the session, login or token was lost.
    async fn with_recovery<T, F, Fut>(&self, attempt: F) -> Result<T, KeyError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, TokenError>>,
    {
        let result = match attempt().await {
            Err(TokenError::Lost(reason)) => {
                tracing::warn!(key = %self.id, %reason, "PKCS#11 session, login or token lost; reopening");
                self.forget_token().await;
                attempt().await
            }
            other => other,
        };
        result.map_err(|e| match e {
            TokenError::Lost(reason) | TokenError::Pin(reason) | TokenError::Other(reason) => {
                self.backend_error(reason)
            }
        })
    }
}

#[async_trait]
impl Signer for Pkcs11Signer {
    fn backend(&self) -> &'static str {
        "pkcs11"
    }

    async fn versions(&self) -> Result<Vec<KeyVersion>, KeyError> {
        let keys = self.with_recovery(|| self.current_keys()).await?;
        Ok(keys.iter().map(|k| KeyVersion { version: k.version, public_key: k.public_key.clone() }).collect())
    }

    async fn sign(&self, version: Option<u32>, message: &[u8]) -> Result<Signature, KeyError> {
        self.with_recovery(|| self.sign_once(version, message)).await
    }
}

/// Runs blocking PKCS#11 work. On the multi-threaded runtime the call stays on this worker
/// (`block_in_place`: no hand-off to another thread, which costs as much as a SoftHSM signature);
/// elsewhere it goes to the blocking pool.
async fn run_blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, TokenError> + Send + 'static,
) -> Result<T, TokenError> {
    use tokio::runtime::{Handle, RuntimeFlavor};
    if Handle::current().runtime_flavor() == RuntimeFlavor::MultiThread {
        return tokio::task::block_in_place(work);
    }
    tokio::task::spawn_blocking(work).await.map_err(|e| TokenError::Other(e.to_string()))?
}

/// HSMs return ECDSA signatures as raw `r‖s`; cosign and skopeo want ASN.1 DER.
fn raw_ecdsa_to_der(raw: &[u8]) -> Result<Vec<u8>, String> {
    let signature = p256::ecdsa::Signature::from_slice(raw)
        .map_err(|_| format!("token returned a {}-byte ECDSA signature, expected 64 (r||s)", raw.len()))?;
    Ok(signature.to_der().as_bytes().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_ecdsa_signatures_become_der() {
        let mut raw = [0u8; 64];
        raw[31] = 1;
        raw[63] = 2;
        let der = raw_ecdsa_to_der(&raw).unwrap();
        assert_eq!(der, [0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x02]);
        assert!(raw_ecdsa_to_der(&[0u8; 71]).is_err());
    }
}
