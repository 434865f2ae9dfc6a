//! Who is calling and what they may do: API tokens, OIDC ID tokens from CI, roles and signer scopes,
//! rate limits per caller and per source address (public routes, refused authentications), which refusals
//! are recorded when, and whether the API is open at all.
//!
//! Owns: authentication and authorization decisions. Must not touch: HTTP (the API turns an [`AuthError`]
//! into a status) or the register (the API records denials). Never logs, returns or stores a token.

pub mod denials;
pub mod oidc;
mod rate;
pub mod token;

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

pub use crate::config::Role;
use crate::config::{AuthConfig, Config, KeyConfig};
use crate::formats::canonical_pattern;
use crate::glob::glob_matches;
use crate::store::{Store, StoreError};

pub use denials::{Denial, DenialLedger};
pub use oidc::{OidcIdentity, OidcIssuer};
pub use rate::RateLimiter;
use rate::address_key;
pub use token::ApiToken;

/// What a route needs. Each handler names one; routes that name none are public.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    Sign,
    Verify,
    Audit,
    Admin,
}

impl Need {
    fn granted_to(self, role: Role) -> bool {
        matches!(
            (self, role),
            (Self::Sign, Role::Signer)
                | (Self::Verify, Role::Verifier | Role::Admin)
                | (Self::Audit, Role::Auditor | Role::Admin)
                | (Self::Admin, Role::Admin)
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sign => "sign",
            Self::Verify => "verify",
            Self::Audit => "audit",
            Self::Admin => "admin",
        }
    }
}

/// The repositories and keys a signer may use.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    /// Repository globs in canonical form, as the image references they are matched against.
    pub repos: Vec<String>,
    pub keys: Vec<String>,
}

impl Scope {
    /// A scope whose repository globs are put in canonical form (`LocalHost:5000/team/*` governs
    /// `localhost:5000/team/app`, and so does the token or rule that wrote it either way).
    pub fn new(repos: &[String], keys: Vec<String>) -> Self {
        Self { repos: canonical_patterns(repos), keys }
    }
}

/// Repository globs in the canonical form of the references they match.
pub fn canonical_patterns(globs: &[String]) -> Vec<String> {
    globs.iter().map(|glob| canonical_pattern(glob)).collect()
}

/// Who is calling, once authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// How the register names the caller: `token:<id>`, `oidc:<issuer> sub=… claim=…`, or `anonymous`.
    pub name: String,
    /// `None` only on an open API, where everything is allowed.
    pub role: Option<Role>,
    pub scope: Scope,
    /// A CI identity, which also goes into the signature payload.
    pub identity: Option<OidcIdentity>,
}

impl Principal {
    /// The caller of an open API.
    pub fn anonymous() -> Self {
        Self { name: "anonymous".into(), role: None, scope: Scope::default(), identity: None }
    }

    fn is_open(&self) -> bool {
        self.role.is_none()
    }

    pub fn permits(&self, need: Need) -> Result<(), AuthError> {
        match self.role {
            None if need == Need::Admin => Err(self.forbidden(
                "token administration needs an admin token, even on an open API: make the first one with \
                 `notarium token create --role admin`"
                    .into(),
            )),
            None => Ok(()),
            Some(role) if need.granted_to(role) => Ok(()),
            Some(role) => Err(self.forbidden(format!("the {} role may not {}", role.as_str(), need.as_str()))),
        }
    }

    fn forbidden(&self, reason: String) -> AuthError {
        AuthError::Forbidden { actor: self.name.clone(), reason }
    }

