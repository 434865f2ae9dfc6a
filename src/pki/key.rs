//! Verifying keys of trust anchors and signers: ECDSA P-256/P-384 (SHA-256/384), Ed25519 and RSA PKCS#1 v1.5,
//! read from DER SubjectPublicKeyInfo, as Sigstore trusted roots and X.509 certificates carry them.

use super::PkiError;

/// A public key and the signature scheme it is used with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyingKey {
    spki_der: Vec<u8>,
}

impl VerifyingKey {
    /// Reads a DER SubjectPublicKeyInfo; refuses an algorithm or curve this module cannot verify with.
    pub fn from_spki_der(spki_der: &[u8]) -> Result<Self, PkiError> {
        Err(PkiError::Key(format!("{} bytes: not yet supported", spki_der.len())))
    }

    pub fn spki_der(&self) -> &[u8] {
        &self.spki_der
    }

    /// Checks `signature` over `message` (hashed by the scheme: SHA-256 for P-256, SHA-384 for P-384, …).
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), PkiError> {
        let _ = (message, signature);
        Err(PkiError::Key("not yet supported".into()))
    }
}
