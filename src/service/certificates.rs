//! The certificate chains of notarium's own signing keys, handed to the key ring where the Notary Project
//! signer asks for them (`KeyRing::certificate_chain`): each `[[keys]] certificate_chain` file, read and
//! checked (`pki::signing_chain`) against the key's latest version at start-up; and the leaves `[ca]`
//! issues to the other ECDSA image-signing keys, kept in the database and renewed when less than a third
//! of their validity is left.
//!
//! Owns: the order of those steps and their errors, which name the key and the file. Must not touch: the
//! checks and the certificate profile (pki) or private key material (the CA key signs through its
//! backend; only public keys, to-be-signed bytes and certificates pass through here).

use std::path::Path;
use std::time::Duration;

use time::OffsetDateTime;

use super::{Service, ServiceError, now_rfc3339};
use crate::config::{CaConfig, KeyConfig};
use crate::formats::cosign_layer::pem_certificates;
use crate::keys::{Algorithm, CertificateChain, KeyRef, KeyRing, KeyVersion};
use crate::pki::issue::{Window, assemble, leaf_tbs, self_signed_ca_tbs, serial_from};
use crate::pki::signing_chain::{ChainValidity, check_ca_chain, check_signing_chain};
use crate::store::KeyCertificateRecord;

/// How long the CA certificate notarium makes for itself (no `[ca] certificate`) is valid.
const SELF_SIGNED_CA_VALIDITY: time::Duration = time::Duration::days(3650);
/// How far back a certificate's notBefore is set, for verifiers whose clock is a little behind.
const BACKDATE: time::Duration = time::Duration::minutes(5);

/// Reads, checks and attaches every configured `certificate_chain`, at `now`. A chain that does not
/// parse, is for another key, lacks the code-signing usages or is not valid now is an error naming the
/// key and the file: the service does not start with it. A key whose backend cannot answer yet (Vault or
/// the HSM down) keeps signing without its chain, with a warning, as its other formats would wait too.
pub async fn attach_configured_chains(
    keys: &KeyRing,
    configs: &[KeyConfig],
    now: OffsetDateTime,
) -> Result<usize, ServiceError> {
    let mut attached = 0;
    for config in configs {
        let Some(file) = config.certificate_chain() else { continue };
        let id = config.id();
        let label = format!("[[keys]] {id:?} certificate_chain");
        let chain = read_chain_file(&label, file)?;
        let version = match keys.public_key(&KeyRef { id: id.to_owned(), version: None }).await {
            Ok(version) => version,
            Err(e) => {
                tracing::warn!(key = id, file = %file.display(), error = %e,
                    "the key's backend did not answer: its certificate chain is not attached until a restart");
                continue;
            }
        };
        check_signing_chain(&chain, version.public_key.spki_der(), now)
            .map_err(|e| invalid(&label, file, &e.to_string()))?;
        keys.set_certificate_chain(id, version.version, CertificateChain::new(chain, file.display().to_string()));
        attached += 1;
    }
    Ok(attached)
}

/// A larger certificate chain file is refused unread (a chain is a few PEM certificates).
const MAX_CHAIN_FILE_BYTES: u64 = crate::local_file::MIB;

/// The DER certificates of a PEM chain file; `label` names the setting in errors.
fn read_chain_file(label: &str, file: &Path) -> Result<Vec<Vec<u8>>, ServiceError> {
    let text = crate::local_file::read_text_capped(file, MAX_CHAIN_FILE_BYTES)
        .map_err(|e| invalid(label, file, &format!("cannot read it: {}", e.reason())))?;
    pem_certificates(&text).map_err(|e| invalid(label, file, &e.to_string()))
}

/// `[ca]` and the `[[keys]]` it serves, kept by the service for renewals.
#[derive(Debug, Clone)]
pub(super) struct CaSettings {
    ca: CaConfig,
    keys: Vec<KeyConfig>,
}

/// The certificate authority's chain, key and validity, ready to issue.
struct Authority {
    config: CaConfig,
    key: String,
    version: u32,
    algorithm: Algorithm,
    chain: Vec<Vec<u8>>,
    window: ChainValidity,
    leaf_validity: Duration,
}

/// What one pass of [`Service::issue_key_certificates`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Issued {
    /// Keys (`id@version`) issued a new certificate in this pass (first issue or renewal).
    pub issued: Vec<String>,
    /// Keys whose stored certificate is still good and was attached as it is.
    pub kept: Vec<String>,
    /// Keys skipped, with why (an Ed25519 key, a backend that did not answer).
    pub skipped: Vec<(String, String)>,
}

impl Service {
    /// Turns on `[ca]` for `keys` (the configured `[[keys]]`): see [`Self::renew_key_certificates`].
    pub fn with_ca(self, ca: CaConfig, keys: Vec<KeyConfig>) -> Self {
        Self { ca: Some(CaSettings { ca, keys }), ..self }
    }

