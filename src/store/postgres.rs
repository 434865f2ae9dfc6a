//! [`Store`] on PostgreSQL, for several notarium replicas sharing one database: a connection pool and
//! migrations from `migrations/postgres`, applied at open under sqlx's own migration advisory lock (so
//! replicas starting together migrate once), and a second, lazily connected pool for subject locks.
//!
//! Owns: connecting and migrating. Must not touch: the statements (`sql.rs`, shared with SQLite), how
//! appends serialize (`postgres_register.rs`), HTTP, registries or keys.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use super::{PostgresSubjectLocks, StoreError};

pub struct PostgresStore {
    pub(super) pool: PgPool,
    /// Subject locks, on a pool of their own (`subject_locks_postgres.rs`).
    pub(super) subject_locks: Arc<PostgresSubjectLocks>,
}

/// Connections for subject locks: each held lock keeps one for the registry write it guards.
const SUBJECT_LOCK_CONNECTIONS: u32 = 16;

impl PostgresStore {
    /// Connects to the database `url` names (which must exist) and applies migrations.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url).map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options.clone())
            .await?;
        super::embedded_migrations!("postgres").run(&pool).await.map_err(|e| StoreError::Migration(e.to_string()))?;
        // A lock's own wait bounds how long it queues for a connection (`subject_locks_postgres.rs`).
        let lock_pool = PgPoolOptions::new()
            .max_connections(SUBJECT_LOCK_CONNECTIONS)
            .acquire_timeout(Duration::from_secs(3600))
            .connect_lazy_with(options);
        Ok(Self { pool, subject_locks: Arc::new(PostgresSubjectLocks::new(lock_pool)) })
    }
}
