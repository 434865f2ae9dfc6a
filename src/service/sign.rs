//! Sign one image digest with one key and store the signature in the image's registry, in every format asked
//! for (cosign's `.sig` layer, a Sigstore bundle referrer, a Notary Project JWS referrer), the writes
//! concurrent under one pending row and one register entry. Must not touch: how the formats are encoded
//! (`formats/`) or how the registry is written (`oci/`).

use serde_json::{Map, Value};

use super::record::{Claim, Origin, Prepared, ReferrerToWrite, Staged, WriteFailed, bundle_referrer};
use super::{LogPosition, Service, ServiceError, Target, repository_of};
use crate::config::SignFormat;
use crate::formats::in_toto::{COSIGN_SIGN_V1, Statement, Subject};
use crate::formats::notary::{self, EnvelopeFormat, JwsClaims, JwsToSign, ecdsa_der_to_fixed};
use crate::formats::referrer::EMPTY_JSON;
use crate::formats::signature_manifest::SignatureManifest;
use crate::formats::signature_manifest::{SignatureLayer, signature_tag};
use crate::formats::simple_signing::SimpleSigning;
use crate::formats::{Digest, ImageReference};
use crate::keys::{Algorithm, PublicKey};
use crate::oci::{AttachedReferrer, FoundSignature, HeldIndex, HeldSignatures, OciError, Repository, WrittenSignature};
use crate::store::{Artifact, RecordKind};

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
    /// The formats to write; `None`: the registry's `[registries.formats]`, else every one the key serves.
    pub formats: Option<Vec<SignFormat>>,
}

/// One artifact a sign wrote (or found: `created` false when this key had signed before).
#[derive(Debug, Clone)]
pub struct WrittenArtifact {
    pub format: SignFormat,
    /// The referrer manifest, or for `cosign` the `.sig` tag's manifest.
    pub manifest_digest: Digest,
    pub created: bool,
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
    /// Every artifact written, one per format.
    pub artifacts: Vec<WrittenArtifact>,
    /// Why a format asked for (or the default) was not written: not failures.
    pub notes: Vec<String>,
    /// For a recursive sign of an index: the outcome for each platform manifest.
    pub platforms: Vec<Self>,
}

impl Service {
    /// Signs the manifest `request.image` names (and with `recursive`, each platform manifest of an index).
    pub async fn sign(&self, request: SignRequest) -> Result<SignOutcome, ServiceError> {
        let image = ImageReference::parse(&request.image)?;
        let (targets, head_start) =
            tokio::join!(self.targets(&image, request.recursive), self.head_start(&image, &request));
        let targets = match targets {
            Ok(targets) => targets,
            Err(error) => {
                self.give_up(&image, head_start).await;
                return Err(error);
            }
        };
        let head_start = head_start?;
        let opened = head_start.uploads;
        let mut outcome = self.sign_digest(&request, &image, &targets.top, head_start).await?;
        if !outcome.created && opened > 0 {
            // Signed before: its blobs were there, so the sessions opened for them are left; cancel as many.
            self.signatures.registry().cancel_uploads(&repository_of(&image), opened).await;
        }
        let platforms =
            super::each_platform(&targets.platforms, |p| self.sign_digest(&request, &image, p, HeadStart::default()))
                .await;
        outcome.platforms = platforms.into_iter().collect::<Result<_, _>>()?;
        Ok(outcome)
    }

