//! Verifying a Notary Project signature envelope (docs/FORMATS.md §20) against trust stores, the way
//! `notation verify` judges its integrity and authenticity: the protected headers (content type, signing
//! scheme, `crit` listing exactly what must be critical), the signature by the leaf with the algorithm its key
//! requires, the chain to a trust store's certificates (`ca` or `signingAuthority`) for code signing, at the
//! RFC 3161 timestamp's time when a `tsa` store vouches for one (else at the present), the expiry, and
//! revocation by a cached CRL. Also the X.509 subject DN form notation's `trustedIdentities` use.
//!
//! Owns: those checks and the facts they establish ([`VerifiedNotary`]; [`LaterChecks`]: the expiry, timestamp
//! and revocation checks each on its own, for a caller that must see every failure), and reading which CRL distribution
//! points a chain names and until when a CRL is current (for the caller that fetches and caches them). Pure:
//! the caller passes the trust stores, the CRLs (cached files or fetched, checked alike) and the present time.
//! Must not touch: which identities or images a policy allows (the target descriptor is returned for the
//! caller to bind to the image), fetching CRLs, registries.

use std::collections::BTreeMap;

use der::asn1::{ObjectIdentifier as Oid, UintRef};
use der::{Decode as _, Encode as _, Tag, Tagged as _};
use time::OffsetDateTime;
use x509_cert::Certificate;
use x509_cert::crl::CertificateList;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{CrlDistributionPoints, KeyUsage};
use x509_cert::name::Name;

use super::PkiError;
use super::certificate::{self, KeyPurpose};
use super::key::{HashAlgorithm, VerifyingKey};
use super::timestamp::{self, VerifiedTimestamp};
use super::trusted_root::{CertificateAuthority, Validity};
use crate::formats::notary::{
    AUTHENTIC_SIGNING_TIME, Algorithm, EXPIRY, EnvelopeFormat, NOTARY_PAYLOAD, NotaryEnvelope, SIGNING_SCHEME,
    SigningScheme, VERIFICATION_PLUGIN, VERIFICATION_PLUGIN_MIN_VERSION, chain_thumbprints,
};
use crate::formats::signature_manifest::Descriptor;

/// A CRL larger than this is refused unread (and a fetch reads no more).
pub const MAX_CRL_BYTES: usize = 4 * 1024 * 1024;
/// The most distribution-point URLs taken from one certificate, and from one chain.
const MAX_CRL_URLS_PER_CERTIFICATE: usize = 4;
const MAX_CRL_URLS: usize = 8;
/// CRL extensions that may be critical here: the CRL number and the authority key identifier.
const UNDERSTOOD_CRL_CRITICAL: [Oid; 2] = [Oid::new_unwrap("2.5.29.20"), Oid::new_unwrap("2.5.29.35")];
/// The attributes a DN in `trustedIdentities` (and the leaf's subject) must have, as notation requires.
const MANDATORY_DN_ATTRIBUTES: [&str; 3] = ["C", "ST", "O"];
/// The attribute short names Go's `pkix.Name.String()` writes (notation compares DNs in that vocabulary).
const DN_ATTRIBUTES: [(&str, &str); 9] = [
    ("2.5.4.6", "C"),
    ("2.5.4.8", "ST"),
    ("2.5.4.7", "L"),
    ("2.5.4.9", "STREET"),
    ("2.5.4.17", "POSTALCODE"),
    ("2.5.4.10", "O"),
    ("2.5.4.11", "OU"),
    ("2.5.4.3", "CN"),
    ("2.5.4.5", "SERIALNUMBER"),
];

/// The kind of a Notary Project trust store (trust-store-trust-policy.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrustStoreKind {
    /// Roots of `notary.x509` signatures.
    Ca,
    /// Roots of `notary.x509.signingAuthority` signatures.
    SigningAuthority,
    /// Roots of RFC 3161 timestamp authorities.
    Tsa,
}

impl TrustStoreKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ca => "ca",
            Self::SigningAuthority => "signingAuthority",
            Self::Tsa => "tsa",
        }
    }
}

/// A named trust store: DER certificates trusted as anchors for its kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustStore {
    pub name: String,
    pub kind: TrustStoreKind,
    pub certificates: Vec<Vec<u8>>,
}

/// What a verification trusts: the policy's stores (any kinds) and the CRLs cached for it (DER).
#[derive(Debug, Clone, Copy)]
pub struct NotaryTrust<'a> {
    pub stores: &'a [TrustStore],
    pub crls: &'a [Vec<u8>],
}

/// What was learnt about revocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revocation {
    /// Every certificate naming a CRL distribution point had a current CRL, signed by its issuer, not
    /// listing it (or no certificate names one).
    Good,
    /// Some certificates name a distribution point but no usable CRL was cached for them; one line each.
    /// (A revoked certificate is an error, never this.)
    Unknown(Vec<String>),
}

/// A Notary Project signature that verified.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedNotary {
    pub format: EnvelopeFormat,
    pub signing_scheme: SigningScheme,
    /// The leaf's subject DN as notation's `x509.subject` writes it: `C=US, ST=WA, L=Seattle, O=…, CN=…`.
    pub subject: String,
    /// SHA-256 (hex) of each certificate of the envelope's chain, leaf first.
    pub thumbprints: Vec<String>,
    /// The signing time the scheme names (claimed under `notary.x509`, authentic under signingAuthority).
    pub signing_time: OffsetDateTime,
    /// The timestamp authority's time, when a `tsa` store vouched for the countersignature.
    pub timestamp: Option<VerifiedTimestamp>,
    /// The time the chain was validated at.
    pub chain_validated_at: OffsetDateTime,
    pub expiry: Option<OffsetDateTime>,
    /// The signed artifact; the caller binds it to the image (digest, media type, size).
    pub target: Descriptor,
    /// `kind:name` of the trust store the chain ends in.
    pub trust_store: String,
    pub signing_agent: Option<String>,
    pub revocation: Revocation,
}

