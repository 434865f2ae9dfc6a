//! Everything attached to a digest, ours and other tools': the cosign `.sig` and `.att` tags and the OCI 1.1
//! referrers (registry API or fallback index). A listing, not a verification.

use super::{Service, ServiceError, repository_of};
use crate::formats::ImageReference;
use crate::formats::signature_manifest::{Descriptor, SignatureManifest, attestation_tag, signature_tag};
use crate::oci::Repository;

/// One cosign tag-scheme manifest and its layers.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct TagListing {
    pub tag: String,
    pub manifest_digest: String,
    pub layers: Vec<Descriptor>,
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Attached {
    pub image: String,
    pub digest: String,
    /// The `.sig` manifest (simple-signing layers), if any.
    pub signatures: Option<TagListing>,
    /// The `.att` manifest (DSSE envelope layers), if any.
    pub attestations: Option<TagListing>,
    /// OCI 1.1 referrers: Sigstore bundles, SBOMs, anything with this digest as its subject.
    pub referrers: Vec<Descriptor>,
}

impl Service {
    pub async fn attached(&self, image: &str) -> Result<Attached, ServiceError> {
        let image = ImageReference::parse(image)?;
        let digest = self.resolve(&image).await?;
        let repo = repository_of(&image);
        let (signatures, attestations, referrers) = tokio::try_join!(
            self.tag_listing(&repo, signature_tag(&digest)),
            self.tag_listing(&repo, attestation_tag(&digest)),
            async { Ok(self.referrers.list(&repo, &digest, self.evidence_limits.max_referrers).await?) },
        )?;
        Ok(Attached {
            image: image.with_digest(digest.clone()).to_string(),
            digest: digest.to_string(),
            signatures,
            attestations,
            referrers,
        })
    }

    async fn tag_listing(&self, repo: &Repository, tag: String) -> Result<Option<TagListing>, ServiceError> {
        let Some(manifest) = self.signatures.registry().get_manifest(repo, &tag).await? else {
            return Ok(None);
        };
        let layers = SignatureManifest::parse(&manifest.bytes)?.layers;
        Ok(Some(TagListing { tag, manifest_digest: manifest.digest.to_string(), layers }))
    }
}
