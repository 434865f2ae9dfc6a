//! The cosign "simple signing" payload that a tag-scheme signature signs (docs/FORMATS.md §2).
//!
//! containers/image (skopeo, podman, CRI-O) parses it strictly, so the writer emits exactly the keys
//! below, in cosign's order, and `optional` is always present (`null` when empty).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{Digest, FormatError};

/// The `type` every simple-signing payload carries.
pub const PAYLOAD_TYPE: &str = "cosign container image signature";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimpleSigning {
    pub critical: Critical,
    pub optional: Option<Map<String, Value>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Critical {
    pub identity: Identity,
    pub image: Image,
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Identity {
    #[serde(rename = "docker-reference")]
    pub docker_reference: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Image {
    #[serde(rename = "docker-manifest-digest")]
    pub docker_manifest_digest: String,
}

impl SimpleSigning {
    /// A payload claiming that `identity` (`host/repo` or `host/repo:tag`) is the image `digest`.
    pub fn new(identity: &str, digest: &Digest, optional: Option<Map<String, Value>>) -> Self {
        Self {
            critical: Critical {
                identity: Identity { docker_reference: identity.to_owned() },
                image: Image { docker_manifest_digest: digest.to_string() },
                kind: PAYLOAD_TYPE.to_owned(),
            },
            optional: optional.filter(|m| !m.is_empty()),
        }
    }

    /// The exact bytes that get signed and stored as the layer blob.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a payload of strings and JSON values always serializes")
    }

    /// Parses a payload and checks the fields every verifier relies on.
    pub fn parse(bytes: &[u8]) -> Result<Self, FormatError> {
        let invalid = |reason: String| FormatError::MalformedDocument { what: "simple-signing payload", reason };
        let payload: Self = serde_json::from_slice(bytes).map_err(|e| invalid(e.to_string()))?;
        if payload.critical.kind != PAYLOAD_TYPE {
            return Err(invalid(format!("unexpected type {:?}", payload.critical.kind)));
        }
        Digest::parse(&payload.critical.image.docker_manifest_digest)?;
        Ok(payload)
    }

    /// The digest the payload names (validated by [`SimpleSigning::parse`]).
    pub fn digest(&self) -> &str {
        &self.critical.image.docker_manifest_digest
    }

    pub fn identity(&self) -> &str {
        &self.critical.identity.docker_reference
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COSIGN_PAYLOAD: &[u8] =
        include_bytes!("../../tests/fixtures/third-party/cosign-2.5/simplesigning-payload.json");
    const SKOPEO_PAYLOAD: &[u8] =
        include_bytes!("../../tests/fixtures/third-party/skopeo-1.18/simplesigning-payload.json");

    /// Found by fuzz/ (target simple_signing): a long decimal in `optional` was read 1 ULP off, so the payload
    /// written back parsed to another number (serde_json's `float_roundtrip` reads numbers exactly).
    #[test]
    fn numbers_in_optional_survive_a_round_trip() {
        let digest = "sha256:adc8f37817693c24e66c59c90b31bbedc5f3d9a3b0f40b28f06fd54d4c024620";
        let payload = format!(
            r#"{{"critical":{{"identity":{{"docker-reference":"127.0.0.1:5055/demo/skopeo"}},"image":{{"docker-manifest-digest":"{digest}"}},"type":"cosign container image signature"}},"optional":{{"timestamp":179545466666666666666666666666666666666666666666666666.666666666666666666666666617879}}}}"#
        );
        let parsed = SimpleSigning::parse(payload.as_bytes()).unwrap();
        assert_eq!(SimpleSigning::parse(&parsed.to_bytes()).unwrap(), parsed);
    }

    #[test]
    fn writes_byte_for_byte_what_cosign_writes() {
        let digest = Digest::parse("sha256:c4ea3eb55a9e77e1edfcec7acc64cab6650ef710811264fdd18cedeba6de5c83").unwrap();
        let ours = SimpleSigning::new("127.0.0.1:5055/demo/cosign", &digest, None).to_bytes();
        assert_eq!(ours, COSIGN_PAYLOAD);
    }

    #[test]
    fn reads_skopeo_payload_with_optional_section() {
        let payload = SimpleSigning::parse(SKOPEO_PAYLOAD).unwrap();
        assert_eq!(payload.identity(), "127.0.0.1:5055/demo/skopeo:v1");
        assert_eq!(payload.digest(), "sha256:adc8f37817693c24e66c59c90b31bbedc5f3d9a3b0f40b28f06fd54d4c024620");
        assert_eq!(payload.optional.unwrap()["creator"], "containers/image 5.34.2");
    }

    #[test]
    fn refuses_unknown_critical_keys_and_other_types() {
        let extra = br#"{"critical":{"identity":{"docker-reference":"r.example/a"},"image":{"docker-manifest-digest":"sha256:c4ea3eb55a9e77e1edfcec7acc64cab6650ef710811264fdd18cedeba6de5c83"},"type":"cosign container image signature","x":1},"optional":null}"#;
        assert!(SimpleSigning::parse(extra).is_err());
        let other_type = String::from_utf8_lossy(COSIGN_PAYLOAD).replace(PAYLOAD_TYPE, "atomic container signature");
        assert!(SimpleSigning::parse(other_type.as_bytes()).is_err());
    }
}