/// Verifies `envelope` under `trust` at `now`.
pub fn verify_notary(
    envelope: &NotaryEnvelope,
    trust: NotaryTrust<'_>,
    now: OffsetDateTime,
) -> Result<VerifiedNotary, PkiError> {
    check_headers(envelope)?;
    let signing_time = envelope.scheme_signing_time().ok_or_else(|| fail("no signing time"))?;
    let Some((leaf_der, rest)) = envelope.certificate_chain.split_first() else {
        return Err(fail("no certificate chain"));
    };
    let leaf = certificate::parse(leaf_der, "leaf")?;
    check_leaf_key_usage(&leaf)?;
    let leaf_key = public_key(&leaf)?;
    check_signature(envelope, &leaf_key)?;
    let timestamp = verified_timestamp(envelope, trust.stores)?;
    let at = match (envelope.headers.signing_scheme, &timestamp) {
        (SigningScheme::X509SigningAuthority, _) => signing_time,
        (SigningScheme::X509, Some(stamp)) => stamp.time,
        (SigningScheme::X509, None) => now,
    };
    let (not_before, not_after) = certificate::validity(&leaf)?;
    if signing_time < not_before || signing_time > not_after {
        return Err(fail("the signing time is outside the signing certificate's validity"));
    }
    let anchors = anchor_kind(envelope.headers.signing_scheme);
    let (trust_store, path) = verify_chain(leaf_der, rest, trust.stores, anchors, at)?;
    if let Some(expiry) = envelope.headers.expiry
        && now > expiry
    {
        return Err(fail("the signature has expired"));
    }
    let revocation = check_revocation(&path, trust.crls, now)?;
    Ok(VerifiedNotary {
        format: envelope.format,
        signing_scheme: envelope.headers.signing_scheme,
        subject: subject_dn(leaf.tbs_certificate().subject()),
        thumbprints: chain_thumbprints(&envelope.certificate_chain),
        signing_time,
        timestamp,
        chain_validated_at: at,
        expiry: envelope.headers.expiry,
        target: envelope.target_artifact.clone(),
        trust_store,
        signing_agent: envelope.signing_agent.clone(),
        revocation,
    })
}

/// notation's checks after authenticity, each judged on its own (one failing never hides another), for the
/// chain as it validates under `trust.stores`: the authority's stores when authenticity holds, the envelope's
/// own chain otherwise (as notation judges them on the envelope's chain whatever authenticity found).
#[derive(Debug)]
pub struct LaterChecks {
    /// The chain is valid at the time it is judged at: the present, or a `tsa`-vouched timestamp's time
    /// (under `notary.x509`); at the authentic signing time (under signingAuthority).
    pub authentic_timestamp: Result<(), PkiError>,
    /// The envelope's expiry has not passed at `now`.
    pub expiry: Result<(), PkiError>,
    /// The chain's revocation status by `trust.crls` current at `now`, the chain taken as it validated when
    /// signed (so an expired certificate's revocation is still checked).
    pub revocation: Result<Revocation, PkiError>,
}

/// The [`LaterChecks`] of an envelope whose integrity holds, under `trust` at `now`.
pub fn later_checks(envelope: &NotaryEnvelope, trust: NotaryTrust<'_>, now: OffsetDateTime) -> LaterChecks {
    let expiry = match envelope.headers.expiry {
        Some(expiry) if now > expiry => Err(fail("the signature has expired")),
        _ => Ok(()),
    };
    let timestamp = verified_timestamp(envelope, trust.stores);
    let stamp_time = timestamp.as_ref().ok().and_then(|stamp| stamp.as_ref().map(|s| s.time));
    let scheme = envelope.headers.signing_scheme;
    let signing_time = envelope.scheme_signing_time();
    let chained = |at: Option<OffsetDateTime>| {
        let (Some(at), Some((leaf, rest))) = (at, envelope.certificate_chain.split_first()) else {
            return Err(fail("no signing time or no certificate chain"));
        };
        verify_chain(leaf, rest, trust.stores, anchor_kind(scheme), at).map(|(_, path)| path)
    };
    let (judged_at, signed_at) = match (scheme, stamp_time) {
        (SigningScheme::X509SigningAuthority, _) => (signing_time, signing_time),
        (SigningScheme::X509, Some(time)) => (Some(time), Some(time)),
        (SigningScheme::X509, None) => (Some(now), signing_time),
    };
    let authentic_timestamp = timestamp.and_then(|_| chained(judged_at)).map(|_| ());
    let revocation = chained(signed_at).and_then(|path| check_revocation(&path, trust.crls, now));
    LaterChecks { authentic_timestamp, expiry, revocation }
}

/// The trust-store kind a signing scheme's chain must end in.
fn anchor_kind(scheme: SigningScheme) -> TrustStoreKind {
    match scheme {
        SigningScheme::X509 => TrustStoreKind::Ca,
        SigningScheme::X509SigningAuthority => TrustStoreKind::SigningAuthority,
    }
}

/// The content type, the scheme's time parameter, and `crit`: it lists the signing scheme, the expiry when
/// present and the authentic signing time under signingAuthority, nothing twice, and nothing else (another
/// critical parameter is not understood here; a verification plugin cannot run here).
fn check_headers(envelope: &NotaryEnvelope) -> Result<(), PkiError> {
    let headers = &envelope.headers;
    if headers.content_type != NOTARY_PAYLOAD {
        return Err(fail("the payload content type is not application/vnd.cncf.notary.payload.v1+json"));
    }
    match headers.signing_scheme {
        SigningScheme::X509 if headers.authentic_signing_time.is_some() => {
            return Err(fail("authenticSigningTime is not allowed under notary.x509"));
        }
        SigningScheme::X509 if headers.signing_time.is_none() => return Err(fail("no signingTime")),
        SigningScheme::X509SigningAuthority if headers.signing_time.is_some() => {
            return Err(fail("signingTime is not allowed under notary.x509.signingAuthority"));
        }
        SigningScheme::X509SigningAuthority if headers.authentic_signing_time.is_none() => {
            return Err(fail("no authenticSigningTime"));
        }
        _ => {}
    }
    if headers.verification_plugin.is_some() {
        return Err(fail("the signature requires a verification plugin, which notarium cannot run"));
    }
    let mut required = vec![SIGNING_SCHEME];
    if headers.expiry.is_some() {
        required.push(EXPIRY);
    }
    if headers.signing_scheme == SigningScheme::X509SigningAuthority {
        required.push(AUTHENTIC_SIGNING_TIME);
    }
    if headers.critical.is_empty() {
        return Err(fail("no crit header"));
    }
    let mut seen = std::collections::BTreeSet::new();
    for name in &headers.critical {
        if !seen.insert(name.as_str()) {
            return Err(fail("crit lists a header twice"));
        }
        if [VERIFICATION_PLUGIN, VERIFICATION_PLUGIN_MIN_VERSION].contains(&name.as_str()) {
            return Err(fail("the signature requires a verification plugin, which notarium cannot run"));
        }
        if !required.contains(&name.as_str()) {
            return Err(fail(&format!("critical header {:?} is not understood", short(name))));
        }
    }
    if let Some(missing) = required.iter().find(|name| !seen.contains(*name)) {
        return Err(fail(&format!("{missing} is not marked critical")));
    }
    Ok(())
}

