//! The register on real SQLite: roots and proofs served from stored subtree hashes agree with a tree
//! recomputed here from scratch, proofs verify, and the tables refuse edits.

use std::sync::Arc;

use notarium::register::Log;
use notarium::register::merkle::{Hash, verify_consistency, verify_inclusion};
use notarium::store::SqliteStore;
use sha2::{Digest as _, Sha256};

/// RFC 6962 MTH written out independently of the crate's Merkle code.
fn reference_root(entries: &[Vec<u8>]) -> Hash {
    match entries.len() {
        0 => Sha256::digest([]).into(),
        1 => Sha256::new().chain_update([0u8]).chain_update(&entries[0]).finalize().into(),
        n => {
            let mut k = 1;
            while k * 2 < n {
                k *= 2;
            }
            let (l, r) = (reference_root(&entries[..k]), reference_root(&entries[k..]));
            Sha256::new().chain_update([1u8]).chain_update(l).chain_update(r).finalize().into()
        }
    }
}

fn leaf(entry: &[u8]) -> Hash {
    Sha256::new().chain_update([0u8]).chain_update(entry).finalize().into()
}

#[test]
fn roots_and_proofs_from_stored_hashes_match_a_tree_recomputed_from_scratch() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/n.db", dir.path().display());
    let store = Arc::new(runtime.block_on(SqliteStore::open(&url)).unwrap());
    let log = Log::new(store);
    let mut all: Vec<Vec<u8>> = Vec::new();
    let mut sizes = vec![0u64];
    for batch in [1usize, 1, 2, 5, 8, 1, 13, 32, 3] {
        let entries: Vec<Vec<u8>> =
            (0..batch).map(|i| format!(r#"{{"kind":"sign","n":{}}}"#, all.len() + i).into_bytes()).collect();
        let (first, size) = runtime.block_on(log.append(&entries)).unwrap();
        assert_eq!(first, all.len() as u64);
        all.extend(entries);
        assert_eq!(size, all.len() as u64);
        let root = runtime.block_on(log.root(size)).unwrap();
        assert_eq!(root, reference_root(&all), "root after {size} entries");
        for index in [0, size / 2, size - 1] {
            let proof = runtime.block_on(log.inclusion_proof(index, size)).unwrap();
            verify_inclusion(&leaf(&all[index as usize]), index, size, &proof, &root).unwrap();
        }
        for &earlier in &sizes {
            let proof = runtime.block_on(log.consistency_proof(earlier, size)).unwrap();
            let earlier_root = reference_root(&all[..earlier as usize]);
            verify_consistency(earlier, size, &earlier_root, &root, &proof).unwrap();
        }
        sizes.push(size);
    }
    assert!(runtime.block_on(log.inclusion_proof(0, all.len() as u64 + 1)).is_err());

    runtime.block_on(async {
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        for edit in [
            "UPDATE log_entries SET entry = x'00' WHERE idx = 3",
            "DELETE FROM log_entries WHERE idx = 3",
            "UPDATE log_nodes SET hash = x'00' WHERE level = 0 AND idx = 3",
            "DELETE FROM log_nodes",
        ] {
            let err = sqlx::query(edit).execute(&pool).await.unwrap_err().to_string();
            assert!(err.contains("append-only"), "{edit}: {err}");
        }
    });
}
