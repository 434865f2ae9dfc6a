//! The HTTP API (axum): one file per resource; `error.rs`, the only place that builds problems and picks
//! status codes; `extract.rs`, the body and query extractors whose rejections are those problems; and
//! `location.rs`, the register and tag locations the sign, attest and verify answers share.
//!
//! Owns: routes, request and response shapes (the contract in docs/API.md), body limits. Must not touch:
//! registries, keys or SQL directly; it calls `service` and renders what comes back.

mod admission;
mod attest;
mod auth;
mod error;
mod events;
mod evidence;
mod extract;
mod health;
mod key_compromise;
mod keys;
mod location;
mod log;
mod log_search;
mod metrics;
mod openapi;
mod policies;
mod referrers;
mod sign;
mod status;
mod to_the_end;
mod tokens;
mod ui;
mod verify;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use auth::{record_all_held_denials, record_held_denials};
pub use error::ApiError;
pub use log::EXPORT_COUNT_HEADER;

use crate::service::Service;

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    pub service: Arc<Service>,
    /// The shared secret registries present on `POST /v1/events/registry`; `None` turns the route off.
    pub registry_events_secret: Option<Arc<zeroize::Zeroizing<String>>>,
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

/// Every route, the only place one is added: `routes!` puts a handler in the router and its operation
/// (its `#[utoipa::path]`) in the OpenAPI document at once, so the two cannot disagree.
fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(sign::sign))
        .routes(routes!(attest::attest))
        .routes(routes!(verify::verify))
        .routes(routes!(admission::admission))
        .routes(routes!(admission::mutate))
        .routes(routes!(referrers::referrers))
        .routes(routes!(events::registry))
        .routes(routes!(keys::list))
        .routes(routes!(keys::public_pem))
        .routes(routes!(keys::renew_certificates))
        .routes(routes!(log::checkpoint))
        .routes(routes!(log::entries))
        .routes(routes!(log::inclusion_proof))
        .routes(routes!(log::consistency_proof))
        .routes(routes!(log::export))
        // C2SP tlog-tiles: `<N>` spans several path elements, so these take the rest of the path (`{*path}`).
        .routes(routes!(log::entry_bundle))
        .routes(routes!(log::hash_tile))
        .routes(routes!(tokens::list, tokens::create))
        .routes(routes!(tokens::revoke))
        .routes(routes!(log_search::search))
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(metrics::render))
        .routes(routes!(openapi::document))
        .routes(routes!(ui::index))
        .routes(routes!(ui::file))
        .routes(routes!(evidence::evidence))
        .routes(routes!(status::status))
        .routes(routes!(key_compromise::signed))
        .routes(routes!(key_compromise::revoke))
        .routes(routes!(policies::dry_run))
}

/// The OpenAPI 3.1 document of every route, as `GET /v1/openapi.json` serves it.
pub fn openapi() -> utoipa::openapi::OpenApi {
    openapi::add_problem_responses(routes().split_for_parts().1)
}

/// The whole API.
pub fn router(state: AppState, limits: Limits) -> Router {
    app(limits).with_state(state)
}

/// The routes with every layer and fallback, before the state is given.
fn app(limits: Limits) -> Router<AppState> {
    let (routes, _) = routes().split_for_parts();
    routes
        .route_layer(axum::middleware::from_fn(metrics::track))
        .route_layer(axum::middleware::from_fn(move |request, next| {
            to_the_end::layer(limits.max_body_bytes, request, next)
        }))
        .fallback(error::no_such_route)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, limits.request_timeout))
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
}

/// The span every log line of a request carries: method, path (no query) and the request id, taken from
/// `X-Request-Id` or made here, and echoed in the response.
fn request_span(request: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    let id = request.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or_default();
    // The id comes from the client: only a bounded, printable form of it reaches the logs.
    let id: String = id.chars().filter(char::is_ascii_graphic).take(128).collect();
    tracing::info_span!("request", method = %request.method(), path = %request.uri().path(), request_id = %id)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    type Operations = BTreeSet<(String, String)>;

    fn test_limits() -> Limits {
        Limits { max_body_bytes: 1024, request_timeout: std::time::Duration::from_secs(1) }
    }

    /// `(method, path)` of every operation the document describes.
    fn documented() -> Operations {
        let document = serde_json::to_value(openapi()).unwrap();
        let paths = document["paths"].as_object().unwrap();
        paths
            .iter()
            .flat_map(|(path, item)| item.as_object().unwrap().keys().map(|m| (m.to_uppercase(), path.clone())))
            .collect()
    }

    /// `(method, path)` of every route the router serves. axum has no API listing routes; its `Debug` output
    /// names each route's path (`RouteId(n): "/path"`) and methods (`allow_header: Bytes(b"GET,HEAD")`).
    fn routed(router: &Router<AppState>) -> Operations {
        let debug = format!("{router:?}");
        let (routes, rest) = debug.split_once("node: Node { paths: {").expect("axum's Router Debug names its paths");
        let paths = rest.split_once("\"} }").unwrap().0;
        let mut operations = Operations::new();
        for entry in paths.split("RouteId(").skip(1) {
            let (id, path) = entry.split_once("): \"").unwrap();
            let path = path.trim_end_matches(", ").trim_end_matches('"');
            let route = routes.split_once(&format!("RouteId({id}): MethodRouter(")).expect("each path has a route").1;
            let allowed = route.split_once("allow_header: Bytes(b\"").unwrap().1.split_once('"').unwrap().0;
            for method in allowed.split(',').filter(|m| *m != "HEAD") {
                operations.insert((method.to_owned(), path.to_owned()));
            }
        }
        operations
    }

    #[test]
    fn the_router_serves_exactly_the_documented_operations() {
        let routed = routed(&app(test_limits()));
        assert!(routed.contains(&("POST".into(), "/v1/sign".into())), "the router listing broke: {routed:?}");
        assert_eq!(routed, documented());
    }

    #[test]
    fn a_route_added_outside_routes_is_caught() {
        let extra = app(test_limits()).route("/v1/undocumented", axum::routing::get(|| async { "" }));
        assert_ne!(routed(&extra), documented());
    }
}
