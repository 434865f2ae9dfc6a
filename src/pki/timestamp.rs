//! RFC 3161 timestamp tokens (a CMS SignedData over a TSTInfo) checked against the timestamp authorities of
//! a trusted root: the message imprint covers the given signature, the signer chains to an authority valid
//! at the time stamped. Also the other side, for notarium's own signatures: the `TimeStampReq` sent to a
//! configured TSA, and the checks on its answer (granted, the imprint and nonce asked for, near the present).
//!
//! Owns: encoding a `TimeStampReq`, reading a `TimeStampResp` or a bare `TimeStampToken`, the CMS checks
//! (content type, message digest over the TSTInfo, the signer's signature over the signed attributes),
//! finding the signer's certificate (embedded, or in an authority's chain) and chaining it, for time
//! stamping, at the time it vouches for. Must not touch: which signature is stamped (the bundle verifier and
//! the sign path pass it), sending the request (`oci::Outbound`).

use cms::cert::CertificateChoices;
use cms::content_info::ContentInfo;
use cms::signed_data::{SignedData, SignerIdentifier, SignerInfo};
use der::asn1::{AnyRef, ObjectIdentifier as Oid, OctetStringRef};
use der::{Decode as _, Encode as _, Tag, Tagged as _};
use time::OffsetDateTime;
use x509_cert::Certificate;
use x509_cert::ext::pkix::SubjectKeyIdentifier;
use x509_cert::spki::AlgorithmIdentifierRef;

use super::PkiError;
use super::certificate::{self, KeyPurpose};
use super::key::{HashAlgorithm, KeyFamily};
use super::trusted_root::CertificateAuthority;

/// A time a timestamp authority vouched for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedTimestamp {
    pub time: OffsetDateTime,
    pub authority: String,
}

const OID_SIGNED_DATA: Oid = Oid::new_unwrap("1.2.840.113549.1.7.2");
const OID_TST_INFO: Oid = Oid::new_unwrap("1.2.840.113549.1.9.16.1.4");
const OID_CONTENT_TYPE: Oid = Oid::new_unwrap("1.2.840.113549.1.9.3");
const OID_MESSAGE_DIGEST: Oid = Oid::new_unwrap("1.2.840.113549.1.9.4");
const OID_SHA256: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.1");
/// A token larger than this is refused unread (a Sigstore token is about 1.5 KiB with its chain).
pub const MAX_TOKEN_BYTES: usize = 64 * 1024;
/// How far a TSA's time may be from the present when notarium asks for a timestamp (clock skew).
const MAX_SKEW: time::Duration = time::Duration::minutes(5);

/// `MessageImprint ::= SEQUENCE { hashAlgorithm AlgorithmIdentifier, hashedMessage OCTET STRING }`.
#[derive(der::Sequence)]
struct MessageImprint<'a> {
    hash_algorithm: AlgorithmIdentifierRef<'a>,
    hashed_message: &'a OctetStringRef,
}

/// `TimeStampReq` (RFC 3161 §2.4.1) as notarium sends it: no policy, no extensions.
#[derive(der::Sequence)]
struct TimeStampReq<'a> {
    version: u8,
    message_imprint: MessageImprint<'a>,
    nonce: u64,
    cert_req: bool,
}

/// The TSTInfo fields this module uses (RFC 3161 §2.4.2).
struct TstInfo {
    hash: HashAlgorithm,
    hashed_message: Vec<u8>,
    gen_time: OffsetDateTime,
    /// `None` when absent, or not an integer that fits 64 bits (never one notarium asked for).
    nonce: Option<u64>,
}

