//! Sign-on-push (docs/FORMATS.md §26): a registry push that a `[[sign_on_push]]` rule matches becomes a job in
//! the database queue before the delivery is answered; workers claim jobs under a lease and sign through
//! [`Service::sign`] (so each sign is logged, written in every format and deduplicated), retrying with
//! exponential backoff up to `[sign_queue] max_attempts`; `GET /v1/status` reads the jobs back.
//!
//! Owns: which push events become jobs, running one job, the status answer. Must not touch: SQL (`store`),
//! the sign itself (`sign.rs`), HTTP.

use std::time::Duration;

use super::{Service, ServiceError, SignRequest, repository_of};
use crate::config::{SignOnPushRule, SignQueueConfig};
use crate::formats::dsse::{Envelope, IN_TOTO_PAYLOAD_TYPE};
use crate::formats::in_toto::Statement;
use crate::formats::{Digest, ImageReference};
use crate::register::event::RegistryEvent;
use crate::store::{JobSettled, NewSignJob, SignJob};

/// The rules, the queue's settings and the bell that wakes idle workers when a job is enqueued.
#[derive(Default)]
pub(super) struct PushSigning {
    rules: Vec<SignOnPushRule>,
    queue: SignQueueConfig,
    wake: tokio::sync::Notify,
}

/// The manifest media types a push of which can be signed; other pushes (blobs) never match.
const MANIFEST_TYPES: [&str; 4] = [
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

/// One rule's job for an image, as `GET /v1/status` answers it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct RuleStatus {
    pub rule: String,
    /// `pending` (queued, waiting for an attestation, backing off or running), `signed` or `failed`.
    pub state: &'static str,
    /// The tag whose push queued the job (the signature's identity names it).
    pub tag: String,
    pub key: String,
    pub attempts: i64,
    /// Why the last attempt failed, or what a pending job waits for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// RFC 3339 UTC: when the push queued it, when it last changed, and (pending) its next attempt.
    pub queued_at: String,
    pub updated_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<String>,
    /// The register index of the sign entry, once signed (absent when the signature was already there).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_index: Option<i64>,
}

/// The answer of `GET /v1/status`.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ImageStatus {
    pub image: String,
    pub rules: Vec<RuleStatus>,
}

impl Service {
    /// Turns on sign-on-push with `rules`, run by workers under `queue`.
    pub fn with_sign_on_push(self, rules: Vec<SignOnPushRule>, queue: SignQueueConfig) -> Self {
        Self { push_signing: PushSigning { rules, queue, wake: Default::default() }, ..self }
    }

    /// The queue's settings (`notarium serve` starts `workers` of [`work_sign_queue`](Self::work_sign_queue)).
    pub fn sign_queue_settings(&self) -> &SignQueueConfig {
        &self.push_signing.queue
    }

    /// The jobs `events` call for, made durable (one per repository, digest and rule; a repeat adds nothing).
    pub(super) async fn enqueue_pushes(&self, events: &[&RegistryEvent]) -> Result<usize, ServiceError> {
        let jobs: Vec<NewSignJob> = events.iter().flat_map(|event| self.jobs_for(event)).collect();
        if jobs.is_empty() {
            return Ok(0);
        }
        let new = self.store.enqueue_sign_jobs(&jobs, now_ms()).await?;
        if new > 0 {
            self.push_signing.wake.notify_waiters();
        }
        Ok(new)
    }

    /// The jobs one event asks for: a push of a manifest under a tag that is not one of the tags signatures
    /// live under, to a repository and tag a rule matches.
    fn jobs_for(&self, event: &RegistryEvent) -> Vec<NewSignJob> {
        if self.push_signing.rules.is_empty() || event.action != "push" {
            return Vec::new();
        }
        let Some(image) = pushed_image(event) else { return Vec::new() };
        let (Some(tag), Some(digest)) = (image.tag.clone(), image.digest.clone()) else { return Vec::new() };
        let repository = image.repository_name();
        self.push_signing
            .rules
            .iter()
            .filter(|rule| rule.matches(&repository, &tag))
            .map(|rule| NewSignJob {
                rule: rule.name.clone(),
                registry: image.registry.clone(),
                repository: image.repository.clone(),
                digest: digest.to_string(),
                tag: tag.clone(),
                key_ref: rule.key.clone(),
            })
            .collect()
    }

