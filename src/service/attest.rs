//! Attest an image digest: an in-toto Statement v1 about it, in a DSSE envelope signed by the chosen key,
//! stored under the cosign `.att` tag and recorded in the register.

use serde_json::Value;

use super::record::{Claim, Origin, WriteFailed};
use super::{LogPosition, Service, ServiceError, Target, repository_of};
use crate::formats::in_toto::{SLSA_PROVENANCE_V1, Statement, Subject, check_slsa_provenance_v1};
use crate::formats::signature_manifest::attestation_tag;
use crate::formats::{Digest, ImageReference};
use crate::store::RecordKind;

/// Largest DSSE envelope written to a registry: registries and verifiers refuse far smaller blobs than
/// they accept layers, and an attestation is read on every deploy-time check.
pub const MAX_ENVELOPE_BYTES: usize = 1024 * 1024;

#[derive(Debug, Clone)]
pub struct AttestRequest {
    pub image: String,
    pub key: String,
    pub predicate_type: String,
    /// A JSON object, or a string holding one (a predicate file read as text).
    pub predicate: Value,
    pub actor: String,
    pub source_addr: Option<String>,
    /// For an image index: attest the index and each platform manifest it lists.
    pub recursive: bool,
}

#[derive(Debug, Clone)]
pub struct AttestOutcome {
    pub image: ImageReference,
    pub digest: Digest,
    pub key_id: String,
    pub key_version: u32,
    pub predicate_type: String,
    pub envelope_digest: Digest,
    pub tag: String,
    pub manifest_digest: Digest,
    /// False when the very same envelope was already stored (a deterministic Ed25519 re-attestation).
    pub created: bool,
    pub log: Option<LogPosition>,
    /// For a recursive attest of an index: the outcome for each platform manifest.
    pub platforms: Vec<Self>,
}

impl Service {
    /// Attests the manifest `request.image` names (and with `recursive`, each platform manifest of an index).
    pub async fn attest(&self, mut request: AttestRequest) -> Result<AttestOutcome, ServiceError> {
        let image = ImageReference::parse(&request.image)?;
        request.predicate = predicate_object(request.predicate.take(), &request.predicate_type)?;
        let targets = self.targets(&image, request.recursive).await?;
        let mut outcome = self.attest_digest(&request, &image, &targets.top).await?;
        let platforms = super::each_platform(&targets.platforms, |p| self.attest_digest(&request, &image, p)).await;
        outcome.platforms = platforms.into_iter().collect::<Result<_, _>>()?;
        Ok(outcome)
    }

    async fn attest_digest(
        &self,
        request: &AttestRequest,
        image: &ImageReference,
        target: &Target,
    ) -> Result<AttestOutcome, ServiceError> {
        let digest = target.digest.clone();
        let subject = Subject::sha256(Some(&image.repository_name()), &digest);
        let statement = Statement::v1(vec![subject], &request.predicate_type, request.predicate.clone());
        let prepared = self
            .prepare(&request.key, async |key| {
                let (envelope, signature) = key.sign_envelope(&statement).await?;
                let envelope_json = envelope.to_json();
                if envelope_json.len() > MAX_ENVELOPE_BYTES {
                    let (what, size, limit) = ("the DSSE envelope", envelope_json.len(), MAX_ENVELOPE_BYTES);
                    return Err(ServiceError::TooLarge { what, size, limit });
                }
                Ok(((envelope, envelope_json), signature))
            })
            .await?;
        let envelope_digest = Digest::of(&prepared.signed.1);
        let claim = Claim {
            kind: RecordKind::Attestation,
            identity: request.predicate_type.clone(),
            payload_digest: envelope_digest.clone(),
            signature_tag: attestation_tag(&digest),
        };
        let origin = Origin { actor: &request.actor, source_addr: request.source_addr.as_deref() };
        let record = prepared.record(origin, image, &digest, claim);
        let (envelope, envelope_json) = prepared.signed;
        let repo = repository_of(image);
        let write = async {
            let att = self.signatures.append_attestation(&repo, &digest, &envelope_json, &request.predicate_type);
            let written = att.await?;
            if self.layouts.referrers(&image.registry) {
                let public_key = &prepared.public_key;
                let bundle = self.attach_bundle(&repo, target, public_key, envelope, &request.predicate_type);
                bundle.await.map_err(WriteFailed::partial)?;
            }
            Ok(written)
        };
        let (written, recorded) = self.write_recorded(record, &envelope_json, write).await?;
        Ok(AttestOutcome {
            image: image.with_digest(digest.clone()),
            digest,
            key_id: prepared.key.id,
            key_version: prepared.signature.version,
            predicate_type: request.predicate_type.clone(),
            envelope_digest,
            tag: written.tag,
            manifest_digest: written.manifest_digest,
            created: written.created,
            log: recorded.map(|(_, position)| position),
            platforms: Vec::new(),
        })
    }
}

/// The predicate as a JSON object, checked against what its type requires.
fn predicate_object(predicate: Value, predicate_type: &str) -> Result<Value, ServiceError> {
    let invalid = |reason: String| ServiceError::Predicate(reason);
    if !predicate_type.contains(':') || predicate_type.chars().any(char::is_whitespace) {
        return Err(invalid(format!("predicate_type {predicate_type:?} is not a URI")));
    }
    let predicate = match predicate {
        Value::String(text) => {
            serde_json::from_str(&text).map_err(|e| invalid(format!("predicate is a string that is not JSON: {e}")))?
        }
        other => other,
    };
    if !predicate.is_object() {
        return Err(invalid("predicate must be a JSON object".into()));
    }
    if predicate_type == SLSA_PROVENANCE_V1 {
        check_slsa_provenance_v1(&predicate).map_err(|e| invalid(format!("SLSA provenance v1: {e}")))?;
    }
    Ok(predicate)
}
