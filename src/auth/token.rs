//! API tokens: `ntk_<id>_<secret>`. The id is public (listing, revoking, the register's actor name); the
//! whole token is shown once and only its SHA-256 is stored. 256 random bits make a salted slow hash
//! pointless, and the stored hash is compared in constant time.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use zeroize::{Zeroize as _, Zeroizing};

use super::{AuthError, Principal, Role, Scope};
use crate::store::{TokenRecord, TokenStore};

const PREFIX: &str = "ntk_";

/// A token just made: the only moment its secret exists outside the caller's hands (overwritten on drop).
pub struct ApiToken {
    pub id: String,
    secret: Zeroizing<String>,
}

impl ApiToken {
    pub fn generate() -> Self {
        let mut id = [0u8; 8];
        let mut secret = [0u8; 32];
        getrandom::fill(&mut id).expect("the OS has randomness");
        getrandom::fill(&mut secret).expect("the OS has randomness");
        let token = Self { id: hex(&id), secret: Zeroizing::new(URL_SAFE_NO_PAD.encode(secret)) };
        secret.zeroize();
        token
    }

    /// The token as the client sends it.
    pub fn reveal(&self) -> String {
        format!("{PREFIX}{}_{}", self.id, self.secret.as_str())
    }

    pub fn sha256(&self) -> String {
        hash(&Zeroizing::new(self.reveal()))
    }

    pub fn looks_like(bearer: &str) -> bool {
        bearer.starts_with(PREFIX)
    }
}

/// What `notarium token create` asks for.
pub struct TokenSpec {
    pub role: Role,
    pub repos: Vec<String>,
    pub keys: Vec<String>,
    pub description: Option<String>,
    pub expires_in: Option<time::Duration>,
}

impl TokenSpec {
    /// A new token for this spec and the row that stores it (with its hash, never the token).
    pub fn issue(&self, now: OffsetDateTime) -> (ApiToken, TokenRecord) {
        let token = ApiToken::generate();
        let record = TokenRecord {
            id: token.id.clone(),
            secret_sha256: token.sha256(),
            role: self.role.as_str().into(),
            repos: super::canonical_patterns(&self.repos),
            keys: self.keys.clone(),
            description: self.description.clone(),
            created_at: rfc3339(now),
            expires_at: self.expires_in.map(|d| rfc3339(now + d)),
            revoked_at: None,
        };
        (token, record)
    }
}

/// Makes a token for `spec` and stores its hash; the caller shows the token once.
pub async fn create(store: &dyn TokenStore, spec: &TokenSpec) -> Result<(ApiToken, TokenRecord), AuthError> {
    if spec.role == Role::Signer && (spec.repos.is_empty() || spec.keys.is_empty()) {
        return Err(AuthError::InvalidSpec("a signer token needs repos and keys".into()));
    }
    if spec.expires_in.is_some_and(|d| d <= time::Duration::ZERO) {
        return Err(AuthError::InvalidLifetime("the lifetime must be positive".into()));
    }
    if spec.expires_in.is_some_and(|d| d > MAX_LIFETIME) {
        return Err(AuthError::InvalidLifetime(format!(
            "the lifetime is longer than the limit of {MAX_LIFETIME_TEXT}"
        )));
    }
    let (token, record) = spec.issue(OffsetDateTime::now_utc());
    store.create_token(&record).await?;
    Ok((token, record))
}

/// Revokes token `id` now; the revocation time, or `None` when no such token is in force.
pub async fn revoke(store: &dyn TokenStore, id: &str) -> Result<Option<String>, AuthError> {
    let now = now_rfc3339();
    Ok(store.revoke_token(id, &now).await?.then_some(now))
}

/// Now, as token rows and token register entries write it.
pub fn now_rfc3339() -> String {
    rfc3339(OffsetDateTime::now_utc())
}

/// The longest lifetime a token may be given, and how messages name it.
pub const MAX_LIFETIME: time::Duration = time::Duration::days(3650);
const MAX_LIFETIME_TEXT: &str = "10 years (3650d)";

/// Parses `90d`, `12h`, `30m` or `3600s`, at most [`MAX_LIFETIME`]. The arithmetic is checked: a number
/// too large for any clock is refused like any other lifetime past the limit.
pub fn parse_lifetime(text: &str) -> Result<time::Duration, String> {
    let malformed = || format!("{text:?} is not a lifetime like 90d, 12h or 30m");
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let unit_seconds: i64 = match unit {
        "d" => 86_400,
        "h" => 3_600,
        "m" => 60,
        "s" => 1,
        _ => return Err(malformed()),
    };
    if number.is_empty() {
        return Err(malformed());
    }
    let too_long = || format!("lifetime {text:?} is longer than the limit of {MAX_LIFETIME_TEXT}");
    // Digits only, so a failed parse is a number past i64: longer than the limit too.
    let seconds = number.parse::<i64>().ok().and_then(|n| n.checked_mul(unit_seconds)).ok_or_else(too_long)?;
    let lifetime = time::Duration::seconds(seconds);
    if lifetime > MAX_LIFETIME {
        return Err(too_long());
    }
    Ok(lifetime)
}

