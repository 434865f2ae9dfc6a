//! cosign v2's transparency-logged and keyless tag-scheme layers as Sigstore bundles: a `.sig` layer (a
//! simple-signing payload, its signature, and the annotations `dev.sigstore.cosign/certificate`, `…/chain`,
//! `…/bundle` and `…/rfc3161timestamp`) or a `.att` layer (a DSSE envelope with the same annotations) read
//! as a v0.1 bundle, so that one verifier (`pki::verify_bundle`) judges both.
//!
//! The `…/chain` annotation (the intermediates and the root) is read but not put in the bundle: the chain
//! is built from the trusted root's authorities, as cosign and sigstore-go do, and a bundle that carried a
//! root or CA certificate would be refused.
//!
//! `…/bundle` is cosign's Rekor v1 signed entry timestamp: `{"SignedEntryTimestamp": base64, "Payload":
//! {"body": base64 canonical entry, "integratedTime": seconds, "logIndex": n, "logID": hex}}`; it becomes the
//! bundle's one tlog entry with an inclusion promise. `…/rfc3161timestamp` is `{"SignedRFC3161Timestamp":
//! base64 DER}`. Owns the conversion only: nothing here is verified.

use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use super::bundle::{Bundle, SHA2_256};
use super::dsse::Envelope;
use super::{FormatError, base64_bytes};

pub const CERTIFICATE_ANNOTATION: &str = "dev.sigstore.cosign/certificate";
pub const CHAIN_ANNOTATION: &str = "dev.sigstore.cosign/chain";
pub const BUNDLE_ANNOTATION: &str = "dev.sigstore.cosign/bundle";
pub const TIMESTAMP_ANNOTATION: &str = "dev.sigstore.cosign/rfc3161timestamp";

/// The v0.1 media type: it allows a whole certificate chain and a tlog entry with only an inclusion promise.
const BUNDLE_V0_1: &str = "application/vnd.dev.sigstore.bundle+json;version=0.1";

const WHAT: &str = "cosign layer annotations";

/// The Sigstore annotations of one cosign layer, as written (PEM and JSON text).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CosignAnnotations {
    pub certificate: Option<String>,
    pub chain: Option<String>,
    pub bundle: Option<String>,
    pub rfc3161_timestamp: Option<String>,
}

impl CosignAnnotations {
    /// The four annotations among a layer's.
    pub fn from_layer(annotations: Option<&std::collections::BTreeMap<String, String>>) -> Self {
        let get = |key: &str| annotations.and_then(|a| a.get(key)).cloned();
        Self {
            certificate: get(CERTIFICATE_ANNOTATION),
            chain: get(CHAIN_ANNOTATION),
            bundle: get(BUNDLE_ANNOTATION),
            rfc3161_timestamp: get(TIMESTAMP_ANNOTATION),
        }
    }

    /// True when the layer carries anything a Sigstore verifier reads: a certificate, a log entry or a
    /// timestamp (a plain key signature has none).
    pub fn any(&self) -> bool {
        self.certificate.is_some() || self.bundle.is_some() || self.rfc3161_timestamp.is_some()
    }

    /// A `.sig` layer (`signature` over the simple-signing `payload`) as a message-signature bundle.
    pub fn message_signature_bundle(&self, payload: &[u8], signature: &[u8]) -> Result<Bundle, FormatError> {
        let content = json!({"messageSignature": {
            "messageDigest": {"algorithm": SHA2_256, "digest": base64_bytes::encode(&Sha256::digest(payload))},
            "signature": base64_bytes::encode(signature),
        }});
        self.bundle_with(content)
    }

    /// A `.att` layer (a DSSE envelope) as a DSSE bundle.
    pub fn dsse_bundle(&self, envelope: &Envelope) -> Result<Bundle, FormatError> {
        let envelope: Value = serde_json::from_slice(&envelope.to_json())
            .map_err(|e| FormatError::malformed(WHAT, format!("the envelope: {e}")))?;
        self.bundle_with(json!({ "dsseEnvelope": envelope }))
    }

