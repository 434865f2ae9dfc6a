//! `[auth]`: who may call the API and how often. With no tokens in the database, no `[[auth.oidc]]`
//! issuer and `required = false`, the API is open: loopback listeners and loopback `Host` names only, and
//! refused at start-up next to an HSM or Vault key unless `open = true` says so.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// What a caller may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Sign and attest images in its repositories with its keys.
    Signer,
    /// Ask for verify and admission decisions, list referrers.
    Verifier,
    /// Read the register: entries, proofs, exports.
    Auditor,
    /// Everything a verifier and an auditor may do, and administration; not signing (separation of duties).
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Signer => "signer",
            Self::Verifier => "verifier",
            Self::Auditor => "auditor",
            Self::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Signer, Self::Verifier, Self::Auditor, Self::Admin].into_iter().find(|r| r.as_str() == s)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// Require a bearer token on every route but the public ones, even before any token exists.
    #[serde(default)]
    pub required: bool,
    /// Requests per minute each token or CI identity may make (bursts up to the same number); 0: no limit.
    #[serde(default = "default_rate")]
    pub rate_per_minute: u32,
    /// Requests per minute each source address may make to the public routes (keys, checkpoint, health,
    /// metrics, the OpenAPI document); 0: no limit.
    #[serde(default = "default_public_rate")]
    pub public_rate_per_minute: u32,
    /// Refused authentications (401, 403) per minute each source address may have; beyond, its requests
    /// are answered 429 before any authentication; 0: no limit.
    #[serde(default = "default_failed_auth_rate")]
    pub failed_auth_per_minute: u32,
    /// Serve the open API although an HSM (`pkcs11`) or Vault key is configured: anyone on this host could
    /// sign with it.
    #[serde(default)]
    pub open: bool,
    /// CI workload identity: OIDC issuers whose ID tokens are accepted.
    #[serde(default)]
    pub oidc: Vec<OidcConfig>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        toml::from_str("").expect("an empty [auth] uses defaults")
    }
}

impl AuthConfig {
    /// Why this configuration may not start, if it may not.
    pub(super) fn contradiction(&self) -> Option<&'static str> {
        let closed = self.required || !self.oidc.is_empty();
        (self.open && closed)
            .then_some("[auth] open = true contradicts required = true and [[auth.oidc]] issuers: the API is not open")
    }
}

fn default_rate() -> u32 {
    600
}

fn default_public_rate() -> u32 {
    600
}

fn default_failed_auth_rate() -> u32 {
    60
}

/// One OIDC issuer (e.g. `https://token.actions.githubusercontent.com`, `https://gitlab.com`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// Must equal the token's `iss`.
    pub issuer: String,
    /// The token's `aud` must contain this.
    pub audience: String,
    /// Where the issuer's keys are; `<issuer>/.well-known/openid-configuration` names it when unset.
    pub jwks_url: Option<String>,
    /// The keys from a file instead (air-gapped sites); wins over `jwks_url`.
    pub jwks_file: Option<PathBuf>,
    /// Signature algorithms accepted (JWA names); never `none` or an HMAC one.
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<String>,
    /// How long fetched keys are reused before they are fetched again.
    #[serde(default = "default_jwks_cache")]
    pub jwks_cache_secs: u64,
    /// A token naming a `kid` the cached keys lack makes them be fetched again (the issuer rotated its
    /// keys), but not more often than this.
    #[serde(default = "default_jwks_refetch")]
    pub jwks_refetch_secs: u64,
    /// The discovery document and the JWKS are read up to this many bytes; a longer answer is refused.
    #[serde(default = "default_max_document_bytes")]
    pub max_document_bytes: usize,
    /// Claims to scope: the first rule whose claims all match decides; no match means no access.
    #[serde(default)]
    pub rules: Vec<ClaimRule>,
}

fn default_max_document_bytes() -> usize {
    256 * 1024
}

fn default_algorithms() -> Vec<String> {
    vec!["RS256".into(), "ES256".into()]
}

fn default_jwks_cache() -> u64 {
    600
}

fn default_jwks_refetch() -> u64 {
    30
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimRule {
    /// Claim name → glob its value must match (`*` within a `/`-separated segment, `**` across).
    pub claims: BTreeMap<String, String>,
    pub role: Role,
    /// For signers: repository globs (`host/path/*`) and key ids it may sign with.
    #[serde(default)]
    pub repos: Vec<String>,
    #[serde(default)]
    pub keys: Vec<String>,
}
