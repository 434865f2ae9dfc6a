//! Signed verdicts (docs/FORMATS.md §27): a recorded decision written as an in-toto statement
//! (`formats::verdict`), signed in a DSSE envelope by the `[verdicts]` key through the attest path's
//! signing, returned on request and, with `attach`, attached to the image by the attest path (the `.att`
//! tag and the bundle referrer, logged like an attest) once per (repository, digest, policy version, result)
//! across replicas, claimed in the database first.
//!
//! Must not touch: how a decision is reached (`verify.rs`), the envelope or statement writers.

use std::collections::HashSet;
use std::sync::Mutex;

use serde_json::Value;

use super::attest::AttestRequest;
use super::verify::RecordedDecision;
use super::{Decision, Service, ServiceError, repository_of};
use crate::config::VerdictsConfig;
use crate::formats::ImageReference;
use crate::formats::in_toto::Statement;
use crate::formats::verdict::VerdictFacts;
use crate::policy::{Authority, PolicySet};
use crate::store::VerdictKey;

/// `[verdicts]` and the verdicts this process attached, is attaching, or found claimed by another replica.
#[derive(Default)]
pub(super) struct Verdicts {
    config: Option<VerdictsConfig>,
    attached: Mutex<HashSet<VerdictKey>>,
}

/// A verdict signed for an answer: its predicate type and the DSSE envelope as JSON.
#[derive(Debug, Clone)]
pub struct SignedVerdict {
    pub predicate_type: String,
    pub envelope: Value,
}

impl Service {
    /// Signs verdicts as `config` says.
    pub fn with_verdicts(self, config: Option<VerdictsConfig>) -> Self {
        Self { verdicts: Verdicts { config, attached: Mutex::default() }, ..self }
    }

    /// Why `policies` cannot be in force with this `[verdicts] key`: a policy trusts it for images, by its id
    /// (any version) or by a `public_key:` of one of its versions, so a verdict could stand in for a
    /// signature. `None` when none does.
    pub async fn verdict_key_conflict(&self, policies: &PolicySet) -> Option<String> {
        let key = self.verdicts.config.as_ref()?.key_id();
        let versions = match self.keys.get(key) {
            Ok(signer) => signer.versions().await.unwrap_or_default(),
            Err(_) => Vec::new(),
        };
        let trusted = |authority: &Authority| match authority {
            Authority::Key(k) => k.id == key,
            Authority::PublicKey { key: public, .. } => versions.iter().any(|v| &v.public_key == public),
            _ => false,
        };
        let policy = policies.policies.iter().find(|p| p.authorities.iter().any(trusted))?;
        Some(format!(
            "[verdicts] key {key:?} is trusted for images by policy {:?}: a key that signs verdicts must not be an \
             image authority",
            policy.name
        ))
    }

    /// The verdict statement of `decision`, recorded at `recorded`, about `image`.
    fn verdict_statement(&self, image: &ImageReference, decision: &Decision, recorded: &RecordedDecision) -> Statement {
        let config = self.verdicts.config.as_ref().expect("called only with [verdicts]");
        let repository = image.repository_name();
        let policy = decision.policy.as_deref().zip(decision.policy_version.as_deref());
        let facts = VerdictFacts {
            repository: &repository,
            digest: &decision.digest,
            verifier_version: env!("CARGO_PKG_VERSION"),
            time: &recorded.time,
            allowed: decision.allowed,
            policy,
            register_index: recorded.position.index,
            leaf_hash: &recorded.leaf_hash,
            reasons: &decision.reasons,
        };
        facts.statement(config.format)
    }

    /// The signed verdict of a recorded decision (`sign`), attached first when `[verdicts] attach` is on and
    /// this (digest, policy version, result) has not been attached yet. `Ok(None)` when nothing was asked;
    /// asking for a verdict without `[verdicts]` is an error.
    pub async fn emit_verdict(
        &self,
        image: &str,
        decision: &Decision,
        recorded: &RecordedDecision,
        sign: bool,
        actor: &str,
    ) -> Result<Option<SignedVerdict>, ServiceError> {
        let Some(config) = &self.verdicts.config else {
            return if sign { Err(ServiceError::NoVerdicts) } else { Ok(None) };
        };
        let image = ImageReference::parse(image)?;
        let statement = self.verdict_statement(&image, decision, recorded);
        if config.attach {
            self.attach_verdict_once(&image, decision, &statement, actor).await;
        }
        if !sign {
            return Ok(None);
        }
        let prepared = self.prepare(&config.key, async |key| key.sign_envelope(&statement).await).await?;
        let envelope = serde_json::from_slice(&prepared.signed.to_json()).expect("an envelope is JSON");
        Ok(Some(SignedVerdict { predicate_type: statement.predicate_type, envelope }))
    }

    /// Attaches `statement` once per image repository, digest, policy version and result across every
    /// replica on the database: this process's memory answers first, then a claim in `verdict_attachments`
    /// that one replica wins. A failed attach gives its claim back (logged), so the next decision tries again;
    /// a claim whose replica died is taken over after [`CLAIM_STALE_AFTER_MS`].
    async fn attach_verdict_once(
        &self,
        image: &ImageReference,
        decision: &Decision,
        statement: &Statement,
        actor: &str,
    ) {
        let Some(config) = &self.verdicts.config else { return };
        let repo = repository_of(image);
        let once = VerdictKey {
            registry: repo.registry,
            repository: repo.name,
            digest: decision.digest.as_str().to_owned(),
            policy_version: decision.policy_version.clone().unwrap_or_default(),
            allowed: decision.allowed,
        };
        if !self.verdicts.attached.lock().expect("never poisoned").insert(once.clone()) {
            return;
        }
        let now = now_ms();
        match self.store.claim_verdict(&once, now, now - CLAIM_STALE_AFTER_MS).await {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => return self.verdict_not_attached(&once, &e.to_string(), false).await,
        }
        let request = AttestRequest {
            image: image.with_digest(decision.digest.clone()).to_string(),
            key: config.key.clone(),
            predicate_type: statement.predicate_type.clone(),
            predicate: statement.predicate.clone(),
            actor: actor.to_owned(),
            source_addr: None,
            recursive: false,
        };
        if let Err(e) = self.attest(request).await {
            return self.verdict_not_attached(&once, &e.to_string(), true).await;
        }
        if let Err(e) = self.store.verdict_attached(&once).await {
            tracing::warn!(digest = %once.digest, error = %e, "attached verdict not marked; its claim goes stale");
        }
    }

    /// Logs why the verdict of `once` was not attached and forgets it (giving back its claim when `claimed`).
    async fn verdict_not_attached(&self, once: &VerdictKey, error: &str, claimed: bool) {
        tracing::warn!(digest = %once.digest, %error, "verdict could not be attached");
        if claimed && let Err(e) = self.store.release_verdict(once).await {
            tracing::warn!(digest = %once.digest, error = %e, "verdict claim not given back; it goes stale");
        }
        self.verdicts.attached.lock().expect("never poisoned").remove(once);
    }
}

/// After how long a claim never marked attached is taken over: far longer than an attach takes.
const CLAIM_STALE_AFTER_MS: i64 = 5 * 60 * 1000;

fn now_ms() -> i64 {
    i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}
