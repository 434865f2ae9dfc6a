//! `GET /healthz` (the process answers) and `GET /readyz` (the database and every key backend answer).
//! Both are public: `/readyz` says only whether it is ready, and names what is not only to an admin token,
//! since backend errors carry addresses, mounts and key names.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::{AdminDetails, Public};
use super::{ApiError, AppState};

#[derive(Serialize, ToSchema)]
pub(super) struct Health {
    /// `ok` (healthz) or `ready` (readyz).
    #[schema(value_type = String)]
    status: &'static str,
}

#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    responses((status = 200, description = "The process answers", body = Health))
)]
pub(super) async fn healthz(_public: Public) -> Json<Health> {
    Json(Health { status: "ok" })
}

#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses((
        status = 200,
        description = "The database and every key backend answer. Unready is a 503 problem; only a request with an \
                       admin token is told which dependency failed and how.",
        body = Health
    ))
)]
pub(super) async fn readyz(
    _public: Public,
    AdminDetails(details): AdminDetails,
    State(state): State<AppState>,
) -> Result<Json<Health>, ApiError> {
    if state.draining.load(std::sync::atomic::Ordering::SeqCst) {
        return Err(ApiError::shutting_down());
    }
    let failures = state.service.unready().await;
    if failures.is_empty() {
        return Ok(Json(Health { status: "ready" }));
    }
    Err(ApiError::not_ready(&failures, details))
}
