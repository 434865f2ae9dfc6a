//! How PostgreSQL appends to the register (`migrations/postgres/0002`): every notarium process on one
//! database takes the same transaction-scoped advisory lock before it reads the tree size, so appends
//! serialize across replicas and no index is handed out twice.
//!
//! Owns: beginning PostgreSQL's append transaction. Must not touch: the statements (`sql.rs`) or the
//! append algorithm (`batch.rs`).

use std::sync::Arc;

use sqlx::{PgPool, Postgres};

use super::sql::{Appending, Backend};
use super::{PostgresStore, StoreError, SubjectLocks};

/// The advisory lock key every appender takes ("notarium" in ASCII); held until commit or rollback.
const APPEND_LOCK: i64 = 0x6e6f_7461_7269_756d;

impl Backend for PostgresStore {
    type Db = Postgres;
    const SKIP_LOCKED: &'static str = " FOR UPDATE SKIP LOCKED";

    fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// READ COMMITTED, so once the lock is held each statement sees every append committed before.
    async fn begin_append(&self) -> Result<Appending<'_, Postgres>, StoreError> {
        let mut tx = self.pool.begin_with("BEGIN ISOLATION LEVEL READ COMMITTED").await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(APPEND_LOCK).execute(&mut *tx).await?;
        Ok(Appending { tx, held: None })
    }

    fn tag_locks(&self) -> Arc<dyn SubjectLocks> {
        self.subject_locks.clone()
    }
}
