//! Sigstore `TrustedRoot` documents (media types v0.1 and v0.2): certificate authorities, transparency logs
//! (Rekor v1 and v2), CT logs and timestamp authorities, each with its validity window. The public-good
//! production root ships with the crate (`data/sigstore/production-trusted_root.json`).

use time::OffsetDateTime;

use super::PkiError;
use super::key::VerifyingKey;

/// A validity window; `end` is inclusive, `None` means still valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    pub start: OffsetDateTime,
    pub end: Option<OffsetDateTime>,
}

/// A Fulcio-like certificate authority or a timestamp authority.
#[derive(Debug, Clone)]
pub struct CertificateAuthority {
    /// The `uri` (or subject) it is known by, for reasons.
    pub name: String,
    /// DER certificates, as the trusted root lists them (issuing certificate first, root last).
    pub certificates: Vec<Vec<u8>>,
    pub validity: Validity,
}

/// A Rekor log or a CT log.
#[derive(Debug, Clone)]
pub struct TransparencyLog {
    pub base_url: String,
    /// The log id (SHA-256 of the key's DER for Rekor v1 and CT logs) entries name the log by.
    pub log_id: Vec<u8>,
    pub key: VerifyingKey,
    pub validity: Validity,
}

#[derive(Debug, Clone, Default)]
pub struct TrustedRoot {
    pub certificate_authorities: Vec<CertificateAuthority>,
    pub tlogs: Vec<TransparencyLog>,
    pub ctlogs: Vec<TransparencyLog>,
    pub timestamp_authorities: Vec<CertificateAuthority>,
}

impl TrustedRoot {
    pub fn parse(bytes: &[u8]) -> Result<Self, PkiError> {
        Err(PkiError::TrustedRoot(format!("{} bytes: not yet supported", bytes.len())))
    }
}
