//! Configuration: `notarium.toml` (path from `--config` or `NOTARIUM_CONFIG`), `NOTARIUM_*` overrides,
//! and the embedded defaults `notarium serve` runs on with no file at all.
//!
//! One file per table (`server.rs`, `database.rs`, `registries.rs`, `keys.rs`, `policies.rs`, `log.rs`,
//! `events.rs`, `auth.rs`, `sigstore.rs`, `sign.rs`, `sign_on_push.rs`, `ca.rs`, `tsa.rs`, `verdicts.rs`); this one holds the whole [`Config`], its loading and the checks across tables.
//!
//! Owns: reading and validating settings. Must not touch: secrets' values. Secrets are named here by the
//! environment variable or file that holds them, and only read where they are used.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

mod auth;
mod ca;
mod database;
mod events;
mod keys;
mod log;
mod policies;
mod registries;
mod server;
mod sign;
mod sign_on_push;
mod sigstore;
mod tsa;
mod verdicts;

pub use auth::{AuthConfig, ClaimRule, OidcConfig, Role};
pub use ca::CaConfig;
pub use database::DatabaseConfig;
pub use events::EventsConfig;
use keys::{DEV_LOG_KEY, example_keys, is_example_key};
pub use keys::{KeyConfig, Pkcs11KeyConfig, VaultAuthMethod, VaultKeyConfig};
pub use log::{LogConfig, Witness, WitnessConfig};
pub use policies::{EvidenceLimits, PoliciesConfig};
use registries::host_list;
pub use registries::{RegistriesConfig, RegistryAuthConfig, SignFormat, split_host_list};
pub use server::ServerConfig;
pub use sign::{DEFAULT_MAX_BATCH, DEFAULT_MAX_BATCH_MANIFESTS, SignConfig};
pub use sign_on_push::{SignOnPushRule, SignQueueConfig};
pub use sigstore::{NamedTrustedRoot, PUBLIC_GOOD, SigstoreConfig, TrustedRootConfig, TrustedRoots};
pub use tsa::{Tsa, TsaConfig};
pub use verdicts::{VerdictFormat, VerdictsConfig};

/// A larger configuration file is refused unread (the example is a few kilobytes).
pub const MAX_CONFIG_BYTES: u64 = crate::local_file::MIB;

/// The whole configuration after defaults and overrides.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub database: DatabaseConfig,
    #[serde(default)]
    pub registries: RegistriesConfig,
    #[serde(default = "example_keys")]
    pub keys: Vec<KeyConfig>,
    #[serde(default)]
    pub policies: PoliciesConfig,
    #[serde(default)]
    pub log: LogConfig,
    #[serde(default)]
    pub events: EventsConfig,
    #[serde(default)]
    pub auth: AuthConfig,
    #[serde(default)]
    pub sigstore: SigstoreConfig,
    #[serde(default)]
    pub sign: SignConfig,
    /// notarium's own certificate authority for its signing keys; none by default.
    #[serde(default)]
    pub ca: Option<CaConfig>,
    /// The RFC 3161 timestamp authority that countersigns Notary Project signatures; none by default.
    #[serde(default)]
    pub tsa: Option<TsaConfig>,
    /// Pushes notarium signs by itself (`[[sign_on_push]]`); none by default.
    #[serde(default)]
    pub sign_on_push: Vec<SignOnPushRule>,
    #[serde(default)]
    pub sign_queue: SignQueueConfig,
    /// Signed verdicts (`[verdicts]`); none by default.
    #[serde(default)]
    pub verdicts: Option<VerdictsConfig>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("config file {path} is invalid: {reason}")]
    Parse { path: String, reason: String },
    #[error("configuration is invalid: {0}")]
    Invalid(String),
}

impl Config {
    /// Reads `path` (or the embedded defaults when `None`), then applies `NOTARIUM_*` variables from `env`.
    pub fn load(path: Option<&Path>, env: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let text = match path {
            Some(p) => crate::local_file::read_text_capped(p, MAX_CONFIG_BYTES)
                .map_err(|e| ConfigError::Read { path: p.display().to_string(), reason: e.reason() })?,
            None => String::new(),
        };
        let mut config =
            Self::read_toml(&text, &path.map_or("<embedded defaults>".into(), |p| p.display().to_string()))?;
        if let Some(file) = path {
            let written: toml::Table = toml::from_str(&text).unwrap_or_default();
            config.resolve_paths(&file.parent().map(Path::to_path_buf).unwrap_or_default(), &written);
        }
        config.apply_env(env)?;
        config.validate()?;
        Ok(config)
    }

