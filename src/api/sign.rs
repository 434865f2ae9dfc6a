//! `POST /v1/sign`.

use std::net::SocketAddr;

use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::auth::{Authorized, Signing};
use super::extract::AppJson;
use super::location::{LogLocation, TagLocation, Written, checkpoint_of, response_of, written_answer};
use super::{ApiError, AppState};
use crate::config::SignFormat;
use crate::service::{ImageSigned, LogPosition, SignOutcome, SignRequest};

#[derive(Debug, Deserialize, ToSchema)]
pub(super) struct SignBody {
    /// `host/repo@sha256:…`, or `host/repo:tag` (resolved to its digest at the registry first). Give
    /// either `image` or `images`.
    #[schema(example = "127.0.0.1:5000/demo/app:v1")]
    #[serde(default)]
    pub image: Option<String>,
    /// A batch: 1 to `[sign] max_batch` (default 64) images, each as `image`, signed with the same key,
    /// annotations, formats and `recursive`, with one register transaction and one checkpoint. The answer
    /// is a [`BatchSignResponse`]. The same image listed twice (once canonical) refuses the batch.
    #[serde(default)]
    pub images: Option<Vec<String>>,
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

/// One image's result in a batch: `status` is what a single sign of it would have answered, with its answer
/// in `outcome` (200, 201) or its problem in `problem`.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct BatchResult {
    /// Its position in `images`.
    pub index: usize,
    /// As the request named it.
    pub image: String,
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<SignResponse>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub problem: Option<ApiError>,
}

/// The answer to a batch: one result per image, in the request's order. Every entry the batch wrote is in
/// one tree, `tree_size`, signed by `checkpoint`.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct BatchSignResponse {
    /// Images signed (or already signed by this key).
    pub succeeded: usize,
    /// Images that failed; each has its `problem`.
    pub failed: usize,
    /// The tree size after the batch's entries; `null` when the batch wrote nothing new.
    pub tree_size: Option<u64>,
    /// The signed checkpoint of `tree_size`, the one every inclusion proof of the batch is checked against.
    pub checkpoint: Option<String>,
    pub results: Vec<BatchResult>,
}

/// The answer of `POST /v1/sign`: one image's (`image`), or a batch's (`images`).
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub(super) enum SignAnswer {
    One(Box<SignResponse>),
    Batch(BatchSignResponse),
}

/// Signs the image, or each image of `images`.
///
/// One image: 201 when a signature was written, 200 when this key had already signed it. A batch: 201 or
/// 200 likewise when every image succeeded, 207 when some failed (`failed` counts them), 502 when all did;
/// refused whole (4xx naming `images[i]`, nothing written) when a reference is malformed or listed twice,
/// the caller may not sign one of them, the egress rules refuse its registry, or it is an index without
/// `recursive`.
#[utoipa::path(
    post,
    path = "/v1/sign",
    tag = "signing",
    security(("signer" = [])),
    request_body = SignBody,
    responses(
        (status = 201, description = "Signed: the signature is in the registry and the register (with `images`: every image, as a BatchSignResponse)", body = SignAnswer),
        (status = 200, description = "This key had already signed this digest for this identity (with `images`: every image)", body = SignAnswer),
        (status = 207, description = "A batch in which some images failed: `failed` counts them, each has its problem", body = BatchSignResponse),
        (status = 502, description = "A batch in which every image failed (each has its problem); or one image whose registry failed", body = BatchSignResponse),
        (status = 413, description = "`images` lists more than `[sign] max_batch` images, or they and their platforms make more than `[sign] max_batch_manifests` manifests"),
    )
)]
pub(super) async fn sign(
    caller: Authorized<Signing>,
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    AppJson(mut body): AppJson<SignBody>,
) -> Result<Response, ApiError> {
    let images = match (body.image.take(), body.images.take()) {
        (Some(image), None) => return sign_one(caller, state, peer, body, image).await,
        (None, Some(images)) if !images.is_empty() => images,
        (None, Some(_)) => return Err(ApiError::image_or_images("images is empty: list 1 image or more")),
        (Some(_), Some(_)) => return Err(ApiError::image_or_images("give image or images, not both")),
        (None, None) => return Err(ApiError::missing_field("missing field `image` (or `images`, a batch)")),
    };
    let limit = state.service.max_sign_batch();
    if images.len() > limit {
        let error = crate::service::ServiceError::BatchSize { count: images.len(), limit };
        return Err(error.into());
    }
    for (index, image) in images.iter().enumerate() {
        caller.may_sign(&state, image, &body.key).await.map_err(|e| e.at_batch_index(index, image))?;
    }
    let request = sign_request(&caller, peer, body, String::new())?;
    let results = match state.service.sign_batch(&request, &images).await {
        Ok(results) => results,
        Err(refused) => {
            let problem = ApiError::from(refused.error);
            return Err(match refused.index.and_then(|index| Some((index, images.get(index)?))) {
                Some((index, image)) => problem.at_batch_index(index, image),
                None => problem,
            });
        }
    };
    Ok(batch_answer(&state, &images, results).await)
}

