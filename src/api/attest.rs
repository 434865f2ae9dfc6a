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
use super::location::{LogLocation, TagLocation, Written, written_answer};
use super::{ApiError, AppState};
use crate::service::{AttestOutcome, AttestRequest, LogPosition};

#[derive(Debug, Deserialize, ToSchema)]
pub(super) struct AttestBody {
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
pub(super) struct AttestResponse {
    pub image: String,
    pub digest: String,
    pub key: String,
    pub key_version: u32,
    pub predicate_type: String,
    pub envelope_digest: String,
    pub attestation: TagLocation,
    pub log: Option<LogLocation>,
    /// With `"recursive": true` on an image index: one answer per platform manifest.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(no_recursion)]
    pub platforms: Vec<Self>,
}

impl Written for AttestOutcome {
    type Response = AttestResponse;

    fn parts(&mut self) -> (Option<LogPosition>, bool, Vec<Self>) {
        (self.log, self.created, std::mem::take(&mut self.platforms))
    }

    fn response(self, log: Option<LogLocation>, platforms: Vec<AttestResponse>) -> AttestResponse {
        AttestResponse {
            image: self.image.to_string(),
            digest: self.digest.to_string(),
            key: self.key_id,
            key_version: self.key_version,
            predicate_type: self.predicate_type,
            envelope_digest: self.envelope_digest.to_string(),
            attestation: TagLocation {
                tag: self.tag,
                manifest_digest: self.manifest_digest.to_string(),
                created: self.created,
            },
            log,
            platforms,
        }
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
pub(super) async fn attest(
    caller: Authorized<Signing>,
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    AppJson(body): AppJson<AttestBody>,
) -> Result<(StatusCode, Json<AttestResponse>), ApiError> {
    caller.may_sign(&state, &body.image, &body.key).await?;
    let request = AttestRequest {
        image: body.image,
        key: body.key,
        predicate_type: body.predicate_type,
        predicate: body.predicate,
        actor: caller.actor().into(),
        source_addr: Some(peer.to_string()),
        recursive: body.recursive,
    };
    let outcome = state.service.attest(request).await?;
    Ok(written_answer(&state, outcome).await)
}
