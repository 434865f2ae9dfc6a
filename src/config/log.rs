//! `[log]`: the register's checkpoints (origin line and signing key) and the witnesses that cosign them
//! (`[[log.witnesses]]`).

use std::time::Duration;

use serde::Deserialize;

use super::ConfigError;
use crate::formats::cosignature::WitnessKey;

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
    /// C2SP tlog-witnesses each new checkpoint is sent to (add-checkpoint with a consistency proof).
    #[serde(default)]
    pub witnesses: Vec<WitnessConfig>,
    /// How often the register's size is looked at for a checkpoint to send to the witnesses (default 10 s).
    pub witness_interval_secs: Option<u64>,
    /// How long one request to a witness may take, answer included (default 10 s).
    pub witness_timeout_secs: Option<u64>,
}

/// One witness: where its `add-checkpoint` is (the submission prefix) and its verifier key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WitnessConfig {
    /// The submission prefix: requests go to `<url>/add-checkpoint`.
    pub url: String,
    /// The witness's vkey, `name+hexid+base64(0x04||Ed25519 key)` (C2SP tlog-cosignature/v1); its name is
    /// the name on the witness's cosignature lines.
    pub vkey: String,
}

/// A witness as the service uses it.
#[derive(Debug, Clone)]
pub struct Witness {
    pub key: WitnessKey,
    pub url: reqwest::Url,
}

impl LogConfig {
    pub fn origin(&self) -> String {
        self.origin.clone().unwrap_or_else(|| "notarium.local/log".into())
    }

    pub fn witness_interval(&self) -> Duration {
        Duration::from_secs(self.witness_interval_secs.unwrap_or(10).max(1))
    }

    pub fn witness_timeout(&self) -> Duration {
        Duration::from_secs(self.witness_timeout_secs.unwrap_or(10).max(1))
    }

    /// The witnesses, checked: vkeys parse, URLs are http(s), names are distinct.
    pub fn witnesses(&self) -> Result<Vec<Witness>, ConfigError> {
        let mut witnesses: Vec<Witness> = Vec::new();
        for (i, w) in self.witnesses.iter().enumerate() {
            let key = WitnessKey::parse_vkey(&w.vkey)
                .map_err(|e| ConfigError::Invalid(format!("[[log.witnesses]] #{}: vkey: {e}", i + 1)))?;
            let url = reqwest::Url::parse(&w.url)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
                .ok_or_else(|| {
                    ConfigError::Invalid(format!("[[log.witnesses]] {}: url is not an http(s) URL", key.name))
                })?;
            if witnesses.iter().any(|other| other.key.name == key.name) {
                return Err(ConfigError::Invalid(format!("[[log.witnesses]] {} is configured twice", key.name)));
            }
            witnesses.push(Witness { key, url });
        }
        Ok(witnesses)
    }
}
