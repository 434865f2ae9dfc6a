//! `/v1/tokens`: administrators make, list and revoke API tokens. A new token appears once, in the answer
//! to its creation; lists never show a token or its hash.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::{Administering, Authorized};
use super::{ApiError, AppState};
use crate::auth::Role;
use crate::auth::token::{TokenSpec, describe, parse_lifetime};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateTokenBody {
    pub role: Role,
    #[serde(default)]
    pub repos: Vec<String>,
    #[serde(default)]
    pub keys: Vec<String>,
    /// `90d`, `12h`, `30m`; never expires when absent.
    pub expires: Option<String>,
    pub description: Option<String>,
}

pub async fn create(
    caller: Authorized<Administering>,
    State(state): State<AppState>,
    body: Result<Json<CreateTokenBody>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Json(body) = body?;
    let expires_in = body.expires.as_deref().map(parse_lifetime).transpose().map_err(ApiError::invalid_lifetime)?;
    let spec =
        TokenSpec { role: body.role, repos: body.repos, keys: body.keys, description: body.description, expires_in };
    let (token, record) = state.auth.create_token(&spec).await?;
    let record = describe(&record);
    state.service.record_token_change("token-created", caller.actor(), &record).await?;
    Ok((StatusCode::CREATED, Json(json!({"token": token.reveal(), "record": record}))))
}

pub async fn list(_caller: Authorized<Administering>, State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let tokens = state.auth.tokens().await?;
    Ok(Json(json!({"tokens": tokens.iter().map(describe).collect::<Vec<_>>()})))
}

pub async fn revoke(
    caller: Authorized<Administering>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if !state.auth.revoke_token(&id).await? {
        return Err(ApiError::no_such_token(&id));
    }
    state.service.record_token_change("token-revoked", caller.actor(), &json!({"id": id})).await?;
    Ok(StatusCode::NO_CONTENT)
}
