//! Sigstore bundles v0.3 for a plain public key (docs/FORMATS.md §7): the key hint and either a DSSE envelope
//! or a message signature. Names follow the proto3 JSON mapping of sigstore/protobuf-specs
//! (`sigstore_bundle.proto`), so the reader also takes the proto field names (`media_type`, …) that
//! mapping tells parsers to accept.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};

use super::dsse::Envelope;
use super::{Digest, FormatError, base64_bytes};
use crate::keys::PublicKey;

pub const BUNDLE_V0_3: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";

/// Every spelling protobuf-specs tells clients to accept.
const READABLE_MEDIA_TYPES: [&str; 4] = [
    BUNDLE_V0_3,
    "application/vnd.dev.sigstore.bundle+json;version=0.3",
    "application/vnd.dev.sigstore.bundle+json;version=0.2",
    "application/vnd.dev.sigstore.bundle+json;version=0.1",
];

/// The value of the `dev.sigstore.bundle.content` annotation for each kind of content.
pub const CONTENT_DSSE_ENVELOPE: &str = "dsse-envelope";
pub const CONTENT_MESSAGE_SIGNATURE: &str = "message-signature";

/// `SHA2_256` in protobuf-specs' `HashAlgorithm` enum.
pub const SHA2_256: &str = "SHA2_256";

/// The key hint notarium and cosign write: base64 of the SHA-256 of the key's DER SubjectPublicKeyInfo.
pub fn key_hint(key: &PublicKey) -> String {
    base64_bytes::encode(&Sha256::digest(key.spki_der()))
}

/// A bundle; parsing guarantees a known media type and exactly one signature in a DSSE envelope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "WireBundle", into = "WireBundle")]
pub struct Bundle {
    pub media_type: String,
    pub verification_material: VerificationMaterial,
    pub content: BundleContent,
}

/// How to find the verifying key; certificates, log entries and timestamps are kept as they came.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerificationMaterial {
    #[serde(rename = "publicKey", alias = "public_key", default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<PublicKeyIdentifier>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PublicKeyIdentifier {
    pub hint: String,
}

/// The bundle's `content` oneof.
#[derive(Debug, Clone, PartialEq)]
pub enum BundleContent {
    DsseEnvelope(Envelope),
    MessageSignature(MessageSignature),
}

/// A signature over an artifact; the digest only identifies the artifact, it is not what is verified.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageSignature {
    #[serde(rename = "messageDigest", alias = "message_digest", default, skip_serializing_if = "Option::is_none")]
    pub message_digest: Option<HashOutput>,
    #[serde(with = "base64_bytes")]
    pub signature: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HashOutput {
    pub algorithm: String,
    #[serde(with = "base64_bytes")]
    pub digest: Vec<u8>,
}

impl Bundle {
    /// A bundle around `envelope`, which must carry exactly one signature.
    pub fn dsse(key: &PublicKey, envelope: Envelope) -> Result<Self, FormatError> {
        check_one_signature(&envelope).map_err(|reason| FormatError::malformed("Sigstore bundle", reason))?;
        Ok(Self::new(key, BundleContent::DsseEnvelope(envelope)))
    }

    /// A bundle holding `signature` over the artifact whose SHA-256 is `artifact`.
    pub fn message_signature(key: &PublicKey, artifact: &Digest, signature: Vec<u8>) -> Self {
        let digest = super::digest::hex_decode(artifact.hex()).expect("a parsed digest is hex");
        let message_digest = Some(HashOutput { algorithm: SHA2_256.to_owned(), digest });
        Self::new(key, BundleContent::MessageSignature(MessageSignature { message_digest, signature }))
    }

    fn new(key: &PublicKey, content: BundleContent) -> Self {
        let public_key = Some(PublicKeyIdentifier { hint: key_hint(key) });
        Self {
            media_type: BUNDLE_V0_3.to_owned(),
            verification_material: VerificationMaterial { public_key, extra: Map::new() },
            content,
        }
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a bundle of strings and JSON values always serializes")
    }

    pub fn parse(bytes: &[u8]) -> Result<Self, FormatError> {
        serde_json::from_slice(bytes).map_err(|e| FormatError::malformed("Sigstore bundle", e.to_string()))
    }

    pub fn key_hint(&self) -> Option<&str> {
        self.verification_material.public_key.as_ref().map(|k| k.hint.as_str())
    }

    /// The DSSE envelope, if that is what the bundle holds.
    pub fn envelope(&self) -> Option<&Envelope> {
        match &self.content {
            BundleContent::DsseEnvelope(envelope) => Some(envelope),
            BundleContent::MessageSignature(_) => None,
        }
    }

