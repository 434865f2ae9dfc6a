//! The offline verifier behind `notarium log verify`: checks an export against the log's public key and
//! nothing else. It trusts no server: every leaf hash is recomputed from its entry, every entry is proved
//! into the signed checkpoint, the export's own header says how many entries must follow, and a
//! checkpoint the auditor saved earlier must be a prefix of the exported tree. Reads line by line.

use std::io::BufRead;

use serde_json::Value;

use crate::formats::canonical::canonical_json;
use crate::formats::checkpoint::{Checkpoint, parse_note, verify_ed25519_note};
use crate::formats::digest::{hex_decode, hex_lower};
use crate::merkle::{Hash, leaf_hash, verify_consistency, verify_inclusion};

/// What a verified export holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub origin: String,
    pub tree_size: u64,
    pub first_index: u64,
    pub entries: u64,
    /// The size of the saved checkpoint the exported tree was proved to extend; `None` when no saved
    /// checkpoint was given, so consistency was not checked.
    pub extends_size: Option<u64>,
}

/// The first thing wrong with an export: its line number (1-based) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct VerifyFailure {
    pub line: usize,
    pub reason: String,
}

fn fail(line: usize, reason: impl Into<String>) -> VerifyFailure {
    VerifyFailure { line, reason: reason.into() }
}

fn parse_hash(value: &Value) -> Option<Hash> {
    hex_decode(value.as_str()?)?.try_into().ok()
}

/// A checkpoint (signed note) the auditor saved from an earlier look at the log.
#[derive(Debug, Clone, Copy)]
pub struct TrustedCheckpoint<'a> {
    pub note: &'a str,
}

/// The checkpoint `note` states, once its signature by `log_key` holds.
fn signed_checkpoint(note: &str, log_key: &[u8; 32], line: usize) -> Result<Checkpoint, VerifyFailure> {
    let (body, _) = parse_note(note).map_err(|e| fail(line, e.to_string()))?;
    let claimed = Checkpoint::parse_body(&body).map_err(|e| fail(line, e.to_string()))?;
    verify_ed25519_note(note, &claimed.origin, log_key)
        .map_err(|_| fail(line, format!("the checkpoint is not signed by this log key for {}", claimed.origin)))?;
    Ok(claimed)
}

/// Checks the header's consistency proof from the `earlier` checkpoint to `current`.
fn check_consistency(header: &Value, earlier: &Checkpoint, current: &Checkpoint) -> Result<(), VerifyFailure> {
    let proof = &header["consistency"];
    if proof["from_size"].as_u64() != Some(earlier.size) {
        return Err(fail(
            1,
            format!("the export carries no consistency proof from the saved checkpoint's size {}", earlier.size),
        ));
    }
    let hashes: Option<Vec<Hash>> = proof["hashes"].as_array().and_then(|a| a.iter().map(parse_hash).collect());
    let hashes = hashes.ok_or_else(|| fail(1, "malformed consistency proof"))?;
    verify_consistency(earlier.size, current.size, &earlier.root_hash, &current.root_hash, &hashes).map_err(|e| {
        fail(
            1,
            format!(
                "the log at size {} does not extend the saved checkpoint at size {}: history was rewritten ({e})",
                current.size, earlier.size
            ),
        )
    })
}

/// Verifies an export (JSON Lines: a header with the signed checkpoint, then one line per entry), and
/// with `since`, that the exported tree extends that earlier checkpoint.
pub fn verify_export(
    export: impl BufRead,
    log_key: &[u8; 32],
    since: Option<TrustedCheckpoint<'_>>,
) -> Result<Verified, VerifyFailure> {
    let mut lines = export.lines().enumerate().map(|(i, l)| (i + 1, l));
    let unreadable = |number: usize, e: std::io::Error| fail(number, format!("cannot read: {e}"));
    let (_, header) = lines.next().ok_or_else(|| fail(1, "the export is empty"))?;
    let header = header.map_err(|e| unreadable(1, e))?;
    let header: Value = serde_json::from_str(&header).map_err(|e| fail(1, format!("header is not JSON: {e}")))?;
    let note = header["checkpoint"].as_str().ok_or_else(|| fail(1, "header has no checkpoint"))?;
    let claimed = signed_checkpoint(note, log_key, 1)?;
    let mut extends_size = None;
    if let Some(earlier) = since {
        let earlier = signed_checkpoint(earlier.note, log_key, 1)
            .map_err(|e| fail(1, format!("the saved checkpoint: {}", e.reason)))?;
        check_consistency(&header, &earlier, &claimed)?;
        extends_size = Some(earlier.size);
    }
    let first = header["first_index"].as_u64().ok_or_else(|| fail(1, "header has no first_index"))?;
    let count = header["count"].as_u64().ok_or_else(|| fail(1, "header has no count"))?;

    let mut expected_index = first;
    let mut last_line = 1;
    for (number, line) in lines {
        let line = line.map_err(|e| unreadable(number, e))?;
        last_line = number;
        let record: Value = serde_json::from_str(&line).map_err(|e| fail(number, format!("not JSON: {e}")))?;
        let index = record["index"].as_u64().ok_or_else(|| fail(number, "no index"))?;
        if index != expected_index {
            return Err(fail(number, format!("entry {index} where entry {expected_index} belongs")));
        }
        let leaf = leaf_hash(&canonical_json(&record["entry"]));
        if parse_hash(&record["leaf_hash"]) != Some(leaf) {
            return Err(fail(number, format!("entry {index}: its leaf hash is not the hash of its content")));
        }
        let proof: Option<Vec<Hash>> =
            record["inclusion_proof"].as_array().map(|a| a.iter().map(parse_hash).collect()).unwrap_or(None);
        let proof = proof.ok_or_else(|| fail(number, format!("entry {index}: malformed inclusion proof")))?;
        verify_inclusion(&leaf, index, claimed.size, &proof, &claimed.root_hash).map_err(|e| {
            fail(number, format!("entry {index} ({}) is not in the signed tree: {e}", hex_lower(&leaf)))
        })?;
        expected_index += 1;
    }
    if expected_index != first + count {
        return Err(fail(
            last_line + 1,
            format!(
                "the export ends after entry {}, its header promises {count} entries from {first}",
                expected_index.saturating_sub(1)
            ),
        ));
    }
    Ok(Verified { origin: claimed.origin, tree_size: claimed.size, first_index: first, entries: count, extends_size })
}
