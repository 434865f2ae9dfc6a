//! The register over a [`RegisterStore`]: roots and proofs from stored subtree hashes, one store read each;
//! the upper levels come from memory ([`UpperLevels`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::sequencer::Sequencer;
use super::upper::{CACHED_FROM_LEVEL, UpperLevels};
use crate::merkle::{self, Hash};
use crate::store::{Append, Appended, RegisterStore, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{what} is outside the log, which has {size} entries")]
    OutOfRange { what: String, size: u64 },
}

/// Where an append landed, and the tree size once its batch was durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placed {
    pub index: u64,
    /// False when an earlier entry already stands for this append (a retried delivery, a confirmed signature).
    pub new: bool,
    pub tree_size: u64,
}

/// Told of every entry this process appended (its index and bytes), once it is durable.
pub(super) type Observer = Box<dyn Fn(u64, &[u8]) + Send + Sync>;

pub struct Register {
    store: Arc<dyn RegisterStore>,
    sequencer: Sequencer,
    observers: std::sync::RwLock<Vec<Observer>>,
    upper: tokio::sync::RwLock<UpperLevels>,
    /// A tree size the store has committed; the tree only grows, so any size up to it exists.
    known_size: AtomicU64,
    /// The roots of the trees this process's group commits left, newest [`KEPT_ROOTS`]: a checkpoint of
    /// one of them needs no read.
    roots: std::sync::Mutex<std::collections::BTreeMap<u64, Hash>>,
}

/// Roots of recent appends kept in memory.
const KEPT_ROOTS: usize = 64;

impl Register {
    /// Must be called inside a Tokio runtime: it starts the sequencer.
    pub fn new(store: Arc<dyn RegisterStore>) -> Self {
        Self::with_cached_levels(store, CACHED_FROM_LEVEL)
    }

    /// As [`Self::new`], caching the nodes of subtrees of `2^from_level` leaves and up in memory.
    pub fn with_cached_levels(store: Arc<dyn RegisterStore>, from_level: u32) -> Self {
        Self {
            sequencer: Sequencer::start(store.clone()),
            store,
            observers: Default::default(),
            upper: tokio::sync::RwLock::new(UpperLevels::new(from_level)),
            known_size: AtomicU64::new(0),
            roots: Default::default(),
        }
    }

    fn saw_size(&self, size: u64) -> u64 {
        self.known_size.fetch_max(size, Ordering::Relaxed);
        size
    }

    /// Calls `observer` with each entry this process appends from now on, after it is durable.
    pub fn observe(&self, observer: Observer) {
        self.observers.write().expect("observer lock is never poisoned").push(observer);
    }

    fn tell(&self, entries: &[(u64, &[u8])]) {
        for observer in self.observers.read().expect("observer lock is never poisoned").iter() {
            entries.iter().for_each(|(index, entry)| observer(*index, entry));
        }
    }

    /// Appends one entry through group commit; answers once it is durable.
    pub async fn append(&self, append: Append) -> Result<Placed, RegisterError> {
        let entry = append.entry.clone();
        let (Appended { index, new }, tree_size, root) = self.sequencer.append(append).await?;
        self.remember_root(tree_size, root);
        self.tell(&[(index, &entry)]);
        Ok(Placed { index, new, tree_size: self.saw_size(tree_size) })
    }

    /// Appends entries already gathered into one batch, in order, in one transaction.
    pub async fn append_all(&self, batch: &[Append]) -> Result<(Vec<Appended>, u64), RegisterError> {
        let appended = self.store.append_batch(batch).await?;
        self.saw_size(appended.1);
        let told: Vec<(u64, &[u8])> =
            appended.0.iter().zip(batch).map(|(a, b)| (a.index, b.entry.as_slice())).collect();
        self.tell(&told);
        Ok(appended)
    }

    /// Entries `[start, end)` with their indexes.
    pub async fn entries(&self, start: u64, end: u64) -> Result<Vec<(u64, Vec<u8>)>, RegisterError> {
        Ok(self.store.entries(start, end).await?)
    }

    /// The entries `filter` matches below index `before`, newest first, at most `limit` (the store's index).
    pub async fn search(
        &self,
        filter: &crate::store::SearchFilter,
        before: Option<u64>,
        limit: u32,
    ) -> Result<Vec<crate::store::Found>, RegisterError> {
        Ok(self.store.search(filter, before, limit).await?)
    }

    pub async fn size(&self) -> Result<u64, RegisterError> {
        Ok(self.saw_size(self.store.tree_size().await?))
    }

    fn remember_root(&self, size: u64, root: Hash) {
        let mut roots = self.roots.lock().expect("roots lock is never poisoned");
        roots.insert(size, root);
        while roots.len() > KEPT_ROOTS {
            roots.pop_first();
        }
    }

