//! The upper levels of the tree in memory: the hash of every perfect subtree of `2^from_level` leaves or
//! more, level by level, so a proof reads only its lowest levels from the store.
//!
//! A perfect subtree's hash never changes once its transaction committed, so the cache is only ever extended
//! (from the store, up to a tree size the store has already committed), never invalidated: it stays right
//! after appends by this process or another replica, and a restart simply loads it again.
//! Owns: which nodes are cached. Must not touch: the store's statements or the tree math ([`crate::merkle`]).

use crate::merkle::{Hash, NodeId};
use crate::store::{RegisterStore, StoreError};

/// Subtrees of 256 leaves and up: a proof reads at most 8 nodes from the store, and the cache holds about
/// one hash per 128 entries (2.5 MB at 10 million entries).
pub const CACHED_FROM_LEVEL: u32 = 8;

pub(super) struct UpperLevels {
    from_level: u32,
    /// `levels[l - from_level][i]` is node `(l, i)`; every complete node within the first `covered` leaves.
    levels: Vec<Vec<Hash>>,
    covered: u64,
}

impl UpperLevels {
    pub(super) fn new(from_level: u32) -> Self {
        Self { from_level, levels: Vec::new(), covered: 0 }
    }

    pub(super) fn covered(&self) -> u64 {
        self.covered
    }

    pub(super) fn get(&self, (level, index): NodeId) -> Option<Hash> {
        let row = self.levels.get(level.checked_sub(self.from_level)? as usize)?;
        row.get(usize::try_from(index).ok()?).copied()
    }

    /// Reads from `store` every cached-level node completed between `covered` and `size` leaves; `size` must
    /// be a tree size the store has committed.
    pub(super) async fn extend_to(&mut self, store: &dyn RegisterStore, size: u64) -> Result<(), StoreError> {
        if size <= self.covered {
            return Ok(());
        }
        let mut read = Vec::new();
        for (level, indexes) in self.missing_ranges(size) {
            if !indexes.is_empty() {
                read.push((level, store.level_hashes(level, indexes).await?));
            }
        }
        // Only once every read succeeded, so a failed read leaves the cache as it was.
        for (level, hashes) in read {
            let row = (level - self.from_level) as usize;
            if self.levels.len() <= row {
                self.levels.resize_with(row + 1, Vec::new);
            }
            self.levels[row].extend(hashes);
        }
        self.covered = size;
        Ok(())
    }

    /// Per cached level from the lowest, the nodes completed between `covered` and `size` leaves.
    fn missing_ranges(&self, size: u64) -> Vec<(u32, std::ops::Range<u64>)> {
        (self.from_level..64)
            .take_while(|level| size >> level > 0)
            .map(|level| (level, (self.covered >> level)..(size >> level)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_ranges_are_the_complete_subtrees_between_the_sizes() {
        let mut upper = UpperLevels::new(2);
        assert_eq!(upper.missing_ranges(3), vec![]);
        assert_eq!(upper.missing_ranges(9), vec![(2, 0..2), (3, 0..1)]);
        upper.covered = 9;
        assert_eq!(upper.missing_ranges(16), vec![(2, 2..4), (3, 1..2), (4, 0..1)]);
    }

    #[test]
    fn a_node_outside_the_cached_levels_or_not_yet_read_is_not_answered() {
        let mut upper = UpperLevels::new(2);
        upper.levels = vec![vec![[1; 32], [2; 32]], vec![[3; 32]]];
        upper.covered = 8;
        assert_eq!(upper.get((2, 1)), Some([2; 32]));
        assert_eq!(upper.get((3, 0)), Some([3; 32]));
        assert_eq!(upper.get((1, 0)), None);
        assert_eq!(upper.get((2, 2)), None);
        assert_eq!(upper.get((4, 0)), None);
    }
}
