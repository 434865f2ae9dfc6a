//! OCI 1.1 referrers (docs/FORMATS.md §8, §9): the manifest that carries a Sigstore bundle as a referrer of an
//! image (cosign's bundle layout; the same [`SignatureManifest`] type as the tag scheme, with `subject`
//! and `artifactType`), and the referrers index behind the fallback tag `sha256-<hex>`, which clients
//! keep themselves on registries without the referrers API.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::bundle::BUNDLE_V0_3;
use super::signature_manifest::{Descriptor, OCI_INDEX, SignatureManifest};
use super::{Digest, FormatError};

pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
/// The blob behind the OCI empty descriptor (`sha256:44136fa…`, size 2).
pub const EMPTY_JSON: &[u8] = b"{}";
pub const BUNDLE_CONTENT_ANNOTATION: &str = "dev.sigstore.bundle.content";
pub const BUNDLE_PREDICATE_TYPE_ANNOTATION: &str = "dev.sigstore.bundle.predicateType";
pub const CREATED_ANNOTATION: &str = "org.opencontainers.image.created";

/// The fallback tag under which the referrers index of `digest` lives.
pub fn referrers_tag(digest: &Digest) -> String {
    format!("sha256-{}", digest.hex())
}

/// The referrer layout's side of the manifest type the tag scheme uses too.
impl SignatureManifest {
    /// The manifest for one bundle about `subject`. `content` is the bundle's
    /// [`content_annotation`](super::bundle::Bundle::content_annotation); the config is
    /// [`EMPTY_JSON`]. The config descriptor repeats the artifact type, as cosign writes it and as
    /// `cosign clean` looks for it.
    pub fn for_bundle(subject: Descriptor, bundle_json: &[u8], content: &str, predicate_type: Option<&str>) -> Self {
        let mut config = Descriptor::for_blob(OCI_EMPTY, EMPTY_JSON);
        config.artifact_type = Some(BUNDLE_V0_3.to_owned());
        let mut manifest = Self::new(config, vec![Descriptor::for_blob(BUNDLE_V0_3, bundle_json)]);
        manifest.annotations.insert(BUNDLE_CONTENT_ANNOTATION.to_owned(), content.to_owned());
        if let Some(predicate_type) = predicate_type {
            manifest.annotations.insert(BUNDLE_PREDICATE_TYPE_ANNOTATION.to_owned(), predicate_type.to_owned());
        }
        manifest.subject = Some(subject);
        manifest.artifact_type = Some(BUNDLE_V0_3.to_owned());
        manifest
    }

    /// The first layer holding a Sigstore bundle (any bundle version), as cosign looks for it.
    pub fn bundle_layer(&self) -> Option<&Descriptor> {
        self.bundle_layers().next()
    }

    /// The layers holding a Sigstore bundle (any bundle version), in order.
    pub fn bundle_layers(&self) -> impl Iterator<Item = &Descriptor> {
        self.layers.iter().filter(|l| l.media_type.starts_with("application/vnd.dev.sigstore.bundle"))
    }

    /// What a referrers index lists for this manifest: its `artifactType`, else its config's media type.
    pub fn index_artifact_type(&self) -> &str {
        self.artifact_type.as_deref().filter(|t| !t.is_empty()).unwrap_or(&self.config.media_type)
    }

    /// The referrers-index entry for this manifest, whose exact bytes are `manifest_bytes`.
    pub fn index_entry(&self, manifest_bytes: &[u8]) -> Descriptor {
        let mut entry = Descriptor::for_blob(&self.media_type, manifest_bytes);
        entry.artifact_type = Some(self.index_artifact_type().to_owned());
        entry.annotations = Some(self.annotations.clone()).filter(|a| !a.is_empty());
        entry
    }
}

/// The image index behind a referrers fallback tag; entries other writers put there are kept as they are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReferrersIndex {
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    #[serde(rename = "mediaType", default = "oci_index")]
    pub media_type: String,
    pub manifests: Vec<Descriptor>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn oci_index() -> String {
    OCI_INDEX.to_owned()
}

