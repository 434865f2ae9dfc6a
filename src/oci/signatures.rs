//! The cosign tag-scheme signature layout: read every signature (`.sig`) or attestation (`.att`) on a digest,
//! and append one without ever dropping another writer's layer.

use std::sync::Arc;

use super::subject_tags::SubjectTags;
use super::{Gathered, OciError, Registry, Repository, read_blobs, skip_reason};
use crate::config::EvidenceLimits;
use crate::formats::Digest;
use crate::formats::cosign_layer::CosignAnnotations;
use crate::formats::referrer::EMPTY_JSON;
use crate::formats::signature_manifest::{
    AttestationLayer, Descriptor, OCI_MANIFEST, SignatureLayer, SignatureManifest, attestation_tag, signature_tag,
};
use crate::store::{HeldLock, SubjectLocks};

/// An attestation layer read back from a registry: the predicate type its layer announces, the DSSE
/// envelope and cosign's certificate, chain, Rekor bundle and timestamp annotations, still unverified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAttestation {
    pub predicate_type: Option<String>,
    pub envelope: Vec<u8>,
    pub sigstore: CosignAnnotations,
}

/// A signature layer read back from a registry: still unverified.
#[derive(Debug, Clone)]
pub struct FoundSignature {
    pub payload: Vec<u8>,
    pub signature: Vec<u8>,
    /// cosign's certificate, chain, Rekor bundle and timestamp annotations, when the layer has them.
    pub sigstore: CosignAnnotations,
}

/// Where a signature now lives.
#[derive(Debug, Clone)]
pub struct WrittenSignature {
    pub tag: String,
    pub manifest_digest: Digest,
    /// False when an equivalent signature was already there and nothing was written.
    pub created: bool,
}

/// Reads and appends `.sig` and `.att` manifests; appends to one tag are serialized through `locks`.
pub struct TagLayout {
    registry: Arc<dyn Registry>,
    tags: SubjectTags,
}

impl TagLayout {
    /// `locks` are the store's (shared by every process on its database); a process that only reads can
    /// pass in-process ones.
    pub fn new(registry: Arc<dyn Registry>, locks: Arc<dyn SubjectLocks>) -> Self {
        Self { registry, tags: SubjectTags::new(locks) }
    }

    pub fn registry(&self) -> &Arc<dyn Registry> {
        &self.registry
    }

    /// The simple-signing layers under `digest`'s `.sig` tag with their payloads, within `limits` (each
    /// layer or blob beyond them skipped with a reason), and the digest of the manifest holding them
    /// (`None` when the digest has no signatures).
    pub async fn read(
        &self,
        repo: &Repository,
        digest: &Digest,
        limits: &EvidenceLimits,
    ) -> Result<(Option<Digest>, Gathered<FoundSignature>), OciError> {
        match self.evidence_manifest(repo, &signature_tag(digest), ".sig").await? {
            Evidence::Absent => Ok((None, Gathered::default())),
            Evidence::Unreadable(manifest, why) => Ok((manifest, Gathered::skipped(why))),
            Evidence::Found(manifest, parsed) => {
                Ok((Some(manifest), self.gather_signatures(repo, &parsed, limits).await))
            }
        }
    }

    /// Appends `layer` (whose blob is `payload`) unless `already_signed` finds an equivalent layer among
    /// those `limits` let it read. Every layer already there is kept, read or not. `on_read` hears, as soon
    /// as the tag has been read under its lock, whether an equivalent layer is there (a sign writes its
    /// other formats only when it is not).
    #[allow(clippy::too_many_arguments)]
    pub async fn append(
        &self,
        repo: &Repository,
        digest: &Digest,
        payload: &[u8],
        layer: SignatureLayer,
        already_signed: impl Fn(&FoundSignature) -> bool,
        limits: &EvidenceLimits,
        on_read: impl Fn(bool),
    ) -> Result<WrittenSignature, OciError> {
        let held = self.hold(repo, digest).await?;
        self.append_held(held, repo, payload, layer, already_signed, limits, on_read).await
    }

