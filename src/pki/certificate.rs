//! X.509 certificate chains (x509-cert): a leaf and its intermediates, validated up to a certificate
//! authority of a trusted root at a given time, and the identity a Fulcio certificate names (the SAN, the
//! OIDC issuer and the other Fulcio extensions, OIDs 1.3.6.1.4.1.57264.1.*).

use std::collections::BTreeMap;

use time::OffsetDateTime;

use super::PkiError;
use super::key::VerifyingKey;
use super::trusted_root::CertificateAuthority;

/// Who a Fulcio certificate was issued to, and for how long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateIdentity {
    /// The subject alternative name: a URI (CI workflows) or an e-mail address.
    pub subject: String,
    /// The OIDC issuer (extension 1.3.6.1.4.1.57264.1.8, or the deprecated .1.1).
    pub issuer: String,
    /// Fulcio extensions by their camelCase name (`sourceRepositoryUri`, `buildTrigger`, …).
    pub extensions: BTreeMap<String, String>,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
}

/// A leaf certificate whose chain verified.
#[derive(Debug, Clone)]
pub struct VerifiedCertificate {
    pub key: VerifyingKey,
    pub identity: CertificateIdentity,
    /// The authority that issued it (its name in the trusted root).
    pub authority: String,
    /// The DER of the certificate that issued the leaf (for SCT verification).
    pub issuer_der: Vec<u8>,
}

/// Validates `leaf` (DER) with `intermediates` up to one of `authorities`, at `at`.
pub fn verify_chain(
    leaf: &[u8],
    intermediates: &[Vec<u8>],
    authorities: &[CertificateAuthority],
    at: OffsetDateTime,
) -> Result<VerifiedCertificate, PkiError> {
    let _ = (leaf, intermediates, authorities, at);
    Err(PkiError::Certificate("not yet supported".into()))
}