/// A DER `TimeStampReq` for `signature`: version 1, a SHA-256 message imprint, `nonce`, and `certReq`
/// true so the TSA's certificate comes with the token (a verifier without it could not chain it).
pub fn timestamp_request(signature: &[u8], nonce: u64) -> Result<Vec<u8>, PkiError> {
    let digest = HashAlgorithm::Sha256.digest(signature);
    let hashed_message = OctetStringRef::new(&digest).map_err(|_| fail("the imprint does not encode"))?;
    let request = TimeStampReq {
        version: 1,
        message_imprint: MessageImprint {
            hash_algorithm: AlgorithmIdentifierRef { oid: OID_SHA256, parameters: Some(AnyRef::NULL) },
            hashed_message,
        },
        nonce,
        cert_req: true,
    };
    request.to_der().map_err(|_| fail("the request does not encode"))
}

/// Checks a TSA's answer to [`timestamp_request`]`(signature, nonce)`: a granted `TimeStampResp` whose token
/// stamps `signature` with a SHA-256 imprint, carries `nonce`, is signed by a certificate chaining to
/// `authorities` for time stamping, and vouches for a time within five minutes of `now`. Returns that time
/// and the bare `TimeStampToken` (DER), what a signature envelope carries.
pub fn verify_timestamp_reply(
    reply: &[u8],
    signature: &[u8],
    nonce: u64,
    authorities: &[CertificateAuthority],
    now: OffsetDateTime,
) -> Result<(VerifiedTimestamp, Vec<u8>), PkiError> {
    if reply.len() > MAX_TOKEN_BYTES {
        return Err(fail(&format!("{} bytes, more than the {MAX_TOKEN_BYTES} accepted", reply.len())));
    }
    let token = token_of(reply)?;
    if token == reply {
        return Err(fail("the answer is not a TimeStampResp"));
    }
    let (verified, tst) = verify_token(&token, signature, authorities)?;
    if tst.hash != HashAlgorithm::Sha256 {
        return Err(fail("the message imprint is not the SHA-256 asked for"));
    }
    if (verified.time - now).abs() > MAX_SKEW {
        return Err(fail(&format!("the stamped time is {} s from the present", (verified.time - now).whole_seconds())));
    }
    if tst.nonce != Some(nonce) {
        return Err(fail("the nonce is not the one asked for"));
    }
    Ok((verified, token))
}

/// Verifies `token` (DER `TimeStampResponse` or `TimeStampToken`) over `signature`.
pub fn verify_timestamp(
    token: &[u8],
    signature: &[u8],
    authorities: &[CertificateAuthority],
) -> Result<VerifiedTimestamp, PkiError> {
    verify_token(token, signature, authorities).map(|(verified, _)| verified)
}

fn verify_token(
    token: &[u8],
    signature: &[u8],
    authorities: &[CertificateAuthority],
) -> Result<(VerifiedTimestamp, TstInfo), PkiError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(fail(&format!("{} bytes, more than the {MAX_TOKEN_BYTES} accepted", token.len())));
    }
    let content_info = ContentInfo::from_der(&token_of(token)?).map_err(|_| fail("not a CMS ContentInfo"))?;
    if content_info.content_type != OID_SIGNED_DATA {
        return Err(fail("the token is not a CMS SignedData"));
    }
    let signed: SignedData = content_info.content.decode_as().map_err(|_| fail("malformed SignedData"))?;
    if signed.encap_content_info.econtent_type != OID_TST_INFO {
        return Err(fail("the token does not carry a TSTInfo"));
    }
    let Some(econtent) = &signed.encap_content_info.econtent else {
        return Err(fail("the token has no TSTInfo content"));
    };
    let tst_der = econtent.decode_as::<&OctetStringRef>().map_err(|_| fail("malformed TSTInfo content"))?.as_bytes();
    let tst = read_tst_info(tst_der)?;
    if tst.hash.digest(signature) != tst.hashed_message {
        return Err(fail("the message imprint does not match the signature"));
    }
    let signer_infos = signed.signer_infos.0.as_slice();
    let [signer] = signer_infos else {
        return Err(fail(&format!("{} signers, expected one", signer_infos.len())));
    };
    let embedded = embedded_certificates(&signed)?;
    let (signer_der, signer_cert) = find_signer(&signer.sid, &embedded, authorities)?;
    check_signed_attributes(signer, tst_der)?;
    check_signer_signature(signer, &signer_cert)?;
    let intermediates: Vec<Vec<u8>> = embedded
        .iter()
        .filter(|(der, cert)| *der != signer_der && !certificate::is_self_issued(cert))
        .map(|(der, _)| der.clone())
        .collect();
    let chained =
        certificate::verify_path(&signer_der, &intermediates, authorities, tst.gen_time, KeyPurpose::TimeStamping)
            .map_err(|e| fail(&format!("the timestamp's signer: {e}")))?;
    Ok((VerifiedTimestamp { time: tst.gen_time, authority: chained.authority }, tst))
}

