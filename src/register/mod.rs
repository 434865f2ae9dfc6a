//! The register: the append-only log of events as an RFC 6962 / RFC 9162 Merkle tree.
//!
//! Owns: the log over its store (`log`) with group commit (`sequencer`), entry formats (`event`), the
//! export's line formats (`export`) and the offline export verifier (`verify`); the tree math and proofs
//! are the leaf module [`crate::merkle`]. Must not touch: HTTP or the registry.

pub mod event;
pub mod export;
mod log;
mod sequencer;
pub mod verify;

pub use log::{Log, Placed, RegisterError};
pub use sequencer::MAX_BATCH;
