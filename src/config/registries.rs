//! `[registries]`: plain-HTTP and referrer-less registries, credentials, egress allow/deny globs and
//! blob stores, and the caps on what is read from a registry. Hosts are canonicalized at load.

use std::collections::HashMap;
use std::path::PathBuf;

use serde::Deserialize;

use super::ConfigError;
use crate::formats::canonical_registry;
use crate::keys::SecretRef;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistriesConfig {
    /// `host:port` entries reached over plain HTTP; everything else is HTTPS only. Hosts here, in
    /// `referrers_off` and in `[registries.auth]` are canonicalized at load like image references
    /// (`LocalHost:5000` is `localhost:5000`, `reg.example:443` is `reg.example`); a malformed one is an error.
    #[serde(default = "default_insecure")]
    pub insecure: Vec<String>,
    #[serde(default)]
    pub auth: HashMap<String, RegistryAuthConfig>,
    /// `host:port` entries that get attestations under cosign's `.att` tag only, without the OCI 1.1
    /// referrer (Sigstore bundle) copy every other registry gets.
    #[serde(default)]
    pub referrers_off: Vec<String>,
    /// Registry host → the signature formats `POST /v1/sign` writes there when the request names none
    /// (`cosign`, `bundle`, `notation`). Unlisted registries get every format the key can serve.
    #[serde(default)]
    pub formats: HashMap<String, Vec<SignFormat>>,
    /// Host globs (`*` within the name; without a port, any port): when set, only these registries (and
    /// the `insecure` ones) are contacted. Listed hosts may have internal addresses; unlisted ones never.
    #[serde(default)]
    pub allow: Vec<String>,
    /// Host globs never contacted, even when listed in `allow` or `insecure`.
    #[serde(default)]
    pub deny: Vec<String>,
    /// Registry glob → host globs the registry may redirect a read to (the storage behind its blobs).
    /// Setting the table replaces the built-in one (Docker Hub, GHCR, Quay, ECR, GCR, registry.k8s.io, MCR).
    #[serde(default = "default_blob_stores")]
    pub blob_stores: HashMap<String, Vec<String>>,
    /// Bytes of one manifest or referrers page.
    #[serde(default = "default_max_manifest_bytes")]
    pub max_manifest_bytes: usize,
    /// Bytes of a registry's error answer read (to log it and find its error code); the rest is dropped.
    #[serde(default = "default_max_small_body")]
    pub max_error_body_bytes: usize,
    /// Bytes of a token service's answer.
    #[serde(default = "default_max_small_body")]
    pub max_token_body_bytes: usize,
}

impl RegistriesConfig {
    /// Every host in its canonical form ([`canonical_registry`]), which is how references name them.
    pub(super) fn canonicalize(&mut self) -> Result<(), ConfigError> {
        self.insecure = canonical_hosts("[registries] insecure", &self.insecure)?;
        self.referrers_off = canonical_hosts("[registries] referrers_off", &self.referrers_off)?;
        let mut formats = HashMap::new();
        for (host, listed) in std::mem::take(&mut self.formats) {
            formats.insert(canonical_host("[registries.formats]", &host)?, listed);
        }
        self.formats = formats;
        self.allow = canonical_globs("[registries] allow", &self.allow)?;
        self.deny = canonical_globs("[registries] deny", &self.deny)?;
        let mut blob_stores = HashMap::new();
        for (registry, stores) in std::mem::take(&mut self.blob_stores) {
            let source = format!("[registries.blob_stores] {registry:?}");
            blob_stores.insert(canonical_glob(&source, &registry)?, canonical_globs(&source, &stores)?);
        }
        self.blob_stores = blob_stores;
        let mut auth = HashMap::new();
        for (host, entry) in std::mem::take(&mut self.auth) {
            let canonical = canonical_host("[registries.auth]", &host)?;
            let entry = RegistryAuthConfig {
                realms: canonical_globs(&format!("[registries.auth.{host:?}] realms"), &entry.realms)?,
                ..entry
            };
            if auth.insert(canonical.clone(), entry).is_some() {
                return Err(ConfigError::Invalid(format!(
                    "[registries.auth] names registry {canonical} twice (one of them as {host:?})"
                )));
            }
        }
        self.auth = auth;
        Ok(())
    }
}

impl RegistriesConfig {
    /// The name of the first body cap that is zero (no answer could be read), if any.
    pub(super) fn zero_cap(&self) -> Option<&'static str> {
        let caps =
            [("max_manifest_bytes", self.max_manifest_bytes), ("max_token_body_bytes", self.max_token_body_bytes)];
        caps.into_iter().find(|(_, cap)| *cap == 0).map(|(name, _)| name)
    }
}

