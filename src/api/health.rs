//! `GET /healthz` (the process answers) and `GET /readyz` (the database and every key backend answer).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

use super::{ApiError, AppState};

#[derive(Serialize, ToSchema)]
pub struct Health {
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
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses((status = 200, description = "The database and every key backend answer", body = Health))
)]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    if state.draining.load(std::sync::atomic::Ordering::SeqCst) {
        let detail = "notarium is shutting down";
        return Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "shutting-down", "Shutting down", detail));
    }
    let mut failures = Vec::new();
    if let Err(e) = state.service.store.ping().await {
        failures.push(format!("database: {e}"));
    }
    for (id, signer) in state.service.keys.iter() {
        if let Err(e) = signer.versions().await {
            failures.push(format!("key {id}: {e}"));
        }
    }
    if failures.is_empty() {
        return Ok(Json(Health { status: "ready" }));
    }
    Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "not-ready", "A dependency is not ready", failures.join("; ")))
}
