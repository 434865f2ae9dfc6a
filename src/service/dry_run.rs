//! Policy dry-run: every image pulled (`registry-pull` of a manifest) or decided (`verify`, admission) in a
//! period, read from the register through its search index, decided under a candidate policy set and under
//! the policies in force, with the same evidence gathering and engine as `POST /v1/verify`, and compared.
//!
//! Writes nothing: no register entry, no decision-cache entry, nothing to a registry (decisions go through
//! `verify::verify_image`, never `Service::verify` or `record_decision`). Bounded: at most `max_images`
//! distinct images, [`MAX_SCANNED`] register entries per kind, [`CONCURRENCY`] decisions at a time.
//!
//! Must not touch: HTTP, how a policy file is parsed (`policy`), how a decision is reached (`verify.rs`).

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use futures_util::StreamExt as _;
use serde::Serialize;
use serde_json::Value;

use super::verify::{Decision, verify_image};
use super::{Service, ServiceError};
use crate::policy::PolicySet;
use crate::store::SearchFilter;

/// The most distinct images one dry-run decides when the caller names no bound.
pub const DEFAULT_MAX_IMAGES: usize = 200;
/// The most a caller may name.
pub const MAX_IMAGES: usize = 2000;
/// The most register entries of one kind a dry-run reads; past it the answer says `truncated`.
const MAX_SCANNED: usize = 50_000;
/// Decisions under way at once (each reads the registry).
const CONCURRENCY: usize = 4;
/// The period when none is given: a week.
pub const DEFAULT_SINCE: &str = "7d";

const PAGE: u32 = 1000;
/// Manifest media types: a pull of anything else (a blob) names no image.
const MANIFEST_MEDIA_TYPES: [&str; 5] = [
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
];

/// What a dry-run looks at.
#[derive(Debug)]
pub struct DryRun {
    pub candidate: PolicySet,
    /// Entries whose time is at or after this (milliseconds since the epoch).
    pub since_ms: i64,
    pub max_images: usize,
}

/// The answer: per repository, what would change.
#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
pub struct DryRunReport {
    /// The period's start, RFC 3339.
    pub since: String,
    /// Distinct images decided (both ways) or found unreachable.
    pub images: usize,
    /// True when the period held more images than `max_images`, or more entries than a dry-run reads: the
    /// first found (pulled ones, then decided ones, each newest first) were decided, the rest were not.
    pub truncated: bool,
    pub max_images: usize,
    /// Images allowed now that the candidate would deny.
    pub newly_denied: usize,
    /// Images denied now that the candidate would allow.
    pub newly_allowed: usize,
    pub unchanged: usize,
    /// Images that could not be decided (registry unreachable, image gone).
    pub unevaluated: usize,
    /// By `registry/repository`, in name order.
    pub repositories: Vec<RepositoryChanges>,
}

#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
pub struct RepositoryChanges {
    /// `registry/repository`.
    pub repository: String,
    pub newly_denied: Vec<ChangedImage>,
    pub newly_allowed: Vec<ChangedImage>,
    pub unchanged_allowed: usize,
    pub unchanged_denied: usize,
    pub unevaluated: Vec<UnevaluatedImage>,
}

/// An image whose decision would change, with the candidate's view of it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ChangedImage {
    /// `registry/repository@digest`.
    pub image: String,
    /// The candidate policy that would govern it (`None`: the candidate's default).
    pub policy: Option<String>,
    /// The candidate's reasons (why it would be denied, or warnings).
    pub reasons: Vec<String>,
    /// The policy that governs it now.
    pub current_policy: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UnevaluatedImage {
    pub image: String,
    pub reason: String,
}

/// One image found in the register.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Seen {
    registry: String,
    repository: String,
    digest: String,
}

impl Seen {
    fn image(&self) -> String {
        format!("{}/{}@{}", self.registry, self.repository, self.digest)
    }
}

/// What a report keeps of a decision.
struct Verdict {
    allowed: bool,
    policy: Option<String>,
    reasons: Vec<String>,
}

impl From<Decision> for Verdict {
    fn from(d: Decision) -> Self {
        Self { allowed: d.allowed, policy: d.policy, reasons: d.reasons }
    }
}

enum Outcome {
    Decided { current: Verdict, candidate: Verdict },
    Failed(String),
}