    /// Takes the lock on `digest`'s `.sig` tag for an [`append_held`](Self::append_held) to come; dropping
    /// what it returns releases the lock.
    pub async fn hold(&self, repo: &Repository, digest: &Digest) -> Result<HeldSignatures, OciError> {
        let tag = signature_tag(digest);
        let lock = self.tags.hold(repo, &tag).await?;
        Ok(HeldSignatures { lock, tag, read: None })
    }

    /// Reads the tag `held` locks (its manifest and the signatures among its first layers, as `limits`
    /// allow), for the append's first attempt: what a sign does while it reads the image.
    pub async fn read_held(&self, held: &mut HeldSignatures, repo: &Repository, limits: &EvidenceLimits) {
        held.read = Some(self.read_tag(repo, &held.tag, limits).await);
    }

    /// [`append`](Self::append) under a lock taken before, its first attempt on the tag as read under it if
    /// it was; the lock is released at the end.
    #[allow(clippy::too_many_arguments)]
    pub async fn append_held(
        &self,
        held: HeldSignatures,
        repo: &Repository,
        payload: &[u8],
        layer: SignatureLayer,
        already_signed: impl Fn(&FoundSignature) -> bool,
        limits: &EvidenceLimits,
        on_read: impl Fn(bool),
    ) -> Result<WrittenSignature, OciError> {
        let HeldSignatures { lock, tag, read } = held;
        let mut read = read;
        let (tag_ref, layer, already_signed, on_read) = (&tag, &layer, &already_signed, &on_read);
        SubjectTags::update_held(lock, repo, &tag, || {
            let read = read.take();
            async move { self.append_once(repo, tag_ref, payload, layer, already_signed, limits, on_read, read).await }
        })
        .await
    }

    /// One read-append-write of `tag`; `None` if another writer replaced the manifest meanwhile. The read
    /// (unless it was made already: `read`) runs together with the upload of the payload and of the shared
    /// empty config (once per repository: the registry client remembers it).
    #[allow(clippy::too_many_arguments)]
    async fn append_once(
        &self,
        repo: &Repository,
        tag: &str,
        payload: &[u8],
        layer: &SignatureLayer,
        already_signed: impl Fn(&FoundSignature) -> bool,
        limits: &EvidenceLimits,
        on_read: impl Fn(bool),
        read: Option<Result<ReadTag, OciError>>,
    ) -> Result<Option<WrittenSignature>, OciError> {
        let read = async {
            match read {
                Some(read) => read,
                None => self.read_tag(repo, tag, limits).await,
            }
        };
        let (read, payload_up, config_up) =
            tokio::join!(read, self.registry.put_blob(repo, payload), self.registry.put_blob(repo, EMPTY_JSON));
        let (existing, signatures) = read?;
        let signed = signatures.items.iter().any(already_signed);
        on_read(signed);
        if signed {
            let manifest_digest = existing.expect("signatures come from a manifest").1;
            return Ok(Some(WrittenSignature { tag: tag.to_owned(), manifest_digest, created: false }));
        }
        payload_up?;
        config_up?;
        let mut layers = existing.map(|(manifest, _)| manifest.layers).unwrap_or_default();
        layers.push(layer.descriptor.clone());
        let manifest = SignatureManifest::encode_signatures(layers);
        let written = self.put_and_check(repo, tag, &manifest).await?;
        Ok(written.map(|manifest_digest| WrittenSignature { tag: tag.to_owned(), manifest_digest, created: true }))
    }

    /// Appends a DSSE envelope under `digest`'s `.att` tag (cosign's attestation layout) unless the very same
    /// envelope is already there.
    pub async fn append_attestation(
        &self,
        repo: &Repository,
        digest: &Digest,
        envelope_json: &[u8],
        predicate_type: &str,
    ) -> Result<WrittenSignature, OciError> {
        let layer = AttestationLayer::new(envelope_json, predicate_type);
        let tag = attestation_tag(digest);
        let (tag_ref, layer) = (&tag, &layer);
        self.tags
            .update(
                repo,
                &tag,
                || async move { self.append_attestation_once(repo, tag_ref, envelope_json, layer).await },
            )
            .await
    }

