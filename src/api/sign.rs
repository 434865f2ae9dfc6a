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
use super::{ApiError, AppState};
use crate::service::{LogPosition, SignOutcome, SignRequest};

#[derive(Debug, Deserialize, ToSchema)]
pub struct SignBody {
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
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SignResponse {
    pub image: String,
    pub digest: String,
    pub identity: String,
    pub key: String,
    pub key_version: u32,
    #[schema(value_type = String)]
    pub algorithm: &'static str,
    pub signature: SignatureLocation,
    pub record_id: Option<i64>,
    /// Where the sign entry sits in the register; `null` when nothing new was signed.
    pub log: Option<LogLocation>,
    /// With `"recursive": true` on an image index: one answer per platform manifest.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(no_recursion)]
    pub platforms: Vec<SignResponse>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LogLocation {
    pub index: u64,
    pub tree_size: u64,
    /// The signed checkpoint of `tree_size`, or `null` when no checkpoint key is configured.
    pub checkpoint: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SignatureLocation {
    pub tag: String,
    pub manifest_digest: String,
    pub created: bool,
}

impl SignResponse {
    /// The answer for `o` and its platforms, each entry with the signed checkpoint of its tree size.
    async fn new(state: &AppState, o: SignOutcome) -> Self {
        let checkpoint = checkpoint_of(state, o.log).await;
        let mut platforms = Vec::with_capacity(o.platforms.len());
        for platform in o.platforms {
            platforms.push(Box::pin(Self::new(state, platform)).await);
        }
        Self {
            image: o.image.to_string(),
            digest: o.digest.to_string(),
            identity: o.identity,
            key: o.key_id,
            key_version: o.key_version,
            algorithm: o.algorithm,
            signature: SignatureLocation {
                tag: o.signature_tag,
                manifest_digest: o.manifest_digest.to_string(),
                created: o.created,
            },
            record_id: o.record_id,
            log: o.log.map(|p| LogLocation::new(p, checkpoint)),
            platforms,
        }
    }

    fn created_anything(&self) -> bool {
        self.signature.created || self.platforms.iter().any(Self::created_anything)
    }
}

impl LogLocation {
    pub(super) fn new(position: LogPosition, checkpoint: Option<String>) -> Self {
        Self { index: position.index, tree_size: position.tree_size, checkpoint }
    }
}

/// The signed checkpoint of the tree size right after an entry (`None` without an entry or a log key).
pub(super) async fn checkpoint_of(state: &AppState, log: Option<LogPosition>) -> Option<String> {
    match log {
        Some(position) => state.service.checkpoint(Some(position.tree_size)).await.ok(),
        None => None,
    }
}

/// 201 when the request wrote something, 200 when everything was already there.
pub(super) fn created_or_ok(created: bool) -> StatusCode {
    if created { StatusCode::CREATED } else { StatusCode::OK }
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
pub async fn sign(
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
        })
        .await?;
    let response = SignResponse::new(&state, outcome).await;
    Ok((created_or_ok(response.created_anything()), Json(response)))
}
