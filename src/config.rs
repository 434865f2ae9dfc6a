//! Configuration: `notarium.toml` (path from `--config` or `NOTARIUM_CONFIG`), `NOTARIUM_*` overrides,
//! and the embedded defaults `notarium serve` runs on with no file at all.
//!
//! Owns: reading and validating settings. Must not touch: secrets' values. Secrets are named here by the
//! environment variable or file that holds them, and only read where they are used.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::formats::canonical_registry;

mod auth;
pub use auth::{AuthConfig, ClaimRule, OidcConfig, Role};

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
}

/// Registry notifications (`POST /v1/events/registry`): off unless a shared secret is configured. The
/// registry sends it as `Authorization: Bearer <secret>` (distribution's endpoint `headers`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsConfig {
    pub registry_secret_env: Option<String>,
    pub registry_secret_file: Option<PathBuf>,
}

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
}

impl LogConfig {
    pub fn origin(&self) -> String {
        self.origin.clone().unwrap_or_else(|| "notarium.local/log".into())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Where the default SQLite database lives.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// Largest request body accepted, in bytes.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// On SIGTERM/SIGINT: seconds `/readyz` answers 503 while requests are still served, so load balancers
    /// stop sending new ones first.
    #[serde(default = "default_drain")]
    pub shutdown_drain_secs: u64,
    /// Then: seconds in-flight requests get to finish before the process exits anyway.
    #[serde(default = "default_shutdown_timeout")]
    pub shutdown_timeout_secs: u64,
    /// PEM certificate chain and private key: with both, the listener speaks TLS only. Both files are
    /// re-read when they change (certificate rotation without a restart).
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// A request that has not produced its response after this long is answered 408.
    #[serde(default = "default_request_timeout")]
    pub request_timeout_secs: u64,
    /// A request's head (request line and headers) must arrive complete within this long of the server
    /// waiting for it; this also bounds how long a kept-alive connection waits for its next request.
    #[serde(default = "default_header_timeout")]
    pub header_timeout_secs: u64,
    /// A connection on which no byte moves either way for this long is closed (a stalled body, an answer
    /// the client does not read). Must exceed `request_timeout_secs`: a request being handled moves no bytes.
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout_secs: u64,
    /// Connections served at once; more wait in the listen backlog until one closes.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
}

fn default_header_timeout() -> u64 {
    10
}

fn default_idle_timeout() -> u64 {
    120
}

fn default_max_connections() -> usize {
    1024
}

fn default_request_timeout() -> u64 {
    60
}

fn default_drain() -> u64 {
    2
}

fn default_shutdown_timeout() -> u64 {
    30
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://…` or `postgres://user@host:5432/db` (`postgresql://` too); unset means `<data_dir>/notarium.db`.
    pub url: Option<String>,
    /// A sign interrupted by a crash whose signature is not (yet) in the registry is given up only after
    /// this many seconds: a write sent just before the crash may still land. Longer than the registry timeout.
    #[serde(default = "default_pending_grace")]
    pub pending_grace_secs: u64,
}

fn default_pending_grace() -> u64 {
    180
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self { url: None, pending_grace_secs: default_pending_grace() }
    }
}

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
    fn canonicalize(&mut self) -> Result<(), ConfigError> {
        self.insecure = canonical_hosts("[registries] insecure", &self.insecure)?;
        self.referrers_off = canonical_hosts("[registries] referrers_off", &self.referrers_off)?;
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
    fn zero_cap(&self) -> Option<&'static str> {
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

fn host_list(source: &str, value: &str) -> Result<Vec<String>, ConfigError> {
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

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryAuthConfig {
    /// Absent in an entry that only lists `realms` for credentials from Docker's or containers' auth files.
    pub username: Option<String>,
    /// Environment variable holding the password or token.
    pub password_env: Option<String>,
    /// File holding the password or token.
    pub password_file: Option<PathBuf>,
    /// Host globs of token realms, other than the registry's own host, that may receive these credentials.
    #[serde(default)]
    pub realms: Vec<String>,
}

/// One signing key and the backend that holds it.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "backend", rename_all = "lowercase", deny_unknown_fields)]
pub enum KeyConfig {
    /// A PKCS#8 PEM file: development only.
    File { id: String, path: PathBuf },
    /// A key on a PKCS#11 token (HSM, SoftHSM2).
    Pkcs11(Pkcs11KeyConfig),
    /// A Vault or OpenBao Transit key.
    Vault(VaultKeyConfig),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pkcs11KeyConfig {
    pub id: String,
    /// Path of the PKCS#11 module, e.g. `/usr/lib/softhsm/libsofthsm2.so`.
    pub module: PathBuf,
    /// The token is found by label, never by slot number (slot ids change).
    pub token_label: String,
    /// CKA_LABEL of the key pair; every key pair with this label is one version, numbered by CKA_ID.
    pub key_label: Option<String>,
    /// CKA_ID in hex, to pin one key pair.
    pub key_id: Option<String>,
    pub pin_env: Option<String>,
    pub pin_file: Option<PathBuf>,
    /// Concurrent signing sessions on the token.
    #[serde(default = "default_sessions")]
    pub max_sessions: usize,
    /// Seconds between re-reads of the key list (new versions on the token).
    #[serde(default = "default_refresh")]
    pub refresh_secs: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VaultAuthMethod {
    #[default]
    Token,
    Approle,
    Kubernetes,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultKeyConfig {
    pub id: String,
    /// e.g. `https://vault.example:8200`.
    pub address: String,
    #[serde(default = "default_transit_mount")]
    pub mount: String,
    /// The Transit key's name.
    pub key: String,
    #[serde(default)]
    pub auth: VaultAuthMethod,
    pub token_env: Option<String>,
    pub token_file: Option<PathBuf>,
    #[serde(default = "default_approle_mount")]
    pub approle_mount: String,
    pub role_id: Option<String>,
    pub secret_id_env: Option<String>,
    pub secret_id_file: Option<PathBuf>,
    #[serde(default = "default_kubernetes_mount")]
    pub kubernetes_mount: String,
    pub kubernetes_role: Option<String>,
    #[serde(default = "default_jwt_file")]
    pub jwt_file: PathBuf,
    #[serde(default = "default_vault_timeout")]
    pub timeout_secs: u64,
    #[serde(default = "default_refresh")]
    pub refresh_secs: u64,
}

impl KeyConfig {
    pub fn id(&self) -> &str {
        match self {
            Self::File { id, .. } => id,
            Self::Pkcs11(k) => &k.id,
            Self::Vault(k) => &k.id,
        }
    }
}

fn default_sessions() -> usize {
    4
}
fn default_refresh() -> u64 {
    30
}
fn default_transit_mount() -> String {
    "transit".into()
}
fn default_approle_mount() -> String {
    "approle".into()
}
fn default_kubernetes_mount() -> String {
    "kubernetes".into()
}
fn default_jwt_file() -> PathBuf {
    "/var/run/secrets/kubernetes.io/serviceaccount/token".into()
}
fn default_vault_timeout() -> u64 {
    10
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoliciesConfig {
    #[serde(default = "default_policies_dir")]
    pub dir: PathBuf,
    /// How often the folder is checked for changed files (a broken change keeps the policies in force).
    #[serde(default = "default_reload_secs")]
    pub reload_secs: u64,
    /// How long a verify decision is reused for the same digest and policy version (0: never).
    #[serde(default = "default_cache_secs")]
    pub cache_secs: u64,
    /// `[policies.evidence]`: how much one decision reads from a registry.
    #[serde(default)]
    pub evidence: EvidenceLimits,
}

/// Caps on what one decision reads from a registry (documented in README and notarium.example.toml): a
/// registry is not trusted to serve evidence of reasonable size. Read as `[policies.evidence]`; the
/// registry reads in `oci` obey it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EvidenceLimits {
    /// Layers read per `.sig` or `.att` manifest; the others are skipped.
    pub max_layers: usize,
    /// OCI 1.1 referrers read per subject; the others are skipped.
    pub max_referrers: usize,
    /// Bytes of one simple-signing payload blob.
    pub max_payload_bytes: usize,
    /// Bytes of one DSSE envelope blob (an `.att` layer).
    pub max_envelope_bytes: usize,
    /// Bytes of one Sigstore bundle blob (a referrer's layer).
    pub max_bundle_bytes: usize,
    /// Signatures in one DSSE envelope: an envelope with more is refused before any is checked.
    pub max_envelope_signatures: usize,
}

impl Default for EvidenceLimits {
    fn default() -> Self {
        Self {
            max_layers: 64,
            max_referrers: 64,
            max_payload_bytes: 256 * 1024,
            max_envelope_bytes: 1024 * 1024,
            max_bundle_bytes: 2 * 1024 * 1024,
            max_envelope_signatures: 16,
        }
    }
}

impl EvidenceLimits {
    /// The name of the first cap that is zero (a cap of zero would skip every item), if any.
    pub fn zero_cap(&self) -> Option<&'static str> {
        let caps = [
            ("max_layers", self.max_layers),
            ("max_referrers", self.max_referrers),
            ("max_payload_bytes", self.max_payload_bytes),
            ("max_envelope_bytes", self.max_envelope_bytes),
            ("max_bundle_bytes", self.max_bundle_bytes),
            ("max_envelope_signatures", self.max_envelope_signatures),
        ];
        caps.into_iter().find(|(_, cap)| *cap == 0).map(|(name, _)| name)
    }
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

fn default_listen() -> String {
    "127.0.0.1:8080".into()
}
fn default_data_dir() -> PathBuf {
    "data".into()
}
fn default_max_body() -> usize {
    1024 * 1024
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
fn default_policies_dir() -> PathBuf {
    "policies".into()
}
fn default_reload_secs() -> u64 {
    2
}
fn default_cache_secs() -> u64 {
    30
}
/// The committed example key that signs checkpoints in the embedded defaults.
const DEV_LOG_KEY: &str = "dev-log";

fn example_keys() -> Vec<KeyConfig> {
    ["dev-ecdsa", "dev-ed25519", DEV_LOG_KEY]
        .into_iter()
        .map(|id| KeyConfig::File { id: id.into(), path: PathBuf::from("keys.example").join(format!("{id}.pem")) })
        .collect()
}

impl ServerConfig {
    fn check_connection_limits(&self) -> Result<(), ConfigError> {
        for (name, value) in
            [("header_timeout_secs", self.header_timeout_secs), ("idle_timeout_secs", self.idle_timeout_secs)]
        {
            if value == 0 {
                return Err(ConfigError::Invalid(format!("[server] {name} must be at least 1")));
            }
        }
        if self.max_connections == 0 {
            return Err(ConfigError::Invalid("[server] max_connections must be at least 1".into()));
        }
        if self.idle_timeout_secs <= self.request_timeout_secs {
            return Err(ConfigError::Invalid(format!(
                "[server] idle_timeout_secs ({}) must exceed request_timeout_secs ({}): a request being handled moves \
                 no bytes, and would be cut",
                self.idle_timeout_secs, self.request_timeout_secs
            )));
        }
        Ok(())
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        toml::from_str("").expect("empty server section uses defaults")
    }
}
impl Default for RegistriesConfig {
    fn default() -> Self {
        toml::from_str("").expect("empty registries section uses defaults")
    }
}
impl Default for PoliciesConfig {
    fn default() -> Self {
        Self {
            dir: default_policies_dir(),
            reload_secs: default_reload_secs(),
            cache_secs: default_cache_secs(),
            evidence: Default::default(),
        }
    }
}

impl Config {
    /// Reads `path` (or the embedded defaults when `None`), then applies `NOTARIUM_*` variables from `env`.
    pub fn load(path: Option<&Path>, env: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let text = match path {
            Some(p) => std::fs::read_to_string(p)
                .map_err(|e| ConfigError::Read { path: p.display().to_string(), reason: e.to_string() })?,
            None => String::new(),
        };
        let mut config: Self = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.map_or("<embedded defaults>".into(), |p| p.display().to_string()),
            reason: e.to_string(),
        })?;
        config.registries.canonicalize()?;
        if let Some(file) = path {
            let written: toml::Table = toml::from_str(&text).unwrap_or_default();
            config.resolve_paths(&file.parent().map(Path::to_path_buf).unwrap_or_default(), &written);
        }
        config.apply_env(env)?;
        config.validate()?;
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
        if !written.contains_key("keys") {
            return;
        }
        for key in &mut self.keys {
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
        if let Some(cap) = self.registries.zero_cap() {
            return Err(ConfigError::Invalid(format!("[registries] {cap} must be at least 1")));
        }
        if let Some(contradiction) = self.auth.contradiction() {
            return Err(ConfigError::Invalid(contradiction.into()));
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
            KeyConfig::File { id: key_id, path } if key_id == id && is_example_key(path) => Some(path.as_path()),
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

/// A key file from the committed `keys.example/` folder.
fn is_example_key(path: &Path) -> bool {
    path.components().any(|c| c.as_os_str() == "keys.example")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_defaults_match_the_design() {
        let c = Config::load(None, &HashMap::new()).unwrap();
        assert_eq!(c.server.listen, "127.0.0.1:8080");
        assert_eq!(c.database_url(), "sqlite://data/notarium.db");
        assert_eq!(c.keys.len(), 3);
        assert!(c.uses_example_keys());
        assert_eq!(c.log_key().as_deref(), Some("dev-log"));
        assert_eq!(c.example_log_key_file(), Some(Path::new("keys.example/dev-log.pem")));
        assert_eq!(c.server.max_body_bytes, 1024 * 1024);
        assert_eq!(c.registries.insecure, ["127.0.0.1:5000", "localhost:5000"]);
    }

    #[test]
    fn relative_paths_written_in_a_file_mean_its_folder() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("n.toml");
        let text = "[server]\ntls_cert = \"c.pem\"\ntls_key = \"/abs/k.pem\"\n[[keys]]\nid = \"k\"\nbackend = \"file\"\npath = \"k.pem\"\n";
        std::fs::write(&path, text).unwrap();
        let env = HashMap::from([("NOTARIUM_POLICIES_DIR".to_owned(), "from-env".to_owned())]);
        let c = Config::load(Some(&path), &env).unwrap();
        assert!(matches!(&c.keys[0], KeyConfig::File { path, .. } if *path == dir.path().join("k.pem")));
        assert_eq!(c.server.tls_cert.as_deref(), Some(dir.path().join("c.pem").as_path()));
        assert_eq!(c.server.tls_key.as_deref(), Some(Path::new("/abs/k.pem")));
        assert_eq!((c.server.data_dir, c.policies.dir), (PathBuf::from("data"), PathBuf::from("from-env")));
        let defaults = Config::load(None, &HashMap::new()).unwrap();
        assert!(matches!(&defaults.keys[0], KeyConfig::File { path, .. } if path.starts_with("keys.example")));
    }

    #[test]
    fn environment_overrides_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("n.toml");
        std::fs::write(
            &path,
            "[server]\nlisten = \"0.0.0.0:1\"\n[registries]\ninsecure = [\"a:1\"]\n[[keys]]\nid = \"k\"\nbackend = \"file\"\npath = \"k.pem\"\n",
        )
        .unwrap();
        let env = HashMap::from([
            ("NOTARIUM_LISTEN".to_owned(), "127.0.0.1:9".to_owned()),
            ("NOTARIUM_INSECURE_REGISTRIES".to_owned(), "b:2, c:3".to_owned()),
            ("NOTARIUM_DATA_DIR".to_owned(), "/tmp/x".to_owned()),
        ]);
        let c = Config::load(Some(&path), &env).unwrap();
        assert_eq!(c.server.listen, "127.0.0.1:9");
        assert_eq!(c.registries.insecure, ["b:2", "c:3"]);
        assert_eq!(c.database_url(), "sqlite:///tmp/x/notarium.db");
        assert_eq!(c.keys[0].id(), "k");
        assert!(!c.uses_example_keys());
    }

    #[test]
    fn registry_hosts_are_canonical_and_a_malformed_one_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("n.toml");
        let config =
            |registries: &str| format!("{registries}\n[[keys]]\nid = \"k\"\nbackend = \"file\"\npath = \"k.pem\"\n");
        std::fs::write(
            &path,
            config(
                "[registries]\ninsecure = [\"LocalHost:5000\"]\nreferrers_off = [\"Reg.Example:443\"]\n\
                 [registries.auth.\"Index.Docker.IO\"]\nusername = \"u\"\npassword_env = \"P\"",
            ),
        )
        .unwrap();
        let c = Config::load(Some(&path), &HashMap::new()).unwrap();
        assert_eq!(c.registries.insecure, ["localhost:5000"]);
        assert_eq!(c.registries.referrers_off, ["reg.example"]);
        assert_eq!(c.registries.auth.keys().collect::<Vec<_>>(), ["docker.io"]);
        let env =
            HashMap::from([("NOTARIUM_INSECURE_REGISTRIES".to_owned(), "LOCALHOST:5001, reg.example:443".to_owned())]);
        assert_eq!(Config::load(Some(&path), &env).unwrap().registries.insecure, ["localhost:5001", "reg.example"]);

        let env = HashMap::from([("NOTARIUM_INSECURE_REGISTRIES".to_owned(), "localhost:05000".to_owned())]);
        let err = Config::load(Some(&path), &env).unwrap_err().to_string();
        assert!(err.contains("NOTARIUM_INSECURE_REGISTRIES") && err.contains("localhost:05000"), "{err}");
        std::fs::write(&path, config("[registries]\nreferrers_off = [\"reg.example.\"]")).unwrap();
        let err = Config::load(Some(&path), &HashMap::new()).unwrap_err().to_string();
        assert!(err.contains("referrers_off") && err.contains("reg.example."), "{err}");
        let twice = "[registries.auth.\"docker.io\"]\nusername = \"a\"\npassword_env = \"P\"\n\
                     [registries.auth.\"index.docker.io\"]\nusername = \"b\"\npassword_env = \"P\"";
        std::fs::write(&path, config(twice)).unwrap();
        let err = Config::load(Some(&path), &HashMap::new()).unwrap_err().to_string();
        assert!(err.contains("docker.io twice"), "{err}");
    }

    #[test]
    fn egress_globs_are_canonical_and_the_blob_stores_and_caps_have_defaults() {
        let c = Config::load(None, &HashMap::new()).unwrap();
        assert!(c.registries.allow.is_empty() && c.registries.deny.is_empty());
        assert_eq!(c.registries.blob_stores["ghcr.io"], ["pkg-containers.githubusercontent.com"]);
        assert_eq!((c.registries.max_error_body_bytes, c.registries.max_token_body_bytes), (65536, 65536));
        assert_eq!(c.registries.max_manifest_bytes, 4 * 1024 * 1024);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("n.toml");
        std::fs::write(
            &path,
            "[registries]\nallow = [\"*.Corp.Example\", \"Reg.Example:443\"]\ndeny = [\"Index.Docker.IO\"]\n\
             [registries.blob_stores]\n\"Harbor.Corp.Example\" = [\"S3.Corp.Example:*\"]\n\
             [registries.auth.\"harbor.corp.example\"]\nusername = \"u\"\npassword_env = \"P\"\nrealms = [\"SSO.Corp.Example\"]\n",
        )
        .unwrap();
        let r = Config::load(Some(&path), &HashMap::new()).unwrap().registries;
        assert_eq!(r.allow, ["*.corp.example", "reg.example"]);
        assert_eq!(r.deny, ["docker.io"]);
        assert_eq!(r.blob_stores.len(), 1, "a configured table replaces the built-in one");
        assert_eq!(r.blob_stores["harbor.corp.example"], ["s3.corp.example:*"]);
        assert_eq!(r.auth["harbor.corp.example"].realms, ["sso.corp.example"]);
        std::fs::write(&path, "[registries]\nallow = [\"reg/*\"]\n").unwrap();
        let err = Config::load(Some(&path), &HashMap::new()).unwrap_err().to_string();
        assert!(err.contains("[registries] allow") && err.contains("reg/*"), "{err}");
        std::fs::write(&path, "[registries]\nmax_token_body_bytes = 0\n").unwrap();
        let err = Config::load(Some(&path), &HashMap::new()).unwrap_err().to_string();
        assert!(err.contains("max_token_body_bytes must be at least 1"), "{err}");
    }

    #[test]
    fn pkcs11_and_vault_keys_parse_with_their_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("n.toml");
        std::fs::write(
            &path,
            r#"
[[keys]]
id = "hsm"
backend = "pkcs11"
module = "/usr/lib/softhsm/libsofthsm2.so"
token_label = "notarium"
key_label = "p256"
pin_env = "PIN"

[[keys]]
id = "vault"
backend = "vault"
address = "http://127.0.0.1:8200"
key = "cosign"
auth = "approle"
role_id = "r"
secret_id_file = "/run/secret"
"#,
        )
        .unwrap();
        let c = Config::load(Some(&path), &HashMap::new()).unwrap();
        let KeyConfig::Pkcs11(hsm) = &c.keys[0] else { panic!("not pkcs11") };
        assert_eq!((hsm.max_sessions, hsm.refresh_secs), (4, 30));
        let KeyConfig::Vault(vault) = &c.keys[1] else { panic!("not vault") };
        assert_eq!(vault.mount, "transit");
        assert_eq!(vault.auth, VaultAuthMethod::Approle);
        std::fs::write(
            &path,
            "[[keys]]\nid = \"v\"\nbackend = \"vault\"\naddress = \"x\"\nkey = \"k\"\ntoken = \"s3cret\"\n",
        )
        .unwrap();
        let err = Config::load(Some(&path), &HashMap::new()).unwrap_err().to_string();
        assert!(err.contains("unknown field `token`"), "{err}");
        assert!(!err.contains("s3cret"), "{err}");
    }

    #[test]
    fn the_example_file_parses_and_names_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("notarium.example.toml");
        let c = Config::load(Some(&path), &HashMap::new()).unwrap();
        assert_eq!(c.server.request_timeout_secs, 60);
        assert_eq!(
            (c.server.header_timeout_secs, c.server.idle_timeout_secs, c.server.max_connections),
            (10, 120, 1024)
        );
        assert_eq!(c.auth.rate_per_minute, 600);
        assert_eq!((c.auth.public_rate_per_minute, c.auth.failed_auth_per_minute), (600, 60));
        assert!(!c.auth.required && !c.auth.open && c.auth.oidc.is_empty());
        assert_eq!(c.policies.evidence, EvidenceLimits::default());
        let text = std::fs::read_to_string(&path).unwrap();
        for (registry, stores) in RegistriesConfig::default().blob_stores {
            let line = format!("# \"{registry}\" = {}", serde_json::to_string(&stores).unwrap().replace(",", ", "));
            assert!(text.contains(&line), "the example does not show the built-in blob stores: {line}");
        }
        let defaults = RegistriesConfig::default();
        assert_eq!(c.registries.max_manifest_bytes, defaults.max_manifest_bytes);
        assert_eq!(c.registries.max_error_body_bytes, defaults.max_error_body_bytes);
        assert_eq!(c.registries.max_token_body_bytes, defaults.max_token_body_bytes);
    }

    #[test]
    fn an_oidc_issuer_with_rules_parses_and_tls_needs_both_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("n.toml");
        std::fs::write(
            &path,
            r#"
[[auth.oidc]]
issuer = "https://token.actions.githubusercontent.com"
audience = "notarium"
[[auth.oidc.rules]]
claims = { repository = "acme/*" }
role = "signer"
repos = ["r.example/acme/*"]
keys = ["prod"]
"#,
        )
        .unwrap();
        let c = Config::load(Some(&path), &HashMap::new()).unwrap();
        assert_eq!(c.auth.oidc[0].algorithms, ["RS256", "ES256"]);
        assert_eq!(c.auth.oidc[0].rules[0].role, Role::Signer);
        std::fs::write(&path, "[server]\ntls_cert = \"c.pem\"\n").unwrap();
        let err = Config::load(Some(&path), &HashMap::new()).unwrap_err().to_string();
        assert!(err.contains("tls_key"), "{err}");
    }

    #[test]
    fn evidence_limits_default_and_can_be_raised_but_not_zeroed() {
        let c = Config::load(None, &HashMap::new()).unwrap();
        assert_eq!(c.policies.evidence, EvidenceLimits::default());
        assert_eq!(c.policies.evidence.max_layers, 64);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("n.toml");
        std::fs::write(&path, "[policies.evidence]\nmax_layers = 200\nmax_bundle_bytes = 4194304\n").unwrap();
        let c = Config::load(Some(&path), &HashMap::new()).unwrap();
        assert_eq!((c.policies.evidence.max_layers, c.policies.evidence.max_bundle_bytes), (200, 4 * 1024 * 1024));
        assert_eq!(c.policies.evidence.max_referrers, 64);
        std::fs::write(&path, "[policies.evidence]\nmax_envelope_signatures = 0\n").unwrap();
        let err = Config::load(Some(&path), &HashMap::new()).unwrap_err().to_string();
        assert!(err.contains("max_envelope_signatures must be at least 1"), "{err}");
        std::fs::write(&path, "[policies.evidence]\nmax_layer = 1\n").unwrap();
        let err = Config::load(Some(&path), &HashMap::new()).unwrap_err().to_string();
        assert!(err.contains("max_layer"), "{err}");
    }

    #[test]
    fn the_log_key_is_one_of_the_keys_and_never_defaults_to_an_image_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("n.toml");
        let keys = "[[keys]]\nid = \"dev-ed25519\"\nbackend = \"file\"\npath = \"keys.example/dev-ed25519.pem\"\n";
        std::fs::write(&path, keys).unwrap();
        let c = Config::load(Some(&path), &HashMap::new()).unwrap();
        assert_eq!(c.log_key(), None, "an image key is not taken for the log");
        std::fs::write(&path, format!("{keys}[log]\nkey = \"hsm-log@2\"\n")).unwrap();
        let err = Config::load(Some(&path), &HashMap::new()).unwrap_err().to_string();
        assert!(err.contains("[log] key \"hsm-log@2\" is not one of the [[keys]]"), "{err}");
        std::fs::write(&path, format!("{keys}[log]\nkey = \"dev-ed25519@1\"\n")).unwrap();
        let c = Config::load(Some(&path), &HashMap::new()).unwrap();
        let example = dir.path().join("keys.example/dev-ed25519.pem");
        assert_eq!(c.example_log_key_file(), Some(example.as_path()), "resolved against the file's folder");
    }

    #[test]
    fn connection_limits_are_positive_and_the_idle_timeout_outlasts_a_request() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("n.toml");
        let load = |server: &str| {
            std::fs::write(&path, format!("[server]\n{server}\n")).unwrap();
            Config::load(Some(&path), &HashMap::new()).map_err(|e| e.to_string())
        };
        let c = load("header_timeout_secs = 2\nidle_timeout_secs = 61\nmax_connections = 3").unwrap();
        assert_eq!((c.server.header_timeout_secs, c.server.idle_timeout_secs, c.server.max_connections), (2, 61, 3));
        assert!(load("max_connections = 0").unwrap_err().contains("max_connections must be at least 1"));
        assert!(load("header_timeout_secs = 0").unwrap_err().contains("header_timeout_secs must be at least 1"));
        let e = load("request_timeout_secs = 300").unwrap_err();
        assert!(e.contains("idle_timeout_secs (120) must exceed request_timeout_secs (300)"), "{e}");
    }

    #[test]
    fn typos_and_duplicate_keys_are_refused_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("n.toml");
        std::fs::write(&path, "[server]\nlisten_addr = \"x\"\n").unwrap();
        let err = Config::load(Some(&path), &HashMap::new()).unwrap_err().to_string();
        assert!(err.contains("listen_addr"), "{err}");
        std::fs::write(
            &path,
            "[[keys]]\nid = \"k\"\nbackend = \"file\"\npath = \"a\"\n[[keys]]\nid = \"k\"\nbackend = \"file\"\npath = \"b\"\n",
        )
        .unwrap();
        let err = Config::load(Some(&path), &HashMap::new()).unwrap_err().to_string();
        assert!(err.contains("twice"), "{err}");
    }
}
