//! The database a test runs on: SQLite by default, PostgreSQL when `NOTARIUM_TEST_DATABASE=postgres`.
//! PostgreSQL is a throwaway cluster (apt `postgresql`, 15) started once per test binary: initdb and pg_ctl
//! as the `postgres` OS user when the tests run as root, data and socket in a temp dir, a free loopback port,
//! trust auth on loopback, fsync on. Each test gets a database of its own; the cluster stops at exit.
//!
//! Owns: that cluster and [`TestDatabase`], the tests' own SQL connection. Must not touch: the system's
//! cluster (`/var/lib/postgresql`) or any database it did not create.

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use tempfile::TempDir;

use super::{free_port, run};

/// `sqlite` (the default) or `postgres`: which database the store-touching tests use.
pub(crate) const TEST_DATABASE_ENV: &str = "NOTARIUM_TEST_DATABASE";

/// True when this run's tests use PostgreSQL.
pub(crate) fn testing_postgres() -> bool {
    match std::env::var(TEST_DATABASE_ENV).as_deref() {
        Err(_) | Ok("" | "sqlite") => false,
        Ok("postgres") => true,
        Ok(other) => panic!("{TEST_DATABASE_ENV}={other:?}: expected sqlite or postgres"),
    }
}

/// The database URL for a test working in `dir`: a SQLite file there, or a fresh PostgreSQL database.
/// Asking again for the same `dir` answers the same database (a restarted server keeps its data).
pub(crate) fn test_database_url(dir: &Path) -> String {
    if !testing_postgres() {
        return format!("sqlite://{}/notarium.db", dir.display());
    }
    let remembered = dir.join("test-database-url");
    if let Ok(url) = std::fs::read_to_string(&remembered) {
        return url;
    }
    let url = Postgres::shared().database();
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(&remembered, &url).unwrap();
    url
}

/// The throwaway cluster of this test binary.
pub(crate) struct Postgres {
    pub(crate) port: u16,
    bin: PathBuf,
    dir: TempDir,
}

static CLUSTER: OnceLock<Postgres> = OnceLock::new();

