//! [`Store`] on SQLite (the embedded default): WAL, one file, migrations from `migrations/sqlite`.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous};
use sqlx::{Row, SqlSafeStr, SqlitePool};

use super::{NewSignature, SignatureRecord, Store, StoreError};

fn migrator() -> Migrator {
    let migration = |version, description: &'static str, sql: &'static str| {
        Migration::new(version, description.into(), MigrationType::Simple, sql.into_sql_str(), false)
    };
    Migrator::with_migrations(vec![
        migration(1, "signatures", include_str!("../../migrations/sqlite/0001_signatures.sql")),
        migration(2, "register", include_str!("../../migrations/sqlite/0002_register.sql")),
        migration(3, "dedupe", include_str!("../../migrations/sqlite/0003_dedupe.sql")),
    ])
}

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
        migrator().run(&pool).await.map_err(|e| StoreError::Migration(e.to_string()))?;
        Ok(Self { pool, append_lock: tokio::sync::Mutex::new(()) })
    }
}

/// The INSERT of a signature row in `state`, returning its id.
pub(super) fn insert_signature<'q>(
    s: &'q NewSignature,
    state: &'static str,
    manifest_digest: Option<&'q str>,
) -> sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments> {
    sqlx::query(
        "INSERT INTO signatures (state, actor, source_addr, registry, repository, digest, identity, key_id, \
         key_version, algorithm, payload_digest, signature_b64, signature_tag, manifest_digest, created_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(state)
    .bind(&s.actor)
    .bind(&s.source_addr)
    .bind(&s.registry)
    .bind(&s.repository)
    .bind(&s.digest)
    .bind(&s.identity)
    .bind(&s.key_id)
    .bind(i64::from(s.key_version))
    .bind(&s.algorithm)
    .bind(&s.payload_digest)
    .bind(&s.signature_b64)
    .bind(&s.signature_tag)
    .bind(manifest_digest)
    .bind(&s.created_at)
}

const SELECT_SIGNATURE: &str = "SELECT id, state, actor, source_addr, registry, repository, digest, identity, key_id, \
     key_version, algorithm, payload_digest, signature_b64, signature_tag, manifest_digest, created_at FROM signatures";

fn record(row: &SqliteRow) -> SignatureRecord {
    SignatureRecord {
        id: row.get("id"),
        pending: row.get::<String, _>("state") == "pending",
        signature: NewSignature {
            actor: row.get("actor"),
            source_addr: row.get("source_addr"),
            registry: row.get("registry"),
            repository: row.get("repository"),
            digest: row.get("digest"),
            identity: row.get("identity"),
            key_id: row.get("key_id"),
            key_version: row.get::<i64, _>("key_version") as u32,
            algorithm: row.get("algorithm"),
            payload_digest: row.get("payload_digest"),
            signature_b64: row.get("signature_b64"),
            signature_tag: row.get("signature_tag"),
            created_at: row.get("created_at"),
        },
        manifest_digest: row.get("manifest_digest"),
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn begin_signature(&self, s: &NewSignature) -> Result<i64, StoreError> {
        let row = insert_signature(s, "pending", None).fetch_one(&self.pool).await?;
        Ok(row.get("id"))
    }

    async fn abandon_signature(&self, id: i64) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM signatures WHERE id = ? AND state = 'pending'").bind(id).execute(&self.pool).await?;
        Ok(())
    }

    async fn pending_signatures(&self) -> Result<Vec<SignatureRecord>, StoreError> {
        let sql = format!("{SELECT_SIGNATURE} WHERE state = 'pending' ORDER BY id");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(&self.pool).await?;
        Ok(rows.iter().map(record).collect())
    }

    async fn signatures_of(&self, digest: &str) -> Result<Vec<SignatureRecord>, StoreError> {
        let sql = format!("{SELECT_SIGNATURE} WHERE digest = ? ORDER BY id");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(digest).fetch_all(&self.pool).await?;
        Ok(rows.iter().map(record).collect())
    }

    async fn count_signatures(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM signatures").fetch_one(&self.pool).await?;
        Ok(row.get("n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Append, Appended, Effect, LogStore};

    fn sample() -> NewSignature {
        NewSignature {
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
        }
    }

    #[tokio::test]
    async fn a_signature_is_pending_until_confirmed_and_abandoning_removes_only_pending_rows() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/nested/n.db", dir.path().display());
        let store = SqliteStore::open(&url).await.unwrap();
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
        let rows = store.signatures_of(&sample().digest).await.unwrap();
        assert_eq!(rows.len(), 1);
        assert!(!rows[0].pending);
        assert_eq!(rows[0].manifest_digest.as_deref(), Some("sha256:m"));
        assert_eq!(rows[0].signature, sample());
        drop(store);
        let reopened = SqliteStore::open(&url).await.unwrap();
        assert_eq!(reopened.count_signatures().await.unwrap(), 1);
    }
}
