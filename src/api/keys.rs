//! `GET /v1/keys` and `GET /v1/keys/{id}/public.pem`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::Public;
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