/// The TimeStampToken inside a TimeStampResp (status granted or grantedWithMods), or `token` itself.
fn token_of(token: &[u8]) -> Result<Vec<u8>, PkiError> {
    let outer = AnyRef::from_der(token).map_err(|_| fail("not DER"))?;
    let fields = elements(outer.value())?;
    let Some(first) = fields.first() else {
        return Err(fail("empty token"));
    };
    if first.tag() != Tag::Sequence {
        return Ok(token.to_vec());
    }
    // TimeStampResp ::= SEQUENCE { status PKIStatusInfo, timeStampToken TimeStampToken OPTIONAL }
    let status = elements(first.value())?;
    let granted = status.first().filter(|s| s.tag() == Tag::Integer).is_some_and(|s| matches!(s.value(), [0] | [1]));
    if !granted {
        return Err(fail("the timestamp response was not granted"));
    }
    let Some(token) = fields.get(1) else {
        return Err(fail("the timestamp response carries no token"));
    };
    token.to_der().map_err(|_| fail("token does not encode"))
}

fn read_tst_info(der: &[u8]) -> Result<TstInfo, PkiError> {
    let outer = AnyRef::from_der(der).map_err(|_| fail("malformed TSTInfo"))?;
    let fields = elements(outer.value())?;
    // version, policy, messageImprint, serialNumber, genTime, then optional fields this module ignores
    let [version, _policy, imprint, _serial, gen_time, ..] = fields.as_slice() else {
        return Err(fail("TSTInfo is missing fields"));
    };
    if version.tag() != Tag::Integer || version.value() != [1] {
        return Err(fail("TSTInfo version is not 1"));
    }
    let imprint: MessageImprint<'_> = imprint.decode_as().map_err(|_| fail("malformed message imprint"))?;
    let hash = hash_by_oid(&imprint.hash_algorithm.oid)?;
    if gen_time.tag() != Tag::GeneralizedTime {
        return Err(fail("TSTInfo genTime is not a GeneralizedTime"));
    }
    // After genTime: accuracy (SEQUENCE), ordering (BOOLEAN), nonce (INTEGER), so the first INTEGER.
    let nonce = fields[5..].iter().find(|f| f.tag() == Tag::Integer).and_then(|f| f.decode_as::<u64>().ok());
    Ok(TstInfo {
        hash,
        hashed_message: imprint.hashed_message.as_bytes().to_vec(),
        gen_time: generalized_time(gen_time.value())?,
        nonce,
    })
}

