//! `[ca]`: notarium's own certificate authority, which issues each ECDSA image-signing key without a
//! `certificate_chain` a code-signing leaf certificate, so every key can sign Notary Project signatures.
//! The CA key is one of the `[[keys]]` (Vault Transit, PKCS#11 or a file): it signs certificates through
//! its backend and never leaves it.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::ConfigError;

/// The certificate authority that issues the signing keys' certificates.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaConfig {
    /// The `[[keys]]` id of the CA key (its latest version signs). It signs certificates only.
    pub key: String,
    /// A PEM file: the CA key's own certificate, then the certificates that issued it up to the root (just
    /// one certificate when it is self-signed). Without it notarium makes a self-signed CA certificate at
    /// first start (valid ten years) and keeps it in the database, so every replica serves the same one.
    pub certificate: Option<PathBuf>,
    /// How long an issued leaf certificate is valid: `90d`, `12h`, `3600s` (never past the CA's own).
    #[serde(default = "default_validity")]
    pub validity: String,
    /// The leaf's subject as an RFC 4514 distinguished name; `{key_id}` and `{version}` are filled in.
    #[serde(default = "default_subject")]
    pub subject: String,
}

impl CaConfig {
    /// [`Self::validity`] as a duration.
    pub fn validity(&self) -> Result<Duration, ConfigError> {
        parse_duration(&self.validity).filter(|d| *d >= Duration::from_secs(3600)).ok_or_else(|| {
            ConfigError::Invalid(format!(
                "[ca] validity {:?}: write a whole number of days (90d), hours (12h) or seconds, at least an hour",
                self.validity
            ))
        })
    }

    /// The subject for key `key_id`'s `version`.
    pub fn subject_for(&self, key_id: &str, version: u32) -> String {
        self.subject.replace("{key_id}", key_id).replace("{version}", &version.to_string())
    }

    pub(super) fn check(&self) -> Result<(), ConfigError> {
        self.validity()?;
        if !self.subject.contains('=') {
            return Err(ConfigError::Invalid(format!(
                "[ca] subject {:?} is not a distinguished name such as \"CN={{key_id}}, O=Example\"",
                self.subject
            )));
        }
        Ok(())
    }
}

fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit())?);
    let number: u64 = number.parse().ok()?;
    let seconds = match unit {
        "d" => number.checked_mul(86_400)?,
        "h" => number.checked_mul(3600)?,
        "s" => number,
        _ => return None,
    };
    Some(Duration::from_secs(seconds))
}

fn default_validity() -> String {
    "90d".into()
}

fn default_subject() -> String {
    "CN={key_id}, O=notarium".into()
}
