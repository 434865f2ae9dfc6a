//! The cosign tag-scheme manifests: tag `sha256-<hex>.sig`, an OCI image manifest whose layers are
//! simple-signing payloads, each carrying its signature in an annotation (docs/FORMATS.md §2, §3), and tag
//! `sha256-<hex>.att`, the same manifest whose layers are DSSE envelopes (docs/FORMATS.md §6, legacy layout).

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{Digest, FormatError};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const SIMPLE_SIGNING_LAYER: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
pub const DSSE_ENVELOPE_LAYER: &str = "application/vnd.dsse.envelope.v1+json";
pub const PREDICATE_TYPE_ANNOTATION: &str = "predicateType";

/// The tag under which signatures of `digest` live.
pub fn signature_tag(digest: &Digest) -> String {
    format!("sha256-{}.sig", digest.hex())
}

/// The tag under which cosign's legacy-layout attestations of `digest` live.
pub fn attestation_tag(digest: &Digest) -> String {
    format!("sha256-{}.att", digest.hex())
}

/// An OCI content descriptor; fields notarium does not know are kept as they were.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Descriptor {
    #[serde(rename = "mediaType")]
    pub media_type: String,
    pub size: u64,
    pub digest: String,
    #[serde(rename = "artifactType", default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(flatten)]
    #[schema(ignore)]
    pub extra: Map<String, Value>,
}

impl Descriptor {
    pub fn new(media_type: &str, digest: &Digest, size: u64) -> Self {
        Self {
            media_type: media_type.to_owned(),
            size,
            digest: digest.to_string(),
            artifact_type: None,
            annotations: None,
            extra: Map::new(),
        }
    }

    pub fn for_blob(media_type: &str, blob: &[u8]) -> Self {
        Self::new(media_type, &Digest::of(blob), blob.len() as u64)
    }

    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.as_ref()?.get(key).map(String::as_str)
    }
}

/// One signature layer: the payload blob and the signature over exactly those bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct SignatureLayer {
    pub descriptor: Descriptor,
}

impl SignatureLayer {
    pub fn new(payload: &[u8], signature: &[u8]) -> Self {
        let mut descriptor = Descriptor::for_blob(SIMPLE_SIGNING_LAYER, payload);
        descriptor.annotations = Some(BTreeMap::from([(SIGNATURE_ANNOTATION.to_owned(), BASE64.encode(signature))]));
        Self { descriptor }
    }

    /// The decoded signature annotation, if the layer has one.
    pub fn signature(&self) -> Result<Vec<u8>, FormatError> {
        let encoded =
            self.descriptor.annotation(SIGNATURE_ANNOTATION).ok_or_else(|| FormatError::MalformedDocument {
                what: "signature layer",
                reason: format!("no {SIGNATURE_ANNOTATION} annotation"),
            })?;
        BASE64.decode(encoded).map_err(|e| FormatError::MalformedDocument {
            what: "signature layer",
            reason: format!("signature annotation is not base64: {e}"),
        })
    }
}

/// One attestation layer: a DSSE envelope blob and its predicate type. cosign writes the signature
/// annotation empty, because the signatures are inside the envelope.
#[derive(Debug, Clone, PartialEq)]
pub struct AttestationLayer {
    pub descriptor: Descriptor,
}

impl AttestationLayer {
    pub fn new(envelope_json: &[u8], predicate_type: &str) -> Self {
        let mut descriptor = Descriptor::for_blob(DSSE_ENVELOPE_LAYER, envelope_json);
        descriptor.annotations = Some(BTreeMap::from([
            (SIGNATURE_ANNOTATION.to_owned(), String::new()),
            (PREDICATE_TYPE_ANNOTATION.to_owned(), predicate_type.to_owned()),
        ]));
        Self { descriptor }
    }

    pub fn predicate_type(&self) -> Option<&str> {
        self.descriptor.annotation(PREDICATE_TYPE_ANNOTATION)
    }
}

/// An OCI image manifest carrying signatures or attestations: behind a `.sig` or `.att` tag, or as a
/// referrer of the image (`subject`, `artifactType`; see [`super::referrer`]). Field order is cosign's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignatureManifest {
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    #[serde(rename = "mediaType", default = "oci_manifest")]
    pub media_type: String,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    #[serde(rename = "artifactType", default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

