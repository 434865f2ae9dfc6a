//! The register as the API reads it: its size, a range of entries, a search, and RFC 9162 proofs.
//!
//! Owns: nothing of its own; it hands out what `register::Log` answers. Must not touch: appends (those go
//! through the use cases that record them).

use super::{Service, ServiceError};
use crate::merkle::Hash;

impl Service {
    /// How many entries the register holds.
    pub async fn register_size(&self) -> Result<u64, ServiceError> {
        Ok(self.log.size().await?)
    }

    /// Entries `[start, end)` with their indexes (the canonical JSON bytes of each).
    pub async fn register_entries(&self, start: u64, end: u64) -> Result<Vec<(u64, Vec<u8>)>, ServiceError> {
        Ok(self.log.entries(start, end).await?)
    }

    /// The entries `filter` matches below index `before` (all when `None`), newest first, at most `limit`.
    pub async fn register_search(
        &self,
        filter: &crate::store::SearchFilter,
        before: Option<u64>,
        limit: u32,
    ) -> Result<Vec<crate::store::Found>, ServiceError> {
        Ok(self.log.search(filter, before, limit).await?)
    }

    /// The inclusion proof of entry `index` in the tree of `tree_size`.
    pub async fn inclusion_proof(&self, index: u64, tree_size: u64) -> Result<Vec<Hash>, ServiceError> {
        Ok(self.log.inclusion_proof(index, tree_size).await?)
    }

    /// The proof that the tree of size `second` extends the one of size `first`.
    pub async fn consistency_proof(&self, first: u64, second: u64) -> Result<Vec<Hash>, ServiceError> {
        Ok(self.log.consistency_proof(first, second).await?)
    }
}
