//! The database: what notarium has written and when. One [`Store`] trait; its SQL is written once (`sql.rs`)
//! and each database adds a pool and its way of serializing appends (`sqlite*.rs`, `postgres*.rs`).
//!
//! Owns: SQL, migrations and connection pools. Must not touch: HTTP, registries or keys. It stores
//! public facts only (digests, key ids, signatures, actors); no secret is ever passed to it.

mod batch;
mod certificates;
mod key_revocations;
mod postgres;
mod postgres_register;
mod sign_queue;
mod sql;
mod sqlite;
mod sqlite_register;
mod subject_locks;
mod subject_locks_local;
mod subject_locks_postgres;
mod tokens;
mod verdict_claims;
mod witnesses;

use async_trait::async_trait;
use sqlx::SqlSafeStr;
use sqlx::migrate::{Migration, MigrationType, Migrator};

pub use certificates::{CertificateStore, KeyCertificateRecord};
pub use key_revocations::{KeyRevocation, RevocationStore};
pub use postgres::PostgresStore;
pub use sign_queue::{JobSettled, NewSignJob, SignJob, SignQueue};
pub use sqlite::SqliteStore;
pub use subject_locks::{HeldLock, SubjectLocks, TagLock};
pub use subject_locks_local::LocalSubjectLocks;
pub use subject_locks_postgres::PostgresSubjectLocks;
pub use tokens::{TokenRecord, TokenStore};
pub use verdict_claims::{VerdictClaims, VerdictKey};
pub use witnesses::{CosignatureRecord, WitnessStore};

/// What a row in `signatures` records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RecordKind {
    /// A cosign simple-signing signature under the `.sig` tag.
    #[default]
    Signature,
    /// A DSSE envelope under the `.att` tag: `identity` is the predicate type, `payload_digest` the
    /// envelope's digest.
    Attestation,
}

impl RecordKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Signature => "signature",
            Self::Attestation => "attestation",
        }
    }

    fn parse(s: &str) -> Self {
        if s == "attestation" { Self::Attestation } else { Self::Signature }
    }
}

/// A signature (or attestation) about to be written to a registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSignature {
    pub kind: RecordKind,
    pub actor: String,
    pub source_addr: Option<String>,
    pub registry: String,
    pub repository: String,
    pub digest: String,
    pub identity: String,
    pub key_id: String,
    pub key_version: u32,
    pub algorithm: String,
    pub payload_digest: String,
    pub signature_b64: String,
    pub signature_tag: String,
    /// RFC 3339 UTC time of the request.
    pub created_at: String,
    /// What a sign writes for the digest, one per format (empty for an attestation and for rows older than
    /// the column): planned while the row is pending, what the registry holds once it is confirmed.
    pub artifacts: Vec<Artifact>,
}

/// One artifact a sign writes: its format (`cosign`, `bundle`, `notation`) and, for a referrer, the digest of
/// its manifest (known before it is written). The `.sig` tag's manifest changes with every append, so a
/// `cosign` artifact names it only in the register entry (the row's `manifest_digest`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Artifact {
    pub format: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest_digest: Option<String>,
}

/// A recorded signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureRecord {
    pub id: i64,
    pub pending: bool,
    pub signature: NewSignature,
    pub manifest_digest: Option<String>,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database migration failed: {0}")]
    Migration(String),
    #[error("database query failed: {0}")]
    Query(String),
    /// A [`SubjectLocks`] wait ran out: `lock` names the registry, repository and tag.
    #[error("timed out after {waited_ms} ms waiting for {lock}")]
    LockTimeout { lock: String, waited_ms: u128 },
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                Self::Unavailable(e.to_string())
            }
            other => Self::Query(other.to_string()),
        }
    }
}

