//! Attest an image digest: an in-toto Statement v1 about it, in a DSSE envelope signed by the chosen key,
//! stored under the cosign `.att` tag and recorded in the register.

use serde_json::Value;

use super::sign::LogPosition;
use super::sign::WriteFailed;
use super::{Service, ServiceError, Target, now_rfc3339, repository_of, timed_sign};
use crate::formats::bundle::{Bundle, CONTENT_DSSE_ENVELOPE};
use crate::formats::referrer::EMPTY_JSON;
use crate::formats::signature_manifest::SignatureManifest;
use crate::keys::{PublicKey, Signature, Signer};
use crate::oci::{AttachedReferrer, OciError, Repository};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::formats::dsse::{Envelope, IN_TOTO_PAYLOAD_TYPE};
use crate::formats::in_toto::{SLSA_PROVENANCE_V1, Statement, Subject, check_slsa_provenance_v1};
use crate::formats::signature_manifest::attestation_tag;
use crate::formats::{Digest, ImageReference};
use crate::keys::KeyRef;
use crate::store::{NewSignature, RecordKind};

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
        let mut outcome = self.attest_digest(&request, &image, &targets.top).await?;
        for platform in targets.platforms {
            outcome.platforms.push(self.attest_digest(&request, &image, &platform).await?);
        }
        Ok(outcome)
    }

    async fn attest_digest(
        &self,
        request: &AttestRequest,
        image: &ImageReference,
        target: &Target,
    ) -> Result<AttestOutcome, ServiceError> {
        let digest = target.digest.clone();
        let key_ref = KeyRef::parse(&request.key)?;
        let signer = self.keys.image_signer(&key_ref.id)?.clone();
        let subject = Subject::sha256(Some(&image.repository_name()), &digest);
        let statement = Statement::v1(vec![subject], &request.predicate_type, request.predicate.clone());
        let (envelope, signature) = signed_envelope(&key_ref.id, signer.as_ref(), key_ref.version, &statement).await?;
        let signature_bytes = signature.bytes;
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

        let envelope_digest = Digest::of(&envelope_json);
        let record = NewSignature {
            kind: RecordKind::Attestation,
            actor: request.actor.clone(),
            source_addr: request.source_addr.clone(),
            registry: image.registry.clone(),
            repository: image.repository.clone(),
            digest: digest.to_string(),
            identity: request.predicate_type.clone(),
            key_id: key_ref.id.clone(),
            key_version: signature.version,
            algorithm: key_version.public_key.algorithm.as_str().to_owned(),
            payload_digest: envelope_digest.to_string(),
            signature_b64: BASE64.encode(&signature_bytes),
            signature_tag: attestation_tag(&digest),
            created_at: now_rfc3339(),
        };
        let repo = repository_of(image);
        let public_key = &key_version.public_key;
        let write = async {
            let att = self.signatures.append_attestation(&repo, &digest, &envelope_json, &request.predicate_type);
            let written = att.await?;
            if self.layouts.referrers(&image.registry) {
                let bundle = self.attach_bundle(&repo, target, public_key, envelope, &request.predicate_type);
                bundle.await.map_err(|error| WriteFailed { error: error.into(), partial: true })?;
            }
            Ok(written)
        };
        let (written, recorded) = self.write_recorded(record, write).await?;
        Ok(AttestOutcome {
            image: image.with_digest(digest.clone()),
            digest,
            key_id: key_ref.id,
            key_version: signature.version,
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

impl Service {
    /// Attaches `envelope` as a Sigstore bundle v0.3 referrer of `target` (cosign `--new-bundle-format`).
    pub(super) async fn attach_bundle(
        &self,
        repo: &Repository,
        target: &Target,
        public_key: &PublicKey,
        envelope: Envelope,
        predicate_type: &str,
    ) -> Result<AttachedReferrer, OciError> {
        let bundle_json = Bundle::dsse(public_key, envelope)?.to_json();
        let manifest = SignatureManifest::for_bundle(
            target.descriptor.clone(),
            &bundle_json,
            CONTENT_DSSE_ENVELOPE,
            Some(predicate_type),
        );
        self.referrers.attach(repo, &target.digest, &manifest.to_json(), &[&bundle_json, EMPTY_JSON]).await
    }
}

/// `statement` in a DSSE envelope signed over its PAE by version `version` of key `key_id`; the signature
/// is returned too (its bytes and the key version that made it).
pub(super) async fn signed_envelope(
    key_id: &str,
    signer: &dyn Signer,
    version: Option<u32>,
    statement: &Statement,
) -> Result<(Envelope, Signature), ServiceError> {
    let mut envelope = Envelope::unsigned(IN_TOTO_PAYLOAD_TYPE, statement.to_json());
    let signature = timed_sign(key_id, signer, version, &envelope.pae()).await?;
    envelope.add_signature(signature.bytes.clone());
    Ok((envelope, signature))
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
