//! The store's subject locks on a real database: a tag's lock held through one store makes every other
//! waiter on the database (on PostgreSQL, a second store as another replica would open it) wait until it is
//! released, dropped or its holder cancelled, and a wait that runs out is a timeout naming the lock.

use crate::support;

use std::sync::Arc;
use std::time::Duration;

use notarium::store::{Store, StoreError, TagLock};
use support::{test_database_url, testing_postgres};

fn lock(tag: &str) -> TagLock {
    TagLock { registry: "registry.example".into(), repository: "team/app".into(), tag: tag.into() }
}

/// Two stores on one database where it is shared (PostgreSQL), else one store twice: SQLite serves one process.
async fn two_replicas(dir: &std::path::Path) -> (Arc<dyn Store>, Arc<dyn Store>) {
    let url = test_database_url(dir);
    let a = notarium::store::open(&url).await.unwrap();
    let b = if testing_postgres() { notarium::store::open(&url).await.unwrap() } else { a.clone() };
    (a, b)
}

const SHORT: Duration = Duration::from_millis(200);
const LONG: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_tag_lock_excludes_every_waiter_until_released_dropped_or_its_holder_cancelled() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = two_replicas(dir.path()).await;
    let (sig, other) = (lock("sha256-aa.sig"), lock("sha256-aa.att"));

    let held = a.subject_locks().acquire(&sig, LONG).await.unwrap();
    let refused = b.subject_locks().acquire(&sig, SHORT).await.err().unwrap();
    assert!(matches!(refused, StoreError::LockTimeout { .. }), "{refused}");
    assert_eq!(
        refused.to_string(),
        "timed out after 200 ms waiting for the lock on registry.example/team/app:sha256-aa.sig"
    );
    let free = b.subject_locks().acquire(&other, SHORT).await.unwrap();
    free.release().await;

    held.release().await;
    let dropped = b.subject_locks().acquire(&sig, SHORT).await.unwrap();
    drop(dropped);
    let (acquired, holding) = tokio::sync::oneshot::channel();
    let holder = {
        let (locks, sig) = (a.subject_locks(), sig.clone());
        tokio::spawn(async move {
            let _held = locks.acquire(&sig, LONG).await.unwrap();
            acquired.send(()).unwrap();
            std::future::pending::<()>().await;
        })
    };
    holding.await.unwrap();
    assert!(b.subject_locks().acquire(&sig, SHORT).await.is_err(), "the holder's task holds it");
    holder.abort();
    let _ = holder.await;
    let after_cancel = b.subject_locks().acquire(&sig, LONG).await.unwrap();
    after_cancel.release().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiter_whose_wait_ran_out_leaves_the_lock_usable() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = two_replicas(dir.path()).await;
    let sig = lock("sha256-bb.sig");
    let held = a.subject_locks().acquire(&sig, LONG).await.unwrap();
    for _ in 0..3 {
        assert!(b.subject_locks().acquire(&sig, Duration::from_millis(50)).await.is_err());
    }
    held.release().await;
    for store in [&a, &b, &a] {
        store.subject_locks().acquire(&sig, LONG).await.unwrap().release().await;
    }
}