    /// What a sign starts while it reads the image (its [`HeadStart`]): the upload sessions its new blobs
    /// will take and, for an image named by digest, the `.sig` tag and the fallback index read under their
    /// locks (the `.sig` lock taken first, as every sign takes them). Writes nothing.
    /// A request its key, annotations or formats refuse gets none: it opens nothing that would be left over.
    async fn head_start(&self, image: &ImageReference, request: &SignRequest) -> Result<HeadStart, ServiceError> {
        let wanted = self.check_sign_request(request).and_then(|()| self.wanted_formats(request, &image.registry));
        let Ok(wanted) = wanted else {
            return Ok(HeadStart::default());
        };
        let repo = repository_of(image);
        let wants = |format| wanted.contains(&format);
        let cosign = wants(SignFormat::Cosign);
        let referrers = self.layouts.referrers(&image.registry);
        let (bundle, notation) = (referrers && wants(SignFormat::Bundle), referrers && wants(SignFormat::Notation));
        // The payload; the bundle; the Notary envelope; the empty config (every manifest's) unless known. A
        // session no upload of this sign takes (a format the key turns out not to serve) serves the next.
        let new = usize::from(cosign) + usize::from(bundle) + usize::from(notation);
        let maybe_known = [Digest::of(EMPTY_JSON)];
        let uploads = self.signatures.registry().open_uploads(&repo, new, &maybe_known);
        let reads = async {
            let Some(digest) = &image.digest else {
                return Ok((None, None));
            };
            let mut signatures = match cosign {
                true => Some(self.signatures.hold(&repo, digest).await?),
                false => None,
            };
            let mut index = match bundle || notation {
                true => self.referrers.hold_index(&repo, digest).await?,
                false => None,
            };
            let limits = &self.evidence_limits;
            let read_signatures = async {
                if let Some(held) = &mut signatures {
                    self.signatures.read_held(held, &repo, limits).await;
                }
            };
            let read_index = async {
                if let Some(held) = &mut index {
                    self.referrers.read_held(held, &repo).await;
                }
            };
            tokio::join!(read_signatures, read_index);
            Ok::<_, OciError>((signatures, index))
        };
        let (uploads, reads) = tokio::join!(uploads, reads);
        let head_start = HeadStart { digest: image.digest.clone(), signatures: None, index: None, uploads };
        match reads {
            Ok((signatures, index)) => Ok(HeadStart { signatures, index, ..head_start }),
            Err(error) => {
                self.give_up(image, Ok(head_start)).await;
                Err(error.into())
            }
        }
    }

    /// Lets go of a head start no sign will use: its locks, and the upload sessions it opened.
    async fn give_up(&self, image: &ImageReference, head_start: Result<HeadStart, ServiceError>) {
        let Ok(head_start) = head_start else { return };
        drop((head_start.signatures, head_start.index));
        self.signatures.registry().cancel_uploads(&repository_of(image), head_start.uploads).await;
    }

    /// Signs `digest` (a manifest in `image`'s repository) in every format chosen, writes to the registry,
    /// and records, in the order invariant 2 needs: one database row is pending during the registry writes
    /// (concurrent, one per format) and removed if none of them landed; if some landed and others failed,
    /// it stays pending for reconciliation.
    async fn sign_digest(
        &self,
        request: &SignRequest,
        image: &ImageReference,
        target: &Target,
        head_start: HeadStart,
    ) -> Result<SignOutcome, ServiceError> {
        let (mut outcome, staged) = self.sign_digest_staged(request, image, target, head_start).await?;
        if let Some(staged) = staged {
            outcome.log = Some(self.log.append(staged.append).await?.into());
        }
        Ok(outcome)
    }