pub(super) fn oci_manifest() -> String {
    OCI_MANIFEST.to_owned()
}

/// A manifest ready to upload: its config blob and its own bytes.
pub struct EncodedManifest {
    pub config: Vec<u8>,
    pub manifest: Vec<u8>,
}

impl SignatureManifest {
    pub fn parse(bytes: &[u8]) -> Result<Self, FormatError> {
        serde_json::from_slice(bytes)
            .map_err(|e| FormatError::MalformedDocument { what: "signature manifest", reason: e.to_string() })
    }

    /// The simple-signing layers, in order.
    pub fn signature_layers(&self) -> impl Iterator<Item = SignatureLayer> + '_ {
        self.layers
            .iter()
            .filter(|l| l.media_type == SIMPLE_SIGNING_LAYER)
            .map(|l| SignatureLayer { descriptor: l.clone() })
    }

    /// The DSSE envelope layers, in order.
    pub fn attestation_layers(&self) -> impl Iterator<Item = AttestationLayer> + '_ {
        self.layers
            .iter()
            .filter(|l| l.media_type == DSSE_ENVELOPE_LAYER)
            .map(|l| AttestationLayer { descriptor: l.clone() })
    }

    /// Encodes a manifest holding `layers` (existing ones first, in their order) with a fresh config
    /// listing every layer digest, as cosign writes it.
    pub fn encode(layers: Vec<Descriptor>) -> EncodedManifest {
        let config = cosign_config(&layers);
        let manifest = Self::new(Descriptor::for_blob(OCI_CONFIG, &config), layers);
        EncodedManifest { manifest: manifest.to_json(), config }
    }

    /// Encodes a `.sig` manifest holding `layers` (existing ones first, in their order) whose config is the
    /// OCI empty descriptor (`{}`, docs/FORMATS.md §28): the same blob for every signature of a repository,
    /// uploaded once, where cosign's own config lists each layer's digest and so is new with every signature.
    /// Readers (cosign, skopeo, notarium) read the layers only; a writer appending after us (cosign, skopeo)
    /// reads `{}` as a config with no layers listed and writes its own.
    pub fn encode_signatures(layers: Vec<Descriptor>) -> Vec<u8> {
        let config = Descriptor::for_blob(super::referrer::OCI_EMPTY, super::referrer::EMPTY_JSON);
        Self::new(config, layers).to_json()
    }

    /// A manifest with no annotations, subject or artifact type.
    pub fn new(config: Descriptor, layers: Vec<Descriptor>) -> Self {
        Self {
            schema_version: 2,
            media_type: OCI_MANIFEST.to_owned(),
            config,
            layers,
            annotations: BTreeMap::new(),
            subject: None,
            artifact_type: None,
            extra: Map::new(),
        }
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a manifest of strings and JSON values always serializes")
    }
}

/// cosign's config for a signature manifest; field order matters for byte equality.
#[derive(Serialize)]
struct CosignConfig<'a> {
    architecture: &'static str,
    created: &'static str,
    history: [History; 1],
    os: &'static str,
    rootfs: RootFs<'a>,
    config: Map<String, Value>,
}

#[derive(Serialize)]
struct History {
    created: &'static str,
}

#[derive(Serialize)]
struct RootFs<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    diff_ids: Vec<&'a str>,
}

const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

