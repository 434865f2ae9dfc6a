//! The locks that serialize the writers of one subject's tags (`.sig`, `.att`, the referrers fallback tag)
//! across every notarium process sharing the database: the [`SubjectLocks`] seam, the [`TagLock`] it takes and
//! the [`HeldLock`] it hands back. In process on SQLite (`subject_locks_local.rs`), a PostgreSQL advisory lock
//! on PostgreSQL (`subject_locks_postgres.rs`).
//!
//! Owns: the lock seam and its key. Must not touch: registries or what a tag holds (the caller's
//! read-merge-write runs under the lock).

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use sha2::{Digest as _, Sha256};

use super::StoreError;

/// The lock on one tag of one subject: `tag` (`sha256-<hex>.sig`, `.att`, or the fallback tag
/// `sha256-<hex>`) names the subject's digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TagLock {
    pub registry: String,
    pub repository: String,
    pub tag: String,
}

impl TagLock {
    /// 64 bits of SHA-256 over the three names: the key replicas agree on without a table.
    pub fn key(&self) -> u64 {
        let mut hash = Sha256::new();
        for part in [&self.registry, &self.repository, &self.tag] {
            hash.update(part.as_bytes());
            hash.update([0]);
        }
        let digest = hash.finalize();
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        u64::from_be_bytes(first)
    }
}

impl fmt::Display for TagLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the lock on {}/{}:{}", self.registry, self.repository, self.tag)
    }
}

/// Hands out [`TagLock`]s: one holder at a time among every process the backend reaches.
#[async_trait]
pub trait SubjectLocks: Send + Sync {
    /// Waits at most `wait` for `lock` ([`StoreError::LockTimeout`] after that, naming it). The lock is held
    /// until [`HeldLock::release`], or until the guard is dropped (an error path or a cancelled request).
    async fn acquire(&self, lock: &TagLock, wait: Duration) -> Result<HeldLock, StoreError>;
}

/// A held [`TagLock`]; dropping it releases the lock too, without waiting for the database to confirm.
#[must_use = "the lock is released when this is dropped"]
pub struct HeldLock(pub(super) Box<dyn Release>);

impl HeldLock {
    /// Releases the lock and waits until the backend has let it go.
    pub async fn release(self) {
        self.0.release().await;
    }
}

/// How a backend lets a held lock go.
#[async_trait]
pub(super) trait Release: Send {
    async fn release(self: Box<Self>);
}