    fn bundle_with(&self, content: Value) -> Result<Bundle, FormatError> {
        let mut material = serde_json::Map::new();
        match &self.certificate {
            Some(leaf) => {
                let certificates = pem_certificates(leaf)?;
                if certificates.len() != 1 {
                    return Err(FormatError::malformed(WHAT, "the certificate annotation must hold one certificate"));
                }
                if let Some(chain) = &self.chain {
                    pem_certificates(chain)?;
                }
                let certificates: Vec<Value> =
                    certificates.iter().map(|der| json!({"rawBytes": base64_bytes::encode(der)})).collect();
                material.insert("x509CertificateChain".into(), json!({ "certificates": certificates }));
            }
            None => {
                material.insert("publicKey".into(), json!({"hint": ""}));
            }
        }
        let entries: Vec<Value> = self.bundle.as_deref().map(tlog_entry).transpose()?.into_iter().collect();
        material.insert("tlogEntries".into(), Value::Array(entries));
        if let Some(timestamp) = &self.rfc3161_timestamp {
            let signed = rfc3161_timestamp(timestamp)?;
            material.insert(
                "timestampVerificationData".into(),
                json!({"rfc3161Timestamps": [{"signedTimestamp": signed}]}),
            );
        }
        let mut bundle = json!({"mediaType": BUNDLE_V0_1, "verificationMaterial": material});
        if let (Some(bundle), Value::Object(content)) = (bundle.as_object_mut(), content) {
            bundle.extend(content);
        }
        Bundle::parse(&serde_json::to_vec(&bundle).map_err(|e| FormatError::malformed(WHAT, e.to_string()))?)
    }
}

#[derive(Deserialize)]
struct RekorBundle {
    #[serde(rename = "SignedEntryTimestamp")]
    signed_entry_timestamp: String,
    #[serde(rename = "Payload")]
    payload: RekorPayload,
}

#[derive(Deserialize)]
struct RekorPayload {
    body: String,
    #[serde(rename = "integratedTime")]
    integrated_time: i64,
    #[serde(rename = "logIndex")]
    log_index: i64,
    #[serde(rename = "logID")]
    log_id: String,
}

/// cosign's `…/bundle` annotation as a bundle tlog entry (proto3 JSON: 64-bit integers as strings).
fn tlog_entry(annotation: &str) -> Result<Value, FormatError> {
    let rekor: RekorBundle = serde_json::from_str(annotation)
        .map_err(|e| FormatError::malformed(WHAT, format!("the {BUNDLE_ANNOTATION} annotation: {e}")))?;
    let log_id = super::digest::hex_decode(&rekor.payload.log_id)
        .ok_or_else(|| FormatError::malformed(WHAT, "the bundle annotation's logID is not hex"))?;
    let body = base64_bytes::decode(&rekor.payload.body)
        .map_err(|_| FormatError::malformed(WHAT, "the bundle annotation's body is not base64"))?;
    let kind: Value = serde_json::from_slice(&body)
        .map_err(|_| FormatError::malformed(WHAT, "the bundle annotation's body is not a Rekor entry"))?;
    let (Some(kind_name), Some(version)) = (kind["kind"].as_str(), kind["apiVersion"].as_str()) else {
        return Err(FormatError::malformed(WHAT, "the bundle annotation's body names no kind and apiVersion"));
    };
    Ok(json!({
        "logIndex": rekor.payload.log_index.to_string(),
        "logId": {"keyId": base64_bytes::encode(&log_id)},
        "kindVersion": {"kind": kind_name, "version": version},
        "integratedTime": rekor.payload.integrated_time.to_string(),
        "inclusionPromise": {"signedEntryTimestamp": rekor.signed_entry_timestamp},
        "canonicalizedBody": rekor.payload.body,
    }))
}

/// The base64 DER token of cosign's `…/rfc3161timestamp` annotation.
fn rfc3161_timestamp(annotation: &str) -> Result<String, FormatError> {
    #[derive(Deserialize)]
    struct Timestamp {
        #[serde(rename = "SignedRFC3161Timestamp")]
        signed: String,
    }
    let timestamp: Timestamp = serde_json::from_str(annotation)
        .map_err(|e| FormatError::malformed(WHAT, format!("the {TIMESTAMP_ANNOTATION} annotation: {e}")))?;
    Ok(timestamp.signed)
}