    /// [`sign_digest`](Self::sign_digest) up to the register entry: the confirmation to append, when
    /// something was written, is returned beside the outcome (whose `log` is still `None`). A `head_start`
    /// made for another digest is let go.
    pub(super) async fn sign_digest_staged(
        &self,
        request: &SignRequest,
        image: &ImageReference,
        target: &Target,
        head_start: HeadStart,
    ) -> Result<(SignOutcome, Option<Staged>), ServiceError> {
        let digest = target.digest.clone();
        let (held_signatures, held_index) = match head_start.digest.as_ref() == Some(&digest) {
            true => (head_start.signatures, head_start.index),
            false => (None, None),
        };
        let identity = match &image.tag {
            Some(tag) => format!("{}:{tag}", image.repository_name()),
            None => image.repository_name(),
        };
        let wanted = self.wanted_formats(request, &image.registry)?;
        let prepared = self
            .prepare(&request.key, async |key| {
                let optional = annotations(request.annotations.clone())?;
                let payload = SimpleSigning::new(&identity, &digest, optional).to_bytes();
                let signature = key.sign(&payload).await?;
                Ok((payload, signature))
            })
            .await?;
        let (formats, notes) = self.servable_formats(&wanted, &prepared, &image.registry);
        if formats.is_empty() {
            return Err(ServiceError::Formats(format!("nothing to write: {}", notes.join("; "))));
        }
        let repo = repository_of(image);
        let payload = &prepared.signed;
        let wants = |format| formats.contains(&format);
        // Both envelopes are signed (and the Notary one timestamped) together, before anything is written.
        let bundle = async {
            match wants(SignFormat::Bundle) {
                true => self.bundle_of(&prepared, &repo, target).await.map(Some),
                false => Ok(None),
            }
        };
        let notation = async {
            match wants(SignFormat::Notation) {
                true => self.notation_of(&prepared, target).await.map(Some),
                false => Ok(None),
            }
        };
        let (bundle, notation) = tokio::join!(bundle, notation);
        let (bundle, notation) = (bundle?, notation?);
        let mut planned = Vec::new();
        if wants(SignFormat::Cosign) {
            planned.push(Artifact { format: SignFormat::Cosign.as_str().into(), manifest_digest: None });
        }
        if let Some(bundle) = &bundle {
            let manifest_digest = Some(bundle.manifest_digest().to_string());
            planned.push(Artifact { format: SignFormat::Bundle.as_str().into(), manifest_digest });
        }
        if let Some(notation) = &notation {
            let manifest_digest = Some(notation.manifest_digest().to_string());
            planned.push(Artifact { format: SignFormat::Notation.as_str().into(), manifest_digest });
        }
        let claim = Claim {
            kind: RecordKind::Signature,
            identity: identity.clone(),
            payload_digest: Digest::of(payload),
            signature_tag: signature_tag(&digest),
        };
        let origin = Origin { actor: &request.actor, source_addr: request.source_addr.as_deref() };
        let mut record = prepared.record(origin, image, &digest, claim);
        record.artifacts = planned;
        let layer = SignatureLayer::new(payload, &prepared.signature.bytes);
        // When this key already signed the digest (its `.sig` layer is there), nothing is written in any
        // format: the referrers upload their blobs while the `.sig` append reads the tag, and write their
        // manifests only once it has found no such layer.
        let (read, signed_before) = tokio::sync::watch::channel(None::<bool>);
        let cosign = async {
            if !wants(SignFormat::Cosign) {
                return None;
            }
            let public_key = &prepared.public_key;
            let already_signed =
                |existing: &FoundSignature| same_claim_by_key(existing, &identity, &digest, public_key);
            let limits = &self.evidence_limits;
            let heard = |signed: bool| {
                read.send_replace(Some(signed));
            };
            let held = match held_signatures {
                Some(held) => held,
                None => match self.signatures.hold(&repo, &digest).await {
                    Ok(held) => held,
                    Err(error) => {
                        drop(read);
                        return Some(Err(error));
                    }
                },
            };
            let appended =
                self.signatures.append_held(held, &repo, payload, layer, already_signed, limits, heard).await;
            drop(read);
            Some(appended)
        };
        let go = async || match wants(SignFormat::Cosign) {
            true => matches!(signed_before.clone().wait_for(Option::is_some).await.as_deref(), Ok(Some(false))),
            false => true,
        };
        let attach = async |referrer: &Option<ReferrerToWrite>, held: Option<HeldIndex>| match referrer {
            Some(referrer) => self.attach_referrer(&repo, target, referrer, go(), held).await.transpose(),
            None => None,
        };
        // The fallback index read ahead goes to the bundle's attach (the Notary one's, without a bundle).
        let (bundle_index, notation_index) = match bundle.is_some() {
            true => (held_index, None),
            false => (None, held_index),
        };
        let write = async {
            let (cosign, bundle, notation) =
                tokio::join!(cosign, attach(&bundle, bundle_index), attach(&notation, notation_index));
            joined_writes(&digest, cosign, [(SignFormat::Bundle, bundle), (SignFormat::Notation, notation)])
        };
        let mut artifacts = Vec::new();
        let write = async {
            let (written, landed) = write.await?;
            artifacts = landed;
            Ok(written)
        };
        let (written, staged) = self.write_staged(record, payload, write).await?;
        let record_id = staged.as_ref().map(|s| s.id);
        let outcome = self.outcome(image, &digest, &identity, &prepared, written, Some((record_id, artifacts)), notes);
        Ok((outcome, staged))
    }