impl ReferrersIndex {
    /// What a missing fallback tag means.
    pub fn empty() -> Self {
        Self { schema_version: 2, media_type: oci_index(), manifests: Vec::new(), extra: Map::new() }
    }

    /// Parses the document behind a fallback tag, which must be an image index.
    pub fn parse(bytes: &[u8]) -> Result<Self, FormatError> {
        let invalid = |reason: String| FormatError::malformed("referrers index", reason);
        let index: Self = serde_json::from_slice(bytes).map_err(|e| invalid(e.to_string()))?;
        if index.media_type != OCI_INDEX {
            return Err(invalid(format!("media type {:?} is not an image index", index.media_type)));
        }
        Ok(index)
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("an index of strings and JSON values always serializes")
    }

    /// Lists the referrer manifest `manifest_bytes`, unless the index already lists its digest.
    /// Returns whether the index changed.
    pub fn merge(&mut self, manifest_bytes: &[u8]) -> Result<bool, FormatError> {
        let manifest = SignatureManifest::parse(manifest_bytes)?;
        if manifest.subject.is_none() {
            return Err(FormatError::malformed("referrer manifest", "it has no subject"));
        }
        let entry = manifest.index_entry(manifest_bytes);
        if self.manifests.iter().any(|m| m.digest == entry.digest) {
            return Ok(false);
        }
        self.manifests.push(entry);
        Ok(true)
    }

