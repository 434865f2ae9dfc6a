//! The open token: its anchor session (which holds the login), the pool of idle signing sessions, and
//! the key list it caches until `refresh`.

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use cryptoki::context::Pkcs11;
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::session::Session;
use cryptoki::slot::Slot;

use super::TokenError;
use super::login::{Pkcs11Settings, context, find_slot, login};
use super::lookup::{TokenKey, find_keys};
use crate::keys::Algorithm;

/// An opened, logged-in token with its key list and idle sessions.
pub(super) struct Token {
    ctx: Pkcs11,
    slot: Slot,
    anchor: Mutex<Session>,
    idle: Mutex<Vec<Session>>,
    keys: RwLock<(Instant, Vec<Arc<TokenKey>>)>,
}

impl Token {
    pub(super) fn open(settings: &Pkcs11Settings) -> Result<Self, TokenError> {
        let ctx = context(&settings.module)?;
        let slot = find_slot(&ctx, &settings.token_label)?;
        let anchor = ctx.open_ro_session(slot)?;
        login(&anchor, settings)?;
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
    pub(super) fn fresh_keys(&self, refresh: Duration) -> Option<Vec<Arc<TokenKey>>> {
        let (loaded, keys) = &*self.keys.read().expect("key list lock");
        (loaded.elapsed() < refresh).then(|| keys.clone())
    }

    /// Reads the key list from the token again (new versions appear here).
    pub(super) fn reload_keys(&self, settings: &Pkcs11Settings) -> Result<Vec<Arc<TokenKey>>, TokenError> {
        let anchor = self.anchor.lock().expect("anchor session lock");
        anchor.get_session_info()?;
        let keys = find_keys(&anchor, settings)?;
        *self.keys.write().expect("key list lock") = (Instant::now(), keys.clone());
        Ok(keys)
    }

    pub(super) fn sign(&self, key: &TokenKey, data: &[u8]) -> Result<Vec<u8>, TokenError> {
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
