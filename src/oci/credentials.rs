//! Which credentials notarium presents to a registry, keyed by canonical registry host, from the places a
//! user already keeps them, most specific first: credentials given explicitly (`notarium verify
//! --registry-username`), then `[registries.auth]`, then the `auths` of the files `docker login`,
//! `podman login` and `skopeo login` write (see [`auth_files`] for their order).
//!
//! Owns: reading those sources into [`RegistryCredentials`]. Must not touch: HTTP (`distribution.rs`
//! presents them) or logs: a password is held in `Zeroizing` and never formatted.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use base64::Engine;
use serde::Deserialize;
use zeroize::Zeroizing;

use super::RegistryCredentials;
use crate::config::RegistriesConfig;
use crate::formats::canonical_registry;
use crate::keys::SecretRef;
use crate::local_file::LocalFileError;

/// The most of an auth file read: they hold a few lines per registry.
const MAX_AUTH_FILE_BYTES: u64 = 1024 * 1024;

/// Credentials by canonical registry host.
pub type CredentialMap = HashMap<String, RegistryCredentials>;

#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("[registries.auth] {host:?}: {reason}")]
    Config { host: String, reason: String },
    #[error("registry credentials file {}: {reason}", .path.display())]
    AuthFile { path: PathBuf, reason: String },
}

