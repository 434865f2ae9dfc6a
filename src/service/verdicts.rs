//! Signed verdicts (docs/FORMATS.md §27): a recorded decision written as an in-toto statement
//! (`formats::verdict`), signed in a DSSE envelope by the `[verdicts]` key through the attest path's
//! signing, returned on request and, with `attach`, attached to the image by the attest path (the `.att`
//! tag and the bundle referrer, logged like an attest) once per (digest, policy version, result).
//!
//! Must not touch: how a decision is reached (`verify.rs`), the envelope or statement writers.

use std::collections::HashSet;
use std::sync::Mutex;

use serde_json::Value;

use super::attest::AttestRequest;
use super::verify::RecordedDecision;
use super::{Decision, Service, ServiceError};
use crate::config::VerdictsConfig;
use crate::formats::ImageReference;
use crate::formats::in_toto::Statement;
use crate::formats::verdict::VerdictFacts;
use crate::policy::{Authority, PolicySet};

/// `[verdicts]` and the verdicts this process attached (or is attaching).
#[derive(Default)]
pub(super) struct Verdicts {
    config: Option<VerdictsConfig>,
    attached: Mutex<HashSet<(String, String, bool)>>,
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

    /// Attaches `statement` unless this process already attached one for the same digest, policy version
    /// and result; a failed attach is logged and forgotten, so the next decision tries again.
    async fn attach_verdict_once(
        &self,
        image: &ImageReference,
        decision: &Decision,
        statement: &Statement,
        actor: &str,
    ) {
        let Some(config) = &self.verdicts.config else { return };
        let once = (
            decision.digest.as_str().to_owned(),
            decision.policy_version.clone().unwrap_or_default(),
            decision.allowed,
        );
        if !self.verdicts.attached.lock().expect("never poisoned").insert(once.clone()) {
            return;
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
            tracing::warn!(digest = %decision.digest.as_str(), error = %e, "verdict could not be attached");
            self.verdicts.attached.lock().expect("never poisoned").remove(&once);
        }
    }
}
