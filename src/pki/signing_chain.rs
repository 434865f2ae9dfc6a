//! The certificate chain of one of notarium's own signing keys (`[[keys]] certificate_chain`, or one its
//! `[ca]` issued), checked before the key signs with it: the leaf certifies that very key, is good for code
//! signing as the Notary Project signature specification requires, and the chain is ordered and valid now.
//!
//! Owns: those checks on an ordered chain (leaf first, each certificate issued by the next, ending with a
//! self-signed root, as a Notary Project `x5chain` must). Must not touch: whom the chain is trusted by (the
//! verifier's trust store) or where it comes from (files, the database).

use time::OffsetDateTime;
use x509_cert::Certificate;
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage};

use super::PkiError;
use super::certificate::{
    KeyPurpose, check_extensions, check_leaf, check_valid_at, is_self_issued, issued_by, parse, validity,
};

/// The longest chain accepted (leaf, intermediates, root).
const MAX_CHAIN: usize = 8;

/// What a chain that passed [`check_signing_chain`] is good for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainValidity {
    pub not_before: OffsetDateTime,
    /// The earliest notAfter in the chain: the chain is useless after it.
    pub not_after: OffsetDateTime,
}

/// Checks that `chain` (DER, leaf first) is a signing chain for the key whose SubjectPublicKeyInfo is
/// `spki_der`, at `at`: the leaf holds that key, is no CA and not self-signed, has a keyUsage with
/// digitalSignature and an extKeyUsage with codeSigning; every certificate is valid at `at`; each is issued
/// (name and signature) by the next, which is a CA allowed to sign certificates; the last is a self-signed
/// root and no other is self-issued.
pub fn check_signing_chain(chain: &[Vec<u8>], spki_der: &[u8], at: OffsetDateTime) -> Result<ChainValidity, PkiError> {
    if chain.is_empty() {
        return Err(fail("the chain holds no certificate"));
    }
    if chain.len() > MAX_CHAIN {
        return Err(fail(&format!("{} certificates, more than the {MAX_CHAIN} accepted", chain.len())));
    }
    let certs =
        chain.iter().enumerate().map(|(i, der)| parse(der, &position(i))).collect::<Result<Vec<Certificate>, _>>()?;
    let leaf = &certs[0];
    let leaf_spki = der::Encode::to_der(leaf.tbs_certificate().subject_public_key_info())
        .map_err(|_| fail("the leaf's public key does not encode"))?;
    if leaf_spki != spki_der {
        return Err(fail("the leaf certificate is for another public key than the key's"));
    }
    check_leaf(leaf, KeyPurpose::CodeSigning)?;
    let usage = leaf.tbs_certificate().get_extension::<KeyUsage>().map_err(|_| fail("leaf: malformed key usage"))?;
    if usage.is_none() {
        return Err(fail("leaf: no key usage extension (digitalSignature is required)"));
    }
    check_links(&certs, at)
}

/// Checks that `chain` (DER) is the certificate chain of a CA whose key is `spki_der`, at `at`: its first
/// certificate holds that key and is a CA allowed to sign certificates; the rest as for a signing chain (a
/// self-signed CA certificate alone is its whole chain).
pub fn check_ca_chain(chain: &[Vec<u8>], spki_der: &[u8], at: OffsetDateTime) -> Result<ChainValidity, PkiError> {
    let certs = parse_chain(chain)?;
    let first = &certs[0];
    let spki = der::Encode::to_der(first.tbs_certificate().subject_public_key_info())
        .map_err(|_| fail("the CA certificate's public key does not encode"))?;
    if spki != spki_der {
        return Err(fail("the CA certificate is for another public key than the CA key's"));
    }
    check_ca(first, "the CA certificate")?;
    check_links(&certs, at)
}

fn parse_chain(chain: &[Vec<u8>]) -> Result<Vec<Certificate>, PkiError> {
    if chain.is_empty() {
        return Err(fail("the chain holds no certificate"));
    }
    if chain.len() > MAX_CHAIN {
        return Err(fail(&format!("{} certificates, more than the {MAX_CHAIN} accepted", chain.len())));
    }
    chain.iter().enumerate().map(|(i, der)| parse(der, &position(i))).collect()
}