    /// What is wrong with `request` whatever image it names: its key (unknown, reserved, malformed), its
    /// annotations, an empty list of formats. A batch checks this once, before anything else.
    pub(super) fn check_sign_request(&self, request: &SignRequest) -> Result<(), ServiceError> {
        self.keys.image_signer(&crate::keys::KeyRef::parse(&request.key)?.id)?;
        annotations(request.annotations.clone())?;
        self.wanted_formats(request, "")?;
        Ok(())
    }

    /// The formats `request` asks for: its own list, else the registry's `[registries.formats]`, else all.
    fn wanted_formats(&self, request: &SignRequest, registry: &str) -> Result<Vec<SignFormat>, ServiceError> {
        let wanted = match &request.formats {
            Some(listed) if listed.is_empty() => {
                return Err(ServiceError::Formats(
                    "formats is empty: name at least one of cosign, bundle, notation".into(),
                ));
            }
            Some(listed) => listed.clone(),
            None => self.layouts.formats.get(registry).cloned().unwrap_or_else(|| SignFormat::ALL.to_vec()),
        };
        Ok(SignFormat::ALL.into_iter().filter(|f| wanted.contains(f)).collect())
    }

    /// Of `wanted`, the formats this key and registry can serve, and a note for each one skipped.
    fn servable_formats(
        &self,
        wanted: &[SignFormat],
        prepared: &Prepared<Vec<u8>>,
        registry: &str,
    ) -> (Vec<SignFormat>, Vec<String>) {
        let mut notes = Vec::new();
        let servable = wanted
            .iter()
            .copied()
            .filter(|format| match self.why_not(*format, prepared, registry) {
                Some(why) => {
                    notes.push(format!("{} not written: {why}", format.as_str()));
                    false
                }
                None => true,
            })
            .collect();
        (servable, notes)
    }

    /// Why `format` cannot be written with this key at `registry`, if it cannot.
    fn why_not(&self, format: SignFormat, prepared: &Prepared<Vec<u8>>, registry: &str) -> Option<String> {
        let referrers = self.layouts.referrers(registry);
        match format {
            SignFormat::Cosign => None,
            SignFormat::Bundle | SignFormat::Notation if !referrers => {
                Some(format!("registry {registry} is listed in [registries] referrers_off"))
            }
            SignFormat::Bundle => None,
            SignFormat::Notation => self.notation_refusal(prepared),
        }
    }

    /// The image signature in the bundle layout cosign v3 writes (docs/FORMATS.md §7): a DSSE envelope of a
    /// Statement v1 naming only the digest, predicate type `https://sigstore.dev/cosign/sign/v1`, as a
    /// Sigstore bundle referrer. Signed with the same key version as the `.sig` layer.
    async fn bundle_of(
        &self,
        prepared: &Prepared<Vec<u8>>,
        repo: &Repository,
        target: &Target,
    ) -> Result<ReferrerToWrite, ServiceError> {
        let subject = Subject::sha256(Some(&format!("{}/{}", repo.registry, repo.name)), &target.digest);
        let statement = Statement::v1(vec![subject], COSIGN_SIGN_V1, serde_json::json!({}));
        let key = prepared.key.at_version(prepared.signature.version);
        let (envelope, _) = key.sign_envelope(&statement).await?;
        Ok(bundle_referrer(target, &prepared.public_key, envelope, COSIGN_SIGN_V1)?)
    }

    /// Why this key version cannot sign a Notary Project signature, if it cannot. The Notary Project
    /// signature specification admits ECDSA on P-256/P-384/P-521 and RSA only, with an X.509 chain.
    fn notation_refusal(&self, prepared: &Prepared<Vec<u8>>) -> Option<String> {
        let id = &prepared.key.id;
        if prepared.public_key.algorithm == Algorithm::Ed25519 {
            return Some(format!(
                "key {id} is Ed25519; the Notary Project signature specification allows ECDSA P-256/P-384/P-521 \
                 and RSA keys only"
            ));
        }
        match self.keys.certificate_chain(id, prepared.signature.version) {
            Some(_) => None,
            None => Some(format!(
                "key {id} version {} has no X.509 certificate chain ([[keys]] certificate_chain or [ca]); a Notary \
                 Project signature carries one",
                prepared.signature.version
            )),
        }
    }

