//! The register: the append-only log of events as an RFC 6962 / RFC 9162 Merkle tree.
//!
//! Owns: tree math and proofs (`merkle`, pure). Must not touch: HTTP or the registry. This module is being
//! built in the register issue; today it holds the verified Merkle core only.

pub mod merkle;