    /// One `[ca]` pass at `now` over the configured keys ([`Self::issue_key_certificates`]): at start-up,
    /// hourly, and when an administrator asks (`POST /v1/keys/certificates`).
    pub async fn renew_key_certificates(&self, now: OffsetDateTime) -> Result<Issued, ServiceError> {
        let settings = self.ca.as_ref().ok_or(ServiceError::NoCa)?;
        self.issue_key_certificates(&settings.ca, &settings.keys, now).await
    }

    /// Whether `[ca]` is configured.
    pub fn has_ca(&self) -> bool {
        self.ca.is_some()
    }

    /// Gives every ECDSA P-256 image-signing key without a configured chain a code-signing certificate
    /// from `[ca]`, at `now`: the one stored in the database when it is still good (issued by the current CA
    /// certificate, more than a third of its validity left), else a new one, stored, then read back so
    /// replicas converge on one. An unusable `[ca] certificate` file is an error naming it; a key that
    /// cannot be served is skipped with the reason, and the next pass tries again.
    pub async fn issue_key_certificates(
        &self,
        ca: &CaConfig,
        configs: &[KeyConfig],
        now: OffsetDateTime,
    ) -> Result<Issued, ServiceError> {
        let authority = self.authority(ca, now).await?;
        self.keys.set_certificate_chain(
            &authority.key,
            authority.version,
            CertificateChain::new(authority.chain.clone(), ca_source(ca)),
        );
        let mut outcome = Issued::default();
        for config in configs.iter().filter(|c| c.certificate_chain().is_none()) {
            let id = config.id();
            if id == authority.key || self.keys.checkpoint_key() == Some(id) {
                continue;
            }
            let version = match self.keys.public_key(&KeyRef { id: id.to_owned(), version: None }).await {
                Ok(version) => version,
                Err(e) => {
                    outcome.skipped.push((id.to_owned(), format!("its backend did not answer: {e}")));
                    continue;
                }
            };
            let name = format!("{id}@{}", version.version);
            if version.public_key.algorithm != Algorithm::EcdsaP256Sha256 {
                let reason = "an Ed25519 key: the Notary Project signature specification allows ECDSA and RSA only";
                outcome.skipped.push((name, reason.into()));
                continue;
            }
            match self.leaf_for(&authority, id, &version, now).await {
                Ok(true) => outcome.issued.push(name),
                Ok(false) => outcome.kept.push(name),
                Err(e) => outcome.skipped.push((name, e.to_string())),
            }
        }
        Ok(outcome)
    }

    /// The CA's chain: `[ca] certificate`, or the self-signed certificate kept in the database (made and
    /// stored at first start; the first one stored wins when replicas race).
    async fn authority(&self, ca: &CaConfig, now: OffsetDateTime) -> Result<Authority, ServiceError> {
        let leaf_validity = ca.validity().map_err(|e| ServiceError::Certificate(e.to_string()))?;
        let version = self.keys.public_key(&KeyRef { id: ca.key.clone(), version: None }).await?;
        if version.public_key.algorithm != Algorithm::EcdsaP256Sha256 {
            return Err(ServiceError::Certificate(format!(
                "[ca] key {:?} is an Ed25519 key: a Notary Project certificate chain takes ECDSA or RSA keys only",
                ca.key
            )));
        }
        let spki = version.public_key.spki_der();
        let chain = match &ca.certificate {
            Some(file) => read_chain_file("[ca] certificate", file)?,
            None => self.self_signed_ca(ca, &version, now).await?,
        };
        let window = check_ca_chain(&chain, spki, now).map_err(|e| {
            let source = ca.certificate.as_ref().map_or("the self-signed CA certificate in the database".into(), |f| {
                format!("[ca] certificate {}", f.display())
            });
            ServiceError::Certificate(format!("{source}: {e}"))
        })?;
        Ok(Authority {
            config: ca.clone(),
            key: ca.key.clone(),
            version: version.version,
            algorithm: version.public_key.algorithm,
            chain,
            window,
            leaf_validity,
        })
    }

