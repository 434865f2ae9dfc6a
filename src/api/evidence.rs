//! `GET /v1/evidence`: the evidence pack of a period, a zip archive (docs/FORMATS.md §23).
//!
//! Owns: the route. Must not touch: what the pack holds (`service::evidence`, `register::evidence`).

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tokio::io::AsyncReadExt as _;
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

/// The bytes read from the pack's temporary file per chunk of the answer.
const CHUNK: usize = 256 * 1024;

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
/// Writes the pack to a temporary file (it is proved against one tree size, fixed first), then streams it.
pub(super) async fn evidence(
    _caller: Authorized<Auditing>,
    State(state): State<AppState>,
    AppQuery(EvidenceQuery { from, to, since }): AppQuery<EvidenceQuery>,
) -> Result<Response, ApiError> {
    let period = crate::service::Period { from: rfc3339("from", from)?, to: rfc3339("to", to)? };
    let unwritable = |e: std::io::Error| ServiceError::Evidence(e.to_string());
    let mut file = tempfile::tempfile().map_err(unwritable)?;
    state.service.write_evidence(period, since, &mut file).await?;
    std::io::Seek::rewind(&mut file).map_err(unwritable)?;
    let file = tokio::fs::File::from_std(file);
    let chunks = futures_util::stream::unfold(file, |mut file| async move {
        let mut buffer = vec![0; CHUNK];
        match file.read(&mut buffer).await {
            Ok(0) => None,
            Ok(n) => {
                buffer.truncate(n);
                Some((Ok::<_, std::io::Error>(Bytes::from(buffer)), file))
            }
            Err(e) => Some((Err(e), file)),
        }
    });
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static("application/zip")),
        (header::CONTENT_DISPOSITION, HeaderValue::from_static("attachment; filename=\"evidence.zip\"")),
    ];
    Ok((headers, Body::from_stream(chunks)).into_response())
}
