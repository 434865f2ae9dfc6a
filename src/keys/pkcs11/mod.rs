//! The `pkcs11` backend: keys on an HSM or token through PKCS#11 (cryptoki). The private key never
//! leaves the token: notarium holds object handles and gets signatures back.
//!
//! Versions: every private key with the configured label (or id) is one version of the key, numbered by
//! its CKA_ID read as a big-endian integer; rotating means generating a key pair with the same label and
//! the next id. The key list is re-read after `refresh`, so a new key on the token is picked up without
//! a restart. Sessions are pooled (one per concurrent sign, bounded) and every call runs on the blocking
//! pool. A lost session, login or token is recovered by opening the token again, once per sign.
//!
//! Files: `login.rs` (settings, module, token and PIN), `session.rs` (the open token and its session pool),
//! `lookup.rs` (the key's versions and public keys), `signer.rs` (signing and recovery).

mod login;
mod lookup;
mod session;
mod signer;

use cryptoki::error::{Error as P11Error, RvError};

pub use login::Pkcs11Settings;
pub use signer::Pkcs11Signer;

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