/// The Notary Project's leaf key usage: present, critical, digitalSignature set and none of
/// keyEncipherment, dataEncipherment, keyAgreement, keyCertSign, cRLSign, encipherOnly, decipherOnly
/// (nonRepudiation may be set). The extended key usage is judged in the chain ([`KeyPurpose::NotarySigning`]).
fn check_leaf_key_usage(leaf: &Certificate) -> Result<(), PkiError> {
    let usage = leaf.tbs_certificate().get_extension::<KeyUsage>().map_err(|_| fail("malformed key usage"))?;
    let Some((critical, usage)) = usage else {
        return Err(fail("the signing certificate has no key usage extension"));
    };
    if !critical {
        return Err(fail("the signing certificate's key usage extension is not critical"));
    }
    let forbidden = usage.key_encipherment()
        || usage.data_encipherment()
        || usage.key_agreement()
        || usage.key_cert_sign()
        || usage.crl_sign()
        || usage.encipher_only()
        || usage.decipher_only();
    if !usage.digital_signature() || forbidden {
        return Err(fail("the signing certificate's key usage is not digitalSignature alone"));
    }
    Ok(())
}

/// The signature over the signing input, by the algorithm named, which must be the one the leaf's key
/// calls for (P-256: ES256, P-384: ES384, P-521: ES512, RSA 2048/3072/4096: PS256/PS384/PS512).
fn check_signature(envelope: &NotaryEnvelope, key: &VerifyingKey) -> Result<(), PkiError> {
    let algorithm = envelope.algorithm;
    let expected = match (key.describe(), key.rsa_bits()) {
        ("ECDSA P-256", _) => Some(Algorithm::Es256),
        ("ECDSA P-384", _) => Some(Algorithm::Es384),
        ("ECDSA P-521", _) => Some(Algorithm::Es512),
        (_, Some(2048)) => Some(Algorithm::Ps256),
        (_, Some(3072)) => Some(Algorithm::Ps384),
        (_, Some(4096)) => Some(Algorithm::Ps512),
        _ => None,
    };
    if expected != Some(algorithm) {
        return Err(PkiError::Signature(format!(
            "{} does not match the signing certificate's {} key",
            algorithm.jws_name(),
            key.describe()
        )));
    }
    let (hash, input, signature) = (hash_of(algorithm), &envelope.signing_input, &envelope.signature);
    match algorithm.ecdsa_scalar_len() {
        Some(len) => key.verify_with_hash(hash, input, &fixed_to_der(signature, len)?),
        None => key.verify_pss(hash, input, signature),
    }
}

fn hash_of(algorithm: Algorithm) -> HashAlgorithm {
    match algorithm {
        Algorithm::Ps256 | Algorithm::Es256 => HashAlgorithm::Sha256,
        Algorithm::Ps384 | Algorithm::Es384 => HashAlgorithm::Sha384,
        Algorithm::Ps512 | Algorithm::Es512 => HashAlgorithm::Sha512,
    }
}

/// A fixed-size `r‖s` ECDSA signature as DER `ECDSA-Sig-Value`.
fn fixed_to_der(signature: &[u8], scalar_len: usize) -> Result<Vec<u8>, PkiError> {
    if signature.len() != 2 * scalar_len {
        return Err(PkiError::Signature(format!("an ECDSA signature of {} bytes", signature.len())));
    }
    let (r, s) = signature.split_at(scalar_len);
    let encode = || -> Result<Vec<u8>, der::Error> {
        let (r, s) = (UintRef::new(r)?, UintRef::new(s)?);
        let body = [r.to_der()?, s.to_der()?].concat();
        der::asn1::AnyRef::new(Tag::Sequence, &body)?.to_der()
    };
    encode().map_err(|_| PkiError::Signature("the ECDSA signature does not encode".into()))
}

/// The countersignature's time, when the envelope has one and a `tsa` store is given (without a `tsa`
/// store the token is not relied on, and the chain is validated at the present).
fn verified_timestamp(envelope: &NotaryEnvelope, stores: &[TrustStore]) -> Result<Option<VerifiedTimestamp>, PkiError> {
    let Some(token) = &envelope.timestamp_signature else {
        return Ok(None);
    };
    let authorities = authorities(stores, TrustStoreKind::Tsa);
    if authorities.is_empty() {
        return Ok(None);
    }
    timestamp::verify_timestamp(token, &envelope.signature, &authorities).map(Some)
}

/// Each certificate of each store of `kind` as an anchor, named `kind:store`, valid whenever its
/// certificate is.
fn authorities(stores: &[TrustStore], kind: TrustStoreKind) -> Vec<CertificateAuthority> {
    let always = Validity { start: OffsetDateTime::UNIX_EPOCH, end: None };
    stores
        .iter()
        .filter(|store| store.kind == kind)
        .flat_map(|store| {
            store.certificates.iter().map(move |der| CertificateAuthority {
                name: format!("{}:{}", kind.as_str(), store.name),
                certificates: vec![der.clone()],
                validity: always,
            })
        })
        .collect()
}