/// The credentials of `[registries.auth]` (hosts already canonical, see `Config::load`), each password
/// read from its `password_env` or `password_file`.
pub fn from_config(registries: &RegistriesConfig) -> Result<CredentialMap, CredentialsError> {
    let mut credentials = CredentialMap::new();
    for (host, auth) in &registries.auth {
        let invalid = |reason: String| CredentialsError::Config { host: host.clone(), reason };
        let password = auth.password(host).map_err(|e| invalid(e.to_string()))?;
        let username = match (&auth.username, password.is_some()) {
            (Some(username), _) => username.clone(),
            // Only `realms`: the credentials come from the auth files.
            (None, false) => continue,
            (None, true) => return Err(invalid("a password needs a username".into())),
        };
        let source = password.ok_or_else(|| invalid(SecretRef::missing("password")))?;
        let password = source.read().map_err(invalid)?;
        credentials.insert(host.clone(), RegistryCredentials { username, password });
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

/// Every source but explicit flags, for `notarium serve` and `notarium verify`: `[registries.auth]` over the
/// auth files of this process's environment. A `credsStore` helper is asked about the hosts its file lists
/// and about `wanted` (the image's registry on the command line).
pub fn configured(registries: &RegistriesConfig, wanted: &[String]) -> Result<CredentialMap, CredentialsError> {
    let configured = from_config(registries)?;
    let files = auth_files(|name| std::env::var(name).ok().filter(|v| !v.is_empty()));
    let from_files = from_auth_files(&files, wanted, &configured)?;
    Ok(merged([configured, from_files]))
}

/// The auth files read, in order, the way containers/image (podman, skopeo, buildah) looks:
/// `REGISTRY_AUTH_FILE`, else `${XDG_RUNTIME_DIR}/containers/auth.json` and then
/// `${XDG_CONFIG_HOME:-~/.config}/containers/auth.json`; then Docker's `$DOCKER_CONFIG/config.json`, else
/// `~/.docker/config.json`; last the legacy `~/.dockercfg`. `env` looks up an environment variable.
pub fn auth_files(env: impl Fn(&str) -> Option<String>) -> Vec<PathBuf> {
    let home = env("HOME").map(PathBuf::from);
    let containers: Vec<PathBuf> = match env("REGISTRY_AUTH_FILE") {
        Some(file) => vec![PathBuf::from(file)],
        None => {
            let runtime = env("XDG_RUNTIME_DIR").map(|dir| Path::new(&dir).join("containers/auth.json"));
            let config_home =
                env("XDG_CONFIG_HOME").map(PathBuf::from).or_else(|| home.as_ref().map(|h| h.join(".config")));
            runtime.into_iter().chain(config_home.map(|dir| dir.join("containers/auth.json"))).collect()
        }
    };
    let docker = match env("DOCKER_CONFIG") {
        Some(dir) => Some(Path::new(&dir).join("config.json")),
        None => home.as_ref().map(|home| home.join(".docker/config.json")),
    };
    let legacy = home.map(|home| home.join(LEGACY_DOCKERCFG));
    containers.into_iter().chain(docker).chain(legacy).collect()
}

/// Docker's legacy credentials file: the `auths` map itself at the top level.
const LEGACY_DOCKERCFG: &str = ".dockercfg";

fn parse_auth_file(path: &Path, bytes: &[u8]) -> Result<AuthFile, serde_json::Error> {
    if path.file_name().is_some_and(|name| name == LEGACY_DOCKERCFG) {
        let auths: HashMap<String, AuthEntry> = serde_json::from_slice(bytes)?;
        return Ok(AuthFile { auths, cred_helpers: HashMap::new(), creds_store: None });
    }
    serde_json::from_slice(bytes)
}

/// The credentials of `files` (earlier files first) for the hosts they name and `wanted`, except hosts
/// `covered` already has; a file that does not exist is skipped, one that cannot be read or parsed is an
/// error naming it (never what it holds).
pub fn from_auth_files(
    files: &[PathBuf],
    wanted: &[String],
    covered: &CredentialMap,
) -> Result<CredentialMap, CredentialsError> {
    let mut maps = Vec::new();
    for path in files {
        let error = |reason: String| CredentialsError::AuthFile { path: path.clone(), reason };
        let Some(bytes) = read_bounded(path).map_err(error)? else { continue };
        let file = parse_auth_file(path, &bytes)
            .map_err(|e| error(format!("not a credentials file (JSON line {}, column {})", e.line(), e.column())))?;
        maps.push(file.credentials(wanted, covered).map_err(error)?);
    }
    Ok(merged(maps))
}

/// The file, or `None` if it does not exist; at most [`MAX_AUTH_FILE_BYTES`].
fn read_bounded(path: &Path) -> Result<Option<Zeroizing<Vec<u8>>>, String> {
    let mut bytes = Zeroizing::new(Vec::new());
    match crate::local_file::read_capped_into(path, MAX_AUTH_FILE_BYTES, &mut bytes) {
        Ok(()) => Ok(Some(bytes)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(LocalFileError::TooLarge { .. }) => Err(format!("is larger than {MAX_AUTH_FILE_BYTES} bytes")),
        Err(LocalFileError::Unreadable { source, .. }) => Err(format!("cannot be read: {}", source.kind())),
        Err(e) => Err(e.reason()),
    }
}

/// The parts of Docker's `config.json` (and containers' `auth.json`) notarium reads.
#[derive(Deserialize)]
struct AuthFile {
    #[serde(default)]
    auths: HashMap<String, AuthEntry>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: HashMap<String, String>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
}

/// One `auths` entry: `auth` is base64 of `user:password`; `username` and `password` are its spelled-out form.
#[derive(Deserialize)]
struct AuthEntry {
    auth: Option<Secret>,
    username: Option<String>,
    password: Option<Secret>,
}

/// A string from a credentials file or helper, zeroized when dropped.
pub(super) struct Secret(pub(super) Zeroizing<String>);

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(|s| Self(Zeroizing::new(s)))
    }
}

/// A host whose credentials a helper holds: the helper's name and the server URL it is asked about.
struct HelperLookup {
    host: String,
    server_url: String,
    helper: String,
}

impl AuthFile {
    /// Entries by canonical host, as Docker picks them: the host's `credHelpers` entry, then `credsStore`,
    /// then `auths`. Keys that name no registry host are skipped, as are entries without a password (e.g.
    /// only an `identitytoken`) and helpers that fail (named in a warning).
    fn credentials(self, wanted: &[String], covered: &CredentialMap) -> Result<CredentialMap, String> {
        let mut credentials = CredentialMap::new();
        for lookup in self.helper_lookups(wanted).into_iter().filter(|l| !covered.contains_key(&l.host)) {
            if credentials.contains_key(&lookup.host) {
                continue;
            }
            match super::credential_helper::get(&lookup.helper, &lookup.server_url) {
                Ok(Some(found)) => drop(credentials.insert(lookup.host, found)),
                Ok(None) => {}
                Err(reason) => tracing::warn!(registry = %lookup.host, "{reason}; its credentials are not used"),
            }
        }
        for (key, entry) in self.auths {
            let Some(host) = auths_key_host(&key) else { continue };
            if let Some(found) = entry.credentials().map_err(|reason| format!("auths {host:?}: {reason}"))? {
                credentials.entry(host).or_insert(found);
            }
        }
        Ok(credentials)
    }

    /// The helpers to ask, `credHelpers` entries first, then `credsStore` for the listed and `wanted` hosts.
    fn helper_lookups(&self, wanted: &[String]) -> Vec<HelperLookup> {
        let lookup = |key: &str, helper: &str| {
            let host = auths_key_host(key)?;
            Some(HelperLookup { host, server_url: key.to_owned(), helper: helper.to_owned() })
        };
        let mut lookups: Vec<_> = self.cred_helpers.iter().filter_map(|(key, helper)| lookup(key, helper)).collect();
        if let Some(store) = self.creds_store.as_deref().filter(|s| !s.is_empty()) {
            let keys = self.auths.keys().cloned().chain(wanted.iter().map(|host| server_url(host)));
            lookups.extend(keys.filter_map(|key| lookup(&key, store)));
        }
        lookups
    }
}

/// The server URL Docker stores a registry's credentials under.
fn server_url(host: &str) -> String {
    if host == "docker.io" { "https://index.docker.io/v1/".to_owned() } else { host.to_owned() }
}

impl AuthEntry {
    fn credentials(self) -> Result<Option<RegistryCredentials>, String> {
        if let Some(Secret(auth)) = self.auth.filter(|a| !a.0.is_empty()) {
            return decode_auth(&auth).map(Some);
        }
        Ok(match (self.username, self.password) {
            (Some(username), Some(Secret(password))) => Some(RegistryCredentials { username, password }),
            _ => None,
        })
    }
}

/// `auth`: base64 of `user:password`.
fn decode_auth(auth: &str) -> Result<RegistryCredentials, String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(auth.trim())
        .map(Zeroizing::new)
        .map_err(|_| "auth is not base64".to_owned())?;
    let text = std::str::from_utf8(&bytes).map_err(|_| "auth is not UTF-8".to_owned())?;
    let (username, password) = text.split_once(':').ok_or("auth is not user:password")?;
    Ok(RegistryCredentials { username: username.to_owned(), password: Zeroizing::new(password.to_owned()) })
}

