//! Sign one image digest with one key and store the signature in the image's registry.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value};

use super::attest::signed_envelope;
use super::{Service, ServiceError, Target, now_rfc3339, repository_of, timed_sign};
use crate::formats::in_toto::{COSIGN_SIGN_V1, Statement, Subject};
use crate::formats::signature_manifest::{SignatureLayer, signature_tag};
use crate::formats::simple_signing::SimpleSigning;
use crate::formats::{Digest, ImageReference};
use crate::keys::{KeyRef, PublicKey, Signer};
use crate::metrics::{OutcomeLabels, WrittenLabels, metrics};
use crate::oci::{OciError, Repository, StoredSignature, WrittenSignature};
use crate::register::event::stored_entry;
use crate::store::{Append, Effect, NewSignature, RecordKind};

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
    pub platforms: Vec<SignOutcome>,
}

/// An entry's index and the tree size right after it was appended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogPosition {
    pub index: u64,
    pub tree_size: u64,
}

impl From<crate::register::Placed> for LogPosition {
    fn from(placed: crate::register::Placed) -> Self {
        Self { index: placed.index, tree_size: placed.tree_size }
    }
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
        let key_ref = KeyRef::parse(&request.key)?;
        let signer = self.keys.image_signer(&key_ref.id)?.clone();
        let optional = annotations(request.annotations.clone())?;
        let identity = match &image.tag {
            Some(tag) => format!("{}:{tag}", image.repository_name()),
            None => image.repository_name(),
        };
        let payload = SimpleSigning::new(&identity, &digest, optional).to_bytes();
        let signature = timed_sign(&key_ref.id, signer.as_ref(), key_ref.version, &payload).await?;
        let key_version =
            self.keys.public_key(&KeyRef { id: key_ref.id.clone(), version: Some(signature.version) }).await?;
        self.record_key_version(&key_ref.id, signer.as_ref(), &key_version).await?;
        let public_key = key_version.public_key;

        let record = NewSignature {
            kind: RecordKind::Signature,
            actor: request.actor.clone(),
            source_addr: request.source_addr.clone(),
            registry: image.registry.clone(),
            repository: image.repository.clone(),
            digest: digest.to_string(),
            identity: identity.clone(),
            key_id: key_ref.id.clone(),
            key_version: signature.version,
            algorithm: public_key.algorithm.as_str().to_owned(),
            payload_digest: Digest::of(&payload).to_string(),
            signature_b64: BASE64.encode(&signature.bytes),
            signature_tag: signature_tag(&digest),
            created_at: now_rfc3339(),
        };
        let layer = SignatureLayer::new(&payload, &signature.bytes);
        let repo = repository_of(image);
        let write = async {
            let already_signed =
                |existing: &StoredSignature| same_claim_by_key(existing, &identity, &digest, &public_key);
            let append = self.signatures.append(&repo, &digest, &payload, layer, already_signed, &self.evidence_limits);
            let written = append.await?;
            if written.created && self.layouts.referrers(&image.registry) {
                let bundle =
                    self.sign_bundle(&key_ref.id, signer.as_ref(), signature.version, &repo, target, &public_key);
                bundle.await.map_err(|error| WriteFailed { error, partial: true })?;
            }
            Ok(written)
        };
        let (written, recorded) = self.write_recorded(record, write).await?;
        let (record_id, log) = recorded.unzip();
        Ok(SignOutcome {
            image: image.with_digest(digest.clone()),
            digest,
            identity,
            key_id: key_ref.id,
            key_version: signature.version,
            algorithm: public_key.algorithm.as_str(),
            signature_tag: written.tag,
            manifest_digest: written.manifest_digest,
            created: written.created,
            record_id,
            log,
            platforms: Vec::new(),
        })
    }
}

impl Service {
    /// Runs the registry `write` of `record` between a pending row and its confirmation with its register
    /// entry (ARCHITECTURE.md invariant 2): the row is removed if the write fails or wrote nothing new, and kept
    /// pending for reconciliation if the write failed half-way. Returns what was written and, when something
    /// was, the row id and where its entry landed.
    pub(super) async fn write_recorded(
        &self,
        record: NewSignature,
        write: impl Future<Output = Result<WrittenSignature, WriteFailed>>,
    ) -> Result<(WrittenSignature, Option<(i64, LogPosition)>), ServiceError> {
        let id = self.store.begin_signature(&record).await?;
        let outcome =
            |name: &str| metrics().registry_requests.get_or_create(&OutcomeLabels { outcome: name.into() }).inc();
        let written = match write.await {
            Ok(written) => written,
            Err(WriteFailed { error, partial: true }) => {
                outcome("partial");
                return Err(error);
            }
            Err(WriteFailed { error, partial: false }) => {
                outcome("failed");
                self.store.abandon_signature(id).await?;
                return Err(error);
            }
        };
        outcome(if written.created { "written" } else { "already-there" });
        if written.created {
            let labels = WrittenLabels { key: record.key_id.clone(), kind: record.kind.as_str().into() };
            metrics().written.get_or_create(&labels).inc();
        }
        if !written.created {
            self.store.abandon_signature(id).await?;
            return Ok((written, None));
        }
        let placed = self.log.append(confirm_signature(id, record, &written.manifest_digest)).await?;
        Ok((written, Some((id, placed.into()))))
    }
}

impl Service {
    /// The image signature in the bundle layout cosign v3 writes (docs/FORMATS.md §7): a DSSE envelope of a
    /// Statement v1 naming only the digest, predicate type `https://sigstore.dev/cosign/sign/v1`, attached
    /// as a Sigstore bundle referrer. Signed with the same key version as the `.sig` layer.
    async fn sign_bundle(
        &self,
        key_id: &str,
        signer: &dyn Signer,
        version: u32,
        repo: &Repository,
        target: &Target,
        public_key: &PublicKey,
    ) -> Result<(), ServiceError> {
        let subject = Subject::sha256(Some(&format!("{}/{}", repo.registry, repo.name)), &target.digest);
        let statement = Statement::v1(vec![subject], COSIGN_SIGN_V1, serde_json::json!({}));
        let (envelope, _) = signed_envelope(key_id, signer, Some(version), &statement).await?;
        self.attach_bundle(repo, target, public_key, envelope, COSIGN_SIGN_V1).await?;
        Ok(())
    }
}

/// A registry write that failed; `partial` when part of it landed (the row then waits for reconciliation).
pub(super) struct WriteFailed {
    pub error: ServiceError,
    pub partial: bool,
}

impl From<OciError> for WriteFailed {
    fn from(error: OciError) -> Self {
        Self { error: error.into(), partial: false }
    }
}

/// The register entry for a signature the registry now holds, with the confirmation of its row.
pub(super) fn confirm_signature(id: i64, signature: NewSignature, manifest_digest: &Digest) -> Append {
    Append {
        entry: stored_entry(&signature, manifest_digest.as_str()),
        effect: Effect::ConfirmSignature {
            id,
            signature: Box::new(signature),
            manifest_digest: manifest_digest.to_string(),
        },
    }
}

/// True when `existing` already says, under `key`, that `identity` is `digest`.
fn same_claim_by_key(existing: &StoredSignature, identity: &str, digest: &Digest, key: &PublicKey) -> bool {
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
