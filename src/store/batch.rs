//! The append both databases share: place each [`Append`] of a batch (applying its effect), then write
//! the new leaves with their search index rows, and the nodes [`merkle::append`] computes for them. The SQL
//! is behind [`LogTx`].

use std::future::Future;

use super::{Append, Appended, Effect, NewSignature, StoreError};
use crate::entry_fields::{EntryFields, entry_fields};
use crate::merkle::{self, Hash, NodeId};

/// The statements an append needs, run inside one open write transaction that excludes other appenders.
pub(super) trait LogTx: Send {
    fn size(&mut self) -> impl Future<Output = Result<u64, StoreError>> + Send;
    /// The hashes of `ids` (at most [`ROWS_PER_INSERT`]), in the order asked, in one statement.
    fn nodes(&mut self, ids: &[NodeId]) -> impl Future<Output = Result<Vec<Hash>, StoreError>> + Send;
    fn insert_entries(
        &mut self,
        first: u64,
        entries: &[(&[u8], Hash)],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn insert_nodes(&mut self, nodes: &[(NodeId, Hash)]) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The search index rows of entries `first..` (at most [`ROWS_PER_INSERT`]), in one statement.
    fn insert_index(
        &mut self,
        first: u64,
        fields: &[EntryFields],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn dedupe_lookup(&mut self, key: &str) -> impl Future<Output = Result<Option<u64>, StoreError>> + Send;
    fn dedupe_insert(&mut self, key: &str, index: u64) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Marks row `id` stored; returns false when no pending row `id` exists.
    fn confirm_signature(
        &mut self,
        id: i64,
        signature: &NewSignature,
        manifest_digest: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    fn insert_stored_signature(
        &mut self,
        signature: &NewSignature,
        manifest_digest: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

pub(super) fn to_hash(bytes: Vec<u8>) -> Result<Hash, StoreError> {
    bytes.try_into().map_err(|_| StoreError::Query("a stored hash is not 32 bytes".into()))
}

pub(super) fn missing_node((level, index): NodeId) -> StoreError {
    StoreError::Query(format!("register node {level}/{index} is missing"))
}

/// Rows per multi-row INSERT, well under both databases' bind-parameter limits.
pub(super) const ROWS_PER_INSERT: usize = 500;

pub(super) async fn append_batch_in(tx: &mut impl LogTx, batch: &[Append]) -> Result<(Vec<Appended>, u64), StoreError> {
    let size = tx.size().await?;
    let mut placed = Vec::with_capacity(batch.len());
    let mut new_entries: Vec<&[u8]> = Vec::with_capacity(batch.len());
    for append in batch {
        let next = size + new_entries.len() as u64;
        if let Some(index) = apply_effect(tx, &append.effect, next).await? {
            placed.push(Appended { index, new: false });
            continue;
        }
        placed.push(Appended { index: next, new: true });
        new_entries.push(&append.entry);
    }
    let frontier = tx.nodes(&merkle::frontier(size)).await?;
    let growth = merkle::append(size, &frontier, &new_entries);
    let leaves: Vec<(&[u8], Hash)> = new_entries.iter().copied().zip(growth.leaf_hashes).collect();
    for (offset, chunk) in leaves.chunks(ROWS_PER_INSERT).enumerate() {
        let first = size + (offset * ROWS_PER_INSERT) as u64;
        tx.insert_entries(first, chunk).await?;
        let fields: Vec<EntryFields> = chunk.iter().map(|(entry, _)| entry_fields(entry)).collect();
        tx.insert_index(first, &fields).await?;
    }
    for chunk in growth.nodes.chunks(ROWS_PER_INSERT) {
        tx.insert_nodes(chunk).await?;
    }
    Ok((placed, size + new_entries.len() as u64))
}

/// Applies `effect` for an entry that would land at `next`; returns the index of an earlier entry that
/// already stands for it, in which case nothing is appended.
async fn apply_effect(tx: &mut impl LogTx, effect: &Effect, next: u64) -> Result<Option<u64>, StoreError> {
    match effect {
        Effect::None => Ok(None),
        Effect::Once { key } => once(tx, key, next).await,
        Effect::ConfirmSignature { id, signature, manifest_digest } => {
            let confirmed = tx.confirm_signature(*id, signature, manifest_digest).await?;
            if let Some(index) = once(tx, &signature_key(signature), next).await? {
                return Ok(Some(index));
            }
            if !confirmed {
                tx.insert_stored_signature(signature, manifest_digest).await?;
            }
            Ok(None)
        }
    }
}

async fn once(tx: &mut impl LogTx, key: &str, next: u64) -> Result<Option<u64>, StoreError> {
    if let Some(index) = tx.dedupe_lookup(key).await? {
        return Ok(Some(index));
    }
    tx.dedupe_insert(key, next).await?;
    Ok(None)
}

/// A signature is logged once however many paths confirm it (the sign itself, a peer's reconciliation).
fn signature_key(signature: &NewSignature) -> String {
    format!("signature:{}:{}", signature.payload_digest, signature.signature_b64)
}
