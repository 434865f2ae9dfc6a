//! [`LogStore`] on SQLite: the register's entries and perfect-subtree hashes (`migrations/sqlite/0002`).

use async_trait::async_trait;
use sqlx::{Row, Sqlite, Transaction};

use super::{LogStore, SqliteStore, StoreError};
use crate::register::merkle::{Hash, NodeId, extend, leaf_hash, node_of, perfect_pieces};

fn to_hash(bytes: Vec<u8>) -> Result<Hash, StoreError> {
    bytes.try_into().map_err(|_| StoreError::Query("a stored hash is not 32 bytes".into()))
}

async fn node(tx: &mut Transaction<'_, Sqlite>, (level, index): NodeId) -> Result<Hash, StoreError> {
    let row = sqlx::query("SELECT hash FROM log_nodes WHERE level = ? AND idx = ?")
        .bind(i64::from(level))
        .bind(index as i64)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or_else(|| StoreError::Query(format!("register node {level}/{index} is missing")))?;
    to_hash(row.get("hash"))
}

/// Appends `entries` inside `tx`: the leaves, and every perfect subtree they complete.
pub(super) async fn append_in(tx: &mut Transaction<'_, Sqlite>, entries: &[Vec<u8>]) -> Result<(u64, u64), StoreError> {
    let size: i64 = sqlx::query("SELECT COALESCE(MAX(idx) + 1, 0) AS size FROM log_entries")
        .fetch_one(&mut **tx)
        .await?
        .get("size");
    let size = size as u64;
    let mut frontier = Vec::new();
    for (start, end) in perfect_pieces(0, size) {
        frontier.push(node(tx, node_of(start, end)).await?);
    }
    let leaves: Vec<Hash> = entries.iter().map(|e| leaf_hash(e)).collect();
    for (offset, (entry, leaf)) in entries.iter().zip(&leaves).enumerate() {
        sqlx::query("INSERT INTO log_entries (idx, entry, leaf_hash) VALUES (?, ?, ?)")
            .bind((size + offset as u64) as i64)
            .bind(entry.as_slice())
            .bind(leaf.as_slice())
            .execute(&mut **tx)
            .await?;
    }
    for ((level, index), hash) in extend(size, &frontier, &leaves) {
        sqlx::query("INSERT INTO log_nodes (level, idx, hash) VALUES (?, ?, ?)")
            .bind(i64::from(level))
            .bind(index as i64)
            .bind(hash.as_slice())
            .execute(&mut **tx)
            .await?;
    }
    Ok((size, size + entries.len() as u64))
}

#[async_trait]
impl LogStore for SqliteStore {
    async fn append_entries(&self, entries: &[Vec<u8>]) -> Result<(u64, u64), StoreError> {
        let _writer = self.append_lock.lock().await;
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let appended = append_in(&mut tx, entries).await?;
        tx.commit().await?;
        Ok(appended)
    }

    async fn append_once(&self, key: &str, entry: &[u8]) -> Result<(u64, bool), StoreError> {
        let _writer = self.append_lock.lock().await;
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let seen = sqlx::query("SELECT idx FROM log_dedupe WHERE key = ?").bind(key).fetch_optional(&mut *tx).await?;
        if let Some(row) = seen {
            return Ok((row.get::<i64, _>("idx") as u64, false));
        }
        let (index, _) = append_in(&mut tx, &[entry.to_vec()]).await?;
        sqlx::query("INSERT INTO log_dedupe (key, idx) VALUES (?, ?)")
            .bind(key)
            .bind(index as i64)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok((index, true))
    }

    async fn tree_size(&self) -> Result<u64, StoreError> {
        let size: i64 = sqlx::query("SELECT COALESCE(MAX(idx) + 1, 0) AS size FROM log_entries")
            .fetch_one(&self.pool)
            .await?
            .get("size");
        Ok(size as u64)
    }

    async fn node_hashes(&self, nodes: &[NodeId]) -> Result<Vec<Hash>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut hashes = Vec::with_capacity(nodes.len());
        for &id in nodes {
            hashes.push(node(&mut tx, id).await?);
        }
        tx.commit().await?;
        Ok(hashes)
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
