//! Attest an image digest: an in-toto Statement v1 about it, in a DSSE envelope signed by the chosen key,
//! stored under the cosign `.att` tag and recorded in the register.

use serde_json::{Value, json};

use super::sign::LogPosition;
use super::{Service, ServiceError, now_rfc3339, repository_of};
use crate::formats::canonical::canonical_json;
use crate::formats::dsse::{Envelope, IN_TOTO_PAYLOAD_TYPE};
use crate::formats::in_toto::{SLSA_PROVENANCE_V1, Statement, Subject, check_slsa_provenance_v1};
use crate::formats::{Digest, ImageReference};
use crate::keys::KeyRef;
use crate::store::{Append, Effect};

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
    pub platforms: Vec<AttestOutcome>,
}

impl Service {
    /// Attests the manifest `request.image` names (and with `recursive`, each platform manifest of an index).
    pub async fn attest(&self, mut request: AttestRequest) -> Result<AttestOutcome, ServiceError> {
        let image = ImageReference::parse(&request.image)?;
        request.predicate = predicate_object(request.predicate.take(), &request.predicate_type)?;
        let targets = self.targets(&image, request.recursive).await?;
        let mut outcome = self.attest_digest(&request, &image, targets.top).await?;
        for platform in targets.platforms {
            outcome.platforms.push(self.attest_digest(&request, &image, platform).await?);
        }
        Ok(outcome)
    }

    async fn attest_digest(
        &self,
        request: &AttestRequest,
        image: &ImageReference,
        digest: Digest,
    ) -> Result<AttestOutcome, ServiceError> {
        let key_ref = KeyRef::parse(&request.key)?;
        let signer = self.keys.get(&key_ref.id)?.clone();
        let subject = Subject::sha256(Some(&image.repository_name()), &digest);
        let statement = Statement::v1(vec![subject], &request.predicate_type, request.predicate.clone());
        let mut envelope = Envelope::unsigned(IN_TOTO_PAYLOAD_TYPE, statement.to_json());
        let signature = signer.sign(key_ref.version, &envelope.pae()).await?;
        envelope.add_signature(signature.bytes);
        let envelope_json = envelope.to_json();
        if envelope_json.len() > MAX_ENVELOPE_BYTES {
            return Err(ServiceError::TooLarge {
                what: "the DSSE envelope",
                size: envelope_json.len(),
                limit: MAX_ENVELOPE_BYTES,
            });
        }
        let key_version =
            self.keys.public_key(&KeyRef { id: key_ref.id.clone(), version: Some(signature.version) }).await?;
        self.record_key_version(&key_ref.id, signer.as_ref(), &key_version).await?;

        let repo = repository_of(image);
        let written =
            self.signatures.append_attestation(&repo, &digest, &envelope_json, &request.predicate_type).await?;
        let mut outcome = AttestOutcome {
            image: image.with_digest(digest.clone()),
            digest,
            key_id: key_ref.id,
            key_version: signature.version,
            predicate_type: request.predicate_type.clone(),
            envelope_digest: Digest::of(&envelope_json),
            tag: written.tag,
            manifest_digest: written.manifest_digest,
            created: written.created,
            log: None,
            platforms: Vec::new(),
        };
        if outcome.created {
            let entry = attest_entry(&outcome, &request.actor, request.source_addr.as_deref());
            let once = format!("attestation:{}", outcome.envelope_digest);
            let placed = self.log.append(Append { entry, effect: Effect::Once { key: once } }).await?;
            outcome.log = Some(LogPosition { index: placed.index, tree_size: placed.tree_size });
        }
        Ok(outcome)
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

fn attest_entry(o: &AttestOutcome, actor: &str, source_addr: Option<&str>) -> Vec<u8> {
    canonical_json(&json!({
        "kind": "attest",
        "time": now_rfc3339(),
        "actor": {"name": actor, "addr": source_addr},
        "subject": {"registry": o.image.registry, "repository": o.image.repository, "digest": o.digest.as_str()},
        "details": {
            "key": o.key_id,
            "key_version": o.key_version,
            "predicate_type": o.predicate_type,
            "envelope_digest": o.envelope_digest.as_str(),
            "manifest_digest": o.manifest_digest.as_str(),
            "tag": o.tag,
        },
    }))
}
