//! Certificates notarium's `[ca]` issues, built as DER here and signed elsewhere: the to-be-signed part
//! (RFC 5280 §4.1) of a code-signing leaf for one of its signing keys, or of the CA's self-signed
//! certificate, and the certificate assembled from that part and the signature the CA key's backend made.
//!
//! Owns: the certificate profile (extensions and their criticality, key identifiers, the signature
//! algorithm by key type). Must not touch: private keys (the caller signs the DER through `keys::Signer`),
//! the clock (times are passed in) or where certificates are kept.

use std::str::FromStr as _;
use std::time::{Duration, UNIX_EPOCH};

use der::asn1::{BitString, ObjectIdentifier as Oid, OctetString};
use der::{Decode as _, Encode as _, Sequence};
use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;
use x509_cert::ext::pkix::{AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, SubjectKeyIdentifier};
use x509_cert::ext::{Extension, Extensions};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::time::{Time, Validity};
use x509_cert::{Certificate, TbsCertificate, Version};

use super::PkiError;
use super::certificate::parse;
use crate::keys::Algorithm;

const OID_ECDSA_SHA256: Oid = Oid::new_unwrap("1.2.840.10045.4.3.2");
const OID_ED25519: Oid = Oid::new_unwrap("1.3.101.112");
const OID_KP_CODE_SIGNING: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.3.3");
const OID_BASIC_CONSTRAINTS: Oid = Oid::new_unwrap("2.5.29.19");
const OID_KEY_USAGE: Oid = Oid::new_unwrap("2.5.29.15");
const OID_EXT_KEY_USAGE: Oid = Oid::new_unwrap("2.5.29.37");
const OID_SUBJECT_KEY_ID: Oid = Oid::new_unwrap("2.5.29.14");
const OID_AUTHORITY_KEY_ID: Oid = Oid::new_unwrap("2.5.29.35");

/// keyUsage digitalSignature (bit 0): one byte, seven unused bits.
const KU_DIGITAL_SIGNATURE: (u8, u8) = (7, 0x80);
/// keyUsage digitalSignature, keyCertSign and cRLSign (bits 0, 5, 6): one unused bit.
const KU_CA: (u8, u8) = (1, 0x86);

/// When a certificate is valid (both ends inclusive).
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
}

/// The to-be-signed part of a code-signing leaf for `subject_spki` (DER SubjectPublicKeyInfo), named
/// `subject` (RFC 4514), issued by the CA certificate `issuer_der` whose key is of `algorithm`.
pub fn leaf_tbs(
    subject: &str,
    subject_spki: &[u8],
    issuer_der: &[u8],
    algorithm: Algorithm,
    window: Window,
    serial: &[u8],
) -> Result<Vec<u8>, PkiError> {
    let issuer = parse(issuer_der, "the CA certificate")?;
    let issuer_tbs = issuer.tbs_certificate();
    let authority_key_id = match issuer_tbs.get_extension::<SubjectKeyIdentifier>() {
        Ok(Some((_, ski))) => ski.0.as_bytes().to_vec(),
        _ => key_identifier(&issuer_tbs.subject_public_key_info().to_der().map_err(encode)?)?,
    };
    let extensions = vec![
        extension(OID_BASIC_CONSTRAINTS, true, &BasicConstraints { ca: false, path_len_constraint: None })?,
        extension(OID_KEY_USAGE, true, &key_usage(KU_DIGITAL_SIGNATURE)?)?,
        extension(OID_EXT_KEY_USAGE, false, &ExtendedKeyUsage(vec![OID_KP_CODE_SIGNING]))?,
        extension(OID_SUBJECT_KEY_ID, false, &SubjectKeyIdentifier(octets(key_identifier(subject_spki)?)?))?,
        extension(
            OID_AUTHORITY_KEY_ID,
            false,
            &AuthorityKeyIdentifier {
                key_identifier: Some(octets(authority_key_id)?),
                authority_cert_issuer: None,
                authority_cert_serial_number: None,
            },
        )?,
    ];
    tbs(issuer_tbs.subject().clone(), name(subject)?, subject_spki, algorithm, window, serial, extensions)
}

/// The to-be-signed part of a self-signed CA certificate for `spki` (the CA key), named `subject`.
pub fn self_signed_ca_tbs(
    subject: &str,
    spki: &[u8],
    algorithm: Algorithm,
    window: Window,
    serial: &[u8],
) -> Result<Vec<u8>, PkiError> {
    let name = name(subject)?;
    let extensions = vec![
        extension(OID_BASIC_CONSTRAINTS, true, &BasicConstraints { ca: true, path_len_constraint: Some(0) })?,
        extension(OID_KEY_USAGE, true, &key_usage(KU_CA)?)?,
        extension(OID_SUBJECT_KEY_ID, false, &SubjectKeyIdentifier(octets(key_identifier(spki)?)?))?,
    ];
    tbs(name.clone(), name, spki, algorithm, window, serial, extensions)
}

