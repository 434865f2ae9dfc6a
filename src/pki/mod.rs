//! Public-key infrastructure for judging what others sign: Sigstore trusted roots, X.509 certificate chains
//! (Fulcio, timestamp authorities), embedded certificate-transparency SCTs, RFC 3161 timestamps, Rekor v1 and
//! v2 transparency-log entries, the verification of a whole Sigstore bundle (docs/FORMATS.md §18) and of a Notary
//! Project signature envelope (§20).
//!
//! Owns: the cryptographic checks and the facts they establish (who the certificate names, when it was
//! signed and how that time is known, which log entry holds it). Pure: no I/O and no clock; the caller passes
//! the trusted roots and the present time. Must not touch: policies (which identity is *allowed* is the
//! policy engine's call), registries, the register, key backends.

pub mod bundle;
pub mod certificate;
pub mod issue;
pub mod key;
pub mod notary;
pub mod sct;
pub mod signing_chain;
pub mod timestamp;
pub mod tlog;
pub mod trusted_root;

pub use bundle::{Artifact, Expected, VerifiedBundle, verify_bundle};
pub use certificate::CertificateIdentity;
pub use trusted_root::TrustedRoot;

/// Why a piece of evidence does not verify. Every message names the part that failed, so a verdict's
/// reason can say what was wrong; none echoes attacker-controlled bytes beyond short, escaped fields.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PkiError {
    #[error("trusted root: {0}")]
    TrustedRoot(String),
    #[error("certificate: {0}")]
    Certificate(String),
    #[error("certificate transparency: {0}")]
    Sct(String),
    #[error("timestamp: {0}")]
    Timestamp(String),
    #[error("transparency log: {0}")]
    Tlog(String),
    #[error("bundle: {0}")]
    Bundle(String),
    #[error("signature: {0}")]
    Signature(String),
    #[error("key: {0}")]
    Key(String),
    #[error("Notary Project signature: {0}")]
    Notary(String),
}
