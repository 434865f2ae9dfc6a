//! The register over HTTP: `GET /v1/log/checkpoint`, `/v1/log/entries`, `/v1/log/proof/inclusion`,
//! `/v1/log/proof/consistency` (docs/API.md).

use std::sync::Arc;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use futures_util::{StreamExt, stream};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::auth::{Auditing, Authorized, Public};
use super::extract::AppQuery;
use super::{ApiError, AppState};
use crate::formats::digest::hex_lower;
use crate::merkle::leaf_hash;
use crate::register::export::ExportFormat;

const MAX_ENTRIES: u64 = 1000;

fn hex_list(hashes: &[crate::merkle::Hash]) -> Vec<String> {
    hashes.iter().map(|h| hex_lower(h)).collect()
}

/// The latest signed checkpoint, signed once per tree size however often it is asked for, with the
/// cosignatures `[[log.witnesses]]` returned for that size appended (still one signed note).
#[utoipa::path(
    get,
    path = "/v1/log/checkpoint",
    tag = "register",
    responses((status = 200, description = "A C2SP signed note", body = String, content_type = "text/plain"))
)]
pub(super) async fn checkpoint(_public: Public, State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let note = state.service.cosigned_checkpoint(None).await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], note))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct ExportQuery {
    /// RFC 3339 start of the period (inclusive); the log's beginning when omitted.
    #[param(format = DateTime)]
    from: Option<String>,
    /// RFC 3339 end of the period (exclusive); now when omitted.
    #[param(format = DateTime)]
    to: Option<String>,
    #[serde(default)]
    #[param(inline)]
    format: ExportFormat,
    /// An earlier tree size the auditor holds a checkpoint for: the header then proves consistency from it.
    since: Option<u64>,
}

pub(super) fn rfc3339(name: &str, value: Option<String>) -> Result<Option<time::OffsetDateTime>, ApiError> {
    value
        .map(|v| {
            time::OffsetDateTime::parse(&v, &time::format_description::well_known::Rfc3339)
                .map_err(|e| ApiError::invalid_query(format!("{name}: {e}")))
        })
        .transpose()
}

#[utoipa::path(
    get,
    path = "/v1/log/export",
    tag = "register",
    security(("auditor" = []), ("admin" = [])),
    params(ExportQuery),
    responses((
        status = 200,
        description = "A header line with the signed checkpoint, then one entry per line with its inclusion proof (JSON Lines), or a CSV view",
        content((String = "application/x-ndjson"), (String = "text/csv")),
        headers(("x-notarium-export-count" = u64, description = "How many entries follow"))
    ))
)]
/// The entries of a period as JSON Lines with what an offline verifier needs (or as CSV), streamed page
/// by page; `X-Notarium-Export-Count` says how many entries follow.
pub(super) async fn export(
    _caller: Authorized<Auditing>,
    State(state): State<AppState>,
    AppQuery(ExportQuery { from, to, format, since }): AppQuery<ExportQuery>,
) -> Result<Response, ApiError> {
    let period = crate::service::Period { from: rfc3339("from", from)?, to: rfc3339("to", to)? };
    let plan = Arc::new(state.service.export_plan(period, format, since).await?);
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static(format.content_type())),
        (HeaderName::from_static(EXPORT_COUNT_HEADER), HeaderValue::from(plan.count())),
    ];
    let opening = stream::once(std::future::ready(Ok(Bytes::from(plan.opening.clone()))));
    let service = state.service.clone();
    let pages = stream::iter(plan.pages()).then(move |start| {
        let (service, plan) = (service.clone(), plan.clone());
        async move {
            let page = service.export_page(&plan, start).await;
            if let Err(e) = &page {
                tracing::error!(error = %e, start, "export aborted");
            }
            page.map(Bytes::from)
        }
    });
    Ok((headers, Body::from_stream(opening.chain(pages))).into_response())
}

