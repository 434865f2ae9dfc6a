//! `GET /v1/status?image=REF@DIGEST`: the sign-on-push status of one image, per `[[sign_on_push]]` rule a push
//! of it matched (`pending | signed | failed`, attempts, times; docs/FORMATS.md §26). Verifiers ask it as a
//! deploy gate asks "signed yet?"; admins too.
//!
//! Owns: the query and the answer's shape. Must not touch: the queue (`service`).

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use utoipa::IntoParams;

use super::auth::{Authorized, Verifying};
use super::extract::AppQuery;
use super::{ApiError, AppState};
use crate::formats::ImageReference;
use crate::service::ImageStatus;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct StatusQuery {
    /// The image by digest: `host/path@sha256:<hex>` (a tag before the digest is ignored).
    image: String,
}

/// One image's sign-on-push jobs, one per rule a push of it matched; `rules` is empty when none did.
#[utoipa::path(
    get,
    path = "/v1/status",
    tag = "signing",
    security(("verifier" = []), ("admin" = [])),
    params(StatusQuery),
    responses((status = 200, description = "Each matching rule's job for the image", body = ImageStatus))
)]
pub(super) async fn status(
    _caller: Authorized<Verifying>,
    State(state): State<AppState>,
    AppQuery(query): AppQuery<StatusQuery>,
) -> Result<Json<ImageStatus>, ApiError> {
    let image = ImageReference::parse(&query.image).map_err(crate::service::ServiceError::from)?;
    if image.digest.is_none() {
        return Err(ApiError::invalid_query("image: name the image by digest (REF@sha256:…)"));
    }
    Ok(Json(state.service.sign_status(&image).await?))
}
