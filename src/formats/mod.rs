//! Pure data and byte-exact encodings: image references, digests, the cosign simple-signing payload, the
//! cosign tag-scheme manifests (`.sig`, `.att`), attestations (DSSE envelopes, in-toto Statements,
//! Sigstore bundles), OCI 1.1 referrer manifests and referrers indexes, C2SP checkpoints in signed notes, and
//! Kubernetes AdmissionReviews.
//!
//! Owns: how these things look on the wire. Must not touch: the network, the database or any private key
//! (checking a DSSE envelope against a public key is pure and lives here): everything here is a function
//! of its inputs, so it can be golden-tested against third-party bytes.

pub mod admission;
pub(crate) mod base64_bytes;
pub mod bundle;
pub mod canonical;
pub mod checkpoint;
pub mod cosign_layer;
pub mod cosignature;
pub mod digest;
pub mod dsse;
pub mod image_index;
pub mod in_toto;
pub mod notary;
pub mod reference;
pub mod referrer;
pub mod signature_manifest;
pub mod simple_signing;
pub mod tile;
pub mod verdict;
pub mod witness;

pub use digest::Digest;
pub use reference::{ImageReference, canonical_pattern, canonical_registry};

/// Why some bytes or a string are not the format they claim to be.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FormatError {
    #[error("malformed digest {0:?}: expected sha256: followed by 64 lowercase hex digits")]
    MalformedDigest(String),
    #[error("image reference {0:?} has no registry host: write it as host[:port]/repository[:tag][@digest]")]
    MissingRegistryHost(String),
    #[error("image reference {reference:?} is malformed: {reason}")]
    MalformedReference { reference: String, reason: String },
    #[error("registry host {host:?} is malformed: {reason}")]
    MalformedRegistryHost { host: String, reason: String },
    #[error("malformed {what}: {reason}")]
    MalformedDocument { what: &'static str, reason: String },
    #[error("the DSSE envelope has {count} signatures; the limit is {limit}")]
    TooManySignatures { count: usize, limit: usize },
}

impl FormatError {
    pub(crate) fn malformed(what: &'static str, reason: impl Into<String>) -> Self {
        Self::MalformedDocument { what, reason: reason.into() }
    }
}
