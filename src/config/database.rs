//! `[database]`: which database (SQLite by default, or PostgreSQL) and how long a crashed sign stays pending.

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://…` or `postgres://user@host:5432/db` (`postgresql://` too); unset means `<data_dir>/notarium.db`.
    pub url: Option<String>,
    /// A sign interrupted by a crash whose signature is not (yet) in the registry is given up only after
    /// this many seconds: a write sent just before the crash may still land. Longer than the registry timeout.
    #[serde(default = "default_pending_grace")]
    pub pending_grace_secs: u64,
}

fn default_pending_grace() -> u64 {
    180
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self { url: None, pending_grace_secs: default_pending_grace() }
    }
}
