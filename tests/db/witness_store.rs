//! `witness_cosignatures` on both databases: rows read back by tree size in the order added, the latest size
//! per witness, and no edit through SQL (append-only triggers, TRUNCATE too on PostgreSQL).

use crate::support;

use notarium::store::CosignatureRecord;
use support::{TestDatabase, test_database_url};

fn record(tree_size: u64, witness: &str, line: &str) -> CosignatureRecord {
    CosignatureRecord {
        tree_size,
        root_hash: [tree_size as u8; 32],
        witness: witness.into(),
        vkey: format!("{witness}+00000000+BA=="),
        cosigned_at: 1_800_000_000,
        line: line.into(),
        received_at: "2026-11-30T00:00:00Z".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cosignatures_are_kept_by_size_and_never_edited() {
    let dir = tempfile::tempdir().unwrap();
    let url = test_database_url(dir.path());
    let store = notarium::store::open(&url).await.unwrap();
    assert_eq!(store.latest_cosigned_size("w1").await.unwrap(), None);
    store.add_cosignatures(&[record(3, "w1", "a\n"), record(3, "w2", "b\n")]).await.unwrap();
    store.add_cosignatures(&[record(7, "w1", "c\n")]).await.unwrap();
    let at_three = store.cosignatures(3).await.unwrap();
    assert_eq!(at_three, [record(3, "w1", "a\n"), record(3, "w2", "b\n")]);
    assert!(store.cosignatures(4).await.unwrap().is_empty());
    assert_eq!(store.latest_cosigned_size("w1").await.unwrap(), Some(7));
    assert_eq!(store.latest_cosigned_size("w2").await.unwrap(), Some(3));

    let database = TestDatabase::connect(&url).await;
    let mut edits = vec![
        "UPDATE witness_cosignatures SET line = 'x' WHERE tree_size = 3",
        "DELETE FROM witness_cosignatures WHERE tree_size = 7",
    ];
    if database.is_postgres() {
        edits.push("TRUNCATE witness_cosignatures");
    }
    for edit in edits {
        let err = database.execute(edit).await.unwrap_err();
        assert!(err.contains("append-only"), "{edit}: {err}");
    }
    assert_eq!(database.scalar("SELECT COUNT(*) FROM witness_cosignatures").await, 3);
}
