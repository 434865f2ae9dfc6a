//! Verifying a whole Sigstore bundle (v0.1, v0.2, v0.3) against a trusted root: the signer (a Fulcio
//! certificate chain valid at a verified signing time, or a given public key), the transparency-log entries
//! and timestamps, and the signature over the artifact or the DSSE envelope.

use time::OffsetDateTime;

use super::certificate::CertificateIdentity;
use super::timestamp::VerifiedTimestamp;
use super::tlog::VerifiedEntry;
use super::{PkiError, TrustedRoot};
use crate::formats::Digest;
use crate::formats::bundle::Bundle;
use crate::keys::PublicKey;

/// What signed: a certificate from one of the root's authorities (any identity: the policy decides which
/// are allowed), or the given key.
#[derive(Debug, Clone, Copy)]
pub enum Expected<'a> {
    AnyCertificate,
    Key(&'a PublicKey),
}

/// What was signed, for a message signature: the artifact's bytes or its SHA-256. A DSSE bundle's payload
/// is returned for the caller to bind (an in-toto Statement's subjects).
#[derive(Debug, Clone, Copy)]
pub enum Artifact<'a> {
    Bytes(&'a [u8]),
    Digest(&'a Digest),
}

/// The facts a verified bundle establishes.
#[derive(Debug, Clone)]
pub struct VerifiedBundle {
    /// The certificate identity, when a certificate signed.
    pub certificate: Option<CertificateIdentity>,
    pub entries: Vec<VerifiedEntry>,
    pub timestamps: Vec<VerifiedTimestamp>,
    /// The DSSE payload type and payload, for a DSSE bundle.
    pub dsse_payload: Option<(String, Vec<u8>)>,
}

/// Verifies `bundle` against `root` for `expected`, over `artifact` (message signatures), at `now`.
pub fn verify_bundle(
    bundle: &Bundle,
    root: &TrustedRoot,
    expected: Expected<'_>,
    artifact: Artifact<'_>,
    now: OffsetDateTime,
) -> Result<VerifiedBundle, PkiError> {
    let _ = (bundle, root, expected, artifact, now);
    Err(PkiError::Bundle("not yet supported".into()))
}
