//! The `pkcs11` backend: keys on an HSM or token through PKCS#11 (cryptoki). The private key never
//! leaves the token: notarium holds object handles and gets signatures back.
//!
//! Versions: every private key with the configured label (or id) is one version of the key, numbered by
//! its CKA_ID read as a big-endian integer; rotating means generating a key pair with the same label and
//! the next id. The key list is re-read after `refresh`, so a new key on the token is picked up without
//! a restart. Sessions are pooled (one per concurrent sign, bounded) and every call runs on the blocking
//! pool. A lost session, login or token is recovered by opening the token again, once per sign.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as P11Error, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use sha2::{Digest as _, Sha256};

use super::{Algorithm, KeyError, KeyVersion, PublicKey, SecretSource, Signature, Signer};

const P256_OID: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

/// How to find the key on its token.
#[derive(Debug, Clone)]
pub struct Pkcs11Settings {
    pub module: PathBuf,
    pub token_label: String,
    pub key_label: Option<String>,
    pub key_id: Option<Vec<u8>>,
    pub pin: SecretSource,
    pub max_sessions: usize,
    pub refresh: Duration,
}

pub struct Pkcs11Signer {
    id: String,
    settings: Pkcs11Settings,
    token: tokio::sync::Mutex<Option<Arc<Token>>>,
    pin_refused: tokio::sync::Mutex<Option<(Instant, String)>>,
    permits: tokio::sync::Semaphore,
}

struct TokenKey {
    version: u32,
    private: ObjectHandle,
    public_key: PublicKey,
}

/// An opened, logged-in token with its key list and idle sessions.
struct Token {
    ctx: Pkcs11,
    slot: Slot,
    anchor: Mutex<Session>,
    idle: Mutex<Vec<Session>>,
    keys: RwLock<(Instant, Vec<Arc<TokenKey>>)>,
}

/// C_Initialize may run once per module per process, so contexts are shared by module path.
fn context(module: &Path) -> Result<Pkcs11, String> {
    static CONTEXTS: OnceLock<Mutex<HashMap<PathBuf, Pkcs11>>> = OnceLock::new();
    let mut contexts = CONTEXTS.get_or_init(Default::default).lock().expect("pkcs11 context table");
    if let Some(ctx) = contexts.get(module) {
        return Ok(ctx.clone());
    }
    let ctx = Pkcs11::new(module).map_err(|e| format!("cannot load PKCS#11 module {}: {e}", module.display()))?;
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(P11Error::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => return Err(describe(&e)),
    }
    contexts.insert(module.to_owned(), ctx.clone());
    Ok(ctx)
}

/// A PKCS#11 error as `C_Function: ReturnValue`, short and free of secrets.
fn describe(error: &P11Error) -> String {
    match error {
        P11Error::Pkcs11(rv, function) => format!("C_{function:?} returned {rv:?}"),
        other => other.to_string(),
    }
}

/// What went wrong on the token: `Lost` means open it again and retry; `Pin` means the PIN was refused,
/// and trying it again soon could lock the token.
enum TokenError {
    Lost(String),
    Pin(String),
    Other(String),
}

/// After the token refuses the PIN, no login is tried for this long: real HSMs lock a token after a few
/// wrong PINs, and every sign request would otherwise try again.
const PIN_RETRY_AFTER: Duration = Duration::from_secs(60);

impl From<P11Error> for TokenError {
    fn from(e: P11Error) -> Self {
        if is_lost(&e) { Self::Lost(describe(&e)) } else { Self::Other(describe(&e)) }
    }
}

impl From<String> for TokenError {
    fn from(reason: String) -> Self {
        Self::Other(reason)
    }
}

