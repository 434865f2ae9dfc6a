//! The append both databases share: place each [`Append`] of a batch (applying its effect), then write
//! the new leaves with their search index rows, and the nodes [`merkle::append`] computes for them. The SQL
//! is behind [`LogTx`].
//!
//! A backend whose appends are serialized in one process (SQLite) may hold the search index rows back
//! ([`HeldIndex`]): the entries and nodes are committed with each group, and `log_index` is brought up to the
//! tree size in a later group's transaction once [`HOLD_INDEX_ROWS`] are held, or before any search reads it
//! ([`index_up_to`]). Each random leaf page an index row dirties (a digest, a repository) is then written once
//! for many entries instead of once per group. The rows are derived from the entries, so rows lost with the
//! process (a crash, another process's appends) are computed again from `log_entries`.

use std::borrow::Cow;
use std::future::Future;

use super::{Append, Appended, Effect, Frontier, NewSignature, StoreError};
use crate::entry_fields::{EntryFields, entry_fields};
use crate::merkle::{self, Hash, NodeId};

/// The statements an append needs, run inside one open write transaction that excludes other appenders.
pub(super) trait LogTx: Send {
    fn size(&mut self) -> impl Future<Output = Result<u64, StoreError>> + Send;
    /// How many entries `log_index` covers (it always covers the first ones, without a gap).
    fn indexed(&mut self) -> impl Future<Output = Result<u64, StoreError>> + Send;
    /// The entries `[start, end)` (at most [`ROWS_PER_INSERT`]), in index order.
    fn entries(&mut self, start: u64, end: u64)
    -> impl Future<Output = Result<Vec<(u64, Vec<u8>)>, StoreError>> + Send;
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

/// Index rows at most held back before a group's transaction writes them (about 1 MB of fields).
pub(super) const HOLD_INDEX_ROWS: usize = 4096;

/// The search index rows of committed entries `first..first + rows.len()` that `log_index` may not hold yet.
#[derive(Debug, Default)]
pub(super) struct HeldIndex {
    first: u64,
    rows: Vec<EntryFields>,
}

impl HeldIndex {
    fn end(&self) -> u64 {
        self.first + self.rows.len() as u64
    }

