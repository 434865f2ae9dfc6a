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

    /// `[sign] name` defaults to `default`, takes 1 and `ceiling`, and refuses 0 and `ceiling + 1` naming itself.
    fn bounded(
        name: &str,
        set: fn(usize) -> SignConfig,
        read: fn(&SignConfig) -> usize,
        default: usize,
        ceiling: usize,
    ) {
        assert_eq!(read(&SignConfig::default()), default);
        for ok in [1, default, ceiling] {
            assert!(set(ok).check().is_ok(), "{name} {ok}");
            assert_eq!(read(&set(ok)), ok);
        }
        for bad in [0, ceiling + 1] {
            let Err(ConfigError::Invalid(message)) = set(bad).check() else { panic!("{name} {bad} accepted") };
            assert!(message.contains(&format!("[sign] {name} is {bad}")), "{message}");
        }
    }

    #[test]
    fn max_batch_defaults_to_64_and_must_be_1_to_1024() {
        let set = |n| SignConfig { max_batch: Some(n), ..Default::default() };
        bounded("max_batch", set, SignConfig::max_batch, DEFAULT_MAX_BATCH, 1024);
    }

    #[test]
    fn max_batch_manifests_defaults_to_256_and_must_be_1_to_4096() {
        let set = |n| SignConfig { max_batch_manifests: Some(n), ..Default::default() };
        bounded("max_batch_manifests", set, SignConfig::max_batch_manifests, DEFAULT_MAX_BATCH_MANIFESTS, 4096);
    }
}
