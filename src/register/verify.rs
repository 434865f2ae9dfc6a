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
    /// The root hash of the signed checkpoint, which every entry was proved into.
    pub root_hash: Hash,
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

pub(crate) fn fail(line: usize, reason: impl Into<String>) -> VerifyFailure {
    VerifyFailure { line, reason: reason.into() }
}

pub(crate) fn parse_hash(value: &Value) -> Option<Hash> {
    hex_decode(value.as_str()?)?.try_into().ok()
}

/// A checkpoint (signed note) the auditor saved from an earlier look at the log.
#[derive(Debug, Clone, Copy)]
pub struct TrustedCheckpoint<'a> {
    pub note: &'a str,
}

/// The checkpoint `note` states, once its signature by `log_key` holds.
pub(crate) fn signed_checkpoint(note: &str, log_key: &[u8; 32], line: usize) -> Result<Checkpoint, VerifyFailure> {
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

/// The longest line an export may hold: far above any entry notarium writes (an entry is bounded by the
/// request that made it), low enough that a hostile file cannot exhaust memory with one endless line.
pub const MAX_LINE_BYTES: usize = 16 << 20;

/// Reads the next line (without its `\n`) into `buf`, refusing one longer than [`MAX_LINE_BYTES`];
/// `Ok(false)` at the end.
pub(crate) fn next_line(
    reader: &mut (impl BufRead + ?Sized),
    buf: &mut Vec<u8>,
    number: usize,
) -> Result<bool, VerifyFailure> {
    buf.clear();
    let read = std::io::Read::take(&mut *reader, MAX_LINE_BYTES as u64 + 1)
        .read_until(b'\n', buf)
        .map_err(|e| fail(number, format!("cannot read: {e}")))?;
    if read == 0 {
        return Ok(false);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
    } else if buf.len() > MAX_LINE_BYTES {
        return Err(fail(number, format!("the line is longer than the limit of {MAX_LINE_BYTES} bytes")));
    }
    Ok(true)
}

/// An export's first line, checked: the signed checkpoint and, with `since`, consistency from it.
#[derive(Debug, Clone)]
pub(crate) struct Header {
    pub checkpoint: Checkpoint,
    pub first: u64,
    pub count: u64,
    pub extends_size: Option<u64>,
}

/// Reads and checks the header line of an export.
pub(crate) fn read_header(
    export: &mut (impl BufRead + ?Sized),
    log_key: &[u8; 32],
    since: Option<TrustedCheckpoint<'_>>,
) -> Result<Header, VerifyFailure> {
    let mut line = Vec::new();
    if !next_line(export, &mut line, 1)? {
        return Err(fail(1, "the export is empty"));
    }
    let header: Value = serde_json::from_slice(&line).map_err(|e| fail(1, format!("header is not JSON: {e}")))?;
    let note = header["checkpoint"].as_str().ok_or_else(|| fail(1, "header has no checkpoint"))?;
    let checkpoint = signed_checkpoint(note, log_key, 1)?;
    let mut extends_size = None;
    if let Some(earlier) = since {
        let earlier = signed_checkpoint(earlier.note, log_key, 1)
            .map_err(|e| fail(1, format!("the saved checkpoint: {}", e.reason)))?;
        check_consistency(&header, &earlier, &checkpoint)?;
        extends_size = Some(earlier.size);
    }
    let first = header["first_index"].as_u64().ok_or_else(|| fail(1, "header has no first_index"))?;
    let count = header["count"].as_u64().ok_or_else(|| fail(1, "header has no count"))?;
    Ok(Header { checkpoint, first, count, extends_size })
}

/// One entry line of an export, checked: its leaf hash recomputed from the entry and its inclusion proof
/// into the tree of `size` with root `root`. Returns the index and the entry.
pub(crate) fn check_entry_line(
    line: &[u8],
    number: usize,
    size: u64,
    root: &Hash,
) -> Result<(u64, Value), VerifyFailure> {
    let mut record: Value = serde_json::from_slice(line).map_err(|e| fail(number, format!("not JSON: {e}")))?;
    let index = record["index"].as_u64().ok_or_else(|| fail(number, "no index"))?;
    let leaf = leaf_hash(&canonical_json(&record["entry"]));
    if parse_hash(&record["leaf_hash"]) != Some(leaf) {
        return Err(fail(number, format!("entry {index}: its leaf hash is not the hash of its content")));
    }
    let proof: Option<Vec<Hash>> =
        record["inclusion_proof"].as_array().map(|a| a.iter().map(parse_hash).collect()).unwrap_or(None);
    let proof = proof.ok_or_else(|| fail(number, format!("entry {index}: malformed inclusion proof")))?;
    verify_inclusion(&leaf, index, size, &proof, root)
        .map_err(|e| fail(number, format!("entry {index} ({}) is not in the signed tree: {e}", hex_lower(&leaf))))?;
    Ok((index, record["entry"].take()))
}

/// Verifies an export (JSON Lines: a header with the signed checkpoint, then one line per entry), and
/// with `since`, that the exported tree extends that earlier checkpoint.
pub fn verify_export(
    export: impl BufRead,
    log_key: &[u8; 32],
    since: Option<TrustedCheckpoint<'_>>,
) -> Result<Verified, VerifyFailure> {
    verify_export_with(export, log_key, since, |_, _, _| Ok(()))
}

/// [`verify_export`], handing each proved entry (line number, index, entry) to `visit`, whose failure
/// stops the verification.
pub fn verify_export_with(
    mut export: impl BufRead,
    log_key: &[u8; 32],
    since: Option<TrustedCheckpoint<'_>>,
    mut visit: impl FnMut(usize, u64, &Value) -> Result<(), VerifyFailure>,
) -> Result<Verified, VerifyFailure> {
    let Header { checkpoint: claimed, first, count, extends_size } = read_header(&mut export, log_key, since)?;
    let mut expected_index = first;
    let (mut number, mut line) = (1, Vec::new());
    while next_line(&mut export, &mut line, number + 1)? {
        number += 1;
        let (index, entry) = check_entry_line(&line, number, claimed.size, &claimed.root_hash)?;
        if index != expected_index {
            return Err(fail(number, format!("entry {index} where entry {expected_index} belongs")));
        }
        visit(number, index, &entry)?;
        expected_index += 1;
    }
    if expected_index != first + count {
        return Err(fail(
            number + 1,
            format!(
                "the export ends after entry {}, its header promises {count} entries from {first}",
                expected_index.saturating_sub(1)
            ),
        ));
    }
    Ok(Verified {
        origin: claimed.origin,
        tree_size: claimed.size,
        root_hash: claimed.root_hash,
        first_index: first,
        entries: count,
        extends_size,
    })
}