    /// A Notary Project signature of `target` (`formats::notary`): a JWS envelope (`notary.x509` scheme)
    /// signed ES256 by the same key version, with its chain and, with `[tsa]`, an RFC 3161 countersignature
    /// over the signature value, as a referrer of artifact type `application/vnd.cncf.notary.signature`.
    /// It is made before the pending row, so a TSA failure fails the sign with nothing written.
    async fn notation_of(
        &self,
        prepared: &Prepared<Vec<u8>>,
        target: &Target,
    ) -> Result<ReferrerToWrite, ServiceError> {
        let version = prepared.signature.version;
        let Some(chain) = self.keys.certificate_chain(&prepared.key.id, version) else {
            return Err(ServiceError::Formats(format!("key {} has no certificate chain", prepared.key.id)));
        };
        let signing_time =
            time::OffsetDateTime::now_utc().replace_nanosecond(0).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        let claims = JwsClaims {
            target: &target.descriptor,
            algorithm: notary::Algorithm::Es256,
            signing_time,
            expiry: self.layouts.notation_expiry.map(|after| signing_time + after),
        };
        let jws = JwsToSign::new(&claims)?;
        let signature = prepared.key.at_version(version).sign(&jws.signing_input()).await?;
        let fixed = ecdsa_der_to_fixed(notary::Algorithm::Es256, &signature.bytes)?;
        let timestamp = self.timestamp(&fixed).await?;
        let envelope = jws.finish(&fixed, chain.der(), SIGNING_AGENT, timestamp.as_deref());
        let created = time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).ok();
        let manifest = SignatureManifest::for_notary_signature(
            target.descriptor.clone(),
            EnvelopeFormat::Jws,
            &envelope,
            chain.der(),
            created.as_deref(),
        );
        Ok(ReferrerToWrite { manifest: manifest.to_json(), blobs: vec![envelope, EMPTY_JSON.to_vec()] })
    }

    #[allow(clippy::too_many_arguments)]
    fn outcome(
        &self,
        image: &ImageReference,
        digest: &Digest,
        identity: &str,
        prepared: &Prepared<Vec<u8>>,
        written: WrittenSignature,
        recorded: Option<(Option<i64>, Vec<WrittenArtifact>)>,
        notes: Vec<String>,
    ) -> SignOutcome {
        let (record_id, artifacts) = recorded.unwrap_or_default();
        let artifacts = match artifacts.is_empty() {
            true => vec![WrittenArtifact {
                format: SignFormat::Cosign,
                manifest_digest: written.manifest_digest.clone(),
                created: false,
            }],
            false => artifacts,
        };
        SignOutcome {
            image: image.with_digest(digest.clone()),
            digest: digest.clone(),
            identity: identity.to_owned(),
            key_id: prepared.key.id.clone(),
            key_version: prepared.signature.version,
            algorithm: prepared.public_key.algorithm.as_str(),
            signature_tag: written.tag,
            manifest_digest: written.manifest_digest,
            created: written.created,
            record_id,
            log: None,
            artifacts,
            notes,
            platforms: Vec::new(),
        }
    }
}

/// What a sign starts while it reads the image: the upload sessions it opened (its blobs' uploads take them
/// once the image is known and its pending row durable) and, for an image named by digest, the locks on that
/// digest's `.sig` tag and fallback index with what was read under them. Nothing is written before the image
/// has answered: a sign of an image that is not there cancels the sessions and lets the locks go.
#[derive(Default)]
pub(super) struct HeadStart {
    /// The digest the locks and reads are about.
    digest: Option<Digest>,
    signatures: Option<HeldSignatures>,
    index: Option<HeldIndex>,
    /// How many upload sessions were opened.
    uploads: usize,
}

/// `io.cncf.notary.signingAgent` of the Notary Project signatures notarium writes.
const SIGNING_AGENT: &str = concat!("notarium/", env!("CARGO_PKG_VERSION"));

