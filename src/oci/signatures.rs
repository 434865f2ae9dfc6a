//! The cosign tag-scheme signature store: read every signature on a digest, and append one without
//! ever dropping another writer's layer.

use std::sync::Arc;

use super::subject_tags::SubjectTags;
use super::{OciError, Registry, Repository};
use crate::formats::Digest;
use crate::formats::signature_manifest::{OCI_MANIFEST, SignatureLayer, SignatureManifest, signature_tag};

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
        let encoded = SignatureManifest::encode(layers);
        tokio::try_join!(self.registry.put_blob(repo, payload), self.registry.put_blob(repo, &encoded.config))?;
        let written = self.registry.put_manifest(repo, tag, OCI_MANIFEST, &encoded.manifest).await?.digest;
        let now = self.registry.get_manifest(repo, tag).await?;
        let landed = now.is_some_and(|m| m.digest == written);
        Ok(landed.then(|| WrittenSignature { tag: tag.to_owned(), manifest_digest: written, created: true }))
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
