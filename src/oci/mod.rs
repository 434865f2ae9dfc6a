//! Talking to OCI registries: a small [`Registry`] trait over the distribution API, and the two stores
//! built on it: the cosign tag-scheme signature layout and the OCI 1.1 referrers layout (referrers API, or
//! the fallback tag on registries without it). Also [`Outbound`], HTTP to URLs that are not registries (a
//! timestamp authority, a CRL distribution point) under the same egress rules.
//!
//! Owns: registry I/O and the read-modify-write of signature manifests and referrers indexes. Must not
//! touch: keys (it gets signatures, never signs) or the database (the per-tag locks it holds come from the
//! store behind the `store::SubjectLocks` trait). Nothing read from a registry is trusted:
//! callers verify.

mod credential_helper;
pub mod credentials;
mod distribution;
mod egress;
#[cfg(test)]
mod fake_registry;
mod immutable;
mod memory;
mod outbound;
mod referrers;
mod signatures;
mod subject_tags;

use async_trait::async_trait;
use futures_util::future::{BoxFuture, FutureExt as _};
use futures_util::stream::StreamExt as _;

use crate::formats::Digest;
use crate::formats::referrer::ReferrersIndex;

pub use credentials::{CredentialMap, CredentialsError};
pub use distribution::{DistributionRegistry, RegistryCredentials, RegistryLimits};
pub use egress::{EgressRules, Refusal, internal_kind};
pub use immutable::{ImmutableContent, RememberingRegistry};
pub use outbound::{Outbound, OutboundError};
pub use referrers::{AttachedReferrer, HeldIndex, NotaryEnvelope, ReferredEvidence, ReferrerLayout};
pub use signatures::{FoundSignature, HeldSignatures, StoredAttestation, TagLayout, WrittenSignature};

/// What a bounded read found: the items within the caps, and why each other one was skipped.
#[derive(Debug, Clone)]
pub struct Gathered<T> {
    pub items: Vec<T>,
    /// One sentence per skipped item (or run of items), in notarium's words: never a registry's text.
    pub skipped: Vec<String>,
}

impl<T> Default for Gathered<T> {
    fn default() -> Self {
        Self { items: Vec::new(), skipped: Vec::new() }
    }
}

impl<T> Gathered<T> {
    /// Nothing read, for one reason.
    pub fn skipped(why: String) -> Self {
        Self { items: Vec::new(), skipped: vec![why] }
    }

    /// Adds `other`'s items and skips after this one's.
    pub fn extend(&mut self, other: Self) {
        self.items.extend(other.items);
        self.skipped.extend(other.skipped);
    }
}

/// How many blobs (or referrer manifests) of one subject are read at once.
const READS_AT_ONCE: usize = 8;

/// The outputs of `reads`, in order, running a few at a time. Boxed futures, so that no closure that
/// made them is held across an await (which would make the caller's future not `Send`).
pub(crate) async fn a_few_at_a_time<T>(reads: Vec<BoxFuture<'_, T>>) -> Vec<T> {
    futures_util::stream::iter(reads).buffered(READS_AT_ONCE).collect().await
}

/// The blobs `digests` name, each at most `max_bytes`, in order, a few at a time; a digest that does not
/// parse is a [`OciError::Format`] in its place.
pub(crate) async fn read_blobs(
    registry: &dyn Registry,
    repo: &Repository,
    digests: Vec<String>,
    max_bytes: usize,
) -> Vec<Result<Vec<u8>, OciError>> {
    let reads = digests
        .into_iter()
        .map(|digest| async move { registry.get_blob(repo, &Digest::parse(&digest)?, max_bytes).await }.boxed())
        .collect();
    a_few_at_a_time(reads).await
}