    /// Parses and checks a `notarium.toml` text as `load` does, without a file (paths stay as written) or
    /// `NOTARIUM_*` variables. The entry point of the fuzz target `config` (fuzz/).
    #[doc(hidden)]
    pub fn parse_toml(text: &str) -> Result<Self, ConfigError> {
        let config = Self::read_toml(text, "<text>")?;
        config.validate()?;
        Ok(config)
    }

    /// The config `text` (from `path`) says, its registry hosts canonical, before paths, variables and checks.
    fn read_toml(text: &str, path: &str) -> Result<Self, ConfigError> {
        let mut config: Self =
            toml::from_str(text).map_err(|e| ConfigError::Parse { path: path.to_owned(), reason: e.to_string() })?;
        config.registries.canonicalize()?;
        Ok(config)
    }

    /// Makes the relative paths written in a config file relative to that file's folder (`base`); paths
    /// the file does not write (the embedded defaults) and `NOTARIUM_*` variables keep resolving against
    /// the working directory. A PKCS#11 `module` is left to the dynamic loader's own search.
    fn resolve_paths(&mut self, base: &Path, written: &toml::Table) {
        let under = |section: &str, key: &str| {
            written.get(section).and_then(|s| s.as_table()).is_some_and(|s| s.contains_key(key))
        };
        let resolve = |path: &mut PathBuf| {
            if path.is_relative() {
                *path = base.join(&*path);
            }
        };
        let resolve_some = |path: &mut Option<PathBuf>| path.iter_mut().for_each(resolve);
        if under("server", "data_dir") {
            resolve(&mut self.server.data_dir);
        }
        if under("policies", "dir") {
            resolve(&mut self.policies.dir);
        }
        resolve_some(&mut self.server.tls_cert);
        resolve_some(&mut self.server.tls_key);
        resolve_some(&mut self.events.registry_secret_file);
        self.registries.auth.values_mut().for_each(|auth| resolve_some(&mut auth.password_file));
        self.auth.oidc.iter_mut().for_each(|issuer| resolve_some(&mut issuer.jwks_file));
        self.sigstore.trusted_roots.iter_mut().for_each(|root| resolve_some(&mut root.path));
        self.ca.iter_mut().for_each(|ca| resolve_some(&mut ca.certificate));
        self.tsa.iter_mut().flat_map(|tsa| tsa.roots.iter_mut()).for_each(resolve);
        if !written.contains_key("keys") {
            return;
        }
        for key in &mut self.keys {
            key.resolve_certificate_chain(base);
            match key {
                KeyConfig::File { path, .. } => resolve(path),
                KeyConfig::Pkcs11(k) => resolve_some(&mut k.pin_file),
                KeyConfig::Vault(k) => {
                    resolve_some(&mut k.token_file);
                    resolve_some(&mut k.secret_id_file);
                    resolve(&mut k.jwt_file);
                }
            }
        }
    }

