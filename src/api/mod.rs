//! The HTTP API (axum): one file per resource, and `error.rs`, the only place that picks status codes.
//!
//! Owns: routes, request and response shapes (design.md's contract), body limits. Must not touch:
//! registries, keys or SQL directly; it calls `service` and renders what comes back.

mod admission;
mod attest;
mod auth;
mod error;
mod events;
mod health;
mod keys;
mod log;
mod metrics;
mod referrers;
mod sign;
mod tokens;
mod verify;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::{get, post};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

pub use error::ApiError;
pub use log::EXPORT_COUNT_HEADER;

use crate::service::Service;

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    pub service: Arc<Service>,
    /// The shared secret registries present on `POST /v1/events/registry`; `None` turns the route off.
    pub registry_events_secret: Option<Arc<str>>,
    /// Set when shutdown begins: `/readyz` answers 503 from then on.
    pub draining: Arc<std::sync::atomic::AtomicBool>,
    /// Who is calling: tokens, OIDC issuers, rate limits.
    pub auth: Arc<crate::auth::Authenticator>,
}

/// Bounds on every request.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_body_bytes: usize,
    /// Until the response starts; a streamed export may take longer to finish.
    pub request_timeout: std::time::Duration,
}

/// The whole API.
pub fn router(state: AppState, limits: Limits) -> Router {
    Router::new()
        .route("/v1/sign", post(sign::sign))
        .route("/v1/events/registry", post(events::registry))
        .route("/v1/keys", get(keys::list))
        .route("/v1/keys/{id}/public.pem", get(keys::public_pem))
        .route("/v1/log/checkpoint", get(log::checkpoint))
        .route("/v1/log/entries", get(log::entries))
        .route("/v1/attest", post(attest::attest))
        .route("/v1/verify", post(verify::verify))
        .route("/v1/admission", post(admission::admission))
        .route("/v1/referrers", get(referrers::referrers))
        .route("/v1/log/export", get(log::export))
        .route("/v1/log/proof/inclusion", get(log::inclusion_proof))
        .route("/v1/log/proof/consistency", get(log::consistency_proof))
        .route("/v1/tokens", get(tokens::list).post(tokens::create))
        .route("/v1/tokens/{id}", axum::routing::delete(tokens::revoke))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(metrics::render))
        .route_layer(axum::middleware::from_fn(metrics::track))
        .fallback(error::no_such_route)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, limits.request_timeout))
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(state)
}

/// The span every log line of a request carries: method, path (no query) and the request id, taken from
/// `X-Request-Id` or made here, and echoed in the response.
fn request_span(request: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    let id = request.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or_default();
    // The id comes from the client: only a bounded, printable form of it reaches the logs.
    let id: String = id.chars().filter(char::is_ascii_graphic).take(128).collect();
    tracing::info_span!("request", method = %request.method(), path = %request.uri().path(), request_id = %id)
}
