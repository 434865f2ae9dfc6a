//! `POST /v1/admission` and `POST /v1/admission/mutate`: Kubernetes validating and mutating admission
//! webhooks. An `admission.k8s.io/v1` AdmissionReview in, one out (200 whether allowed, denied or patched);
//! only a body that is not such a review is a problem.

use std::net::SocketAddr;

use axum::Json;
use axum::extract::{ConnectInfo, State};
use serde_json::Value;

use super::auth::{Authorized, Verifying};
use super::extract::AppJson;
use super::{ApiError, AppState};
use crate::formats::admission::{AdmissionRequest, AdmissionReview};

#[utoipa::path(
    post,
    path = "/v1/admission",
    tag = "verification",
    security(("verifier" = []), ("admin" = [])),
    request_body(content = Object, description = "An admission.k8s.io/v1 AdmissionReview, as the API server sends it"),
    responses((status = 200, description = "The AdmissionReview answer: allowed, or denied with each failing image and why", body = AdmissionReview))
)]
pub(super) async fn admission(
    caller: Authorized<Verifying>,
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    AppJson(body): AppJson<Value>,
) -> Result<Json<AdmissionReview>, ApiError> {
    let request = AdmissionRequest::from_review(body)?;
    let images = request.images()?;
    let verdicts = state.service.admit(&images, request.dry_run, caller.actor(), Some(&peer.to_string())).await?;
    Ok(Json(AdmissionReview::answer(&request.uid, &verdicts)))
}

#[utoipa::path(
    post,
    path = "/v1/admission/mutate",
    tag = "verification",
    security(("verifier" = []), ("admin" = [])),
    request_body(content = Object, description = "An admission.k8s.io/v1 AdmissionReview, as the API server sends it"),
    responses((status = 200, description = "The AdmissionReview answer, always allowed: a JSONPatch pinning each tag whose image is allowed to the digest verified for it; a warning for each image left as written because it is denied or cannot be decided", body = AdmissionReview))
)]
pub(super) async fn mutate(
    _caller: Authorized<Verifying>,
    State(state): State<AppState>,
    AppJson(body): AppJson<Value>,
) -> Result<Json<AdmissionReview>, ApiError> {
    let request = AdmissionRequest::from_review(body)?;
    let images = request.images_to_pin()?;
    let verdicts = state.service.decide_pins(&images).await;
    Ok(Json(AdmissionReview::pin(&request.uid, &verdicts)))
}
