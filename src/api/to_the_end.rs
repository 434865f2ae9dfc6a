//! Requests that are carried out whole once received: `POST /v1/sign` and `POST /v1/attest` are read to the
//! end of their body, then run on a task of their own, so a client hanging up does not drop them between
//! their registry writes and their register entry (which reconciliation would log only minutes later).
//! Owns: which requests, and how they are detached. Must not touch: what the handlers do.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};

use super::error::ApiError;

/// The routes that write to registries.
const CARRIED_OUT_WHOLE: [&str; 2] = ["/v1/sign", "/v1/attest"];

/// Reads a sign or attest request's body (of a declared length within `max_body_bytes`), then runs the
/// request (extractors and handler) to its end on its own task; any other request runs as it comes, and
/// so does one of no or too large a declared length, for the extractors to refuse as usual. Reading the body
/// first matters: once the client is gone, a body not yet read can no longer be. A panic goes on unwinding;
/// a task cancelled by the runtime's shutdown is a 503.
pub(super) async fn layer(max_body_bytes: usize, request: Request, next: Next) -> Response {
    let declared = request.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    let whole = request.method() == Method::POST && CARRIED_OUT_WHOLE.contains(&request.uri().path());
    if !whole || declared.is_none_or(|length| length > max_body_bytes) {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, max_body_bytes).await {
        Ok(body) => body,
        Err(error) => return ApiError::unreadable_body(&error).into_response(),
    };
    match tokio::spawn(next.run(Request::from_parts(parts, Body::from(body)))).await {
        Ok(response) => response,
        Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
        Err(_) => ApiError::shutting_down().into_response(),
    }
}
