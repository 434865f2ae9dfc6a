//! What sign and attest share: the prepare step (the key a request names, its signature, the public key
//! of the version that made it, logged once), the database row of a signature or attestation, the
//! record/write path around the registry write, and the bundle referrer path.
//!
//! Owns: the order of the row, the registry write and the register entry (ARCHITECTURE.md's invariant 2). Must not touch:
//! what a signature or attestation says (that is `sign.rs` and `attest.rs`).

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::{Service, ServiceError, Target, now_rfc3339, timed_sign};
use crate::formats::bundle::{Bundle, CONTENT_DSSE_ENVELOPE};
use crate::formats::dsse::{Envelope, IN_TOTO_PAYLOAD_TYPE};
use crate::formats::in_toto::Statement;
use crate::formats::referrer::EMPTY_JSON;
use crate::formats::signature_manifest::SignatureManifest;
use crate::formats::{Digest, ImageReference};
use crate::keys::{KeyRef, PublicKey, Signature, Signer};
use crate::metrics::{OutcomeLabels, WrittenLabels, metrics};
use crate::oci::{AttachedReferrer, OciError, Repository, WrittenSignature};
use crate::register::event::stored_entry;
use crate::store::{Append, Effect, NewSignature, RecordKind};

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

/// The image-signing key a request names (`id` or `id@version`), ready to sign.
#[derive(Clone)]
pub(super) struct SigningKey {
    pub id: String,
    /// `None`: the latest version.
    pub version: Option<u32>,
    signer: Arc<dyn Signer>,
}

impl SigningKey {
    /// `message` signed by this key, reporting to the metrics.
    pub(super) async fn sign(&self, message: &[u8]) -> Result<Signature, ServiceError> {
        Ok(timed_sign(&self.id, self.signer.as_ref(), self.version, message).await?)
    }

    /// `statement` in a DSSE envelope signed over its PAE; the signature is returned too.
    pub(super) async fn sign_envelope(&self, statement: &Statement) -> Result<(Envelope, Signature), ServiceError> {
        let mut envelope = Envelope::unsigned(IN_TOTO_PAYLOAD_TYPE, statement.to_json());
        let signature = self.sign(&envelope.pae()).await?;
        envelope.add_signature(signature.bytes.clone());
        Ok((envelope, signature))
    }

    /// The same key pinned to `version` (a second signature made with the version of the first).
    pub(super) fn at_version(&self, version: u32) -> Self {
        Self { version: Some(version), ..self.clone() }
    }
}

/// A request's key, what it signed (`signed`), the signature, and the public key of the version that
/// made it.
pub(super) struct Prepared<T> {
    pub key: SigningKey,
    pub signed: T,
    pub signature: Signature,
    pub public_key: PublicKey,
}

/// What a row records beside who asked, the image and the key: its kind, the identity (a signature's
/// docker-reference, an attestation's predicate type), the digest of what was signed and the tag.
pub(super) struct Claim {
    pub kind: RecordKind,
    pub identity: String,
    pub payload_digest: Digest,
    pub signature_tag: String,
}

/// Who asked for a sign or attest, as its row records.
pub(super) struct Origin<'a> {
    pub actor: &'a str,
    pub source_addr: Option<&'a str>,
}

impl<T> Prepared<T> {
    /// The row for `claim` about `digest` in `image`'s repository, signed as prepared.
    pub(super) fn record(
        &self,
        origin: Origin<'_>,
        image: &ImageReference,
        digest: &Digest,
        claim: Claim,
    ) -> NewSignature {
        NewSignature {
            kind: claim.kind,
            actor: origin.actor.to_owned(),
            source_addr: origin.source_addr.map(str::to_owned),
            registry: image.registry.clone(),
            repository: image.repository.clone(),
            digest: digest.to_string(),
            identity: claim.identity,
            key_id: self.key.id.clone(),
            key_version: self.signature.version,
            algorithm: self.public_key.algorithm.as_str().to_owned(),
            payload_digest: claim.payload_digest.to_string(),
            signature_b64: BASE64.encode(&self.signature.bytes),
            signature_tag: claim.signature_tag,
            created_at: now_rfc3339(),
            artifacts: Vec::new(),
        }
    }
}

impl Service {
    /// The prepare step of a sign or attest: parses `key`, lets `sign` sign with it (and check what it
    /// made), then reads the public key of the version that signed and logs that version if it is new.
    pub(super) async fn prepare<T>(
        &self,
        key: &str,
        sign: impl AsyncFnOnce(&SigningKey) -> Result<(T, Signature), ServiceError>,
    ) -> Result<Prepared<T>, ServiceError> {
        let key_ref = KeyRef::parse(key)?;
        let signer = self.keys.image_signer(&key_ref.id)?.clone();
        let key = SigningKey { id: key_ref.id, version: key_ref.version, signer };
        let (signed, signature) = sign(&key).await?;
        let made_by = KeyRef { id: key.id.clone(), version: Some(signature.version) };
        let key_version = self.keys.public_key(&made_by).await?;
        self.record_key_version(&key.id, key.signer.as_ref(), &key_version).await?;
        Ok(Prepared { key, signed, signature, public_key: key_version.public_key })
    }

