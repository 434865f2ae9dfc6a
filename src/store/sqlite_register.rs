//! How SQLite appends to the register (`migrations/sqlite/0002`): one writer at a time, queued in-process
//! on a mutex and then holding SQLite's write lock (`BEGIN IMMEDIATE`) for the whole append, always on the
//! same connection (`SqliteStore::appender`, so its page cache stays warm). The mutex also
//! guards the search index rows this process's appends hold back (`batch::HeldIndex`).
//!
//! Owns: beginning SQLite's append transaction. Must not touch: the statements (`sql.rs`) or the append
//! algorithm (`batch.rs`).

use std::sync::Arc;

use sqlx::{Sqlite, SqlitePool};

use super::sql::{Appending, Backend};
use super::{SqliteStore, StoreError, SubjectLocks};

impl Backend for SqliteStore {
    type Db = Sqlite;
    /// One process appends to a SQLite database at a time, queued on `append_lock`, which guards the rows.
    const HOLDS_INDEX_ROWS: bool = true;

    fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    async fn begin_append(&self) -> Result<Appending<'_, Sqlite>, StoreError> {
        let held = self.append_lock.lock().await;
        let tx = self.appender.begin_with("BEGIN IMMEDIATE").await?;
        Ok(Appending { tx, held: Some(held) })
    }

    fn tag_locks(&self) -> Arc<dyn SubjectLocks> {
        self.subject_locks.clone()
    }
}