/// A certificate of the validated path and the DER of its issuer.
struct PathLink {
    cert: Certificate,
    issuer_der: Vec<u8>,
}

/// Chains the leaf to a store of `kind` at `at`: through `pki::certificate::verify_path` (a root the
/// envelope carries at its end is dropped: anchors come from the stores), or, for a lone self-signed leaf,
/// by finding that very certificate in a store. Returns the store's name and the path's links below it.
fn verify_chain(
    leaf_der: &[u8],
    rest: &[Vec<u8>],
    stores: &[TrustStore],
    kind: TrustStoreKind,
    at: OffsetDateTime,
) -> Result<(String, Vec<PathLink>), PkiError> {
    let anchors = authorities(stores, kind);
    if anchors.is_empty() {
        return Err(fail(&format!("no {} trust store is configured", kind.as_str())));
    }
    let leaf = certificate::parse(leaf_der, "leaf")?;
    if rest.is_empty() && certificate::is_self_issued(&leaf) {
        let Some(anchor) = anchors.iter().find(|a| a.certificates.iter().any(|c| c.as_slice() == leaf_der)) else {
            return Err(fail("the self-signed signing certificate is in no trust store"));
        };
        certificate::verify_self_signed_leaf(leaf_der, at, KeyPurpose::NotarySigning)?;
        return Ok((anchor.name.clone(), Vec::new()));
    }
    let mut intermediates = rest.to_vec();
    while intermediates
        .last()
        .is_some_and(|der| certificate::parse(der, "root").is_ok_and(|c| certificate::is_self_issued(&c)))
    {
        intermediates.pop();
    }
    let chained = certificate::verify_path(leaf_der, &intermediates, &anchors, at, KeyPurpose::NotarySigning)?;
    let mut path = vec![PathLink { cert: leaf, issuer_der: chained.issuer_der }];
    let pool: Vec<Vec<u8>> =
        intermediates.iter().chain(anchors.iter().flat_map(|a| &a.certificates)).cloned().collect();
    for der in &intermediates {
        let cert = certificate::parse(der, "intermediate")?;
        if let Some(issuer_der) = find_issuer(&cert, &pool) {
            path.push(PathLink { cert, issuer_der });
        }
    }
    Ok((chained.authority, path))
}

/// The certificate in `pool` that names and signed `cert`.
fn find_issuer(cert: &Certificate, pool: &[Vec<u8>]) -> Option<Vec<u8>> {
    pool.iter()
        .find(|der| {
            certificate::parse(der, "issuer").is_ok_and(|issuer| {
                issuer.tbs_certificate().subject() == cert.tbs_certificate().issuer()
                    && public_key(&issuer).is_ok_and(|key| certificate::check_signature(cert, &key).is_ok())
            })
        })
        .cloned()
}

fn public_key(cert: &Certificate) -> Result<VerifyingKey, PkiError> {
    let spki = cert
        .tbs_certificate()
        .subject_public_key_info()
        .to_der()
        .map_err(|_| PkiError::Certificate("public key does not encode".into()))?;
    VerifyingKey::from_spki_der(&spki)
}

/// For each certificate of the path that names a CRL distribution point: a cached CRL from its issuer,
/// signed by it and current at `now`, must not list its serial.
fn check_revocation(path: &[PathLink], crls: &[Vec<u8>], now: OffsetDateTime) -> Result<Revocation, PkiError> {
    let mut unknown = Vec::new();
    for link in path {
        let names_point = link
            .cert
            .tbs_certificate()
            .get_extension::<CrlDistributionPoints>()
            .map_err(|_| fail("malformed CRL distribution points"))?
            .is_some();
        if !names_point {
            continue;
        }
        let subject = subject_dn(link.cert.tbs_certificate().subject());
        match crl_status(link, crls, now)? {
            Some(()) => {}
            None => unknown.push(format!("{}: no current CRL from its issuer", short(&subject))),
        }
    }
    Ok(if unknown.is_empty() { Revocation::Good } else { Revocation::Unknown(unknown) })
}

/// `Some(())` if a usable CRL says the certificate is not revoked, `None` if no usable CRL is cached, an
/// error if it is revoked.
fn crl_status(link: &PathLink, crls: &[Vec<u8>], now: OffsetDateTime) -> Result<Option<()>, PkiError> {
    let issuer = certificate::parse(&link.issuer_der, "issuer")?;
    if !may_sign_crls(&issuer) {
        return Ok(None);
    }
    let issuer_key = public_key(&issuer)?;
    let tbs = link.cert.tbs_certificate();
    for der in crls.iter().filter(|der| der.len() <= MAX_CRL_BYTES) {
        let Ok(crl) = CertificateList::from_der(der) else {
            continue;
        };
        let list = &crl.tbs_cert_list;
        if &list.issuer != tbs.issuer() || !crl_signed_by(&crl, &issuer_key) || !complete_crl(&crl) {
            continue;
        }
        let this_update = unix(list.this_update)?;
        let next_update = list.next_update.map(unix).transpose()?;
        if now < this_update || next_update.is_some_and(|next| now > next) {
            continue;
        }
        let revoked =
            list.revoked_certificates.iter().flatten().any(|entry| &entry.serial_number == tbs.serial_number());
        if revoked {
            return Err(fail(&format!(
                "the certificate {} is revoked by its issuer's CRL",
                short(&subject_dn(tbs.subject()))
            )));
        }
        return Ok(Some(()));
    }
    Ok(None)
}

/// The `http` and `https` URIs of the CRL distribution points the envelope's certificates name (full names
/// only; at most 4 per certificate and 8 in all, no repeats), leaf first. Other schemes (`ldap:`) are not
/// fetched.
pub fn crl_distribution_urls(envelope: &NotaryEnvelope) -> Vec<String> {
    let mut urls: Vec<String> = Vec::new();
    for der in &envelope.certificate_chain {
        let Ok(cert) = Certificate::from_der(der) else { continue };
        let Ok(Some((_, points))) = cert.tbs_certificate().get_extension::<CrlDistributionPoints>() else {
            continue;
        };
        let names = points.0.into_iter().filter_map(|point| match point.distribution_point {
            Some(DistributionPointName::FullName(names)) => Some(names),
            _ => None,
        });
        let uris = names.flatten().filter_map(|name| match name {
            GeneralName::UniformResourceIdentifier(uri) => Some(uri.to_string()),
            _ => None,
        });
        let http = uris.filter(|uri| uri.starts_with("http://") || uri.starts_with("https://"));
        for uri in http.take(MAX_CRL_URLS_PER_CERTIFICATE) {
            if !urls.contains(&uri) && urls.len() < MAX_CRL_URLS {
                urls.push(uri);
            }
        }
    }
    urls
}

