//! `POST /v1/policies/dry-run` (admin): a candidate policy folder, sent as its files' texts, decided over every
//! image pulled or decided in a period, without writing anything (docs/API.md).
//!
//! Owns: bounding the body (how many files, each one's size, their total, their names) and the period.
//! Must not touch: parsing policies (`policy`), choosing images or deciding them (`service`).

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use serde::Deserialize;

use super::auth::{Administering, Authorized};
use super::extract::AppJson;
use super::{ApiError, AppState};
use crate::policy::PolicySet;
use crate::service::{DEFAULT_MAX_IMAGES, DEFAULT_SINCE, DryRun, DryRunReport, MAX_IMAGES, period_start_ms};

/// The most files a candidate folder may hold, each one's size, and their total.
const MAX_FILES: usize = 64;
const MAX_FILE_BYTES: usize = 256 * 1024;
const MAX_TOTAL_BYTES: usize = 768 * 1024;
const MAX_NAME: usize = 128;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct DryRunBody {
    /// The candidate folder: file name (`*.yaml` or `*.yml`, no `/`) to the file's text; at most 64 files of
    /// 256 KiB each, 768 KiB in all.
    files: BTreeMap<String, String>,
    /// The period's start: RFC 3339, or a span back from now (`90m`, `24h`, `7d`); default `7d`.
    since: Option<String>,
    /// The most distinct images to decide, 1 to 2000 (default 200): pulled ones, then decided ones, newest first.
    max_images: Option<usize>,
}

/// What the candidate policies would change over the images of the period; nothing is written.
#[utoipa::path(
    post,
    path = "/v1/policies/dry-run",
    tag = "administration",
    security(("admin" = [])),
    request_body = DryRunBody,
    responses((status = 200, description = "Per repository, the decisions that would change", body = DryRunReport))
)]
pub(super) async fn dry_run(
    _caller: Authorized<Administering>,
    State(state): State<AppState>,
    AppJson(body): AppJson<DryRunBody>,
) -> Result<Json<DryRunReport>, ApiError> {
    check_files(&body.files)?;
    let since = body.since.as_deref().unwrap_or(DEFAULT_SINCE);
    let now_ms = i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
    let since_ms = (since.len() <= 64)
        .then(|| period_start_ms(since, now_ms))
        .flatten()
        .ok_or_else(|| ApiError::invalid_dry_run("since: expected RFC 3339 or a span such as 90m, 24h, 7d"))?;
    let max_images = match body.max_images {
        None => DEFAULT_MAX_IMAGES,
        Some(n) if (1..=MAX_IMAGES).contains(&n) => n,
        Some(_) => return Err(ApiError::invalid_dry_run(format!("max_images: expected 1 to {MAX_IMAGES}"))),
    };
    let files: Vec<(String, String)> = body.files.into_iter().collect();
    let candidate = PolicySet::from_texts(&files)?;
    state.service.check_candidate(&candidate).await?;
    let report = state.service.policy_dry_run(DryRun { candidate, since_ms, max_images }).await?;
    Ok(Json(report))
}

fn check_files(files: &BTreeMap<String, String>) -> Result<(), ApiError> {
    if files.len() > MAX_FILES {
        return Err(ApiError::invalid_dry_run(format!("files: {} files; at most {MAX_FILES}", files.len())));
    }
    let mut total = 0usize;
    for (name, text) in files {
        if !valid_name(name) {
            return Err(ApiError::invalid_dry_run(format!(
                "files: a name must be 1 to {MAX_NAME} letters, digits, '.', '_' or '-' ending .yaml or .yml"
            )));
        }
        if text.len() > MAX_FILE_BYTES {
            return Err(ApiError::invalid_dry_run(format!(
                "files: {name} is {} bytes; at most {MAX_FILE_BYTES}",
                text.len()
            )));
        }
        total += text.len();
    }
    if total > MAX_TOTAL_BYTES {
        return Err(ApiError::invalid_dry_run(format!("files: {total} bytes in all; at most {MAX_TOTAL_BYTES}")));
    }
    Ok(())
}

fn valid_name(name: &str) -> bool {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    (1..=MAX_NAME).contains(&name.len())
        && name.chars().all(allowed)
        && !name.starts_with('.')
        && (name.ends_with(".yaml") || name.ends_with(".yml"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_plain_yaml_names() {
        for good in ["a.yaml", "10-shop.yml", "x_y.yaml"] {
            assert!(valid_name(good), "{good}");
        }
        for bad in ["", ".yaml", "../a.yaml", "a/b.yaml", "a.json", "a b.yaml", &format!("{}.yaml", "a".repeat(130))] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn too_many_or_too_large_files_are_refused() {
        let many: BTreeMap<_, _> = (0..=MAX_FILES).map(|i| (format!("{i}.yaml"), String::new())).collect();
        assert!(check_files(&many).is_err());
        let large = BTreeMap::from([("a.yaml".to_owned(), "x".repeat(MAX_FILE_BYTES + 1))]);
        assert!(check_files(&large).is_err());
        let total: BTreeMap<_, _> = (0..4).map(|i| (format!("{i}.yaml"), "x".repeat(MAX_FILE_BYTES))).collect();
        assert!(check_files(&total).is_err());
    }
}
