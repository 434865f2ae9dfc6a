//! `POST /v1/attest`.

use std::net::SocketAddr;

use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::auth::{Authorized, Signing};
use super::extract::AppJson;
use super::sign::{LogLocation, checkpoint_of, created_or_ok};
use super::{ApiError, AppState};
use crate::service::{AttestOutcome, AttestRequest};

#[derive(Debug, Deserialize, ToSchema)]
pub struct AttestBody {
    /// `host/repo@sha256:…`, or `host/repo:tag` (resolved to its digest at the registry first).
    #[schema(example = "127.0.0.1:5000/demo/app:v1")]
    pub image: String,
    /// A key id (its latest version) or `id@version`.
    #[schema(example = "dev-ecdsa")]
    pub key: String,
    /// The in-toto predicate type: a URI such as `https://slsa.dev/provenance/v1`.
    #[schema(pattern = r"^\S*:\S*$", example = "https://cyclonedx.org/bom")]
    pub predicate_type: String,
    /// The predicate (a JSON object).
    #[schema(value_type = Object)]
    pub predicate: Value,
    #[serde(default)]
    pub recursive: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AttestResponse {
    pub image: String,
    pub digest: String,
    pub key: String,
    pub key_version: u32,
    pub predicate_type: String,
    pub envelope_digest: String,
    pub attestation: AttestationLocation,
    pub log: Option<LogLocation>,
    /// With `"recursive": true` on an image index: one answer per platform manifest.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(no_recursion)]
    pub platforms: Vec<AttestResponse>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AttestationLocation {
    pub tag: String,
    pub manifest_digest: String,
    pub created: bool,
}

impl AttestResponse {
    async fn new(state: &AppState, o: AttestOutcome) -> Self {
        let checkpoint = checkpoint_of(state, o.log).await;
        let mut platforms = Vec::with_capacity(o.platforms.len());
        for platform in o.platforms {
            platforms.push(Box::pin(Self::new(state, platform)).await);
        }
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
            platforms,
        }
    }

    fn created_anything(&self) -> bool {
        self.attestation.created || self.platforms.iter().any(Self::created_anything)
    }
}

/// Attests the image; 201 when an attestation was written, 200 when the same envelope was already there.
#[utoipa::path(
    post,
    path = "/v1/attest",
    tag = "signing",
    security(("signer" = [])),
    request_body = AttestBody,
    responses(
        (status = 201, description = "Attested: the envelope is in the registry and the register", body = AttestResponse),
        (status = 200, description = "The same envelope was already there", body = AttestResponse),
    )
)]
pub async fn attest(
    caller: Authorized<Signing>,
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    AppJson(body): AppJson<AttestBody>,
) -> Result<(StatusCode, Json<AttestResponse>), ApiError> {
    caller.may_sign(&state, &body.image, &body.key).await?;
    let outcome = state
        .service
        .attest(AttestRequest {
            image: body.image,
            key: body.key,
            predicate_type: body.predicate_type,
            predicate: body.predicate,
            actor: caller.actor().into(),
            source_addr: Some(peer.to_string()),
            recursive: body.recursive,
        })
        .await?;
    let response = AttestResponse::new(&state, outcome).await;
    Ok((created_or_ok(response.created_anything()), Json(response)))
}
