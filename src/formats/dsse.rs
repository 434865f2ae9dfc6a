//! DSSE envelopes (`payloadType`, base64 `payload`, `signatures`) and the pre-authentication encoding
//! their signatures cover (docs/FORMATS.md §4; DSSE protocol and envelope v1.0.2).
//!
//! Signatures are over [`pae`], never over the payload alone. notarium writes `keyid` as `""`: cosign
//! writes none in its bundles and verifiers that match a non-empty keyid against their own key id
//! would skip the signature.

use serde::{Deserialize, Serialize};

use super::{FormatError, base64_bytes};
use crate::keys::{KeyError, PublicKey};

/// The payload type of an envelope around an in-toto Statement.
pub const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

/// `"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`, lengths in ASCII decimal of byte counts.
pub fn pae(payload_type: &str, body: &[u8]) -> Vec<u8> {
    let header = format!("DSSEv1 {} {payload_type} {} ", payload_type.len(), body.len());
    [header.as_bytes(), body].concat()
}

/// A DSSE envelope with its payload and signatures decoded; fields in the order cosign writes them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    #[serde(rename = "payloadType")]
    pub payload_type: String,
    #[serde(with = "base64_bytes")]
    pub payload: Vec<u8>,
    pub signatures: Vec<Signature>,
}

/// One signature over the envelope's PAE. An unset keyid reads as `""`, as the spec says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    #[serde(default)]
    pub keyid: String,
    #[serde(with = "base64_bytes")]
    pub sig: Vec<u8>,
}

impl Envelope {
    /// An envelope with no signatures yet; sign [`Envelope::pae`] and add the result.
    pub fn unsigned(payload_type: &str, payload: Vec<u8>) -> Self {
        Self { payload_type: payload_type.to_owned(), payload, signatures: Vec::new() }
    }

    /// The bytes a signature must cover.
    pub fn pae(&self) -> Vec<u8> {
        pae(&self.payload_type, &self.payload)
    }

    /// Adds a signature with an empty keyid.
    pub fn add_signature(&mut self, sig: Vec<u8>) {
        self.signatures.push(Signature { keyid: String::new(), sig });
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("an envelope of strings always serializes")
    }

    /// Parses an envelope; base64 may be standard or URL-safe, padded or not, as the spec allows.
    pub fn parse(bytes: &[u8]) -> Result<Self, FormatError> {
        serde_json::from_slice(bytes).map_err(|e| FormatError::malformed("DSSE envelope", e.to_string()))
    }

    /// Parses an envelope and refuses it, before any signature is checked, when it carries more than
    /// `max_signatures` signatures: each one costs a verification per key tried.
    pub fn parse_bounded(bytes: &[u8], max_signatures: usize) -> Result<Self, FormatError> {
        let envelope = Self::parse(bytes)?;
        let count = envelope.signatures.len();
        if count > max_signatures {
            return Err(FormatError::TooManySignatures { count, limit: max_signatures });
        }
        Ok(envelope)
    }

    /// The payload, if at least one signature verifies over the PAE with `key`. Use the returned
    /// bytes, not a re-parse of the envelope: they are the ones that were verified.
    pub fn verify(&self, key: &PublicKey) -> Result<&[u8], KeyError> {
        let pae = self.pae();
        let valid = self.signatures.iter().any(|s| key.verify(&pae, &s.sig).is_ok());
        valid.then_some(self.payload.as_slice()).ok_or(KeyError::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COSIGN_ENVELOPE: &[u8] = include_bytes!("../../tests/fixtures/third-party/cosign-2.5/att-dsse-envelope.json");
    const COSIGN_KEY: &str = include_str!("../../tests/fixtures/third-party/cosign-2.5/signer.pub");

    /// The key of the DSSE protocol's test vector (protocol.md, "Test Vectors"), as an uncompressed point.
    const SPEC_KEY_SEC1: &str = "0467cd390f77aa359cb08c2235f652270493a9ed832b0abcc01f70954c0390d238\
                                 0c782bd54e269125a44f4433aff1432ce94e12bca73aa67ac80cea12608ddf74";
    const SPEC_ENVELOPE: &str = r#"{"payload": "aGVsbG8gd29ybGQ=",
 "payloadType": "http://example.com/HelloWorld",
 "signatures": [{"sig": "A3JqsQGtVsJ2O2xqrI5IcnXip5GToJ3F+FnZ+O88SjtR6rDAajabZKciJTfUiHqJPcIAriEGAHTVeCUjW2JIZA=="}]}"#;

    #[test]
    fn pae_matches_the_spec_example() {
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
        );
    }

