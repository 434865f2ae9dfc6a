//! The offline verifier behind `notarium log verify`: checks an export against the log's public key and
//! nothing else. It trusts no server: every leaf hash is recomputed from its entry, every entry is proved
//! into the signed checkpoint, and the export's own header says how many entries must follow.

use serde_json::Value;

use super::merkle::{Hash, leaf_hash, verify_inclusion};
use crate::formats::canonical::canonical_json;
use crate::formats::checkpoint::{Checkpoint, parse_note, verify_ed25519_note};
use crate::formats::digest::{hex_decode, hex_lower};

/// What a verified export holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub origin: String,
    pub tree_size: u64,
    pub entries: u64,
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

/// Verifies an export (JSON Lines: a header with the signed checkpoint, then one line per entry).
pub fn verify_export(text: &str, log_key: &[u8; 32]) -> Result<Verified, VerifyFailure> {
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
    let (_, header) = lines.next().ok_or_else(|| fail(1, "the export is empty"))?;
    let header: Value = serde_json::from_str(header).map_err(|e| fail(1, format!("header is not JSON: {e}")))?;
    let note = header["checkpoint"].as_str().ok_or_else(|| fail(1, "header has no checkpoint"))?;
    let (body, _) = parse_note(note).map_err(|e| fail(1, e.to_string()))?;
    let claimed = Checkpoint::parse_body(&body).map_err(|e| fail(1, e.to_string()))?;
    verify_ed25519_note(note, &claimed.origin, log_key)
        .map_err(|_| fail(1, format!("the checkpoint is not signed by this log key for {}", claimed.origin)))?;
    let first = header["first_index"].as_u64().ok_or_else(|| fail(1, "header has no first_index"))?;
    let count = header["count"].as_u64().ok_or_else(|| fail(1, "header has no count"))?;

    let mut expected_index = first;
    for (number, line) in lines {
        let record: Value = serde_json::from_str(line).map_err(|e| fail(number, format!("not JSON: {e}")))?;
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
            text.lines().count() + 1,
            format!(
                "the export ends after entry {}, its header promises {count} entries from {first}",
                expected_index.saturating_sub(1)
            ),
        ));
    }
    Ok(Verified { origin: claimed.origin, tree_size: claimed.size, entries: count })
}