/// The database seam. The sign path writes a pending row before touching the registry and confirms
/// it after, so a row never claims a signature the registry refused.
#[async_trait]
pub trait Store:
    RegisterStore + TokenStore + CertificateStore + WitnessStore + SignQueue + RevocationStore + VerdictClaims + Send + Sync
{
    async fn ping(&self) -> Result<(), StoreError>;
    /// Records the intent to write a signature; returns the row id.
    async fn begin_signature(&self, signature: &NewSignature) -> Result<i64, StoreError>;
    /// [`begin_signature`](Self::begin_signature) and, in the same transaction, the bytes the signature is
    /// over (`signed`, whose digest is the row's `payload_digest`), kept content-addressed for evidence.
    async fn begin_signed(&self, signature: &NewSignature, signed: &[u8]) -> Result<i64, StoreError>;
    /// The signed bytes recorded under each of `digests` that the database holds (absent ones are left out).
    async fn signed_payloads(&self, digests: &[String]) -> Result<Vec<(String, Vec<u8>)>, StoreError>;
    /// The registry write failed: the row goes, since it claims nothing.
    async fn abandon_signature(&self, id: i64) -> Result<(), StoreError>;
    /// Rows a crash left between intent and confirmation.
    async fn pending_signatures(&self) -> Result<Vec<SignatureRecord>, StoreError>;
    /// Every row for `digest`, oldest first.
    async fn signatures_of(&self, digest: &str) -> Result<Vec<SignatureRecord>, StoreError>;
    /// How many rows exist, pending or not.
    async fn count_signatures(&self) -> Result<i64, StoreError>;
    /// The locks that serialize writers of one subject's tags among every process on this database.
    fn subject_locks(&self) -> std::sync::Arc<dyn SubjectLocks>;
}

/// One entry for the register and what must change with it, in the same transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Append {
    pub entry: Vec<u8>,
    pub effect: Effect,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    None,
    /// The registry holds signature row `id` in manifest `manifest_digest`: the row turns 'stored' (and is
    /// written again if a reconciling peer removed it meanwhile), so no stored signature goes unlogged.
    ConfirmSignature {
        id: i64,
        signature: Box<NewSignature>,
        manifest_digest: String,
    },
    /// Append only if nothing was appended under `key` before (retried deliveries are logged once).
    Once {
        key: String,
    },
}

impl Append {
    pub fn plain(entry: Vec<u8>) -> Self {
        Self { entry, effect: Effect::None }
    }
}

/// Where an [`Append`] landed: its index, and false when an earlier append under the same key holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub index: u64,
    pub new: bool,
}

/// The right edge of a committed tree: its size and the hashes of [`crate::merkle::frontier`]`(size)`, left to
/// right. They fix the tree's root, and are what the next append starts from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frontier {
    pub size: u64,
    pub hashes: Vec<[u8; 32]>,
}

impl Frontier {
    /// The root hash of the tree of `size` entries.
    pub fn root(&self) -> [u8; 32] {
        if self.hashes.is_empty() { crate::merkle::empty_root() } else { crate::merkle::fold_pieces(&self.hashes) }
    }
}

/// The register's storage: entries as leaves and the hashes of perfect subtrees. A batch is one
/// transaction: all in or all out, with its nodes and effects, durable when the call returns.
#[async_trait]
pub trait RegisterStore: Send + Sync {
    /// Appends the batch in order as the next leaves; returns where each landed and the new tree size.
    async fn append_batch(&self, batch: &[Append]) -> Result<(Vec<Appended>, u64), StoreError>;
    /// As [`Self::append_batch`], for a writer that remembers the tree's right edge as its last batch left it
    /// (`known`): when the size read inside the transaction is still `known`'s, its nodes are not read again
    /// (any other writer's append, another replica or process, changes the size and they are). Returns where
    /// each append landed and the right edge after the batch, from which its root follows.
    async fn append_batch_from(
        &self,
        batch: &[Append],
        known: Option<&Frontier>,
    ) -> Result<(Vec<Appended>, Frontier), StoreError> {
        let _ = known;
        let (placed, size) = self.append_batch(batch).await?;
        let hashes = self.node_hashes(&crate::merkle::frontier(size)).await?;
        Ok((placed, Frontier { size, hashes }))
    }
    async fn tree_size(&self) -> Result<u64, StoreError>;
    /// The stored hashes of perfect subtrees, in the order asked.
    async fn node_hashes(&self, nodes: &[crate::merkle::NodeId]) -> Result<Vec<[u8; 32]>, StoreError>;
    /// The stored hashes of the nodes `(level, i)` for `i` in `indexes`, in order (one range read).
    async fn level_hashes(&self, level: u32, indexes: std::ops::Range<u64>) -> Result<Vec<[u8; 32]>, StoreError>;
    /// Entries `[start, end)` with their indexes.
    async fn entries(&self, start: u64, end: u64) -> Result<Vec<(u64, Vec<u8>)>, StoreError>;
    /// The entries `filter` matches with an index below `before` (all when `None`), newest first, at most
    /// `limit`: one range scan of the search index (`log_index`, brought up to the tree size first).
    async fn search(&self, filter: &SearchFilter, before: Option<u64>, limit: u32) -> Result<Vec<Found>, StoreError>;
}