    /// The root hash of the tree of the first `size` entries.
    pub async fn root(&self, size: u64) -> Result<Hash, RegisterError> {
        if let Some(root) = self.roots.lock().expect("roots lock is never poisoned").get(&size) {
            return Ok(*root);
        }
        self.check_size(size).await?;
        if size == 0 {
            return Ok(merkle::empty_root());
        }
        Ok(self.range_hashes(size, &[(0, size)]).await?.remove(0))
    }

    /// RFC 9162 inclusion proof of entry `index` in the tree of `size` entries.
    pub async fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, RegisterError> {
        self.check_size(size).await?;
        if index >= size {
            return Err(RegisterError::OutOfRange { what: format!("entry {index}"), size });
        }
        self.range_hashes(size, &merkle::inclusion_ranges(index, size)).await
    }

    /// Inclusion proofs of every entry in `indexes` in the tree of `size`, with one store read for all.
    pub async fn inclusion_proofs(
        &self,
        indexes: std::ops::Range<u64>,
        size: u64,
    ) -> Result<Vec<Vec<Hash>>, RegisterError> {
        self.check_size(size).await?;
        if indexes.end > size {
            return Err(RegisterError::OutOfRange { what: format!("entry {}", indexes.end - 1), size });
        }
        let per_entry: Vec<Vec<(u64, u64)>> = indexes.map(|i| merkle::inclusion_ranges(i, size)).collect();
        let mut hashes = self.range_hashes(size, &per_entry.concat()).await?.into_iter();
        Ok(per_entry.iter().map(|ranges| hashes.by_ref().take(ranges.len()).collect()).collect())
    }

    /// RFC 9162 consistency proof from the tree of `first` entries to the tree of `second`.
    pub async fn consistency_proof(&self, first: u64, second: u64) -> Result<Vec<Hash>, RegisterError> {
        self.check_size(second).await?;
        if first > second {
            return Err(RegisterError::OutOfRange { what: format!("tree size {first}"), size: second });
        }
        self.range_hashes(second, &merkle::consistency_ranges(first, second)).await
    }

    async fn check_size(&self, size: u64) -> Result<(), RegisterError> {
        if size <= self.known_size.load(Ordering::Relaxed) {
            return Ok(());
        }
        let current = self.size().await?;
        if size > current {
            return Err(RegisterError::OutOfRange { what: format!("tree size {size}"), size: current });
        }
        Ok(())
    }

    /// The hashes of `ranges` within the tree of `size` (one the store has committed), each folded from its
    /// perfect pieces: upper levels from memory, the rest read from the store in one go.
    async fn range_hashes(&self, size: u64, ranges: &[(u64, u64)]) -> Result<Vec<Hash>, RegisterError> {
        let pieces: Vec<Vec<merkle::NodeId>> = ranges
            .iter()
            .map(|&(s, e)| merkle::perfect_pieces(s, e).into_iter().map(|(s, e)| merkle::node_of(s, e)).collect())
            .collect();
        let mut ids: Vec<merkle::NodeId> = pieces.iter().flatten().copied().collect();
        ids.sort_unstable();
        ids.dedup();
        let mut known: HashMap<merkle::NodeId, Hash> = HashMap::with_capacity(ids.len());
        let mut uncached = Vec::with_capacity(ids.len());
        {
            let upper = self.upper_levels_to(size).await?;
            for id in ids {
                match upper.get(id) {
                    Some(hash) => drop(known.insert(id, hash)),
                    None => uncached.push(id),
                }
            }
        }
        if !uncached.is_empty() {
            known.extend(uncached.iter().copied().zip(self.store.node_hashes(&uncached).await?));
        }
        Ok(pieces.iter().map(|p| merkle::fold_pieces(&p.iter().map(|id| known[id]).collect::<Vec<_>>())).collect())
    }

    /// The hashes of nodes `indexes` of Merkle `level` (perfect subtrees of `2^level` leaves) within the
    /// tree of `size` entries, which must hold them all: a tlog-tiles tile. Levels the cache holds are
    /// answered from memory; the lower ones from the store in one read.
    pub async fn level_hashes(
        &self,
        size: u64,
        level: u32,
        indexes: std::ops::Range<u64>,
    ) -> Result<Vec<Hash>, RegisterError> {
        self.check_size(size).await?;
        if level >= CACHED_FROM_LEVEL {
            let upper = self.upper_levels_to(size).await?;
            let cached: Option<Vec<Hash>> = indexes.clone().map(|index| upper.get((level, index))).collect();
            if let Some(hashes) = cached {
                return Ok(hashes);
            }
        }
        Ok(self.store.level_hashes(level, indexes).await?)
    }

    /// The cached upper levels, extended first to cover the tree of `size` entries.
    async fn upper_levels_to(&self, size: u64) -> Result<tokio::sync::RwLockReadGuard<'_, UpperLevels>, StoreError> {
        let upper = self.upper.read().await;
        if upper.covered() >= size {
            return Ok(upper);
        }
        drop(upper);
        let mut upper = self.upper.write().await;
        upper.extend_to(self.store.as_ref(), size).await?;
        Ok(upper.downgrade())
    }
}
