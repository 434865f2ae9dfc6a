//! The register on real SQLite: roots and proofs served from stored subtree hashes agree with a tree
//! recomputed here from scratch, proofs verify, and the tables refuse edits.

use std::sync::Arc;

use notarium::register::Log;
use notarium::register::merkle::{Hash, verify_consistency, verify_inclusion};
use notarium::store::{Append, Effect, SqliteStore};
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
    let log = runtime.block_on(async { Log::new(store) });
    let mut all: Vec<Vec<u8>> = Vec::new();
    let mut sizes = vec![0u64];
    for batch in [1usize, 1, 2, 5, 8, 1, 13, 32, 3] {
        let entries: Vec<Vec<u8>> =
            (0..batch).map(|i| format!(r#"{{"kind":"sign","n":{}}}"#, all.len() + i).into_bytes()).collect();
        let batch: Vec<Append> = entries.iter().cloned().map(Append::plain).collect();
        let (placed, size) = runtime.block_on(log.append_all(&batch)).unwrap();
        let indexes: Vec<u64> = placed.iter().map(|p| p.index).collect();
        assert_eq!(indexes, (all.len() as u64..(all.len() + batch.len()) as u64).collect::<Vec<_>>());
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_through_group_commit_each_land_once_at_the_index_they_are_told() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&format!("sqlite://{}/n.db", dir.path().display())).await.unwrap());
    let log = Arc::new(Log::new(store));
    let writers: Vec<_> = (0..64)
        .map(|n| {
            let log = log.clone();
            tokio::spawn(async move {
                let entry = format!(r#"{{"writer":{n}}}"#).into_bytes();
                (entry.clone(), log.append(Append::plain(entry)).await.unwrap())
            })
        })
        .collect();
    let mut placed = Vec::new();
    for writer in writers {
        placed.push(writer.await.unwrap());
    }
    let mut indexes: Vec<u64> = placed.iter().map(|(_, p)| p.index).collect();
    indexes.sort();
    assert_eq!(indexes, (0..64).collect::<Vec<_>>());
    let stored = log.entries(0, 64).await.unwrap();
    for (entry, at) in &placed {
        assert!(at.new && at.tree_size > at.index);
        assert_eq!(&stored[at.index as usize].1, entry, "entry {}", at.index);
    }
    let all: Vec<Vec<u8>> = stored.into_iter().map(|(_, e)| e).collect();
    assert_eq!(log.root(64).await.unwrap(), reference_root(&all));
}

#[tokio::test]
async fn an_append_under_a_key_already_used_is_answered_with_the_first_index_even_inside_one_batch() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&format!("sqlite://{}/n.db", dir.path().display())).await.unwrap());
    let log = Log::new(store);
    let once = |key: &str, entry: &str| Append { entry: entry.into(), effect: Effect::Once { key: key.into() } };
    let (placed, size) =
        log.append_all(&[once("a", "first"), Append::plain(b"plain".to_vec()), once("a", "again")]).await.unwrap();
    assert_eq!(size, 2);
    assert_eq!((placed[0].index, placed[0].new), (0, true));
    assert_eq!((placed[2].index, placed[2].new), (0, false));
    let later = log.append(once("a", "third time")).await.unwrap();
    assert_eq!((later.index, later.new, later.tree_size), (0, false, 2));
    assert_eq!(log.entries(0, 2).await.unwrap()[0].1, b"first");
}
