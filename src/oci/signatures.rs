//! The cosign tag-scheme signature store: read every signature (`.sig`) or attestation (`.att`) on a digest,
//! and append one without ever dropping another writer's layer.

use std::sync::Arc;

use super::subject_tags::SubjectTags;
use super::{OciError, Registry, Repository};
use crate::formats::Digest;
use crate::formats::signature_manifest::{
    AttestationLayer, Descriptor, OCI_MANIFEST, SignatureLayer, SignatureManifest, attestation_tag, signature_tag,
};

/// A signature layer read back from a registry: still unverified.
#[derive(Debug, Clone)]
pub struct StoredSignature {
    pub payload: Vec<u8>,
    pub signature: Vec<u8>,
}

/// Where a signature now lives.
#[derive(Debug, Clone)]
pub struct WrittenSignature {
    pub tag: String,
    pub manifest_digest: Digest,
    /// False when an equivalent signature was already there and nothing was written.
    pub created: bool,
}

/// Reads and appends `.sig` manifests; appends to one subject are serialized inside this process.
pub struct SignatureStore {
    registry: Arc<dyn Registry>,
    tags: SubjectTags,
}

impl SignatureStore {
    pub fn new(registry: Arc<dyn Registry>) -> Self {
        Self { registry, tags: SubjectTags::default() }
    }

    pub fn registry(&self) -> &Arc<dyn Registry> {
        &self.registry
    }

    /// Every simple-signing layer under `digest`'s `.sig` tag with its payload, and the digest of the
    /// manifest holding them (`None` when the digest has no signatures).
    pub async fn read(
        &self,
        repo: &Repository,
        digest: &Digest,
    ) -> Result<(Option<Digest>, Vec<StoredSignature>), OciError> {
        let (manifest, signatures) = self.read_tag(repo, &signature_tag(digest)).await?;
        Ok((manifest.map(|(_, d)| d), signatures))
    }

    /// Appends `layer` (whose blob is `payload`) unless `already_signed` finds an equivalent layer.
    pub async fn append(
        &self,
        repo: &Repository,
        digest: &Digest,
        payload: &[u8],
        layer: SignatureLayer,
        already_signed: impl Fn(&StoredSignature) -> bool,
    ) -> Result<WrittenSignature, OciError> {
        let tag = signature_tag(digest);
        let (tag_ref, layer, already_signed) = (&tag, &layer, &already_signed);
        self.tags
            .update(repo, digest, &tag, || async move {
                self.append_once(repo, tag_ref, payload, layer, already_signed).await
            })
            .await
    }

    /// One read-append-write of `tag`; `None` if another writer replaced the manifest meanwhile.
    async fn append_once(
        &self,
        repo: &Repository,
        tag: &str,
        payload: &[u8],
        layer: &SignatureLayer,
        already_signed: impl Fn(&StoredSignature) -> bool,
    ) -> Result<Option<WrittenSignature>, OciError> {
        let (existing, signatures) = self.read_tag(repo, tag).await?;
        if signatures.iter().any(already_signed) {
            let manifest_digest = existing.expect("signatures come from a manifest").1;
            return Ok(Some(WrittenSignature { tag: tag.to_owned(), manifest_digest, created: false }));
        }
        let mut layers = existing.map(|(m, _)| m.layers).unwrap_or_default();
        layers.push(layer.descriptor.clone());
        let written = self.put_and_check(repo, tag, payload, layers).await?;
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
            .update(repo, digest, &tag, || async move {
                self.append_attestation_once(repo, tag_ref, envelope_json, layer).await
            })
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
        let written = self.put_and_check(repo, tag, envelope_json, layers).await?;
        Ok(written.map(|manifest_digest| WrittenSignature { tag: tag.to_owned(), manifest_digest, created: true }))
    }

    /// Every envelope under `digest`'s `.att` tag with the predicate type its layer announces (unverified),
    /// and the digest of the manifest holding them.
    pub async fn read_attestations(
        &self,
        repo: &Repository,
        digest: &Digest,
    ) -> Result<(Option<Digest>, Vec<(Option<String>, Vec<u8>)>), OciError> {
        let Some(manifest) = self.registry.get_manifest(repo, &attestation_tag(digest)).await? else {
            return Ok((None, Vec::new()));
        };
        let mut envelopes = Vec::new();
        for layer in SignatureManifest::parse(&manifest.bytes)?.attestation_layers() {
            let blob = self.registry.get_blob(repo, &Digest::parse(&layer.descriptor.digest)?).await?;
            envelopes.push((layer.predicate_type().map(str::to_owned), blob));
        }
        Ok((Some(manifest.digest), envelopes))
    }

    /// Puts a manifest of `layers` (the newest layer's blob is `blob`) under `tag` and reads the tag back;
    /// `None` when another writer's manifest replaced ours meanwhile.
    async fn put_and_check(
        &self,
        repo: &Repository,
        tag: &str,
        blob: &[u8],
        layers: Vec<Descriptor>,
    ) -> Result<Option<Digest>, OciError> {
        let encoded = SignatureManifest::encode(layers);
        tokio::try_join!(self.registry.put_blob(repo, blob), self.registry.put_blob(repo, &encoded.config))?;
        let written = self.registry.put_manifest(repo, tag, OCI_MANIFEST, &encoded.manifest).await?.digest;
        let now = self.registry.get_manifest(repo, tag).await?;
        Ok(now.is_some_and(|m| m.digest == written).then_some(written))
    }

    async fn read_tag(
        &self,
        repo: &Repository,
        tag: &str,
    ) -> Result<(Option<(SignatureManifest, Digest)>, Vec<StoredSignature>), OciError> {
        let Some(manifest) = self.registry.get_manifest(repo, tag).await? else {
            return Ok((None, Vec::new()));
        };
        let parsed = SignatureManifest::parse(&manifest.bytes)?;
        let mut signatures = Vec::new();
        for layer in parsed.signature_layers() {
            let Ok(signature) = layer.signature() else {
                continue;
            };
            let blob_digest = Digest::parse(&layer.descriptor.digest)?;
            let payload = self.registry.get_blob(repo, &blob_digest).await?;
            signatures.push(StoredSignature { payload, signature });
        }
        Ok((Some((parsed, manifest.digest)), signatures))
    }
}
