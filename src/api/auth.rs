//! What each route needs: a handler takes `Authorized<Signing>` (or `Verifying`, `Auditing`,
//! `Administering`) and runs only for callers granted it; a public route takes [`Public`]. Both refuse a
//! request to the open API whose `Host` is not a loopback name (DNS rebinding), and count against the
//! source address: public requests, and refused authentications (beyond their allowance an address is
//! answered 429 before anything is checked or recorded). Refusals of a known caller are recorded in the
//! register, aggregated per caller and minute (`auth::denials`).

use std::marker::PhantomData;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use serde_json::Value;

use super::{ApiError, AppState};
use crate::auth::{AuthError, Denial, Need, Principal};
use crate::formats::ImageReference;
use crate::keys::KeyRef;
use crate::register::event::DeniedRequest;

/// Prefix of the payload annotations that carry a CI caller's identity; clients may not set them.
const IDENTITY_ANNOTATION_PREFIX: &str = "notarium.dev/oidc.";

pub(super) trait Requirement: Send + Sync + 'static {
    const NEED: Need;
}

pub(super) struct Signing;
pub(super) struct Verifying;
pub(super) struct Auditing;
pub(super) struct Administering;

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
pub(super) struct Authorized<R> {
    pub principal: Principal,
    /// `METHOD /path` and the peer, for refusals found later (signer scopes).
    request: RequestSummary,
    _need: PhantomData<R>,
}

#[derive(Clone)]
struct RequestSummary {
    route: String,
    peer: Option<SocketAddr>,
}

impl RequestSummary {
    fn of(parts: &Parts) -> Self {
        Self { route: format!("{} {}", parts.method, parts.uri.path()), peer: peer(parts) }
    }

    fn source(&self) -> Option<IpAddr> {
        self.peer.map(|p| p.ip())
    }
}

/// The TCP peer of the request.
fn peer(parts: &Parts) -> Option<SocketAddr> {
    parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0)
}

impl<R: Requirement> FromRequestParts<AppState> for Authorized<R> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        refuse_foreign_host_when_open(parts, state).await?;
        let request = RequestSummary::of(parts);
        if let Some(source) = request.source() {
            state.auth.may_try(source)?;
        }
        let principal = match bearer(&parts.headers) {
            Ok(bearer) => state.auth.authenticate(bearer).await,
            Err(error) => Err(error),
        };
        let principal = match principal {
            Ok(principal) => principal,
            Err(error) => return Err(refuse(state, &request, error).await),
        };
        if let Err(error) = principal.permits(R::NEED) {
            return Err(refuse(state, &request, error).await);
        }
        Ok(Self { principal, request, _need: PhantomData })
    }
}

/// A request to a public route: from a loopback `Host` while the API is open, within its source
/// address's allowance (`[auth] public_rate_per_minute`).
pub(super) struct Public;

impl FromRequestParts<AppState> for Public {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        refuse_foreign_host_when_open(parts, state).await?;
        if let Some(peer) = peer(parts) {
            state.auth.admit_public(peer.ip())?;
        }
        Ok(Self)
    }
}

/// The source address of a request, for routes with their own authentication (registry events): it may
/// try only while its refused authentications are within their allowance, and each refusal counts.
pub(super) struct RefusalCounter {
    source: Option<IpAddr>,
}

impl RefusalCounter {
    /// The problem `refusal` after counting it; 429 instead once the source's allowance is spent.
    pub(super) fn refused(&self, state: &AppState, refusal: ApiError) -> ApiError {
        match self.source.map(|source| state.auth.count_refusal(source)) {
            Some(Err(limited)) => limited.into(),
            _ => refusal,
        }
    }
}

impl FromRequestParts<AppState> for RefusalCounter {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let source = peer(parts).map(|p| p.ip());
        if let Some(source) = source {
            state.auth.may_try(source)?;
        }
        Ok(Self { source })
    }
}

/// Whether the caller asked for details with an admin token: no `Authorization` header means no; a
/// header must carry an admin's token (else 401 or 403, like any admin route).
pub(super) struct AdminDetails(pub bool);

impl FromRequestParts<AppState> for AdminDetails {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if !parts.headers.contains_key(header::AUTHORIZATION) {
            return Ok(Self(false));
        }
        Authorized::<Administering>::from_request_parts(parts, state).await.map(|_| Self(true))
    }
}

/// DNS rebinding: a web page may make the browser send requests to a loopback address under its own
/// name. An open API (no token needed) answers only requests naming a loopback host.
async fn refuse_foreign_host_when_open(parts: &Parts, state: &AppState) -> Result<(), ApiError> {
    if state.auth.is_required().await? {
        return Ok(());
    }
    let host = parts.headers.get(header::HOST).map(|v| v.to_str().unwrap_or_default());
    let authority = parts.uri.authority().map(|a| a.as_str());
    let named: Vec<&str> = host.into_iter().chain(authority).collect();
    if named.is_empty() || !named.iter().all(|h| is_loopback_host(h)) {
        return Err(ApiError::host_not_loopback());
    }
    Ok(())
}

