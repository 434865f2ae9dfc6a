//! Sigstore bundles (docs/FORMATS.md §7 for the ones notarium writes, §18 for the ones it reads): v0.1, v0.2
//! and v0.3, their verification material (a key hint, an X.509 certificate chain or a single certificate,
//! transparency-log entries, RFC 3161 timestamps) and either a DSSE envelope or a message signature. Names
//! follow the proto3 JSON mapping of sigstore/protobuf-specs (`sigstore_bundle.proto`,
//! `sigstore_rekor.proto`), so the reader also takes the proto field names (`media_type`, …) and int64 values
//! as strings or numbers. Parsing enforces each version's structural rules and bounds every list; what the
//! material proves is `pki::bundle`'s business, not this module's.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};

use super::dsse::Envelope;
use super::{Digest, FormatError, base64_bytes};
use crate::keys::PublicKey;

pub const BUNDLE_V0_3: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";

/// Every spelling protobuf-specs tells clients to accept, with the version it names.
const READABLE_MEDIA_TYPES: [(&str, BundleVersion); 4] = [
    (BUNDLE_V0_3, BundleVersion::V0_3),
    ("application/vnd.dev.sigstore.bundle+json;version=0.3", BundleVersion::V0_3),
    ("application/vnd.dev.sigstore.bundle+json;version=0.2", BundleVersion::V0_2),
    ("application/vnd.dev.sigstore.bundle+json;version=0.1", BundleVersion::V0_1),
];

/// Bounds on what a bundle may hold: far above what Sigstore clients write, low enough that a hostile
/// bundle cannot make verification expensive.
pub const MAX_TLOG_ENTRIES: usize = 8;
pub const MAX_TIMESTAMPS: usize = 8;
pub const MAX_CHAIN_CERTIFICATES: usize = 8;
pub const MAX_PROOF_HASHES: usize = 64;
pub const MAX_CHECKPOINT_BYTES: usize = 16 * 1024;
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The bundle format versions, by their media type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum BundleVersion {
    V0_1,
    V0_2,
    V0_3,
}

impl BundleVersion {
    pub fn of_media_type(media_type: &str) -> Option<Self> {
        READABLE_MEDIA_TYPES.iter().find(|(name, _)| *name == media_type).map(|(_, version)| *version)
    }
}

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

/// Who signed (a key hint, a certificate chain or one certificate) and the evidence of when: log entries and
/// timestamps. Fields this reader does not know are kept as they came, in `extra`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct VerificationMaterial {
    #[serde(rename = "publicKey", alias = "public_key", default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<PublicKeyIdentifier>,
    #[serde(
        rename = "x509CertificateChain",
        alias = "x509_certificate_chain",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub x509_certificate_chain: Option<CertificateChain>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<X509Certificate>,
    #[serde(rename = "tlogEntries", alias = "tlog_entries", default, skip_serializing_if = "Vec::is_empty")]
    pub tlog_entries: Vec<TlogEntry>,
    #[serde(
        rename = "timestampVerificationData",
        alias = "timestamp_verification_data",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub timestamp_verification_data: Option<TimestampVerificationData>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A DER certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct X509Certificate {
    #[serde(rename = "rawBytes", alias = "raw_bytes", with = "base64_wrapped")]
    pub raw_bytes: Vec<u8>,
}

/// A leaf certificate first, then the certificates that issued it (v0.1 and v0.2 bundles).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CertificateChain {
    #[serde(default)]
    pub certificates: Vec<X509Certificate>,
}

