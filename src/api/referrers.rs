//! `GET /v1/referrers?image=`: what is attached to an image's digest, by notarium and by other tools.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use utoipa::IntoParams;

use super::auth::{Authorized, Verifying};
use super::extract::AppQuery;
use super::{ApiError, AppState};
use crate::service::Attached;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct ReferrersQuery {
    /// `host/repo@sha256:…` or `host/repo:tag`.
    image: String,
}

#[utoipa::path(
    get,
    path = "/v1/referrers",
    tag = "verification",
    security(("verifier" = []), ("admin" = [])),
    params(ReferrersQuery),
    responses((status = 200, description = "What is attached to the image's digest", body = Attached))
)]
pub(super) async fn referrers(
    _caller: Authorized<Verifying>,
    State(state): State<AppState>,
    AppQuery(ReferrersQuery { image }): AppQuery<ReferrersQuery>,
) -> Result<Json<Attached>, ApiError> {
    Ok(Json(state.service.attached(&image).await?))
}
