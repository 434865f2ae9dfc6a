//! `GET /metrics` (Prometheus/OpenMetrics text) and the middleware that counts and times every request
//! by its route template.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::auth::Public;
use crate::metrics::{HttpLabels, RouteLabels, metrics};

#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses((
        status = 200,
        description = "Prometheus text exposition format, or OpenMetrics when the Accept header asks for it",
        content((String = "text/plain"), (String = "application/openmetrics-text"))
    ))
)]
/// OpenMetrics when the scraper asks for it (`Accept: application/openmetrics-text`), else Prometheus text.
pub(super) async fn render(_public: Public, State(state): State<AppState>, headers: HeaderMap) -> impl IntoResponse {
    if let Ok(size) = state.service.register_size().await {
        metrics().register_size.set(size as i64);
    }
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if accept.contains("application/openmetrics-text") {
        let content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
        return ([(header::CONTENT_TYPE, content_type)], metrics().render_openmetrics());
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], metrics().render_prometheus())
}

/// Counts and times the request under its route template (never the raw path: no unbounded labels).
pub(super) async fn track(request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", MatchedPath::as_str).to_owned();
    let method = request.method().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    let m = metrics();
    m.http_seconds.get_or_create(&RouteLabels { route: route.clone() }).observe(started.elapsed().as_secs_f64());
    m.http_requests.get_or_create(&HttpLabels { method, route, status: response.status().as_u16() }).inc();
    response
}