async fn sign_one(
    caller: Authorized<Signing>,
    state: AppState,
    peer: SocketAddr,
    body: SignBody,
    image: String,
) -> Result<Response, ApiError> {
    caller.may_sign(&state, &image, &body.key).await?;
    let request = sign_request(&caller, peer, body, image)?;
    let outcome = state.service.sign(request).await?;
    let (status, Json(one)) = written_answer(&state, outcome).await;
    Ok((status, Json(SignAnswer::One(Box::new(one)))).into_response())
}

fn sign_request(
    caller: &Authorized<Signing>,
    peer: SocketAddr,
    body: SignBody,
    image: String,
) -> Result<SignRequest, ApiError> {
    Ok(SignRequest {
        image,
        key: body.key,
        annotations: caller.annotations_with_identity(body.annotations)?,
        actor: caller.actor().into(),
        source_addr: Some(peer.to_string()),
        recursive: body.recursive,
        formats: body.formats,
    })
}

/// The batch answer and its status: 201/200 when every image succeeded, 207 when some failed, 502 when all.
async fn batch_answer(state: &AppState, images: &[String], results: Vec<ImageSigned>) -> Response {
    let tree_size = results.iter().filter_map(|r| r.as_ref().ok()?.log.map(|l| l.tree_size)).max();
    let checkpoint = checkpoint_of(state, tree_size.map(|tree_size| LogPosition { index: 0, tree_size })).await;
    let (mut answers, mut failed, mut created) = (Vec::with_capacity(results.len()), 0, false);
    for (index, (result, image)) in results.into_iter().zip(images).enumerate() {
        let image = image.clone();
        let answer = match result {
            Ok(outcome) => {
                let (response, wrote) = response_of(state, outcome).await;
                created |= wrote;
                let status = if wrote { StatusCode::CREATED } else { StatusCode::OK };
                BatchResult { index, image, status: status.as_u16(), outcome: Some(response), problem: None }
            }
            Err(error) => {
                failed += 1;
                let problem = ApiError::from(error);
                BatchResult { index, image, status: problem.status, outcome: None, problem: Some(problem) }
            }
        };
        answers.push(answer);
    }
    let succeeded = answers.len() - failed;
    let status = match (succeeded, failed, created) {
        (0, _, _) => StatusCode::BAD_GATEWAY,
        (_, 1.., _) => StatusCode::MULTI_STATUS,
        (_, 0, true) => StatusCode::CREATED,
        (_, 0, false) => StatusCode::OK,
    };
    let body = SignAnswer::Batch(BatchSignResponse { succeeded, failed, tree_size, checkpoint, results: answers });
    (status, Json(body)).into_response()
}
