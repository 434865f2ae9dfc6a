//! `[events]`: registry notifications. Names the shared secret's source; never reads it.

use std::path::PathBuf;

use serde::Deserialize;

/// Registry notifications (`POST /v1/events/registry`): off unless a shared secret is configured. The
/// registry sends it as `Authorization: Bearer <secret>` (distribution's endpoint `headers`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsConfig {
    pub registry_secret_env: Option<String>,
    pub registry_secret_file: Option<PathBuf>,
}
