//! Which credentials notarium presents to a registry, keyed by canonical registry host, from the places a
//! user already keeps them, most specific first: credentials given explicitly (`notarium verify
//! --registry-username`), then `[registries.auth]`.
//!
//! Owns: reading those sources into [`RegistryCredentials`]. Must not touch: HTTP (`distribution.rs`
//! presents them) or logs: a password is held in `Zeroizing` and never formatted.

use std::collections::HashMap;

use super::RegistryCredentials;
use crate::config::RegistriesConfig;
use crate::keys::SecretSource;

/// Credentials by canonical registry host.
pub type CredentialMap = HashMap<String, RegistryCredentials>;

#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("[registries.auth] {host:?}: {reason}")]
    Config { host: String, reason: String },
}

/// The credentials of `[registries.auth]` (hosts already canonical, see `Config::load`), each password
/// read from its `password_env` or `password_file`.
pub fn from_config(registries: &RegistriesConfig) -> Result<CredentialMap, CredentialsError> {
    let mut credentials = CredentialMap::new();
    for (host, auth) in &registries.auth {
        let invalid = |reason: String| CredentialsError::Config { host: host.clone(), reason };
        let source = SecretSource::from_config(auth.password_env.as_ref(), auth.password_file.as_ref(), "password")
            .map_err(invalid)?;
        let password = source.read().map_err(invalid)?;
        credentials.insert(host.clone(), RegistryCredentials { username: auth.username.clone(), password });
    }
    Ok(credentials)
}

/// `sources`, most specific first, merged: a host takes its credentials from the first source naming it.
pub fn merged(sources: impl IntoIterator<Item = CredentialMap>) -> CredentialMap {
    let mut credentials = CredentialMap::new();
    for source in sources {
        for (host, entry) in source {
            credentials.entry(host).or_insert(entry);
        }
    }
    credentials
}

#[cfg(test)]
mod tests {
    use super::*;
    use zeroize::Zeroizing;

    fn entry(username: &str) -> RegistryCredentials {
        RegistryCredentials { username: username.into(), password: Zeroizing::new("secret".into()) }
    }

    #[test]
    fn the_most_specific_source_wins_per_host() {
        let explicit = CredentialMap::from([("a.example".into(), entry("flag"))]);
        let configured =
            CredentialMap::from([("a.example".into(), entry("config")), ("b.example".into(), entry("config"))]);
        let merged = merged([explicit, configured]);
        assert_eq!(merged["a.example"].username, "flag");
        assert_eq!(merged["b.example"].username, "config");
    }

    #[test]
    fn an_entry_without_a_password_source_is_named() {
        let mut registries = RegistriesConfig::default();
        let auth = toml::from_str("username = \"ci\"").unwrap();
        registries.auth.insert("reg.example".into(), auth);
        let error = from_config(&registries).unwrap_err().to_string();
        assert!(error.contains("reg.example") && error.contains("_env"), "{error}");
    }
}