/// The principal behind an API token, if it is known, matches its stored hash, and is in force.
pub(super) async fn authenticate(store: &dyn TokenStore, bearer: &str) -> Result<Principal, AuthError> {
    let invalid = || AuthError::Invalid("unknown token".into());
    let id = bearer.strip_prefix(PREFIX).and_then(|rest| rest.split_once('_')).map(|(id, _)| id).ok_or_else(invalid)?;
    let record = store.token(id).await?.ok_or_else(invalid)?;
    if !bool::from(hash(bearer).as_bytes().ct_eq(record.secret_sha256.as_bytes())) {
        return Err(invalid());
    }
    if record.revoked_at.is_some() {
        return Err(AuthError::Invalid(format!("token {id} was revoked")));
    }
    if record.expires_at.as_deref().is_some_and(has_passed) {
        return Err(AuthError::Invalid(format!("token {id} has expired")));
    }
    let role = Role::parse(&record.role).ok_or_else(|| AuthError::Invalid(format!("token {id} has no known role")))?;
    Ok(Principal {
        name: format!("token:{id}"),
        role: Some(role),
        scope: Scope::new(&record.repos, record.keys),
        identity: None,
    })
}

/// A token's row as shown to administrators and in the register: everything but the hash.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct TokenView {
    pub id: String,
    pub role: String,
    pub repos: Vec<String>,
    pub keys: Vec<String>,
    pub description: Option<String>,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub revoked_at: Option<String>,
}

pub fn describe(t: &TokenRecord) -> TokenView {
    TokenView {
        id: t.id.clone(),
        role: t.role.clone(),
        repos: t.repos.clone(),
        keys: t.keys.clone(),
        description: t.description.clone(),
        created_at: t.created_at.clone(),
        expires_at: t.expires_at.clone(),
        revoked_at: t.revoked_at.clone(),
    }
}

fn has_passed(rfc3339_time: &str) -> bool {
    // An unreadable expiry is treated as passed: a token is never in force by accident.
    !matches!(OffsetDateTime::parse(rfc3339_time, &Rfc3339), Ok(t) if t > OffsetDateTime::now_utc())
}

fn hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.replace_nanosecond(0).expect("0 is valid").format(&Rfc3339).expect("UTC times format")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_its_id_and_a_long_secret_and_hashes_stably() {
        let token = ApiToken::generate();
        let text = token.reveal();
        assert!(ApiToken::looks_like(&text));
        assert_eq!(text.len(), PREFIX.len() + 16 + 1 + 43);
        assert!(text.starts_with(&format!("ntk_{}_", token.id)));
        assert_eq!(token.sha256(), hash(&text));
        assert_ne!(ApiToken::generate().reveal(), text);
    }

    #[test]
    fn a_token_stores_its_repository_globs_in_canonical_form() {
        let spec = TokenSpec {
            role: Role::Signer,
            repos: vec!["LocalHost:5000/team-b/*".into(), "index.docker.io/nginx".into()],
            keys: vec!["prod".into()],
            description: None,
            expires_in: None,
        };
        let (_, record) = spec.issue(OffsetDateTime::now_utc());
        assert_eq!(record.repos, ["localhost:5000/team-b/*", "docker.io/library/nginx"]);
    }

    #[test]
    fn lifetimes_parse_and_nonsense_is_refused() {
        assert_eq!(parse_lifetime("90d").unwrap(), time::Duration::days(90));
        assert_eq!(parse_lifetime("12h").unwrap(), time::Duration::hours(12));
        for bad in ["soon", "5y", "d", "", "-5d", "+5d", "1.5d"] {
            assert!(parse_lifetime(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn lifetimes_past_ten_years_are_refused_naming_the_limit_and_never_overflow() {
        assert_eq!(parse_lifetime("3650d").unwrap(), MAX_LIFETIME);
        assert_eq!(parse_lifetime("87600h").unwrap(), MAX_LIFETIME);
        for long in ["3651d", "3000000d", "9223372036854775807d", "99999999999999999999999s", "153722867280912931m"] {
            let error = parse_lifetime(long).unwrap_err();
            assert!(error.contains("10 years (3650d)"), "{long}: {error}");
        }
    }

    #[tokio::test]
    async fn a_spec_past_the_limit_is_refused_before_anything_is_stored() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::open(&format!("sqlite://{}", dir.path().join("t.db").display())).await.unwrap();
        let spec = |expires_in| TokenSpec {
            role: Role::Auditor,
            repos: vec![],
            keys: vec![],
            description: None,
            expires_in: Some(expires_in),
        };
        let error = create(store.as_ref(), &spec(MAX_LIFETIME + time::Duration::SECOND)).await.err().unwrap();
        assert!(matches!(error, AuthError::InvalidLifetime(ref reason) if reason.contains("3650d")), "{error}");
        assert!(store.tokens().await.unwrap().is_empty());
        assert!(create(store.as_ref(), &spec(MAX_LIFETIME)).await.is_ok());
    }

    #[test]
    fn expiry_in_the_past_or_unreadable_counts_as_passed() {
        assert!(has_passed("2000-01-01T00:00:00Z"));
        assert!(!has_passed("2999-01-01T00:00:00Z"));
        assert!(has_passed("next tuesday"));
    }
}
