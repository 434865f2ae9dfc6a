//! Rekor transparency-log entries: v1 (signed entry timestamp over the entry, inclusion proof against a
//! signed checkpoint) and v2 (inclusion proof against a checkpoint in a signed note, cosignatures allowed),
//! and the binding of the entry body (hashedrekord, dsse, intoto) to the artifact, signature and key.

use time::OffsetDateTime;

/// A log entry that verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedEntry {
    pub log_index: u64,
    /// The log's base URL in the trusted root.
    pub log: String,
    /// Rekor v1's integrated time, when a signed entry timestamp or checkpoint vouches for it.
    pub integrated_time: Option<OffsetDateTime>,
}