/// One transparency-log entry (`TransparencyLogEntry` in `sigstore_rekor.proto`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlogEntry {
    #[serde(rename = "logIndex", alias = "log_index", with = "int64")]
    pub log_index: i64,
    #[serde(rename = "logId", alias = "log_id")]
    pub log_id: LogId,
    #[serde(rename = "kindVersion", alias = "kind_version")]
    pub kind_version: KindVersion,
    /// Rekor v1's integration time in Unix seconds; 0 (absent) for Rekor v2.
    #[serde(
        rename = "integratedTime",
        alias = "integrated_time",
        with = "int64",
        default,
        skip_serializing_if = "is_zero"
    )]
    pub integrated_time: i64,
    #[serde(
        rename = "inclusionPromise",
        alias = "inclusion_promise",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub inclusion_promise: Option<InclusionPromise>,
    #[serde(rename = "inclusionProof", alias = "inclusion_proof", default, skip_serializing_if = "Option::is_none")]
    pub inclusion_proof: Option<InclusionProof>,
    /// The entry body exactly as the log hashed it (a JSON document).
    #[serde(rename = "canonicalizedBody", alias = "canonicalized_body", with = "base64_wrapped")]
    pub canonicalized_body: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogId {
    #[serde(rename = "keyId", alias = "key_id", with = "base64_wrapped")]
    pub key_id: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KindVersion {
    pub kind: String,
    pub version: String,
}

/// Rekor v1's signed entry timestamp.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InclusionPromise {
    #[serde(rename = "signedEntryTimestamp", alias = "signed_entry_timestamp", with = "base64_wrapped")]
    pub signed_entry_timestamp: Vec<u8>,
}

/// An RFC 6962 inclusion proof and the signed checkpoint whose root it reaches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InclusionProof {
    #[serde(rename = "logIndex", alias = "log_index", with = "int64")]
    pub log_index: i64,
    #[serde(rename = "rootHash", alias = "root_hash", with = "base64_wrapped")]
    pub root_hash: Vec<u8>,
    #[serde(rename = "treeSize", alias = "tree_size", with = "int64")]
    pub tree_size: i64,
    #[serde(with = "base64_list", default)]
    pub hashes: Vec<Vec<u8>>,
    /// Required to verify, but some v0.1 bundles omit it; the verifier decides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<CheckpointEnvelope>,
}

/// A checkpoint as a C2SP signed note.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointEnvelope {
    pub envelope: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TimestampVerificationData {
    #[serde(rename = "rfc3161Timestamps", alias = "rfc3161_timestamps", default)]
    pub rfc3161_timestamps: Vec<Rfc3161Timestamp>,
}

/// A DER `TimeStampResponse` or `TimeStampToken`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rfc3161Timestamp {
    #[serde(rename = "signedTimestamp", alias = "signed_timestamp", with = "base64_wrapped")]
    pub signed_timestamp: Vec<u8>,
}

/// Who the bundle says signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signer<'a> {
    /// A key known out of band, named by a hint.
    PublicKey(&'a PublicKeyIdentifier),
    /// The leaf's DER, then the DER of the certificates that issued it (possibly none).
    Certificate { leaf: &'a [u8], intermediates: &'a [X509Certificate] },
}

impl VerificationMaterial {
    /// The signer, which parsing guarantees is exactly one of the three kinds.
    pub fn signer(&self) -> Option<Signer<'_>> {
        if let Some(key) = &self.public_key {
            return Some(Signer::PublicKey(key));
        }
        if let Some(certificate) = &self.certificate {
            return Some(Signer::Certificate { leaf: &certificate.raw_bytes, intermediates: &[] });
        }
        let (leaf, intermediates) = self.x509_certificate_chain.as_ref()?.certificates.split_first()?;
        Some(Signer::Certificate { leaf: &leaf.raw_bytes, intermediates })
    }

    /// The RFC 3161 timestamps, none when the bundle has no timestamp data.
    pub fn rfc3161_timestamps(&self) -> &[Rfc3161Timestamp] {
        self.timestamp_verification_data.as_ref().map_or(&[], |data| data.rfc3161_timestamps.as_slice())
    }

    fn check(&self, version: BundleVersion) -> Result<(), String> {
        let kinds = [self.public_key.is_some(), self.x509_certificate_chain.is_some(), self.certificate.is_some()];
        if kinds.iter().filter(|present| **present).count() != 1 {
            return Err(
                "the verification material holds exactly one of publicKey, x509CertificateChain and certificate".into(),
            );
        }
        if let Some(chain) = &self.x509_certificate_chain {
            if version >= BundleVersion::V0_3 {
                return Err("a v0.3 bundle carries a single certificate, not a chain".into());
            }
            match chain.certificates.len() {
                0 => return Err("the certificate chain is empty".into()),
                n if n > MAX_CHAIN_CERTIFICATES => {
                    return Err(format!("{n} certificates in the chain; the limit is {MAX_CHAIN_CERTIFICATES}"));
                }
                _ => {}
            }
        }
        if self.tlog_entries.len() > MAX_TLOG_ENTRIES {
            return Err(format!("{} log entries; the limit is {MAX_TLOG_ENTRIES}", self.tlog_entries.len()));
        }
        let timestamps = self.rfc3161_timestamps().len();
        if timestamps > MAX_TIMESTAMPS {
            return Err(format!("{timestamps} timestamps; the limit is {MAX_TIMESTAMPS}"));
        }
        self.tlog_entries.iter().try_for_each(|entry| entry.check(version))
    }
}