/// `localhost`, an IPv4 loopback address or `[::1]`, with or without a port.
fn is_loopback_host(value: &str) -> bool {
    let Ok(authority) = value.parse::<axum::http::uri::Authority>() else {
        return false;
    };
    let Some(port) = authority.as_str().strip_prefix(authority.host()) else {
        return false; // user information before the host
    };
    let port_is_a_number = port.is_empty() || port.strip_prefix(':').is_some_and(|p| p.parse::<u16>().is_ok());
    let host = authority.host();
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    let loopback_address = host.parse::<IpAddr>().is_ok_and(|ip| ip.to_canonical().is_loopback());
    port_is_a_number && (host.eq_ignore_ascii_case("localhost") || loopback_address)
}

impl Authorized<Signing> {
    /// Checks the signer's scope for `image` and `key` before anything is signed.
    pub(super) async fn may_sign(&self, state: &AppState, image: &str, key: &str) -> Result<(), ApiError> {
        // An unreadable reference or key is refused by the sign itself, with its own problem.
        let (Ok(image), Ok(key)) = (ImageReference::parse(image), KeyRef::parse(key)) else {
            return Ok(());
        };
        let repository = format!("{}/{}", image.registry, image.repository);
        match self.principal.may_sign(&repository, &key.id, state.service.keys().checkpoint_key()) {
            Ok(()) => Ok(()),
            Err(error) => Err(refuse(state, &self.request, error).await),
        }
    }

    /// The client's annotations plus the CI identity of the caller, which only the server may write.
    pub(super) fn annotations_with_identity(&self, annotations: Option<Value>) -> Result<Option<Value>, ApiError> {
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
    pub(super) fn actor(&self) -> &str {
        &self.principal.name
    }
}

fn bearer(headers: &HeaderMap) -> Result<Option<&str>, AuthError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| AuthError::Invalid("the Authorization header is not text".into()))?;
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => {
            Ok(Some(token.trim()))
        }
        _ => Err(AuthError::Invalid("the Authorization header is not `Bearer <token>`".into())),
    }
}

/// The problem for `error`. A refused authentication counts against the source address (429 instead, and
/// nothing recorded, once its allowance is spent); a refusal of a known caller is a `request-denied` entry,
/// at once for its first of the minute, later in one entry with a count for the rest.
async fn refuse(state: &AppState, request: &RequestSummary, error: AuthError) -> ApiError {
    let refused = matches!(error, AuthError::Missing | AuthError::Invalid(_) | AuthError::Forbidden { .. });
    if let (true, Some(source)) = (refused, request.source()) {
        if let Err(limited) = state.auth.count_refusal(source) {
            return limited.into();
        }
    }
    if let AuthError::Forbidden { actor, reason } = &error {
        let denial = Denial {
            actor: actor.clone(),
            addr: request.peer.map(|p| p.to_string()),
            route: request.route.clone(),
            reason: reason.clone(),
            time: crate::service::now_rfc3339(),
        };
        if let Some(first) = state.auth.denials().note(denial, Instant::now()) {
            record(state, &first, 1, None).await;
        }
    }
    error.into()
}

/// Refusals the register has not seen are held at most this long past their window.
const HELD_DENIALS_CHECK: Duration = Duration::from_secs(5);

/// Records, every few seconds, the refusals held in windows that have closed: one entry each.
pub async fn record_held_denials(state: AppState) {
    loop {
        tokio::time::sleep(HELD_DENIALS_CHECK).await;
        for held in state.auth.denials().closed(Instant::now()) {
            record(&state, &held.first, held.count, Some(&held.first.time)).await;
        }
    }
}

/// Records every refusal still held (at shutdown).
pub async fn record_all_held_denials(state: &AppState) {
    for held in state.auth.denials().drain() {
        record(state, &held.first, held.count, Some(&held.first.time)).await;
    }
}

async fn record(state: &AppState, denial: &Denial, count: u64, since: Option<&str>) {
    let now = crate::service::now_rfc3339();
    let denied = DeniedRequest {
        time: if since.is_some() { &now } else { &denial.time },
        actor: &denial.actor,
        addr: denial.addr.as_deref(),
        route: &denial.route,
        reason: &denial.reason,
        count,
        since,
    };
    if let Err(e) = state.service.record_denial(&denied).await {
        tracing::warn!(error = %e, count, "a refused request could not be recorded in the register");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_names_and_addresses_are_loopback_hosts() {
        for host in
            ["localhost", "LocalHost:8080", "127.0.0.1", "127.0.0.1:8080", "127.8.9.10:1", "[::1]", "[::1]:8080"]
        {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in [
            "rebind.example:8080",
            "localhost.rebind.example",
            "127.0.0.1.rebind.example",
            "10.0.0.1:8080",
            "[::2]:8080",
            "user@localhost",
            "localhost:http",
            "",
        ] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }
}
