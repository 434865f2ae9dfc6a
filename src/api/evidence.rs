//! `GET /v1/evidence`: the evidence pack of a period, a zip archive (docs/FORMATS.md §23).
//!
//! Owns: the route. Must not touch: what the pack holds (`service::evidence`, `register::evidence`).

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt as _;
use serde::Deserialize;
use utoipa::IntoParams;

use super::auth::{Auditing, Authorized};
use super::extract::AppQuery;
use super::log::rfc3339;
use super::{ApiError, AppState};
use crate::service::ServiceError;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct EvidenceQuery {
    /// RFC 3339 start of the period (inclusive); the log's beginning when omitted.
    #[param(format = DateTime)]
    from: Option<String>,
    /// RFC 3339 end of the period (exclusive); now when omitted.
    #[param(format = DateTime)]
    to: Option<String>,
    /// An earlier tree size the auditor holds a checkpoint for: the pack then proves consistency from it.
    since: Option<u64>,
}

/// Archive chunks (about 1 MiB each) buffered between the pack's writer and the connection.
const CHUNKS_IN_FLIGHT: usize = 4;

#[utoipa::path(
    get,
    path = "/v1/evidence",
    tag = "register",
    security(("auditor" = []), ("admin" = [])),
    params(EvidenceQuery),
    responses((
        status = 200,
        description = "The evidence pack of the period: a zip archive (docs/FORMATS.md §23)",
        content((String = "application/zip"))
    ))
)]
/// Streams the pack as it is written, page by page; a problem found before its first bytes (a bad `since`)
/// is an error answer, one after them breaks the download off.
pub(super) async fn evidence(
    _caller: Authorized<Auditing>,
    State(state): State<AppState>,
    AppQuery(EvidenceQuery { from, to, since }): AppQuery<EvidenceQuery>,
) -> Result<Response, ApiError> {
    let period = crate::service::Period { from: rfc3339("from", from)?, to: rfc3339("to", to)? };
    let (sender, mut receiver) = tokio::sync::mpsc::channel(CHUNKS_IN_FLIGHT);
    let service = state.service.clone();
    let mut writing = tokio::spawn(async move { service.stream_evidence(period, since, &sender).await });
    let Some(first) = receiver.recv().await else {
        let outcome = (&mut writing).await.map_err(|e| ServiceError::Evidence(e.to_string()))?;
        outcome?;
        return Err(ServiceError::Evidence("the pack was written empty".into()).into());
    };
    let rest = futures_util::stream::unfold((receiver, Some(writing)), |(mut receiver, writing)| async move {
        if let Some(chunk) = receiver.recv().await {
            return Some((Ok(Bytes::from(chunk)), (receiver, writing)));
        }
        let failed = match writing?.await {
            Ok(Ok(_)) => return None,
            Ok(Err(e)) => e.to_string(),
            Err(e) => e.to_string(),
        };
        tracing::error!(error = %failed, "evidence pack aborted");
        Some((Err(std::io::Error::other(failed)), (receiver, None)))
    });
    let first = futures_util::stream::once(std::future::ready(Ok::<_, std::io::Error>(Bytes::from(first))));
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static("application/zip")),
        (header::CONTENT_DISPOSITION, HeaderValue::from_static("attachment; filename=\"evidence.zip\"")),
    ];
    Ok((headers, Body::from_stream(first.chain(rest))).into_response())
}
