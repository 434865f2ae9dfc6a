//! Pure data and byte-exact encodings: image references, digests, the cosign simple-signing payload, the
//! cosign tag-scheme signature manifest, and C2SP checkpoints in signed notes.
//!
//! Owns: how these things look on the wire. Must not touch: the network, the database or any key:
//! everything here is a function of its inputs, so it can be golden-tested against third-party bytes.

pub mod canonical;
pub mod checkpoint;
pub mod digest;
pub mod reference;
pub mod signature_manifest;
pub mod simple_signing;

pub use digest::Digest;
pub use reference::ImageReference;

/// Why some bytes or a string are not the format they claim to be.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FormatError {
    #[error("malformed digest {0:?}: expected sha256: followed by 64 lowercase hex digits")]
    MalformedDigest(String),
    #[error("image reference {0:?} has no registry host: write it as host[:port]/repository[:tag][@digest]")]
    MissingRegistryHost(String),
    #[error("image reference {reference:?} is malformed: {reason}")]
    MalformedReference { reference: String, reason: String },
    #[error("malformed {what}: {reason}")]
    MalformedDocument { what: &'static str, reason: String },
}