    /// The `dev.sigstore.bundle.content` annotation value for this bundle.
    pub fn content_annotation(&self) -> &'static str {
        match self.content {
            BundleContent::DsseEnvelope(_) => CONTENT_DSSE_ENVELOPE,
            BundleContent::MessageSignature(_) => CONTENT_MESSAGE_SIGNATURE,
        }
    }
}

fn check_one_signature(envelope: &Envelope) -> Result<(), String> {
    match envelope.signatures.len() {
        1 => Ok(()),
        n => Err(format!("a DSSE envelope in a bundle must carry exactly one signature, not {n}")),
    }
}

/// The JSON shape, with the `content` oneof as two optional fields.
#[derive(Serialize, Deserialize)]
struct WireBundle {
    #[serde(rename = "mediaType", alias = "media_type")]
    media_type: String,
    #[serde(rename = "verificationMaterial", alias = "verification_material")]
    verification_material: VerificationMaterial,
    #[serde(rename = "dsseEnvelope", alias = "dsse_envelope", default, skip_serializing_if = "Option::is_none")]
    dsse_envelope: Option<Envelope>,
    #[serde(
        rename = "messageSignature",
        alias = "message_signature",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    message_signature: Option<MessageSignature>,
}

impl TryFrom<WireBundle> for Bundle {
    type Error = String;

    fn try_from(wire: WireBundle) -> Result<Self, String> {
        if !READABLE_MEDIA_TYPES.contains(&wire.media_type.as_str()) {
            return Err(format!("unknown bundle media type {:?}", wire.media_type));
        }
        let content = match (wire.dsse_envelope, wire.message_signature) {
            (Some(envelope), None) => {
                check_one_signature(&envelope)?;
                BundleContent::DsseEnvelope(envelope)
            }
            (None, Some(signature)) => BundleContent::MessageSignature(signature),
            _ => return Err("a bundle holds exactly one of dsseEnvelope and messageSignature".to_owned()),
        };
        Ok(Self { media_type: wire.media_type, verification_material: wire.verification_material, content })
    }
}

