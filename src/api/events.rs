//! `POST /v1/events/registry`: CNCF distribution notifications, authenticated by a shared secret.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, header};

use super::auth::RefusalCounter;
use super::{ApiError, AppState};
use crate::register::event::RegistryEnvelope;
use crate::service::RecordedEvents;

/// Compares without leaking where the first difference is.
fn same_secret(given: &[u8], expected: &[u8]) -> bool {
    given.len() == expected.len() && given.iter().zip(expected).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

/// One delivery of registry notifications; each event id is recorded once.
#[utoipa::path(
    post,
    path = "/v1/events/registry",
    tag = "register",
    request_body(content(
        (RegistryEnvelope = "application/vnd.docker.distribution.events.v1+json"),
        (RegistryEnvelope = "application/json")
    )),
    security(("registry_secret" = [])),
    responses((status = 200, description = "What the delivery added to the register", body = RecordedEvents))
)]
pub(super) async fn registry(
    refusals: RefusalCounter,
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<RecordedEvents>, ApiError> {
    let Some(secret) = state.registry_events_secret.as_deref() else {
        return Err(ApiError::registry_events_off());
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if !same_secret(presented.as_bytes(), secret.as_bytes()) {
        return Err(refusals.refused(&state, ApiError::registry_events_unauthorized()));
    }
    let envelope: RegistryEnvelope = serde_json::from_slice(&body).map_err(|e| ApiError::malformed_events(&e))?;
    Ok(Json(state.service.record_registry_events(&envelope).await?))
}