/// `YYYYMMDDHHMMSS[.f*]Z` (RFC 3161 allows fractions of a second; they are dropped).
fn generalized_time(text: &[u8]) -> Result<OffsetDateTime, PkiError> {
    let bad = || fail("malformed genTime");
    let text = std::str::from_utf8(text).map_err(|_| bad())?;
    let body = text.strip_suffix('Z').ok_or_else(bad)?;
    let (whole, fraction) = body.split_once('.').unwrap_or((body, "0"));
    if whole.len() != 14 || !whole.bytes().all(|b| b.is_ascii_digit()) || !fraction.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    let num = |range: std::ops::Range<usize>| whole[range].parse::<u16>().map_err(|_| bad());
    let month = time::Month::try_from(u8::try_from(num(4..6)?).map_err(|_| bad())?).map_err(|_| bad())?;
    let date = time::Date::from_calendar_date(i32::from(num(0..4)?), month, num(6..8)? as u8).map_err(|_| bad())?;
    let clock = time::Time::from_hms(num(8..10)? as u8, num(10..12)? as u8, num(12..14)? as u8).map_err(|_| bad())?;
    Ok(date.with_time(clock).assume_utc())
}

fn embedded_certificates(signed: &SignedData) -> Result<Vec<(Vec<u8>, Certificate)>, PkiError> {
    let Some(set) = &signed.certificates else {
        return Ok(Vec::new());
    };
    set.0
        .iter()
        .filter_map(|choice| match choice {
            CertificateChoices::Certificate(cert) => Some(cert),
            CertificateChoices::Other(_) => None,
        })
        .map(|cert| Ok((cert.to_der().map_err(|_| fail("embedded certificate does not encode"))?, cert.clone())))
        .collect()
}

/// The signer's certificate: embedded in the token, or else the one an authority lists.
fn find_signer(
    sid: &SignerIdentifier,
    embedded: &[(Vec<u8>, Certificate)],
    authorities: &[CertificateAuthority],
) -> Result<(Vec<u8>, Certificate), PkiError> {
    if let Some((der, cert)) = embedded.iter().find(|(_, cert)| identifies(sid, cert)) {
        return Ok((der.clone(), cert.clone()));
    }
    let listed = authorities
        .iter()
        .flat_map(|a| &a.certificates)
        .filter_map(|der| Certificate::from_der(der).ok().map(|cert| (der, cert)))
        .find(|(_, cert)| identifies(sid, cert));
    if let Some((der, cert)) = listed {
        return Ok((der.clone(), cert));
    }
    Err(fail("the signer's certificate is neither embedded nor in a trusted timestamp authority"))
}

fn identifies(sid: &SignerIdentifier, cert: &Certificate) -> bool {
    let tbs = cert.tbs_certificate();
    match sid {
        SignerIdentifier::IssuerAndSerialNumber(id) => {
            &id.issuer == tbs.issuer() && &id.serial_number == tbs.serial_number()
        }
        SignerIdentifier::SubjectKeyIdentifier(ski) => {
            matches!(tbs.get_extension::<SubjectKeyIdentifier>(), Ok(Some((_, own))) if &own == ski)
        }
    }
}

/// RFC 5652 §5.4: signed attributes must hold the content type (TSTInfo) and the digest of the content.
fn check_signed_attributes(signer: &SignerInfo, content: &[u8]) -> Result<(), PkiError> {
    let Some(attributes) = &signer.signed_attrs else {
        return Err(fail("the signer has no signed attributes"));
    };
    let single = |oid: Oid| {
        let mut found = attributes.iter().filter(|a| a.oid == oid);
        match (found.next(), found.next()) {
            (Some(attr), None) if attr.values.len() == 1 => attr.values.get(0),
            _ => None,
        }
    };
    let content_type = single(OID_CONTENT_TYPE).and_then(|v| v.decode_as::<Oid>().ok());
    if content_type != Some(OID_TST_INFO) {
        return Err(fail("the signed content-type attribute is not TSTInfo"));
    }
    let digest = single(OID_MESSAGE_DIGEST)
        .and_then(|v| v.decode_as::<&OctetStringRef>().ok())
        .ok_or_else(|| fail("the signer has no message-digest attribute"))?;
    let hash = hash_by_oid(&signer.digest_alg.oid)?;
    if hash.digest(content) != digest.as_bytes() {
        return Err(fail("the message-digest attribute does not match the TSTInfo"));
    }
    Ok(())
}