/// The outcome of the concurrent writes: the `.sig` write (when asked) and each referrer's. Fails
/// non-partially when nothing landed, partially when some did and another failed.
fn joined_writes<const N: usize>(
    digest: &Digest,
    cosign: Option<Result<WrittenSignature, OciError>>,
    referrers: [(SignFormat, Option<Result<AttachedReferrer, OciError>>); N],
) -> Result<(WrittenSignature, Vec<WrittenArtifact>), WriteFailed> {
    let mut landed = Vec::new();
    let mut failure = None;
    let mut sig = None;
    match cosign {
        Some(Ok(written)) => {
            let manifest_digest = written.manifest_digest.clone();
            landed.push(WrittenArtifact { format: SignFormat::Cosign, manifest_digest, created: written.created });
            sig = Some(written);
        }
        Some(Err(e)) => failure = Some(e),
        None => {}
    }
    for (format, outcome) in referrers {
        match outcome {
            Some(Ok(attached)) => {
                landed.push(WrittenArtifact { format, manifest_digest: attached.manifest_digest, created: true })
            }
            Some(Err(e)) => failure = failure.or(Some(e)),
            None => {}
        }
    }
    match (failure, landed.first()) {
        (Some(error), None) => Err(error.into()),
        (Some(error), Some(_)) => Err(WriteFailed::partial(error)),
        (None, None) => {
            Err(WriteFailed::from(OciError::Format(crate::formats::FormatError::MalformedDigest(digest.to_string()))))
        }
        (None, Some(first)) => {
            let created = landed.iter().any(|a| a.created);
            let written = sig.map_or_else(
                || WrittenSignature { tag: String::new(), manifest_digest: first.manifest_digest.clone(), created },
                |sig| WrittenSignature { created, ..sig },
            );
            Ok((written, landed))
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn digest() -> Digest {
        Digest::of(b"image")
    }

    fn sig() -> Option<Result<WrittenSignature, OciError>> {
        let written =
            WrittenSignature { tag: signature_tag(&digest()), manifest_digest: Digest::of(b"sig"), created: true };
        Some(Ok(written))
    }

    fn attached() -> Option<Result<AttachedReferrer, OciError>> {
        Some(Ok(AttachedReferrer { manifest_digest: Digest::of(b"referrer"), via_referrers_api: false }))
    }

    fn refused() -> OciError {
        OciError::Refused { registry: "r.example".into(), operation: "put".into(), status: 500, codes: Vec::new() }
    }

    #[test]
    fn all_writes_landing_list_every_artifact_with_the_sig_manifest_first() {
        let (written, landed) =
            joined_writes(&digest(), sig(), [(SignFormat::Bundle, attached()), (SignFormat::Notation, attached())])
                .unwrap_or_else(|_| panic!("all landed"));
        assert_eq!(written.manifest_digest, Digest::of(b"sig"));
        let formats: Vec<SignFormat> = landed.iter().map(|a| a.format).collect();
        assert_eq!(formats, SignFormat::ALL);
    }

    #[test]
    fn a_failure_after_another_write_landed_is_partial_and_keeps_the_row_pending() {
        let outcome = joined_writes(&digest(), sig(), [(SignFormat::Notation, Some(Err(refused())))]);
        assert!(matches!(outcome, Err(WriteFailed { partial: true, .. })));
        let outcome = joined_writes(&digest(), Some(Err(refused())), [(SignFormat::Bundle, attached())]);
        assert!(matches!(outcome, Err(WriteFailed { partial: true, .. })));
    }

    #[test]
    fn when_no_write_landed_the_failure_is_not_partial() {
        let outcome = joined_writes(&digest(), Some(Err(refused())), [(SignFormat::Bundle, Some(Err(refused())))]);
        assert!(matches!(outcome, Err(WriteFailed { partial: false, .. })));
    }

    #[test]
    fn without_a_sig_layer_the_first_referrer_stands_for_the_sign() {
        let (written, landed) =
            joined_writes(&digest(), None, [(SignFormat::Notation, attached())]).unwrap_or_else(|_| panic!("landed"));
        assert_eq!((written.tag.as_str(), written.manifest_digest), ("", Digest::of(b"referrer")));
        assert_eq!(landed.len(), 1);
    }
}
