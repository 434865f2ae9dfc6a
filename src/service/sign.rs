//! Sign one image digest with one key and store the signature in the image's registry.

use serde_json::{Map, Value};

use super::record::{Claim, Origin, Prepared, WriteFailed};
use super::{LogPosition, Service, ServiceError, Target, repository_of};
use crate::formats::in_toto::{COSIGN_SIGN_V1, Statement, Subject};
use crate::formats::signature_manifest::{SignatureLayer, signature_tag};
use crate::formats::simple_signing::SimpleSigning;
use crate::formats::{Digest, ImageReference};
use crate::keys::PublicKey;
use crate::oci::{FoundSignature, Repository};
use crate::store::RecordKind;

/// A sign request as the API and CLI hand it over.
#[derive(Debug, Clone)]
pub struct SignRequest {
    pub image: String,
    pub key: String,
    pub annotations: Option<Value>,
    pub actor: String,
    pub source_addr: Option<String>,
    /// For an image index: sign the index and each platform manifest it lists.
    pub recursive: bool,
}

/// What was signed and where the signature is.
#[derive(Debug, Clone)]
pub struct SignOutcome {
    pub image: ImageReference,
    pub digest: Digest,
    pub identity: String,
    pub key_id: String,
    pub key_version: u32,
    pub algorithm: &'static str,
    pub signature_tag: String,
    pub manifest_digest: Digest,
    /// False when this key had already signed this digest for this identity: nothing was written.
    pub created: bool,
    pub record_id: Option<i64>,
    /// Where the sign entry sits in the register (`None` when nothing new was written).
    pub log: Option<LogPosition>,
    /// For a recursive sign of an index: the outcome for each platform manifest.
    pub platforms: Vec<Self>,
}

impl Service {
    /// Signs the manifest `request.image` names (and with `recursive`, each platform manifest of an index).
    pub async fn sign(&self, request: SignRequest) -> Result<SignOutcome, ServiceError> {
        let image = ImageReference::parse(&request.image)?;
        let targets = self.targets(&image, request.recursive).await?;
        let mut outcome = self.sign_digest(&request, &image, &targets.top).await?;
        for platform in targets.platforms {
            outcome.platforms.push(self.sign_digest(&request, &image, &platform).await?);
        }
        Ok(outcome)
    }

    /// Signs `digest` (a manifest in `image`'s repository), writes to the registry, and records, in the
    /// order invariant 2 needs: the database row is pending during the registry write and removed if the
    /// write fails.
    async fn sign_digest(
        &self,
        request: &SignRequest,
        image: &ImageReference,
        target: &Target,
    ) -> Result<SignOutcome, ServiceError> {
        let digest = target.digest.clone();
        let identity = match &image.tag {
            Some(tag) => format!("{}:{tag}", image.repository_name()),
            None => image.repository_name(),
        };
        let prepared = self
            .prepare(&request.key, async |key| {
                let optional = annotations(request.annotations.clone())?;
                let payload = SimpleSigning::new(&identity, &digest, optional).to_bytes();
                let signature = key.sign(&payload).await?;
                Ok((payload, signature))
            })
            .await?;
        let payload = &prepared.signed;
        let claim = Claim {
            kind: RecordKind::Signature,
            identity: identity.clone(),
            payload_digest: Digest::of(payload),
            signature_tag: signature_tag(&digest),
        };
        let origin = Origin { actor: &request.actor, source_addr: request.source_addr.as_deref() };
        let record = prepared.record(origin, image, &digest, claim);
        let layer = SignatureLayer::new(payload, &prepared.signature.bytes);
        let repo = repository_of(image);
        let write = async {
            let public_key = &prepared.public_key;
            let already_signed =
                |existing: &FoundSignature| same_claim_by_key(existing, &identity, &digest, public_key);
            let append = self.signatures.append(&repo, &digest, payload, layer, already_signed, &self.evidence_limits);
            let written = append.await?;
            if written.created && self.layouts.referrers(&image.registry) {
                self.sign_bundle(&prepared, &repo, target).await.map_err(WriteFailed::partial)?;
            }
            Ok(written)
        };
        let (written, recorded) = self.write_recorded(record, write).await?;
        let (record_id, log) = recorded.unzip();
        Ok(SignOutcome {
            image: image.with_digest(digest.clone()),
            digest,
            identity,
            key_id: prepared.key.id,
            key_version: prepared.signature.version,
            algorithm: prepared.public_key.algorithm.as_str(),
            signature_tag: written.tag,
            manifest_digest: written.manifest_digest,
            created: written.created,
            record_id,
            log,
            platforms: Vec::new(),
        })
    }

    /// The image signature in the bundle layout cosign v3 writes (docs/FORMATS.md §7): a DSSE envelope of a
    /// Statement v1 naming only the digest, predicate type `https://sigstore.dev/cosign/sign/v1`, attached
    /// as a Sigstore bundle referrer. Signed with the same key version as the `.sig` layer.
    async fn sign_bundle(
        &self,
        prepared: &Prepared<Vec<u8>>,
        repo: &Repository,
        target: &Target,
    ) -> Result<(), ServiceError> {
        let subject = Subject::sha256(Some(&format!("{}/{}", repo.registry, repo.name)), &target.digest);
        let statement = Statement::v1(vec![subject], COSIGN_SIGN_V1, serde_json::json!({}));
        let key = prepared.key.at_version(prepared.signature.version);
        let (envelope, _) = key.sign_envelope(&statement).await?;
        self.attach_bundle(repo, target, &prepared.public_key, envelope, COSIGN_SIGN_V1).await?;
        Ok(())
    }
}

/// True when `existing` already says, under `key`, that `identity` is `digest`.
fn same_claim_by_key(existing: &FoundSignature, identity: &str, digest: &Digest, key: &PublicKey) -> bool {
    let Ok(payload) = SimpleSigning::parse(&existing.payload) else {
        return false;
    };
    payload.identity() == identity
        && payload.digest() == digest.as_str()
        && key.verify(&existing.payload, &existing.signature).is_ok()
}

fn annotations(value: Option<Value>) -> Result<Option<Map<String, Value>>, ServiceError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(map)) => {
            if let Some((k, _)) = map.iter().find(|(_, v)| !v.is_string()) {
                return Err(ServiceError::Annotations(format!("the value of {k:?} is not a string")));
            }
            Ok(Some(map))
        }
        Some(other) => Err(ServiceError::Annotations(format!("got {other}"))),
    }
}
