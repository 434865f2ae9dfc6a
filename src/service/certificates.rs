//! The certificate chains of notarium's own signing keys, at start-up: each `[[keys]] certificate_chain`
//! file is read, checked (`pki::signing_chain`) against the key's latest version and handed to the key
//! ring, where the Notary Project signer asks for it (`KeyRing::certificate_chain`).
//!
//! Owns: the order of those steps and their errors, which name the key and the file. Must not touch: the
//! checks themselves (pki) or private key material (only public keys and certificates pass through here).

use std::path::Path;

use time::OffsetDateTime;

use super::ServiceError;
use crate::config::KeyConfig;
use crate::formats::cosign_layer::pem_certificates;
use crate::keys::{CertificateChain, KeyRef, KeyRing};
use crate::pki::signing_chain::check_signing_chain;

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
        let chain = read_chain_file(id, file)?;
        let version = match keys.public_key(&KeyRef { id: id.to_owned(), version: None }).await {
            Ok(version) => version,
            Err(e) => {
                tracing::warn!(key = id, file = %file.display(), error = %e,
                    "the key's backend did not answer: its certificate chain is not attached until a restart");
                continue;
            }
        };
        check_signing_chain(&chain, version.public_key.spki_der(), now)
            .map_err(|e| invalid(id, file, &e.to_string()))?;
        keys.set_certificate_chain(id, version.version, CertificateChain::new(chain, file.display().to_string()));
        attached += 1;
    }
    Ok(attached)
}

/// The DER certificates of a PEM chain file.
fn read_chain_file(id: &str, file: &Path) -> Result<Vec<Vec<u8>>, ServiceError> {
    let text = std::fs::read_to_string(file).map_err(|e| invalid(id, file, &format!("cannot read it: {e}")))?;
    pem_certificates(&text).map_err(|e| invalid(id, file, &e.to_string()))
}

fn invalid(id: &str, file: &Path, reason: &str) -> ServiceError {
    ServiceError::Certificate(format!("[[keys]] {id:?} certificate_chain {}: {reason}", file.display()))
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
}