/// A CRL's nextUpdate, when it parses and has one: until then a fetched copy may be kept.
pub fn crl_next_update(der: &[u8]) -> Option<OffsetDateTime> {
    let crl: CertificateList = CertificateList::from_der(der).ok()?;
    crl.tbs_cert_list.next_update.and_then(|time| unix(time).ok())
}

/// Whether `issuer` may sign CRLs: a key usage extension, when present, must allow `cRLSign` (RFC 5280 §4.2.1.3).
fn may_sign_crls(issuer: &Certificate) -> bool {
    match issuer.tbs_certificate().get_extension::<KeyUsage>() {
        Ok(Some((_, usage))) => usage.crl_sign(),
        Ok(None) => true,
        Err(_) => false,
    }
}

/// A full CRL whose every critical extension is understood (RFC 5280 §5.2: a CRL with an unrecognized
/// critical extension, such as a delta CRL indicator or a critical issuing distribution point, or an entry
/// with a critical extension, must not be used to say a certificate is not revoked).
fn complete_crl(crl: &CertificateList) -> bool {
    let list = &crl.tbs_cert_list;
    let understood = |ext: &x509_cert::ext::Extension| !ext.critical || UNDERSTOOD_CRL_CRITICAL.contains(&ext.extn_id);
    list.crl_extensions.iter().flatten().all(understood)
        && list
            .revoked_certificates
            .iter()
            .flatten()
            .flat_map(|entry| entry.crl_entry_extensions.iter().flatten())
            .all(understood)
}

fn crl_signed_by(crl: &CertificateList, key: &VerifyingKey) -> bool {
    let (Ok(tbs), Some(signature)) = (crl.tbs_cert_list.to_der(), crl.signature.as_bytes()) else {
        return false;
    };
    certificate::verify_by_algorithm(key, &crl.signature_algorithm.oid, &tbs, signature).is_ok()
}

fn unix(time: x509_cert::time::Time) -> Result<OffsetDateTime, PkiError> {
    i64::try_from(time.to_unix_duration().as_secs())
        .ok()
        .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
        .ok_or_else(|| fail("a CRL time is out of range"))
}

/// A subject DN in the form notation's `x509.subject` identities use, attributes in the certificate's
/// order: `C=US, ST=WA, L=Seattle, O=Notary, CN=wabbit-networks.io` (RFC 4514 value escaping; an attribute
/// type without a short name is written as its OID with the value as `#` and the DER in hex).
pub fn subject_dn(name: &Name) -> String {
    let mut parts = Vec::new();
    for rdn in name.iter_rdn() {
        let attributes: Vec<String> = rdn
            .iter()
            .map(|atv| {
                let oid = atv.oid.to_string();
                match (short_name(&atv.oid), directory_string(&atv.value)) {
                    (Some(short), Some(text)) => format!("{short}={}", escape_dn_value(&text)),
                    _ => format!("{oid}=#{}", hex(&atv.value.to_der().unwrap_or_default())),
                }
            })
            .collect();
        parts.push(attributes.join("+"));
    }
    parts.join(", ")
}

fn short_name(oid: &Oid) -> Option<&'static str> {
    let text = oid.to_string();
    DN_ATTRIBUTES.iter().find(|(o, _)| *o == text).map(|(_, name)| *name)
}

/// The text of a DirectoryString-like value (UTF8String, PrintableString, IA5String, TeletexString).
fn directory_string(value: &der::Any) -> Option<String> {
    match value.tag() {
        Tag::Utf8String | Tag::PrintableString | Tag::Ia5String | Tag::TeletexString => {
            std::str::from_utf8(value.value()).ok().map(str::to_owned)
        }
        _ => None,
    }
}