/// `source`'s hosts in canonical form; a malformed one is an error naming it and `source`.
fn canonical_hosts(source: &str, hosts: &[String]) -> Result<Vec<String>, ConfigError> {
    hosts.iter().map(|host| canonical_host(source, host)).collect()
}

/// The hosts of a comma-separated list such as `NOTARIUM_INSECURE_REGISTRIES`, as written.
pub fn split_host_list(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').map(str::trim).filter(|s| !s.is_empty())
}

pub(super) fn host_list(source: &str, value: &str) -> Result<Vec<String>, ConfigError> {
    split_host_list(value).map(|host| canonical_host(source, host)).collect()
}

fn canonical_host(source: &str, host: &str) -> Result<String, ConfigError> {
    canonical_registry(host).map_err(|e| ConfigError::Invalid(format!("{source}: {e}")))
}

fn canonical_globs(source: &str, globs: &[String]) -> Result<Vec<String>, ConfigError> {
    globs.iter().map(|glob| canonical_glob(source, glob)).collect()
}

/// A host glob in the form of the canonical names it is matched against: a glob lowercased, made of host
/// name and port characters; a plain host canonical.
fn canonical_glob(source: &str, glob: &str) -> Result<String, ConfigError> {
    if !glob.contains('*') {
        return canonical_host(source, glob);
    }
    let lower = glob.to_ascii_lowercase();
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '*' | ':');
    if lower.chars().all(allowed) && lower.matches(':').count() <= 1 {
        Ok(lower)
    } else {
        Err(ConfigError::Invalid(format!(
            "{source}: host glob {glob:?} may hold only letters, digits, '.', '-', '*' and one ':' before a port"
        )))
    }
}

/// A signature format a sign can write for one digest (docs/FORMATS.md §3, §7 and the Notary Project section).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SignFormat {
    /// cosign's simple-signing layer under the `.sig` tag.
    Cosign,
    /// A Sigstore bundle v0.3 referrer (cosign v3's layout).
    Bundle,
    /// A Notary Project JWS signature referrer (`application/vnd.cncf.notary.signature`).
    Notation,
}

impl SignFormat {
    /// Every format, in the order a sign answer lists them.
    pub const ALL: [Self; 3] = [Self::Cosign, Self::Bundle, Self::Notation];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cosign => "cosign",
            Self::Bundle => "bundle",
            Self::Notation => "notation",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryAuthConfig {
    /// Absent in an entry that only lists `realms` for credentials from Docker's or containers' auth files.
    pub username: Option<String>,
    /// Environment variable holding the password or token: see [`RegistryAuthConfig::password`].
    pub(super) password_env: Option<String>,
    /// File holding the password or token.
    pub(super) password_file: Option<PathBuf>,
    /// Host globs of token realms, other than the registry's own host, that may receive these credentials.
    #[serde(default)]
    pub realms: Vec<String>,
}

impl RegistryAuthConfig {
    /// The password or token for registry `host`: `password_env` or `password_file`.
    pub fn password(&self, host: &str) -> Result<Option<SecretRef>, ConfigError> {
        let table = format!("[registries.auth] {host:?}");
        SecretRef::from_pair(&table, "password", self.password_env.as_deref(), self.password_file.as_deref())
            .map_err(ConfigError::Invalid)
    }
}

impl Default for RegistriesConfig {
    fn default() -> Self {
        toml::from_str("").expect("empty registries section uses defaults")
    }
}

fn default_insecure() -> Vec<String> {
    vec!["127.0.0.1:5000".into(), "localhost:5000".into()]
}
fn default_max_manifest_bytes() -> usize {
    4 * 1024 * 1024
}
fn default_max_small_body() -> usize {
    64 * 1024
}
/// Where well-known registries send blob reads: their CDN or object storage.
fn default_blob_stores() -> HashMap<String, Vec<String>> {
    let table: [(&str, &[&str]); 8] = [
        ("docker.io", &["production.cloudflare.docker.com", "*.r2.cloudflarestorage.com"]),
        ("ghcr.io", &["pkg-containers.githubusercontent.com"]),
        ("quay.io", &["cdn*.quay.io", "quayio-production-s3.s3.amazonaws.com"]),
        ("*.dkr.ecr.*.amazonaws.com", &["*.s3.amazonaws.com", "*.s3.*.amazonaws.com"]),
        ("gcr.io", &["storage.googleapis.com"]),
        ("*.gcr.io", &["storage.googleapis.com"]),
        ("registry.k8s.io", &["*-docker.pkg.dev", "*.s3.dualstack.*.amazonaws.com", "storage.googleapis.com"]),
        ("mcr.microsoft.com", &["*.data.mcr.microsoft.com"]),
    ];
    table
        .into_iter()
        .map(|(registry, stores)| (registry.into(), stores.iter().map(|s| s.to_string()).collect()))
        .collect()
}
