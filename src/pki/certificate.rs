//! X.509 certificate chains (x509-cert): a leaf and its intermediates, validated up to a certificate
//! authority of a trusted root at a given time, and the identity a Fulcio certificate names (the SAN, the
//! OIDC issuer and the other Fulcio extensions, OIDs 1.3.6.1.4.1.57264.1.*).
//!
//! Owns: path building and the RFC 5280 checks notarium needs (each link's signature, every certificate's
//! validity at the given time, CA constraints on issuers, the extended key usage of the leaf, no unknown
//! critical extension, the authority's window in the trusted root). Must not touch: which identities are
//! allowed (the policy engine) or where the time comes from (the bundle verifier passes a verified one).

use std::collections::BTreeMap;

use der::asn1::{Ia5String, ObjectIdentifier as Oid, Utf8StringRef};
use der::{Decode as _, Encode as _};
use time::OffsetDateTime;
use x509_cert::Certificate;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAltName};

use super::PkiError;
use super::key::{HashAlgorithm, KeyFamily, VerifyingKey};
use super::trusted_root::CertificateAuthority;

/// Who a Fulcio certificate was issued to, and for how long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateIdentity {
    /// The subject alternative name: a URI (CI workflows) or an e-mail address.
    pub subject: String,
    /// The OIDC issuer (extension 1.3.6.1.4.1.57264.1.8, or the deprecated .1.1).
    pub issuer: String,
    /// Fulcio extensions by their camelCase name (`sourceRepositoryUri`, `buildTrigger`, …).
    pub extensions: BTreeMap<String, String>,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
}

/// A leaf certificate whose chain verified.
#[derive(Debug, Clone)]
pub struct VerifiedCertificate {
    pub key: VerifyingKey,
    pub identity: CertificateIdentity,
    /// The authority that issued it (its name in the trusted root).
    pub authority: String,
    /// The DER of the certificate that issued the leaf (for SCT verification).
    pub issuer_der: Vec<u8>,
}

/// What the leaf must be good for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyPurpose {
    /// Fulcio signing certificates (id-kp-codeSigning).
    CodeSigning,
    /// Timestamp authority certificates (id-kp-timeStamping).
    TimeStamping,
    /// Notary Project signing certificates: an extended key usage is optional; when present it may name
    /// id-kp-codeSigning and must name none of [`NOTARY_EXCLUDED_EKUS`] (signature-specification.md, the
    /// certificate requirements; notation-core-go refuses the same list). Issuers nest as for code signing.
    NotarySigning,
}

impl KeyPurpose {
    fn oid(self) -> Oid {
        match self {
            Self::CodeSigning | Self::NotarySigning => OID_KP_CODE_SIGNING,
            Self::TimeStamping => OID_KP_TIME_STAMPING,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::CodeSigning | Self::NotarySigning => "code signing",
            Self::TimeStamping => "time stamping",
        }
    }
}

/// A leaf that chained to an authority, before any Fulcio reading.
#[derive(Debug, Clone)]
pub struct ChainedLeaf {
    pub key: VerifyingKey,
    /// The authority's name in the trusted root.
    pub authority: String,
    /// The DER of the certificate that issued the leaf.
    pub issuer_der: Vec<u8>,
}

const OID_KP_CODE_SIGNING: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.3.3");
const OID_KP_TIME_STAMPING: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.3.8");
const OID_ANY_EKU: Oid = Oid::new_unwrap("2.5.29.37.0");
/// The extended key usages a Notary Project signing certificate must not name: the specification's
/// anyExtendedKeyUsage, serverAuth, clientAuth, emailProtection and timeStamping, and notation-core-go's
/// OCSPSigning.
const NOTARY_EXCLUDED_EKUS: [(Oid, &str); 6] = [
    (OID_ANY_EKU, "anyExtendedKeyUsage"),
    (Oid::new_unwrap("1.3.6.1.5.5.7.3.1"), "serverAuth"),
    (Oid::new_unwrap("1.3.6.1.5.5.7.3.2"), "clientAuth"),
    (Oid::new_unwrap("1.3.6.1.5.5.7.3.4"), "emailProtection"),
    (OID_KP_TIME_STAMPING, "timeStamping"),
    (Oid::new_unwrap("1.3.6.1.5.5.7.3.9"), "OCSPSigning"),
];
const OID_FULCIO_ISSUER_V1: Oid = Oid::new_unwrap("1.3.6.1.4.1.57264.1.1");
const OID_FULCIO_ISSUER_V2: Oid = Oid::new_unwrap("1.3.6.1.4.1.57264.1.8");
const OID_FULCIO_OTHERNAME_SAN: Oid = Oid::new_unwrap("1.3.6.1.4.1.57264.1.7");
/// The extensions a certificate may mark critical here (RFC 5280 §4.2: an unknown critical one is fatal).
const UNDERSTOOD_CRITICAL: [&str; 6] = [
    "2.5.29.15", // keyUsage
    "2.5.29.19", // basicConstraints
    "2.5.29.37", // extKeyUsage
    "2.5.29.17", // subjectAltName
    "2.5.29.14", // subjectKeyIdentifier
    "2.5.29.35", // authorityKeyIdentifier
];