    /// What a transaction that committed did to the index rows: every row written, or `rows` of entries
    /// `first..` held too.
    pub(super) fn committed(&mut self, change: IndexChange) {
        match change {
            IndexChange::Written => self.rows.clear(),
            IndexChange::Held { first, rows } => {
                if self.rows.is_empty() {
                    self.first = first;
                }
                self.rows.extend(rows);
            }
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The held rows, with the index of the first one's entry.
    pub(super) fn rows(&self) -> (u64, &[EntryFields]) {
        (self.first, &self.rows)
    }
}

/// What an append did with its entries' search index rows.
#[must_use]
pub(super) enum IndexChange {
    /// `log_index` covers every entry the transaction leaves: no row is held any more.
    Written,
    /// The rows of entries `first..` are to be held once the transaction commits.
    Held { first: u64, rows: Vec<EntryFields> },
}

/// Appends `batch`; with `held` (rows held from earlier groups), its index rows are held too unless that makes
/// [`HOLD_INDEX_ROWS`] or more, when the transaction brings `log_index` up to the new size. Returns where each
/// append landed, the tree's right edge after the batch, and what to apply to `held` once the transaction
/// commits. `known` is the right edge the caller's last batch left: its nodes are read only when the size
/// the transaction reads differs (another writer appended since).
pub(super) async fn append_batch_in(
    tx: &mut impl LogTx,
    batch: &[Append],
    held: Option<&HeldIndex>,
    known: Option<&Frontier>,
) -> Result<((Vec<Appended>, Frontier), IndexChange), StoreError> {
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
    let frontier = match known {
        Some(known) if known.size == size => Cow::Borrowed(&known.hashes),
        _ => Cow::Owned(tx.nodes(&merkle::frontier(size)).await?),
    };
    let growth = merkle::append(size, &frontier, &new_entries);
    let leaves: Vec<(&[u8], Hash)> = new_entries.iter().copied().zip(growth.leaf_hashes).collect();
    for (offset, chunk) in leaves.chunks(ROWS_PER_INSERT).enumerate() {
        tx.insert_entries(size + (offset * ROWS_PER_INSERT) as u64, chunk).await?;
    }
    for chunk in growth.nodes.chunks(ROWS_PER_INSERT) {
        tx.insert_nodes(chunk).await?;
    }
    let fields: Vec<EntryFields> = new_entries.iter().map(|entry| entry_fields(entry)).collect();
    let new_size = size + new_entries.len() as u64;
    let change = match held {
        None => {
            for (offset, chunk) in fields.chunks(ROWS_PER_INSERT).enumerate() {
                tx.insert_index(size + (offset * ROWS_PER_INSERT) as u64, chunk).await?;
            }
            IndexChange::Written
        }
        Some(held) if holds(held, size, fields.len()) => IndexChange::Held { first: size, rows: fields },
        Some(held) => {
            index_up_to(tx, new_size, &[(held.first, &held.rows), (size, &fields)]).await?;
            IndexChange::Written
        }
    };
    let after = Frontier { size: new_size, hashes: right_edge(size, &frontier, &growth.nodes, new_size)? };
    Ok(((placed, after), change))
}

/// The hashes of [`merkle::frontier`]`(new_size)`: each is a node the append just computed or one of the right
/// edge it started from (`frontier`, of the tree of `size`).
fn right_edge(
    size: u64,
    frontier: &[Hash],
    grown: &[(merkle::NodeId, Hash)],
    new_size: u64,
) -> Result<Vec<Hash>, StoreError> {
    let known: std::collections::HashMap<merkle::NodeId, Hash> =
        merkle::frontier(size).into_iter().zip(frontier.iter().copied()).chain(grown.iter().copied()).collect();
    merkle::frontier(new_size).into_iter().map(|id| known.get(&id).copied().ok_or_else(|| missing_node(id))).collect()
}

/// Whether `count` more rows, of entries from `first`, join the held ones: they follow them and stay under
/// [`HOLD_INDEX_ROWS`].
fn holds(held: &HeldIndex, first: u64, count: usize) -> bool {
    (held.is_empty() || held.end() == first) && held.rows.len() + count < HOLD_INDEX_ROWS
}

/// Writes the `log_index` rows of every entry below `end` it does not hold yet, taking them from `known` (runs
/// of rows, each with the index of its first entry) where it can and computing the others from the stored
/// entries.
pub(super) async fn index_up_to(
    tx: &mut impl LogTx,
    end: u64,
    known: &[(u64, &[EntryFields])],
) -> Result<(), StoreError> {
    let mut next = tx.indexed().await?;
    while next < end {
        let rows = match known.iter().find(|(first, rows)| (*first..*first + rows.len() as u64).contains(&next)) {
            Some((first, rows)) => {
                let from = (next - first) as usize;
                let stop = (from + ROWS_PER_INSERT).min(rows.len()).min(from + (end - next) as usize);
                Cow::Borrowed(&rows[from..stop])
            }
            None => Cow::Owned(stored_fields(tx, next, next_known(known, next).min(end)).await?),
        };
        tx.insert_index(next, &rows).await?;
        next += rows.len() as u64;
    }
    Ok(())
}

/// Where the first run of `known` rows after entry `next` starts (`u64::MAX` when none does).
fn next_known(known: &[(u64, &[EntryFields])], next: u64) -> u64 {
    known.iter().map(|(first, _)| *first).filter(|first| *first > next).min().unwrap_or(u64::MAX)
}

/// The index rows of the stored entries from `start` up to `end` (at most [`ROWS_PER_INSERT`] of them).
async fn stored_fields(tx: &mut impl LogTx, start: u64, end: u64) -> Result<Vec<EntryFields>, StoreError> {
    let end = end.min(start + ROWS_PER_INSERT as u64);
    let entries = tx.entries(start, end).await?;
    if entries.len() as u64 != end - start || entries.first().is_some_and(|(index, _)| *index != start) {
        return Err(StoreError::Query(format!("register entries {start}..{end} are not all stored")));
    }
    Ok(entries.iter().map(|(_, entry)| entry_fields(entry)).collect())
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