fn escape_dn_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && matches!(c, '#' | ' '))
            || (i == last && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Parses a DN as notation reads `x509.subject` values (RFC 4514: `,` or `+` between attributes, `\`
/// escapes): attribute type to value, each type at most once, C, ST and O present.
pub fn parse_dn(text: &str) -> Result<BTreeMap<String, String>, PkiError> {
    let invalid = |why: &str| PkiError::Certificate(format!("distinguished name {:?}: {why}", short(text)));
    let mut attributes = BTreeMap::new();
    for part in split_unescaped(text) {
        let Some((kind, value)) = part.split_once('=') else {
            return Err(invalid("an attribute has no '='"));
        };
        let (kind, value) = (kind.trim(), unescape_dn_value(value.trim()).map_err(|_| invalid("a bad escape"))?);
        if kind.is_empty() {
            return Err(invalid("an attribute has no type"));
        }
        if attributes.insert(kind.to_owned(), value).is_some() {
            return Err(invalid(&format!("{kind} appears twice")));
        }
    }
    if let Some(missing) = MANDATORY_DN_ATTRIBUTES.iter().find(|a| !attributes.contains_key(**a)) {
        return Err(invalid(&format!("it must name C, ST and O; {missing} is missing")));
    }
    Ok(attributes)
}

/// Whether every attribute of `trusted` is in `subject` with the same value (notation's rule: the
/// trusted identity may name fewer attributes than the certificate; order does not matter).
pub fn dn_matches(trusted: &BTreeMap<String, String>, subject: &BTreeMap<String, String>) -> bool {
    trusted.iter().all(|(kind, value)| subject.get(kind) == Some(value))
}

/// notation's `trustedIdentities` rule for a leaf whose subject is `subject` (as [`VerifiedNotary::subject`]):
/// `*` allows any; otherwise some `x509.subject: <DN>` entry must be a subset of the subject ([`dn_matches`]).
/// Entries of another kind are not x509 identities and match nothing; a malformed DN is an error.
pub fn trusted_identity_matches(trusted_identities: &[&str], subject: &str) -> Result<bool, PkiError> {
    if trusted_identities.contains(&"*") {
        return Ok(true);
    }
    let subject = parse_dn(subject)?;
    for identity in trusted_identities {
        let Some(dn) = identity.strip_prefix("x509.subject:") else {
            continue;
        };
        if dn_matches(&parse_dn(dn.trim())?, &subject) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Splits at `,` and `+` that are not escaped by `\` (values stay escaped).
fn split_unescaped(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut escaped) = (0, false);
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            ',' | '+' => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

/// Removes RFC 4514 escapes: `\` before a special character, or `\` and two hex digits (one UTF-8 byte).
fn unescape_dn_value(value: &str) -> Result<String, ()> {
    let mut bytes = Vec::with_capacity(value.len());
    let raw = value.as_bytes();
    let mut i = 0;
    while i < raw.len() {
        if raw[i] != b'\\' {
            bytes.push(raw[i]);
            i += 1;
            continue;
        }
        let hex_pair = raw.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match hex_pair.and_then(|h| u8::from_str_radix(h, 16).ok()) {
            Some(byte) => {
                bytes.push(byte);
                i += 3;
            }
            None => {
                let next = raw.get(i + 1).ok_or(())?;
                bytes.push(*next);
                i += 2;
            }
        }
    }
    String::from_utf8(bytes).map_err(|_| ())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn short(text: &str) -> String {
    text.chars().take(128).collect()
}

fn fail(message: &str) -> PkiError {
    PkiError::Notary(message.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::notary::{COSE_ENVELOPE, JWS_ENVELOPE};
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!("{}/tests/fixtures/third-party/notation-1.3/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    }

    fn pem(name: &str) -> Vec<u8> {
        let text = String::from_utf8(fixture(name)).unwrap();
        let (_, der) = p256::pkcs8::Document::from_pem(&text).unwrap();
        der.as_bytes().to_vec()
    }

    /// The fixture leaf with its key usage extension passed through `change`.
    fn leaf_with_key_usage(change: impl Fn(&mut x509_cert::ext::Extension)) -> Certificate {
        let leaf = certificate::parse(&pem("chain-leaf.pem"), "leaf").unwrap();
        let tbs = crate::pki::sct::rewrite_extensions(&leaf, |mut ext| {
            if ext.extn_id.to_string() == "2.5.29.15" {
                change(&mut ext);
            }
            Some(ext)
        })
        .unwrap();
        let body = [tbs, leaf.signature_algorithm().to_der().unwrap(), leaf.signature().to_der().unwrap()].concat();
        certificate::parse(&crate::pki::sct::tlv(0x30, &body), "leaf").unwrap()
    }

    #[test]
    fn the_leaf_key_usage_must_be_critical_and_digital_signature_without_encipherment_or_signing_certificates() {
        check_leaf_key_usage(&leaf_with_key_usage(|_| {})).unwrap();
        let err = check_leaf_key_usage(&leaf_with_key_usage(|ext| ext.critical = false)).unwrap_err();
        assert!(err.to_string().contains("not critical"), "{err}");
        // digitalSignature with keyEncipherment; with nonRepudiation (allowed); keyAgreement alone
        for (bits, allowed) in [([0x05, 0xa0], false), ([0x06, 0xc0], true), ([0x04, 0x08], false)] {
            let changed = leaf_with_key_usage(|ext| {
                ext.extn_value = der::asn1::OctetString::new([&[0x03, 0x02][..], &bits].concat()).unwrap();
            });
            assert_eq!(check_leaf_key_usage(&changed).is_ok(), allowed, "{bits:?}");
        }
    }

    fn envelope(name: &str) -> NotaryEnvelope {
        let media = if name.ends_with(".cose") { COSE_ENVELOPE } else { JWS_ENVELOPE };
        NotaryEnvelope::parse(media, &fixture(name)).unwrap()
    }

    fn store(name: &str, kind: TrustStoreKind, pem_file: &str) -> TrustStore {
        TrustStore { name: name.into(), kind, certificates: vec![pem(pem_file)] }
    }

    fn test_key_store() -> Vec<TrustStore> {
        vec![store("test", TrustStoreKind::Ca, "generate-test.crt")]
    }

    fn root_store() -> Vec<TrustStore> {
        vec![store("fixtures", TrustStoreKind::Ca, "chain-root.pem")]
    }

    /// A minute after the envelope was signed (the generate-test certificate lives one day).
    fn soon_after(envelope: &NotaryEnvelope) -> OffsetDateTime {
        envelope.scheme_signing_time().unwrap() + time::Duration::minutes(1)
    }

    fn verify(envelope: &NotaryEnvelope, stores: &[TrustStore], crls: &[Vec<u8>]) -> Result<VerifiedNotary, PkiError> {
        verify_notary(envelope, NotaryTrust { stores, crls }, soon_after(envelope))
    }

    #[test]
    fn notation_signatures_with_a_generate_test_key_verify_jws_and_cose() {
        for name in ["generate-test.jws", "generate-test-expiry.cose"] {
            let envelope = envelope(name);
            let verified = verify(&envelope, &test_key_store(), &[]).unwrap();
            assert_eq!(verified.subject, "C=US, ST=WA, L=Seattle, O=Notary, CN=test.notarium.example");
            assert_eq!(verified.trust_store, "ca:test");
            assert_eq!(verified.thumbprints, chain_thumbprints(&[pem("generate-test.crt")]));
            assert_eq!(verified.target, envelope.target_artifact);
            assert_eq!(verified.chain_validated_at, soon_after(&envelope), "no timestamp: validated at now");
            assert_eq!(verified.revocation, Revocation::Good);
            assert_eq!(verified.signing_agent.as_deref(), Some("notation-go/1.3.2"));
        }
    }

    #[test]
    fn notation_signatures_with_an_openssl_chain_verify_and_check_the_crl() {
        let crl = fixture("intermediate.crl");
        for name in ["chain.jws", "chain-cose.cose"] {
            let envelope = envelope(name);
            let verified = verify(&envelope, &root_store(), std::slice::from_ref(&crl)).unwrap();
            assert_eq!(verified.subject, "C=US, ST=WA, L=Seattle, O=Notarium Fixtures, CN=leaf.notarium.example");
            assert_eq!(verified.trust_store, "ca:fixtures");
            assert_eq!(verified.thumbprints.len(), 3);
            assert_eq!(verified.revocation, Revocation::Good, "{name}");
            // Without the CRL the status is unknown, and the caller's policy decides.
            let unknown = verify(&envelope, &root_store(), &[]).unwrap();
            assert!(matches!(unknown.revocation, Revocation::Unknown(ref lines) if lines.len() == 1));
        }
    }

    #[test]
    fn a_certificate_revoked_by_the_cached_crl_is_refused() {
        let envelope = envelope("chain-revoked.jws");
        let err = verify(&envelope, &root_store(), &[fixture("intermediate.crl")]).unwrap_err();
        assert!(err.to_string().contains("revoked"), "{err}");
        // A CRL that is not current (checked after its nextUpdate) is not used: status unknown, not good.
        let late = envelope.scheme_signing_time().unwrap() + time::Duration::days(31);
        let trust = NotaryTrust { stores: &root_store(), crls: &[fixture("intermediate.crl")] };
        let stale = verify_notary(&envelope, trust, late).unwrap();
        assert!(matches!(stale.revocation, Revocation::Unknown(_)));
        // A delta CRL (critical delta CRL indicator) listing nothing is not a full CRL: status unknown.
        let delta = verify(&envelope, &root_store(), &[fixture("intermediate-delta.crl")]).unwrap();
        assert!(matches!(delta.revocation, Revocation::Unknown(_)), "{:?}", delta.revocation);
        // Only an issuer whose key usage allows cRLSign is believed (the intermediate does; a leaf does not).
        assert!(may_sign_crls(&certificate::parse(&pem("chain-intermediate.pem"), "i").unwrap()));
        assert!(!may_sign_crls(&certificate::parse(&pem("chain-leaf.pem"), "l").unwrap()));
        // A CRL signed by another key does not count either.
        let mut forged = fixture("intermediate.crl");
        let last = forged.len() - 3;
        forged[last] ^= 1;
        let forged = verify(&envelope, &root_store(), &[forged]).unwrap();
        assert!(matches!(forged.revocation, Revocation::Unknown(_)));
    }

    #[test]
    fn a_timestamp_from_a_tsa_store_moves_chain_validation_to_its_time() {
        let envelope = envelope("generate-test-timestamped.jws");
        assert!(envelope.timestamp_signature.is_some());
        // Two days on, the one-day generate-test certificate has expired: without a tsa store it is refused...
        let later = soon_after(&envelope) + time::Duration::days(2);
        let without = verify_notary(&envelope, NotaryTrust { stores: &test_key_store(), crls: &[] }, later);
        assert!(without.unwrap_err().to_string().contains("not valid at"));
        // ...with one, the chain is validated at the TSA's time, inside its validity.
        let mut stores = test_key_store();
        stores.push(store("tsa", TrustStoreKind::Tsa, "tsa-root.pem"));
        let verified = verify_notary(&envelope, NotaryTrust { stores: &stores, crls: &[] }, later).unwrap();
        let stamped = verified.timestamp.as_ref().unwrap().time;
        assert_eq!(verified.chain_validated_at, stamped);
        assert!((stamped - envelope.headers.signing_time.unwrap()).abs() < time::Duration::minutes(5));
        assert_eq!(verified.timestamp.unwrap().authority, "tsa:tsa");
        // A token from a TSA outside the tsa stores is refused, not ignored.
        let wrong_tsa = [test_key_store(), vec![store("tsa", TrustStoreKind::Tsa, "chain-root.pem")]].concat();
        let err = verify_notary(&envelope, NotaryTrust { stores: &wrong_tsa, crls: &[] }, later).unwrap_err();
        assert!(matches!(err, PkiError::Timestamp(_)), "{err}");
        // A token over another signature is refused.
        let mut swapped = envelope;
        if let Some(token) = swapped.timestamp_signature.as_mut() {
            let last = token.len() - 1;
            token[last] ^= 1;
        }
        assert!(verify_notary(&swapped, NotaryTrust { stores: &stores, crls: &[] }, later).is_err());
    }

    #[test]
    fn a_wrong_trust_store_is_refused() {
        let err = verify(&envelope("chain.jws"), &test_key_store(), &[]).unwrap_err();
        assert!(err.to_string().contains("no trusted authority issued it"), "{err}");
        let err = verify(&envelope("generate-test.jws"), &root_store(), &[]).unwrap_err();
        assert!(err.to_string().contains("in no trust store"), "{err}");
        let authority_only = vec![store("sa", TrustStoreKind::SigningAuthority, "chain-root.pem")];
        let err = verify(&envelope("chain.jws"), &authority_only, &[]).unwrap_err();
        assert!(err.to_string().contains("no ca trust store"), "{err}");
    }

    #[test]
    fn an_expired_certificate_or_signature_is_refused() {
        let envelope = envelope("generate-test.jws");
        let later = soon_after(&envelope) + time::Duration::days(2);
        let err = verify_notary(&envelope, NotaryTrust { stores: &test_key_store(), crls: &[] }, later).unwrap_err();
        assert!(err.to_string().contains("not valid at"), "{err}");
        let chain = self::envelope("chain.jws");
        let after_expiry = chain.headers.expiry.unwrap() + time::Duration::seconds(1);
        let err = verify_notary(&chain, NotaryTrust { stores: &root_store(), crls: &[] }, after_expiry).unwrap_err();
        assert!(err.to_string().contains("expired"), "{err}");
    }

    #[test]
    fn a_tampered_payload_is_refused_in_both_formats() {
        let mut doc: serde_json::Value = serde_json::from_slice(&fixture("chain.jws")).unwrap();
        let payload = URL_SAFE_NO_PAD.decode(doc["payload"].as_str().unwrap()).unwrap();
        let other = String::from_utf8(payload).unwrap().replace("\"size\":587", "\"size\":588");
        doc["payload"] = URL_SAFE_NO_PAD.encode(other).into();
        let tampered = NotaryEnvelope::parse(JWS_ENVELOPE, doc.to_string().as_bytes()).unwrap();
        assert_eq!(tampered.target_artifact.size, 588);
        let err = verify(&tampered, &root_store(), &[]).unwrap_err();
        assert!(matches!(err, PkiError::Signature(_)), "{err}");

        let mut cose = envelope("chain-cose.cose");
        let last = cose.signing_input.len() - 2;
        cose.signing_input[last] ^= 1;
        assert!(matches!(verify(&cose, &root_store(), &[]), Err(PkiError::Signature(_))));
    }

    #[test]
    fn an_algorithm_the_key_does_not_call_for_is_refused() {
        let mut rsa = envelope("generate-test.jws");
        rsa.algorithm = Algorithm::Ps384;
        let err = verify(&rsa, &test_key_store(), &[]).unwrap_err();
        assert!(err.to_string().contains("PS384 does not match the signing certificate's RSA key"), "{err}");
        let mut ec = envelope("chain.jws");
        ec.algorithm = Algorithm::Es384;
        let err = verify(&ec, &root_store(), &[]).unwrap_err();
        assert!(err.to_string().contains("ES384 does not match"), "{err}");
    }

    #[test]
    fn crit_must_list_exactly_what_must_be_critical() {
        let base = envelope("chain.jws");
        let with = |critical: &[&str]| {
            let mut envelope = base.clone();
            envelope.headers.critical = critical.iter().map(|s| (*s).to_owned()).collect();
            check_headers(&envelope)
        };
        with(&[SIGNING_SCHEME, EXPIRY]).unwrap();
        assert!(with(&[]).unwrap_err().to_string().contains("no crit"));
        assert!(with(&[SIGNING_SCHEME]).unwrap_err().to_string().contains("expiry is not marked critical"));
        let err = with(&[SIGNING_SCHEME, EXPIRY, "io.example.unknown"]).unwrap_err();
        assert!(err.to_string().contains("not understood"), "{err}");
        assert!(with(&[SIGNING_SCHEME, EXPIRY, EXPIRY]).unwrap_err().to_string().contains("twice"));
        let err = with(&[SIGNING_SCHEME, EXPIRY, VERIFICATION_PLUGIN]).unwrap_err();
        assert!(err.to_string().contains("verification plugin"), "{err}");
        // The real envelope with crit rewritten in its protected header: refused before its signature.
        let mut doc: serde_json::Value = serde_json::from_slice(&fixture("chain.jws")).unwrap();
        let protected = URL_SAFE_NO_PAD.decode(doc["protected"].as_str().unwrap()).unwrap();
        let mut header: serde_json::Value = serde_json::from_slice(&protected).unwrap();
        header["crit"] = serde_json::json!([SIGNING_SCHEME]);
        doc["protected"] = URL_SAFE_NO_PAD.encode(header.to_string()).into();
        let rewritten = NotaryEnvelope::parse(JWS_ENVELOPE, doc.to_string().as_bytes()).unwrap();
        let err = verify(&rewritten, &root_store(), &[]).unwrap_err();
        assert!(err.to_string().contains("not marked critical"), "{err}");
    }

    #[test]
    fn scheme_and_content_type_rules() {
        let base = envelope("chain.jws");
        let mut wrong_type = base.clone();
        wrong_type.headers.content_type = "application/json".into();
        assert!(check_headers(&wrong_type).unwrap_err().to_string().contains("content type"));
        let mut both = base.clone();
        both.headers.authentic_signing_time = both.headers.signing_time;
        assert!(check_headers(&both).is_err());
        let mut authority = base;
        authority.headers.signing_scheme = SigningScheme::X509SigningAuthority;
        assert!(check_headers(&authority).unwrap_err().to_string().contains("signingTime is not allowed"));
    }

    #[test]
    fn subject_dns_parse_and_match_as_notation_compares_them() {
        let leaf = certificate::parse(&pem("chain-leaf.pem"), "leaf").unwrap();
        let subject = subject_dn(leaf.tbs_certificate().subject());
        let subject = parse_dn(&subject).unwrap();
        let trusted = parse_dn("O=Notarium Fixtures, C=US,ST=WA").unwrap();
        assert!(dn_matches(&trusted, &subject), "a subset, in any order");
        assert!(!dn_matches(&parse_dn("C=US, ST=WA, O=Notary").unwrap(), &subject));
        let full = parse_dn("C=US, ST=WA, L=Seattle, O=Notarium Fixtures, CN=leaf.notarium.example").unwrap();
        assert_eq!(full, subject);
        assert!(parse_dn("C=US, O=x").unwrap_err().to_string().contains("ST is missing"));
        assert!(parse_dn("C=US, ST=WA, O=a, O=b").unwrap_err().to_string().contains("twice"));
        assert!(parse_dn("C=US, ST=WA, O").is_err());
        let escaped = parse_dn(r"C=US, ST=WA, O=Acme\, Inc., CN=a\2Bb").unwrap();
        assert_eq!((escaped["O"].as_str(), escaped["CN"].as_str()), ("Acme, Inc.", "a+b"));
        assert_eq!(escape_dn_value("Acme, Inc. "), r"Acme\, Inc.\ ");
        let leaf = "C=US, ST=WA, L=Seattle, O=Notarium Fixtures, CN=leaf.notarium.example";
        assert!(trusted_identity_matches(&["*"], leaf).unwrap());
        assert!(trusted_identity_matches(&["x509.subject: C=US, ST=WA, O=Notarium Fixtures"], leaf).unwrap());
        let others = ["x509.subject: C=US, ST=WA, O=Other", "other.kind: C=US, ST=WA, O=Notarium Fixtures"];
        assert!(!trusted_identity_matches(&others, leaf).unwrap());
        assert!(trusted_identity_matches(&["x509.subject: C=US"], leaf).is_err());
    }
}