    async fn self_signed_ca(
        &self,
        ca: &CaConfig,
        version: &KeyVersion,
        now: OffsetDateTime,
    ) -> Result<Vec<Vec<u8>>, ServiceError> {
        let stored_version = i64::from(version.version);
        if let Some(chain) = self.stored_ca(&ca.key, version, now).await? {
            return Ok(chain);
        }
        let window = Window { not_before: now - BACKDATE, not_after: now + SELF_SIGNED_CA_VALIDITY };
        let subject = format!("CN=notarium CA {}, O=notarium", ca.key);
        let serial = serial_from(&seed(&ca.key, version.version, now)?);
        let tbs =
            self_signed_ca_tbs(&subject, version.public_key.spki_der(), version.public_key.algorithm, window, &serial)
                .map_err(certificate_error)?;
        let signature = self.keys.get(&ca.key)?.sign(Some(version.version), &tbs).await?;
        let certificate = assemble(&tbs, version.public_key.algorithm, &signature.bytes).map_err(certificate_error)?;
        self.store
            .add_key_certificate(&record(&ca.key, stored_version, &ca.key, &[certificate], window.not_after))
            .await?;
        tracing::info!(key = %ca.key, version = version.version, "made a self-signed CA certificate for [ca]");
        let stored = self.stored_ca(&ca.key, version, now).await?;
        stored.ok_or_else(|| ServiceError::Certificate("the CA certificate was not stored".into()))
    }

    /// The self-signed CA certificate stored for the CA key's `version` that is for its public key and valid
    /// at `now`: the first one stored (replicas that raced agree on it), else the latest (a file key replaced
    /// under the same id and version gets a certificate of its own).
    async fn stored_ca(
        &self,
        id: &str,
        version: &KeyVersion,
        now: OffsetDateTime,
    ) -> Result<Option<Vec<Vec<u8>>>, ServiceError> {
        let stored_version = i64::from(version.version);
        let first = self.store.first_key_certificate(id, stored_version).await?;
        let latest = self.store.key_certificate(id, stored_version).await?;
        for stored in first.iter().chain(latest.iter()) {
            let chain = parse_stored(stored)?;
            if check_ca_chain(&chain, version.public_key.spki_der(), now).is_ok() {
                return Ok(Some(chain));
            }
        }
        Ok(None)
    }

    /// Attaches key `id`'s stored leaf when it is still good, else issues, stores and attaches a new one;
    /// true when it issued.
    async fn leaf_for(
        &self,
        authority: &Authority,
        id: &str,
        version: &KeyVersion,
        now: OffsetDateTime,
    ) -> Result<bool, ServiceError> {
        let ca = &authority.config;
        let stored_version = i64::from(version.version);
        let spki = version.public_key.spki_der();
        if let Some(stored) = self.store.key_certificate(id, stored_version).await? {
            let chain = parse_stored(&stored)?;
            if still_good(&chain, spki, authority, now) {
                self.keys.set_certificate_chain(id, version.version, CertificateChain::new(chain, ca_source(ca)));
                return Ok(false);
            }
        }
        let chain = self.issue_leaf(authority, id, version, now).await?;
        let not_after = check_signing_chain(&chain, spki, now).map_err(certificate_error)?.not_after;
        self.store.add_key_certificate(&record(id, stored_version, &authority.key, &chain, not_after)).await?;
        let stored = self.store.key_certificate(id, stored_version).await?;
        let stored =
            stored.ok_or_else(|| ServiceError::Certificate(format!("key {id:?}: the certificate was not stored")))?;
        let chain = parse_stored(&stored)?;
        check_signing_chain(&chain, spki, now).map_err(certificate_error)?;
        self.keys.set_certificate_chain(id, version.version, CertificateChain::new(chain, ca_source(ca)));
        tracing::info!(key = id, version = version.version, "[ca] issued a code-signing certificate");
        Ok(true)
    }

    /// A new leaf for `version` of key `id`, signed by the CA key through its backend; the chain it heads.
    async fn issue_leaf(
        &self,
        authority: &Authority,
        id: &str,
        version: &KeyVersion,
        now: OffsetDateTime,
    ) -> Result<Vec<Vec<u8>>, ServiceError> {
        let validity = time::Duration::try_from(authority.leaf_validity)
            .map_err(|_| ServiceError::Certificate("[ca] validity is out of range".into()))?;
        let window = Window { not_before: now - BACKDATE, not_after: (now + validity).min(authority.window.not_after) };
        let serial = serial_from(&seed(id, version.version, now)?);
        let tbs = leaf_tbs(
            &authority.config.subject_for(id, version.version),
            version.public_key.spki_der(),
            &authority.chain[0],
            authority.algorithm,
            window,
            &serial,
        )
        .map_err(|e| ServiceError::Certificate(format!("[ca] subject or key of {id:?}: {e}")))?;
        let signature = self.keys.get(&authority.key)?.sign(Some(authority.version), &tbs).await?;
        let leaf = assemble(&tbs, authority.algorithm, &signature.bytes).map_err(certificate_error)?;
        Ok(std::iter::once(leaf).chain(authority.chain.iter().cloned()).collect())
    }
}

