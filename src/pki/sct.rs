//! Signed certificate timestamps embedded in a certificate (RFC 6962 §3.3), checked against the CT log keys
//! of a trusted root.
//!
//! Owns: reading the SCT list extension (1.3.6.1.4.1.11129.2.4.2, a TLS-encoded list inside an OCTET STRING),
//! rebuilding the precertificate entry each SCT signed (the leaf's TBS without that extension, with the
//! SHA-256 of the issuer's key) and checking each SCT with the key of the CT log it names, valid at the SCT's
//! time. Must not touch: the chain itself (certificate.rs).

use der::asn1::{AnyRef, ObjectIdentifier as Oid, OctetStringRef};
use der::{Decode as _, Encode as _, Tag, Tagged as _};
use time::OffsetDateTime;
use x509_cert::Certificate;
use x509_cert::ext::Extension;

use super::PkiError;
use super::certificate::der_elements;
use super::key::{HashAlgorithm, KeyFamily};
use super::trusted_root::TransparencyLog;

const OID_SCT_LIST: Oid = Oid::new_unwrap("1.3.6.1.4.1.11129.2.4.2");
/// At most this many SCTs are read from one certificate.
const MAX_SCTS: usize = 16;

/// One SCT as RFC 6962 §3.2 lays it out (version 1 only).
#[derive(Debug)]
struct Sct<'a> {
    log_id: &'a [u8],
    timestamp_ms: u64,
    extensions: &'a [u8],
    hash: u8,
    signature_algorithm: u8,
    signature: &'a [u8],
}

/// Verifies the SCTs embedded in `leaf` (DER), issued by `issuer` (DER); at least one must verify against
/// `logs`. Returns how many did.
pub fn verify_embedded_scts(leaf: &[u8], issuer: &[u8], logs: &[TransparencyLog]) -> Result<usize, PkiError> {
    let cert = Certificate::from_der(leaf).map_err(|_| fail("the leaf is not a DER certificate"))?;
    let issuer = Certificate::from_der(issuer).map_err(|_| fail("the issuer is not a DER certificate"))?;
    let issuer_spki =
        issuer.tbs_certificate().subject_public_key_info().to_der().map_err(|_| fail("issuer key does not encode"))?;
    let issuer_key_hash = HashAlgorithm::Sha256.digest(&issuer_spki);
    let extensions = cert.tbs_certificate().extensions().map(Vec::as_slice).unwrap_or_default();
    let Some(list) = extensions.iter().find(|ext| ext.extn_id == OID_SCT_LIST) else {
        return Err(fail("the certificate embeds no SCT"));
    };
    let list = <&OctetStringRef>::from_der(list.extn_value.as_bytes()).map_err(|_| fail("malformed SCT list"))?;
    let scts = parse_list(list.as_bytes())?;
    let tbs = precert_tbs(&cert)?;
    let mut verified = 0;
    let mut reasons = Vec::new();
    for sct in &scts {
        match verify_one(sct, &issuer_key_hash, &tbs, logs) {
            Ok(()) => verified += 1,
            Err(reason) => reasons.push(reason),
        }
    }
    if verified == 0 {
        return Err(fail(&format!("no embedded SCT verifies ({})", reasons.join("; "))));
    }
    Ok(verified)
}

fn verify_one(sct: &Sct<'_>, issuer_key_hash: &[u8], tbs: &[u8], logs: &[TransparencyLog]) -> Result<(), String> {
    let Some(log) = logs.iter().find(|log| log.log_id == sct.log_id) else {
        return Err("an SCT from a CT log the trusted root does not list".into());
    };
    let at = i128::from(sct.timestamp_ms) * 1_000_000;
    let at = OffsetDateTime::from_unix_timestamp_nanos(at).map_err(|_| "SCT time out of range".to_owned())?;
    if !log.validity.contains(at) {
        return Err(format!("SCT from {} outside the log's validity", log.base_url));
    }
    let hash = match sct.hash {
        4 => HashAlgorithm::Sha256,
        5 => HashAlgorithm::Sha384,
        6 => HashAlgorithm::Sha512,
        other => return Err(format!("SCT hash algorithm {other} is not supported")),
    };
    let family = match sct.signature_algorithm {
        1 => KeyFamily::Rsa,
        3 => KeyFamily::Ecdsa,
        other => return Err(format!("SCT signature algorithm {other} is not supported")),
    };
    if family != log.key.family() {
        return Err(format!("SCT signature algorithm does not match the key of {}", log.base_url));
    }
    let signed = signed_data(sct, issuer_key_hash, tbs)?;
    log.key
        .verify_with_hash(hash, &signed, sct.signature)
        .map_err(|_| format!("SCT signature does not verify with the key of {}", log.base_url))
}

