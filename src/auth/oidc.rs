//! CI workload identity: OIDC ID tokens (JWT) from GitHub Actions, GitLab CI or any issuer, verified
//! against the issuer's JWKS (fetched and cached, or read from a file), audience, expiry and not-before,
//! with a fixed list of asymmetric algorithms; claim rules turn the identity into a role and scope.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::{Duration, Instant};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

use super::{AuthError, Principal, Scope};
use crate::config::{ClaimRule, OidcConfig};
use crate::glob::glob_matches;
use crate::http_body::read_capped;

/// Clock skew allowed on `exp` and `nbf`.
const LEEWAY_SECS: u64 = 30;
/// Who a CI job is, as its ID token says and as far as the matching rule looked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcIdentity {
    pub issuer: String,
    pub subject: String,
    /// The claims the matching rule required, with their values in this token.
    pub claims: BTreeMap<String, String>,
}

impl OidcIdentity {
    /// `oidc:<issuer> sub=<subject> <claim>=<value>…`: the register's actor name.
    pub fn name(&self) -> String {
        let claims: String = self.claims.iter().map(|(k, v)| format!(" {k}={v}")).collect();
        format!("oidc:{} sub={}{claims}", self.issuer, self.subject)
    }
}

pub struct OidcIssuer {
    config: OidcConfig,
    algorithms: Vec<Algorithm>,
    keys: tokio::sync::RwLock<Option<(JwkSet, Instant)>>,
    http: reqwest::Client,
}

impl OidcIssuer {
    pub fn new(config: &OidcConfig) -> Result<Self, AuthError> {
        let algorithms = config.algorithms.iter().map(|a| asymmetric_algorithm(a)).collect::<Result<Vec<_>, _>>()?;
        if algorithms.is_empty() {
            return Err(AuthError::Invalid(format!("issuer {}: no algorithms configured", config.issuer)));
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| AuthError::ProviderUnavailable(e.to_string()))?;
        Ok(Self { config: config.clone(), algorithms, keys: tokio::sync::RwLock::new(None), http })
    }

    pub fn issuer(&self) -> &str {
        &self.config.issuer
    }

    /// The principal behind a verified ID token, scoped by the first rule its claims match.
    pub async fn authenticate(&self, jwt: &str) -> Result<Principal, AuthError> {
        let header = jsonwebtoken::decode_header(jwt).map_err(|e| invalid(e.kind()))?;
        if !self.algorithms.contains(&header.alg) {
            return Err(AuthError::Invalid(format!("algorithm {:?} is not accepted", header.alg)));
        }
        let jwk = self.key(header.kid.as_deref()).await?;
        let key = DecodingKey::from_jwk(&jwk).map_err(|e| invalid(e.kind()))?;
        let claims = jsonwebtoken::decode::<Map<String, Value>>(jwt, &key, &self.validation(header.alg))
            .map_err(|e| invalid(e.kind()))?
            .claims;
        let subject = claims.get("sub").and_then(Value::as_str).unwrap_or_default().to_owned();
        let Some((rule, used)) = self.config.rules.iter().find_map(|r| matched(r, &claims).map(|used| (r, used)))
        else {
            let actor = format!("oidc:{} sub={subject}", self.config.issuer);
            return Err(AuthError::Forbidden {
                actor,
                reason: "no claim rule of this issuer matches the token".into(),
            });
        };
        let identity = OidcIdentity { issuer: self.config.issuer.clone(), subject, claims: used };
        Ok(Principal {
            name: identity.name(),
            role: Some(rule.role),
            scope: Scope::new(&rule.repos, rule.keys.clone()),
            identity: Some(identity),
        })
    }

    /// Checks for a token whose header says `algorithm` (one of ours; the library wants one family only).
    fn validation(&self, algorithm: Algorithm) -> Validation {
        let mut validation = Validation::new(algorithm);
        validation.set_audience(&[&self.config.audience]);
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECS;
        validation
    }

    /// The issuer key `kid` names (or its only key), fetching the set again once if `kid` is unknown.
    async fn key(&self, kid: Option<&str>) -> Result<Jwk, AuthError> {
        if let Some(jwk) = self.cached_key(kid, self.config.jwks_cache_secs).await {
            return Ok(jwk);
        }
        self.refresh().await?;
        self.cached_key(kid, u64::MAX).await.ok_or_else(|| match kid {
            Some(kid) => AuthError::Invalid(format!("the issuer has no key with kid {kid:?}")),
            None => AuthError::Invalid("the token names no kid and the issuer has several keys".into()),
        })
    }