/// The Fulcio extensions read into [`CertificateIdentity::extensions`]: the last arc under
/// 1.3.6.1.4.1.57264.1, the name, and whether the value is DER (UTF8String) rather than raw bytes.
const FULCIO_EXTENSIONS: [(u32, &str, bool); 20] = [
    (2, "githubWorkflowTrigger", false),
    (3, "githubWorkflowSha", false),
    (4, "githubWorkflowName", false),
    (5, "githubWorkflowRepository", false),
    (6, "githubWorkflowRef", false),
    (9, "buildSignerUri", true),
    (10, "buildSignerDigest", true),
    (11, "runnerEnvironment", true),
    (12, "sourceRepositoryUri", true),
    (13, "sourceRepositoryDigest", true),
    (14, "sourceRepositoryRef", true),
    (15, "sourceRepositoryIdentifier", true),
    (16, "sourceRepositoryOwnerUri", true),
    (17, "sourceRepositoryOwnerIdentifier", true),
    (18, "buildConfigUri", true),
    (19, "buildConfigDigest", true),
    (20, "buildTrigger", true),
    (21, "runInvocationUri", true),
    (22, "sourceRepositoryVisibilityAtSigning", true),
    (23, "deploymentEnvironment", true),
];

/// The longest path accepted from a leaf to its anchor, and the most intermediates a bundle may carry.
const MAX_PATH: usize = 8;
/// The longest value kept from a Fulcio extension or SAN.
const MAX_FIELD: usize = 4096;

/// Validates `leaf` (DER) with `intermediates` up to one of `authorities`, at `at`.
pub fn verify_chain(
    leaf: &[u8],
    intermediates: &[Vec<u8>],
    authorities: &[CertificateAuthority],
    at: OffsetDateTime,
) -> Result<VerifiedCertificate, PkiError> {
    let chained = verify_path(leaf, intermediates, authorities, at, KeyPurpose::CodeSigning)?;
    let identity = read_identity(leaf)?;
    Ok(VerifiedCertificate { key: chained.key, identity, authority: chained.authority, issuer_der: chained.issuer_der })
}

/// Validates `leaf` for `purpose` with `intermediates` up to one of `authorities`, at `at`: the first
/// authority whose window holds `at` and to whose last certificate (its anchor) a path verifies.
pub fn verify_path(
    leaf: &[u8],
    intermediates: &[Vec<u8>],
    authorities: &[CertificateAuthority],
    at: OffsetDateTime,
    purpose: KeyPurpose,
) -> Result<ChainedLeaf, PkiError> {
    let leaf_cert = parse(leaf, "leaf")?;
    check_leaf(&leaf_cert, purpose)?;
    check_valid_at(&leaf_cert, at, "leaf")?;
    if intermediates.len() > MAX_PATH {
        return Err(fail(&format!(
            "{} intermediate certificates, more than the {MAX_PATH} accepted",
            intermediates.len()
        )));
    }
    let mut extra = Vec::with_capacity(intermediates.len());
    for der in intermediates {
        let cert = parse(der, "intermediate")?;
        if is_self_issued(&cert) {
            return Err(fail("the bundle carries a root certificate; roots come only from the trusted root"));
        }
        extra.push((der.as_slice(), cert));
    }
    let mut reasons = Vec::new();
    for authority in authorities {
        if !authority.validity.contains(at) {
            reasons.push(format!("{}: outside its validity in the trusted root", authority.name));
            continue;
        }
        match path_to(&leaf_cert, &extra, authority, at, purpose) {
            Ok(issuer_der) => {
                let key = key_of(&leaf_cert)?;
                return Ok(ChainedLeaf { key, authority: authority.name.clone(), issuer_der });
            }
            Err(reason) => reasons.push(format!("{}: {reason}", authority.name)),
        }
    }
    if reasons.is_empty() {
        return Err(fail("the trusted root has no certificate authority"));
    }
    Err(fail(&format!("no trusted authority issued it ({})", reasons.join("; "))))
}

