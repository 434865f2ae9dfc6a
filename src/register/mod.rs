//! The register: the append-only log of events as an RFC 6962 / RFC 9162 Merkle tree.
//!
//! Owns: tree math and proofs (`merkle`, pure) and the log over its store (`log`). Must not touch: HTTP or
//! the registry. Built in the register issue: today the log stores entries and answers roots and proofs;
//! events, checkpoints served over HTTP, export and the offline verifier come next.

pub mod event;
mod log;
pub mod merkle;
pub mod verify;

pub use log::{Log, RegisterError};