/// Every certificate valid at `at`, each issued by the next (a CA), the last a self-signed root.
fn check_links(certs: &[Certificate], at: OffsetDateTime) -> Result<ChainValidity, PkiError> {
    let (not_before, mut not_after) = validity(&certs[0])?;
    for (i, cert) in certs.iter().enumerate() {
        check_valid_at(cert, at, &position(i))?;
        not_after = not_after.min(validity(cert)?.1);
        let Some(issuer) = certs.get(i + 1) else {
            if !issued_by(cert, cert) {
                return Err(fail("the chain must end with its self-signed root certificate"));
            }
            break;
        };
        if i > 0 && is_self_issued(cert) {
            return Err(fail(&format!("{} is self-signed but is not the last certificate", position(i))));
        }
        if !issued_by(cert, issuer) {
            return Err(fail(&format!("{} is not issued by the certificate after it", position(i))));
        }
        check_ca(issuer, &position(i + 1))?;
    }
    Ok(ChainValidity { not_before, not_after })
}

/// An issuer in the chain: a CA allowed to sign certificates.
fn check_ca(cert: &Certificate, which: &str) -> Result<(), PkiError> {
    check_extensions(cert, which)?;
    let tbs = cert.tbs_certificate();
    let basic =
        tbs.get_extension::<BasicConstraints>().map_err(|_| fail(&format!("{which}: malformed basic constraints")))?;
    if !basic.is_some_and(|(_, bc)| bc.ca) {
        return Err(fail(&format!("{which} is not a CA certificate")));
    }
    let usage = tbs.get_extension::<KeyUsage>().map_err(|_| fail(&format!("{which}: malformed key usage")))?;
    if usage.is_some_and(|(_, ku)| !ku.key_cert_sign()) {
        return Err(fail(&format!("{which}'s key usage does not allow signing certificates")));
    }
    Ok(())
}

fn position(i: usize) -> String {
    if i == 0 { "the leaf".into() } else { format!("certificate {}", i + 1) }
}

fn fail(message: &str) -> PkiError {
    PkiError::Certificate(message.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::cosign_layer::pem_certificates;
    use crate::keys::{FileSigner, Signer as _};

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/certificates");

    fn chain(name: &str) -> Vec<Vec<u8>> {
        pem_certificates(&std::fs::read_to_string(format!("{FIXTURES}/{name}")).unwrap()).unwrap()
    }

    async fn dev_ecdsa_spki() -> Vec<u8> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("keys.example/dev-ecdsa.pem");
        let signer = FileSigner::load("dev-ecdsa", &path).unwrap();
        signer.versions().await.unwrap()[0].public_key.spki_der().to_vec()
    }

    #[tokio::test]
    async fn a_code_signing_chain_for_the_key_passes_and_reports_its_window() {
        let chain = chain("dev-ecdsa.chain.pem");
        let window = check_signing_chain(&chain, &dev_ecdsa_spki().await, OffsetDateTime::now_utc()).unwrap();
        assert!(window.not_after > OffsetDateTime::now_utc());
    }

    #[tokio::test]
    async fn a_chain_for_another_key_is_refused() {
        let err =
            check_signing_chain(&chain("other-key.chain.pem"), &dev_ecdsa_spki().await, OffsetDateTime::now_utc())
                .unwrap_err();
        assert!(err.to_string().contains("another public key"), "{err}");
    }

    #[tokio::test]
    async fn a_leaf_without_code_signing_is_refused() {
        let chain = chain("dev-ecdsa-server-auth.chain.pem");
        let err = check_signing_chain(&chain, &dev_ecdsa_spki().await, OffsetDateTime::now_utc()).unwrap_err();
        assert!(err.to_string().contains("code signing"), "{err}");
    }

    #[tokio::test]
    async fn an_expired_or_not_yet_valid_chain_is_refused() {
        let chain = chain("dev-ecdsa.chain.pem");
        let spki = dev_ecdsa_spki().await;
        for at in [OffsetDateTime::now_utc() + time::Duration::days(365 * 200), OffsetDateTime::UNIX_EPOCH] {
            let err = check_signing_chain(&chain, &spki, at).unwrap_err();
            assert!(err.to_string().contains("not valid at"), "{err}");
        }
    }

    #[tokio::test]
    async fn a_chain_without_its_root_or_out_of_order_is_refused() {
        let chain = chain("dev-ecdsa.chain.pem");
        let spki = dev_ecdsa_spki().await;
        let now = OffsetDateTime::now_utc();
        let err = check_signing_chain(&chain[..1], &spki, now).unwrap_err();
        assert!(err.to_string().contains("must end with its self-signed root"), "{err}");
        let reversed: Vec<Vec<u8>> = chain.iter().rev().cloned().collect();
        assert!(check_signing_chain(&reversed, &spki, now).is_err());
        let root_twice = [chain.clone(), chain[1..].to_vec()].concat();
        assert!(check_signing_chain(&root_twice, &spki, now).is_err());
    }
}