    async fn cached_key(&self, kid: Option<&str>, max_age_secs: u64) -> Option<Jwk> {
        let keys = self.keys.read().await;
        let (set, fetched) = keys.as_ref()?;
        if fetched.elapsed().as_secs() >= max_age_secs {
            return None;
        }
        match kid {
            Some(kid) => set.find(kid).cloned(),
            None if set.keys.len() == 1 => set.keys.first().cloned(),
            None => None,
        }
    }

    async fn refresh(&self) -> Result<(), AuthError> {
        let mut keys = self.keys.write().await;
        let min_refetch = Duration::from_secs(self.config.jwks_refetch_secs);
        if keys.as_ref().is_some_and(|(_, at)| at.elapsed() < min_refetch) {
            return Ok(());
        }
        let set = match &self.config.jwks_file {
            Some(path) => read_jwks_file(path, self.config.max_document_bytes)?,
            None => self.fetch_jwks().await?,
        };
        *keys = Some((set, Instant::now()));
        Ok(())
    }

    async fn fetch_jwks(&self) -> Result<JwkSet, AuthError> {
        let url = match &self.config.jwks_url {
            Some(url) => url.clone(),
            None => self.discover_jwks_url().await?,
        };
        self.get_json(&url).await
    }

    async fn discover_jwks_url(&self) -> Result<String, AuthError> {
        let url = format!("{}/.well-known/openid-configuration", self.config.issuer.trim_end_matches('/'));
        let document: Value = self.get_json(&url).await?;
        document["jwks_uri"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| AuthError::ProviderUnavailable(format!("{url} names no jwks_uri")))
    }

    /// The JSON document at `url`, read within the issuer's `max_document_bytes`.
    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, AuthError> {
        let unavailable = |e: &dyn std::fmt::Display| AuthError::ProviderUnavailable(format!("{url}: {e}"));
        let response =
            self.http.get(url).send().await.and_then(|r| r.error_for_status()).map_err(|e| unavailable(&e))?;
        let body = read_capped(response, self.config.max_document_bytes).await.map_err(|e| unavailable(&e))?;
        serde_json::from_slice(&body).map_err(|e| unavailable(&e))
    }
}

/// The claims `rule` requires and their values, when every one is present and matches its glob.
fn matched(rule: &ClaimRule, claims: &Map<String, Value>) -> Option<BTreeMap<String, String>> {
    rule.claims
        .iter()
        .map(|(name, glob)| {
            let value = claim_text(claims.get(name)?)?;
            glob_matches(glob, &value).then(|| (name.clone(), value))
        })
        .collect()
}

fn claim_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Bool(_) | Value::Number(_) => Some(value.to_string()),
        _ => None,
    }
}

/// Reads the issuer of an unverified token, only to pick which configured issuer verifies it.
#[doc(hidden)]
pub fn issuer_of(jwt: &str) -> Result<String, AuthError> {
    let claims = jwt.split('.').nth(1).ok_or_else(|| AuthError::Invalid("not a JWT".into()))?;
    let bytes = base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, claims)
        .map_err(|_| AuthError::Invalid("the JWT claims are not base64url".into()))?;
    let claims: Map<String, Value> = serde_json::from_slice(&bytes)
        .map_err(|_| AuthError::Invalid("the JWT claims are not a JSON object".into()))?;
    claims
        .get("iss")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| AuthError::Invalid("no iss claim".into()))
}

fn asymmetric_algorithm(name: &str) -> Result<Algorithm, AuthError> {
    let algorithm =
        Algorithm::from_str(name).map_err(|_| AuthError::Invalid(format!("unknown JWT algorithm {name}")))?;
    if matches!(algorithm, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512) {
        return Err(AuthError::Invalid(format!("{name} is symmetric: ID tokens are verified with public keys only")));
    }
    Ok(algorithm)
}

/// `jwks_file`, within the same `max_document_bytes` as a key set fetched from the provider.
fn read_jwks_file(path: &std::path::Path, limit: usize) -> Result<JwkSet, AuthError> {
    let text = crate::local_file::read_text_capped(path, limit as u64)
        .map_err(|e| AuthError::ProviderUnavailable(e.to_string()))?;
    serde_json::from_str(&text)
        .map_err(|e| AuthError::ProviderUnavailable(format!("{} is not a JWK set: {e}", path.display())))
}

/// What the verifier reads from a token and a key set before any signature is checked.
#[doc(hidden)]
#[derive(Debug)]
pub struct Unverified {
    /// The header's algorithm and kid; `None` when the header is malformed.
    pub header: Option<(Algorithm, Option<String>)>,
    /// The claimed issuer; `None` when the claims are malformed or name none.
    pub issuer: Option<String>,
    /// How many keys of the JWK set turn into decoding keys (0 when it is not a JWK set).
    pub usable_keys: usize,
}