/// A stored leaf is kept while it verifies for the key now, hangs under the CA's current chain, and has
/// at least a third of `[ca] validity` left.
fn still_good(chain: &[Vec<u8>], spki: &[u8], authority: &Authority, now: OffsetDateTime) -> bool {
    let Ok(window) = check_signing_chain(chain, spki, now) else { return false };
    let third = time::Duration::try_from(authority.leaf_validity / 3).unwrap_or(time::Duration::ZERO);
    chain.get(1..) == Some(authority.chain.as_slice()) && window.not_after - now >= third
}

/// Serial number seed: the key, version and time, and 16 random bytes so two replicas never repeat one.
fn seed(id: &str, version: u32, now: OffsetDateTime) -> Result<Vec<u8>, ServiceError> {
    let mut random = [0u8; 16];
    getrandom::fill(&mut random).map_err(|e| ServiceError::Certificate(format!("no randomness for a serial: {e}")))?;
    Ok([id.as_bytes(), &version.to_be_bytes(), &now.unix_timestamp().to_be_bytes(), &random].concat())
}

fn record(id: &str, version: i64, issuer: &str, chain: &[Vec<u8>], not_after: OffsetDateTime) -> KeyCertificateRecord {
    KeyCertificateRecord {
        key_id: id.to_owned(),
        key_version: version,
        issuer_key: issuer.to_owned(),
        chain_pem: chain.iter().map(|der| crate::keys::pem_certificate(der)).collect(),
        not_after: not_after.unix_timestamp(),
        issued_at: now_rfc3339(),
    }
}

fn parse_stored(stored: &KeyCertificateRecord) -> Result<Vec<Vec<u8>>, ServiceError> {
    pem_certificates(&stored.chain_pem)
        .map_err(|e| ServiceError::Certificate(format!("the stored certificate of key {:?}: {e}", stored.key_id)))
}

fn ca_source(ca: &CaConfig) -> String {
    format!("[ca] {}", ca.key)
}

fn certificate_error(e: crate::pki::PkiError) -> ServiceError {
    ServiceError::Certificate(e.to_string())
}

fn invalid(label: &str, file: &Path, reason: &str) -> ServiceError {
    ServiceError::Certificate(format!("{label} {}: {reason}", file.display()))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::keys::FileSigner;

    fn ring() -> KeyRing {
        let mut ring = KeyRing::default();
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("keys.example/dev-ecdsa.pem");
        ring.insert("dev-ecdsa", Arc::new(FileSigner::load("dev-ecdsa", &path).unwrap()));
        ring
    }

    fn config(chain: &str) -> KeyConfig {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        KeyConfig::File {
            id: "dev-ecdsa".into(),
            path: root.join("keys.example/dev-ecdsa.pem"),
            certificate_chain: Some(root.join("tests/fixtures/certificates").join(chain)),
        }
    }

    #[tokio::test]
    async fn a_matching_chain_is_attached_to_the_latest_version() {
        let ring = ring();
        let configs = [config("dev-ecdsa.chain.pem")];
        assert_eq!(attach_configured_chains(&ring, &configs, OffsetDateTime::now_utc()).await.unwrap(), 1);
        let (version, chain) = ring.signing_chain(&KeyRef::parse("dev-ecdsa").unwrap()).await.unwrap();
        let chain = chain.unwrap();
        assert_eq!(ring.certificate_chain("dev-ecdsa", version), Some(chain.clone()));
        assert_eq!(chain.der().len(), 2);
        assert!(chain.to_pem().starts_with("-----BEGIN CERTIFICATE-----\n"));
        assert!(ring.certificate_chain("dev-ecdsa", version + 1).is_none());
    }

    #[tokio::test]
    async fn a_chain_for_another_key_or_a_missing_file_is_an_error_naming_the_file() {
        for name in ["other-key.chain.pem", "absent.pem"] {
            let ring = ring();
            let err = attach_configured_chains(&ring, &[config(name)], OffsetDateTime::now_utc()).await.unwrap_err();
            let message = err.to_string();
            assert!(message.contains("\"dev-ecdsa\"") && message.contains(name), "{message}");
            assert!(ring.certificate_chain("dev-ecdsa", 1).is_none());
        }
    }

    #[tokio::test]
    async fn an_oversized_chain_file_is_refused_unread_naming_it() {
        let (_dir, big) = crate::local_file::sparse_file("big.chain.pem", MAX_CHAIN_FILE_BYTES + 1);
        let config = KeyConfig::File {
            id: "dev-ecdsa".into(),
            path: Path::new(env!("CARGO_MANIFEST_DIR")).join("keys.example/dev-ecdsa.pem"),
            certificate_chain: Some(big.clone()),
        };
        let err = attach_configured_chains(&ring(), &[config], OffsetDateTime::now_utc()).await.unwrap_err();
        let message = err.to_string();
        assert!(message.contains(&big.display().to_string()) && message.contains("larger than the limit"), "{message}");
    }
}
