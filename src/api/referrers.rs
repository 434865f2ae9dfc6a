//! `GET /v1/referrers?image=`: what is attached to an image's digest, by notarium and by other tools.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use serde::Deserialize;

use super::auth::{Authorized, Verifying};
use super::{ApiError, AppState};
use crate::service::Attached;

#[derive(Deserialize)]
pub struct ReferrersQuery {
    image: String,
}

pub async fn referrers(
    _caller: Authorized<Verifying>,
    State(state): State<AppState>,
    query: Result<Query<ReferrersQuery>, QueryRejection>,
) -> Result<Json<Attached>, ApiError> {
    let Query(ReferrersQuery { image }) = query?;
    Ok(Json(state.service.attached(&image).await?))
}