/// The `digitally-signed` struct of RFC 6962 §3.2 for a precertificate entry.
fn signed_data(sct: &Sct<'_>, issuer_key_hash: &[u8], tbs: &[u8]) -> Result<Vec<u8>, String> {
    let tbs_len = u32::try_from(tbs.len()).ok().filter(|len| *len < 1 << 24).ok_or("TBS too long")?;
    let ext_len = u16::try_from(sct.extensions.len()).map_err(|_| "SCT extensions too long")?;
    let mut out = Vec::with_capacity(tbs.len() + 64);
    out.push(0); // sct_version v1
    out.push(0); // signature_type certificate_timestamp
    out.extend_from_slice(&sct.timestamp_ms.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes()); // entry_type precert_entry
    out.extend_from_slice(issuer_key_hash);
    out.extend_from_slice(&tbs_len.to_be_bytes()[1..]);
    out.extend_from_slice(tbs);
    out.extend_from_slice(&ext_len.to_be_bytes());
    out.extend_from_slice(sct.extensions);
    Ok(out)
}

/// The leaf's TBSCertificate with the SCT list extension removed, re-encoded in DER.
fn precert_tbs(cert: &Certificate) -> Result<Vec<u8>, PkiError> {
    rewrite_extensions(cert, |ext| (ext.extn_id != OID_SCT_LIST).then_some(ext))
}

/// The certificate's TBSCertificate with each extension passed through `change` (`None` drops it), every
/// other field kept byte for byte.
pub(super) fn rewrite_extensions(
    cert: &Certificate,
    mut change: impl FnMut(Extension) -> Option<Extension>,
) -> Result<Vec<u8>, PkiError> {
    let tbs = cert.tbs_certificate().to_der().map_err(|_| fail("TBS does not encode"))?;
    let outer = AnyRef::from_der(&tbs).map_err(|_| fail("malformed TBS"))?;
    let mut fields = Vec::new();
    for field in elements(outer.value())? {
        if matches!(field.tag(), Tag::ContextSpecific { constructed: true, number } if number.value() == 3) {
            let wrapped = AnyRef::from_der(field.value()).map_err(|_| fail("malformed extensions"))?;
            let mut kept = Vec::new();
            for ext in elements(wrapped.value())? {
                let der = ext.to_der().map_err(|_| fail("extension does not encode"))?;
                let parsed = Extension::from_der(&der).map_err(|_| fail("malformed extension"))?;
                if let Some(changed) = change(parsed) {
                    kept.extend_from_slice(&changed.to_der().map_err(|_| fail("extension does not encode"))?);
                }
            }
            fields.extend_from_slice(&tlv(0xa3, &tlv(0x30, &kept)));
        } else {
            fields.extend_from_slice(&field.to_der().map_err(|_| fail("TBS field does not encode"))?);
        }
    }
    Ok(tlv(0x30, &fields))
}

fn elements(content: &[u8]) -> Result<Vec<AnyRef<'_>>, PkiError> {
    der_elements(content).map_err(|_| fail("malformed TBS"))
}

/// A DER tag-length-value with a one-byte tag.
pub(super) fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

/// A TLS-encoding reader over a byte slice (RFC 5246 §4: big-endian lengths before vectors).
struct Tls<'a>(&'a [u8]);

