//! Rekor transparency-log entries: v1 (signed entry timestamp over the entry, inclusion proof against a
//! signed checkpoint) and v2 (inclusion proof against a checkpoint in a signed note, cosignatures allowed),
//! and the binding of the entry body (hashedrekord, dsse, intoto) to the artifact, signature and key.
//!
//! Must not touch: which signer is allowed (the caller's policy) or the certificate chain (certificate.rs).

use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;

use super::PkiError;
use super::trusted_root::TransparencyLog;
use crate::formats::base64_bytes;
use crate::formats::bundle::{InclusionProof, TlogEntry};
use crate::formats::canonical::canonical_json;
use crate::formats::checkpoint::{Checkpoint, parse_note};
use crate::formats::digest::{hex_decode, hex_lower};
use crate::formats::dsse::Envelope;
use crate::merkle;

/// How far in the future an integrated time may be (clock skew between the log and the verifier).
pub const MAX_FUTURE_SKEW_SECONDS: i64 = 300;

/// A log entry that verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedEntry {
    pub log_index: u64,
    /// The log's base URL in the trusted root.
    pub log: String,
    /// Rekor v1's integrated time, when a signed entry timestamp or checkpoint vouches for it.
    pub integrated_time: Option<OffsetDateTime>,
}

/// Who signed, as the entry body must name it.
#[derive(Debug, Clone, Copy)]
pub enum SignerDer<'a> {
    /// The leaf certificate's DER.
    Certificate(&'a [u8]),
    /// A public key's DER SubjectPublicKeyInfo.
    PublicKey(&'a [u8]),
}

/// What was signed, as the entry body must record it.
#[derive(Debug, Clone, Copy)]
pub enum SignedContent<'a> {
    /// A message signature over an artifact with this SHA-256.
    Message { artifact_sha256: &'a [u8], signature: &'a [u8] },
    /// A DSSE envelope (its single signature is the one checked).
    Envelope(&'a Envelope),
}

fn tlog(reason: impl Into<String>) -> PkiError {
    PkiError::Tlog(reason.into())
}

/// Verifies `entry` against the logs of a trusted root: the log it names, its signed entry timestamp and
/// inclusion proof with a signed checkpoint (Rekor v1), or its inclusion proof with a checkpoint signed by
/// the log (Rekor v2); that its body records `content` signed by `signer`; that its time is not in the future.
pub fn verify_entry(
    entry: &TlogEntry,
    logs: &[TransparencyLog],
    signer: SignerDer<'_>,
    content: SignedContent<'_>,
    now: OffsetDateTime,
) -> Result<VerifiedEntry, PkiError> {
    let log = logs
        .iter()
        .find(|log| log.log_id == entry.log_id.key_id)
        .ok_or_else(|| tlog("the entry's log is not in the trusted root"))?;
    let log_index = u64::try_from(entry.log_index).map_err(|_| tlog("negative log index"))?;
    let integrated_time = if is_rekor_v2(entry) {
        let proof = entry.inclusion_proof.as_ref().ok_or_else(|| tlog("a Rekor v2 entry needs an inclusion proof"))?;
        verify_inclusion(entry, proof, log, Some(&log_name(log)))?;
        None
    } else {
        verify_rekor_v1(entry, log, now)?
    };
    verify_body(entry, signer, content)?;
    Ok(VerifiedEntry { log_index, log: log.base_url.clone(), integrated_time })
}

/// Rekor v2 writes hashedrekord and dsse entries at version 0.0.2, with no integrated time.
fn is_rekor_v2(entry: &TlogEntry) -> bool {
    entry.kind_version.version == "0.0.2" && matches!(entry.kind_version.kind.as_str(), "hashedrekord" | "dsse")
}

/// A log's name in its checkpoints: its base URL without the scheme.
fn log_name(log: &TransparencyLog) -> String {
    let url = log.base_url.trim_end_matches('/');
    url.split_once("://").map_or(url, |(_, rest)| rest).to_owned()
}

fn verify_rekor_v1(
    entry: &TlogEntry,
    log: &TransparencyLog,
    now: OffsetDateTime,
) -> Result<Option<OffsetDateTime>, PkiError> {
    if entry.inclusion_promise.is_none() && entry.inclusion_proof.is_none() {
        return Err(tlog("the entry has neither a signed entry timestamp nor an inclusion proof"));
    }
    if entry.inclusion_promise.is_some() {
        verify_signed_entry_timestamp(entry, log)?;
    }
    if let Some(proof) = &entry.inclusion_proof {
        verify_inclusion(entry, proof, log, None)?;
    }
    let time = OffsetDateTime::from_unix_timestamp(entry.integrated_time)
        .map_err(|_| tlog("the integrated time is out of range"))?;
    if time.unix_timestamp() > now.unix_timestamp() + MAX_FUTURE_SKEW_SECONDS {
        return Err(tlog("the integrated time is in the future"));
    }
    if time < log.validity.start || log.validity.end.is_some_and(|end| time > end) {
        return Err(tlog(format!("the log {} was not valid at the integrated time", log.base_url)));
    }
    Ok(Some(time))
}

/// The signed entry timestamp: the log's signature over the canonical JSON of the entry's body, integrated
/// time, log index and log id (hex).
pub fn verify_signed_entry_timestamp(entry: &TlogEntry, log: &TransparencyLog) -> Result<(), PkiError> {
    let promise = entry.inclusion_promise.as_ref().ok_or_else(|| tlog("no signed entry timestamp"))?;
    let payload = json!({
        "body": base64_bytes::encode(&entry.canonicalized_body),
        "integratedTime": entry.integrated_time,
        "logIndex": entry.log_index,
        "logID": hex_lower(&entry.log_id.key_id),
    });
    log.key
        .verify(&canonical_json(&payload), &promise.signed_entry_timestamp)
        .map_err(|_| tlog("the signed entry timestamp does not verify with the log's key"))
}

/// The inclusion proof reaches a root hash that a checkpoint signed by the log names for the same size.
/// For Rekor v2, `origin` is the name the checkpoint's first line must carry.
fn verify_inclusion(
    entry: &TlogEntry,
    proof: &InclusionProof,
    log: &TransparencyLog,
    origin: Option<&str>,
) -> Result<(), PkiError> {
    let index = u64::try_from(proof.log_index).map_err(|_| tlog("negative index in the inclusion proof"))?;
    let size = u64::try_from(proof.tree_size).map_err(|_| tlog("negative tree size in the inclusion proof"))?;
    let root = to_hash(&proof.root_hash)?;
    let hashes = proof.hashes.iter().map(|hash| to_hash(hash)).collect::<Result<Vec<_>, _>>()?;
    let leaf = merkle::leaf_hash(&entry.canonicalized_body);
    merkle::verify_inclusion(&leaf, index, size, &hashes, &root)
        .map_err(|e| tlog(format!("the inclusion proof does not verify: {e}")))?;
    let envelope = &proof.checkpoint.as_ref().ok_or_else(|| tlog("the inclusion proof has no checkpoint"))?.envelope;
    let checkpoint = verify_checkpoint(envelope, log, origin)?;
    if checkpoint.size != size || checkpoint.root_hash != root {
        return Err(tlog("the checkpoint's tree size or root hash differs from the inclusion proof's"));
    }
    Ok(())
}

fn to_hash(bytes: &[u8]) -> Result<merkle::Hash, PkiError> {
    bytes.try_into().map_err(|_| tlog("a hash in the inclusion proof is not 32 bytes"))
}

/// A checkpoint in a signed note, with a signature by the log's key: found by its key hint (the first four
/// bytes of the log id, which for both Rekor v1 and v2 is what the note key id is), others (witness
/// cosignatures, unknown keys) ignored.
pub fn verify_checkpoint(note: &str, log: &TransparencyLog, origin: Option<&str>) -> Result<Checkpoint, PkiError> {
    let (text, signatures) = parse_note(note).map_err(|e| tlog(format!("checkpoint: {e}")))?;
    let checkpoint = Checkpoint::parse_body(&text).map_err(|e| tlog(format!("checkpoint: {e}")))?;
    if let Some(origin) = origin {
        if checkpoint.origin != origin {
            return Err(tlog("the checkpoint's origin is not the log's name"));
        }
    }
    let hint = log.log_id.get(..4).ok_or_else(|| tlog("the log id is shorter than a key hint"))?;
    let signed = signatures
        .iter()
        .filter(|signature| signature.key_id == hint && origin.is_none_or(|origin| signature.name == origin))
        .any(|signature| log.key.verify(text.as_bytes(), &signature.signature).is_ok());
    if signed { Ok(checkpoint) } else { Err(tlog("no signature by the log's key on the checkpoint")) }
}

/// The body records this signature, this signer and this content.
pub fn verify_body(entry: &TlogEntry, signer: SignerDer<'_>, content: SignedContent<'_>) -> Result<(), PkiError> {
    let body: Value =
        serde_json::from_slice(&entry.canonicalized_body).map_err(|_| tlog("the entry body is not JSON"))?;
    let kind = (entry.kind_version.kind.as_str(), entry.kind_version.version.as_str());
    if body["kind"] != kind.0 || body["apiVersion"] != kind.1 {
        return Err(tlog("the entry body's kind or version differs from the entry's"));
    }
    let spec = &body["spec"];
    match (kind, content) {
        (("hashedrekord", "0.0.1"), SignedContent::Message { artifact_sha256, signature }) => {
            bind_hashedrekord_v001(spec, signer, artifact_sha256, signature)
        }
        (("hashedrekord", "0.0.2"), SignedContent::Message { artifact_sha256, signature }) => {
            bind_hashedrekord_v002(&spec["hashedRekordV002"], signer, artifact_sha256, signature)
        }
        (("hashedrekord", "0.0.2"), SignedContent::Envelope(envelope)) => {
            let digest = Sha256::digest(envelope.pae());
            bind_hashedrekord_v002(&spec["hashedRekordV002"], signer, &digest, only_signature(envelope)?)
        }
        (("dsse", "0.0.1"), SignedContent::Envelope(envelope)) => bind_dsse_v001(spec, signer, envelope),
        (("dsse", "0.0.2"), SignedContent::Envelope(envelope)) => bind_dsse_v002(&spec["dsseV002"], signer, envelope),
        (("intoto", "0.0.2"), SignedContent::Envelope(envelope)) => {
            bind_intoto_v002(&spec["content"], signer, envelope)
        }
        _ => Err(tlog(format!("a {} {} entry cannot record this bundle's content", kind.0, kind.1))),
    }
}

fn only_signature(envelope: &Envelope) -> Result<&[u8], PkiError> {
    match envelope.signatures.as_slice() {
        [signature] => Ok(&signature.sig),
        _ => Err(PkiError::Bundle("a DSSE envelope in a bundle carries exactly one signature".into())),
    }
}

fn mismatch(what: &str) -> PkiError {
    tlog(format!("the log entry does not record the bundle's {what}"))
}

fn base64_field(value: &Value) -> Option<Vec<u8>> {
    base64_bytes::decode(value.as_str()?).ok()
}

fn sha256_hex_field(hash: &Value) -> Option<Vec<u8>> {
    (hash["algorithm"] == "sha256").then_some(())?;
    hex_decode(hash["value"].as_str()?)
}

fn check(equal: bool, what: &str) -> Result<(), PkiError> {
    if equal { Ok(()) } else { Err(mismatch(what)) }
}

/// hashedrekord 0.0.1: `data.hash` (sha256, hex), `signature.content` and `signature.publicKey.content`
/// (a base64 PEM certificate or public key).
fn bind_hashedrekord_v001(
    spec: &Value,
    signer: SignerDer<'_>,
    artifact_sha256: &[u8],
    signature: &[u8],
) -> Result<(), PkiError> {
    let digest = sha256_hex_field(&spec["data"]["hash"]);
    check(digest.as_deref() == Some(artifact_sha256), "artifact digest")?;
    check(base64_field(&spec["signature"]["content"]).as_deref() == Some(signature), "signature")?;
    check(pem_field_names(&spec["signature"]["publicKey"]["content"], signer), "certificate or key")
}

/// hashedrekord 0.0.2 (Rekor v2): `data` (SHA2_256, base64), `signature.content`, `signature.verifier`.
fn bind_hashedrekord_v002(
    spec: &Value,
    signer: SignerDer<'_>,
    digest: &[u8],
    signature: &[u8],
) -> Result<(), PkiError> {
    let data = &spec["data"];
    check(data["algorithm"] == "SHA2_256" && base64_field(&data["digest"]).as_deref() == Some(digest), "digest")?;
    check(base64_field(&spec["signature"]["content"]).as_deref() == Some(signature), "signature")?;
    check(verifier_names(&spec["signature"]["verifier"], signer), "certificate or key")
}

/// dsse 0.0.1: `payloadHash` (sha256 of the payload, hex) and `signatures[]` of `{signature, verifier}`
/// (the verifier a base64 PEM), which must be exactly the envelope's.
fn bind_dsse_v001(spec: &Value, signer: SignerDer<'_>, envelope: &Envelope) -> Result<(), PkiError> {
    let payload_hash = sha256_hex_field(&spec["payloadHash"]);
    check(payload_hash.as_deref() == Some(Sha256::digest(&envelope.payload).as_slice()), "payload hash")?;
    let recorded = spec["signatures"].as_array().map_or(&[][..], Vec::as_slice);
    let signature = only_signature(envelope)?;
    check(
        recorded.len() == 1
            && base64_field(&recorded[0]["signature"]).as_deref() == Some(signature)
            && pem_field_names(&recorded[0]["verifier"], signer),
        "DSSE signatures",
    )
}

/// dsse 0.0.2 (Rekor v2): `payloadHash` (SHA2_256, base64) and `signatures[]` of `{content, verifier}`.
fn bind_dsse_v002(spec: &Value, signer: SignerDer<'_>, envelope: &Envelope) -> Result<(), PkiError> {
    let hash = &spec["payloadHash"];
    let payload_hash = Sha256::digest(&envelope.payload);
    check(
        hash["algorithm"] == "SHA2_256" && base64_field(&hash["digest"]).as_deref() == Some(payload_hash.as_slice()),
        "payload hash",
    )?;
    let recorded = spec["signatures"].as_array().map_or(&[][..], Vec::as_slice);
    let signature = only_signature(envelope)?;
    check(
        recorded.len() == 1
            && base64_field(&recorded[0]["content"]).as_deref() == Some(signature)
            && verifier_names(&recorded[0]["verifier"], signer),
        "DSSE signatures",
    )
}

/// intoto 0.0.2: `payloadHash` (sha256 of the payload, hex) and `envelope.signatures[]` of `{sig, publicKey}`
/// where the signature is base64 of the base64 text and the key a base64 PEM.
fn bind_intoto_v002(content: &Value, signer: SignerDer<'_>, envelope: &Envelope) -> Result<(), PkiError> {
    let payload_hash = sha256_hex_field(&content["payloadHash"]);
    check(payload_hash.as_deref() == Some(Sha256::digest(&envelope.payload).as_slice()), "payload hash")?;
    let recorded = content["envelope"]["signatures"].as_array().map_or(&[][..], Vec::as_slice);
    let signature = only_signature(envelope)?;
    let double_base64 = |value: &Value| {
        let text = base64_field(value)?;
        base64_bytes::decode(std::str::from_utf8(&text).ok()?).ok()
    };
    check(
        recorded.len() == 1
            && double_base64(&recorded[0]["sig"]).as_deref() == Some(signature)
            && pem_field_names(&recorded[0]["publicKey"], signer),
        "in-toto signatures",
    )
}

/// A base64 field holding a PEM certificate or public key that is the signer's.
fn pem_field_names(value: &Value, signer: SignerDer<'_>) -> bool {
    let Some(pem) = base64_field(value) else { return false };
    let Some((label, der)) = std::str::from_utf8(&pem).ok().and_then(decode_pem) else { return false };
    match signer {
        SignerDer::Certificate(leaf) => label == "CERTIFICATE" && der == leaf,
        SignerDer::PublicKey(spki) => label == "PUBLIC KEY" && der == spki,
    }
}

/// A Rekor v2 verifier: `{x509Certificate: {rawBytes}}` or `{publicKey: {rawBytes}}`.
fn verifier_names(verifier: &Value, signer: SignerDer<'_>) -> bool {
    match signer {
        SignerDer::Certificate(leaf) => base64_field(&verifier["x509Certificate"]["rawBytes"]).as_deref() == Some(leaf),
        SignerDer::PublicKey(spki) => base64_field(&verifier["publicKey"]["rawBytes"]).as_deref() == Some(spki),
    }
}

/// The label and bytes of the first PEM block of `text`.
fn decode_pem(text: &str) -> Option<(String, Vec<u8>)> {
    let begin = text.find("-----BEGIN ")?;
    let rest = &text[begin + "-----BEGIN ".len()..];
    let (label, rest) = rest.split_once("-----")?;
    let end = rest.find(&format!("-----END {label}-----"))?;
    let body: String = rest[..end].chars().filter(|c| !c.is_ascii_whitespace()).collect();
    Some((label.to_owned(), base64_bytes::decode(&body).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::bundle::{Bundle, BundleContent, Signer};

    const CASES: &str =
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/third-party/sigstore-conformance/bundle-verify");

    pub(crate) fn case(name: &str) -> Bundle {
        Bundle::parse(&std::fs::read(format!("{CASES}/{name}/bundle.sigstore.json")).unwrap()).unwrap()
    }

    fn default_artifact_sha256() -> Vec<u8> {
        Sha256::digest(std::fs::read(format!("{CASES}/a.txt")).unwrap()).to_vec()
    }

    fn leaf(bundle: &Bundle) -> &[u8] {
        match bundle.verification_material.signer() {
            Some(Signer::Certificate { leaf, .. }) => leaf,
            _ => panic!("a certificate bundle"),
        }
    }

    fn bind(bundle: &Bundle, signer: SignerDer<'_>, artifact_sha256: &[u8]) -> Result<(), PkiError> {
        let content = match &bundle.content {
            BundleContent::MessageSignature(message) => {
                SignedContent::Message { artifact_sha256, signature: &message.signature }
            }
            BundleContent::DsseEnvelope(envelope) => SignedContent::Envelope(envelope),
        };
        verify_body(&bundle.verification_material.tlog_entries[0], signer, content)
    }

    fn bind_certificate(bundle: &Bundle) -> Result<(), PkiError> {
        bind(bundle, SignerDer::Certificate(leaf(bundle)), &default_artifact_sha256())
    }

    #[test]
    fn binds_each_body_kind_to_the_bundle_it_came_with() {
        for name in [
            "happy-path-v0.1",
            "happy-path-v0.3",
            "happy-path-intoto-in-dsse-v3",
            "rekor2-happy-path",
            "rekor2-dsse-happy-path",
        ] {
            bind_certificate(&case(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        let intoto = case("intoto-with-custom-trust-root");
        let artifact =
            Sha256::digest(std::fs::read(format!("{CASES}/intoto-with-custom-trust-root/artifact")).unwrap());
        bind(&intoto, SignerDer::Certificate(leaf(&intoto)), &artifact).unwrap();

        let keyed = case("managed-key-happy-path");
        let pem = std::fs::read_to_string(format!("{CASES}/managed-key-happy-path/key.pub")).unwrap();
        let key = crate::keys::PublicKey::from_pem(&pem).unwrap();
        bind(&keyed, SignerDer::PublicKey(key.spki_der()), &default_artifact_sha256()).unwrap();
        let error = bind(&keyed, SignerDer::PublicKey(&[0x30, 0]), &default_artifact_sha256()).unwrap_err();
        assert!(error.to_string().contains("certificate or key"), "{error}");
    }

    #[test]
    fn refuses_bodies_that_record_something_else() {
        for (name, what) in [
            ("dsse-mismatch-envelope_fail", "payload hash"),
            ("dsse-mismatch-sig_fail", "DSSE signatures"),
            ("rekor2-dsse-mismatch-envelope_fail", "digest"),
            ("rekor2-dsse-mismatch-sig_fail", "signature"),
            ("wrong-hashedrekord-entry_fail", ""),
            ("wrong-hashedrekord-cert-and-sig_fail", ""),
        ] {
            let error = bind_certificate(&case(name)).unwrap_err().to_string();
            assert!(error.contains(what), "{name}: {error}");
        }
        let mismatch = case("intoto-log-entry-mismatch_fail");
        let artifact =
            Sha256::digest(std::fs::read(format!("{CASES}/intoto-log-entry-mismatch_fail/artifact")).unwrap());
        assert!(bind(&mismatch, SignerDer::Certificate(leaf(&mismatch)), &artifact).is_err());

        let happy = case("happy-path-v0.3");
        assert!(
            bind(&happy, SignerDer::Certificate(leaf(&happy)), &[0; 32])
                .unwrap_err()
                .to_string()
                .contains("artifact digest")
        );
        let other_leaf = case("happy-path-v0.1");
        assert!(bind(&happy, SignerDer::Certificate(leaf(&other_leaf)), &default_artifact_sha256()).is_err());
        let mut wrong_kind = happy;
        wrong_kind.verification_material.tlog_entries[0].kind_version.kind = "dsse".into();
        assert!(bind_certificate(&wrong_kind).unwrap_err().to_string().contains("kind"));
    }

    fn content<'a>(bundle: &'a Bundle, artifact_sha256: &'a [u8]) -> SignedContent<'a> {
        match &bundle.content {
            BundleContent::MessageSignature(message) => {
                SignedContent::Message { artifact_sha256, signature: &message.signature }
            }
            BundleContent::DsseEnvelope(envelope) => SignedContent::Envelope(envelope),
        }
    }

    fn root_of(name: &str) -> crate::pki::TrustedRoot {
        crate::pki::TrustedRoot::parse(&std::fs::read(format!("{CASES}/{name}/trusted_root.json")).unwrap()).unwrap()
    }

    fn verify_first(bundle: &Bundle, logs: &[TransparencyLog], now: OffsetDateTime) -> Result<VerifiedEntry, PkiError> {
        let entry = &bundle.verification_material.tlog_entries[0];
        let digest = default_artifact_sha256();
        verify_entry(entry, logs, SignerDer::Certificate(leaf(bundle)), content(bundle, &digest), now)
    }

    fn later() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
    }

    #[test]
    fn a_rekor_v1_entry_verifies_by_its_signed_entry_timestamp_and_inclusion_proof() {
        let root = crate::pki::TrustedRoot::production();
        let bundle = case("happy-path-v0.3");
        let verified = verify_first(&bundle, &root.tlogs, later()).unwrap();
        assert_eq!(verified.log_index, 79_571_823);
        assert_eq!(verified.log, "https://rekor.sigstore.dev");
        assert_eq!(verified.integrated_time.unwrap().unix_timestamp(), 1_710_869_186);
    }

    #[test]
    fn a_rekor_v1_entry_fails_when_any_part_is_tampered_with() {
        let root = crate::pki::TrustedRoot::production();
        let happy = case("happy-path-v0.3");
        let tamper = |change: &dyn Fn(&mut TlogEntry)| {
            let mut bundle = happy.clone();
            change(&mut bundle.verification_material.tlog_entries[0]);
            verify_first(&bundle, &root.tlogs, later()).unwrap_err().to_string()
        };
        assert!(tamper(&|e| e.integrated_time += 1).contains("signed entry timestamp"));
        assert!(tamper(&|e| e.log_index += 1).contains("signed entry timestamp"));
        let proof = |e: &mut TlogEntry| e.inclusion_proof.as_mut().unwrap().clone();
        assert!(
            tamper(&|e| {
                let mut p = proof(e);
                p.hashes[0][0] ^= 1;
                e.inclusion_proof = Some(p);
            })
            .contains("inclusion proof")
        );
        assert!(
            tamper(&|e| {
                let mut p = proof(e);
                p.checkpoint = None;
                e.inclusion_proof = Some(p);
            })
            .contains("no checkpoint")
        );
        assert!(
            tamper(&|e| {
                let mut p = proof(e);
                let checkpoint = p.checkpoint.as_mut().unwrap();
                checkpoint.envelope = checkpoint.envelope.replacen("75408393", "75408394", 1);
                e.inclusion_proof = Some(p);
            })
            .contains("checkpoint")
        );
        assert!(tamper(&|e| e.log_id.key_id[0] ^= 1).contains("not in the trusted root"));

        let early = OffsetDateTime::from_unix_timestamp(1_710_869_186 - 3600).unwrap();
        let error = verify_first(&happy, &root.tlogs, early).unwrap_err().to_string();
        assert!(error.contains("in the future"), "{error}");

        let mut expired = root.tlogs.clone();
        for log in &mut expired {
            log.validity.end = Some(OffsetDateTime::from_unix_timestamp(1_710_869_185).unwrap());
        }
        let error = verify_first(&happy, &expired, later()).unwrap_err().to_string();
        assert!(error.contains("not valid at the integrated time"), "{error}");
    }

    #[test]
    fn a_rekor_v2_entry_verifies_by_a_checkpoint_signed_by_the_log_among_cosignatures() {
        let root = root_of("rekor2-happy-path");
        for name in ["rekor2-happy-path", "rekor2-checkpoint-origin-not-first", "rekor2-checkpoint-two-sigs-cosigned"] {
            let verified = verify_first(&case(name), &root.tlogs, later()).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!((verified.log_index, verified.integrated_time), (735, None));
        }
        let mut renamed = root.tlogs.clone();
        for log in &mut renamed {
            log.base_url = log.base_url.replace("sigstage", "example");
        }
        let error = verify_first(&case("rekor2-happy-path"), &renamed, later()).unwrap_err().to_string();
        assert!(error.contains("origin"), "{error}");
        for name in ["rekor2-checkpoint-missing-log-signature_fail", "rekor2-checkpoint-no-matching-signature_fail"] {
            assert!(verify_first(&case(name), &root.tlogs, later()).is_err(), "{name}");
        }
    }

    #[test]
    fn reads_pem_blocks() {
        let (label, der) = decode_pem("-----BEGIN PUBLIC KEY-----\nAQID\nBA==\n-----END PUBLIC KEY-----\n").unwrap();
        assert_eq!((label.as_str(), der), ("PUBLIC KEY", vec![1, 2, 3, 4]));
        assert!(decode_pem("-----BEGIN X-----\nAQID\n-----END Y-----\n").is_none());
    }
}