/// Errors after which the token must be opened again. Invalid key handles belong here: objects are found
/// again after a token comes back, and private objects vanish from view while logged out.
fn is_lost(error: &P11Error) -> bool {
    matches!(
        error,
        P11Error::Pkcs11(
            RvError::SessionHandleInvalid
                | RvError::SessionClosed
                | RvError::DeviceRemoved
                | RvError::TokenNotPresent
                | RvError::UserNotLoggedIn
                | RvError::KeyHandleInvalid
                | RvError::ObjectHandleInvalid
                | RvError::CryptokiNotInitialized
                | RvError::DeviceError,
            _
        )
    )
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

impl Token {
    fn open(settings: &Pkcs11Settings) -> Result<Self, TokenError> {
        let ctx = context(&settings.module)?;
        let slot = find_slot(&ctx, &settings.token_label)?;
        let anchor = ctx.open_ro_session(slot)?;
        let pin = AuthPin::new(settings.pin.read()?.as_str().into());
        // Login is per token and application: a key sharing this token (and, as configuration
        // enforces, its PIN) may have logged in already.
        match anchor.login(UserType::User, Some(&pin)) {
            Ok(()) | Err(P11Error::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
            Err(e) => {
                let reason = format!("login to token {:?} failed: {}", settings.token_label, describe(&e));
                let pin_refused = matches!(
                    e,
                    P11Error::Pkcs11(
                        RvError::PinIncorrect | RvError::PinLocked | RvError::PinExpired | RvError::PinInvalid,
                        _
                    )
                );
                return Err(if pin_refused { TokenError::Pin(reason) } else { TokenError::Other(reason) });
            }
        }
        let keys = find_keys(&anchor, settings)?;
        Ok(Self {
            ctx,
            slot,
            anchor: Mutex::new(anchor),
            idle: Mutex::new(Vec::new()),
            keys: RwLock::new((Instant::now(), keys)),
        })
    }

    /// The key list, re-read from the token when older than `refresh`.
    /// The key list if it was read from the token less than `refresh` ago.
    fn fresh_keys(&self, refresh: Duration) -> Option<Vec<Arc<TokenKey>>> {
        let (loaded, keys) = &*self.keys.read().expect("key list lock");
        (loaded.elapsed() < refresh).then(|| keys.clone())
    }

    /// Reads the key list from the token again (new versions appear here).
    fn reload_keys(&self, settings: &Pkcs11Settings) -> Result<Vec<Arc<TokenKey>>, TokenError> {
        let anchor = self.anchor.lock().expect("anchor session lock");
        anchor.get_session_info()?;
        let keys = find_keys(&anchor, settings)?;
        *self.keys.write().expect("key list lock") = (Instant::now(), keys.clone());
        Ok(keys)
    }

    fn sign(&self, key: &TokenKey, data: &[u8]) -> Result<Vec<u8>, TokenError> {
        let session = match self.idle.lock().expect("session pool lock").pop() {
            Some(s) => s,
            None => self.ctx.open_ro_session(self.slot)?,
        };
        let mechanism = match key.public_key.algorithm {
            Algorithm::EcdsaP256Sha256 => Mechanism::Ecdsa,
            Algorithm::Ed25519 => Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure)),
        };
        let signature = session.sign(&mechanism, key.private, data)?;
        self.idle.lock().expect("session pool lock").push(session);
        Ok(signature)
    }
}

fn find_slot(ctx: &Pkcs11, label: &str) -> Result<Slot, String> {
    let slots = ctx.get_slots_with_token().map_err(|e| describe(&e))?;
    let mut seen = Vec::new();
    for slot in slots {
        let info = ctx.get_token_info(slot).map_err(|e| describe(&e))?;
        if info.label().trim_end() == label {
            return Ok(slot);
        }
        seen.push(info.label().trim_end().to_owned());
    }
    Err(format!("no token labelled {label:?} is present (tokens: {seen:?})"))
}

