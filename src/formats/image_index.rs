//! Image indexes as a sign or attest of `recursive` reads them: the platform manifests an OCI image index
//! or a Docker manifest list names. (The manifest itself was read within the registry's size limit.)
//!
//! Owns: recognising an index and reading its `manifests`. Must not touch: the registry.

use serde_json::Value;

use super::signature_manifest::{Descriptor, OCI_INDEX};
use super::{Digest, FormatError};

/// The media type of a Docker (schema 2) manifest list.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// One manifest an index lists.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexEntry {
    pub digest: Digest,
    pub descriptor: Descriptor,
}

/// The manifests listed by `bytes`, served as `media_type`, when it is an image index (by its media type
/// or its own `mediaType`); none for an image manifest, or for an index without a `manifests` list.
pub fn index_entries(media_type: &str, bytes: &[u8]) -> Result<Vec<IndexEntry>, FormatError> {
    let parsed: Value = serde_json::from_slice(bytes).unwrap_or_default();
    let is_index = [OCI_INDEX, DOCKER_MANIFEST_LIST].contains(&media_type) || parsed["mediaType"] == OCI_INDEX;
    if !is_index {
        return Ok(Vec::new());
    }
    let listed = parsed["manifests"].as_array().cloned().unwrap_or_default();
    listed.into_iter().map(index_entry).collect()
}

fn index_entry(listed: Value) -> Result<IndexEntry, FormatError> {
    let descriptor: Descriptor =
        serde_json::from_value(listed).map_err(|e| FormatError::malformed("image index entry", e.to_string()))?;
    Ok(IndexEntry { digest: Digest::parse(&descriptor.digest)?, descriptor })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

    fn index(manifests: Value) -> Vec<u8> {
        serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests})).unwrap()
    }

    fn listed(digest: &Digest) -> Value {
        json!({"mediaType": MANIFEST, "size": 7, "digest": digest.to_string(), "platform": {"os": "linux"}})
    }

    #[test]
    fn an_index_lists_its_manifests_with_their_descriptors_as_written() {
        let (amd, arm) = (Digest::of(b"amd64"), Digest::of(b"arm64"));
        let bytes = index(json!([listed(&amd), listed(&arm)]));
        let entries = index_entries(OCI_INDEX, &bytes).unwrap();
        assert_eq!(entries.iter().map(|e| &e.digest).collect::<Vec<_>>(), [&amd, &arm]);
        assert_eq!(entries[0].descriptor.extra["platform"], json!({"os": "linux"}));
        assert_eq!(index_entries(DOCKER_MANIFEST_LIST, &bytes).unwrap().len(), 2);
        // Served under another media type, the document's own `mediaType` still makes it an index.
        assert_eq!(index_entries("application/octet-stream", &bytes).unwrap().len(), 2);
    }

    #[test]
    fn an_image_manifest_or_an_index_without_manifests_lists_nothing() {
        let manifest = serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": MANIFEST})).unwrap();
        assert_eq!(index_entries(MANIFEST, &manifest).unwrap(), []);
        assert_eq!(index_entries(OCI_INDEX, b"{\"schemaVersion\":2}").unwrap(), []);
        assert_eq!(index_entries(OCI_INDEX, b"not json").unwrap(), []);
    }

    #[test]
    fn a_malformed_entry_is_a_format_error() {
        let no_size = index(json!([{"mediaType": MANIFEST, "digest": Digest::of(b"x").to_string()}]));
        assert!(matches!(index_entries(OCI_INDEX, &no_size), Err(FormatError::MalformedDocument { .. })));
        let bad_digest = index(json!([{"mediaType": MANIFEST, "size": 1, "digest": "sha256:nope"}]));
        assert!(matches!(index_entries(OCI_INDEX, &bad_digest), Err(FormatError::MalformedDigest(_))));
    }
}