    /// Runs the registry `write` of `record` between a pending row and its confirmation with its register
    /// entry (ARCHITECTURE.md's invariant 2): the row is removed if the write fails or wrote nothing new, and kept pending
    /// for reconciliation if the write failed half-way. Returns what was written and, when something was,
    /// the row id and where its entry landed. `signed` is what the signature is over (the simple-signing
    /// payload, or the DSSE envelope whose PAE was signed), kept with the pending row for evidence packs.
    pub(super) async fn write_recorded(
        &self,
        record: NewSignature,
        signed: &[u8],
        write: impl Future<Output = Result<WrittenSignature, WriteFailed>>,
    ) -> Result<(WrittenSignature, Option<(i64, LogPosition)>), ServiceError> {
        let (written, staged) = self.write_staged(record, signed, write).await?;
        let Some(staged) = staged else {
            return Ok((written, None));
        };
        let placed = self.log.append(staged.append).await?;
        Ok((written, Some((staged.id, placed.into()))))
    }

    /// [`write_recorded`](Self::write_recorded) up to its register entry: the row stays pending and the
    /// caller must append the returned confirmation (a batch appends all of its confirmations in one
    /// transaction; one it never appends is settled by reconciliation).
    pub(super) async fn write_staged(
        &self,
        record: NewSignature,
        signed: &[u8],
        write: impl Future<Output = Result<WrittenSignature, WriteFailed>>,
    ) -> Result<(WrittenSignature, Option<Staged>), ServiceError> {
        let id = self.store.begin_signed(&record, signed).await?;
        let outcome = count_registry_write;
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
        let append = confirm_signature(id, record, &written.manifest_digest);
        Ok((written, Some(Staged { id, append })))
    }

    /// Attaches `envelope` as a Sigstore bundle v0.3 referrer of `target` (cosign `--new-bundle-format`):
    /// the one bundle path of sign and attest.
    pub(super) async fn attach_bundle(
        &self,
        repo: &Repository,
        target: &Target,
        public_key: &PublicKey,
        envelope: Envelope,
        predicate_type: &str,
    ) -> Result<AttachedReferrer, OciError> {
        let referrer = bundle_referrer(target, public_key, envelope, predicate_type)?;
        let blobs: Vec<&[u8]> = referrer.blobs.iter().map(Vec::as_slice).collect();
        self.referrers.attach(repo, &target.digest, &referrer.manifest, &blobs).await
    }

    /// Attaches a referrer built beforehand (its manifest digest is then known before the write) once `go`
    /// says so (`None` when it says not to), under the fallback index's lock `held` from before, if any.
    pub(super) async fn attach_referrer(
        &self,
        repo: &Repository,
        target: &Target,
        referrer: &ReferrerToWrite,
        go: impl Future<Output = bool>,
        held: Option<crate::oci::HeldIndex>,
    ) -> Result<Option<AttachedReferrer>, OciError> {
        let blobs: Vec<&[u8]> = referrer.blobs.iter().map(Vec::as_slice).collect();
        self.referrers.attach_if(repo, &target.digest, &referrer.manifest, &blobs, go, held).await
    }
}

/// A pending row whose registry write landed, and the register entry that confirms it.
pub(super) struct Staged {
    pub id: i64,
    pub append: Append,
}

/// A referrer manifest of a subject and the blobs it names, ready to attach.
pub(super) struct ReferrerToWrite {
    pub manifest: Vec<u8>,
    pub blobs: Vec<Vec<u8>>,
}

impl ReferrerToWrite {
    /// The digest the manifest will have in the registry.
    pub(super) fn manifest_digest(&self) -> Digest {
        Digest::of(&self.manifest)
    }
}

/// `envelope` as a Sigstore bundle v0.3 referrer manifest of `target`, with its blobs.
pub(super) fn bundle_referrer(
    target: &Target,
    public_key: &PublicKey,
    envelope: Envelope,
    predicate_type: &str,
) -> Result<ReferrerToWrite, OciError> {
    let bundle_json = Bundle::dsse(public_key, envelope)?.to_json();
    let manifest = SignatureManifest::for_bundle(
        target.descriptor.clone(),
        &bundle_json,
        CONTENT_DSSE_ENVELOPE,
        Some(predicate_type),
    );
    Ok(ReferrerToWrite { manifest: manifest.to_json(), blobs: vec![bundle_json, EMPTY_JSON.to_vec()] })
}

/// Counts one registry write by its outcome (`written`, `already-there`, `partial`, `failed`).
pub(super) fn count_registry_write(outcome: &str) {
    metrics().registry_requests.get_or_create(&OutcomeLabels { outcome: outcome.into() }).inc();
}

/// A registry write that failed; `partial` when part of it landed (the row then waits for reconciliation).
pub(super) struct WriteFailed {
    pub error: ServiceError,
    pub partial: bool,
}

impl WriteFailed {
    /// A failure after the first part of the write landed.
    pub(super) fn partial(error: impl Into<ServiceError>) -> Self {
        Self { error: error.into(), partial: true }
    }
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
