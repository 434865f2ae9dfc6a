//! [`Store`] on PostgreSQL, for several notarium replicas sharing one database: a connection pool and
//! migrations from `migrations/postgres`, applied at open under sqlx's own migration advisory lock (so
//! replicas starting together migrate once).
//!
//! Owns: connecting and migrating. Must not touch: the statements (`sql.rs`, shared with SQLite), how
//! appends serialize (`postgres_register.rs`), HTTP, registries or keys.

use std::str::FromStr;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use super::StoreError;

pub struct PostgresStore {
    pub(super) pool: PgPool,
}

impl PostgresStore {
    /// Connects to the database `url` names (which must exist) and applies migrations.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url).map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        super::embedded_migrations!("postgres").run(&pool).await.map_err(|e| StoreError::Migration(e.to_string()))?;
        Ok(Self { pool })
    }
}
