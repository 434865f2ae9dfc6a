//! [`LogStore`] on SQLite: the register's entries and perfect-subtree hashes (`migrations/sqlite/0002`).

use async_trait::async_trait;
use sqlx::{QueryBuilder, Row, Sqlite, Transaction};

use std::collections::HashMap;

use super::batch::{LogTx, ROWS_PER_INSERT, append_batch_in};
use super::{Append, Appended, LogStore, NewSignature, SqliteStore, StoreError};
use crate::register::merkle::{Hash, NodeId};

pub(super) fn to_hash(bytes: Vec<u8>) -> Result<Hash, StoreError> {
    bytes.try_into().map_err(|_| StoreError::Query("a stored hash is not 32 bytes".into()))
}

fn missing_node((level, index): NodeId) -> StoreError {
    StoreError::Query(format!("register node {level}/{index} is missing"))
}

/// A write transaction begun with `BEGIN IMMEDIATE`, so it holds SQLite's one write lock throughout.
pub(super) struct SqliteTx<'a, 'c>(pub &'a mut Transaction<'c, Sqlite>);

impl LogTx for SqliteTx<'_, '_> {
    async fn size(&mut self) -> Result<u64, StoreError> {
        let size: i64 = sqlx::query("SELECT COALESCE(MAX(idx) + 1, 0) AS size FROM log_entries")
            .fetch_one(&mut **self.0)
            .await?
            .get("size");
        Ok(size as u64)
    }

    async fn node(&mut self, id: NodeId) -> Result<Hash, StoreError> {
        let row = sqlx::query("SELECT hash FROM log_nodes WHERE level = ? AND idx = ?")
            .bind(i64::from(id.0))
            .bind(id.1 as i64)
            .fetch_optional(&mut **self.0)
            .await?
            .ok_or_else(|| missing_node(id))?;
        to_hash(row.get("hash"))
    }

    async fn insert_entries(&mut self, first: u64, entries: &[(&[u8], Hash)]) -> Result<(), StoreError> {
        let mut insert = QueryBuilder::<Sqlite>::new("INSERT INTO log_entries (idx, entry, leaf_hash) ");
        insert.push_values(entries.iter().enumerate(), |mut row, (offset, (entry, leaf))| {
            row.push_bind((first + offset as u64) as i64).push_bind(entry.to_vec()).push_bind(leaf.to_vec());
        });
        insert.build().execute(&mut **self.0).await?;
        Ok(())
    }

    async fn insert_nodes(&mut self, nodes: &[(NodeId, Hash)]) -> Result<(), StoreError> {
        let mut insert = QueryBuilder::<Sqlite>::new("INSERT INTO log_nodes (level, idx, hash) ");
        insert.push_values(nodes, |mut row, ((level, index), hash)| {
            row.push_bind(i64::from(*level)).push_bind(*index as i64).push_bind(hash.to_vec());
        });
        insert.build().execute(&mut **self.0).await?;
        Ok(())
    }

    async fn dedupe_lookup(&mut self, key: &str) -> Result<Option<u64>, StoreError> {
        let row =
            sqlx::query("SELECT idx FROM log_dedupe WHERE key = ?").bind(key).fetch_optional(&mut **self.0).await?;
        Ok(row.map(|r| r.get::<i64, _>("idx") as u64))
    }

    async fn dedupe_insert(&mut self, key: &str, index: u64) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO log_dedupe (key, idx) VALUES (?, ?)")
            .bind(key)
            .bind(index as i64)
            .execute(&mut **self.0)
            .await?;
        Ok(())
    }

    async fn confirm_signature(&mut self, id: i64, manifest_digest: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE signatures SET state = 'stored', manifest_digest = ? WHERE id = ? AND state = 'pending'",
        )
        .bind(manifest_digest)
        .bind(id)
        .execute(&mut **self.0)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn insert_stored_signature(&mut self, s: &NewSignature, manifest_digest: &str) -> Result<(), StoreError> {
        super::sqlite::insert_signature(s, "stored", Some(manifest_digest)).execute(&mut **self.0).await?;
        Ok(())
    }
}

#[async_trait]
impl LogStore for SqliteStore {
    async fn append_batch(&self, batch: &[Append]) -> Result<(Vec<Appended>, u64), StoreError> {
        let _writer = self.append_lock.lock().await;
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let appended = append_batch_in(&mut SqliteTx(&mut tx), batch).await?;
        tx.commit().await?;
        Ok(appended)
    }

    async fn tree_size(&self) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        let size = SqliteTx(&mut tx).size().await?;
        tx.commit().await?;
        Ok(size)
    }

    async fn node_hashes(&self, nodes: &[NodeId]) -> Result<Vec<Hash>, StoreError> {
        let mut found = HashMap::with_capacity(nodes.len());
        let mut tx = self.pool.begin().await?;
        for chunk in nodes.chunks(ROWS_PER_INSERT) {
            let mut select =
                QueryBuilder::<Sqlite>::new("SELECT level, idx, hash FROM log_nodes WHERE (level, idx) IN ");
            select.push_tuples(chunk, |mut row, (level, index)| {
                row.push_bind(i64::from(*level)).push_bind(*index as i64);
            });
            for row in select.build().fetch_all(&mut *tx).await? {
                let id = (row.get::<i64, _>("level") as u32, row.get::<i64, _>("idx") as u64);
                found.insert(id, to_hash(row.get("hash"))?);
            }
        }
        tx.commit().await?;
        nodes.iter().map(|id| found.get(id).copied().ok_or_else(|| missing_node(*id))).collect()
    }

    async fn entries(&self, start: u64, end: u64) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let rows = sqlx::query("SELECT idx, entry FROM log_entries WHERE idx >= ? AND idx < ? ORDER BY idx")
            .bind(start as i64)
            .bind(end as i64)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(|r| (r.get::<i64, _>("idx") as u64, r.get("entry"))).collect())
    }
}