    async fn append_attestation_once(
        &self,
        repo: &Repository,
        tag: &str,
        envelope_json: &[u8],
        layer: &AttestationLayer,
    ) -> Result<Option<WrittenSignature>, OciError> {
        let existing = self.registry.get_manifest(repo, tag).await?;
        let mut layers = match &existing {
            Some(m) => SignatureManifest::parse(&m.bytes)?.layers,
            None => Vec::new(),
        };
        if let (Some(m), true) = (&existing, layers.iter().any(|l| l.digest == layer.descriptor.digest)) {
            return Ok(Some(WrittenSignature {
                tag: tag.to_owned(),
                manifest_digest: m.digest.clone(),
                created: false,
            }));
        }
        layers.push(layer.descriptor.clone());
        let encoded = SignatureManifest::encode(layers);
        tokio::try_join!(self.registry.put_blob(repo, envelope_json), self.registry.put_blob(repo, &encoded.config))?;
        let written = self.put_and_check(repo, tag, &encoded.manifest).await?;
        Ok(written.map(|manifest_digest| WrittenSignature { tag: tag.to_owned(), manifest_digest, created: true }))
    }

    /// The envelopes under `digest`'s `.att` tag with the predicate type each layer announces (unverified),
    /// within `limits` (each layer or blob beyond them skipped with a reason), and the digest of the
    /// manifest holding them.
    pub async fn read_attestations(
        &self,
        repo: &Repository,
        digest: &Digest,
        limits: &EvidenceLimits,
    ) -> Result<(Option<Digest>, Gathered<StoredAttestation>), OciError> {
        let (manifest, parsed) = match self.evidence_manifest(repo, &attestation_tag(digest), ".att").await? {
            Evidence::Absent => return Ok((None, Gathered::default())),
            Evidence::Unreadable(manifest, why) => return Ok((manifest, Gathered::skipped(why))),
            Evidence::Found(manifest, parsed) => (manifest, parsed),
        };
        let mut gathered = Gathered { items: Vec::new(), skipped: too_many_layers(".att", &parsed, limits) };
        let layers: Vec<_> = first_layers(&parsed, limits).attestation_layers().collect();
        let digests = layers.iter().map(|l| l.descriptor.digest.clone()).collect();
        let blobs = read_blobs(self.registry.as_ref(), repo, digests, limits.max_envelope_bytes).await;
        for (layer, blob) in layers.iter().zip(blobs) {
            match blob {
                Ok(envelope) => gathered.items.push(StoredAttestation {
                    predicate_type: layer.predicate_type().map(str::to_owned),
                    envelope,
                    sigstore: CosignAnnotations::from_layer(layer.descriptor.annotations.as_ref()),
                }),
                Err(e) => gathered.skipped.push(skip_reason(&layer_name(&layer.descriptor, ".att"), &e)),
            }
        }
        Ok((Some(manifest), gathered))
    }

    /// The digest of the manifest under `tag` and whether one of its layers is `wanted`. Reads no blob,
    /// so it looks at every layer: how reconciliation finds a write it made itself.
    pub async fn find_layer(
        &self,
        repo: &Repository,
        tag: &str,
        wanted: impl Fn(&Descriptor) -> bool,
    ) -> Result<(Option<Digest>, bool), OciError> {
        let Some(manifest) = self.registry.get_manifest(repo, tag).await? else {
            return Ok((None, false));
        };
        let found = SignatureManifest::parse(&manifest.bytes)?.layers.iter().any(wanted);
        Ok((Some(manifest.digest), found))
    }

    /// Puts `manifest` (its blobs uploaded) under `tag` and reads the tag back; `None` when another writer's
    /// manifest replaced ours meanwhile. notarium's writers of `tag` wait for its lock, but a writer outside
    /// notarium (cosign) can overwrite it: the read-back is the only thing that catches that.
    async fn put_and_check(&self, repo: &Repository, tag: &str, manifest: &[u8]) -> Result<Option<Digest>, OciError> {
        let written = self.registry.put_manifest(repo, tag, OCI_MANIFEST, manifest).await?.digest;
        let now = self.registry.get_manifest(repo, tag).await?;
        Ok(now.is_some_and(|m| m.digest == written).then_some(written))
    }

    /// The manifest under `tag` and the signatures among its first layers, as `limits` allow: what an
    /// append reads before it adds a layer (it keeps every layer, read or not).
    async fn read_tag(&self, repo: &Repository, tag: &str, limits: &EvidenceLimits) -> Result<ReadTag, OciError> {
        let Some(manifest) = self.registry.get_manifest(repo, tag).await? else {
            return Ok((None, Gathered::default()));
        };
        let parsed = SignatureManifest::parse(&manifest.bytes)?;
        let signatures = self.gather_signatures(repo, &parsed, limits).await;
        Ok((Some((parsed, manifest.digest)), signatures))
    }

