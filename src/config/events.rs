//! `[events]`: registry notifications. Names the shared secret's source ([`SecretRef`]); never reads it.

use std::path::PathBuf;

use serde::Deserialize;

use super::ConfigError;
use crate::keys::SecretRef;

/// Registry notifications (`POST /v1/events/registry`): off unless a shared secret is configured. The
/// registry sends it as `Authorization: Bearer <secret>` (distribution's endpoint `headers`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsConfig {
    /// See [`EventsConfig::registry_secret`].
    pub(super) registry_secret_env: Option<String>,
    pub(super) registry_secret_file: Option<PathBuf>,
}

impl EventsConfig {
    /// The shared secret registries present: `registry_secret_env` or `registry_secret_file`; none turns
    /// notifications off.
    pub fn registry_secret(&self) -> Result<Option<SecretRef>, ConfigError> {
        let (env, file) = (self.registry_secret_env.as_deref(), self.registry_secret_file.as_deref());
        SecretRef::from_pair("[events]", "registry_secret", env, file).map_err(ConfigError::Invalid)
    }
}