    /// Frees the claims a previous run of this process left (SQLite: one process per database).
    pub async fn release_stale_sign_jobs(&self) -> Result<u64, ServiceError> {
        Ok(self.store.release_sign_jobs().await?)
    }

    /// One worker: claims due jobs and runs them, forever; idle, it waits for a push or a second.
    pub async fn work_sign_queue(&self, owner: String) {
        loop {
            match self.run_one_sign_job(&owner).await {
                Ok(true) => continue,
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %crate::error_chain::root_cause(&e), "sign queue: claim failed"),
            }
            let _ = tokio::time::timeout(Duration::from_secs(1), self.push_signing.wake.notified()).await;
        }
    }

    /// Claims and runs one due job; false when none was due.
    pub async fn run_one_sign_job(&self, owner: &str) -> Result<bool, ServiceError> {
        let queue = &self.push_signing.queue;
        let now = now_ms();
        let lease_until = now + (queue.lease_secs * 1000) as i64;
        let Some(job) = self.store.claim_sign_job(owner, now, lease_until).await? else { return Ok(false) };
        let settled = self.settle(&job).await;
        if !self.store.settle_sign_job(job.id, owner, &settled, now_ms()).await? {
            tracing::warn!(job = job.id, "sign queue: the lease ran out before the job settled");
        }
        Ok(true)
    }

    /// Runs `job` and says how it ends this round.
    async fn settle(&self, job: &SignJob) -> JobSettled {
        let queue = &self.push_signing.queue;
        let backoff = |attempts: i64| {
            let doublings = u32::try_from(attempts.saturating_sub(1).clamp(0, 20)).unwrap_or(20);
            let delay = queue.backoff_secs.saturating_mul(1 << doublings).min(queue.max_backoff_secs);
            now_ms() + (delay * 1000) as i64
        };
        match self.run_job(job).await {
            Ok(Ran::Signed(log_index)) => {
                tracing::info!(job = job.id, rule = %job.job.rule, digest = %job.job.digest, "sign-on-push: signed");
                JobSettled::Signed { log_index }
            }
            Ok(Ran::Waiting(reason)) => {
                JobSettled::Retry { not_before_ms: wait_until(queue, job), reason, counts: false }
            }
            Ok(Ran::RuleGone) => {
                JobSettled::Failed { reason: format!("rule {:?} is no longer configured", job.job.rule) }
            }
            Err(e) => {
                let reason = crate::error_chain::root_cause(&e);
                tracing::warn!(job = job.id, attempts = job.attempts, %reason, "sign-on-push attempt failed");
                match job.attempts >= i64::from(queue.max_attempts) {
                    true => JobSettled::Failed { reason },
                    false => JobSettled::Retry { not_before_ms: backoff(job.attempts), reason, counts: true },
                }
            }
        }
    }

    async fn run_job(&self, job: &SignJob) -> Result<Ran, ServiceError> {
        let j = &job.job;
        let reference = format!("{}/{}:{}@{}", j.registry, j.repository, j.tag, j.digest);
        let image = ImageReference::parse(&reference)?;
        let Some(rule) = self.push_signing.rules.iter().find(|r| r.name == j.rule) else { return Ok(Ran::RuleGone) };
        if let Some(missing) = self.missing_attestations(&image, &rule.require).await? {
            return Ok(Ran::Waiting(format!("waiting for an attestation of predicate type {missing}")));
        }
        let request = SignRequest {
            image: reference,
            key: j.key_ref.clone(),
            annotations: None,
            actor: format!("sign-on-push:{}", j.rule),
            source_addr: None,
            recursive: true,
            formats: None,
        };
        let outcome = self.sign(request).await?;
        Ok(Ran::Signed(outcome.log.map(|log| log.index as i64)))
    }

    /// The first of `required` predicate types no attestation on the digest has, looked for where verification
    /// finds attestations: the cosign `.att` tag (its layers' predicate type annotations) and the Sigstore
    /// bundle referrers (through the referrers API or the `sha256-<hex>` fallback index; the in-toto
    /// statement in each bundle's DSSE envelope, when it names the digest). Presence is what is asked, not
    /// trust: whether an attestation's signer is trusted is the verify policy's question.
    async fn missing_attestations(
        &self,
        image: &ImageReference,
        required: &[String],
    ) -> Result<Option<String>, ServiceError> {
        if required.is_empty() {
            return Ok(None);
        }
        let Some(digest) = &image.digest else { return Ok(required.first().cloned()) };
        let (repo, limits) = (repository_of(image), &self.evidence_limits);
        let ((_, tagged), referred) = tokio::try_join!(
            self.signatures.read_attestations(&repo, digest, limits),
            self.referrers.referred_evidence(&repo, digest, limits),
        )?;
        let mut present: Vec<String> = tagged.items.into_iter().filter_map(|a| a.predicate_type).collect();
        present.extend(referred.bundles.items.iter().filter_map(|b| predicate_type_about(b.envelope()?, digest)));
        Ok(required.iter().find(|t| !present.contains(t)).cloned())
    }

    /// Every rule's job for `image` (which names a digest); empty when no push of it matched a rule.
    pub async fn sign_status(&self, image: &ImageReference) -> Result<ImageStatus, ServiceError> {
        let Some(digest) = &image.digest else {
            return Err(ServiceError::Reference(crate::formats::FormatError::MalformedReference {
                reference: image.to_string(),
                reason: "name the image by digest (REF@sha256:…)".into(),
            }));
        };
        let jobs = self.store.sign_jobs_of(&image.registry, &image.repository, digest.as_str()).await?;
        let rules = jobs.iter().map(rule_status).collect();
        Ok(ImageStatus { image: format!("{}@{digest}", image.repository_name()), rules })
    }

    /// The queue's depth by state and the age of its oldest unfinished job, into the metrics.
    pub async fn report_sign_queue(&self) -> Result<(), ServiceError> {
        let (depth, oldest) = self.store.sign_queue_depth().await?;
        let age = oldest.map_or(0, |created| (now_ms() - created).max(0) / 1000);
        crate::metrics::metrics().report_sign_queue(&depth, age);
        Ok(())
    }
}