fn cosign_config(layers: &[Descriptor]) -> Vec<u8> {
    let config = CosignConfig {
        architecture: "",
        created: ZERO_TIME,
        history: [History { created: ZERO_TIME }],
        os: "",
        rootfs: RootFs { kind: "layers", diff_ids: layers.iter().map(|l| l.digest.as_str()).collect() },
        config: Map::new(),
    };
    serde_json::to_vec(&config).expect("config serializes")
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/third-party");

    fn fixture(path: &str) -> Vec<u8> {
        std::fs::read(format!("{FIXTURES}/{path}")).unwrap()
    }

    /// Found by fuzz/ (target signature_manifest): a number beyond u64 in an unknown field was read 1 ULP
    /// off, so the manifest written back parsed to another one.
    #[test]
    fn numbers_in_unknown_fields_survive_a_round_trip() {
        let manifest = String::from_utf8(fixture("cosign-2.5/sig-manifest.json")).unwrap();
        let bytes = manifest.replacen('{', &format!("{{\"extra\":{{\"size\":401{}}},", "7".repeat(106)), 1);
        let parsed = SignatureManifest::parse(bytes.as_bytes()).unwrap();
        assert_eq!(SignatureManifest::parse(&parsed.to_json()).unwrap(), parsed);
    }

    #[test]
    fn encodes_the_same_manifest_and_config_bytes_as_cosign() {
        let cosign = SignatureManifest::parse(&fixture("cosign-2.5/sig-manifest.json")).unwrap();
        let layer = cosign.signature_layers().next().unwrap();
        let payload = fixture("cosign-2.5/simplesigning-payload.json");
        let ours = SignatureLayer::new(&payload, &layer.signature().unwrap());
        let encoded = SignatureManifest::encode(vec![ours.descriptor]);
        assert_eq!(encoded.config, fixture("cosign-2.5/sig-config.json"));
        assert_eq!(encoded.manifest, fixture("cosign-2.5/sig-manifest.json"));
    }

    #[test]
    fn a_sig_manifest_shares_the_empty_config_and_keeps_every_layer_in_order() {
        let layers =
            vec![SignatureLayer::new(b"first", b"a").descriptor, SignatureLayer::new(b"second", b"b").descriptor];
        let manifest = SignatureManifest::parse(&SignatureManifest::encode_signatures(layers.clone())).unwrap();
        let empty = Descriptor::for_blob("application/vnd.oci.empty.v1+json", b"{}");
        assert_eq!(manifest.config, empty);
        assert_eq!(manifest.config.digest, "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a");
        assert_eq!(manifest.layers, layers);
        assert_eq!(manifest.signature_layers().count(), 2);
        assert_eq!(manifest.media_type, OCI_MANIFEST);
        assert!(manifest.subject.is_none() && manifest.artifact_type.is_none());
    }

    #[test]
    fn reads_skopeo_manifest_and_keeps_layers_when_appending() {
        let skopeo = SignatureManifest::parse(&fixture("skopeo-1.18/sig-manifest.json")).unwrap();
        let layers: Vec<_> = skopeo.signature_layers().collect();
        assert_eq!(layers.len(), 1);
        let expected = String::from_utf8(fixture("skopeo-1.18/signature.b64")).unwrap();
        assert_eq!(BASE64.encode(layers[0].signature().unwrap()), expected.trim());
        let appended = SignatureLayer::new(b"{}", b"sig").descriptor;
        let mut all = skopeo.layers.clone();
        all.push(appended);
        let reparsed = SignatureManifest::parse(&SignatureManifest::encode(all).manifest).unwrap();
        assert_eq!(reparsed.layers[0], skopeo.layers[0]);
        assert_eq!(reparsed.layers.len(), 2);
    }

    #[test]
    fn encodes_the_same_attestation_manifest_and_config_bytes_as_cosign() {
        let cosign = SignatureManifest::parse(&fixture("cosign-2.5/att-manifest.json")).unwrap();
        let layer = cosign.attestation_layers().next().unwrap();
        assert_eq!(layer.predicate_type(), Some("https://slsa.dev/provenance/v1"));
        let ours =
            AttestationLayer::new(&fixture("cosign-2.5/att-dsse-envelope.json"), "https://slsa.dev/provenance/v1");
        assert_eq!(ours, layer);
        let encoded = SignatureManifest::encode(vec![ours.descriptor]);
        assert_eq!(encoded.manifest, fixture("cosign-2.5/att-manifest.json"));
        assert_eq!(Digest::of(&encoded.config).to_string(), cosign.config.digest);
        assert_eq!(cosign.signature_layers().count(), 0);
    }

    #[test]
    fn signature_tag_replaces_the_colon() {
        let digest = Digest::parse(&format!("sha256:{}", "0".repeat(64))).unwrap();
        assert_eq!(signature_tag(&digest), format!("sha256-{}.sig", "0".repeat(64)));
        assert_eq!(attestation_tag(&digest), format!("sha256-{}.att", "0".repeat(64)));
    }
}