/// Reads a token's header and issuer and a JWK set's keys, with no network: the entry point of the fuzz
/// target `oidc` (fuzz/), which checks these readers never panic on any input.
#[doc(hidden)]
pub fn parse_unverified(jwt: &str, jwks: &[u8]) -> Unverified {
    let header = jsonwebtoken::decode_header(jwt).ok().map(|h| (h.alg, h.kid));
    let usable_keys = serde_json::from_slice::<JwkSet>(jwks)
        .map(|set| set.keys.iter().filter(|jwk| DecodingKey::from_jwk(jwk).is_ok()).count())
        .unwrap_or(0);
    Unverified { header, issuer: issuer_of(jwt).ok(), usable_keys }
}

/// Why a token was refused, in words that never quote the token.
fn invalid(kind: &ErrorKind) -> AuthError {
    let reason = match kind {
        ErrorKind::ExpiredSignature => "the ID token has expired".into(),
        ErrorKind::ImmatureSignature => "the ID token is not valid yet (nbf)".into(),
        ErrorKind::InvalidAudience => "the ID token is for another audience".into(),
        ErrorKind::InvalidIssuer => "the ID token is from another issuer".into(),
        ErrorKind::InvalidSignature => "the ID token's signature does not verify".into(),
        ErrorKind::InvalidAlgorithm => "the ID token's algorithm does not fit the issuer's key".into(),
        ErrorKind::MissingRequiredClaim(claim) => format!("the ID token has no {claim} claim"),
        other => format!("the ID token is malformed ({other:?})"),
    };
    AuthError::Invalid(reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unverified_reading_gives_header_issuer_and_usable_keys_or_nothing() {
        let b64 = |json: &str| base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, json);
        let jwt = format!("{}.{}.c2ln", b64(r#"{"alg":"ES256","kid":"k1"}"#), b64(r#"{"iss":"https://ci"}"#));
        let jwks = br#"{"keys":[{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},{"kty":"RSA","n":"!","e":"AQAB"}]}"#;
        let read = parse_unverified(&jwt, jwks);
        assert_eq!(read.header, Some((Algorithm::ES256, Some("k1".to_owned()))));
        assert_eq!((read.issuer.as_deref(), read.usable_keys), (Some("https://ci"), 1));
        let nothing = parse_unverified("a.b", b"[]");
        assert_eq!((nothing.header, nothing.issuer, nothing.usable_keys), (None, None, 0));
    }

    fn rule(claims: &[(&str, &str)]) -> ClaimRule {
        ClaimRule {
            claims: claims.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            role: super::super::Role::Signer,
            repos: vec![],
            keys: vec![],
        }
    }

    #[test]
    fn a_rule_matches_when_every_claim_it_names_matches_its_glob_and_reports_those_claims() {
        let claims: Map<String, Value> = serde_json::from_value(serde_json::json!({
            "project_path": "acme/team-a/api", "ref_protected": true, "ref": "main", "groups": ["a"],
        }))
        .unwrap();
        let used = matched(&rule(&[("project_path", "acme/team-a/*"), ("ref_protected", "true")]), &claims).unwrap();
        assert_eq!(used.len(), 2);
        assert_eq!(used["ref_protected"], "true");
        assert!(matched(&rule(&[("project_path", "acme/*")]), &claims).is_none(), "* crossed a /");
        assert!(matched(&rule(&[("environment", "*")]), &claims).is_none(), "a missing claim matched");
        assert!(matched(&rule(&[("groups", "*")]), &claims).is_none(), "a list matched a glob");
    }

    #[test]
    fn only_asymmetric_algorithms_are_accepted_in_configuration() {
        assert!(asymmetric_algorithm("RS256").is_ok() && asymmetric_algorithm("EdDSA").is_ok());
        assert!(asymmetric_algorithm("HS256").is_err());
        assert!(asymmetric_algorithm("none").is_err());
    }

    #[test]
    fn an_oversized_jwks_file_is_refused_unread_naming_it() {
        let (_dir, path) = crate::local_file::sparse_file("jwks.json", 4097);
        let Err(AuthError::ProviderUnavailable(message)) = read_jwks_file(&path, 4096) else {
            panic!("an oversized key set was read")
        };
        assert!(message.contains(&path.display().to_string()) && message.contains("4096 bytes"), "{message}");
    }
}
