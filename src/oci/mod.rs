//! Talking to OCI registries: a small [`Registry`] trait over the distribution API, and the two stores
//! built on it: the cosign tag-scheme signature store and the OCI 1.1 referrer store (referrers API, or
//! the fallback tag on registries without it).
//!
//! Owns: registry I/O and the read-modify-write of signature manifests and referrers indexes. Must not
//! touch: keys (it gets signatures, never signs) or the database. Nothing read from a registry is trusted:
//! callers verify.

mod distribution;
mod referrers;
mod signatures;
mod subject_tags;

use async_trait::async_trait;

use crate::formats::Digest;
use crate::formats::referrer::ReferrersIndex;

pub use distribution::{DistributionRegistry, RegistryCredentials};
pub use referrers::{AttachedReferrer, ReferrerStore};
pub use signatures::{SignatureStore, StoredSignature, WrittenSignature};

/// A repository in a registry: `registry` is `host[:port]`, `name` the repository path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Repository {
    pub registry: String,
    pub name: String,
}

/// A manifest as the registry served it.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub bytes: Vec<u8>,
    pub media_type: String,
    pub digest: Digest,
}

/// What the registry answered to a manifest upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutManifest {
    pub digest: Digest,
    /// The registry answered with `OCI-Subject`: it indexed the manifest's `subject` for the referrers API.
    pub subject_indexed: bool,
}

/// The distribution API operations notarium needs. One implementation per file.
#[async_trait]
pub trait Registry: Send + Sync {
    /// The manifest under a tag or digest, or `None` if the registry does not hold it.
    async fn get_manifest(&self, repo: &Repository, reference: &str) -> Result<Option<Manifest>, OciError>;
    /// Uploads a manifest under a tag or its digest.
    async fn put_manifest(
        &self,
        repo: &Repository,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<PutManifest, OciError>;
    /// The referrers of `subject` from the referrers API (every page), or `None` if the registry has no
    /// referrers API (it answers 404; one that has it never does).
    async fn get_referrers(&self, repo: &Repository, subject: &Digest) -> Result<Option<ReferrersIndex>, OciError>;
    async fn get_blob(&self, repo: &Repository, digest: &Digest) -> Result<Vec<u8>, OciError>;
    /// Uploads a blob unless the registry already has it.
    async fn put_blob(&self, repo: &Repository, bytes: &[u8]) -> Result<Digest, OciError>;
}

/// What went wrong talking to a registry.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    #[error("registry {registry} is unreachable: {reason}")]
    Unreachable { registry: String, reason: String },
    #[error(
        "registry {registry} did not answer over TLS ({reason}); plain HTTP is used only for registries on the \
         allow-list ([registries] insecure in notarium.toml, or NOTARIUM_INSECURE_REGISTRIES)"
    )]
    TlsFailed { registry: String, reason: String },
    #[error("registry {registry} refused {operation} with HTTP {status}: {body}")]
    Refused { registry: String, operation: String, status: u16, body: String },
    #[error("registry {registry} denied access to {repository} (HTTP {status})")]
    Unauthorized { registry: String, repository: String, status: u16 },
    #[error("registry {registry} served {what} whose digest is not the one asked for or announced")]
    DigestMismatch { registry: String, what: String },
    #[error("registry {registry} does not hold blob {digest}")]
    BlobNotFound { registry: String, digest: String },
    #[error("{0}")]
    Format(#[from] crate::formats::FormatError),
    #[error("another writer kept changing {tag} in {registry}; gave up after {attempts} attempts")]
    Contended { registry: String, tag: String, attempts: u32 },
}
