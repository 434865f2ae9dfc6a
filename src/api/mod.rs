//! The HTTP API (axum): one file per resource, and `error.rs`, the only place that picks status codes.
//!
//! Owns: routes, request and response shapes (design.md's contract), body limits. Must not touch:
//! registries, keys or SQL directly; it calls `service` and renders what comes back.

mod attest;
mod error;
mod events;
mod health;
mod keys;
mod log;
mod referrers;
mod sign;
mod verify;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

pub use error::ApiError;
pub use log::EXPORT_COUNT_HEADER;

use crate::service::Service;

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    pub service: Arc<Service>,
    /// The shared secret registries present on `POST /v1/events/registry`; `None` turns the route off.
    pub registry_events_secret: Option<Arc<str>>,
}

/// The whole API. `max_body_bytes` bounds every request body.
pub fn router(state: AppState, max_body_bytes: usize) -> Router {
    Router::new()
        .route("/v1/sign", post(sign::sign))
        .route("/v1/events/registry", post(events::registry))
        .route("/v1/keys", get(keys::list))
        .route("/v1/keys/{id}/public.pem", get(keys::public_pem))
        .route("/v1/log/checkpoint", get(log::checkpoint))
        .route("/v1/log/entries", get(log::entries))
        .route("/v1/attest", post(attest::attest))
        .route("/v1/verify", post(verify::verify))
        .route("/v1/referrers", get(referrers::referrers))
        .route("/v1/log/export", get(log::export))
        .route("/v1/log/proof/inclusion", get(log::inclusion_proof))
        .route("/v1/log/proof/consistency", get(log::consistency_proof))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .fallback(error::no_such_route)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}