    /// The manifest under `tag` (a `kind` such as `.sig`) and its digest; unreadable (too large, malformed)
    /// with the reason in notarium's words.
    async fn evidence_manifest(&self, repo: &Repository, tag: &str, kind: &str) -> Result<Evidence, OciError> {
        let manifest = match self.registry.get_manifest(repo, tag).await {
            Ok(Some(manifest)) => manifest,
            Ok(None) => return Ok(Evidence::Absent),
            Err(OciError::TooLarge { limit, .. }) => {
                let why = format!("the {kind} manifest is larger than the limit of {limit} bytes; none of it was read");
                return Ok(Evidence::Unreadable(None, why));
            }
            Err(e) => return Err(e),
        };
        Ok(match SignatureManifest::parse(&manifest.bytes) {
            Ok(parsed) => Evidence::Found(manifest.digest, Box::new(parsed)),
            Err(_) => {
                let why = format!("the {kind} manifest {} is malformed; none of it was read", manifest.digest);
                Evidence::Unreadable(Some(manifest.digest), why)
            }
        })
    }

    /// The signature layers among the first `limits.max_layers` of `manifest`, each payload blob within
    /// `limits.max_payload_bytes`; every other layer skipped with a reason.
    async fn gather_signatures(
        &self,
        repo: &Repository,
        manifest: &SignatureManifest,
        limits: &EvidenceLimits,
    ) -> Gathered<FoundSignature> {
        let mut gathered = Gathered { items: Vec::new(), skipped: too_many_layers(".sig", manifest, limits) };
        let mut signed = Vec::new();
        for layer in first_layers(manifest, limits).signature_layers() {
            match layer.signature() {
                Ok(signature) => signed.push((layer, signature)),
                Err(_) => {
                    let name = layer_name(&layer.descriptor, ".sig");
                    gathered.skipped.push(format!("{name}: its signature annotation is missing or not base64"));
                }
            }
        }
        let digests = signed.iter().map(|(l, _)| l.descriptor.digest.clone()).collect();
        let blobs = read_blobs(self.registry.as_ref(), repo, digests, limits.max_payload_bytes).await;
        for ((layer, signature), blob) in signed.into_iter().zip(blobs) {
            match blob {
                Ok(payload) => {
                    let sigstore = CosignAnnotations::from_layer(layer.descriptor.annotations.as_ref());
                    gathered.items.push(FoundSignature { payload, signature, sigstore });
                }
                Err(e) => gathered.skipped.push(skip_reason(&layer_name(&layer.descriptor, ".sig"), &e)),
            }
        }
        gathered
    }
}

/// A `.sig` tag as an append read it: its manifest and digest (if there is one), and the signatures read.
type ReadTag = (Option<(SignatureManifest, Digest)>, Gathered<FoundSignature>);

/// The lock on a `.sig` tag taken ahead of an append, and the tag as read under it (if it was). Dropped, it
/// releases the lock.
pub struct HeldSignatures {
    lock: HeldLock,
    tag: String,
    read: Option<Result<ReadTag, OciError>>,
}

/// What is under a `.sig` or `.att` tag.
enum Evidence {
    Absent,
    /// The manifest (its digest, when it was read whole) cannot be used, and why.
    Unreadable(Option<Digest>, String),
    Found(Digest, Box<SignatureManifest>),
}

/// `manifest` cut to the layers a read may look at.
fn first_layers(manifest: &SignatureManifest, limits: &EvidenceLimits) -> SignatureManifest {
    let layers = manifest.layers.iter().take(limits.max_layers).cloned().collect();
    SignatureManifest::new(manifest.config.clone(), layers)
}

/// The reason the layers past `limits.max_layers` are not read, if there are any.
fn too_many_layers(kind: &str, manifest: &SignatureManifest, limits: &EvidenceLimits) -> Vec<String> {
    let (count, max) = (manifest.layers.len(), limits.max_layers);
    if count <= max {
        return Vec::new();
    }
    vec![format!("the {kind} manifest has {count} layers; only the first {max} were read")]
}