    #[test]
    fn pae_counts_bytes_not_characters() {
        assert_eq!(pae("t/é", "ü".as_bytes()), "DSSEv1 4 t/é 2 ü".as_bytes());
        assert_eq!(pae("", b""), b"DSSEv1 0  0 ");
    }

    #[test]
    fn verifies_the_spec_test_vector() {
        let point = crate::formats::digest::hex_decode(SPEC_KEY_SEC1).unwrap();
        let key = PublicKey::from_p256(&p256::ecdsa::VerifyingKey::from_sec1_bytes(&point).unwrap());
        let mut envelope = Envelope::parse(SPEC_ENVELOPE.as_bytes()).unwrap();
        assert_eq!(envelope.signatures[0].keyid, "");
        let raw = p256::ecdsa::Signature::from_slice(&envelope.signatures[0].sig).unwrap();
        envelope.signatures[0].sig = raw.to_der().as_bytes().to_vec();
        assert_eq!(envelope.verify(&key).unwrap(), b"hello world");
    }

    #[test]
    fn verifies_cosign_envelope_and_rejects_changes() {
        let key = PublicKey::from_pem(COSIGN_KEY).unwrap();
        let envelope = Envelope::parse(COSIGN_ENVELOPE).unwrap();
        assert_eq!(envelope.payload_type, IN_TOTO_PAYLOAD_TYPE);
        assert_eq!(envelope.verify(&key).unwrap(), envelope.payload.as_slice());

        let mut other_type = envelope.clone();
        other_type.payload_type = "application/json".to_owned();
        assert!(matches!(other_type.verify(&key), Err(KeyError::BadSignature)));
        let mut changed = envelope.clone();
        changed.payload[0] ^= 1;
        assert!(changed.verify(&key).is_err());
        let mut unsigned = envelope;
        unsigned.signatures.clear();
        assert!(unsigned.verify(&key).is_err());
    }

    #[test]
    fn one_good_signature_among_bad_ones_is_enough() {
        let key = PublicKey::from_pem(COSIGN_KEY).unwrap();
        let mut envelope = Envelope::parse(COSIGN_ENVELOPE).unwrap();
        envelope.signatures.insert(0, Signature { keyid: "other".to_owned(), sig: vec![0; 70] });
        assert!(envelope.verify(&key).is_ok());
    }

    #[test]
    fn an_envelope_over_the_signature_cap_is_refused_naming_count_and_limit() {
        let mut envelope = Envelope::parse(COSIGN_ENVELOPE).unwrap();
        let signature = envelope.signatures[0].clone();
        envelope.signatures.resize(1000, signature);
        let error = Envelope::parse_bounded(&envelope.to_json(), 16).unwrap_err();
        assert!(matches!(error, FormatError::TooManySignatures { count: 1000, limit: 16 }), "{error}");
        assert_eq!(error.to_string(), "the DSSE envelope has 1000 signatures; the limit is 16");
        envelope.signatures.truncate(16);
        assert_eq!(Envelope::parse_bounded(&envelope.to_json(), 16).unwrap(), envelope);
    }

    #[test]
    fn writes_the_same_bytes_as_cosign() {
        let cosign = Envelope::parse(COSIGN_ENVELOPE).unwrap();
        let mut ours = Envelope::unsigned(IN_TOTO_PAYLOAD_TYPE, cosign.payload.clone());
        ours.add_signature(cosign.signatures[0].sig.clone());
        assert_eq!(ours.to_json(), COSIGN_ENVELOPE);
        assert_eq!(Envelope::parse(&ours.to_json()).unwrap(), ours);
    }

    #[test]
    fn accepts_url_safe_and_unpadded_base64_and_refuses_garbage() {
        let url_safe = r#"{"payloadType":"t","payload":"-_8","signatures":[{"sig":"AQ"}]}"#;
        let envelope = Envelope::parse(url_safe.as_bytes()).unwrap();
        assert_eq!(envelope.payload, [0xfb, 0xff]);
        assert_eq!(envelope.signatures[0].sig, [1]);
        let garbage = r#"{"payloadType":"t","payload":"%%","signatures":[]}"#;
        assert!(matches!(Envelope::parse(garbage.as_bytes()), Err(FormatError::MalformedDocument { .. })));
        assert!(Envelope::parse(br#"{"payload":"","signatures":[]}"#).is_err());
    }
}
