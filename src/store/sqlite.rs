//! [`Store`] on SQLite (the embedded default): WAL, one file, migrations from `migrations/sqlite`. The
//! statements are shared (`sql.rs`); appends are serialized in `sqlite_register.rs`.

use std::fs::Permissions;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use super::batch::HeldIndex;
use super::{LocalSubjectLocks, StoreError};

pub struct SqliteStore {
    pub(super) pool: SqlitePool,
    /// The one connection register appends use (`sqlite_register.rs`): SQLite drops a connection's page cache
    /// whenever another connection wrote since, so appends taking turns on the pool's connections read back
    /// the pages each group touches; on one connection they stay cached.
    pub(super) appender: SqlitePool,
    /// SQLite has one writer; appends queue here instead of failing with SQLITE_BUSY. It guards the search
    /// index rows the appends hold back.
    pub(super) append_lock: tokio::sync::Mutex<HeldIndex>,
    /// One process per SQLite database: subject locks are in-process.
    pub(super) subject_locks: std::sync::Arc<LocalSubjectLocks>,
}

/// WAL pages (of 4 KiB) between automatic checkpoints.
const WAL_CHECKPOINT_PAGES: u32 = 8192;

impl SqliteStore {
    /// Opens (creating if needed) the database file and applies migrations.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Unavailable(e.to_string()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            // Every append dirties a leaf of each search index at a random place (digests, repositories), and
            // a checkpoint copies each dirtied page once however often it was dirtied since the last one:
            // checkpointing every 32 MiB of WAL instead of SQLite's 4 MiB copies those pages ~8 times less
            // often. Durability is the WAL's fsync at each commit (`synchronous=FULL`), not the checkpoint.
            .pragma("wal_autocheckpoint", WAL_CHECKPOINT_PAGES.to_string())
            // 8 MiB of page cache per connection (SQLite's default is 2 MiB): the index leaves an append
            // touches stay in memory instead of being read back from the file.
            .pragma("cache_size", "-8192")
            // A multi-row INSERT keeps a statement journal (the pages it changes, to undo the statement alone),
            // which SQLite spills to a temporary file past 64 KiB: each group's inserts wrote nearly as many
            // bytes there as to the WAL. In memory it is never written.
            .pragma("temp_store", "memory");
        let file = options.get_filename().to_owned();
        let on_disk = !url.contains(":memory:") && !url.contains("mode=memory");
        if on_disk {
            create_private(&file)
                .map_err(|e| StoreError::Unavailable(format!("cannot create {}: {e}", file.display())))?;
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options.clone())
            .await?;
        super::embedded_migrations!("sqlite").run(&pool).await.map_err(|e| StoreError::Migration(e.to_string()))?;
        if on_disk {
            // SQLite gives its -wal and -shm files the database file's mode; this holds if it ever does not.
            restrict_companions(&file)
                .map_err(|e| StoreError::Unavailable(format!("cannot restrict {}-wal/-shm: {e}", file.display())))?;
        }
        let appender = if on_disk {
            SqlitePoolOptions::new()
                .max_connections(1)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(options)
                .await?
        } else {
            pool.clone() // a second pool would open another in-memory database
        };
        Ok(Self { pool, appender, append_lock: Default::default(), subject_locks: Default::default() })
    }
}

/// Creates the database file owner-only (0600) and its missing folders owner-only (0700), whatever the
/// umask: the database holds token hashes and who signed what. Existing files and folders keep their modes.
fn create_private(file: &Path) -> std::io::Result<()> {
    if let Some(folder) = file.parent().filter(|p| !p.as_os_str().is_empty() && !p.exists()) {
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(folder)?;
        std::fs::set_permissions(folder, Permissions::from_mode(0o700))?;
    }
    match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(file) {
        Ok(_) => std::fs::set_permissions(file, Permissions::from_mode(0o600)),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Gives the -wal and -shm files next to `file` the database file's owner-only mode when it has it.
fn restrict_companions(file: &Path) -> std::io::Result<()> {
    if std::fs::metadata(file)?.permissions().mode() & 0o077 != 0 {
        return Ok(()); // an operator's choice for an existing database
    }
    for suffix in ["-wal", "-shm"] {
        let mut companion = file.as_os_str().to_owned();
        companion.push(suffix);
        match std::fs::set_permissions(&companion, Permissions::from_mode(0o600)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}
