//! [`SubjectLocks`] on PostgreSQL, shared by every notarium process on one database: first the in-process
//! lock (one waiter per lock per process reaches the database), then `pg_advisory_xact_lock(int4, int4)`
//! inside a transaction on a connection of a pool of its own, so a wait never takes a connection the
//! register's appends need. The two-key form is a key space of its own, apart from the single-`bigint`
//! `APPEND_LOCK` (`postgres_register.rs`) and sqlx's migration lock. The wait is bounded by `lock_timeout`,
//! and the lock ends with its transaction: on release, on a dropped guard (sqlx rolls the transaction back
//! before the connection is reused) and with the connection if the process dies.
//!
//! Owns: the PostgreSQL statements of subject locks. Must not touch: the register's lock or statements.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::{PgPool, Postgres, Transaction};
use tokio::sync::OwnedMutexGuard;
use tokio::time::Instant;

use super::StoreError;
use super::subject_locks::{HeldLock, Release, SubjectLocks, TagLock};
use super::subject_locks_local::{LocalSubjectLocks, timed_out};

/// PostgreSQL's SQLSTATE for a lock wait that `lock_timeout` ended.
const LOCK_NOT_AVAILABLE: &str = "55P03";

pub struct PostgresSubjectLocks {
    local: LocalSubjectLocks,
    pool: PgPool,
}

impl PostgresSubjectLocks {
    /// Locks whose waits and holds use connections of `pool` (one per held lock).
    pub(super) fn new(pool: PgPool) -> Self {
        Self { local: LocalSubjectLocks::default(), pool }
    }

    /// A transaction holding `lock`'s advisory lock, waiting at most until `deadline`.
    async fn hold_shared(
        &self,
        lock: &TagLock,
        deadline: Instant,
        wait: Duration,
    ) -> Result<Transaction<'static, Postgres>, StoreError> {
        let left = deadline.saturating_duration_since(Instant::now());
        let begun = tokio::time::timeout(left, self.pool.begin()).await.map_err(|_| timed_out(lock, wait))??;
        let mut tx = begun;
        let left = deadline.saturating_duration_since(Instant::now()).as_millis().max(1);
        sqlx::query("SELECT set_config('lock_timeout', $1, true)").bind(format!("{left}ms")).execute(&mut *tx).await?;
        let key = lock.key().to_be_bytes();
        let high = i32::from_be_bytes([key[0], key[1], key[2], key[3]]);
        let low = i32::from_be_bytes([key[4], key[5], key[6], key[7]]);
        let locked = sqlx::query("SELECT pg_advisory_xact_lock($1, $2)").bind(high).bind(low).execute(&mut *tx).await;
        match locked {
            Ok(_) => Ok(tx),
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some(LOCK_NOT_AVAILABLE) => {
                Err(timed_out(lock, wait))
            }
            Err(e) => Err(e.into()),
        }
    }
}

#[async_trait]
impl SubjectLocks for PostgresSubjectLocks {
    async fn acquire(&self, lock: &TagLock, wait: Duration) -> Result<HeldLock, StoreError> {
        let deadline = Instant::now() + wait;
        let local = self.local.hold(lock, wait).await?;
        let tx = self.hold_shared(lock, deadline, wait).await?;
        Ok(HeldLock(Box::new(Held { tx, _local: local })))
    }
}

/// The advisory lock's transaction, then the in-process guard: fields drop in this order.
struct Held {
    tx: Transaction<'static, Postgres>,
    _local: OwnedMutexGuard<()>,
}

#[async_trait]
impl Release for Held {
    async fn release(self: Box<Self>) {
        let Self { tx, _local } = *self;
        if let Err(e) = tx.rollback().await {
            // sqlx closes a connection whose rollback failed: the session, and its lock, end with it.
            tracing::warn!(error = %e, "ending a subject lock's transaction failed");
        }
    }
}
