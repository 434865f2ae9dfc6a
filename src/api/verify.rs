//! `POST /v1/verify`: the policy decision for one image. A denial is an answer (200, `allowed: false`),
//! not an error; only input that cannot be decided on is a problem.

use std::net::SocketAddr;

use axum::Json;
use axum::extract::{ConnectInfo, State};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::{Authorized, Verifying};
use super::extract::AppJson;
use super::location::{LogLocation, checkpoint_of};
use super::{ApiError, AppState};
use crate::service::Decision;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct VerifyBody {
    /// `host/repo@sha256:…` or `host/repo:tag`.
    #[schema(example = "127.0.0.1:5000/demo/app:v1")]
    pub image: String,
    /// A loaded policy to decide with, instead of the first whose images match.
    #[serde(default)]
    pub policy: Option<String>,
}

/// The decision (its shape in docs/API.md) and where the register holds it.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct VerifyResponse {
    #[serde(flatten)]
    pub decision: Decision,
    pub log: LogLocation,
}

#[utoipa::path(
    post,
    path = "/v1/verify",
    tag = "verification",
    security(("verifier" = []), ("admin" = [])),
    request_body = VerifyBody,
    responses((status = 200, description = "The decision; a denial is `allowed: false`", body = VerifyResponse))
)]
pub(super) async fn verify(
    caller: Authorized<Verifying>,
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    AppJson(body): AppJson<VerifyBody>,
) -> Result<Json<VerifyResponse>, ApiError> {
    let service = &state.service;
    let decision = service.verify(&body.image, service.policies(), body.policy.as_deref()).await?;
    let position = service.record_decision(&body.image, &decision, caller.actor(), Some(&peer.to_string())).await?;
    let checkpoint = checkpoint_of(&state, Some(position)).await;
    Ok(Json(VerifyResponse { decision, log: LogLocation::new(position, checkpoint) }))
}
