//! Reconciliation of signs a crash interrupted between the registry write and its confirmation: run at
//! start-up and then periodically (a peer on a shared database may crash too).

use std::time::Duration;

use super::{Service, ServiceError};
use crate::formats::Digest;
use crate::formats::signature_manifest::{Descriptor, SIGNATURE_ANNOTATION, attestation_tag, signature_tag};
use crate::oci::Repository;
use crate::store::{Artifact, NewSignature, RecordKind};

/// What reconciliation did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Reconciled {
    /// Pending rows whose signature the registry holds: now confirmed.
    pub confirmed: usize,
    /// Pending rows whose signature never reached the registry: removed.
    pub removed: usize,
    /// Rows left pending because the registry could not be asked; retried at the next round.
    pub deferred: usize,
    /// Rows whose signature is not in the registry yet but younger than the grace period: a write sent
    /// just before the crash may still land.
    pub waiting: usize,
}

impl Service {
    /// Confirms each pending row whose signature is in the registry and removes those older than `grace`
    /// whose signature is not.
    pub async fn reconcile_pending(&self, grace: Duration) -> Result<Reconciled, ServiceError> {
        let mut outcome = Reconciled::default();
        for row in self.store.pending_signatures().await? {
            let s = &row.signature;
            let repo = Repository { registry: s.registry.clone(), name: s.repository.clone() };
            let found = match Digest::parse(&s.digest) {
                Ok(digest) => self.landed(&repo, &digest, &row.signature).await,
                Err(e) => Err(e.into()),
            };
            let landed = match found {
                Ok(landed) => landed,
                Err(e) => {
                    tracing::warn!(id = row.id, error = %e, "cannot reconcile pending signature yet");
                    outcome.deferred += 1;
                    continue;
                }
            };
            let young = younger_than(&row.signature.created_at, grace);
            let planned = row.signature.artifacts.len();
            match landed {
                // Part of a sign landed and the rest may still: wait, so that the entry lists all of it.
                Some((_, ref artifacts)) if artifacts.len() < planned && young => outcome.waiting += 1,
                Some((manifest, artifacts)) => {
                    let signature = NewSignature { artifacts, ..row.signature };
                    self.log.append(super::record::confirm_signature(row.id, signature, &manifest)).await?;
                    outcome.confirmed += 1;
                }
                None if young => outcome.waiting += 1,
                None => {
                    self.store.abandon_signature(row.id).await?;
                    outcome.removed += 1;
                }
            }
        }
        Ok(outcome)
    }
}

impl Service {
    /// What of `record` the registry holds: `None` if nothing, else the manifest digest its entry names
    /// (the `.sig` tag's when that landed, else the first referrer's) and the artifacts that landed (the
    /// row's plan, less what is missing). A row without planned artifacts is its `.sig` layer alone.
    async fn landed(
        &self,
        repo: &Repository,
        digest: &Digest,
        record: &NewSignature,
    ) -> Result<Option<(Digest, Vec<Artifact>)>, ServiceError> {
        if record.artifacts.is_empty() {
            let (present, manifest) = self.stored_in_registry(repo, digest, record).await?;
            return Ok(manifest.filter(|_| present).map(|m| (m, Vec::new())));
        }
        let mut sig_manifest = None;
        let mut landed = Vec::new();
        for artifact in &record.artifacts {
            let present = match &artifact.manifest_digest {
                None => {
                    let (present, manifest) = self.stored_in_registry(repo, digest, record).await?;
                    sig_manifest = manifest.filter(|_| present);
                    sig_manifest.is_some()
                }
                Some(referrer) => {
                    let registry = self.signatures.registry();
                    registry.get_manifest(repo, referrer).await?.is_some()
                }
            };
            if present {
                landed.push(artifact.clone());
            }
        }
        let first_referrer = || landed.iter().find_map(|a| a.manifest_digest.as_deref()).map(Digest::parse);
        let manifest = match sig_manifest {
            Some(manifest) => Some(manifest),
            None => first_referrer().transpose()?,
        };
        Ok(manifest.map(|m| (m, landed)))
    }

    /// Whether the registry holds the signature or attestation `record` describes, and the manifest digest
    /// of its tag. Looks at the layer descriptors only: a write is found however many layers precede it.
    async fn stored_in_registry(
        &self,
        repo: &Repository,
        digest: &Digest,
        record: &NewSignature,
    ) -> Result<(bool, Option<Digest>), ServiceError> {
        let (manifest, present) = match record.kind {
            RecordKind::Signature => {
                let ours = |l: &Descriptor| {
                    l.digest == record.payload_digest
                        && l.annotation(SIGNATURE_ANNOTATION) == Some(record.signature_b64.as_str())
                };
                self.signatures.find_layer(repo, &signature_tag(digest), ours).await?
            }
            RecordKind::Attestation => {
                let ours = |l: &Descriptor| l.digest == record.payload_digest;
                self.signatures.find_layer(repo, &attestation_tag(digest), ours).await?
            }
        };
        Ok((present, manifest))
    }
}

fn younger_than(created_at: &str, grace: Duration) -> bool {
    let format = time::format_description::well_known::Rfc3339;
    time::OffsetDateTime::parse(created_at, &format).is_ok_and(|at| {
        time::OffsetDateTime::now_utc() - at < time::Duration::try_from(grace).unwrap_or(time::Duration::MAX)
    })
}
