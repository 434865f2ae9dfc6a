//! Verifying a whole Sigstore bundle (v0.1, v0.2, v0.3) against a trusted root: the signer (a Fulcio
//! certificate chain valid at a verified signing time, or a given public key), the transparency-log entries
//! and timestamps, and the signature over the artifact or the DSSE envelope.
//!
//! The order is the one Sigstore's reference verifiers follow: read the material, establish the verified
//! times (log entries whose signed entry timestamp or inclusion proof verifies, RFC 3161 timestamps from a
//! trusted authority), validate the certificate chain at every one of those times, check the embedded SCTs
//! when the root has CT logs, then the signature. Which identity is allowed is the caller's policy.

use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;

use super::certificate::{CertificateIdentity, VerifiedCertificate, verify_chain};
use super::key::{HashAlgorithm, VerifyingKey};
use super::sct::verify_embedded_scts;
use super::timestamp::{VerifiedTimestamp, verify_timestamp};
use super::tlog::{SignedContent, SignerDer, VerifiedEntry, verify_entry};
use super::{PkiError, TrustedRoot};
use crate::formats::Digest;
use crate::formats::bundle::{Bundle, BundleContent, SHA2_256, Signer};
use crate::formats::digest::hex_decode;
use crate::keys::PublicKey;

/// What signed: a certificate from one of the root's authorities (any identity: the policy decides which
/// are allowed), or the given key.
#[derive(Debug, Clone, Copy)]
pub enum Expected<'a> {
    AnyCertificate,
    Key(&'a PublicKey),
}

/// What was signed, for a message signature: the artifact's bytes or its SHA-256. A DSSE bundle's payload
/// is returned for the caller to bind (an in-toto Statement's subjects).
#[derive(Debug, Clone, Copy)]
pub enum Artifact<'a> {
    Bytes(&'a [u8]),
    Digest(&'a Digest),
}

/// The facts a verified bundle establishes.
#[derive(Debug, Clone)]
pub struct VerifiedBundle {
    /// The certificate identity, when a certificate signed.
    pub certificate: Option<CertificateIdentity>,
    pub entries: Vec<VerifiedEntry>,
    pub timestamps: Vec<VerifiedTimestamp>,
    /// The DSSE payload type and payload, for a DSSE bundle.
    pub dsse_payload: Option<(String, Vec<u8>)>,
}

impl VerifiedBundle {
    /// The times a log or a timestamp authority vouches for.
    pub fn verified_times(&self) -> Vec<OffsetDateTime> {
        let logged = self.entries.iter().filter_map(|entry| entry.integrated_time);
        logged.chain(self.timestamps.iter().map(|stamp| stamp.time)).collect()
    }
}

fn bundle_error(reason: impl Into<String>) -> PkiError {
    PkiError::Bundle(reason.into())
}

/// The signer as the bundle presents it, checked against what the caller expects.
enum Material<'a> {
    Certificate { leaf: &'a [u8], intermediates: Vec<Vec<u8>> },
    Key(&'a PublicKey),
}

impl Material<'_> {
    fn signer_der(&self) -> SignerDer<'_> {
        match self {
            Self::Certificate { leaf, .. } => SignerDer::Certificate(leaf),
            Self::Key(key) => SignerDer::PublicKey(key.spki_der()),
        }
    }
}

fn material<'a>(bundle: &'a Bundle, expected: Expected<'a>) -> Result<Material<'a>, PkiError> {
    match (bundle.verification_material.signer(), expected) {
        (Some(Signer::Certificate { leaf, intermediates }), Expected::AnyCertificate) => Ok(Material::Certificate {
            leaf,
            intermediates: intermediates.iter().map(|certificate| certificate.raw_bytes.clone()).collect(),
        }),
        (Some(Signer::PublicKey(_)), Expected::Key(key)) => Ok(Material::Key(key)),
        (Some(Signer::Certificate { .. }), Expected::Key(_)) => {
            Err(bundle_error("signed by a certificate where a key was expected"))
        }
        (Some(Signer::PublicKey(_)), Expected::AnyCertificate) => {
            Err(bundle_error("signed by a key, not by a certificate: verify it with that key"))
        }
        (None, _) => Err(bundle_error("no verification material")),
    }
}

