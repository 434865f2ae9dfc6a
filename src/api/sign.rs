//! `POST /v1/sign`.

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
use crate::config::SignFormat;
use crate::service::{LogPosition, SignOutcome, SignRequest};

#[derive(Debug, Deserialize, ToSchema)]
pub(super) struct SignBody {
    /// `host/repo@sha256:…`, or `host/repo:tag` (resolved to its digest at the registry first).
    #[schema(example = "127.0.0.1:5000/demo/app:v1")]
    pub image: String,
    /// A key id (its latest version) or `id@version`.
    #[schema(example = "dev-ecdsa")]
    pub key: String,
    /// A JSON object of strings for the payload's `optional` section.
    #[serde(default)]
    #[schema(value_type = Option<std::collections::BTreeMap<String, String>>)]
    pub annotations: Option<Value>,
    /// Sign an image index and each of its platform manifests.
    #[serde(default)]
    pub recursive: bool,
    /// The signature formats to write: `cosign` (the `.sig` layer), `bundle` (Sigstore bundle referrer),
    /// `notation` (Notary Project JWS referrer). Absent: the registry's `[registries.formats]`, else every
    /// format the key can serve; one the key cannot serve is skipped with a note.
    #[serde(default)]
    pub formats: Option<Vec<SignFormat>>,
}

/// One artifact a sign wrote.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct ArtifactAnswer {
    pub format: SignFormat,
    pub manifest_digest: String,
    /// False when it was there already (this key had signed this digest before).
    pub created: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct SignResponse {
    pub image: String,
    pub digest: String,
    pub identity: String,
    pub key: String,
    pub key_version: u32,
    #[schema(value_type = String)]
    pub algorithm: &'static str,
    /// The `.sig` tag (`tag` empty when `cosign` was not written; `manifest_digest` then the first artifact's).
    pub signature: TagLocation,
    /// Every artifact written for this digest, one per format.
    pub artifacts: Vec<ArtifactAnswer>,
    /// Why a format was not written (an Ed25519 key or a key without a certificate chain cannot sign a
    /// Notary Project signature, a registry without referrers gets no referrer): not failures.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    pub record_id: Option<i64>,
    /// Where the sign entry sits in the register; `null` when nothing new was signed.
    pub log: Option<LogLocation>,
    /// With `"recursive": true` on an image index: one answer per platform manifest.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(no_recursion)]
    pub platforms: Vec<Self>,
}

impl Written for SignOutcome {
    type Response = SignResponse;

    fn parts(&mut self) -> (Option<LogPosition>, bool, Vec<Self>) {
        (self.log, self.created, std::mem::take(&mut self.platforms))
    }

    fn response(self, log: Option<LogLocation>, platforms: Vec<SignResponse>) -> SignResponse {
        SignResponse {
            image: self.image.to_string(),
            digest: self.digest.to_string(),
            identity: self.identity,
            key: self.key_id,
            key_version: self.key_version,
            algorithm: self.algorithm,
            signature: TagLocation {
                tag: self.signature_tag,
                manifest_digest: self.manifest_digest.to_string(),
                created: self.created,
            },
            artifacts: self
                .artifacts
                .into_iter()
                .map(|a| ArtifactAnswer {
                    format: a.format,
                    manifest_digest: a.manifest_digest.to_string(),
                    created: a.created,
                })
                .collect(),
            notes: self.notes,
            record_id: self.record_id,
            log,
            platforms,
        }
    }
}

/// Signs the image; 201 when a signature was written, 200 when this key had already signed it.
#[utoipa::path(
    post,
    path = "/v1/sign",
    tag = "signing",
    security(("signer" = [])),
    request_body = SignBody,
    responses(
        (status = 201, description = "Signed: the signature is in the registry and the register", body = SignResponse),
        (status = 200, description = "This key had already signed this digest for this identity", body = SignResponse),
    )
)]
pub(super) async fn sign(
    caller: Authorized<Signing>,
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    AppJson(body): AppJson<SignBody>,
) -> Result<(StatusCode, Json<SignResponse>), ApiError> {
    caller.may_sign(&state, &body.image, &body.key).await?;
    let outcome = state
        .service
        .sign(SignRequest {
            image: body.image,
            key: body.key,
            annotations: caller.annotations_with_identity(body.annotations)?,
            actor: caller.actor().into(),
            source_addr: Some(peer.to_string()),
            recursive: body.recursive,
            formats: body.formats,
        })
        .await?;
    Ok(written_answer(&state, outcome).await)
}
