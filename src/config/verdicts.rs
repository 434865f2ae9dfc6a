//! `[verdicts]`: the key that signs verdicts (decisions written as in-toto statements, docs/FORMATS.md §27),
//! their predicate format and whether they are attached to the image. Absent: no verdicts.
//!
//! Must not touch: policies (that the key is trusted by none is checked where policies are loaded).

use serde::Deserialize;

use super::ConfigError;
pub use crate::formats::verdict::VerdictFormat;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerdictsConfig {
    /// A configured `[[keys]]` id, or `id@N`.
    pub key: String,
    #[serde(default)]
    pub format: VerdictFormat,
    /// Attach each new (digest, policy version, result) verdict to the image as an attestation.
    #[serde(default)]
    pub attach: bool,
}

impl VerdictsConfig {
    /// The key's id (without a version).
    pub fn key_id(&self) -> &str {
        self.key.split_once('@').map_or(self.key.as_str(), |(id, _)| id)
    }

    pub(super) fn check(&self, key_ids: &[&str]) -> Result<(), ConfigError> {
        if !key_ids.contains(&self.key_id()) {
            return Err(ConfigError::Invalid(format!("[verdicts] key {:?} is not one of the [[keys]]", self.key)));
        }
        if let Some((_, version)) = self.key.split_once('@')
            && version.parse::<u32>().is_err()
        {
            return Err(ConfigError::Invalid(format!("[verdicts] key {:?} is not ID or ID@N", self.key)));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_must_be_configured_and_the_format_defaults_to_svr() {
        let config: VerdictsConfig = toml::from_str("key = \"verdicts@2\"").unwrap();
        assert_eq!(config.format, VerdictFormat::Svr);
        assert!(!config.attach);
        assert!(config.check(&["verdicts"]).is_ok());
        let Err(ConfigError::Invalid(message)) = config.check(&["prod"]) else { panic!("unknown key accepted") };
        assert!(message.contains("[verdicts] key \"verdicts@2\""), "{message}");
        let bad: VerdictsConfig = toml::from_str("key = \"verdicts@x\"").unwrap();
        assert!(bad.check(&["verdicts"]).is_err());
    }
}