impl Postgres {
    /// The cluster, started on first use and stopped when the test binary exits (statics are never dropped).
    pub(crate) fn shared() -> &'static Self {
        CLUSTER.get_or_init(|| {
            let cluster = Self::start();
            cluster.stop_when_this_process_exits();
            cluster
        })
    }

    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let cluster = Self { port: 0, bin: bin_dir(), dir };
        cluster.chown_to_postgres();
        cluster.ok(cluster.as_owner("initdb").arg("-D").arg(cluster.data()).args([
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        ]));
        // Another process may take the free port between probing and binding: try a few.
        for _ in 0..5 {
            let port = free_port();
            if cluster.pg_ctl_start(port).status.success() {
                return Self { port, ..cluster };
            }
        }
        panic!("postgres could not bind a free port five times: {}", cluster.server_log());
    }

    /// A new, empty database; returns its URL.
    pub(crate) fn database(&self) -> String {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!("test_{}", NEXT.fetch_add(1, Ordering::Relaxed));
        self.psql(&format!("CREATE DATABASE {name}"));
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// Runs `sql` as the superuser in the `postgres` database.
    pub(crate) fn psql(&self, sql: &str) {
        let port = self.port.to_string();
        self.ok(Command::new(self.bin.join("psql"))
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", &port, "-U", "postgres"])
            .args(["-d", "postgres", "-c", sql]));
    }

    fn pg_ctl_start(&self, port: u16) -> Output {
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c max_connections=300 -c shared_buffers=32MB",
            self.dir.path().display()
        );
        let log = self.dir.path().join("server.log");
        run(self
            .as_owner("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(log)
            .args(["-w", "-t", "60", "-o"])
            .arg(options)
            .arg("start"))
    }

    /// Safe Rust has no exit hook, so a watcher process waits for this test process to end, then stops the
    /// cluster and removes its directory. A shell starts it in the background and exits at once (the watcher
    /// is nobody's child to wait for), in a process group of its own: a Ctrl-C that stops the tests does not
    /// stop it.
    fn stop_when_this_process_exits(&self) {
        let mut stop = self.as_owner("pg_ctl");
        stop.arg("-D").arg(self.data()).args(["-m", "immediate", "stop"]);
        let script = r#"(tail --pid="$1" -f /dev/null; dir=$2; shift 2; "$@"; rm -rf "$dir") &"#;
        let started = Command::new("sh")
            .args(["-c", script, "stop-test-cluster", &std::process::id().to_string()])
            .arg(self.dir.path())
            .arg(stop.get_program())
            .args(stop.get_args())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .status()
            .expect("sh runs");
        assert!(started.success(), "the cluster's watcher did not start");
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn server_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// PostgreSQL refuses to run as root: as root, its programs run as the `postgres` OS user.
    fn as_owner(&self, program: &str) -> Command {
        let program = self.bin.join(program);
        if !running_as_root() {
            return Command::new(program);
        }
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    }

    fn chown_to_postgres(&self) {
        if running_as_root() {
            self.ok(Command::new("chown").arg("postgres:postgres").arg(self.dir.path()));
        }
    }

    fn ok(&self, command: &mut Command) {
        let out = run(command);
        assert!(out.status.success(), "{command:?}: {}{}", String::from_utf8_lossy(&out.stderr), self.server_log());
    }
}

fn running_as_root() -> bool {
    run(Command::new("id").arg("-u")).stdout.trim_ascii() == b"0"
}

/// `pg_config --bindir`, else Debian 12's PostgreSQL 15.
fn bin_dir() -> PathBuf {
    let from_pg_config = Command::new("pg_config").arg("--bindir").output().ok().filter(|o| o.status.success());
    let dir = from_pg_config
        .map(|o| PathBuf::from(String::from_utf8_lossy(o.stdout.trim_ascii()).into_owned()))
        .unwrap_or_else(|| PathBuf::from("/usr/lib/postgresql/15/bin"));
    assert!(dir.join("initdb").exists(), "no initdb in {}: run scripts/install-test-deps.sh", dir.display());
    dir
}

/// A test's own connection to a notarium database, for reading rows and attempting forbidden edits.
pub(crate) enum TestDatabase {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

impl TestDatabase {
    pub(crate) async fn connect(url: &str) -> Self {
        if url.starts_with("sqlite:") {
            Self::Sqlite(sqlx::SqlitePool::connect(url).await.unwrap())
        } else {
            Self::Postgres(sqlx::PgPool::connect(url).await.unwrap())
        }
    }

    pub(crate) fn is_postgres(&self) -> bool {
        matches!(self, Self::Postgres(_))
    }

    /// Runs one statement; returns the rows it affected, or the database's error message.
    pub(crate) async fn execute(&self, sql: &str) -> Result<u64, String> {
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        let done = match self {
            Self::Sqlite(pool) => sqlx::query(sql).execute(pool).await.map(|d| d.rows_affected()),
            Self::Postgres(pool) => sqlx::query(sql).execute(pool).await.map(|d| d.rows_affected()),
        };
        done.map_err(|e| e.to_string())
    }

    /// The one blob `sql` selects, if a row matches.
    pub(crate) async fn bytes(&self, sql: &str) -> Option<Vec<u8>> {
        use sqlx::Row;
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        match self {
            Self::Sqlite(pool) => sqlx::query(sql).fetch_optional(pool).await.unwrap().map(|r| r.get(0)),
            Self::Postgres(pool) => sqlx::query(sql).fetch_optional(pool).await.unwrap().map(|r| r.get(0)),
        }
    }

    /// `bytes` as a literal in this database's SQL.
    pub(crate) fn blob_literal(&self, bytes: &[u8]) -> String {
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        if self.is_postgres() { format!("'\\x{hex}'::bytea") } else { format!("x'{hex}'") }
    }

    /// The one integer `sql` selects.
    pub(crate) async fn scalar(&self, sql: &str) -> i64 {
        use sqlx::Row;
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        match self {
            Self::Sqlite(pool) => sqlx::query(sql).fetch_one(pool).await.unwrap().get(0),
            Self::Postgres(pool) => sqlx::query(sql).fetch_one(pool).await.unwrap().get(0),
        }
    }
}