/// What one run of a job came to, short of an error.
enum Ran {
    Signed(Option<i64>),
    Waiting(String),
    /// The job's rule was removed from the configuration since the push: nothing is signed.
    RuleGone,
}

/// The predicate type of the in-toto statement `envelope` carries, when the statement names `digest`.
fn predicate_type_about(envelope: &Envelope, digest: &Digest) -> Option<String> {
    if envelope.payload_type != IN_TOTO_PAYLOAD_TYPE {
        return None;
    }
    let statement = Statement::parse(&envelope.payload).ok()?;
    let about = statement.subject.iter().any(|s| s.sha256_hex() == Some(digest.hex()));
    about.then_some(statement.predicate_type)
}

/// When a job waiting for a required attestation is looked at again: a quarter of the time it has waited so
/// far, at least `backoff_secs` and at most `max_backoff_secs` (a wait counts no attempt, so it never fails).
fn wait_until(queue: &SignQueueConfig, job: &SignJob) -> i64 {
    let now = now_ms();
    let waited_secs = u64::try_from((now - job.created_ms).max(0) / 1000).unwrap_or(0);
    let delay = (waited_secs / 4).clamp(queue.backoff_secs, queue.max_backoff_secs);
    now + (delay * 1000) as i64
}

/// The image a push event names (`request.host`, `target.repository`, `target.tag`, `target.digest`), when
/// it is a manifest under a tag other than the tags signatures and attestations live under.
fn pushed_image(event: &RegistryEvent) -> Option<ImageReference> {
    let (target, request) = (&event.target, &event.request);
    let media_type = target["mediaType"].as_str()?;
    if !MANIFEST_TYPES.contains(&media_type) {
        return None;
    }
    let (host, repository) = (request["host"].as_str()?, target["repository"].as_str()?);
    let (tag, digest) = (target["tag"].as_str()?, target["digest"].as_str()?);
    if tag.is_empty() || is_signature_tag(tag) {
        return None;
    }
    Digest::parse(digest).ok()?;
    let image = ImageReference::parse(&format!("{host}/{repository}:{tag}@{digest}")).ok()?;
    (image.tag.as_deref() == Some(tag)).then_some(image)
}

