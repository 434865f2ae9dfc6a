//! The X.509 certificate chains of signing keys, by key id and version: a `[[keys]] certificate_chain`
//! file or a certificate notarium's `[ca]` issued. Notary Project signatures carry the chain of the key
//! version that signs; a version without one cannot sign in that format.
//!
//! Owns: holding chains (DER, leaf first, ending with the root) and handing them out. Must not touch:
//! validating them (`pki::signing_chain` does, at start-up and on issue) or where they come from.

use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError, RwLock};

use base64::Engine as _;

/// One key version's certificate chain: the leaf (its certificate), then the certificates that issued it,
/// ending with the self-signed root, as a Notary Project signature's `x5chain` must.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateChain {
    certificates: Vec<Vec<u8>>,
    source: String,
}

impl CertificateChain {
    /// `certificates` are DER, leaf first; `source` says where the chain comes from (a file path, `[ca]`).
    pub fn new(certificates: Vec<Vec<u8>>, source: impl Into<String>) -> Self {
        Self { certificates, source: source.into() }
    }

    /// Every certificate, DER, leaf first.
    pub fn der(&self) -> &[Vec<u8>] {
        &self.certificates
    }

    /// The key's own certificate.
    pub fn leaf(&self) -> Option<&[u8]> {
        self.certificates.first().map(Vec::as_slice)
    }

    /// Where the chain comes from: the configured file, or `[ca]` for one notarium issued.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The chain as concatenated `CERTIFICATE` PEM blocks, leaf first (what `notation cert add` reads).
    pub fn to_pem(&self) -> String {
        self.certificates.iter().map(|der| pem_certificate(der)).collect()
    }
}

/// One DER certificate as a PEM block with 64-character lines.
pub fn pem_certificate(der: &[u8]) -> String {
    let text = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in text.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

/// The chains by (key id, version), shared by every clone of the key ring, so a renewal is seen at once.
#[derive(Debug, Clone, Default)]
pub(super) struct Certificates(Arc<RwLock<ChainsByVersion>>);

/// Key id and version to chain.
type ChainsByVersion = BTreeMap<(String, u32), Arc<CertificateChain>>;

impl Certificates {
    pub(super) fn get(&self, id: &str, version: u32) -> Option<Arc<CertificateChain>> {
        self.0.read().unwrap_or_else(PoisonError::into_inner).get(&(id.to_owned(), version)).cloned()
    }

    pub(super) fn set(&self, id: &str, version: u32, chain: CertificateChain) {
        self.0.write().unwrap_or_else(PoisonError::into_inner).insert((id.to_owned(), version), Arc::new(chain));
    }
}