/// The response header of `GET /v1/log/export` carrying the number of entries in the body.
pub const EXPORT_COUNT_HEADER: &str = "x-notarium-export-count";

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct Range {
    /// The first index.
    start: u64,
    /// One past the last index (at most `start` + 1000).
    end: u64,
}

#[derive(Serialize, ToSchema)]
pub(super) struct Entry {
    pub(super) index: u64,
    /// RFC 6962 leaf hash, hex.
    pub(super) leaf_hash: String,
    /// The JSON object whose RFC 8785 canonical bytes are the leaf.
    #[schema(value_type = Object)]
    pub(super) entry: Value,
}

#[derive(Serialize, ToSchema)]
pub(super) struct Entries {
    entries: Vec<Entry>,
}

/// Entries `[start, end)`, at most 1000 per request.
#[utoipa::path(
    get,
    path = "/v1/log/entries",
    tag = "register",
    security(("auditor" = []), ("admin" = [])),
    params(Range),
    responses((status = 200, description = "The entries of the range that the log holds", body = Entries))
)]
pub(super) async fn entries(
    _caller: Authorized<Auditing>,
    State(state): State<AppState>,
    AppQuery(Range { start, end }): AppQuery<Range>,
) -> Result<Json<Entries>, ApiError> {
    // Indices are int64 in the document and in the database: no log reaches past i64::MAX.
    if end < start || end - start > MAX_ENTRIES || end > i64::MAX as u64 {
        return Err(ApiError::invalid_range(MAX_ENTRIES));
    }
    let rows = state.service.register_entries(start, end).await?;
    let entries: Vec<Entry> = rows
        .into_iter()
        .map(|(index, bytes)| Entry {
            index,
            leaf_hash: hex_lower(&leaf_hash(&bytes)),
            entry: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        })
        .collect();
    Ok(Json(Entries { entries }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct InclusionQuery {
    index: u64,
    tree_size: u64,
}

/// An RFC 9162 inclusion proof.
#[derive(Serialize, ToSchema)]
pub(super) struct InclusionProof {
    index: u64,
    tree_size: u64,
    /// Hex hashes, in RFC 9162 order.
    hashes: Vec<String>,
}

#[utoipa::path(
    get,
    path = "/v1/log/proof/inclusion",
    tag = "register",
    security(("auditor" = []), ("admin" = [])),
    params(InclusionQuery),
    responses((status = 200, description = "The entry's inclusion proof in the tree of that size", body = InclusionProof))
)]
pub(super) async fn inclusion_proof(
    _caller: Authorized<Auditing>,
    State(state): State<AppState>,
    AppQuery(InclusionQuery { index, tree_size }): AppQuery<InclusionQuery>,
) -> Result<Json<InclusionProof>, ApiError> {
    let hashes = hex_list(&state.service.inclusion_proof(index, tree_size).await?);
    Ok(Json(InclusionProof { index, tree_size, hashes }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct ConsistencyQuery {
    first: u64,
    second: u64,
}

/// An RFC 9162 consistency proof.
#[derive(Serialize, ToSchema)]
pub(super) struct ConsistencyProof {
    first: u64,
    second: u64,
    /// Hex hashes, in RFC 9162 order.
    hashes: Vec<String>,
}

#[utoipa::path(
    get,
    path = "/v1/log/proof/consistency",
    tag = "register",
    security(("auditor" = []), ("admin" = [])),
    params(ConsistencyQuery),
    responses((status = 200, description = "The proof that the tree of size `second` extends the one of size `first`", body = ConsistencyProof))
)]
pub(super) async fn consistency_proof(
    _caller: Authorized<Auditing>,
    State(state): State<AppState>,
    AppQuery(ConsistencyQuery { first, second }): AppQuery<ConsistencyQuery>,
) -> Result<Json<ConsistencyProof>, ApiError> {
    let hashes = hex_list(&state.service.consistency_proof(first, second).await?);
    Ok(Json(ConsistencyProof { first, second, hashes }))
}