impl TlogEntry {
    fn check(&self, version: BundleVersion) -> Result<(), String> {
        if self.log_index < 0 {
            return Err("a log entry has a negative log index".into());
        }
        if self.integrated_time < 0 {
            return Err("a log entry has a negative integrated time".into());
        }
        if self.canonicalized_body.len() > MAX_BODY_BYTES {
            return Err(format!("a log entry body exceeds {MAX_BODY_BYTES} bytes"));
        }
        if version == BundleVersion::V0_1 && self.inclusion_promise.is_none() {
            return Err("a v0.1 bundle's log entry needs an inclusion promise".into());
        }
        if version >= BundleVersion::V0_2 && self.inclusion_proof.is_none() {
            return Err("a log entry of a v0.2 or later bundle needs an inclusion proof".into());
        }
        self.inclusion_proof.as_ref().map_or(Ok(()), InclusionProof::check)
    }
}

impl InclusionProof {
    fn check(&self) -> Result<(), String> {
        if self.log_index < 0 || self.tree_size < 0 {
            return Err("an inclusion proof has a negative index or tree size".into());
        }
        if self.hashes.len() > MAX_PROOF_HASHES {
            return Err(format!(
                "an inclusion proof has {} hashes; the limit is {MAX_PROOF_HASHES}",
                self.hashes.len()
            ));
        }
        if self.root_hash.len() != 32 || self.hashes.iter().any(|hash| hash.len() != 32) {
            return Err("an inclusion proof hash is not 32 bytes".into());
        }
        if self.checkpoint.as_ref().is_some_and(|checkpoint| checkpoint.envelope.len() > MAX_CHECKPOINT_BYTES) {
            return Err(format!("a checkpoint exceeds {MAX_CHECKPOINT_BYTES} bytes"));
        }
        Ok(())
    }
}

fn is_zero(value: &i64) -> bool {
    *value == 0
}

/// proto3 JSON int64: written as a decimal string, read from a string or a number.
mod int64 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(value: &i64, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&value.to_string())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum StringOrNumber {
            String(String),
            Number(i64),
        }
        match StringOrNumber::deserialize(deserializer)? {
            StringOrNumber::Number(n) => Ok(n),
            StringOrNumber::String(s) => s.parse().map_err(|_| serde::de::Error::custom("an int64 is expected")),
        }
    }
}

/// Bytes as base64 that may be wrapped in lines: Go's decoder, which protobuf-specs' reference clients use,
/// skips CR and LF, so bundles they accept may carry them.
mod base64_wrapped {
    use serde::{Deserialize, Deserializer};

    pub(super) use super::base64_bytes::serialize;

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let text: String = String::deserialize(deserializer)?.chars().filter(|c| !matches!(c, '\r' | '\n')).collect();
        super::base64_bytes::decode(&text).map_err(|e| serde::de::Error::custom(format!("not base64: {e}")))
    }
}

