//! Key version revocations at rest (`key_revocations`, docs/FORMATS.md §25): written once per key version,
//! never changed, read by every replica on each verify.
//!
//! Owns: every statement on `key_revocations`. Must not touch: what a revocation refuses (`policy::engine`)
//! or its register entry (`register::event`).

use async_trait::async_trait;
use sqlx::Row;

use super::StoreError;
use super::sql::{Backend, sql_bounds};

/// One revoked key version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRevocation {
    pub key_id: String,
    pub key_version: u32,
    /// RFC 3339; `None` refuses every signature the version made.
    pub compromised_at: Option<String>,
    pub compromised_at_ms: Option<i64>,
    pub reason: String,
    pub revoked_at: String,
    pub actor: String,
    /// The `key-revoked` register entry.
    pub log_index: u64,
}

#[async_trait]
pub trait RevocationStore: Send + Sync {
    /// Stores `revocation`; false (and nothing written) when its key version was already revoked.
    async fn insert_key_revocation(&self, revocation: &KeyRevocation) -> Result<bool, StoreError>;
    /// Every revocation, oldest first.
    async fn key_revocations(&self) -> Result<Vec<KeyRevocation>, StoreError>;
}

sql_bounds! { backend [
    #[async_trait]
    impl<B: Backend> RevocationStore for B
] {
        async fn insert_key_revocation(&self, r: &KeyRevocation) -> Result<bool, StoreError> {
            let index = i64::try_from(r.log_index).map_err(|_| StoreError::Query("log index out of range".into()))?;
            let inserted = sqlx::query(
                "INSERT INTO key_revocations (key_id, key_version, compromised_at, compromised_at_ms, reason, \
                 revoked_at, actor, log_index) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                 ON CONFLICT (key_id, key_version) DO NOTHING RETURNING key_id",
            )
            .bind(r.key_id.as_str())
            .bind(i64::from(r.key_version))
            .bind(r.compromised_at.as_deref())
            .bind(r.compromised_at_ms)
            .bind(r.reason.as_str())
            .bind(r.revoked_at.as_str())
            .bind(r.actor.as_str())
            .bind(index)
            .fetch_optional(self.pool())
            .await?;
            Ok(inserted.is_some())
        }

        async fn key_revocations(&self) -> Result<Vec<KeyRevocation>, StoreError> {
            let rows = sqlx::query(
                "SELECT key_id, key_version, compromised_at, compromised_at_ms, reason, revoked_at, actor, log_index \
                 FROM key_revocations ORDER BY log_index",
            )
            .fetch_all(self.pool())
            .await?;
            rows.iter()
                .map(|row| {
                    let version: i64 = row.try_get("key_version")?;
                    let index: i64 = row.try_get("log_index")?;
                    Ok(KeyRevocation {
                        key_id: row.try_get("key_id")?,
                        key_version: u32::try_from(version).map_err(|_| StoreError::Query("key_version".into()))?,
                        compromised_at: row.try_get("compromised_at")?,
                        compromised_at_ms: row.try_get("compromised_at_ms")?,
                        reason: row.try_get("reason")?,
                        revoked_at: row.try_get("revoked_at")?,
                        actor: row.try_get("actor")?,
                        log_index: u64::try_from(index).map_err(|_| StoreError::Query("log_index".into()))?,
                    })
                })
                .collect()
        }
}}
