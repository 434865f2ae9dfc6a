//! Where a sign, attest or verify put what it wrote: the register position (with the signed checkpoint of
//! its tree size) and the tag; and the one constructor of the sign and attest answers from their outcomes.
//!
//! Owns: the location shapes the sign, attest and verify answers share. Must not touch: the service.

use axum::Json;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use crate::service::LogPosition;

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct LogLocation {
    pub index: u64,
    pub tree_size: u64,
    /// The signed checkpoint of `tree_size`, or `null` when no checkpoint key is configured.
    pub checkpoint: Option<String>,
}

impl LogLocation {
    pub(super) fn new(position: LogPosition, checkpoint: Option<String>) -> Self {
        Self { index: position.index, tree_size: position.tree_size, checkpoint }
    }
}

/// Where the cosign tag scheme holds a signature or attestation, and whether this request wrote it.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct TagLocation {
    pub tag: String,
    pub manifest_digest: String,
    pub created: bool,
}

/// The signed checkpoint of the tree size right after an entry (`None` without an entry or a log key).
pub(super) async fn checkpoint_of(state: &AppState, log: Option<LogPosition>) -> Option<String> {
    match log {
        Some(position) => state.service.checkpoint(Some(position.tree_size)).await.ok(),
        None => None,
    }
}

/// A sign or attest outcome and the answer it becomes.
pub(super) trait Written: Sized {
    type Response;
    /// Where its entry landed, whether it wrote something, and (taken out) its platforms' outcomes.
    fn parts(&mut self) -> (Option<LogPosition>, bool, Vec<Self>);
    fn response(self, log: Option<LogLocation>, platforms: Vec<Self::Response>) -> Self::Response;
}

/// The answer for `outcome` and its platforms, each entry with the signed checkpoint of its tree size:
/// 201 when the request wrote something, 200 when everything was already there.
pub(super) async fn written_answer<O: Written>(state: &AppState, outcome: O) -> (StatusCode, Json<O::Response>) {
    let (response, created) = response_of(state, outcome).await;
    (if created { StatusCode::CREATED } else { StatusCode::OK }, Json(response))
}

/// The answer for `outcome` and whether it or any platform wrote something.
pub(super) async fn response_of<O: Written>(state: &AppState, mut outcome: O) -> (O::Response, bool) {
    let (position, mut created, outcomes) = outcome.parts();
    let checkpoint = checkpoint_of(state, position).await;
    let mut platforms = Vec::new();
    for platform in outcomes {
        let (response, platform_created) = Box::pin(response_of(state, platform)).await;
        created |= platform_created;
        platforms.push(response);
    }
    let log = position.map(|position| LogLocation::new(position, checkpoint));
    (outcome.response(log, platforms), created)
}