/// The signer's signature over the DER SET OF its signed attributes.
fn check_signer_signature(signer: &SignerInfo, cert: &Certificate) -> Result<(), PkiError> {
    let signed = signer
        .signed_attrs
        .as_ref()
        .map(|attrs| attrs.to_der())
        .transpose()
        .map_err(|_| fail("signed attributes do not encode"))?
        .unwrap_or_default();
    let spki =
        cert.tbs_certificate().subject_public_key_info().to_der().map_err(|_| fail("signer key does not encode"))?;
    let key = super::key::VerifyingKey::from_spki_der(&spki)?;
    let signature = signer.signature.as_bytes();
    let algorithm = signer.signature_algorithm.oid.to_string();
    // A bare key algorithm (rsaEncryption, id-ecPublicKey) takes its hash from the digest algorithm.
    let bare = match algorithm.as_str() {
        "1.2.840.113549.1.1.1" => Some(KeyFamily::Rsa),
        "1.2.840.10045.2.1" => Some(KeyFamily::Ecdsa),
        _ => None,
    };
    let result = match bare {
        Some(family) if family == key.family() => {
            key.verify_with_hash(hash_by_oid(&signer.digest_alg.oid)?, &signed, signature)
        }
        Some(_) => Err(PkiError::Signature("key and signature algorithm differ".into())),
        None => certificate::verify_by_algorithm(&key, &signer.signature_algorithm.oid, &signed, signature),
    };
    result.map_err(|e| fail(&format!("the token's signature does not verify ({e})")))
}

fn hash_by_oid(oid: &Oid) -> Result<HashAlgorithm, PkiError> {
    match oid.to_string().as_str() {
        "2.16.840.1.101.3.4.2.1" => Ok(HashAlgorithm::Sha256),
        "2.16.840.1.101.3.4.2.2" => Ok(HashAlgorithm::Sha384),
        "2.16.840.1.101.3.4.2.3" => Ok(HashAlgorithm::Sha512),
        other => Err(fail(&format!("unsupported hash algorithm {other}"))),
    }
}

fn elements(content: &[u8]) -> Result<Vec<AnyRef<'_>>, PkiError> {
    certificate::der_elements(content).map_err(|_| fail("malformed DER"))
}