/// `sha256-<hex>` with or without a suffix (`.sig`, `.att`, `.sbom`): cosign's tag scheme and the
/// referrers fallback tag, never an image of its own.
fn is_signature_tag(tag: &str) -> bool {
    let Some(rest) = tag.strip_prefix("sha256-") else { return false };
    let hex = rest.split('.').next().unwrap_or_default();
    hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

fn rule_status(job: &SignJob) -> RuleStatus {
    let state = match job.state.as_str() {
        "signed" => "signed",
        "failed" => "failed",
        _ => "pending",
    };
    RuleStatus {
        rule: job.job.rule.clone(),
        state,
        tag: job.job.tag.clone(),
        key: job.job.key_ref.clone(),
        attempts: job.attempts,
        reason: job.reason.clone(),
        queued_at: rfc3339_ms(job.created_ms),
        updated_at: rfc3339_ms(job.updated_ms),
        next_attempt_at: (job.state == "pending").then(|| rfc3339_ms(job.not_before_ms)),
        log_index: job.log_index,
    }
}

fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

fn rfc3339_ms(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn push(target: serde_json::Value) -> RegistryEvent {
        serde_json::from_value(serde_json::json!({
            "id": "e1", "action": "push", "target": target, "request": {"host": "registry.example:5000"}
        }))
        .unwrap()
    }

    fn manifest(tag: &str) -> serde_json::Value {
        serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "repository": "team-a/app",
            "tag": tag,
            "digest": format!("sha256:{}", "a".repeat(64)),
        })
    }

    #[test]
    fn a_referrer_statement_counts_only_for_the_digest_it_names_and_only_as_in_toto() {
        let (ours, other) = (Digest::parse(&format!("sha256:{}", "a".repeat(64))).unwrap(), Digest::of(b"other"));
        let statement =
            Statement::v1(vec![crate::formats::in_toto::Subject::sha256(None, &ours)], "https://p", json!({}));
        let envelope = Envelope {
            payload_type: IN_TOTO_PAYLOAD_TYPE.to_owned(),
            payload: statement.to_json(),
            signatures: vec![],
        };
        assert_eq!(predicate_type_about(&envelope, &ours).as_deref(), Some("https://p"));
        assert_eq!(predicate_type_about(&envelope, &other), None, "a statement about another digest");
        let untyped = Envelope { payload_type: "text/plain".to_owned(), ..envelope };
        assert_eq!(predicate_type_about(&untyped, &ours), None, "not an in-toto payload");
    }

    #[test]
    fn a_tagged_manifest_push_names_its_image() {
        let image = pushed_image(&push(manifest("v1"))).unwrap();
        assert_eq!(image.to_string(), format!("registry.example:5000/team-a/app:v1@sha256:{}", "a".repeat(64)));
    }

    #[test]
    fn signature_tags_untagged_pushes_blobs_and_bad_names_are_never_images() {
        let hex = "b".repeat(64);
        for tag in [format!("sha256-{hex}.sig"), format!("sha256-{hex}.att"), format!("sha256-{hex}"), String::new()] {
            assert!(pushed_image(&push(manifest(&tag))).is_none(), "{tag}");
        }
        let mut untagged = manifest("v1");
        untagged.as_object_mut().unwrap().remove("tag");
        assert!(pushed_image(&push(untagged)).is_none());
        let mut blob = manifest("v1");
        blob["mediaType"] = "application/octet-stream".into();
        assert!(pushed_image(&push(blob)).is_none());
        for (field, bad) in [("repository", "UPPER/../x"), ("digest", "sha256:short"), ("tag", "v1@sha256:x")] {
            let mut wrong = manifest("v1");
            wrong[field] = bad.into();
            assert!(pushed_image(&push(wrong)).is_none(), "{field}: {bad}");
        }
    }
}