/// The canonical host of an `auths` key: `host[:port]`, or a URL such as `https://index.docker.io/v1/`.
fn auths_key_host(key: &str) -> Option<String> {
    let without_scheme = key.strip_prefix("https://").or_else(|| key.strip_prefix("http://")).unwrap_or(key);
    let host = without_scheme.split('/').next()?;
    canonical_registry(host).ok()
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

    #[test]
    fn an_entry_listing_only_realms_gives_no_credentials_and_a_password_needs_a_username() {
        let mut registries = RegistriesConfig::default();
        let auth = toml::from_str("realms = [\"auth.example\"]").unwrap();
        registries.auth.insert("reg.example".into(), auth);
        assert!(from_config(&registries).unwrap().is_empty());
        let auth = toml::from_str("password_env = \"P\"").unwrap();
        registries.auth.insert("reg.example".into(), auth);
        let error = from_config(&registries).unwrap_err().to_string();
        assert!(error.contains("reg.example") && error.contains("username"), "{error}");
    }

    fn docker_config(dir: &Path, json: &str) -> PathBuf {
        let path = dir.join("config.json");
        std::fs::write(&path, json).unwrap();
        path
    }

    #[test]
    fn auths_keys_are_canonical_hosts_and_auth_is_base64_user_password() {
        let dir = tempfile::tempdir().unwrap();
        let json = r#"{"auths": {
            "https://index.docker.io/v1/": {"auth": "aHViOnB3MQ=="},
            "LocalHost:5000": {"auth": "bG9jYWw6cDpXMg=="},
            "reg.example": {"username": "u", "password": "p3"},
            "token.example": {"identitytoken": "t"}
        }, "credsStore": "desktop"}"#;
        let found = from_auth_files(&[docker_config(dir.path(), json)], &[], &CredentialMap::new()).unwrap();
        assert_eq!(found["docker.io"].username, "hub");
        assert_eq!(found["docker.io"].password.as_str(), "pw1");
        assert_eq!(found["localhost:5000"].password.as_str(), "p:W2", "only the first colon separates");
        assert_eq!(found["reg.example"].password.as_str(), "p3");
        assert!(!found.contains_key("token.example"));
    }

    #[test]
    fn the_earlier_file_wins_and_a_missing_one_is_skipped() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let first = docker_config(a.path(), r#"{"auths": {"reg.example": {"auth": "Zmlyc3Q6MQ=="}}}"#);
        let second = docker_config(b.path(), r#"{"auths": {"reg.example": {"auth": "c2Vjb25kOjI="}}}"#);
        let found =
            from_auth_files(&[a.path().join("missing.json"), first, second], &[], &CredentialMap::new()).unwrap();
        assert_eq!(found["reg.example"].username, "first");
    }

    #[test]
    fn a_malformed_or_oversized_file_is_named_without_its_content() {
        let dir = tempfile::tempdir().unwrap();
        let bad = docker_config(dir.path(), r#"{"auths": {"reg.example": {"auth": "not base64 SECRET"}}}"#);
        let error = from_auth_files(std::slice::from_ref(&bad), &[], &CredentialMap::new()).unwrap_err().to_string();
        assert!(error.contains("config.json") && error.contains("not base64") && !error.contains("SECRET"), "{error}");
        std::fs::write(&bad, vec![b' '; MAX_AUTH_FILE_BYTES as usize + 1]).unwrap();
        let error = from_auth_files(&[bad], &[], &CredentialMap::new()).unwrap_err().to_string();
        assert!(error.contains("larger than"), "{error}");
    }

    #[test]
    fn auth_files_follow_containers_image_then_docker() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| vars.iter().find(|(n, _)| *n == name).map(|(_, v)| (*v).to_owned())
        };
        let all = auth_files(env(&[
            ("REGISTRY_AUTH_FILE", "/a.json"),
            ("XDG_RUNTIME_DIR", "/run"),
            ("DOCKER_CONFIG", "/d"),
            ("HOME", "/h"),
        ]));
        assert_eq!(all, [PathBuf::from("/a.json"), PathBuf::from("/d/config.json"), PathBuf::from("/h/.dockercfg")]);
        let defaults = auth_files(env(&[("XDG_RUNTIME_DIR", "/run"), ("HOME", "/h")]));
        let expected =
            ["/run/containers/auth.json", "/h/.config/containers/auth.json", "/h/.docker/config.json", "/h/.dockercfg"];
        assert_eq!(defaults, expected.map(PathBuf::from));
        let config_home = auth_files(env(&[("XDG_CONFIG_HOME", "/c"), ("HOME", "/h")]));
        assert_eq!(config_home[0], PathBuf::from("/c/containers/auth.json"));
    }

    #[test]
    fn the_legacy_dockercfg_holds_the_auths_map_itself() {
        let dir = tempfile::tempdir().unwrap();
        let legacy = dir.path().join(".dockercfg");
        std::fs::write(&legacy, r#"{"https://legacy.example/v1/": {"auth": "bGVnYWN5OnB3", "email": "x@y"}}"#).unwrap();
        let found = from_auth_files(&[legacy], &[], &CredentialMap::new()).unwrap();
        let entry = &found["legacy.example"];
        assert_eq!((entry.username.as_str(), entry.password.as_str()), ("legacy", "pw"));
    }
}