/// Builds the path from `leaf` to the authority's anchor, checking every link; returns the leaf's issuer.
fn path_to(
    leaf: &Certificate,
    extra: &[(&[u8], Certificate)],
    authority: &CertificateAuthority,
    at: OffsetDateTime,
    purpose: KeyPurpose,
) -> Result<Vec<u8>, String> {
    let Some((anchor_der, chain)) = authority.certificates.split_last() else {
        return Err("no certificates".into());
    };
    let anchor = parse(anchor_der, "anchor").map_err(|e| e.to_string())?;
    let mut pool: Vec<(&[u8], Certificate)> = extra.to_vec();
    for der in chain {
        pool.push((der.as_slice(), parse(der, "authority").map_err(|e| e.to_string())?));
    }
    let mut current = leaf.clone();
    let mut leaf_issuer = None;
    for depth in 0..MAX_PATH {
        let (issuer_der, issuer) = if issued_by(&current, &anchor) {
            (anchor_der.as_slice(), &anchor)
        } else {
            let found = pool.iter().find(|(_, cand)| issued_by(&current, cand));
            let Some((der, cert)) = found else {
                return Err("no issuer for the certificate chain".into());
            };
            (*der, cert)
        };
        check_issuer(issuer, depth, at, purpose).map_err(|e| e.to_string())?;
        leaf_issuer.get_or_insert_with(|| issuer_der.to_vec());
        if issuer_der == anchor_der.as_slice() {
            return leaf_issuer.ok_or_else(|| "empty path".into());
        }
        current = issuer.clone();
    }
    Err("the certificate chain is too long".into())
}

/// Whether `cert` names `issuer` as its issuer and `issuer`'s key verifies its signature.
pub(super) fn issued_by(cert: &Certificate, issuer: &Certificate) -> bool {
    cert.tbs_certificate().issuer() == issuer.tbs_certificate().subject()
        && key_of(issuer).is_ok_and(|key| check_signature(cert, &key).is_ok())
}

pub(super) fn is_self_issued(cert: &Certificate) -> bool {
    cert.tbs_certificate().issuer() == cert.tbs_certificate().subject()
}

/// Checks the signature of `cert` with `key`, by the algorithm the certificate names.
pub fn check_signature(cert: &Certificate, key: &VerifyingKey) -> Result<(), PkiError> {
    let tbs = cert.tbs_certificate().to_der().map_err(|_| fail("TBS does not encode"))?;
    let Some(signature) = cert.signature().as_bytes() else {
        return Err(fail("signature has unused bits"));
    };
    verify_by_algorithm(key, &cert.signature_algorithm().oid, &tbs, signature)
}

/// Checks `signature` over `message` with `key`, by an X.509/CMS signature algorithm OID.
pub fn verify_by_algorithm(
    key: &VerifyingKey,
    algorithm: &Oid,
    message: &[u8],
    signature: &[u8],
) -> Result<(), PkiError> {
    let (family, hash) = signature_algorithm(algorithm)?;
    if family != key.family() {
        return Err(PkiError::Signature(format!("a {} key cannot check a {algorithm} signature", key.describe())));
    }
    match hash {
        Some(hash) => key.verify_with_hash(hash, message, signature),
        None => key.verify(message, signature),
    }
}

fn signature_algorithm(oid: &Oid) -> Result<(KeyFamily, Option<HashAlgorithm>), PkiError> {
    Ok(match oid.to_string().as_str() {
        "1.2.840.10045.4.3.2" => (KeyFamily::Ecdsa, Some(HashAlgorithm::Sha256)),
        "1.2.840.10045.4.3.3" => (KeyFamily::Ecdsa, Some(HashAlgorithm::Sha384)),
        "1.2.840.10045.4.3.4" => (KeyFamily::Ecdsa, Some(HashAlgorithm::Sha512)),
        "1.2.840.113549.1.1.11" => (KeyFamily::Rsa, Some(HashAlgorithm::Sha256)),
        "1.2.840.113549.1.1.12" => (KeyFamily::Rsa, Some(HashAlgorithm::Sha384)),
        "1.2.840.113549.1.1.13" => (KeyFamily::Rsa, Some(HashAlgorithm::Sha512)),
        "1.3.101.112" => (KeyFamily::Ed25519, None),
        other => return Err(PkiError::Signature(format!("unsupported signature algorithm {other}"))),
    })
}

/// A self-signed leaf that is its own trust anchor (a Notary Project trust store may hold the signing
/// certificate itself, as `notation cert generate-test` makes it; the caller checks it is in the store): the
/// leaf's rules but self-issued, its own signature, valid at `at`. Returns its key.
pub fn verify_self_signed_leaf(der: &[u8], at: OffsetDateTime, purpose: KeyPurpose) -> Result<VerifyingKey, PkiError> {
    let cert = parse(der, "leaf")?;
    if !is_self_issued(&cert) {
        return Err(fail("the leaf is not self-signed"));
    }
    check_leaf_usage(&cert, purpose)?;
    check_valid_at(&cert, at, "leaf")?;
    let key = key_of(&cert)?;
    check_signature(&cert, &key)?;
    Ok(key)
}

/// The leaf's own rules: not a CA, no unknown critical extension, the purpose's extended key usage.
pub(super) fn check_leaf(cert: &Certificate, purpose: KeyPurpose) -> Result<(), PkiError> {
    if is_self_issued(cert) {
        return Err(fail("the leaf is a CA certificate, not a signing certificate"));
    }
    check_leaf_usage(cert, purpose)
}