/// The signature the log entries and timestamps cover, and what it signs.
fn signed_content<'a>(bundle: &'a Bundle, artifact_sha256: &'a [u8]) -> Result<SignedContent<'a>, PkiError> {
    match &bundle.content {
        BundleContent::MessageSignature(message) => {
            if let Some(recorded) = &message.message_digest {
                if recorded.algorithm != SHA2_256 || recorded.digest != artifact_sha256 {
                    return Err(bundle_error("the message digest is not the artifact's SHA-256"));
                }
            }
            Ok(SignedContent::Message { artifact_sha256, signature: &message.signature })
        }
        BundleContent::DsseEnvelope(envelope) => match envelope.signatures.len() {
            1 => Ok(SignedContent::Envelope(envelope)),
            _ => Err(bundle_error("a DSSE envelope in a bundle carries exactly one signature")),
        },
    }
}

fn artifact_sha256(artifact: Artifact<'_>) -> Result<Vec<u8>, PkiError> {
    match artifact {
        Artifact::Bytes(bytes) => Ok(Sha256::digest(bytes).to_vec()),
        Artifact::Digest(digest) => hex_decode(digest.hex()).ok_or_else(|| bundle_error("the digest is not hex")),
    }
}

/// Verifies `bundle` against `root` for `expected`, over `artifact` (message signatures), at `now`.
///
/// Every log entry and timestamp the bundle carries must verify. A certificate needs at least one verified
/// time and must chain to an authority of `root` at each of them; whether a key-signed bundle must carry a
/// log entry or a timestamp is the caller's policy (`entries`, `timestamps` say what verified).
pub fn verify_bundle(
    bundle: &Bundle,
    root: &TrustedRoot,
    expected: Expected<'_>,
    artifact: Artifact<'_>,
    now: OffsetDateTime,
) -> Result<VerifiedBundle, PkiError> {
    let material = material(bundle, expected)?;
    let digest = artifact_sha256(artifact)?;
    let content = signed_content(bundle, &digest)?;
    let signature = match content {
        SignedContent::Message { signature, .. } => signature,
        SignedContent::Envelope(envelope) => envelope.signatures[0].sig.as_slice(),
    };

    let entries = bundle
        .verification_material
        .tlog_entries
        .iter()
        .map(|entry| verify_entry(entry, &root.tlogs, material.signer_der(), content, now))
        .collect::<Result<Vec<_>, _>>()?;
    let timestamps = bundle
        .verification_material
        .rfc3161_timestamps()
        .iter()
        .map(|stamp| verify_timestamp(&stamp.signed_timestamp, signature, &root.timestamp_authorities))
        .collect::<Result<Vec<_>, _>>()?;
    let mut verified = VerifiedBundle { certificate: None, entries, timestamps, dsse_payload: None };
    check_untimed_logs(&verified, root)?;

    let key = match &material {
        Material::Certificate { leaf, intermediates } => {
            let certificate = verify_certificate(leaf, intermediates, root, &verified.verified_times())?;
            verified.certificate = Some(certificate.identity);
            certificate.key
        }
        Material::Key(key) => VerifyingKey::from_public_key(key)?,
    };
    verified.dsse_payload = verify_signature(&key, content, artifact)?;
    Ok(verified)
}

/// A Rekor v2 entry carries no time of its own: the log that holds it must have been valid at every time a
/// timestamp authority vouched for.
fn check_untimed_logs(verified: &VerifiedBundle, root: &TrustedRoot) -> Result<(), PkiError> {
    for entry in verified.entries.iter().filter(|entry| entry.integrated_time.is_none()) {
        let windows = root.tlogs.iter().filter(|log| log.base_url == entry.log).map(|log| log.validity);
        for window in windows {
            if let Some(stamp) = verified.timestamps.iter().find(|stamp| !window.contains(stamp.time)) {
                let reason = format!("the log {} was not valid at the timestamp's time {}", entry.log, stamp.time);
                return Err(PkiError::Tlog(reason));
            }
        }
    }
    Ok(())
}

/// The chain must hold at every verified time (a time outside the certificate's validity fails it), and
/// carry an SCT from one of the root's CT logs when the root lists any.
fn verify_certificate(
    leaf: &[u8],
    intermediates: &[Vec<u8>],
    root: &TrustedRoot,
    times: &[OffsetDateTime],
) -> Result<VerifiedCertificate, PkiError> {
    let Some((first, others)) = times.split_first() else {
        return Err(bundle_error("no verified signing time: a certificate needs a log entry or a timestamp"));
    };
    let trusted_roots = root.certificate_authorities.iter().filter_map(|authority| authority.certificates.last());
    for trusted in trusted_roots {
        if intermediates.contains(trusted) {
            return Err(PkiError::Certificate("the bundle's chain includes a root certificate".into()));
        }
    }
    let certificate = verify_chain(leaf, intermediates, &root.certificate_authorities, *first)?;
    for time in others {
        verify_chain(leaf, intermediates, &root.certificate_authorities, *time)?;
    }
    if !root.ctlogs.is_empty() {
        verify_embedded_scts(leaf, &certificate.issuer_der, &root.ctlogs)?;
    }
    Ok(certificate)
}