impl From<Bundle> for WireBundle {
    fn from(bundle: Bundle) -> Self {
        let (dsse_envelope, message_signature) = match bundle.content {
            BundleContent::DsseEnvelope(envelope) => (Some(envelope), None),
            BundleContent::MessageSignature(signature) => (None, Some(signature)),
        };
        Self {
            media_type: bundle.media_type,
            verification_material: bundle.verification_material,
            dsse_envelope,
            message_signature,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::dsse::IN_TOTO_PAYLOAD_TYPE;
    use crate::formats::in_toto::{COSIGN_SIGN_V1, Statement, Subject};

    const COSIGN_BUNDLE: &[u8] =
        include_bytes!("../../tests/fixtures/third-party/cosign-2.5/referrer-bundle.sigstore.json");
    const COSIGN_ENVELOPE: &[u8] = include_bytes!("../../tests/fixtures/third-party/cosign-2.5/att-dsse-envelope.json");
    const COSIGN_KEY: &str = include_str!("../../tests/fixtures/third-party/cosign-2.5/signer.pub");

    fn key() -> PublicKey {
        PublicKey::from_pem(COSIGN_KEY).unwrap()
    }

    #[test]
    fn reads_cosign_bundle_and_verifies_its_envelope() {
        let bundle = Bundle::parse(COSIGN_BUNDLE).unwrap();
        assert_eq!(bundle.media_type, BUNDLE_V0_3);
        assert_eq!(bundle.key_hint(), Some(key_hint(&key()).as_str()));
        assert_eq!(bundle.content_annotation(), CONTENT_DSSE_ENVELOPE);
        let envelope = bundle.envelope().unwrap();
        assert_eq!(envelope.signatures[0].keyid, "");
        assert_eq!(envelope.verify(&key()).unwrap(), Envelope::parse(COSIGN_ENVELOPE).unwrap().payload);
    }

    #[test]
    fn key_hint_is_base64_sha256_of_the_spki() {
        assert_eq!(key_hint(&key()), "2JYhpYe3hU8i0UVmqsP2bz/qiMw2orqmdDX0AykApdU=");
    }

    #[test]
    fn dsse_bundle_round_trips_with_camel_case_names() {
        let mut envelope = Envelope::unsigned(IN_TOTO_PAYLOAD_TYPE, b"{}".to_vec());
        envelope.add_signature(vec![1, 2, 3]);
        let bundle = Bundle::dsse(&key(), envelope).unwrap();
        let json = String::from_utf8(bundle.to_json()).unwrap();
        let expected = format!(
            r#"{{"mediaType":"{BUNDLE_V0_3}","verificationMaterial":{{"publicKey":{{"hint":"{}"}}}},"dsseEnvelope":{{"payloadType":"{IN_TOTO_PAYLOAD_TYPE}","payload":"e30=","signatures":[{{"keyid":"","sig":"AQID"}}]}}}}"#,
            key_hint(&key())
        );
        assert_eq!(json, expected);
        assert_eq!(Bundle::parse(json.as_bytes()).unwrap(), bundle);
    }

    #[test]
    fn a_signed_statement_survives_the_bundle_and_verifies() {
        use p256::ecdsa::signature::Signer as _;
        let signing = p256::ecdsa::SigningKey::from_slice(&[7; 32]).unwrap();
        let key = PublicKey::from_p256(signing.verifying_key());
        let subject = Subject::sha256(None, &Digest::of(b"image"));
        let statement = Statement::v1(vec![subject], COSIGN_SIGN_V1, Value::Null);
        let mut envelope = Envelope::unsigned(IN_TOTO_PAYLOAD_TYPE, statement.to_json());
        let signature: p256::ecdsa::Signature = signing.sign(&envelope.pae());
        envelope.add_signature(signature.to_der().as_bytes().to_vec());

        let parsed = Bundle::parse(&Bundle::dsse(&key, envelope).unwrap().to_json()).unwrap();
        assert_eq!(parsed.key_hint(), Some(key_hint(&key).as_str()));
        let payload = parsed.envelope().unwrap().verify(&key).unwrap();
        assert_eq!(Statement::parse(payload).unwrap(), statement);
        assert!(parsed.envelope().unwrap().verify(&PublicKey::from_pem(COSIGN_KEY).unwrap()).is_err());
    }

    #[test]
    fn message_signature_bundle_round_trips() {
        let artifact = Digest::of(b"artifact");
        let bundle = Bundle::message_signature(&key(), &artifact, vec![9, 9]);
        let json = String::from_utf8(bundle.to_json()).unwrap();
        let digest_b64 = base64_bytes::encode(&Sha256::digest(b"artifact"));
        let content = format!(
            r#""messageSignature":{{"messageDigest":{{"algorithm":"SHA2_256","digest":"{digest_b64}"}},"signature":"CQk="}}}}"#
        );
        assert!(json.ends_with(&content), "{json}");
        let parsed = Bundle::parse(json.as_bytes()).unwrap();
        assert_eq!(parsed, bundle);
        assert_eq!(parsed.content_annotation(), CONTENT_MESSAGE_SIGNATURE);
        assert!(parsed.envelope().is_none());
    }

    #[test]
    fn accepts_proto_field_names_and_older_media_types_and_keeps_other_material() {
        let json = br#"{"media_type":"application/vnd.dev.sigstore.bundle+json;version=0.2",
            "verification_material":{"public_key":{"hint":"aGk="},"tlogEntries":[{"logIndex":"1"}]},
            "message_signature":{"message_digest":{"algorithm":"SHA2_256","digest":"AA"},"signature":"AQ"}}"#;
        let bundle = Bundle::parse(json).unwrap();
        assert_eq!(bundle.key_hint(), Some("aGk="));
        assert_eq!(bundle.verification_material.extra["tlogEntries"][0]["logIndex"], "1");
        let reparsed = Bundle::parse(&bundle.to_json()).unwrap();
        assert_eq!(reparsed, bundle);
    }

    #[test]
    fn refuses_envelopes_without_exactly_one_signature() {
        let mut envelope = Envelope::unsigned(IN_TOTO_PAYLOAD_TYPE, b"{}".to_vec());
        assert!(Bundle::dsse(&key(), envelope.clone()).is_err());
        envelope.add_signature(vec![1]);
        envelope.add_signature(vec![2]);
        assert!(Bundle::dsse(&key(), envelope.clone()).is_err());
        let mut json: Value = serde_json::from_slice(COSIGN_BUNDLE).unwrap();
        json["dsseEnvelope"] = serde_json::to_value(&envelope).unwrap();
        assert!(Bundle::parse(json.to_string().as_bytes()).is_err());
    }

    #[test]
    fn refuses_unknown_media_types_and_ambiguous_content() {
        let mut json: Value = serde_json::from_slice(COSIGN_BUNDLE).unwrap();
        json["mediaType"] = "application/vnd.dev.sigstore.bundle.v0.4+json".into();
        assert!(Bundle::parse(json.to_string().as_bytes()).is_err());

        let mut both: Value = serde_json::from_slice(COSIGN_BUNDLE).unwrap();
        both["messageSignature"] = serde_json::json!({"signature": "AQ"});
        assert!(Bundle::parse(both.to_string().as_bytes()).is_err());
        let mut neither: Value = serde_json::from_slice(COSIGN_BUNDLE).unwrap();
        neither.as_object_mut().unwrap().remove("dsseEnvelope");
        assert!(Bundle::parse(neither.to_string().as_bytes()).is_err());
    }
}
