//! RFC 3161 timestamp tokens (a CMS SignedData over a TSTInfo) checked against the timestamp authorities of
//! a trusted root: the message imprint covers the given signature, the signer chains to an authority valid
//! at the time stamped.

use time::OffsetDateTime;

use super::PkiError;
use super::trusted_root::CertificateAuthority;

/// A time a timestamp authority vouched for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedTimestamp {
    pub time: OffsetDateTime,
    pub authority: String,
}

/// Verifies `token` (DER `TimeStampResponse` or `TimeStampToken`) over `signature`.
pub fn verify_timestamp(
    token: &[u8],
    signature: &[u8],
    authorities: &[CertificateAuthority],
) -> Result<VerifiedTimestamp, PkiError> {
    let _ = (token, signature, authorities);
    Err(PkiError::Timestamp("not yet supported".into()))
}
