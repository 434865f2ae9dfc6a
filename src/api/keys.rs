//! `GET /v1/keys`, `GET /v1/keys/{id}/public.pem`, and `POST /v1/keys/certificates` (admin: a `[ca]`
//! renewal pass now).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::{Administering, Authorized, Public};
use super::{ApiError, AppState};
use crate::keys::KeyRef;

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct KeyList {
    pub keys: Vec<KeyEntry>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct KeyEntry {
    pub id: String,
    /// `ecdsa-p256-sha256` or `ed25519`.
    #[schema(value_type = String)]
    pub algorithm: &'static str,
    /// `file`, `pkcs11` or `vault`.
    #[schema(value_type = String)]
    pub backend: &'static str,
    pub version: u32,
    pub public_key_pem: String,
    /// The version's X.509 certificate chain as PEM, leaf first and ending with the root (add the root
    /// to a notation trust store), when it has one: `[[keys]] certificate_chain` or issued by `[ca]`. For
    /// the `[ca]` key, the CA's own chain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_chain_pem: Option<String>,
}

/// Every version of every key, so signatures made before a rotation keep verifying.
#[utoipa::path(
    get,
    path = "/v1/keys",
    tag = "keys",
    responses((status = 200, description = "Every version of every configured key", body = KeyList))
)]
pub(super) async fn list(_public: Public, State(state): State<AppState>) -> Result<Json<KeyList>, ApiError> {
    let mut keys = Vec::new();
    for (id, signer) in state.service.keys().iter() {
        for version in signer.versions().await? {
            keys.push(KeyEntry {
                id: id.clone(),
                algorithm: version.public_key.algorithm.as_str(),
                backend: signer.backend(),
                version: version.version,
                public_key_pem: version.public_key.to_pem(),
                certificate_chain_pem: state.service.keys().certificate_chain(id, version.version).map(|c| c.to_pem()),
            });
        }
    }
    Ok(Json(KeyList { keys }))
}

/// The PEM public key of `id` (latest version) or `id@N`.
#[utoipa::path(
    get,
    path = "/v1/keys/{id}/public.pem",
    tag = "keys",
    params(("id" = String, Path, description = "A key id (its latest version) or `id@version`")),
    responses((status = 200, description = "The SubjectPublicKeyInfo PEM", body = String, content_type = "application/x-pem-file"))
)]
pub(super) async fn public_pem(
    _public: Public,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let reference = KeyRef::parse(&id)?;
    let version = state.service.keys().public_key(&reference).await?;
    Ok(([(header::CONTENT_TYPE, "application/x-pem-file")], version.public_key.to_pem()))
}

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct CertificatePass {
    /// Keys (`id@version`) issued a new certificate now.
    pub issued: Vec<String>,
    /// Keys whose certificate has more than a third of its validity left, kept.
    pub kept: Vec<String>,
    /// Keys that got none, with why.
    pub skipped: Vec<SkippedKey>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct SkippedKey {
    pub key: String,
    pub reason: String,
}

/// Runs a `[ca]` pass now: every ECDSA key without a configured chain gets a certificate if it has none
/// or less than a third of its validity is left.
#[utoipa::path(
    post,
    path = "/v1/keys/certificates",
    tag = "administration",
    security(("admin" = [])),
    responses((status = 200, description = "What the pass issued, kept and skipped", body = CertificatePass))
)]
pub(super) async fn renew_certificates(
    _caller: Authorized<Administering>,
    State(state): State<AppState>,
) -> Result<Json<CertificatePass>, ApiError> {
    let outcome = state.service.renew_key_certificates(time::OffsetDateTime::now_utc()).await?;
    let skipped = outcome.skipped.into_iter().map(|(key, reason)| SkippedKey { key, reason }).collect();
    Ok(Json(CertificatePass { issued: outcome.issued, kept: outcome.kept, skipped }))
}
