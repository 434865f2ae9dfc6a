//! Witness cosignatures on the register's checkpoints, at rest: one row per verified line, append-only.
//!
//! Owns: every statement on `witness_cosignatures`. Must not touch: verifying cosignatures (`formats`) or
//! talking to witnesses (`service`); rows arrive already verified.

use async_trait::async_trait;
use sqlx::Row;

use super::StoreError;
use super::sql::{Backend, sql_bounds};

/// One stored cosignature line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CosignatureRecord {
    pub tree_size: u64,
    pub root_hash: [u8; 32],
    /// The witness's key name.
    pub witness: String,
    /// The verifier key the line verified against.
    pub vkey: String,
    /// The cosignature's own timestamp (Unix seconds).
    pub cosigned_at: i64,
    /// The note signature line, final newline included.
    pub line: String,
    /// RFC 3339 UTC.
    pub received_at: String,
}

#[async_trait]
pub trait WitnessStore: Send + Sync {
    /// Adds verified cosignature lines.
    async fn add_cosignatures(&self, records: &[CosignatureRecord]) -> Result<(), StoreError>;
    /// The cosignatures of the tree of `tree_size` entries, oldest first.
    async fn cosignatures(&self, tree_size: u64) -> Result<Vec<CosignatureRecord>, StoreError>;
    /// The largest tree size with a cosignature by `witness` (its key name), if any.
    async fn latest_cosigned_size(&self, witness: &str) -> Result<Option<u64>, StoreError>;
}

fn size_i64(size: u64) -> Result<i64, StoreError> {
    i64::try_from(size).map_err(|_| StoreError::Query(format!("tree size {size} is out of range")))
}

sql_bounds! { backend [
    #[async_trait]
    impl<B: Backend> WitnessStore for B
] {
        async fn add_cosignatures(&self, records: &[CosignatureRecord]) -> Result<(), StoreError> {
            for r in records {
                sqlx::query(
                    "INSERT INTO witness_cosignatures (tree_size, root_hash, witness, vkey, cosigned_at, line, received_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(size_i64(r.tree_size)?)
                .bind(r.root_hash.to_vec())
                .bind(r.witness.as_str())
                .bind(r.vkey.as_str())
                .bind(r.cosigned_at)
                .bind(r.line.as_str())
                .bind(r.received_at.as_str())
                .execute(self.pool())
                .await?;
            }
            Ok(())
        }

        async fn cosignatures(&self, tree_size: u64) -> Result<Vec<CosignatureRecord>, StoreError> {
            let rows = sqlx::query(
                "SELECT tree_size, root_hash, witness, vkey, cosigned_at, line, received_at FROM witness_cosignatures \
                 WHERE tree_size = $1 ORDER BY id",
            )
            .bind(size_i64(tree_size)?)
            .fetch_all(self.pool())
            .await?;
            rows.iter().map(record).collect()
        }

        async fn latest_cosigned_size(&self, witness: &str) -> Result<Option<u64>, StoreError> {
            let row = sqlx::query(
                "SELECT tree_size FROM witness_cosignatures WHERE witness = $1 ORDER BY tree_size DESC LIMIT 1",
            )
            .bind(witness)
            .fetch_optional(self.pool())
            .await?;
            Ok(row.and_then(|row| u64::try_from(row.get::<i64, _>("tree_size")).ok()))
        }
}}

sql_bounds! { row [
    fn record<R: Row>(row: &R) -> Result<CosignatureRecord, StoreError>
] {
        let root: Vec<u8> = row.get("root_hash");
        let tree_size: i64 = row.get("tree_size");
        Ok(CosignatureRecord {
            tree_size: u64::try_from(tree_size).map_err(|_| StoreError::Query("a negative tree size".into()))?,
            root_hash: root.try_into().map_err(|_| StoreError::Query("a root hash that is not 32 bytes".into()))?,
            witness: row.get("witness"),
            vkey: row.get("vkey"),
            cosigned_at: row.get("cosigned_at"),
            line: row.get("line"),
            received_at: row.get("received_at"),
        })
}}
