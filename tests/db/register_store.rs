//! The register on a real database (SQLite, or PostgreSQL with `NOTARIUM_TEST_DATABASE=postgres`): roots
//! and proofs served from stored subtree hashes agree with a tree recomputed here from scratch, proofs
//! verify (also with the upper levels cached in memory, after appends and a restart, and after group commits that
//! follow another writer's appends), the tables refuse edits, appends from two stores on one database serialize, and signature rows
//! go from pending to stored or away.

use crate::support;

use std::path::Path;
use std::sync::Arc;

use notarium::merkle::{Hash, NodeId, verify_consistency, verify_inclusion};
use notarium::register::Register;
use notarium::store::{Append, Appended, Effect, NewSignature, RecordKind, RegisterStore, Store, StoreError};
use sha2::{Digest as _, Sha256};
use support::{TestDatabase, test_database_url};

async fn open(dir: &Path) -> Arc<dyn Store> {
    notarium::store::open(&test_database_url(dir)).await.unwrap()
}

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
    let store = runtime.block_on(open(dir.path()));
    let log = runtime.block_on(async { Register::new(store) });
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
        let database = TestDatabase::connect(&test_database_url(dir.path())).await;
        let mut edits = vec![
            "UPDATE log_entries SET entry = leaf_hash WHERE idx = 3",
            "DELETE FROM log_entries WHERE idx = 3",
            "UPDATE log_nodes SET hash = hash WHERE level = 0 AND idx = 3",
            "DELETE FROM log_nodes",
        ];
        if database.is_postgres() {
            edits.extend(["TRUNCATE log_entries", "TRUNCATE log_nodes", "TRUNCATE log_entries, log_nodes"]);
        }
        for edit in edits {
            let err = database.execute(edit).await.unwrap_err();
            assert!(err.contains("append-only"), "{edit}: {err}");
        }
        assert_eq!(database.scalar("SELECT COUNT(*) FROM log_entries").await, all.len() as i64);
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_through_group_commit_each_land_once_at_the_index_they_are_told() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(Register::new(open(dir.path()).await));
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
    let log = Register::new(open(dir.path()).await);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stores_on_one_database_appending_under_one_key_concurrently_log_it_once() {
    let dir = tempfile::tempdir().unwrap();
    let stores = [open(dir.path()).await, open(dir.path()).await];
    let writers: Vec<_> = (0..16)
        .map(|n| {
            let store = stores[n % 2].clone();
            tokio::spawn(async move {
                let batch = [
                    Append { entry: format!("once {n}").into_bytes(), effect: Effect::Once { key: "k".into() } },
                    Append::plain(format!("plain {n}").into_bytes()),
                ];
                store.append_batch(&batch).await.unwrap()
            })
        })
        .collect();
    let mut once = Vec::new();
    for writer in writers {
        let (placed, _) = writer.await.unwrap();
        once.push(placed[0]);
    }
    assert_eq!(once.iter().filter(|p| p.new).count(), 1, "{once:?}");
    assert!(once.iter().all(|p| p.index == once[0].index), "{once:?}");
    let size = stores[0].tree_size().await.unwrap();
    assert_eq!(size, 17, "one keyed entry and sixteen plain ones");
    let entries = stores[1].entries(0, size).await.unwrap();
    assert_eq!(entries.iter().filter(|(_, e)| e.starts_with(b"once")).count(), 1);
    assert!(entries[once[0].index as usize].1.starts_with(b"once"));
    let log = Register::new(stores[1].clone());
    let all: Vec<Vec<u8>> = entries.into_iter().map(|(_, e)| e).collect();
    assert_eq!(log.root(size).await.unwrap(), reference_root(&all));
}

fn sample() -> NewSignature {
    NewSignature {
        kind: RecordKind::Signature,
        actor: "anonymous".into(),
        source_addr: Some("127.0.0.1:1".into()),
        registry: "r.example".into(),
        repository: "app".into(),
        digest: format!("sha256:{}", "a".repeat(64)),
        identity: "r.example/app".into(),
        key_id: "k".into(),
        key_version: 1,
        algorithm: "ed25519".into(),
        payload_digest: format!("sha256:{}", "b".repeat(64)),
        signature_b64: "c2ln".into(),
        signature_tag: format!("sha256-{}.sig", "a".repeat(64)),
        created_at: "2026-11-23T10:00:00Z".into(),
        artifacts: Vec::new(),
    }
}