/// What a register search matches, every field optional and all of them combined with AND: each compares
/// with the field `entry_fields` reads from an entry, `from_ms` inclusive and `to_ms` exclusive.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchFilter {
    pub kind: Option<String>,
    pub actor: Option<String>,
    pub registry: Option<String>,
    pub repository: Option<String>,
    pub digest: Option<String>,
    pub key: Option<String>,
    pub key_version: Option<i64>,
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
}

/// An entry a search found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub index: u64,
    pub entry: Vec<u8>,
    pub leaf_hash: crate::merkle::Hash,
}

/// Opens the store a database URL names: `sqlite:…`, `postgres://…` or `postgresql://…`.
pub async fn open(url: &str) -> Result<std::sync::Arc<dyn Store>, StoreError> {
    if url.starts_with("sqlite:") {
        return Ok(std::sync::Arc::new(SqliteStore::open(url).await?));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(std::sync::Arc::new(PostgresStore::open(url).await?));
    }
    Err(StoreError::Unavailable(format!(
        "unsupported database URL scheme in {:?}: use sqlite:, postgres:// or postgresql://",
        url.split(':').next().unwrap_or_default()
    )))
}

/// The migrations in `migrations/<backend>/`, embedded in the binary. Every backend's folder holds the same
/// numbered steps, so one list names them for all.
macro_rules! embedded_migrations {
    ($backend:literal) => {
        $crate::store::embedded_migrator([
            (1, "signatures", include_str!(concat!("../../migrations/", $backend, "/0001_signatures.sql"))),
            (2, "register", include_str!(concat!("../../migrations/", $backend, "/0002_register.sql"))),
            (3, "dedupe", include_str!(concat!("../../migrations/", $backend, "/0003_dedupe.sql"))),
            (4, "attestations", include_str!(concat!("../../migrations/", $backend, "/0004_attestations.sql"))),
            (5, "tokens", include_str!(concat!("../../migrations/", $backend, "/0005_tokens.sql"))),
            (6, "artifacts", include_str!(concat!("../../migrations/", $backend, "/0006_artifacts.sql"))),
            (7, "key certificates", include_str!(concat!("../../migrations/", $backend, "/0007_key_certificates.sql"))),
            (8, "log index", include_str!(concat!("../../migrations/", $backend, "/0008_log_index.sql"))),
            (9, "signed payloads", include_str!(concat!("../../migrations/", $backend, "/0009_signed_payloads.sql"))),
            (
                10,
                "witness cosignatures",
                include_str!(concat!("../../migrations/", $backend, "/0010_witness_cosignatures.sql")),
            ),
            (11, "key revocations", include_str!(concat!("../../migrations/", $backend, "/0011_key_revocations.sql"))),
            (12, "sign queue", include_str!(concat!("../../migrations/", $backend, "/0012_sign_queue.sql"))),
            (
                13,
                "verdict attachments",
                include_str!(concat!("../../migrations/", $backend, "/0013_verdict_attachments.sql")),
            ),
        ])
    };
}
use embedded_migrations;

/// A migrator over embedded migrations, given as (version, description, SQL).
fn embedded_migrator<const N: usize>(migrations: [(i64, &'static str, &'static str); N]) -> Migrator {
    Migrator::with_migrations(
        migrations
            .into_iter()
            .map(|(version, description, sql)| {
                Migration::new(version, description.into(), MigrationType::Simple, sql.into_sql_str(), false)
            })
            .collect(),
    )
}
