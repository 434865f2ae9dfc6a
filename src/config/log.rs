//! `[log]`: the register's checkpoints (origin line and signing key).

use serde::Deserialize;

/// The register's checkpoints.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// The checkpoint's origin line (and the note key name).
    pub origin: Option<String>,
    /// The Ed25519 key (`id` or `id@N`) that signs checkpoints, and nothing else: no image or attestation is
    /// signed with it and no policy may trust it. By default `dev-log` when configured (the embedded
    /// defaults do).
    pub key: Option<String>,
}

impl LogConfig {
    pub fn origin(&self) -> String {
        self.origin.clone().unwrap_or_else(|| "notarium.local/log".into())
    }
}
