//! Reaching the token: the module loaded once per process, the token found by label, the user logged in
//! with the configured PIN, and the pause after a refused PIN.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as P11Error, RvError};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;

use super::{TokenError, describe};
use crate::keys::SecretRef;

/// How to find the key on its token.
#[derive(Debug, Clone)]
pub struct Pkcs11Settings {
    pub module: PathBuf,
    pub token_label: String,
    pub key_label: Option<String>,
    pub key_id: Option<Vec<u8>>,
    pub pin: SecretRef,
    pub max_sessions: usize,
    pub refresh: Duration,
}

/// After the token refuses the PIN, no login is tried for this long: real HSMs lock a token after a few
/// wrong PINs, and every sign request would otherwise try again.
pub(super) const PIN_RETRY_AFTER: Duration = Duration::from_secs(60);

/// C_Initialize may run once per module per process, so contexts are shared by module path.
pub(super) fn context(module: &Path) -> Result<Pkcs11, String> {
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

pub(super) fn find_slot(ctx: &Pkcs11, label: &str) -> Result<Slot, String> {
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

/// Logs `session` in with the configured PIN. Login is per token and application: a key sharing this
/// token (and, as configuration enforces, its PIN) may have logged in already.
pub(super) fn login(session: &Session, settings: &Pkcs11Settings) -> Result<(), TokenError> {
    let pin = AuthPin::new(settings.pin.read()?.as_str().into());
    match session.login(UserType::User, Some(&pin)) {
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
    Ok(())
}
