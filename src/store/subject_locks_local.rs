//! [`SubjectLocks`] inside one process: a table of async mutexes, one per tag lock. SQLite's lock (a SQLite
//! database has one notarium process), and the first step of PostgreSQL's, so that one process sends the
//! database at most one waiter per lock.
//!
//! Owns: the in-process lock table. Must not touch: SQL.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::OwnedMutexGuard;

use super::StoreError;
use super::subject_locks::{HeldLock, Release, SubjectLocks, TagLock};

/// Past this many entries, the locks nobody holds or waits for are dropped from the table.
const PRUNE_ABOVE: usize = 10_000;

#[derive(Default)]
pub struct LocalSubjectLocks {
    table: Mutex<HashMap<TagLock, Arc<tokio::sync::Mutex<()>>>>,
}

impl LocalSubjectLocks {
    /// The guard of `lock`'s mutex, waiting at most `wait`.
    pub(super) async fn hold(&self, lock: &TagLock, wait: Duration) -> Result<OwnedMutexGuard<()>, StoreError> {
        let mutex = self.mutex(lock);
        tokio::time::timeout(wait, mutex.lock_owned()).await.map_err(|_| timed_out(lock, wait))
    }

    fn mutex(&self, lock: &TagLock) -> Arc<tokio::sync::Mutex<()>> {
        let mut table = self.table.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if table.len() > PRUNE_ABOVE {
            table.retain(|_, mutex| Arc::strong_count(mutex) > 1);
        }
        table.entry(lock.clone()).or_default().clone()
    }
}

/// The error for a wait on `lock` that lasted `wait`.
pub(super) fn timed_out(lock: &TagLock, wait: Duration) -> StoreError {
    StoreError::LockTimeout { lock: lock.to_string(), waited_ms: wait.as_millis() }
}

#[async_trait]
impl SubjectLocks for LocalSubjectLocks {
    async fn acquire(&self, lock: &TagLock, wait: Duration) -> Result<HeldLock, StoreError> {
        Ok(HeldLock(Box::new(self.hold(lock, wait).await?)))
    }
}

#[async_trait]
impl Release for OwnedMutexGuard<()> {
    async fn release(self: Box<Self>) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lock(tag: &str) -> TagLock {
        TagLock { registry: "r.example".into(), repository: "app".into(), tag: tag.into() }
    }

    #[tokio::test]
    async fn a_held_lock_makes_the_next_wait_time_out_naming_it_and_other_tags_stay_free() {
        let locks = LocalSubjectLocks::default();
        let held = locks.acquire(&lock("sha256-a.sig"), Duration::from_secs(1)).await.unwrap();
        let error = locks.acquire(&lock("sha256-a.sig"), Duration::from_millis(20)).await.err().unwrap();
        assert_eq!(error.to_string(), "timed out after 20 ms waiting for the lock on r.example/app:sha256-a.sig");
        let other = locks.acquire(&lock("sha256-a.att"), Duration::from_millis(20)).await;
        assert!(other.is_ok(), "another tag has its own lock");
        held.release().await;
        assert!(locks.acquire(&lock("sha256-a.sig"), Duration::from_millis(20)).await.is_ok());
    }

    #[tokio::test]
    async fn a_dropped_guard_and_a_cancelled_holder_release_the_lock() {
        let locks = Arc::new(LocalSubjectLocks::default());
        drop(locks.acquire(&lock("t"), Duration::from_secs(1)).await.unwrap());
        let (acquired, holding) = tokio::sync::oneshot::channel();
        let holder = {
            let locks = locks.clone();
            tokio::spawn(async move {
                let _held = locks.acquire(&lock("t"), Duration::from_secs(1)).await.unwrap();
                acquired.send(()).unwrap();
                std::future::pending::<()>().await;
            })
        };
        holding.await.unwrap();
        holder.abort();
        let _ = holder.await;
        assert!(locks.acquire(&lock("t"), Duration::from_millis(50)).await.is_ok());
    }
}