#[tokio::test]
async fn a_signature_is_pending_until_confirmed_and_abandoning_removes_only_pending_rows() {
    let dir = tempfile::tempdir().unwrap();
    // A SQLite file's missing directory is created.
    let url = test_database_url(&dir.path().join("nested"));
    let store = notarium::store::open(&url).await.unwrap();
    let first = store.begin_signature(&sample()).await.unwrap();
    let second = store.begin_signature(&sample()).await.unwrap();
    assert_eq!(store.pending_signatures().await.unwrap().len(), 2);
    let confirm = Append {
        entry: b"{}".to_vec(),
        effect: Effect::ConfirmSignature {
            id: first,
            signature: Box::new(sample()),
            manifest_digest: "sha256:m".into(),
        },
    };
    assert_eq!(
        store.append_batch(std::slice::from_ref(&confirm)).await.unwrap(),
        (vec![Appended { index: 0, new: true }], 1)
    );
    assert_eq!(store.append_batch(&[confirm]).await.unwrap(), (vec![Appended { index: 0, new: false }], 1));
    store.abandon_signature(first).await.unwrap();
    store.abandon_signature(second).await.unwrap();
    // A reconciling peer removed this row before its sign confirmed: the confirmation writes it again.
    let other = NewSignature { signature_b64: "b3RoZXI=".into(), ..sample() };
    let removed = store.begin_signature(&other).await.unwrap();
    store.abandon_signature(removed).await.unwrap();
    let late =
        Effect::ConfirmSignature { id: removed, signature: Box::new(other.clone()), manifest_digest: "m2".into() };
    let (placed, size) = store.append_batch(&[Append { entry: b"[]".to_vec(), effect: late }]).await.unwrap();
    assert_eq!((placed, size), (vec![Appended { index: 1, new: true }], 2));
    let rows = store.signatures_of(&sample().digest).await.unwrap();
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|r| !r.pending));
    assert_eq!(rows[0].manifest_digest.as_deref(), Some("sha256:m"));
    assert_eq!(rows[0].signature, sample());
    assert_eq!((rows[1].signature.clone(), rows[1].manifest_digest.as_deref()), (other, Some("m2")));
    drop(store);
    let reopened = notarium::store::open(&url).await.unwrap();
    assert_eq!(reopened.count_signatures().await.unwrap(), 2);
}

/// A store that counts the nodes asked of it, to see which reads the cached upper levels spare.
struct CountingStore {
    inner: Arc<dyn Store>,
    nodes_read: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl RegisterStore for CountingStore {
    async fn append_batch(&self, batch: &[Append]) -> Result<(Vec<Appended>, u64), StoreError> {
        self.inner.append_batch(batch).await
    }
    async fn tree_size(&self) -> Result<u64, StoreError> {
        self.inner.tree_size().await
    }
    async fn node_hashes(&self, nodes: &[NodeId]) -> Result<Vec<Hash>, StoreError> {
        self.nodes_read.fetch_add(nodes.len(), std::sync::atomic::Ordering::SeqCst);
        self.inner.node_hashes(nodes).await
    }
    async fn level_hashes(&self, level: u32, indexes: std::ops::Range<u64>) -> Result<Vec<Hash>, StoreError> {
        self.inner.level_hashes(level, indexes).await
    }
    async fn entries(&self, start: u64, end: u64) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        self.inner.entries(start, end).await
    }
    async fn search(
        &self,
        filter: &notarium::store::SearchFilter,
        before: Option<u64>,
        limit: u32,
    ) -> Result<Vec<notarium::store::Found>, StoreError> {
        self.inner.search(filter, before, limit).await
    }
}

