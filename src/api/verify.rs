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
    /// Return the decision as a signed verdict (`[verdicts]`, docs/FORMATS.md §27) in `verdict`.
    #[serde(default)]
    pub verdict: bool,
}

/// The decision (its shape in docs/API.md) and where the register holds it.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct VerifyResponse {
    #[serde(flatten)]
    pub decision: Decision,
    pub log: LogLocation,
    /// The signed verdict, when the request asked for one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdict: Option<VerdictAnswer>,
}

/// A verdict: the decision as an in-toto statement in a DSSE envelope signed by the `[verdicts]` key.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct VerdictAnswer {
    #[schema(example = "https://in-toto.io/attestation/svr/v0.2")]
    pub predicate_type: String,
    /// The DSSE envelope (`payloadType`, `payload`, `signatures`).
    #[schema(value_type = Object)]
    pub envelope: serde_json::Value,
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
    let recorded =
        service.record_decision_entry(&body.image, &decision, caller.actor(), Some(&peer.to_string())).await?;
    let verdict = service.emit_verdict(&body.image, &decision, &recorded, body.verdict, caller.actor()).await?;
    let verdict = verdict.map(|v| VerdictAnswer { predicate_type: v.predicate_type, envelope: v.envelope });
    let checkpoint = checkpoint_of(&state, Some(recorded.position)).await;
    Ok(Json(VerifyResponse { decision, log: LogLocation::new(recorded.position, checkpoint), verdict }))
}