/// The certificate made of `tbs_der` and the CA key's `signature` over it (ASN.1 DER for ECDSA, 64 bytes
/// for Ed25519), with `algorithm`'s identifier; parsed back to be sure it is one.
pub fn assemble(tbs_der: &[u8], algorithm: Algorithm, signature: &[u8]) -> Result<Vec<u8>, PkiError> {
    #[derive(Sequence)]
    struct Unsigned {
        tbs_certificate: TbsCertificate,
        signature_algorithm: AlgorithmIdentifierOwned,
        signature: BitString,
    }
    let tbs_certificate = TbsCertificate::from_der(tbs_der).map_err(encode)?;
    let signature = BitString::from_bytes(signature).map_err(encode)?;
    let der = Unsigned { tbs_certificate, signature_algorithm: signature_algorithm(algorithm), signature }
        .to_der()
        .map_err(encode)?;
    Certificate::from_der(&der).map_err(encode)?;
    Ok(der)
}

/// A certificate's serial number from `seed` (the caller mixes in randomness): 16 bytes, positive.
pub fn serial_from(seed: &[u8]) -> [u8; 16] {
    let digest = Sha256::digest(seed);
    let mut serial = [0u8; 16];
    serial.copy_from_slice(&digest[..16]);
    serial[0] = (serial[0] & 0x7f) | 0x01;
    serial
}

#[derive(Sequence)]
struct Tbs {
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT")]
    version: Version,
    serial_number: SerialNumber,
    signature: AlgorithmIdentifierOwned,
    issuer: Name,
    validity: Validity,
    subject: Name,
    subject_public_key_info: SubjectPublicKeyInfoOwned,
    #[asn1(context_specific = "3", tag_mode = "EXPLICIT")]
    extensions: Extensions,
}

fn tbs(
    issuer: Name,
    subject: Name,
    spki: &[u8],
    algorithm: Algorithm,
    window: Window,
    serial: &[u8],
    extensions: Vec<Extension>,
) -> Result<Vec<u8>, PkiError> {
    Tbs {
        version: Version::V3,
        serial_number: SerialNumber::new(serial).map_err(encode)?,
        signature: signature_algorithm(algorithm),
        issuer,
        validity: Validity::new(time(window.not_before)?, time(window.not_after)?),
        subject,
        subject_public_key_info: SubjectPublicKeyInfoOwned::from_der(spki).map_err(encode)?,
        extensions,
    }
    .to_der()
    .map_err(encode)
}

fn signature_algorithm(algorithm: Algorithm) -> AlgorithmIdentifierOwned {
    let oid = match algorithm {
        Algorithm::EcdsaP256Sha256 => OID_ECDSA_SHA256,
        Algorithm::Ed25519 => OID_ED25519,
    };
    AlgorithmIdentifierOwned { oid, parameters: None }
}

/// An RFC 4514 name; spaces around the separating commas are allowed (`CN=a, O=b`).
fn name(text: &str) -> Result<Name, PkiError> {
    let normalized = text.split(',').map(str::trim).collect::<Vec<_>>().join(",");
    Name::from_str(&normalized).map_err(|e| fail(&format!("subject {text:?} is not a distinguished name: {e}")))
}

/// RFC 7093 §2 method 1: the leftmost 160 bits of the SHA-256 of the subjectPublicKey bits.
fn key_identifier(spki: &[u8]) -> Result<Vec<u8>, PkiError> {
    let parsed = SubjectPublicKeyInfoOwned::from_der(spki).map_err(encode)?;
    Ok(Sha256::digest(parsed.subject_public_key.raw_bytes())[..20].to_vec())
}

fn key_usage((unused, bits): (u8, u8)) -> Result<BitString, PkiError> {
    BitString::new(unused, vec![bits]).map_err(encode)
}

fn octets(bytes: Vec<u8>) -> Result<OctetString, PkiError> {
    OctetString::new(bytes).map_err(encode)
}

fn extension(oid: Oid, critical: bool, value: &impl der::Encode) -> Result<Extension, PkiError> {
    Ok(Extension { extn_id: oid, critical, extn_value: octets(value.to_der().map_err(encode)?)? })
}

fn time(at: OffsetDateTime) -> Result<Time, PkiError> {
    let seconds = u64::try_from(at.unix_timestamp()).map_err(|_| fail("a time before 1970"))?;
    Time::try_from(UNIX_EPOCH + Duration::from_secs(seconds)).map_err(encode)
}

fn encode(e: impl std::fmt::Display) -> PkiError {
    fail(&format!("the certificate does not encode: {e}"))
}

fn fail(message: &str) -> PkiError {
    PkiError::Certificate(message.to_owned())
}
