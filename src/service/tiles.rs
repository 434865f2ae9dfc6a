//! The register as C2SP tlog-tiles (docs/FORMATS.md §22): hash tiles read from the stored perfect
//! subtrees (`log_nodes`: a level-L tile holds the Merkle nodes of level 8L) and entry bundles, full or
//! partial, only within the current tree.
//!
//! Owns: which tiles exist for the current size. Must not touch: paths and bytes (`formats::tile`), HTTP.

use super::{Service, ServiceError};
use crate::formats::tile::{MAX_BUNDLED_ENTRY, TILE_WIDTH, TileKind, TilePath, entry_bundle};

impl Service {
    /// The bytes of the tile `path` names, or `None` if the current tree does not have it: a full tile
    /// once all its 256 hashes (or entries) exist, a partial one of width W once its first W do (a
    /// partial tile never changes either: it is a prefix of the full one).
    pub async fn tile(&self, path: &TilePath) -> Result<Option<Vec<u8>>, ServiceError> {
        let size = self.log.size().await?;
        let level_bits = match path.kind {
            TileKind::Hashes { level } => 8 * u32::from(level),
            TileKind::Entries => 0,
        };
        // Nodes the tree has at that Merkle level: perfect subtrees of 2^level_bits leaves.
        let available = size.checked_shr(level_bits).unwrap_or(0);
        let width = path.width.map_or(TILE_WIDTH, u64::from);
        let Some(start) = path.index.checked_mul(TILE_WIDTH) else { return Ok(None) };
        let Some(end) = start.checked_add(width).filter(|end| *end <= available) else { return Ok(None) };
        match path.kind {
            TileKind::Hashes { .. } => {
                let hashes = self.log.level_hashes(size, level_bits, start..end).await?;
                Ok(Some(hashes.concat()))
            }
            TileKind::Entries => {
                let entries = self.log.entries(start, end).await?;
                let bundle = entry_bundle(entries.iter().map(|(_, bytes)| bytes.as_slice())).map_err(|i| {
                    ServiceError::TooLarge {
                        what: "a register entry in an entry bundle",
                        size: entries[i].1.len(),
                        limit: MAX_BUNDLED_ENTRY,
                    }
                })?;
                Ok(Some(bundle))
            }
        }
    }
}