    /// Entries that may hold a bundle: cosign lists its bundle manifests under the empty config's
    /// media type, and some writers list none, so those have to be read to tell.
    pub fn bundle_candidates(&self) -> impl Iterator<Item = &Descriptor> {
        self.manifests.iter().filter(|m| matches!(m.artifact_type.as_deref(), None | Some(BUNDLE_V0_3 | OCI_EMPTY)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::bundle::CONTENT_DSSE_ENVELOPE;
    use crate::formats::in_toto::SLSA_PROVENANCE_V1;
    use crate::formats::signature_manifest::OCI_MANIFEST;

    const COSIGN_MANIFEST: &[u8] =
        include_bytes!("../../tests/fixtures/third-party/cosign-2.5/referrer-bundle-manifest.json");
    const COSIGN_BUNDLE: &[u8] =
        include_bytes!("../../tests/fixtures/third-party/cosign-2.5/referrer-bundle.sigstore.json");
    const COSIGN_INDEX: &[u8] =
        include_bytes!("../../tests/fixtures/third-party/cosign-2.5/referrers-fallback-index.json");
    const IMAGE_DIGEST: &str = "sha256:c4ea3eb55a9e77e1edfcec7acc64cab6650ef710811264fdd18cedeba6de5c83";

    fn image() -> Descriptor {
        Descriptor::new(OCI_MANIFEST, &Digest::parse(IMAGE_DIGEST).unwrap(), 401)
    }

    fn our_manifest() -> Vec<u8> {
        SignatureManifest::for_bundle(image(), b"{\"bundle\":1}", CONTENT_DSSE_ENVELOPE, Some(SLSA_PROVENANCE_V1))
            .to_json()
    }

    #[test]
    fn writes_the_same_referrer_manifest_bytes_as_cosign() {
        let mut ours =
            SignatureManifest::for_bundle(image(), COSIGN_BUNDLE, CONTENT_DSSE_ENVELOPE, Some(SLSA_PROVENANCE_V1));
        ours.annotations.insert(CREATED_ANNOTATION.to_owned(), "2026-11-23T07:11:30Z".to_owned());
        assert_eq!(ours.to_json(), COSIGN_MANIFEST);
        assert_eq!(ours.config.digest, Digest::of(EMPTY_JSON).as_str());
        assert_eq!(SignatureManifest::parse(COSIGN_MANIFEST).unwrap(), ours);
    }

    #[test]
    fn finds_the_bundle_layer_and_merges_only_manifests_with_a_subject() {
        let cosign = SignatureManifest::parse(COSIGN_MANIFEST).unwrap();
        assert_eq!(cosign.bundle_layer().unwrap().digest, Digest::of(COSIGN_BUNDLE).as_str());
        let mut json: Value = serde_json::from_slice(COSIGN_MANIFEST).unwrap();
        json.as_object_mut().unwrap().remove("subject");
        let error = ReferrersIndex::empty().merge(json.to_string().as_bytes()).unwrap_err();
        assert_eq!(error, FormatError::malformed("referrer manifest", "it has no subject"));
    }

    #[test]
    fn merge_keeps_other_writers_entries_and_copies_artifact_type_and_annotations() {
        let mut index = ReferrersIndex::parse(COSIGN_INDEX).unwrap();
        let cosign_entry = index.manifests[0].clone();
        let manifest = our_manifest();
        assert!(index.merge(&manifest).unwrap());

        let reparsed = ReferrersIndex::parse(&index.to_json()).unwrap();
        assert_eq!(reparsed.manifests[0], cosign_entry);
        let ours = &reparsed.manifests[1];
        assert_eq!(ours.digest, Digest::of(&manifest).as_str());
        assert_eq!((ours.media_type.as_str(), ours.size), (OCI_MANIFEST, manifest.len() as u64));
        assert_eq!(ours.artifact_type.as_deref(), Some(BUNDLE_V0_3));
        assert_eq!(ours.annotation(BUNDLE_CONTENT_ANNOTATION), Some(CONTENT_DSSE_ENVELOPE));
        assert_eq!(ours.annotation(BUNDLE_PREDICATE_TYPE_ANNOTATION), Some(SLSA_PROVENANCE_V1));
    }

    #[test]
    fn merge_skips_manifests_already_listed() {
        let mut index = ReferrersIndex::parse(COSIGN_INDEX).unwrap();
        assert!(!index.merge(COSIGN_MANIFEST).unwrap());
        assert!(index.merge(&our_manifest()).unwrap());
        let before = index.to_json();
        assert!(!index.merge(&our_manifest()).unwrap());
        assert_eq!(index.to_json(), before);
    }

    #[test]
    fn merge_falls_back_to_the_config_media_type_and_copies_every_annotation() {
        let mut manifest: Value = serde_json::from_slice(&our_manifest()).unwrap();
        manifest.as_object_mut().unwrap().remove("artifactType");
        manifest["annotations"]["org.example/extra"] = "x".into();
        let bytes = manifest.to_string().into_bytes();
        let mut index = ReferrersIndex::empty();
        index.merge(&bytes).unwrap();
        let entry = &index.manifests[0];
        assert_eq!(entry.artifact_type.as_deref(), Some(OCI_EMPTY));
        assert_eq!(entry.annotations.as_ref().unwrap().len(), 3);
        assert_eq!(entry.annotation("org.example/extra"), Some("x"));
        assert!(index.merge(b"{\"schemaVersion\":2}").is_err());
    }

    #[test]
    fn empty_index_is_what_a_missing_tag_means_and_a_manifest_is_not_an_index() {
        let empty = ReferrersIndex::empty().to_json();
        assert_eq!(
            empty,
            br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#
        );
        assert!(ReferrersIndex::parse(COSIGN_MANIFEST).is_err());
    }

    #[test]
    fn bundle_candidates_include_cosign_entries_under_the_empty_media_type() {
        let mut index = ReferrersIndex::parse(COSIGN_INDEX).unwrap();
        index.merge(&our_manifest()).unwrap();
        let mut other = Descriptor::new(OCI_MANIFEST, &Digest::of(b"sbom"), 4);
        other.artifact_type = Some("application/spdx+json".to_owned());
        index.manifests.push(other);
        assert_eq!(index.bundle_candidates().count(), 2);
    }

    #[test]
    fn referrers_tag_has_no_suffix() {
        assert_eq!(referrers_tag(&Digest::parse(IMAGE_DIGEST).unwrap()), IMAGE_DIGEST.replace(':', "-"));
    }
}
