//! `POST /v1/attest`.

use std::net::SocketAddr;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::sign::{LogLocation, created_and_checkpoint};
use super::{ApiError, AppState};
use crate::service::{AttestOutcome, AttestRequest};

#[derive(Debug, Deserialize)]
pub struct AttestBody {
    pub image: String,
    pub key: String,
    pub predicate_type: String,
    pub predicate: Value,
}

#[derive(Debug, Serialize)]
pub struct AttestResponse {
    pub image: String,
    pub digest: String,
    pub key: String,
    pub key_version: u32,
    pub predicate_type: String,
    pub envelope_digest: String,
    pub attestation: AttestationLocation,
    pub log: Option<LogLocation>,
}

#[derive(Debug, Serialize)]
pub struct AttestationLocation {
    pub tag: String,
    pub manifest_digest: String,
    pub created: bool,
}

impl AttestResponse {
    fn new(o: AttestOutcome, checkpoint: Option<String>) -> Self {
        Self {
            image: o.image.to_string(),
            digest: o.digest.to_string(),
            key: o.key_id,
            key_version: o.key_version,
            predicate_type: o.predicate_type,
            envelope_digest: o.envelope_digest.to_string(),
            attestation: AttestationLocation {
                tag: o.tag,
                manifest_digest: o.manifest_digest.to_string(),
                created: o.created,
            },
            log: o.log.map(|p| LogLocation::new(p, checkpoint)),
        }
    }
}

/// Attests the image; 201 when an attestation was written, 200 when the same envelope was already there.
pub async fn attest(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: Result<Json<AttestBody>, JsonRejection>,
) -> Result<(StatusCode, Json<AttestResponse>), ApiError> {
    let Json(body) = body?;
    let outcome = state
        .service
        .attest(AttestRequest {
            image: body.image,
            key: body.key,
            predicate_type: body.predicate_type,
            predicate: body.predicate,
            actor: "anonymous".into(),
            source_addr: Some(peer.to_string()),
        })
        .await?;
    let (status, checkpoint) = created_and_checkpoint(&state, outcome.created, outcome.log).await;
    Ok((status, Json(AttestResponse::new(outcome, checkpoint))))
}