impl Service {
    /// Refuses a candidate set as a reload would: a keyless authority naming an unconfigured trusted root, two
    /// authorities standing for one key, the checkpoint key as an authority.
    pub async fn check_candidate(&self, candidate: &PolicySet) -> Result<(), crate::policy::PolicyError> {
        candidate.check_trusted_roots(&self.trusted_root_names())?;
        super::check_policy_keys(&self.keys, candidate).await
    }

    /// Decides every image of the period under `run.candidate` and the policies in force; writes nothing.
    pub async fn policy_dry_run(&self, run: DryRun) -> Result<DryRunReport, ServiceError> {
        let max_images = run.max_images.clamp(1, MAX_IMAGES);
        let (found, scan_truncated) = self.images_since(run.since_ms, max_images).await?;
        let truncated = scan_truncated || found.len() > max_images;
        let images: Vec<Seen> = found.into_iter().take(max_images).collect();
        let (live, candidate) = (self.policies(), Arc::new(run.candidate));
        let outcomes: Vec<(Seen, Outcome)> = futures_util::stream::iter(images)
            .map(|seen| {
                let (live, candidate) = (live.clone(), candidate.clone());
                async move {
                    let outcome = self.decide_both(&seen, live, candidate).await;
                    (seen, outcome)
                }
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        Ok(report(outcomes, run.since_ms, truncated, max_images))
    }

    async fn decide_both(&self, seen: &Seen, live: Arc<PolicySet>, candidate: Arc<PolicySet>) -> Outcome {
        let image = seen.image();
        let sources = self.sources();
        let current = verify_image(&sources, &image, live).await;
        let proposed = verify_image(&sources, &image, candidate).await;
        match (current, proposed) {
            (Ok(current), Ok(candidate)) => Outcome::Decided { current: current.into(), candidate: candidate.into() },
            (Err(e), _) | (_, Err(e)) => Outcome::Failed(e.to_string()),
        }
    }

    /// The distinct images pulled, then decided, since `since_ms`, each kind newest first, at most `max_images + 1` (to
    /// know whether there were more); true when a kind had more entries than [`MAX_SCANNED`].
    async fn images_since(&self, since_ms: i64, max_images: usize) -> Result<(Vec<Seen>, bool), ServiceError> {
        let mut found: Vec<Seen> = Vec::new();
        let mut known = HashSet::new();
        let mut truncated = false;
        for kind in ["registry-pull", "verify"] {
            let filter =
                SearchFilter { kind: Some(kind.to_owned()), from_ms: Some(since_ms), ..SearchFilter::default() };
            let (mut before, mut scanned) = (None, 0usize);
            while found.len() <= max_images {
                let page = self.register_search(&filter, before, PAGE).await?;
                scanned += page.len();
                for entry in &page {
                    let Some(seen) = image_of(&entry.entry) else { continue };
                    if known.insert(seen.clone()) {
                        found.push(seen);
                    }
                }
                match page.last() {
                    Some(last) if page.len() == PAGE as usize && scanned < MAX_SCANNED => before = Some(last.index),
                    Some(_) if page.len() == PAGE as usize => {
                        truncated = true;
                        break;
                    }
                    _ => break,
                }
            }
        }
        Ok((found, truncated))
    }
}

/// The image an entry names: a `verify`, or a `registry-pull` of a manifest that is not one of the tag
/// scheme's signatures, attestations or SBOMs (`sha256-….sig`) nor one notarium itself read.
fn image_of(entry: &[u8]) -> Option<Seen> {
    let entry: Value = serde_json::from_slice(entry).ok()?;
    let subject = &entry["subject"];
    let text = |v: &Value| v.as_str().filter(|s| !s.is_empty()).map(str::to_owned);
    let seen = Seen {
        registry: text(&subject["registry"])?,
        repository: text(&subject["repository"])?,
        digest: text(&subject["digest"])?,
    };
    if entry["kind"] == "registry-pull" {
        let details = &entry["details"];
        let media_type = details["media_type"].as_str().unwrap_or_default();
        if !MANIFEST_MEDIA_TYPES.contains(&media_type) {
            return None;
        }
        if details["tag"].as_str().is_some_and(|t| t.starts_with("sha256-")) {
            return None;
        }
        if entry["actor"]["user_agent"].as_str().is_some_and(|a| a.starts_with("notarium/")) {
            return None;
        }
    }
    crate::formats::Digest::parse(&seen.digest).ok()?;
    Some(seen)
}

fn report(outcomes: Vec<(Seen, Outcome)>, since_ms: i64, truncated: bool, max_images: usize) -> DryRunReport {
    let mut by_repository: BTreeMap<String, RepositoryChanges> = BTreeMap::new();
    let mut report = DryRunReport { since: rfc3339(since_ms), truncated, max_images, ..DryRunReport::default() };
    report.images = outcomes.len();
    for (seen, outcome) in outcomes {
        let name = format!("{}/{}", seen.registry, seen.repository);
        let repository = by_repository
            .entry(name.clone())
            .or_insert_with(|| RepositoryChanges { repository: name, ..Default::default() });
        match outcome {
            Outcome::Failed(reason) => {
                report.unevaluated += 1;
                repository.unevaluated.push(UnevaluatedImage { image: seen.image(), reason });
            }
            Outcome::Decided { current, candidate } => {
                let changed = || ChangedImage {
                    image: seen.image(),
                    policy: candidate.policy.clone(),
                    reasons: candidate.reasons.clone(),
                    current_policy: current.policy.clone(),
                };
                match (current.allowed, candidate.allowed) {
                    (true, false) => {
                        report.newly_denied += 1;
                        repository.newly_denied.push(changed());
                    }
                    (false, true) => {
                        report.newly_allowed += 1;
                        repository.newly_allowed.push(changed());
                    }
                    (true, true) => {
                        report.unchanged += 1;
                        repository.unchanged_allowed += 1;
                    }
                    (false, false) => {
                        report.unchanged += 1;
                        repository.unchanged_denied += 1;
                    }
                }
            }
        }
    }
    for repository in by_repository.values_mut() {
        repository.newly_denied.sort_by(|a, b| a.image.cmp(&b.image));
        repository.newly_allowed.sort_by(|a, b| a.image.cmp(&b.image));
        repository.unevaluated.sort_by(|a, b| a.image.cmp(&b.image));
    }
    report.repositories = by_repository.into_values().collect();
    report
}

fn rfc3339(ms: i64) -> String {
    let nanos = i128::from(ms) * 1_000_000;
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

/// The start of the period `since` names, in milliseconds since the epoch: RFC 3339, or a span back from
/// `now_ms` (`90m`, `24h`, `7d`, at most 3650 days); `None` when it is neither.
pub fn period_start_ms(since: &str, now_ms: i64) -> Option<i64> {
    if let Some(ms) = crate::entry_fields::time_ms(since) {
        return Some(ms);
    }
    let split = since.len().checked_sub(1)?;
    let (number, unit) = since.split_at_checked(split)?;
    let count: i64 = number.parse().ok().filter(|n| *n > 0)?;
    let unit_ms: i64 = match unit {
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    let span = count.checked_mul(unit_ms).filter(|s| *s <= 3650 * 86_400_000)?;
    Some(now_ms - span)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pull(media_type: &str, tag: &str, agent: &str) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "kind": "registry-pull",
            "actor": {"name": "ci", "user_agent": agent},
            "subject": {"registry": "r.example", "repository": "shop/app", "digest": format!("sha256:{}", "a".repeat(64))},
            "details": {"media_type": media_type, "tag": tag},
        }))
        .unwrap()
    }

    #[test]
    fn only_pulls_of_image_manifests_by_others_name_images() {
        let manifest = "application/vnd.oci.image.manifest.v1+json";
        assert!(image_of(&pull(manifest, "v1", "containerd/2")).is_some());
        assert!(image_of(&pull("application/octet-stream", "", "containerd/2")).is_none());
        assert!(image_of(&pull(manifest, &format!("sha256-{}.sig", "a".repeat(64)), "cosign/2")).is_none());
        assert!(image_of(&pull(manifest, "", "notarium/0.1.0")).is_none());
    }

    #[test]
    fn since_takes_rfc3339_or_a_span_back_from_now() {
        let now = 1_000_000_000_000;
        assert_eq!(period_start_ms("7d", now), Some(now - 7 * 86_400_000));
        assert_eq!(period_start_ms("90m", now), Some(now - 90 * 60_000));
        assert_eq!(period_start_ms("2026-11-30T00:00:00Z", now), Some(1_795_996_800_000));
        for bad in ["", "d", "0d", "-1d", "7w", "99999999d", "yesterday"] {
            assert_eq!(period_start_ms(bad, now), None, "{bad}");
        }
    }
}