/// Why `what` (a blob or manifest) was skipped, in notarium's words: the error may carry a registry's text.
pub(crate) fn skip_reason(what: &str, error: &OciError) -> String {
    let why = match error {
        OciError::BlobNotFound { .. } => "blob not found".to_owned(),
        OciError::TooLarge { limit, .. } => format!("larger than the limit of {limit} bytes"),
        OciError::DigestMismatch { .. } => "what the registry served does not match its digest".to_owned(),
        OciError::Format(_) => "its digest is malformed".to_owned(),
        OciError::NotAllowed { rule, .. } => format!("not fetched: {rule}"),
        _ => "the registry did not serve it".to_owned(),
    };
    format!("{what}: {why}")
}

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
    /// The referrers of `subject` from the referrers API (every page), or `None` if the registry has no usable
    /// referrers API: it answers 404 (one that has the API never does), 429 or a redirect to another origin,
    /// or serves a body that is not an image index (GHCR).
    async fn get_referrers(&self, repo: &Repository, subject: &Digest) -> Result<Option<ReferrersIndex>, OciError>;
    /// The blob `digest`, checked against its digest; [`OciError::TooLarge`] as soon as it passes
    /// `max_bytes` (announced or read), without reading further.
    async fn get_blob(&self, repo: &Repository, digest: &Digest, max_bytes: usize) -> Result<Vec<u8>, OciError>;
    /// Uploads a blob unless the registry already has it.
    async fn put_blob(&self, repo: &Repository, bytes: &[u8]) -> Result<Digest, OciError>;
    /// Opens, ahead of the uploads that will take them, upload sessions for `new` blobs and for each of
    /// `maybe_known` not known to be in `repo` already, where the registry needs a session per upload
    /// (a sign opens them while it reads the image). A session holds no data until its blob is put:
    /// nothing a reader sees is written. Returns how many were opened; failures are only logged.
    /// (Deliberately without a default: a wrapper that forgot to pass it on would open nothing, silently.)
    async fn open_uploads(&self, repo: &Repository, new: usize, maybe_known: &[Digest]) -> usize;
    /// Cancels up to `count` of the sessions [`Self::open_uploads`] opened in `repo` and no upload took.
    async fn cancel_uploads(&self, repo: &Repository, count: usize);
}

/// What went wrong talking to a registry. Every message is in notarium's words and safe to show a caller:
/// what a registry answered (its body, a TLS alert, a resolved address) is logged where it happens, never
/// carried here, except `reason`, which only the local `notarium verify` prints.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    #[error("registry {registry} is not contacted: {rule}")]
    NotAllowed { registry: String, rule: String },
    #[error("registry {registry} could not be reached")]
    Unreachable { registry: String, reason: String },
    #[error(
        "registry {registry} could not be reached over HTTPS; plain HTTP is spoken only to registries listed in \
         [registries] insecure (or NOTARIUM_INSECURE_REGISTRIES)"
    )]
    TlsFailed { registry: String, reason: String },
    #[error("registry {registry} answered status {status}{} to {operation}", codes_note(.codes))]
    Refused { registry: String, operation: String, status: u16, codes: Vec<String> },
    #[error("registry {registry} denied access to {repository} (HTTP {status})")]
    Unauthorized { registry: String, repository: String, status: u16 },
    #[error("registry {registry} served {what} whose digest is not the one asked for or announced")]
    DigestMismatch { registry: String, what: String },
    #[error("registry {registry} does not hold blob {digest}")]
    BlobNotFound { registry: String, digest: String },
    #[error("registry {registry} served {what} larger than the limit of {limit} bytes")]
    TooLarge { registry: String, what: String, limit: usize },
    #[error("the registry served {}", malformed_what(.0))]
    Format(#[from] crate::formats::FormatError),
    #[error("another writer kept changing {tag} in {registry}; gave up after {attempts} attempts")]
    Contended { registry: String, tag: String, attempts: u32 },
    #[error("timed out after {waited_ms} ms waiting for the lock on tag {tag} in {registry}; another writer holds it")]
    LockTimeout { registry: String, tag: String, waited_ms: u128 },
    /// The database that serializes writers of a tag did not answer; `reason` is the database's error.
    #[error("the lock on tag {tag} in {registry} could not be taken: the database is unavailable")]
    LockUnavailable { registry: String, tag: String, reason: String },
}

/// The registry's error codes (distribution's, see `distribution.rs`), as ` (CODE, …)`.
fn codes_note(codes: &[String]) -> String {
    if codes.is_empty() { String::new() } else { format!(" ({})", codes.join(", ")) }
}

/// What a registry served malformed, without the parser's words (they can quote what it served).
fn malformed_what(error: &crate::formats::FormatError) -> String {
    use crate::formats::FormatError;
    match error {
        FormatError::MalformedDocument { what, .. } => format!("a malformed {what}"),
        FormatError::MalformedDigest(_) => "a malformed digest".to_owned(),
        FormatError::TooManySignatures { count, limit } => {
            format!("a DSSE envelope of {count} signatures; the limit is {limit}")
        }
        _ => "a malformed document".to_owned(),
    }
}