fn find_keys(session: &Session, settings: &Pkcs11Settings) -> Result<Vec<Arc<TokenKey>>, TokenError> {
    let mut template = vec![Attribute::Class(ObjectClass::PRIVATE_KEY)];
    if let Some(label) = &settings.key_label {
        template.push(Attribute::Label(label.as_bytes().to_vec()));
    }
    if let Some(id) = &settings.key_id {
        template.push(Attribute::Id(id.clone()));
    }
    let handles = session.find_objects(&template)?;
    let mut keys = Vec::new();
    for private in handles {
        let id = match session.get_attributes(private, &[AttributeType::Id])?.pop() {
            Some(Attribute::Id(id)) => id,
            _ => Vec::new(),
        };
        let public_key = public_key_for(session, &id, settings)?;
        keys.push(Arc::new(TokenKey { version: version_of(&id), private, public_key }));
    }
    if keys.is_empty() {
        return Err(TokenError::Other(format!(
            "no private key with label {:?} / id {:?} on token {:?}",
            settings.key_label.as_deref().unwrap_or("*"),
            settings.key_id.as_ref().map(|id| id.iter().map(|b| format!("{b:02x}")).collect::<String>()),
            settings.token_label
        )));
    }
    keys.sort_by_key(|k| k.version);
    keys.dedup_by_key(|k| k.version);
    Ok(keys)
}

/// CKA_ID as a big-endian integer: `--id 01` is version 1, `--id 02` version 2.
fn version_of(id: &[u8]) -> u32 {
    if id.is_empty() || id.len() > 4 {
        return 1;
    }
    id.iter().fold(0u32, |v, b| (v << 8) | u32::from(*b)).max(1)
}

fn public_key_for(session: &Session, id: &[u8], settings: &Pkcs11Settings) -> Result<PublicKey, TokenError> {
    let mut template = vec![Attribute::Class(ObjectClass::PUBLIC_KEY), Attribute::Id(id.to_vec())];
    if let Some(label) = &settings.key_label {
        template.push(Attribute::Label(label.as_bytes().to_vec()));
    }
    let handle = session
        .find_objects(&template)?
        .into_iter()
        .next()
        .ok_or_else(|| "the private key has no public key object with the same id and label".to_owned())?;
    let attributes =
        session.get_attributes(handle, &[AttributeType::KeyType, AttributeType::EcParams, AttributeType::EcPoint])?;
    let mut key_type = None;
    let (mut params, mut point) = (Vec::new(), Vec::new());
    for attribute in attributes {
        match attribute {
            Attribute::KeyType(t) => key_type = Some(t),
            Attribute::EcParams(p) => params = p,
            Attribute::EcPoint(p) => point = p,
            _ => {}
        }
    }
    let key = match key_type {
        Some(KeyType::EC) if params == P256_OID => {
            let sec1 = unwrap_octet_string(&point, 65);
            p256::ecdsa::VerifyingKey::from_sec1_bytes(sec1)
                .map(|k| PublicKey::from_p256(&k))
                .map_err(|e| format!("token's P-256 public point is invalid: {e}"))
        }
        Some(KeyType::EC_EDWARDS) => {
            let raw: [u8; 32] = unwrap_octet_string(&point, 32)
                .try_into()
                .map_err(|_| "token's Ed25519 public point is not 32 bytes".to_owned())?;
            ed25519_dalek::VerifyingKey::from_bytes(&raw)
                .map(|k| PublicKey::from_ed25519(&k))
                .map_err(|e| format!("token's Ed25519 public key is invalid: {e}"))
        }
        other => Err(format!("unsupported key type {other:?}: notarium signs with P-256 or Ed25519")),
    };
    Ok(key?)
}

/// CKA_EC_POINT is a DER OCTET STRING on most tokens and the raw point on some: accept both.
fn unwrap_octet_string(point: &[u8], raw_len: usize) -> &[u8] {
    if point.len() == raw_len + 2 && point[0] == 0x04 && usize::from(point[1]) == raw_len { &point[2..] } else { point }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ids_number_versions() {
        assert_eq!(version_of(&[]), 1);
        assert_eq!(version_of(&[0x01]), 1);
        assert_eq!(version_of(&[0x00, 0x02]), 2);
        assert_eq!(version_of(&[0x01, 0x00]), 256);
        assert_eq!(version_of(&[1, 2, 3, 4, 5]), 1);
    }

    #[test]
    fn ec_points_are_accepted_wrapped_or_raw() {
        let raw = [0x04u8; 65];
        let mut wrapped = vec![0x04, 0x41];
        wrapped.extend_from_slice(&raw);
        assert_eq!(unwrap_octet_string(&wrapped, 65), &raw[..]);
        assert_eq!(unwrap_octet_string(&raw, 65), &raw[..]);
    }

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
