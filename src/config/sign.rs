//! `[sign]`: what `POST /v1/sign` puts into the signatures it writes beside the registry's choice of formats
//! (that is `[registries.formats]`), and how many images one request may sign.

use serde::Deserialize;

use super::ConfigError;

/// The most images one `POST /v1/sign` names when `[sign] max_batch` is not set.
pub const DEFAULT_MAX_BATCH: usize = 64;

/// The highest `[sign] max_batch` accepted: a batch is one request, one transaction and one answer.
const MAX_BATCH_CEILING: usize = 1024;

/// The most manifests one batch signs in all (its images and, with `recursive`, their platforms) when
/// `[sign] max_batch_manifests` is not set.
pub const DEFAULT_MAX_BATCH_MANIFESTS: usize = 256;

/// The highest `[sign] max_batch_manifests` accepted.
const MAX_BATCH_MANIFESTS_CEILING: usize = 4096;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignConfig {
    /// Days after signing at which a Notary Project signature expires (`io.cncf.notary.expiry`, a critical
    /// claim `notation verify` enforces); absent: no expiry, as `notation sign` writes by default.
    pub notation_expiry_days: Option<u32>,
    /// The most images one request may list in `images` (1–1024); absent: [`DEFAULT_MAX_BATCH`].
    pub max_batch: Option<usize>,
    /// The most manifests one batch signs in all, platforms included (1–4096); absent:
    /// [`DEFAULT_MAX_BATCH_MANIFESTS`].
    pub max_batch_manifests: Option<usize>,
}

impl SignConfig {
    /// The most images one request may list.
    pub fn max_batch(&self) -> usize {
        self.max_batch.unwrap_or(DEFAULT_MAX_BATCH)
    }

    /// The most manifests one batch signs in all.
    pub fn max_batch_manifests(&self) -> usize {
        self.max_batch_manifests.unwrap_or(DEFAULT_MAX_BATCH_MANIFESTS)
    }

    pub(super) fn check(&self) -> Result<(), ConfigError> {
        within("max_batch", self.max_batch, MAX_BATCH_CEILING)?;
        within("max_batch_manifests", self.max_batch_manifests, MAX_BATCH_MANIFESTS_CEILING)
    }
}

fn within(name: &str, value: Option<usize>, ceiling: usize) -> Result<(), ConfigError> {
    match value {
        Some(n) if n == 0 || n > ceiling => {
            Err(ConfigError::Invalid(format!("[sign] {name} is {n}; it must be 1 to {ceiling}")))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_batch_defaults_to_64_and_must_be_1_to_1024() {
        assert_eq!(SignConfig::default().max_batch(), DEFAULT_MAX_BATCH);
        for ok in [1, 64, 1024] {
            let config = SignConfig { max_batch: Some(ok), ..Default::default() };
            assert!(config.check().is_ok(), "{ok}");
            assert_eq!(config.max_batch(), ok);
        }
        for bad in [0, 1025] {
            let Err(ConfigError::Invalid(message)) = SignConfig { max_batch: Some(bad), ..Default::default() }.check()
            else {
                panic!("max_batch {bad} accepted")
            };
            assert!(message.contains("[sign] max_batch"), "{message}");
        }
    }

    #[test]
    fn max_batch_manifests_defaults_to_256_and_must_be_1_to_4096() {
        assert_eq!(SignConfig::default().max_batch_manifests(), DEFAULT_MAX_BATCH_MANIFESTS);
        for ok in [1, 256, 4096] {
            let config = SignConfig { max_batch_manifests: Some(ok), ..Default::default() };
            assert!(config.check().is_ok(), "{ok}");
            assert_eq!(config.max_batch_manifests(), ok);
        }
        for bad in [0, 4097] {
            let config = SignConfig { max_batch_manifests: Some(bad), ..Default::default() };
            let Err(ConfigError::Invalid(message)) = config.check() else {
                panic!("max_batch_manifests {bad} accepted")
            };
            assert!(message.contains("[sign] max_batch_manifests is"), "{message}");
        }
    }
}