/// A list of byte strings as base64 texts.
mod base64_list {
    use serde::ser::SerializeSeq as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(values: &[Vec<u8>], serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(values.len()))?;
        for value in values {
            seq.serialize_element(&super::base64_bytes::encode(value))?;
        }
        seq.end()
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<Vec<u8>>, D::Error> {
        Vec::<String>::deserialize(deserializer)?
            .iter()
            .map(|text| super::base64_bytes::decode(text).map_err(|_| serde::de::Error::custom("not base64")))
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
            verification_material: VerificationMaterial { public_key, ..VerificationMaterial::default() },
            content,
        }
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a bundle of strings and JSON values always serializes")
    }

    pub fn parse(bytes: &[u8]) -> Result<Self, FormatError> {
        serde_json::from_slice(bytes).map_err(|e| FormatError::malformed("Sigstore bundle", e.to_string()))
    }

    /// The version its media type names.
    pub fn version(&self) -> BundleVersion {
        BundleVersion::of_media_type(&self.media_type).unwrap_or(BundleVersion::V0_3)
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
        let Some(version) = BundleVersion::of_media_type(&wire.media_type) else {
            return Err(format!(
                "unknown bundle media type {:?}",
                wire.media_type.chars().take(80).collect::<String>()
            ));
        };
        wire.verification_material.check(version)?;
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
            "verification_material":{"public_key":{"hint":"aGk="},"futureMaterial":[{"x":"1"}]},
            "message_signature":{"message_digest":{"algorithm":"SHA2_256","digest":"AA"},"signature":"AQ"}}"#;
        let bundle = Bundle::parse(json).unwrap();
        assert_eq!(bundle.key_hint(), Some("aGk="));
        assert_eq!(bundle.version(), BundleVersion::V0_2);
        assert_eq!(bundle.verification_material.extra["futureMaterial"][0]["x"], "1");
        let reparsed = Bundle::parse(&bundle.to_json()).unwrap();
        assert_eq!(reparsed, bundle);
    }

    const CONFORMANCE: &str =
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/third-party/sigstore-conformance/bundle-verify");

    fn conformance_case(name: &str) -> Vec<u8> {
        std::fs::read(format!("{CONFORMANCE}/{name}/bundle.sigstore.json")).unwrap()
    }

    #[test]
    fn reads_every_version_of_the_conformance_bundles() {
        let v01 = Bundle::parse(&conformance_case("happy-path-v0.1")).unwrap();
        assert_eq!(v01.version(), BundleVersion::V0_1);
        let Some(Signer::Certificate { leaf, intermediates }) = v01.verification_material.signer() else {
            panic!("a v0.1 bundle signed by a certificate chain")
        };
        assert_eq!(leaf[0], 0x30);
        assert!(intermediates.is_empty());
        let entry = &v01.verification_material.tlog_entries[0];
        assert_eq!(entry.log_index, 27_246_492);
        assert_eq!((entry.kind_version.kind.as_str(), entry.kind_version.version.as_str()), ("hashedrekord", "0.0.1"));
        assert_eq!(entry.log_id.key_id.len(), 32);
        assert!(entry.integrated_time > 1_600_000_000);
        assert!(entry.inclusion_promise.is_some());

        let v03 = Bundle::parse(&conformance_case("happy-path-v0.3-new-mediaType")).unwrap();
        assert_eq!(v03.version(), BundleVersion::V0_3);
        assert!(matches!(v03.verification_material.signer(), Some(Signer::Certificate { intermediates: [], .. })));
        let proof = v03.verification_material.tlog_entries[0].inclusion_proof.as_ref().unwrap();
        assert_eq!(proof.tree_size, proof.log_index + 1);
        assert!(proof.checkpoint.as_ref().unwrap().envelope.starts_with("rekor.sigstore.dev - "));

        let rekor2 = Bundle::parse(&conformance_case("rekor2-happy-path")).unwrap();
        assert_eq!(rekor2.verification_material.tlog_entries[0].integrated_time, 0);
        assert_eq!(rekor2.verification_material.rfc3161_timestamps().len(), 1);
        let reparsed = Bundle::parse(&rekor2.to_json()).unwrap();
        assert_eq!(reparsed, rekor2);
    }

    #[test]
    fn every_conformance_bundle_that_parses_round_trips() {
        let mut parsed = 0;
        for entry in std::fs::read_dir(CONFORMANCE).unwrap() {
            let path = entry.unwrap().path().join("bundle.sigstore.json");
            let Ok(bytes) = std::fs::read(&path) else { continue };
            let Ok(bundle) = Bundle::parse(&bytes) else { continue };
            assert_eq!(Bundle::parse(&bundle.to_json()).unwrap(), bundle, "{}", path.display());
            parsed += 1;
        }
        assert!(parsed >= 60, "{parsed}");
    }

    #[test]
    fn refuses_the_structurally_broken_conformance_bundles() {
        for (case, why) in [
            ("bundle-empty-certificate-chain_fail", "chain is empty"),
            ("bundle-negative-log-index_fail", "negative log index"),
            ("bundle-unknown-version_fail", "unknown bundle media type"),
            ("bundle-malformed-json_fail", "EOF"),
            ("bundle-invalid-base64-signature_fail", "base64"),
            ("intoto-missing-inclusion-proof_fail", "needs an inclusion proof"),
            ("rekor2-no-inclusion-proof_fail", "needs an inclusion proof"),
        ] {
            let error = Bundle::parse(&conformance_case(case)).unwrap_err().to_string();
            assert!(error.contains(why), "{case}: {error}");
        }
    }

    #[test]
    fn reads_base64_wrapped_in_lines_as_go_clients_do() {
        let wrapped = Bundle::parse(&conformance_case("rekor2-timestamp-with-incorrect-time_fail")).unwrap();
        let stamp = &wrapped.verification_material.rfc3161_timestamps()[0].signed_timestamp;
        assert_eq!(stamp[0], 0x30);
        let mut json: Value =
            serde_json::from_slice(&conformance_case("rekor2-timestamp-with-incorrect-time_fail")).unwrap();
        let text = json["verificationMaterial"]["timestampVerificationData"]["rfc3161Timestamps"][0]["signedTimestamp"]
            .as_str()
            .unwrap()
            .replace('\n', "");
        json["verificationMaterial"]["timestampVerificationData"]["rfc3161Timestamps"][0]["signedTimestamp"] =
            text.into();
        assert_eq!(Bundle::parse(json.to_string().as_bytes()).unwrap(), wrapped);
    }

    #[test]
    fn enforces_version_rules_and_bounds() {
        let mut v01: Value = serde_json::from_slice(&conformance_case("happy-path-v0.1")).unwrap();
        v01["verificationMaterial"]["tlogEntries"][0].as_object_mut().unwrap().remove("inclusionPromise");
        let error = Bundle::parse(v01.to_string().as_bytes()).unwrap_err().to_string();
        assert!(error.contains("inclusion promise"), "{error}");

        let mut chain_in_v03: Value = serde_json::from_slice(&conformance_case("happy-path-v0.2")).unwrap();
        chain_in_v03["mediaType"] = BUNDLE_V0_3.into();
        let error = Bundle::parse(chain_in_v03.to_string().as_bytes()).unwrap_err().to_string();
        assert!(error.contains("not a chain"), "{error}");

        let mut long_proof: Value = serde_json::from_slice(&conformance_case("happy-path-v0.3")).unwrap();
        let hashes = vec![Value::from(base64_bytes::encode(&[0; 32])); MAX_PROOF_HASHES + 1];
        long_proof["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]["hashes"] = hashes.into();
        let error = Bundle::parse(long_proof.to_string().as_bytes()).unwrap_err().to_string();
        assert!(error.contains("limit"), "{error}");

        let mut two_signers: Value = serde_json::from_slice(&conformance_case("happy-path-v0.3")).unwrap();
        two_signers["verificationMaterial"]["publicKey"] = serde_json::json!({"hint": "aGk="});
        assert!(Bundle::parse(two_signers.to_string().as_bytes()).is_err());

        let mut numbers: Value = serde_json::from_slice(&conformance_case("happy-path-v0.3")).unwrap();
        numbers["verificationMaterial"]["tlogEntries"][0]["logIndex"] = 79_571_823.into();
        let bundle = Bundle::parse(numbers.to_string().as_bytes()).unwrap();
        assert_eq!(bundle.verification_material.tlog_entries[0].log_index, 79_571_823);
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