/// A layer of a `kind` manifest as a reason names it: by its digest if that is one, never by other text a
/// registry wrote.
fn layer_name(layer: &Descriptor, kind: &str) -> String {
    match Digest::parse(&layer.digest) {
        Ok(digest) => format!("layer {digest} of the {kind} manifest"),
        Err(_) => format!("a layer of the {kind} manifest with a malformed digest"),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::formats::signature_manifest::SIMPLE_SIGNING_LAYER;
    use crate::oci::fake_registry::{FakeRegistry, repo, subject as image};

    fn layout() -> (Arc<FakeRegistry>, TagLayout) {
        let registry = Arc::new(FakeRegistry::default());
        (registry.clone(), TagLayout::new(registry, Arc::new(crate::store::LocalSubjectLocks::default())))
    }

    /// Serves a manifest of `layers` under `tag`, with no check of what the layers name.
    fn serve(registry: &FakeRegistry, tag: &str, layers: Vec<Descriptor>) {
        registry.serve_manifest(tag, SignatureManifest::encode(layers).manifest);
    }

    fn signature_layer(payload: &[u8]) -> Descriptor {
        SignatureLayer::new(payload, b"not checked here").descriptor
    }

    #[tokio::test]
    async fn a_sig_manifest_past_the_layer_cap_is_read_up_to_the_cap_with_one_reason() {
        let (registry, store) = layout();
        registry.serve_blob(b"payload");
        serve(&registry, &signature_tag(&image()), vec![signature_layer(b"payload"); 10_000]);
        let (manifest, read) = store.read(&repo(), &image(), &EvidenceLimits::default()).await.unwrap();
        assert!(manifest.is_some());
        assert_eq!(read.items.len(), 64);
        assert_eq!(read.skipped, ["the .sig manifest has 10000 layers; only the first 64 were read"]);
        assert_eq!(*registry.blob_reads.lock().unwrap(), 64, "no blob past the cap is read");
    }

    #[tokio::test]
    async fn a_missing_oversized_or_misnamed_blob_is_skipped_with_a_reason_and_the_others_read() {
        let (registry, store) = layout();
        registry.serve_blob(b"small payload");
        registry.serve_blob(&[b'x'; 300]);
        let mut misnamed = signature_layer(b"small payload");
        misnamed.digest = "sha256:<b>registry text</b>".into();
        let mut unsigned = signature_layer(b"small payload");
        unsigned.annotations = None;
        let layers = vec![
            signature_layer(b"never uploaded"),
            signature_layer(&[b'x'; 300]),
            misnamed,
            unsigned,
            signature_layer(b"small payload"),
        ];
        serve(&registry, &signature_tag(&image()), layers);
        let limits = EvidenceLimits { max_payload_bytes: 100, ..Default::default() };
        let (_, read) = store.read(&repo(), &image(), &limits).await.unwrap();
        assert_eq!(read.items.iter().map(|s| s.payload.as_slice()).collect::<Vec<_>>(), [b"small payload"]);
        let (missing, large) = (Digest::of(b"never uploaded"), Digest::of(&[b'x'; 300]));
        assert_eq!(
            read.skipped,
            [
                format!(
                    "layer {} of the .sig manifest: its signature annotation is missing or not base64",
                    Digest::of(b"small payload")
                ),
                format!("layer {missing} of the .sig manifest: blob not found"),
                format!("layer {large} of the .sig manifest: larger than the limit of 100 bytes"),
                "a layer of the .sig manifest with a malformed digest: its digest is malformed".to_owned(),
            ]
        );
    }

    #[tokio::test]
    async fn an_att_manifest_is_read_within_the_layer_and_envelope_caps() {
        let (registry, store) = layout();
        let envelope = br#"{"payloadType":"t","payload":"","signatures":[]}"#;
        registry.serve_blob(envelope);
        registry.serve_blob(&[b' '; 2048]);
        let mut layers = vec![AttestationLayer::new(&[b' '; 2048], "big").descriptor];
        layers.extend(vec![AttestationLayer::new(envelope, "small").descriptor; 5]);
        serve(&registry, &attestation_tag(&image()), layers);
        let limits = EvidenceLimits { max_layers: 3, max_envelope_bytes: 1024, ..Default::default() };
        let (_, read) = store.read_attestations(&repo(), &image(), &limits).await.unwrap();
        let read_back: Vec<_> =
            read.items.iter().map(|a| (a.predicate_type.as_deref(), a.envelope.as_slice())).collect();
        assert_eq!(read_back, vec![(Some("small"), &envelope[..]); 2]);
        assert!(!read.items[0].sigstore.any());
        assert_eq!(
            read.skipped,
            [
                "the .att manifest has 6 layers; only the first 3 were read".to_owned(),
                format!(
                    "layer {} of the .att manifest: larger than the limit of 1024 bytes",
                    Digest::of(&[b' '; 2048])
                ),
            ]
        );
    }

    #[tokio::test]
    async fn a_malformed_evidence_manifest_is_a_reason_not_a_failure() {
        let (registry, store) = layout();
        registry.serve_manifest(&signature_tag(&image()), b"<html>registry text</html>".to_vec());
        let (manifest, read) = store.read(&repo(), &image(), &EvidenceLimits::default()).await.unwrap();
        let manifest = manifest.unwrap();
        assert!(read.items.is_empty());
        assert_eq!(read.skipped, [format!("the .sig manifest {manifest} is malformed; none of it was read")]);
    }

    #[tokio::test]
    async fn an_append_keeps_every_layer_past_the_cap() {
        let (registry, store) = layout();
        registry.serve_blob(b"other payload");
        serve(&registry, &signature_tag(&image()), vec![signature_layer(b"other payload"); 100]);
        let layer = SignatureLayer::new(b"ours", b"signature");
        let limits = EvidenceLimits { max_layers: 10, ..Default::default() };
        let written =
            store.append(&repo(), &image(), b"ours", layer.clone(), |_| false, &limits, |_| {}).await.unwrap();
        assert!(written.created);
        let now = SignatureManifest::parse(&registry.stored(&signature_tag(&image())).unwrap()).unwrap();
        assert_eq!(now.layers.len(), 101);
        assert_eq!(now.layers[100], layer.descriptor);
        assert!(now.layers[..100].iter().all(|l| l.media_type == SIMPLE_SIGNING_LAYER));
    }

    #[tokio::test]
    async fn an_append_under_the_lock_held_ahead_uses_the_read_made_under_it_and_shares_the_empty_config() {
        let (registry, store) = layout();
        registry.serve_blob(b"other payload");
        serve(&registry, &signature_tag(&image()), vec![signature_layer(b"other payload")]);
        let mut held = store.hold(&repo(), &image()).await.unwrap();
        store.read_held(&mut held, &repo(), &EvidenceLimits::default()).await;
        let reads = *registry.blob_reads.lock().unwrap();
        let layer = SignatureLayer::new(b"ours", b"signature");
        let limits = EvidenceLimits::default();
        let written =
            store.append_held(held, &repo(), b"ours", layer.clone(), |_| false, &limits, |_| {}).await.unwrap();
        assert!(written.created);
        assert_eq!(*registry.blob_reads.lock().unwrap(), reads, "the tag was not read again");
        let now = SignatureManifest::parse(&registry.stored(&signature_tag(&image())).unwrap()).unwrap();
        assert_eq!(now.layers, [signature_layer(b"other payload"), layer.descriptor]);
        assert_eq!(now.config.digest, Digest::of(b"{}").as_str());
        assert!(registry.blobs.lock().unwrap().contains_key(Digest::of(b"{}").as_str()));
        let _released = store.hold(&repo(), &image()).await.unwrap();
    }

    #[tokio::test]
    async fn find_layer_sees_a_layer_past_the_cap_without_reading_blobs() {
        let (registry, store) = layout();
        let mut layers = vec![signature_layer(b"other payload"); 100];
        layers.push(signature_layer(b"ours"));
        serve(&registry, &signature_tag(&image()), layers);
        let ours = Digest::of(b"ours");
        let (manifest, found) =
            store.find_layer(&repo(), &signature_tag(&image()), |l| l.digest == ours.as_str()).await.unwrap();
        assert!(manifest.is_some() && found);
        assert_eq!(*registry.blob_reads.lock().unwrap(), 0);
    }
}
