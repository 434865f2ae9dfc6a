//! [`Store`] on SQLite (the embedded default): WAL, one file, migrations from `migrations/sqlite`. The
//! statements are shared (`sql.rs`); appends are serialized in `sqlite_log.rs`.

use std::str::FromStr;
use std::time::Duration;

use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use super::StoreError;

pub struct SqliteStore {
    pub(super) pool: SqlitePool,
    /// SQLite has one writer; appends queue here instead of failing with SQLITE_BUSY.
    pub(super) append_lock: tokio::sync::Mutex<()>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and applies migrations.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Unavailable(e.to_string()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10));
        if let Some(parent) = options.get_filename().parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|e| StoreError::Unavailable(format!("cannot create {}: {e}", parent.display())))?;
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        super::embedded_migrations!("sqlite").run(&pool).await.map_err(|e| StoreError::Migration(e.to_string()))?;
        Ok(Self { pool, append_lock: tokio::sync::Mutex::new(()) })
    }
}
