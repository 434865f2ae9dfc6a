//! What each route needs: a handler takes `Authorized<Signing>` (or `Verifying`, `Auditing`,
//! `Administering`) and runs only for callers granted it. Routes without one are public. Refusals of an
//! authenticated caller are recorded in the register.

use std::marker::PhantomData;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use serde_json::Value;

use super::{ApiError, AppState};
use crate::auth::{AuthError, Need, Principal};
use crate::formats::ImageReference;
use crate::keys::KeyRef;

/// Prefix of the payload annotations that carry a CI caller's identity; clients may not set them.
const IDENTITY_ANNOTATION_PREFIX: &str = "notarium.dev/oidc.";

pub trait Requirement: Send + Sync + 'static {
    const NEED: Need;
}

pub struct Signing;
pub struct Verifying;
pub struct Auditing;
pub struct Administering;

impl Requirement for Signing {
    const NEED: Need = Need::Sign;
}
impl Requirement for Verifying {
    const NEED: Need = Need::Verify;
}
impl Requirement for Auditing {
    const NEED: Need = Need::Audit;
}
impl Requirement for Administering {
    const NEED: Need = Need::Admin;
}

/// A caller who may do what `R` needs.
pub struct Authorized<R> {
    pub principal: Principal,
    /// `METHOD /path` and the peer, for refusals found later (signer scopes).
    request: RequestSummary,
    _need: PhantomData<R>,
}

#[derive(Clone)]
struct RequestSummary {
    route: String,
    peer: Option<String>,
}

impl<R: Requirement> FromRequestParts<AppState> for Authorized<R> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let request = RequestSummary {
            route: format!("{} {}", parts.method, parts.uri.path()),
            peer: parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.to_string()),
        };
        let bearer = bearer(&parts.headers)?;
        let principal = match state.auth.authenticate(bearer).await {
            Ok(principal) => principal,
            Err(error) => return Err(refuse(state, &request, error).await),
        };
        if let Err(error) = principal.permits(R::NEED) {
            return Err(refuse(state, &request, error).await);
        }
        Ok(Self { principal, request, _need: PhantomData })
    }
}

impl Authorized<Signing> {
    /// Checks the signer's scope for `image` and `key` before anything is signed.
    pub async fn may_sign(&self, state: &AppState, image: &str, key: &str) -> Result<(), ApiError> {
        // An unreadable reference or key is refused by the sign itself, with its own problem.
        let (Ok(image), Ok(key)) = (ImageReference::parse(image), KeyRef::parse(key)) else {
            return Ok(());
        };
        let repository = format!("{}/{}", image.registry, image.repository);
        match self.principal.may_sign(&repository, &key.id, state.service.keys.checkpoint_key()) {
            Ok(()) => Ok(()),
            Err(error) => Err(refuse(state, &self.request, error).await),
        }
    }

    /// The client's annotations plus the CI identity of the caller, which only the server may write.
    pub fn annotations_with_identity(&self, annotations: Option<Value>) -> Result<Option<Value>, ApiError> {
        let mut annotations = annotations.filter(|a| !a.is_null());
        if let Some(Value::Object(map)) = &annotations {
            if let Some(key) = map.keys().find(|k| k.starts_with(IDENTITY_ANNOTATION_PREFIX)) {
                return Err(ApiError::reserved_annotation(key));
            }
        }
        let Some(identity) = &self.principal.identity else {
            return Ok(annotations);
        };
        let map = annotations.get_or_insert_with(|| Value::Object(Default::default()));
        let Value::Object(map) = map else {
            return Ok(annotations); // not an object: the sign refuses it
        };
        let mut put = |name: &str, value: &str| {
            map.insert(format!("{IDENTITY_ANNOTATION_PREFIX}{name}"), Value::String(value.to_owned()));
        };
        put("issuer", &identity.issuer);
        put("subject", &identity.subject);
        for (claim, value) in &identity.claims {
            put(&format!("claim.{claim}"), value);
        }
        Ok(annotations)
    }
}

/// The caller's name for the register.
impl<R> Authorized<R> {
    pub fn actor(&self) -> &str {
        &self.principal.name
    }
}

fn bearer(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| AuthError::Invalid("the Authorization header is not text".into()))?;
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => {
            Ok(Some(token.trim()))
        }
        _ => Err(AuthError::Invalid("the Authorization header is not `Bearer <token>`".into()).into()),
    }
}

/// The problem for `error`; a refusal of a known caller is also a `request-denied` register entry.
async fn refuse(state: &AppState, request: &RequestSummary, error: AuthError) -> ApiError {
    if let AuthError::Forbidden { actor, reason } = &error {
        let recorded = state.service.record_denial(actor, request.peer.as_deref(), &request.route, reason).await;
        if let Err(e) = recorded {
            tracing::warn!(error = %e, "a refused request could not be recorded in the register");
        }
    }
    error.into()
}
