//! The register: the append-only log of events as an RFC 6962 / RFC 9162 Merkle tree.
//!
//! Owns: the register over its store (`tree`) with group commit (`sequencer`) and its upper levels cached
//! in memory (`upper`), entry formats (`event`), the export's line formats (`export`), the evidence pack
//! and its verifier (`evidence`) and the offline
//! export verifier (`verify`); the tree math and proofs are the leaf module [`crate::merkle`]. Must not
//! touch: HTTP or the registry.

pub mod event;
pub mod evidence;
pub mod export;
mod sequencer;
mod tree;
mod upper;
pub mod verify;

pub use sequencer::MAX_BATCH;
pub use tree::{Placed, Register, RegisterError};
pub use upper::CACHED_FROM_LEVEL;
