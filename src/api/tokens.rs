//! `/v1/tokens`: administrators make, list and revoke API tokens. A new token appears once, in the answer
//! to its creation; lists never show a token or its hash. Administration needs an admin token even while
//! the API is otherwise open.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::auth::{Administering, Authorized};
use super::extract::AppJson;
use super::{ApiError, AppState};
use crate::auth::token::{TokenSpec, TokenView, describe, parse_lifetime};
use crate::auth::{AuthError, Role};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateTokenBody {
    pub role: Role,
    /// Signer: repository globs (`host/path/*`) it may sign in.
    #[serde(default)]
    pub repos: Vec<String>,
    /// Signer: key ids it may use (`*`: any).
    #[serde(default)]
    pub keys: Vec<String>,
    /// `90d`, `12h`, `30m`, `3600s`; never expires when absent.
    pub expires: Option<String>,
    pub description: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct CreatedToken {
    /// The token, shown this once: clients send it as `Authorization: Bearer …`.
    pub token: String,
    pub record: TokenView,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct TokenList {
    pub tokens: Vec<TokenView>,
}

#[utoipa::path(
    post,
    path = "/v1/tokens",
    tag = "administration",
    security(("admin" = [])),
    request_body = CreateTokenBody,
    responses((status = 201, description = "The token (shown once) and its record", body = CreatedToken))
)]
pub(super) async fn create(
    caller: Authorized<Administering>,
    State(state): State<AppState>,
    AppJson(body): AppJson<CreateTokenBody>,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    let expires_in = body.expires.as_deref().map(parse_lifetime).transpose().map_err(AuthError::InvalidLifetime)?;
    let spec =
        TokenSpec { role: body.role, repos: body.repos, keys: body.keys, description: body.description, expires_in };
    let (token, record) = state.auth.create_token(&spec).await?;
    let record = describe(&record);
    let entry = serde_json::to_value(&record).expect("a token view serializes");
    state.service.record_token_change("token-created", caller.actor(), &entry).await?;
    Ok((StatusCode::CREATED, Json(CreatedToken { token: token.reveal(), record })))
}

#[utoipa::path(
    get,
    path = "/v1/tokens",
    tag = "administration",
    security(("admin" = [])),
    responses((status = 200, description = "Every token, revoked ones included; never a token or its hash", body = TokenList))
)]
pub(super) async fn list(
    _caller: Authorized<Administering>,
    State(state): State<AppState>,
) -> Result<Json<TokenList>, ApiError> {
    let tokens = state.auth.tokens().await?;
    Ok(Json(TokenList { tokens: tokens.iter().map(describe).collect() }))
}

#[utoipa::path(
    delete,
    path = "/v1/tokens/{id}",
    tag = "administration",
    security(("admin" = [])),
    params(("id" = String, Path, description = "The token's public id")),
    responses((status = 204, description = "Revoked: refused from the next request on"))
)]
pub(super) async fn revoke(
    caller: Authorized<Administering>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if !state.auth.revoke_token(&id).await? {
        return Err(ApiError::no_such_token(&id));
    }
    state.service.record_token_change("token-revoked", caller.actor(), &serde_json::json!({"id": id})).await?;
    Ok(StatusCode::NO_CONTENT)
}