fn check_leaf_usage(cert: &Certificate, purpose: KeyPurpose) -> Result<(), PkiError> {
    check_extensions(cert, "leaf")?;
    let tbs = cert.tbs_certificate();
    let basic = tbs.get_extension::<BasicConstraints>().map_err(|_| fail("leaf: malformed basic constraints"))?;
    if basic.is_some_and(|(_, bc)| bc.ca) {
        return Err(fail("the leaf is a CA certificate, not a signing certificate"));
    }
    let usage = tbs.get_extension::<KeyUsage>().map_err(|_| fail("leaf: malformed key usage"))?;
    if usage.is_some_and(|(_, ku)| !ku.digital_signature()) {
        return Err(fail("leaf: key usage does not allow digital signatures"));
    }
    let eku = tbs.get_extension::<ExtendedKeyUsage>().map_err(|_| fail("leaf: malformed extended key usage"))?;
    if purpose == KeyPurpose::NotarySigning {
        let named = eku.map(|(_, eku)| eku.0).unwrap_or_default();
        if let Some((_, name)) = NOTARY_EXCLUDED_EKUS.iter().find(|(oid, _)| named.contains(oid)) {
            return Err(fail(&format!("leaf: extended key usage must not include {name} (Notary Project signing)")));
        }
        return Ok(());
    }
    if !eku.as_ref().is_some_and(|(_, eku)| eku.0.contains(&purpose.oid())) {
        return Err(fail(&format!("leaf: extended key usage does not include {}", purpose.name())));
    }
    // RFC 3161 §2.3: a TSA's certificate has exactly one key purpose, id-kp-timeStamping, marked critical.
    if purpose == KeyPurpose::TimeStamping && !eku.is_some_and(|(critical, eku)| critical && eku.0.len() == 1) {
        return Err(fail("leaf: a TSA certificate's extended key usage must be timeStamping alone, marked critical"));
    }
    Ok(())
}

/// An issuer's rules: valid at `at`, a CA allowed to sign certificates, path length honoured.
fn check_issuer(cert: &Certificate, depth: usize, at: OffsetDateTime, purpose: KeyPurpose) -> Result<(), PkiError> {
    check_extensions(cert, "issuer")?;
    check_valid_at(cert, at, "issuer")?;
    let tbs = cert.tbs_certificate();
    let basic = tbs.get_extension::<BasicConstraints>().map_err(|_| fail("issuer: malformed basic constraints"))?;
    let Some((_, basic)) = basic.filter(|(_, bc)| bc.ca) else {
        return Err(fail("issuer is not a CA certificate"));
    };
    if basic.path_len_constraint.is_some_and(|len| usize::from(len) < depth) {
        return Err(fail("issuer's path length constraint is exceeded"));
    }
    let usage = tbs.get_extension::<KeyUsage>().map_err(|_| fail("issuer: malformed key usage"))?;
    if !usage.is_some_and(|(_, ku)| ku.key_cert_sign()) {
        return Err(fail("issuer's key usage does not allow signing certificates"));
    }
    // An issuer that restricts its extended key usage must allow the leaf's (as Go's x509 nests them).
    let eku = tbs.get_extension::<ExtendedKeyUsage>().map_err(|_| fail("issuer: malformed extended key usage"))?;
    if eku.is_some_and(|(_, eku)| !eku.0.contains(&purpose.oid()) && !eku.0.contains(&OID_ANY_EKU)) {
        return Err(fail(&format!("issuer's extended key usage does not include {}", purpose.name())));
    }
    Ok(())
}

/// No extension twice, none critical that this module does not understand.
pub(super) fn check_extensions(cert: &Certificate, which: &str) -> Result<(), PkiError> {
    let extensions = cert.tbs_certificate().extensions().map(Vec::as_slice).unwrap_or_default();
    let mut seen = std::collections::BTreeSet::new();
    for ext in extensions {
        let oid = ext.extn_id.to_string();
        if ext.critical && !UNDERSTOOD_CRITICAL.contains(&oid.as_str()) {
            return Err(fail(&format!("{which}: unknown critical extension {oid}")));
        }
        if !seen.insert(oid.clone()) {
            return Err(fail(&format!("{which}: extension {oid} appears twice")));
        }
    }
    Ok(())
}

pub(super) fn check_valid_at(cert: &Certificate, at: OffsetDateTime, which: &str) -> Result<(), PkiError> {
    let (not_before, not_after) = validity(cert)?;
    if at < not_before || at > not_after {
        return Err(fail(&format!(
            "{which} certificate is not valid at {} (valid {} to {})",
            rfc3339(at),
            rfc3339(not_before),
            rfc3339(not_after)
        )));
    }
    Ok(())
}

/// The certificate's notBefore and notAfter (both inclusive).
pub fn validity(cert: &Certificate) -> Result<(OffsetDateTime, OffsetDateTime), PkiError> {
    let window = cert.tbs_certificate().validity();
    Ok((to_time(window.not_before)?, to_time(window.not_after)?))
}