impl<'a> Tls<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], PkiError> {
        if self.0.len() < n {
            return Err(fail("truncated SCT"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn uint(&mut self, n: usize) -> Result<u64, PkiError> {
        Ok(self.take(n)?.iter().fold(0u64, |acc, b| acc << 8 | u64::from(*b)))
    }

    fn vector16(&mut self) -> Result<&'a [u8], PkiError> {
        let len = self.uint(2)? as usize;
        self.take(len)
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn parse_list(bytes: &[u8]) -> Result<Vec<Sct<'_>>, PkiError> {
    let mut outer = Tls(bytes);
    let mut list = Tls(outer.vector16()?);
    if !outer.is_empty() {
        return Err(fail("trailing bytes after the SCT list"));
    }
    let mut scts = Vec::new();
    while !list.is_empty() {
        if scts.len() == MAX_SCTS {
            return Err(fail(&format!("more than {MAX_SCTS} SCTs")));
        }
        scts.push(parse_sct(list.vector16()?)?);
    }
    Ok(scts)
}

fn parse_sct(bytes: &[u8]) -> Result<Sct<'_>, PkiError> {
    let mut r = Tls(bytes);
    if r.uint(1)? != 0 {
        return Err(fail("an SCT of a version other than 1"));
    }
    let sct = Sct {
        log_id: r.take(32)?,
        timestamp_ms: r.uint(8)?,
        extensions: r.vector16()?,
        hash: r.take(1)?[0],
        signature_algorithm: r.take(1)?[0],
        signature: r.vector16()?,
    };
    if !r.is_empty() {
        return Err(fail("trailing bytes after an SCT"));
    }
    Ok(sct)
}

fn fail(message: &str) -> PkiError {
    PkiError::Sct(message.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::certificate::tests::{certificates, during, root};
    use crate::pki::certificate::verify_chain;

    fn verify_case(case: &str) -> Result<usize, PkiError> {
        let certs = certificates(case);
        let root = root(case);
        let chained = verify_chain(&certs[0], &[], &root.certificate_authorities, during(&certs[0])).unwrap();
        verify_embedded_scts(&certs[0], &chained.issuer_der, &root.ctlogs)
    }

    #[test]
    fn the_conformance_leaves_carry_an_sct_that_verifies() {
        for case in ["happy-path-v0.3", "happy-path-v0.1", "rekor2-happy-path"] {
            assert_eq!(verify_case(case).unwrap_or_else(|e| panic!("{case}: {e}")), 1, "{case}");
        }
    }

    #[test]
    fn an_sct_with_extensions_verifies_over_its_extensions() {
        // Static CT logs put a leaf index in the SCT extensions; they are part of the signed data.
        assert_eq!(verify_case("bundle-with-sct-with-extensions").unwrap(), 1);
    }

    #[test]
    fn a_wrong_ct_key_under_the_logs_id_fails() {
        let err = verify_case("invalid-ct-key_fail").unwrap_err();
        assert!(err.to_string().contains("no embedded SCT verifies"), "{err}");
    }

    #[test]
    fn an_unknown_log_a_log_outside_its_window_or_the_wrong_issuer_fail() {
        let certs = certificates("happy-path-v0.3");
        let root = root("happy-path-v0.3");
        let chained = verify_chain(&certs[0], &[], &root.certificate_authorities, during(&certs[0])).unwrap();
        let err = verify_embedded_scts(&certs[0], &chained.issuer_der, &[]).unwrap_err();
        assert!(err.to_string().contains("does not list"), "{err}");

        let mut closed = root.ctlogs.clone();
        for log in &mut closed {
            log.validity.end = Some(log.validity.start);
        }
        let err = verify_embedded_scts(&certs[0], &chained.issuer_der, &closed).unwrap_err();
        assert!(err.to_string().contains("outside the log's validity"), "{err}");

        // the issuer key hash is part of the signed entry: another issuer breaks it
        let other_issuer = &root.certificate_authorities[0].certificates[0];
        assert_ne!(other_issuer, &chained.issuer_der);
        assert!(verify_embedded_scts(&certs[0], other_issuer, &root.ctlogs).is_err());
    }

    #[test]
    fn the_precertificate_tbs_drops_only_the_sct_extension() {
        let certs = certificates("happy-path-v0.3");
        let cert = Certificate::from_der(&certs[0]).unwrap();
        let tbs = precert_tbs(&cert).unwrap();
        let full = cert.tbs_certificate().to_der().unwrap();
        assert!(tbs.len() < full.len());
        let parsed = x509_cert::TbsCertificate::from_der(&tbs).unwrap();
        let before = cert.tbs_certificate().extensions().unwrap().len();
        assert_eq!(parsed.extensions().unwrap().len(), before - 1);
        assert!(parsed.extensions().unwrap().iter().all(|e| e.extn_id != OID_SCT_LIST));
    }

    #[test]
    fn flipped_bytes_in_a_leaf_fail_the_sct_without_panicking() {
        let certs = certificates("happy-path-v0.3");
        let root = root("happy-path-v0.3");
        let chained = verify_chain(&certs[0], &[], &root.certificate_authorities, during(&certs[0])).unwrap();
        for pos in (0..certs[0].len()).step_by(3) {
            let mut changed = certs[0].clone();
            changed[pos] ^= 0x41;
            let _ = verify_embedded_scts(&changed, &chained.issuer_der, &root.ctlogs);
            let _ = crate::pki::certificate::read_identity(&changed);
            let _ = verify_chain(&changed, &[], &root.certificate_authorities, during(&certs[0]));
        }
    }

    #[test]
    fn a_truncated_list_is_malformed() {
        assert!(parse_list(&[0, 5, 0, 3, 0]).is_err());
        assert!(parse_list(&[0, 0, 1]).is_err());
        assert!(parse_list(&[0, 0]).unwrap().is_empty());
    }
}
