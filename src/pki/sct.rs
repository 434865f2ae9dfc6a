//! Signed certificate timestamps embedded in a certificate (RFC 6962 §3.3), checked against the CT log keys
//! of a trusted root.

use super::PkiError;
use super::trusted_root::TransparencyLog;

/// Verifies the SCTs embedded in `leaf` (DER), issued by `issuer` (DER); at least one must verify against
/// `logs`. Returns how many did.
pub fn verify_embedded_scts(leaf: &[u8], issuer: &[u8], logs: &[TransparencyLog]) -> Result<usize, PkiError> {
    let _ = (leaf, issuer, logs);
    Err(PkiError::Sct("not yet supported".into()))
}
