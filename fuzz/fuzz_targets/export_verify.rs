//! Export files given to `log verify`: whatever the input, the verifier never panics; and an export written
//! by notarium's own writer over the input's JSON lines, with a checkpoint signed by the log key, verifies
//! (so canonical JSON entries hash the same after the export's JSON round trip), while the same export
//! checked under another key does not.
#![no_main]

use ed25519_dalek::{Signer as _, SigningKey};
use libfuzzer_sys::fuzz_target;
use notarium::formats::canonical::canonical_json;
use notarium::formats::checkpoint::{Checkpoint, NoteSignature, ed25519_key_id, format_note};
use notarium::merkle::{Hash, empty_root, leaf_hash, node_hash};
use notarium::register::export::{entry_line, header_line};
use notarium::register::verify::verify_export;

const ORIGIN: &str = "fuzz.example/log";

fuzz_target!(|input: &[u8]| {
    let log = SigningKey::from_bytes(&[7; 32]);
    let log_key = log.verifying_key().to_bytes();
    let _ = verify_export(input, &log_key, None);

    let entries: Vec<Vec<u8>> = input
        .split(|&b| b == b'\n')
        .filter_map(|line| serde_json::from_slice::<serde_json::Value>(line).ok())
        .map(|value| canonical_json(&value))
        .take(64)
        .collect();
    let export = write_export(&log, &entries);
    let verified = verify_export(export.as_bytes(), &log_key, None)
        .unwrap_or_else(|e| panic!("notarium's own export does not verify: {e}\n{export}"));
    assert_eq!(verified.entries, entries.len() as u64);
    let other = SigningKey::from_bytes(&[8; 32]).verifying_key().to_bytes();
    assert!(verify_export(export.as_bytes(), &other, None).is_err(), "an export verified under another key");
});

/// The export of a whole tree of `entries`, its checkpoint signed by `log`.
fn write_export(log: &SigningKey, entries: &[Vec<u8>]) -> String {
    let leaves: Vec<Hash> = entries.iter().map(|e| leaf_hash(e)).collect();
    let body = Checkpoint { origin: ORIGIN.into(), size: leaves.len() as u64, root_hash: root(&leaves) }.body();
    let signature = NoteSignature {
        name: ORIGIN.into(),
        key_id: ed25519_key_id(ORIGIN, &log.verifying_key().to_bytes()),
        signature: log.sign(body.as_bytes()).to_bytes().to_vec(),
    };
    let size = leaves.len() as u64;
    let mut export = header_line(&format_note(&body, &[signature]), size, 0, size, None);
    for (index, entry) in entries.iter().enumerate() {
        export.push_str(&entry_line(index as u64, entry, &path(index, &leaves)));
    }
    export
}

/// RFC 6962 §2.1: the largest power of two smaller than `n` (n > 1).
fn split(n: usize) -> usize {
    1 << (usize::BITS - 1 - (n - 1).leading_zeros())
}

/// RFC 6962 MTH.
fn root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => node_hash(&root(&leaves[..split(n)]), &root(&leaves[split(n)..])),
    }
}

/// RFC 6962 PATH: the inclusion proof of leaf `m`.
fn path(m: usize, leaves: &[Hash]) -> Vec<Hash> {
    if leaves.len() <= 1 {
        return Vec::new();
    }
    let k = split(leaves.len());
    let (mut proof, sibling) = if m < k {
        (path(m, &leaves[..k]), root(&leaves[k..]))
    } else {
        (path(m - k, &leaves[k..]), root(&leaves[..k]))
    };
    proof.push(sibling);
    proof
}
