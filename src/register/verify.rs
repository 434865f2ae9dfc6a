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
    export: impl BufRead + Send,
    log_key: &[u8; 32],
    since: Option<TrustedCheckpoint<'_>>,
) -> Result<Verified, VerifyFailure> {
    verify_export_with(export, log_key, since, None)
}

/// What [`verify_export_with`] hands each proved entry to: its line number, index and content.
pub type EntryCheck<'a> = &'a (dyn Fn(usize, u64, &Value) -> Result<(), VerifyFailure> + Sync);

/// [`verify_export`], handing each proved entry (line number, index, entry) to `visit`, whose failure
/// stops the verification. Lines are read in batches while the batch before is checked on every core.
pub fn verify_export_with(
    mut export: impl BufRead + Send,
    log_key: &[u8; 32],
    since: Option<TrustedCheckpoint<'_>>,
    visit: Option<EntryCheck<'_>>,
) -> Result<Verified, VerifyFailure> {
    let Header { checkpoint: claimed, first, count, extends_size } = read_header(&mut export, log_key, since)?;
    let mut expected_index = first;
    let mut batch = Batch::read(&mut export, 2)?;
    let mut number = 1;
    while !batch.is_empty() {
        let check = || batch.check(claimed.size, &claimed.root_hash, visit);
        let (next, indexes) = rayon::join(|| Batch::read(&mut export, batch.first_number + batch.len()), check);
        for (offset, index) in indexes.into_iter().enumerate() {
            number = batch.first_number + offset;
            let index = index?;
            if index != expected_index {
                return Err(fail(number, format!("entry {index} where entry {expected_index} belongs")));
            }
            expected_index += 1;
        }
        batch = next?;
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

/// Lines read at once and checked in parallel.
const BATCH_LINES: usize = 8192;

/// Consecutive lines of an export, the first numbered `first_number`, in one buffer.
struct Batch {
    first_number: usize,
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl Batch {
    fn read(reader: &mut (impl BufRead + ?Sized), first_number: usize) -> Result<Self, VerifyFailure> {
        let mut batch = Self { first_number, bytes: Vec::new(), ends: Vec::with_capacity(BATCH_LINES) };
        let mut line = Vec::new();
        while batch.ends.len() < BATCH_LINES && next_line(reader, &mut line, first_number + batch.ends.len())? {
            batch.bytes.extend_from_slice(&line);
            batch.ends.push(batch.bytes.len());
        }
        Ok(batch)
    }

    fn len(&self) -> usize {
        self.ends.len()
    }

    fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    fn line(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.bytes[start..self.ends[i]]
    }

    /// Each line's index once its entry is proved into the tree of `size` (and `visit` accepts it), in order.
    fn check(&self, size: u64, root: &Hash, visit: Option<EntryCheck<'_>>) -> Vec<Result<u64, VerifyFailure>> {
        use rayon::prelude::*;
        (0..self.len())
            .into_par_iter()
            .map(|i| {
                let (line, number) = (self.line(i), self.first_number + i);
                let quick = quick_check(line, size, root);
                let (index, entry) = match (quick, visit) {
                    (Some((index, _)), None) => return Ok(index),
                    (Some((index, text)), Some(_)) => match serde_json::from_slice(text) {
                        Ok(entry) => (index, entry),
                        Err(_) => check_entry_line(line, number, size, root)?,
                    },
                    (None, _) => check_entry_line(line, number, size, root)?,
                };
                if let Some(visit) = visit {
                    visit(number, index, &entry)?;
                }
                Ok(index)
            })
            .collect()
    }
}

/// An export line's fields, the entry skipped (its bytes are taken as they stand, see [`quick_check`]).
#[derive(serde::Deserialize)]
struct LineFields<'a> {
    index: u64,
    leaf_hash: &'a str,
    inclusion_proof: Vec<&'a str>,
    #[allow(dead_code)]
    entry: serde::de::IgnoredAny,
}

/// The common case without building the entry: a line as notarium writes it (`{"entry":{…},…}`), whose
/// entry text is byte for byte the leaf (it hashes to the stated leaf hash) and is proved into the tree.
/// `None` sends the line to [`check_entry_line`], which canonicalizes the entry and names what is wrong.
fn quick_check<'a>(line: &'a [u8], size: u64, root: &Hash) -> Option<(u64, &'a [u8])> {
    let entry = entry_text(line)?;
    let fields: LineFields<'_> = serde_json::from_slice(line).ok()?;
    let leaf = leaf_hash(entry);
    let stated: Hash = hex_decode(fields.leaf_hash)?.try_into().ok()?;
    if stated != leaf {
        return None;
    }
    let proof: Option<Vec<Hash>> =
        fields.inclusion_proof.iter().map(|h| hex_decode(h).and_then(|b| b.try_into().ok())).collect();
    verify_inclusion(&leaf, fields.index, size, &proof?, root).ok()?;
    Some((fields.index, entry))
}

/// The text of the object after a line's leading `{"entry":`, found by matching braces outside strings.
fn entry_text(line: &[u8]) -> Option<&[u8]> {
    const OPENING: &[u8] = b"{\"entry\":";
    let rest = line.strip_prefix(OPENING)?;
    if rest.first() != Some(&b'{') {
        return None;
    }
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for (i, &byte) in rest.iter().enumerate() {
        match (in_string, escaped, byte) {
            (true, true, _) => escaped = false,
            (true, false, b'\\') => escaped = true,
            (true, false, b'"') => in_string = false,
            (true, false, _) => {}
            (false, _, b'"') => in_string = true,
            (false, _, b'{' | b'[') => depth += 1,
            (false, _, b'}' | b']') => {
                depth -= 1;
                if depth == 0 {
                    return Some(&rest[..=i]);
                }
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_entry_text_ends_at_its_own_closing_brace_whatever_its_strings_hold() {
        let line = br#"{"entry":{"a":"}{\"]","b":[{"c":"\\"}]},"inclusion_proof":[],"index":0,"leaf_hash":"00"}"#;
        assert_eq!(entry_text(line), Some(&br#"{"a":"}{\"]","b":[{"c":"\\"}]}"#[..]));
        assert_eq!(entry_text(br#"{"index":0,"entry":{}}"#), None, "another field first takes the slow path");
        assert_eq!(entry_text(br#"{"entry":{"a":"unterminated}"#), None);
    }

    #[test]
    fn a_line_whose_entry_text_is_not_canonical_is_still_proved_by_its_content() {
        let entry = br#"{"a":1,"b":"x"}"#;
        let leaf = leaf_hash(entry);
        let line = format!(
            r#"{{"entry":{{ "b":"x", "a":1 }},"inclusion_proof":[],"index":0,"leaf_hash":"{}"}}"#,
            hex_lower(&leaf)
        );
        assert_eq!(quick_check(line.as_bytes(), 1, &leaf), None, "the quick path takes bytes as they stand");
        assert_eq!(check_entry_line(line.as_bytes(), 2, 1, &leaf).unwrap().0, 0);
        let canonical = format!(
            r#"{{"entry":{},"inclusion_proof":[],"index":0,"leaf_hash":"{}"}}"#,
            "{\"a\":1,\"b\":\"x\"}",
            hex_lower(&leaf)
        );
        assert_eq!(quick_check(canonical.as_bytes(), 1, &leaf).map(|(i, _)| i), Some(0));
    }
}