fn entries_from(first: usize, count: usize) -> Vec<Vec<u8>> {
    (first..first + count).map(|n| format!(r#"{{"kind":"sign","n":{n}}}"#).into_bytes()).collect()
}

/// Every inclusion proof at `size`, every consistency proof into it and its root, from `cached` and from
/// `uncached` (which reads every node from the store), must be equal and verify against a recomputed tree.
async fn assert_cached_answers_equal_stored(cached: &Register, uncached: &Register, all: &[Vec<u8>], size: u64) {
    let root = reference_root(&all[..size as usize]);
    assert_eq!(cached.root(size).await.unwrap(), root, "root at {size}");
    for index in 0..size {
        let proof = cached.inclusion_proof(index, size).await.unwrap();
        assert_eq!(proof, uncached.inclusion_proof(index, size).await.unwrap(), "entry {index} at {size}");
        verify_inclusion(&leaf(&all[index as usize]), index, size, &proof, &root).unwrap();
    }
    for earlier in 1..size {
        let proof = cached.consistency_proof(earlier, size).await.unwrap();
        assert_eq!(proof, uncached.consistency_proof(earlier, size).await.unwrap(), "{earlier} to {size}");
    }
    let all_proofs = cached.inclusion_proofs(0..size, size).await.unwrap();
    assert_eq!(all_proofs, uncached.inclusion_proofs(0..size, size).await.unwrap());
}

#[tokio::test]
async fn proofs_from_the_cached_upper_levels_equal_the_stored_ones_after_appends_from_here_and_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    let cached = Register::with_cached_levels(store.clone(), 1);
    let uncached = Register::with_cached_levels(store.clone(), 64);
    let elsewhere = Register::new(open(dir.path()).await);
    let mut all = Vec::new();
    for (batch, from_here) in [(1, true), (2, true), (5, false), (8, true), (13, false), (1, true), (33, true)] {
        let entries = entries_from(all.len(), batch);
        let appends: Vec<Append> = entries.iter().cloned().map(Append::plain).collect();
        let appender = if from_here { &cached } else { &elsewhere };
        appender.append_all(&appends).await.unwrap();
        all.extend(entries);
        let size = cached.size().await.unwrap();
        assert_eq!(size, all.len() as u64);
        // Earlier sizes after the cache already covers a later one, then the newest.
        for earlier in [size / 3, size / 2, size] {
            assert_cached_answers_equal_stored(&cached, &uncached, &all, earlier.max(1)).await;
        }
    }
}

#[tokio::test]
async fn after_a_restart_the_cache_is_read_again_and_a_proof_reads_only_the_uncached_levels_from_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let all = entries_from(0, 100);
    let before: Vec<Vec<Hash>> = {
        let log = Register::new(open(dir.path()).await);
        log.append_all(&all.iter().cloned().map(Append::plain).collect::<Vec<_>>()).await.unwrap();
        log.inclusion_proofs(0..100, 100).await.unwrap()
    };
    let counting = Arc::new(CountingStore { inner: open(dir.path()).await, nodes_read: Default::default() });
    let restarted = Register::with_cached_levels(counting.clone(), 2);
    let uncached = Register::with_cached_levels(open(dir.path()).await, 64);
    assert_cached_answers_equal_stored(&restarted, &uncached, &all, 100).await;
    for (index, proof) in before.iter().enumerate() {
        assert_eq!(&restarted.inclusion_proof(index as u64, 100).await.unwrap(), proof, "entry {index}");
    }
    // Warm: only levels 0 and 1 come from the store, whatever the entry.
    for index in [0, 37, 63, 64, 99] {
        counting.nodes_read.store(0, std::sync::atomic::Ordering::SeqCst);
        restarted.inclusion_proof(index, 100).await.unwrap();
        let read = counting.nodes_read.load(std::sync::atomic::Ordering::SeqCst);
        assert!(read <= 2, "entry {index}: {read} nodes read from the store");
    }
}

#[tokio::test]
async fn a_level_read_past_the_stored_nodes_names_the_first_missing_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    let log = Register::new(store.clone());
    log.append_all(&entries_from(0, 5).into_iter().map(Append::plain).collect::<Vec<_>>()).await.unwrap();
    assert_eq!(store.level_hashes(1, 0..2).await.unwrap().len(), 2);
    assert_eq!(store.level_hashes(1, 2..2).await.unwrap(), Vec::<Hash>::new());
    let err = store.level_hashes(1, 1..3).await.unwrap_err().to_string();
    assert!(err.contains("register node 1/2 is missing"), "{err}");
}

/// The sequencer keeps the tree's right edge between its group commits and reads no node while it is the only
/// writer; an append by another store on the database (another replica or process) must still be noticed
/// inside the next group's transaction, or the nodes it writes and the root it answers would be wrong.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_commits_after_another_writer_appended_still_build_the_right_tree_and_answer_its_root() {
    let dir = tempfile::tempdir().unwrap();
    let here = Register::new(open(dir.path()).await);
    let elsewhere = open(dir.path()).await;
    let mut all = Vec::new();
    for (batch, from_here) in
        [(3, true), (1, true), (2, false), (1, true), (5, false), (1, false), (4, true), (1, true)]
    {
        let entries = entries_from(all.len(), batch);
        if from_here {
            for entry in &entries {
                let placed = here.append(Append::plain(entry.clone())).await.unwrap();
                let upto: Vec<Vec<u8>> = all.iter().chain(&entries).take(placed.tree_size as usize).cloned().collect();
                assert_eq!(here.root(placed.tree_size).await.unwrap(), reference_root(&upto), "{}", placed.tree_size);
            }
        } else {
            elsewhere.append_batch(&entries.iter().cloned().map(Append::plain).collect::<Vec<_>>()).await.unwrap();
        }
        all.extend(entries);
    }
    let size = all.len() as u64;
    let fresh = Register::with_cached_levels(open(dir.path()).await, 64);
    assert_eq!(fresh.root(size).await.unwrap(), reference_root(&all));
    for index in 0..size {
        let proof = fresh.inclusion_proof(index, size).await.unwrap();
        verify_inclusion(&leaf(&all[index as usize]), index, size, &proof, &reference_root(&all)).unwrap();
    }
}
