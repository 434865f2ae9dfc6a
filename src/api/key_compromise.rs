//! Key-compromise response over HTTP (docs/API.md): `GET /v1/keys/{id}/versions/{n}/signed`, what a key
//! version signed (from the register's search index), and `POST /v1/keys/{id}/versions/{n}/revoke`.
//!
//! Owns: reading and bounding the query and body, the inventory's shape. Must not touch: SQL, or what a
//! revocation refuses (`service::revocation`, `policy::engine`).

use std::net::SocketAddr;

use axum::Json;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::auth::{Administering, Auditing, Authorized};
use super::extract::{AppJson, AppQuery};
use super::log_search::{cursor, limit, open_cursor, time};
use super::{ApiError, AppState};
use crate::keys::KeyRef;
use crate::store::{KeyRevocation, SearchFilter};

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct SignedQuery {
    /// `sign` or `attest` (both when not given).
    kind: Option<String>,
    /// RFC 3339: entries whose `time` is at or after it.
    #[param(format = DateTime)]
    since: Option<String>,
    /// The `next_cursor` of the previous page, with the same parameters.
    cursor: Option<String>,
    /// Entries read per page, 1 to 1000 (default 100).
    limit: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub(super) struct SignedPage {
    /// What the key version signed, newest first.
    items: Vec<SignedItem>,
    /// Pass as `cursor` (with the same parameters) for the next page; null on the last one.
    next_cursor: Option<String>,
}

/// One image signature or attestation the key version made, as its register entry records it.
#[derive(Serialize, ToSchema)]
pub(super) struct SignedItem {
    /// The register entry.
    index: u64,
    /// `sign` or `attest`.
    kind: String,
    registry: String,
    repository: String,
    digest: String,
    time: String,
    /// Who asked for it (the CI identity: `token:<id>`, `oidc:<issuer> sub=…`).
    actor: String,
    /// An attestation's predicate type.
    #[serde(skip_serializing_if = "Option::is_none")]
    predicate_type: Option<String>,
}

/// Every image signature and attestation key version `id@n` made, from the register, newest first.
#[utoipa::path(
    get,
    path = "/v1/keys/{id}/versions/{n}/signed",
    tag = "keys",
    security(("auditor" = []), ("admin" = [])),
    params(("id" = String, Path, description = "A key id"), ("n" = u32, Path, description = "Its version"), SignedQuery),
    responses((status = 200, description = "A page of what the key version signed, newest first", body = SignedPage))
)]
pub(super) async fn signed(
    _caller: Authorized<Auditing>,
    State(state): State<AppState>,
    Path((id, n)): Path<(String, String)>,
    AppQuery(query): AppQuery<SignedQuery>,
) -> Result<Json<SignedPage>, ApiError> {
    let reference = key_version(&id, &n)?;
    let limit = limit(query.limit.as_deref())?;
    let kind = match query.kind.as_deref() {
        None => None,
        Some(k @ ("sign" | "attest")) => Some(k.to_owned()),
        Some(_) => return Err(ApiError::invalid_query("kind: expected sign or attest")),
    };
    let filter = SearchFilter {
        kind,
        key: Some(reference.id.clone()),
        key_version: reference.version.map(i64::from),
        from_ms: query.since.as_deref().map(|t| time("since", t)).transpose()?,
        ..SearchFilter::default()
    };
    let before = query.cursor.as_deref().map(|c| open_cursor(c, &filter)).transpose()?;
    let mut found = state.service.register_search(&filter, before, limit + 1).await?;
    let more = found.len() > limit as usize;
    found.truncate(limit as usize);
    let next_cursor = found.last().filter(|_| more).map(|last| cursor(last.index, &filter));
    let items = found.iter().filter_map(|f| item(f.index, &f.entry)).collect();
    Ok(Json(SignedPage { items, next_cursor }))
}

/// A `sign` or `attest` entry as an inventory item; other kinds about the key are left out.
fn item(index: u64, entry: &[u8]) -> Option<SignedItem> {
    let entry: Value = serde_json::from_slice(entry).ok()?;
    let text = |v: &Value| v.as_str().map(str::to_owned);
    let kind = text(&entry["kind"]).filter(|k| k == "sign" || k == "attest")?;
    let predicate_type = (kind == "attest").then(|| text(&entry["details"]["predicate_type"])).flatten();
    Some(SignedItem {
        index,
        kind,
        registry: text(&entry["subject"]["registry"])?,
        repository: text(&entry["subject"]["repository"])?,
        digest: text(&entry["subject"]["digest"])?,
        time: text(&entry["time"])?,
        actor: text(&entry["actor"]["name"]).unwrap_or_default(),
        predicate_type,
    })
}

fn key_version(id: &str, n: &str) -> Result<KeyRef, ApiError> {
    let reference = KeyRef::parse(id)?;
    if reference.version.is_some() {
        return Err(ApiError::invalid_query("id: name the version in the path's version segment, not id@N"));
    }
    let version = match n.parse::<u32>() {
        Ok(v) if v >= 1 => v,
        _ => return Err(ApiError::invalid_query("n: expected a positive key version")),
    };
    Ok(KeyRef { id: reference.id, version: Some(version) })
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RevokeBody {
    /// RFC 3339, not in the future: signatures whose register entry is not provably earlier are refused;
    /// every signature by the version is refused when not given.
    #[schema(format = DateTime)]
    compromised_at: Option<String>,
    /// Why, 1 to 1024 bytes; verification's reasons quote it.
    reason: String,
}

#[derive(Serialize, ToSchema)]
pub(super) struct Revocation {
    key: String,
    version: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    compromised_at: Option<String>,
    reason: String,
    revoked_at: String,
    actor: String,
    /// The `key-revoked` register entry.
    log_index: u64,
}

impl From<KeyRevocation> for Revocation {
    fn from(r: KeyRevocation) -> Self {
        Self {
            key: r.key_id,
            version: r.key_version,
            compromised_at: r.compromised_at,
            reason: r.reason,
            revoked_at: r.revoked_at,
            actor: r.actor,
            log_index: r.log_index,
        }
    }
}

/// Revokes key version `id@n` (docs/FORMATS.md §25): verification on every replica refuses its signatures
/// from the next verify on, or with `compromised_at` only those the register does not prove earlier. A
/// version is revoked once: a second revocation is `409 key-already-revoked`.
#[utoipa::path(
    post,
    path = "/v1/keys/{id}/versions/{n}/revoke",
    tag = "administration",
    security(("admin" = [])),
    params(("id" = String, Path, description = "A key id"), ("n" = u32, Path, description = "Its version")),
    request_body = RevokeBody,
    responses((status = 201, description = "The revocation, as stored", body = Revocation))
)]
pub(super) async fn revoke(
    caller: Authorized<Administering>,
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path((id, n)): Path<(String, String)>,
    AppJson(body): AppJson<RevokeBody>,
) -> Result<(StatusCode, Json<Revocation>), ApiError> {
    let reference = key_version(&id, &n)?;
    let addr = peer.to_string();
    let request = crate::service::RevokeRequest {
        key: &reference.id,
        version: reference.version.unwrap_or(1),
        compromised_at: body.compromised_at.as_deref(),
        reason: &body.reason,
        actor: caller.actor(),
        source_addr: Some(&addr),
    };
    let revocation = state.service.revoke_key_version(&request).await?;
    Ok((StatusCode::CREATED, Json(revocation.into())))
}