fn to_time(time: x509_cert::time::Time) -> Result<OffsetDateTime, PkiError> {
    let seconds = i64::try_from(time.to_unix_duration().as_secs()).map_err(|_| fail("time out of range"))?;
    OffsetDateTime::from_unix_timestamp(seconds).map_err(|_| fail("time out of range"))
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339).unwrap_or_else(|_| at.to_string())
}

/// Reads a DER certificate; `which` names it in the error.
pub fn parse(der: &[u8], which: &str) -> Result<Certificate, PkiError> {
    Certificate::from_der(der).map_err(|e| fail(&format!("{which} is not a DER X.509 certificate: {e}")))
}

pub(super) fn key_of(cert: &Certificate) -> Result<VerifyingKey, PkiError> {
    let spki =
        cert.tbs_certificate().subject_public_key_info().to_der().map_err(|_| fail("public key does not encode"))?;
    VerifyingKey::from_spki_der(&spki)
}

/// The identity a Fulcio leaf names: its SAN, OIDC issuer, Fulcio extensions and validity. Reads only;
/// [`verify_chain`] is what makes it trustworthy.
pub fn read_identity(leaf: &[u8]) -> Result<CertificateIdentity, PkiError> {
    let cert = parse(leaf, "leaf")?;
    let tbs = cert.tbs_certificate();
    let (not_before, not_after) = validity(&cert)?;
    let san = tbs.get_extension::<SubjectAltName>().map_err(|_| fail("malformed subject alternative name"))?;
    let subject = san.and_then(|(_, san)| first_identity(&san)).ok_or_else(|| fail("no identity in the SAN"))?;
    let mut issuer_v1 = None;
    let mut issuer_v2 = None;
    let mut extensions = BTreeMap::new();
    for ext in tbs.extensions().map(Vec::as_slice).unwrap_or_default() {
        let value = ext.extn_value.as_bytes();
        if ext.extn_id == OID_FULCIO_ISSUER_V2 {
            issuer_v2 = Some(der_string(value, "issuer")?);
        } else if ext.extn_id == OID_FULCIO_ISSUER_V1 {
            issuer_v1 = Some(raw_string(value, "issuer")?);
        } else if let Some((name, is_der)) = fulcio_extension(&ext.extn_id) {
            let text = if is_der { der_string(value, name)? } else { raw_string(value, name)? };
            extensions.insert(name.to_owned(), text);
        }
    }
    let issuer = issuer_v2.or(issuer_v1).ok_or_else(|| fail("no OIDC issuer extension"))?;
    Ok(CertificateIdentity { subject, issuer, extensions, not_before, not_after })
}

/// The SAN identity Sigstore uses: a URI, an e-mail address, or Fulcio's username otherName.
fn first_identity(san: &SubjectAltName) -> Option<String> {
    let ia5 = |s: &Ia5String| s.as_str().to_owned();
    san.0
        .iter()
        .find_map(|name| match name {
            GeneralName::UniformResourceIdentifier(uri) => Some(ia5(uri)),
            GeneralName::Rfc822Name(email) => Some(ia5(email)),
            GeneralName::OtherName(other) if other.type_id == OID_FULCIO_OTHERNAME_SAN => {
                other.value.decode_as::<Utf8StringRef<'_>>().ok().map(|s| s.as_str().to_owned())
            }
            _ => None,
        })
        .filter(|s| s.len() <= MAX_FIELD)
}

fn fulcio_extension(oid: &Oid) -> Option<(&'static str, bool)> {
    let text = oid.to_string();
    let arc: u32 = text.strip_prefix("1.3.6.1.4.1.57264.1.")?.parse().ok()?;
    FULCIO_EXTENSIONS.iter().find(|(n, _, _)| *n == arc).map(|(_, name, is_der)| (*name, *is_der))
}

fn der_string(value: &[u8], name: &str) -> Result<String, PkiError> {
    let text =
        Utf8StringRef::from_der(value).map_err(|_| fail(&format!("extension {name} is not a DER UTF8String")))?;
    bounded(text.as_str(), name)
}

fn raw_string(value: &[u8], name: &str) -> Result<String, PkiError> {
    let text = std::str::from_utf8(value).map_err(|_| fail(&format!("extension {name} is not UTF-8")))?;
    bounded(text, name)
}

fn bounded(text: &str, name: &str) -> Result<String, PkiError> {
    if text.len() > MAX_FIELD {
        return Err(fail(&format!("extension {name} is longer than {MAX_FIELD} bytes")));
    }
    Ok(text.to_owned())
}

/// The DER elements inside a constructed value's content, each as it is.
pub(super) fn der_elements(content: &[u8]) -> Result<Vec<der::AnyRef<'_>>, der::Error> {
    use der::Reader as _;
    let mut reader = der::SliceReader::new(content)?;
    let mut out = Vec::new();
    while !reader.is_finished() {
        out.push(reader.decode::<der::AnyRef<'_>>()?);
    }
    Ok(out)
}