/// The DER of every `CERTIFICATE` block of `pem`, in order.
pub fn pem_certificates(pem: &str) -> Result<Vec<Vec<u8>>, FormatError> {
    let mut certificates = Vec::new();
    let mut block: Option<String> = None;
    for line in pem.lines().map(str::trim) {
        match (&mut block, line) {
            (None, "-----BEGIN CERTIFICATE-----") => block = Some(String::new()),
            (Some(text), "-----END CERTIFICATE-----") => {
                let der = base64_bytes::decode(text)
                    .map_err(|_| FormatError::malformed(WHAT, "a certificate's PEM is not base64"))?;
                certificates.push(der);
                block = None;
            }
            (Some(text), line) => text.push_str(line),
            (None, _) => {}
        }
    }
    if block.is_some() || certificates.is_empty() {
        return Err(FormatError::malformed(WHAT, "no complete PEM certificate"));
    }
    Ok(certificates)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pem(der: &[u8]) -> String {
        format!("-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n", base64_bytes::encode(der))
    }

    fn rekor_annotation() -> String {
        let body = base64_bytes::encode(br#"{"apiVersion":"0.0.1","kind":"hashedrekord","spec":{}}"#);
        format!(
            r#"{{"SignedEntryTimestamp":"c2V0","Payload":{{"body":"{body}","integratedTime":1700000000,"logIndex":42,"logID":"c0d23d6ad406973f9559f3ba2d1ca01f84147d8ffc5b8445c224f98b9591801d"}}}}"#
        )
    }

    #[test]
    fn a_keyless_sig_layer_reads_as_a_v0_1_bundle_with_its_certificate_and_promise() {
        let annotations = CosignAnnotations {
            certificate: Some(pem(b"leaf")),
            chain: Some(format!("{}{}", pem(b"intermediate"), pem(b"root"))),
            bundle: Some(rekor_annotation()),
            rfc3161_timestamp: Some(r#"{"SignedRFC3161Timestamp":"dHNy"}"#.into()),
        };
        assert!(annotations.any());
        let bundle = annotations.message_signature_bundle(b"payload", b"sig").unwrap();
        let json: Value = serde_json::from_slice(&bundle.to_json()).unwrap();
        let material = &json["verificationMaterial"];
        let chain: Vec<_> = material["x509CertificateChain"]["certificates"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| base64_bytes::decode(c["rawBytes"].as_str().unwrap()).unwrap())
            .collect();
        assert_eq!(chain, [b"leaf".to_vec()], "the chain comes from the trusted root");
        let entry = &material["tlogEntries"][0];
        assert_eq!(entry["logIndex"], "42");
        assert_eq!(entry["integratedTime"], "1700000000");
        assert_eq!(entry["kindVersion"]["kind"], "hashedrekord");
        assert_eq!(entry["inclusionPromise"]["signedEntryTimestamp"], "c2V0");
        let log_id = base64_bytes::decode(entry["logId"]["keyId"].as_str().unwrap()).unwrap();
        assert_eq!(log_id[0], 0xc0);
        assert_eq!(material["timestampVerificationData"]["rfc3161Timestamps"][0]["signedTimestamp"], "dHNy");
        let digest = base64_bytes::decode(json["messageSignature"]["messageDigest"]["digest"].as_str().unwrap());
        assert_eq!(digest.unwrap(), Sha256::digest(b"payload").to_vec());
    }

    #[test]
    fn broken_annotations_are_refused_naming_which() {
        let no_pem = CosignAnnotations { certificate: Some("not pem".into()), ..Default::default() };
        assert!(no_pem.message_signature_bundle(b"p", b"s").unwrap_err().to_string().contains("PEM"));
        let bad_bundle = CosignAnnotations { bundle: Some("{}".into()), ..Default::default() };
        let e = bad_bundle.message_signature_bundle(b"p", b"s").unwrap_err().to_string();
        assert!(e.contains(BUNDLE_ANNOTATION), "{e}");
        assert!(!CosignAnnotations::default().any());
    }
}