fn fail(message: &str) -> PkiError {
    PkiError::Timestamp(message.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::certificate::tests::{b64, bundle, root};

    /// The first RFC 3161 token and the signature it stamps, from a conformance bundle.
    fn token(case: &str) -> (Vec<u8>, Vec<u8>) {
        let bundle = bundle(case);
        let token =
            bundle["verificationMaterial"]["timestampVerificationData"]["rfc3161Timestamps"][0]["signedTimestamp"]
                .as_str()
                .unwrap();
        let signature = match bundle["messageSignature"]["signature"].as_str() {
            Some(sig) => sig,
            None => bundle["dsseEnvelope"]["signatures"][0]["sig"].as_str().unwrap(),
        };
        (b64(token), b64(signature))
    }

    fn verify_case(case: &str) -> Result<VerifiedTimestamp, PkiError> {
        let (token, signature) = token(case);
        verify_timestamp(&token, &signature, &root(case).timestamp_authorities)
    }

    fn at(text: &str) -> OffsetDateTime {
        OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).unwrap()
    }

    #[test]
    fn tokens_with_and_without_embedded_certificates_verify() {
        for case in [
            "rekor2-happy-path",
            "rekor2-timestamp-with-embedded-cert",
            "rekor2-timestamp-without-embedded-cert",
            "rekor2-timestamp-with-expired-cert-chain",
            "intoto-with-custom-trust-root",
            "managed-key-happy-path",
        ] {
            let verified = verify_case(case).unwrap_or_else(|e| panic!("{case}: {e}"));
            assert!(!verified.authority.is_empty(), "{case}");
        }
    }

    #[test]
    fn the_authoritys_window_end_is_inclusive_at_the_stamped_time() {
        let verified = verify_case("trust-root-tsa-validity-end-inclusive").unwrap();
        assert_eq!(verified.time, at("2025-06-12T12:02:20Z"));
        // one second less of window and the same token fails
        let (token, signature) = token("trust-root-tsa-validity-end-inclusive");
        let mut authorities = root("trust-root-tsa-validity-end-inclusive").timestamp_authorities;
        authorities[0].validity.end = Some(at("2025-06-12T12:02:19Z"));
        let err = verify_timestamp(&token, &signature, &authorities).unwrap_err();
        assert!(err.to_string().contains("outside its validity in the trusted root"), "{err}");
    }

    #[test]
    fn a_time_outside_the_tsa_window_or_its_certificate_fails() {
        let err = verify_case("rekor2-timestamp-outside-trust-root-tsa-validity_fail").unwrap_err();
        assert!(err.to_string().contains("outside its validity in the trusted root"), "{err}");
        let err = verify_case("rekor2-timestamp-outside-tsa-cert-validity_fail").unwrap_err();
        assert!(err.to_string().contains("certificate is not valid at"), "{err}");
    }

    #[test]
    fn an_untrusted_tsa_fails_with_or_without_its_certificate() {
        let err = verify_case("rekor2-timestamp-untrusted-tsa-with-embedded-cert_fail").unwrap_err();
        assert!(err.to_string().contains("no trusted authority issued it"), "{err}");
        let err = verify_case("rekor2-timestamp-untrusted-tsa-without-embedded-cert_fail").unwrap_err();
        assert!(err.to_string().contains("neither embedded nor in a trusted"), "{err}");
    }

    #[test]
    fn a_token_over_another_signature_fails() {
        let err = verify_case("rekor2-timestamp-payload-mismatch_fail").unwrap_err();
        assert!(err.to_string().contains("message imprint does not match"), "{err}");
        let (token, mut signature) = token("rekor2-happy-path");
        signature[0] ^= 1;
        assert!(verify_timestamp(&token, &signature, &root("rekor2-happy-path").timestamp_authorities).is_err());
    }

    #[test]
    fn a_tampered_token_fails() {
        let (mut token, signature) = token("rekor2-timestamp-with-embedded-cert");
        let authorities = root("rekor2-timestamp-with-embedded-cert").timestamp_authorities;
        // change one digit of genTime: the message digest attribute no longer matches
        let pos = token.windows(2).position(|w| w == [0x18, 0x0f] || w == [0x18, 0x13]).unwrap() + 2;
        token[pos + 13] = if token[pos + 13] == b'0' { b'1' } else { b'0' };
        let err = verify_timestamp(&token, &signature, &authorities).unwrap_err();
        assert!(err.to_string().contains("message-digest attribute does not match"), "{err}");
        assert!(verify_timestamp(b"\x30\x00", &signature, &authorities).is_err());
    }

    #[test]
    fn every_truncation_and_many_flipped_bytes_fail_without_panicking() {
        let (token, signature) = token("rekor2-timestamp-with-embedded-cert");
        let authorities = root("rekor2-timestamp-with-embedded-cert").timestamp_authorities;
        for len in 0..token.len() {
            assert!(verify_timestamp(&token[..len], &signature, &authorities).is_err(), "{len}");
        }
        for pos in (0..token.len()).step_by(5) {
            let mut changed = token.clone();
            changed[pos] ^= 0x41;
            // a flip may land in an unsigned field (an embedded certificate's unused bits); it must not panic
            let _ = verify_timestamp(&changed, &signature, &authorities);
        }
    }

    #[test]
    fn generalized_times_with_and_without_fractions_read() {
        assert_eq!(generalized_time(b"20250612120220Z").unwrap(), at("2025-06-12T12:02:20Z"));
        assert_eq!(generalized_time(b"20250612120220.123Z").unwrap(), at("2025-06-12T12:02:20Z"));
        assert!(generalized_time(b"20250612120220").is_err());
        assert!(generalized_time(b"20251312120220Z").is_err());
    }

    /// The token openssl's TSA put into notation's `generate-test-timestamped.jws` (asked for without a
    /// nonce), the signature it stamps, and the TSA's root as an authority.
    fn notary_fixture() -> (Vec<u8>, Vec<u8>, Vec<CertificateAuthority>) {
        use base64::Engine as _;
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/third-party/notation-1.3/");
        let jws: serde_json::Value =
            serde_json::from_slice(&std::fs::read(format!("{dir}generate-test-timestamped.jws")).unwrap()).unwrap();
        let engine = base64::engine::general_purpose::STANDARD;
        let token = engine.decode(jws["header"]["io.cncf.notary.timestampSignature"].as_str().unwrap()).unwrap();
        let signature =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(jws["signature"].as_str().unwrap()).unwrap();
        let pem = std::fs::read_to_string(format!("{dir}tsa-root.pem")).unwrap();
        let root = crate::formats::cosign_layer::pem_certificates(&pem).unwrap();
        let always = super::super::trusted_root::Validity { start: OffsetDateTime::UNIX_EPOCH, end: None };
        (token, signature, vec![CertificateAuthority { name: "tsa".into(), certificates: root, validity: always }])
    }

    /// `TimeStampResp { status { granted }, token }`.
    fn granted(token: &[u8]) -> Vec<u8> {
        let status = AnyRef::new(Tag::Sequence, &[2, 1, 0]).unwrap().to_der().unwrap();
        AnyRef::new(Tag::Sequence, &[status, token.to_vec()].concat()).unwrap().to_der().unwrap()
    }

    #[test]
    fn a_request_carries_a_sha256_imprint_of_the_signature_the_nonce_and_cert_req() {
        let request = timestamp_request(b"signature bytes", 0x0123_4567_89ab_cdef).unwrap();
        let outer = AnyRef::from_der(&request).unwrap();
        let fields = elements(outer.value()).unwrap();
        assert_eq!(fields.len(), 4, "version, imprint, nonce, certReq; no policy or extensions");
        assert_eq!(fields[0].decode_as::<u8>().unwrap(), 1);
        let imprint: MessageImprint<'_> = fields[1].decode_as().unwrap();
        assert_eq!(imprint.hash_algorithm.oid, OID_SHA256);
        assert_eq!(imprint.hashed_message.as_bytes(), HashAlgorithm::Sha256.digest(b"signature bytes"));
        assert_eq!(fields[2].decode_as::<u64>().unwrap(), 0x0123_4567_89ab_cdef);
        assert!(fields[3].decode_as::<bool>().unwrap());
    }

    #[test]
    fn a_reply_must_be_a_granted_response_near_now_with_the_nonce_asked_for() {
        let (token, signature, authorities) = notary_fixture();
        let stamped = verify_timestamp(&token, &signature, &authorities).unwrap().time;
        let check = |reply: &[u8], now| verify_timestamp_reply(reply, &signature, 7, &authorities, now);
        let err = check(&token, stamped).unwrap_err().to_string();
        assert!(err.contains("not a TimeStampResp"), "a bare token: {err}");
        let reply = granted(&token);
        let err = check(&reply, stamped + time::Duration::hours(1)).unwrap_err().to_string();
        assert!(err.contains("the stamped time is -3600 s from the present"), "{err}");
        let err = check(&reply, stamped).unwrap_err().to_string();
        assert!(err.contains("the nonce is not the one asked for"), "asked without a nonce: {err}");
        let err = verify_timestamp_reply(&reply, b"another signature", 7, &authorities, stamped).unwrap_err();
        assert!(err.to_string().contains("imprint"), "{err}");
    }
}