fn fail(message: &str) -> PkiError {
    PkiError::Certificate(message.to_owned())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::pki::TrustedRoot;
    use base64::Engine as _;

    pub(crate) const CONFORMANCE: &str =
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/third-party/sigstore-conformance");

    pub(crate) fn bundle(case: &str) -> serde_json::Value {
        let path = format!("{CONFORMANCE}/bundle-verify/{case}/bundle.sigstore.json");
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    }

    pub(crate) fn b64(s: &str) -> Vec<u8> {
        base64::engine::general_purpose::STANDARD.decode(s).unwrap()
    }

    /// The bundle's certificates: the leaf first.
    pub(crate) fn certificates(case: &str) -> Vec<Vec<u8>> {
        let material = &bundle(case)["verificationMaterial"];
        if let Some(cert) = material["certificate"]["rawBytes"].as_str() {
            return vec![b64(cert)];
        }
        let chain = material["x509CertificateChain"]["certificates"].as_array().unwrap();
        chain.iter().map(|c| b64(c["rawBytes"].as_str().unwrap())).collect()
    }

    pub(crate) fn root(case: &str) -> TrustedRoot {
        let path = format!("{CONFORMANCE}/bundle-verify/{case}/trusted_root.json");
        match std::fs::read(path) {
            Ok(bytes) => TrustedRoot::parse(&bytes).unwrap(),
            Err(_) => {
                TrustedRoot::parse(&std::fs::read(format!("{CONFORMANCE}/production-trusted_root.json")).unwrap())
                    .unwrap()
            }
        }
    }

    /// A time inside the leaf's validity.
    pub(crate) fn during(leaf: &[u8]) -> OffsetDateTime {
        let identity = read_identity(leaf).unwrap();
        identity.not_before + time::Duration::seconds(60)
    }

    const BEACON: &str = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main";

    #[test]
    fn a_production_fulcio_leaf_chains_to_the_production_root_and_names_its_identity() {
        let certs = certificates("happy-path-v0.3");
        let root = root("happy-path-v0.3");
        let verified = verify_chain(&certs[0], &[], &root.certificate_authorities, during(&certs[0])).unwrap();
        assert_eq!(verified.authority, "https://fulcio.sigstore.dev");
        let identity = verified.identity;
        assert_eq!(identity.subject, BEACON);
        assert_eq!(identity.issuer, "https://token.actions.githubusercontent.com");
        assert_eq!(identity.extensions["buildTrigger"], "workflow_dispatch");
        assert_eq!(
            identity.extensions["sourceRepositoryUri"],
            "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon"
        );
        assert!(identity.extensions.contains_key("githubWorkflowRef"), "{:?}", identity.extensions);
        assert!(identity.extensions.contains_key("runnerEnvironment"));
        assert_eq!(identity.not_after - identity.not_before, time::Duration::minutes(10));
        // the issuer handed back is the intermediate, which signed the leaf
        let issuer = parse(&verified.issuer_der, "issuer").unwrap();
        check_signature(&parse(&certs[0], "leaf").unwrap(), &key_of(&issuer).unwrap()).unwrap();
    }

    #[test]
    fn a_leaf_is_refused_outside_its_validity_and_outside_the_authoritys_window() {
        let certs = certificates("happy-path-v0.3");
        let root = root("happy-path-v0.3");
        let identity = read_identity(&certs[0]).unwrap();
        let after = identity.not_after + time::Duration::seconds(1);
        let err = verify_chain(&certs[0], &[], &root.certificate_authorities, after).unwrap_err();
        assert!(err.to_string().contains("leaf certificate is not valid at"), "{err}");
        verify_chain(&certs[0], &[], &root.certificate_authorities, identity.not_after).unwrap();

        let mut closed = root.certificate_authorities;
        for ca in &mut closed {
            ca.validity.end = Some(identity.not_before - time::Duration::days(1));
        }
        let err = verify_chain(&certs[0], &[], &closed, during(&certs[0])).unwrap_err();
        assert!(err.to_string().contains("outside its validity in the trusted root"), "{err}");
    }

    #[test]
    fn a_leaf_from_another_ca_is_refused() {
        // bundle-from-wrong-instance_fail: a staging leaf against the production root
        let certs = certificates("bundle-from-wrong-instance_fail");
        let production = root("happy-path-v0.3");
        let err = verify_chain(&certs[0], &[], &production.certificate_authorities, during(&certs[0])).unwrap_err();
        assert!(err.to_string().contains("no trusted authority issued it"), "{err}");
        // it is a sound leaf of the staging instance
        let staging =
            TrustedRoot::parse(&std::fs::read(format!("{CONFORMANCE}/staging-trusted_root.json")).unwrap()).unwrap();
        let verified = verify_chain(&certs[0], &[], &staging.certificate_authorities, during(&certs[0])).unwrap();
        assert_eq!(verified.authority, "https://fulcio.sigstage.dev");
        // and a production leaf against a mock root
        let certs = certificates("happy-path-v0.3");
        let mock = root("intoto-with-custom-trust-root");
        assert!(verify_chain(&certs[0], &[], &mock.certificate_authorities, during(&certs[0])).is_err());
    }

    #[test]
    fn a_bundle_carrying_a_root_or_a_ca_as_leaf_is_refused() {
        let certs = certificates("bundle-with-root-cert_fail");
        let root = root("bundle-with-root-cert_fail");
        let at = during(&certs[0]);
        let err = verify_chain(&certs[0], &certs[1..], &root.certificate_authorities, at).unwrap_err();
        assert!(err.to_string().contains("carries a root certificate"), "{err}");
        // the same leaf with only the intermediate verifies
        let intermediate = certs[2].clone();
        verify_chain(&certs[0], std::slice::from_ref(&intermediate), &root.certificate_authorities, at).unwrap();
        // the intermediate presented as the leaf is a CA: refused
        let err = verify_chain(&intermediate, &[], &root.certificate_authorities, at).unwrap_err();
        assert!(err.to_string().contains("is a CA certificate"), "{err}");
    }

    #[test]
    fn too_many_intermediates_are_refused_unread() {
        let certs = certificates("happy-path-v0.3");
        let root = root("happy-path-v0.3");
        let many = vec![certs[0].clone(); MAX_PATH + 1];
        let err = verify_chain(&certs[0], &many, &root.certificate_authorities, during(&certs[0])).unwrap_err();
        assert!(err.to_string().contains("more than the 8 accepted"), "{err}");
    }

    #[test]
    fn a_private_root_with_an_rsa_ca_and_a_mock_ca_signing_with_sha384_verify() {
        for case in ["intoto-with-custom-trust-root", "bundle-with-sct-with-extensions"] {
            let certs = certificates(case);
            let root = root(case);
            let verified = verify_chain(&certs[0], &[], &root.certificate_authorities, during(&certs[0]))
                .unwrap_or_else(|e| panic!("{case}: {e}"));
            assert!(!verified.identity.issuer.is_empty());
        }
    }

    #[test]
    fn a_tampered_leaf_does_not_chain() {
        let mut leaf = certificates("happy-path-v0.3").remove(0);
        let root = root("happy-path-v0.3");
        let at = during(&leaf);
        // flip a byte inside the SAN URI (somewhere in the middle of the TBS)
        let pos = leaf.windows(6).position(|w| w == b"github").unwrap();
        leaf[pos] ^= 0x20;
        let err = verify_chain(&leaf, &[], &root.certificate_authorities, at).unwrap_err();
        assert!(err.to_string().contains("no issuer"), "{err}");
    }

    /// The leaf with its extensions changed by `change`, its signature kept (so only rules checked before
    /// the signature can pass or fail on it).
    fn with_extensions(
        leaf: &[u8],
        change: impl FnMut(x509_cert::ext::Extension) -> Option<x509_cert::ext::Extension>,
    ) -> Vec<u8> {
        use crate::pki::sct::{rewrite_extensions, tlv};
        let cert = parse(leaf, "leaf").unwrap();
        let tbs = rewrite_extensions(&cert, change).unwrap();
        let mut body = tbs;
        body.extend_from_slice(&cert.signature_algorithm().to_der().unwrap());
        body.extend_from_slice(&cert.signature().to_der().unwrap());
        tlv(0x30, &body)
    }

    #[test]
    fn an_unknown_critical_extension_or_a_missing_eku_is_refused_on_the_leaf() {
        let certs = certificates("happy-path-v0.3");
        let root = root("happy-path-v0.3");
        let at = during(&certs[0]);
        let authorities = &root.certificate_authorities;
        // unchanged, the rewrite keeps every byte: the leaf still verifies
        let same = with_extensions(&certs[0], Some);
        assert_eq!(same, certs[0]);

        let critical_sct = with_extensions(&certs[0], |mut ext| {
            ext.critical |= ext.extn_id.to_string() == "1.3.6.1.4.1.11129.2.4.2";
            Some(ext)
        });
        let err = verify_chain(&critical_sct, &[], authorities, at).unwrap_err();
        assert!(err.to_string().contains("unknown critical extension 1.3.6.1.4.1.11129.2.4.2"), "{err}");

        let mut seen_eku = false;
        let no_eku = with_extensions(&certs[0], |ext| {
            let eku = ext.extn_id.to_string() == "2.5.29.37";
            seen_eku |= eku;
            (!eku).then_some(ext)
        });
        assert!(seen_eku);
        let err = verify_chain(&no_eku, &[], authorities, at).unwrap_err();
        assert!(err.to_string().contains("does not include code signing"), "{err}");
    }

    #[test]
    fn a_notary_leaf_may_lack_an_eku_but_must_not_name_an_excluded_one_while_a_fulcio_leaf_needs_code_signing() {
        let certs = certificates("happy-path-v0.3");
        let eku = |oids: &[&str]| {
            with_extensions(&certs[0], |mut ext| {
                if ext.extn_id.to_string() != "2.5.29.37" {
                    return Some(ext);
                }
                let value = ExtendedKeyUsage(oids.iter().map(|oid| Oid::new_unwrap(oid)).collect());
                ext.extn_value = der::asn1::OctetString::new(value.to_der().unwrap()).unwrap();
                Some(ext)
            })
        };
        let leaf = |der: &[u8]| parse(der, "leaf").unwrap();
        let no_eku = with_extensions(&certs[0], |ext| (ext.extn_id.to_string() != "2.5.29.37").then_some(ext));
        check_leaf(&leaf(&no_eku), KeyPurpose::NotarySigning).unwrap();
        assert!(check_leaf(&leaf(&no_eku), KeyPurpose::CodeSigning).is_err());
        let unknown_only = eku(&["1.2.3.4"]);
        check_leaf(&leaf(&unknown_only), KeyPurpose::NotarySigning).unwrap();
        for (excluded, name) in [
            ("2.5.29.37.0", "anyExtendedKeyUsage"),
            ("1.3.6.1.5.5.7.3.9", "OCSPSigning"),
            ("1.3.6.1.5.5.7.3.2", "clientAuth"),
        ] {
            let with = eku(&["1.3.6.1.5.5.7.3.3", excluded]);
            let err = check_leaf(&leaf(&with), KeyPurpose::NotarySigning).unwrap_err();
            assert!(err.to_string().contains(&format!("must not include {name}")), "{err}");
        }
        check_leaf(&leaf(&eku(&["1.3.6.1.5.5.7.3.3"])), KeyPurpose::NotarySigning).unwrap();
    }

    #[test]
    fn a_tsa_leaf_has_time_stamping_alone_and_critical() {
        let certs = certificates("happy-path-v0.3");
        let eku = |oids: &[&str], critical: bool| {
            let der = with_extensions(&certs[0], |mut ext| {
                if ext.extn_id.to_string() == "2.5.29.37" {
                    let value = ExtendedKeyUsage(oids.iter().map(|oid| Oid::new_unwrap(oid)).collect());
                    ext.extn_value = der::asn1::OctetString::new(value.to_der().unwrap()).unwrap();
                    ext.critical = critical;
                }
                Some(ext)
            });
            parse(&der, "leaf").unwrap()
        };
        let time_stamping = "1.3.6.1.5.5.7.3.8";
        check_leaf(&eku(&[time_stamping], true), KeyPurpose::TimeStamping).unwrap();
        for (leaf, case) in [
            (eku(&[time_stamping], false), "not critical"),
            (eku(&[time_stamping, "1.3.6.1.5.5.7.3.3"], true), "with code signing too"),
        ] {
            let err = check_leaf(&leaf, KeyPurpose::TimeStamping).unwrap_err();
            assert!(err.to_string().contains("timeStamping alone, marked critical"), "{case}: {err}");
        }
    }

    #[test]
    fn an_issuer_must_be_a_ca_within_its_path_length_and_extended_key_usage() {
        let certs = certificates("happy-path-v0.3");
        let root = root("happy-path-v0.3");
        let at = during(&certs[0]);
        let leaf = parse(&certs[0], "leaf").unwrap();
        let err = check_issuer(&leaf, 0, at, KeyPurpose::CodeSigning).unwrap_err();
        assert!(err.to_string().contains("issuer is not a CA"), "{err}");
        // the production intermediate says pathlen:0: it may issue leaves only
        let intermediate = parse(&root.certificate_authorities[1].certificates[0], "intermediate").unwrap();
        check_issuer(&intermediate, 0, at, KeyPurpose::CodeSigning).unwrap();
        let err = check_issuer(&intermediate, 0, at, KeyPurpose::TimeStamping).unwrap_err();
        assert!(err.to_string().contains("extended key usage does not include time stamping"), "{err}");
        let err = check_issuer(&intermediate, 1, at, KeyPurpose::CodeSigning).unwrap_err();
        assert!(err.to_string().contains("path length"), "{err}");
    }

    #[test]
    fn a_time_stamping_leaf_is_not_a_code_signing_one() {
        // The TSA leaf of the mock roots is a time-stamping certificate, not a code-signing one.
        let root = root("intoto-with-custom-trust-root");
        let tsa = &root.timestamp_authorities[0];
        let leaf = &tsa.certificates[0];
        let at = validity(&parse(leaf, "tsa").unwrap()).unwrap().0 + time::Duration::days(1);
        let err = verify_chain(leaf, &[], &root.timestamp_authorities, at).unwrap_err();
        assert!(err.to_string().contains("does not include code signing"), "{err}");
        verify_path(leaf, &[], std::slice::from_ref(tsa), at, KeyPurpose::TimeStamping).unwrap();
    }
}