fn verify_signature(
    key: &VerifyingKey,
    content: SignedContent<'_>,
    artifact: Artifact<'_>,
) -> Result<Option<(String, Vec<u8>)>, PkiError> {
    let invalid = |_| PkiError::Signature("the signature does not verify with the signer's key".into());
    match (content, artifact) {
        (SignedContent::Message { signature, .. }, Artifact::Bytes(bytes)) => {
            key.verify(bytes, signature).map_err(invalid)?;
            Ok(None)
        }
        (SignedContent::Message { signature, artifact_sha256 }, Artifact::Digest(_)) => {
            key.verify_digest(HashAlgorithm::Sha256, artifact_sha256, signature).map_err(invalid)?;
            Ok(None)
        }
        (SignedContent::Envelope(envelope), _) => {
            key.verify(&envelope.pae(), &envelope.signatures[0].sig).map_err(invalid)?;
            Ok(Some((envelope.payload_type.clone(), envelope.payload.clone())))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CASES: &str =
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/third-party/sigstore-conformance/bundle-verify");

    fn case(name: &str) -> Bundle {
        Bundle::parse(&std::fs::read(format!("{CASES}/{name}/bundle.sigstore.json")).unwrap()).unwrap()
    }

    fn root_of(name: &str) -> TrustedRoot {
        TrustedRoot::parse(&std::fs::read(format!("{CASES}/{name}/trusted_root.json")).unwrap()).unwrap()
    }

    fn key_of(name: &str) -> PublicKey {
        PublicKey::from_pem(&std::fs::read_to_string(format!("{CASES}/{name}/key.pub")).unwrap()).unwrap()
    }

    fn a_txt() -> Vec<u8> {
        std::fs::read(format!("{CASES}/a.txt")).unwrap()
    }

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
    }

    fn keyless(bundle: &Bundle, root: &TrustedRoot, artifact: Artifact<'_>) -> Result<VerifiedBundle, PkiError> {
        verify_bundle(bundle, root, Expected::AnyCertificate, artifact, now())
    }

    #[test]
    fn a_keyless_message_signature_verifies_over_the_artifact_or_its_digest() {
        let root = TrustedRoot::production();
        let bundle = case("happy-path-v0.3");
        let verified = keyless(&bundle, &root, Artifact::Bytes(&a_txt())).unwrap();
        let identity = verified.certificate.as_ref().unwrap();
        assert_eq!(identity.issuer, "https://token.actions.githubusercontent.com");
        assert!(identity.subject.starts_with("https://github.com/sigstore-conformance/"));
        assert_eq!(verified.entries.len(), 1);
        assert_eq!(verified.verified_times().len(), 1);
        assert!(verified.dsse_payload.is_none());
        keyless(&bundle, &root, Artifact::Digest(&Digest::of(&a_txt()))).unwrap();
    }

    #[test]
    fn the_artifact_signature_and_signer_kind_must_match() {
        let root = TrustedRoot::production();
        let bundle = case("happy-path-v0.3");
        let error = keyless(&bundle, &root, Artifact::Bytes(b"another artifact")).unwrap_err();
        assert!(error.to_string().contains("message digest"), "{error}");
        let key = key_of("managed-key-happy-path");
        let error = verify_bundle(&bundle, &root, Expected::Key(&key), Artifact::Bytes(&a_txt()), now()).unwrap_err();
        assert!(error.to_string().contains("where a key was expected"), "{error}");

        let mut bad_signature = bundle;
        let BundleContent::MessageSignature(message) = &mut bad_signature.content else { panic!("message") };
        message.signature[10] ^= 1;
        assert!(keyless(&bad_signature, &root, Artifact::Bytes(&a_txt())).is_err());
    }

    #[test]
    fn a_key_signed_bundle_verifies_with_its_key_only() {
        let root = root_of("managed-key-and-trusted-root");
        let bundle = case("managed-key-and-trusted-root");
        let key = key_of("managed-key-and-trusted-root");
        let verified = verify_bundle(&bundle, &root, Expected::Key(&key), Artifact::Bytes(&a_txt()), now()).unwrap();
        assert!(verified.certificate.is_none());
        assert_eq!(verified.entries.len(), 1);
        let error = keyless(&bundle, &root, Artifact::Bytes(&a_txt())).unwrap_err();
        assert!(error.to_string().contains("signed by a key"), "{error}");
        let other = PublicKey::from_p256(p256::ecdsa::SigningKey::from_slice(&[7; 32]).unwrap().verifying_key());
        assert!(verify_bundle(&bundle, &root, Expected::Key(&other), Artifact::Bytes(&a_txt()), now()).is_err());
    }

    #[test]
    fn a_certificate_needs_a_verified_time_inside_its_validity() {
        let no_time = case("rekor2-no-timestamp_fail");
        let error = keyless(&no_time, &root_of("rekor2-no-timestamp_fail"), Artifact::Bytes(&a_txt())).unwrap_err();
        assert!(error.to_string().contains("no verified signing time"), "{error}");

        let name = "intoto-set-outside-signing-cert-validity_fail";
        let artifact = std::fs::read(format!("{CASES}/{name}/artifact")).unwrap();
        let error = keyless(&case(name), &root_of(name), Artifact::Bytes(&artifact)).unwrap_err();
        assert!(matches!(error, PkiError::Certificate(_)), "{error}");
    }

    #[test]
    fn the_chain_must_hold_at_every_verified_time_not_only_the_first() {
        let name = "intoto-tsa-timestamp-outside-cert-validity_fail";
        let (bundle, root) = (case(name), root_of(name));
        let artifact = std::fs::read(format!("{CASES}/{name}/artifact")).unwrap();
        let leaf_only = |at: OffsetDateTime| {
            let Some(Signer::Certificate { leaf, intermediates }) = bundle.verification_material.signer() else {
                panic!("a certificate bundle")
            };
            let intermediates: Vec<Vec<u8>> = intermediates.iter().map(|c| c.raw_bytes.clone()).collect();
            verify_chain(leaf, &intermediates, &root.certificate_authorities, at)
        };
        let integrated = bundle.verification_material.tlog_entries[0].integrated_time;
        leaf_only(OffsetDateTime::from_unix_timestamp(integrated).unwrap()).unwrap();
        let error = keyless(&bundle, &root, Artifact::Bytes(&artifact)).unwrap_err();
        assert!(matches!(error, PkiError::Certificate(_)), "{error}");
    }

    #[test]
    fn a_rekor_v2_entry_counts_only_while_its_log_was_valid_at_the_timestamp() {
        let bundle = case("rekor2-happy-path");
        let mut root = root_of("rekor2-happy-path");
        assert!(keyless(&bundle, &root, Artifact::Bytes(&a_txt())).is_ok());
        let stamped = keyless(&bundle, &root, Artifact::Bytes(&a_txt())).unwrap().timestamps[0].time;
        let log = bundle.verification_material.tlog_entries[0].log_id.key_id.clone();
        for tlog in root.tlogs.iter_mut().filter(|tlog| tlog.log_id == log) {
            tlog.validity.end = Some(stamped - time::Duration::seconds(1));
        }
        let error = keyless(&bundle, &root, Artifact::Bytes(&a_txt())).unwrap_err();
        assert!(error.to_string().contains("was not valid at the timestamp's time"), "{error}");
    }

    #[test]
    fn a_chain_that_carries_a_trust_root_certificate_is_refused() {
        let root = TrustedRoot::production();
        let mut bundle = case("happy-path-v0.2");
        let chain = bundle.verification_material.x509_certificate_chain.as_mut().unwrap();
        let fulcio_root = root.certificate_authorities.last().unwrap().certificates.last().unwrap().clone();
        chain.certificates.push(crate::formats::bundle::X509Certificate { raw_bytes: fulcio_root });
        let error = keyless(&bundle, &root, Artifact::Bytes(&a_txt())).unwrap_err();
        assert!(error.to_string().contains("root certificate"), "{error}");
    }

    #[test]
    fn a_dsse_bundle_returns_its_payload() {
        let root = TrustedRoot::production();
        let verified = keyless(&case("happy-path-intoto-in-dsse-v3"), &root, Artifact::Bytes(b"unused")).unwrap();
        let (payload_type, payload) = verified.dsse_payload.unwrap();
        assert_eq!(payload_type, crate::formats::dsse::IN_TOTO_PAYLOAD_TYPE);
        assert!(crate::formats::in_toto::Statement::parse(&payload).is_ok());
    }
}
