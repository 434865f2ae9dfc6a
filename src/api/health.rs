//! `GET /healthz` (the process answers) and `GET /readyz` (the database and every key backend answer).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::{ApiError, AppState};

pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

pub async fn readyz(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
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
        return Ok(Json(json!({"status": "ready"})));
    }
    Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "not-ready", "A dependency is not ready", failures.join("; ")))
}