    fn apply_env(&mut self, env: &HashMap<String, String>) -> Result<(), ConfigError> {
        if let Some(v) = env.get("NOTARIUM_LISTEN") {
            self.server.listen = v.clone();
        }
        if let Some(v) = env.get("NOTARIUM_DATA_DIR") {
            self.server.data_dir = v.into();
        }
        if let Some(v) = env.get("NOTARIUM_DATABASE_URL") {
            self.database.url = Some(v.clone());
        }
        if let Some(v) = env.get("NOTARIUM_SHUTDOWN_DRAIN_SECS").and_then(|v| v.parse().ok()) {
            self.server.shutdown_drain_secs = v;
        }
        if let Some(v) = env.get("NOTARIUM_PENDING_GRACE_SECS").and_then(|v| v.parse().ok()) {
            self.database.pending_grace_secs = v;
        }
        if let Some(v) = env.get("NOTARIUM_INSECURE_REGISTRIES") {
            self.registries.insecure = host_list("NOTARIUM_INSECURE_REGISTRIES", v)?;
        }
        if let Some(v) = env.get("NOTARIUM_POLICIES_DIR") {
            self.policies.dir = v.into();
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let mut seen = std::collections::HashSet::new();
        for key in &self.keys {
            if !seen.insert(key.id()) {
                return Err(ConfigError::Invalid(format!("key id {:?} is configured twice", key.id())));
            }
        }
        if self.server.tls_cert.is_some() != self.server.tls_key.is_some() {
            return Err(ConfigError::Invalid("[server] tls_cert and tls_key go together: set both or neither".into()));
        }
        if self.keys.is_empty() {
            return Err(ConfigError::Invalid("no [[keys]] configured".into()));
        }
        self.log.witnesses()?;
        self.server.check_connection_limits()?;
        if let Some(key) = &self.log.key {
            let id = key.split_once('@').map_or(key.as_str(), |(id, _)| id);
            if !self.keys.iter().any(|k| k.id() == id) {
                return Err(ConfigError::Invalid(format!("[log] key {key:?} is not one of the [[keys]]")));
            }
        }
        if let Some(cap) = self.policies.evidence.zero_cap() {
            return Err(ConfigError::Invalid(format!("[policies.evidence] {cap} must be at least 1")));
        }
        self.sigstore.check()?;
        self.check_ca()?;
        self.tsa.as_ref().map(TsaConfig::check).transpose()?;
        self.sign.check()?;
        let key_ids: Vec<&str> = self.keys.iter().map(KeyConfig::id).collect();
        sign_on_push::check_rules(&self.sign_on_push, &self.sign_queue, &key_ids)?;
        self.verdicts.as_ref().map(|v| v.check(&key_ids)).transpose()?;
        if let Some(cap) = self.registries.zero_cap() {
            return Err(ConfigError::Invalid(format!("[registries] {cap} must be at least 1")));
        }
        for key in &self.keys {
            key.check_secrets()?;
        }
        for (host, auth) in &self.registries.auth {
            auth.password(host)?;
        }
        self.events.registry_secret()?;
        if let Some(contradiction) = self.auth.contradiction() {
            return Err(ConfigError::Invalid(contradiction.into()));
        }
        Ok(())
    }

    /// `[ca] key` is a configured key that signs nothing else: not the checkpoint key, no chain of its own
    /// as a signer.
    fn check_ca(&self) -> Result<(), ConfigError> {
        let Some(ca) = &self.ca else { return Ok(()) };
        ca.check()?;
        if !self.keys.iter().any(|k| k.id() == ca.key) {
            return Err(ConfigError::Invalid(format!("[ca] key {:?} is not one of the [[keys]]", ca.key)));
        }
        if self.log_key().is_some_and(|log| log.split('@').next() == Some(ca.key.as_str())) {
            return Err(ConfigError::Invalid(format!(
                "[ca] key {:?} is the register's checkpoint key: give the CA a key of its own",
                ca.key
            )));
        }
        Ok(())
    }

    /// The database URL in force.
    pub fn database_url(&self) -> String {
        self.database
            .url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.server.data_dir.join("notarium.db").display()))
    }

    /// The key that signs checkpoints, if any: `[log] key`, else the example log key `dev-log` when configured.
    pub fn log_key(&self) -> Option<String> {
        self.log.key.clone().or_else(|| self.keys.iter().any(|k| k.id() == DEV_LOG_KEY).then(|| DEV_LOG_KEY.into()))
    }

    /// The committed example file behind the checkpoint key, when that is what signs checkpoints.
    pub fn example_log_key_file(&self) -> Option<&Path> {
        let log_key = self.log_key()?;
        let id = log_key.split_once('@').map_or(log_key.as_str(), |(id, _)| id);
        self.keys.iter().find_map(|k| match k {
            KeyConfig::File { id: key_id, path, .. } if key_id == id && is_example_key(path) => Some(path.as_path()),
            _ => None,
        })
    }

    /// Every file the configuration names that holds a secret (private keys, PINs, tokens, passwords), with
    /// what it is for; the committed example keys are left out (public development material).
    pub fn secret_files(&self) -> Vec<(String, PathBuf)> {
        let mut files = Vec::new();
        for key in &self.keys {
            let named = |what: &str| format!("[[keys]] {:?} {what}", key.id());
            match key {
                KeyConfig::File { path, .. } if !is_example_key(path) => files.push((named("path"), path.clone())),
                KeyConfig::File { .. } => {}
                KeyConfig::Pkcs11(k) => files.extend(k.pin_file.clone().map(|f| (named("pin_file"), f))),
                KeyConfig::Vault(k) => {
                    files.extend(k.token_file.clone().map(|f| (named("token_file"), f)));
                    files.extend(k.secret_id_file.clone().map(|f| (named("secret_id_file"), f)));
                }
            }
        }
        for (host, auth) in &self.registries.auth {
            files.extend(auth.password_file.clone().map(|f| (format!("[registries.auth] {host:?} password_file"), f)));
        }
        files.extend(self.events.registry_secret_file.clone().map(|f| ("[events] registry_secret_file".into(), f)));
        files.extend(self.server.tls_key.clone().map(|f| ("[server] tls_key".into(), f)));
        files
    }

    /// True when any key comes from the committed example keys.
    pub fn uses_example_keys(&self) -> bool {
        self.keys.iter().any(|k| match k {
            KeyConfig::File { path, .. } => is_example_key(path),
            KeyConfig::Pkcs11(_) | KeyConfig::Vault(_) => false,
        })
    }
}

#[cfg(test)]
mod tests;