    /// May this caller sign `repository` (`host/path`) with key `key_id`? A `*` key scope stands for every
    /// key but `checkpoint_key`, the register's (which signs no image for anyone: the sign refuses it too).
    pub fn may_sign(&self, repository: &str, key_id: &str, checkpoint_key: Option<&str>) -> Result<(), AuthError> {
        self.permits(Need::Sign)?;
        if self.is_open() {
            return Ok(());
        }
        if !self.scope.repos.iter().any(|glob| glob_matches(glob, repository)) {
            return Err(self.forbidden(format!("{} may not sign in repository {repository}", self.name)));
        }
        let any_key_but_the_checkpoint_key = |k: &String| k == "*" && checkpoint_key != Some(key_id);
        if !self.scope.keys.iter().any(|k| any_key_but_the_checkpoint_key(k) || k == key_id) {
            return Err(self.forbidden(format!("{} may not sign with key {key_id}", self.name)));
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("this route needs a bearer token (Authorization: Bearer …)")]
    Missing,
    #[error("the bearer token is not valid: {0}")]
    Invalid(String),
    #[error("forbidden: {reason}")]
    Forbidden { actor: String, reason: String },
    #[error("rate limit reached; retry in {0} s")]
    RateLimited(u64),
    #[error("invalid token request: {0}")]
    InvalidSpec(String),
    #[error("invalid token lifetime: {0}")]
    InvalidLifetime(String),
    #[error("identity provider unavailable: {0}")]
    ProviderUnavailable(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How long "are there tokens yet?" is remembered while the API is open.
const OPEN_CHECK_INTERVAL: Duration = Duration::from_secs(2);

/// Turns a bearer token into a [`Principal`], and keeps the allowances of callers and source addresses.
pub struct Authenticator {
    store: Arc<dyn Store>,
    issuers: Vec<OidcIssuer>,
    /// Per caller (token, CI identity, or an identity no claim rule maps).
    rate: RateLimiter,
    /// Per source address, on the public routes.
    public_rate: RateLimiter,
    /// Per source address, refused authentications.
    refusals: RateLimiter,
    denials: DenialLedger,
    /// Latched: once authentication is required it stays required.
    required: AtomicBool,
    last_open_check: std::sync::Mutex<Option<Instant>>,
}

impl Authenticator {
    pub fn new(config: &AuthConfig, store: Arc<dyn Store>) -> Result<Self, AuthError> {
        let issuers = config.oidc.iter().map(OidcIssuer::new).collect::<Result<Vec<_>, _>>()?;
        let required = config.required || !issuers.is_empty();
        Ok(Self {
            store,
            issuers,
            rate: RateLimiter::per_minute(config.rate_per_minute),
            public_rate: RateLimiter::per_minute(config.public_rate_per_minute),
            refusals: RateLimiter::per_minute(config.failed_auth_per_minute),
            denials: DenialLedger::default(),
            required: AtomicBool::new(required),
            last_open_check: std::sync::Mutex::new(None),
        })
    }

    /// True when callers must authenticate: `required`, an OIDC issuer, or any token in the database.
    pub async fn is_required(&self) -> Result<bool, AuthError> {
        if self.required.load(Ordering::Relaxed) {
            return Ok(true);
        }
        let due = {
            let mut last = self.last_open_check.lock().expect("not poisoned");
            let due = last.is_none_or(|t| t.elapsed() >= OPEN_CHECK_INTERVAL);
            if due {
                *last = Some(Instant::now());
            }
            due
        };
        if due && self.store.count_tokens().await? > 0 {
            self.required.store(true, Ordering::Relaxed);
        }
        Ok(self.required.load(Ordering::Relaxed))
    }

    /// The caller behind `bearer` (the `Authorization: Bearer` value), counted against its rate limit.
    pub async fn authenticate(&self, bearer: Option<&str>) -> Result<Principal, AuthError> {
        let principal = match bearer {
            None if self.is_required().await? => return Err(AuthError::Missing),
            None => return Ok(Principal::anonymous()),
            Some(b) if ApiToken::looks_like(b) => token::authenticate(self.store.as_ref(), b).await?,
            Some(b) => self.authenticate_jwt(b).await.map_err(|e| self.limit_unmapped(e))?,
        };
        self.rate.admit(&principal.name)?;
        Ok(principal)
    }

    /// An identity its issuer vouches for but no claim rule maps counts against its own allowance before
    /// its refusal goes anywhere: anyone can mint such tokens, and each would otherwise be a refusal.
    fn limit_unmapped(&self, error: AuthError) -> AuthError {
        match &error {
            AuthError::Forbidden { actor, .. } => self.rate.admit(actor).err().unwrap_or(error),
            _ => error,
        }
    }

    /// Takes one request of `source`'s allowance on the public routes.
    pub fn admit_public(&self, source: IpAddr) -> Result<(), AuthError> {
        self.public_rate.admit(&address_key(source))
    }

    /// Whether `source` may try to authenticate: not while its refused authentications are over their
    /// allowance.
    pub fn may_try(&self, source: IpAddr) -> Result<(), AuthError> {
        self.refusals.has_room(&address_key(source))
    }

    /// Counts a refused authentication (401, 403) of `source`; rate-limited when it had none left.
    pub fn count_refusal(&self, source: IpAddr) -> Result<(), AuthError> {
        self.refusals.admit(&address_key(source))
    }

    /// The refusals waiting to be recorded.
    pub fn denials(&self) -> &DenialLedger {
        &self.denials
    }

    pub async fn create_token(
        &self,
        spec: &token::TokenSpec,
    ) -> Result<(ApiToken, crate::store::TokenRecord), AuthError> {
        let made = token::create(self.store.as_ref(), spec).await?;
        self.required.store(true, Ordering::Relaxed);
        Ok(made)
    }

    pub async fn tokens(&self) -> Result<Vec<crate::store::TokenRecord>, AuthError> {
        Ok(self.store.tokens().await?)
    }

    /// Revokes token `id` now; false when no such token is in force.
    pub async fn revoke_token(&self, id: &str) -> Result<bool, AuthError> {
        Ok(token::revoke(self.store.as_ref(), id).await?.is_some())
    }

    async fn authenticate_jwt(&self, jwt: &str) -> Result<Principal, AuthError> {
        let issuer = oidc::issuer_of(jwt)?;
        let Some(known) = self.issuers.iter().find(|i| i.issuer() == issuer) else {
            return Err(AuthError::Invalid("not an API token, and not an ID token from a configured issuer".into()));
        };
        known.authenticate(jwt).await
    }
}

/// An open API lets anyone who reaches it sign: next to a key in an HSM or Vault that is refused unless
/// `[auth] open = true` says so. `required`: whether callers must authenticate at start-up.
pub fn check_open_mode(config: &Config, required: bool) -> Result<(), String> {
    if required || config.auth.open {
        return Ok(());
    }
    let guarded = config.keys.iter().find_map(|key| match key {
        KeyConfig::File { .. } => None,
        KeyConfig::Pkcs11(k) => Some(("pkcs11", k.id.as_str())),
        KeyConfig::Vault(k) => Some(("vault", k.id.as_str())),
    });
    match guarded {
        None => Ok(()),
        Some((backend, id)) => Err(format!(
            "refusing to serve an open API (no API token, no [[auth.oidc]] issuer, [auth] required = false) with the \
             {backend} key {id:?} configured: anyone on this host could sign with it. Create a token \
             (`notarium token create --role admin`), configure an issuer or set [auth] required = true; or set \
             [auth] open = true to serve it open anyway"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(role: Role, repos: &[&str], keys: &[&str]) -> Principal {
        let scope = Scope {
            repos: repos.iter().map(|s| s.to_string()).collect(),
            keys: keys.iter().map(|s| s.to_string()).collect(),
        };
        Principal { name: "token:t".into(), role: Some(role), scope, identity: None }
    }

    #[test]
    fn each_role_gets_its_routes_and_admins_do_not_sign() {
        let allowed = |role| {
            [Need::Sign, Need::Verify, Need::Audit, Need::Admin].map(|n| caller(role, &[], &[]).permits(n).is_ok())
        };
        assert_eq!(allowed(Role::Signer), [true, false, false, false]);
        assert_eq!(allowed(Role::Verifier), [false, true, false, false]);
        assert_eq!(allowed(Role::Auditor), [false, false, true, false]);
        assert_eq!(allowed(Role::Admin), [false, true, true, true]);
        assert!(Principal::anonymous().may_sign("any/where", "any", None).is_ok());
    }

    #[test]
    fn signer_scopes_match_repository_globs_within_a_segment_and_listed_keys() {
        let signer = caller(Role::Signer, &["r.example/team-a/*"], &["prod"]);
        assert!(signer.may_sign("r.example/team-a/app", "prod", None).is_ok());
        assert!(signer.may_sign("r.example/team-a/deep/app", "prod", None).is_err());
        assert!(signer.may_sign("r.example/team-b/app", "prod", None).is_err());
        let Err(AuthError::Forbidden { actor, reason }) = signer.may_sign("r.example/team-a/app", "dev", None) else {
            panic!("another key was allowed")
        };
        assert_eq!(actor, "token:t");
        assert!(reason.contains("dev"), "{reason}");
        assert!(caller(Role::Signer, &["r.example/**"], &["*"]).may_sign("r.example/a/b", "any", None).is_ok());
        assert!(caller(Role::Verifier, &["**"], &["*"]).may_sign("r.example/a", "k", None).is_err());
    }

    #[test]
    fn a_star_key_scope_does_not_reach_the_checkpoint_key() {
        let signer = caller(Role::Signer, &["r.example/**"], &["*"]);
        assert!(signer.may_sign("r.example/a", "prod", Some("log")).is_ok());
        let Err(AuthError::Forbidden { reason, .. }) = signer.may_sign("r.example/a", "log", Some("log")) else {
            panic!("* reached the checkpoint key")
        };
        assert!(reason.contains("may not sign with key log"), "{reason}");
    }

    #[test]
    fn a_scope_written_with_another_host_spelling_governs_the_canonical_name() {
        let scope = Scope::new(&["R.Example:443/team-a/*".into(), "index.docker.io/nginx".into()], vec!["*".into()]);
        assert_eq!(scope.repos, ["r.example/team-a/*", "docker.io/library/nginx"]);
        let signer = Principal { name: "token:t".into(), role: Some(Role::Signer), scope, identity: None };
        assert!(signer.may_sign("r.example/team-a/app", "prod", None).is_ok());
        assert!(signer.may_sign("docker.io/library/nginx", "prod", None).is_ok());
        assert!(signer.may_sign("docker.io/library/redis", "prod", None).is_err());
    }

    #[test]
    fn open_mode_next_to_an_hsm_or_vault_key_needs_saying_so() {
        let config = |text: &str| -> Config { toml::from_str(text).unwrap() };
        let vault = "[[keys]]\nid = \"v\"\nbackend = \"vault\"\naddress = \"http://127.0.0.1:1\"\nkey = \"k\"\n";
        let err = check_open_mode(&config(vault), false).unwrap_err();
        assert!(err.contains("vault key \"v\"") && err.contains("[auth] open = true"), "{err}");
        assert!(check_open_mode(&config(vault), true).is_ok(), "authentication is on");
        assert!(check_open_mode(&config(&format!("{vault}[auth]\nopen = true\n")), false).is_ok());
        assert!(check_open_mode(&config(""), false).is_ok(), "file keys are development keys");
    }
}
