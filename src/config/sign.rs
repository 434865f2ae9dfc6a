//! `[sign]`: what `POST /v1/sign` puts into the signatures it writes beside the registry's choice of formats
//! (that is `[registries.formats]`), and how many images one request may sign.

use serde::Deserialize;

use super::ConfigError;

/// The most images one `POST /v1/sign` names when `[sign] max_batch` is not set.
pub const DEFAULT_MAX_BATCH: usize = 64;

/// The highest `[sign] max_batch` accepted: a batch is one request, one transaction and one answer.
const MAX_BATCH_CEILING: usize = 1024;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignConfig {
    /// Days after signing at which a Notary Project signature expires (`io.cncf.notary.expiry`, a critical
    /// claim `notation verify` enforces); absent: no expiry, as `notation sign` writes by default.
    pub notation_expiry_days: Option<u32>,
    /// The most images one request may list in `images` (1–1024); absent: [`DEFAULT_MAX_BATCH`].
    pub max_batch: Option<usize>,
}

impl SignConfig {
    /// The most images one request may list.
    pub fn max_batch(&self) -> usize {
        self.max_batch.unwrap_or(DEFAULT_MAX_BATCH)
    }

    pub(super) fn check(&self) -> Result<(), ConfigError> {
        match self.max_batch {
            Some(n) if n == 0 || n > MAX_BATCH_CEILING => {
                Err(ConfigError::Invalid(format!("[sign] max_batch is {n}; it must be 1 to {MAX_BATCH_CEILING}")))
            }
            _ => Ok(()),
        }
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
}
