//! Public keys as SubjectPublicKeyInfo, and signature verification with them.

use p256::pkcs8::{DecodePublicKey, EncodePublicKey, LineEnding};

use super::{Algorithm, KeyError};

/// A verifying key, kept as its DER SubjectPublicKeyInfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    pub algorithm: Algorithm,
    spki_der: Vec<u8>,
}

impl PublicKey {
    pub fn from_p256(key: &p256::ecdsa::VerifyingKey) -> Self {
        Self {
            algorithm: Algorithm::EcdsaP256Sha256,
            spki_der: key.to_public_key_der().expect("P-256 SPKI encodes").into_vec(),
        }
    }

    pub fn from_ed25519(key: &ed25519_dalek::VerifyingKey) -> Self {
        Self {
            algorithm: Algorithm::Ed25519,
            spki_der: key.to_public_key_der().expect("Ed25519 SPKI encodes").into_vec(),
        }
    }

    /// Reads a `PUBLIC KEY` PEM (cosign's `cosign.pub`, skopeo's public key file).
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        if let Ok(key) = p256::ecdsa::VerifyingKey::from_public_key_pem(pem) {
            return Ok(Self::from_p256(&key));
        }
        ed25519_dalek::VerifyingKey::from_public_key_pem(pem)
            .map(|key| Self::from_ed25519(&key))
            .map_err(|e| KeyError::UnsupportedPublicKey(e.to_string()))
    }

    /// The raw 32-byte key of an Ed25519 public key (what signed notes name).
    pub fn ed25519_bytes(&self) -> Option<[u8; 32]> {
        let key = ed25519_dalek::VerifyingKey::from_public_key_der(&self.spki_der).ok()?;
        (self.algorithm == Algorithm::Ed25519).then(|| key.to_bytes())
    }

    pub fn spki_der(&self) -> &[u8] {
        &self.spki_der
    }

    pub fn to_pem(&self) -> String {
        let doc = spki_document(&self.spki_der);
        doc.to_pem("PUBLIC KEY", LineEnding::LF).expect("PEM encodes")
    }

    /// Checks `signature` over `message`: ASN.1 DER for ECDSA (raw `r‖s` is refused, as cosign
    /// refuses it), 64 bytes for Ed25519.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), KeyError> {
        use p256::ecdsa::signature::Verifier as _;
        match self.algorithm {
            Algorithm::EcdsaP256Sha256 => {
                let key = p256::ecdsa::VerifyingKey::from_public_key_der(&self.spki_der)
                    .map_err(|e| KeyError::UnsupportedPublicKey(e.to_string()))?;
                let sig = p256::ecdsa::DerSignature::from_bytes(signature).map_err(|_| KeyError::BadSignature)?;
                key.verify(message, &sig).map_err(|_| KeyError::BadSignature)
            }
            Algorithm::Ed25519 => {
                let key = ed25519_dalek::VerifyingKey::from_public_key_der(&self.spki_der)
                    .map_err(|e| KeyError::UnsupportedPublicKey(e.to_string()))?;
                let sig = ed25519_dalek::Signature::from_slice(signature).map_err(|_| KeyError::BadSignature)?;
                key.verify_strict(message, &sig).map_err(|_| KeyError::BadSignature)
            }
        }
    }
}

fn spki_document(der: &[u8]) -> p256::pkcs8::Document {
    p256::pkcs8::Document::try_from(der).expect("stored SPKI is valid DER")
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/third-party");

    fn read(path: &str) -> Vec<u8> {
        std::fs::read(format!("{FIXTURES}/{path}")).unwrap()
    }

    #[test]
    fn verifies_the_signature_skopeo_wrote_and_refuses_a_changed_payload() {
        let key = PublicKey::from_pem(&String::from_utf8(read("skopeo-1.18/signer.pub")).unwrap()).unwrap();
        let sig = base64::engine::general_purpose::STANDARD
            .decode(String::from_utf8(read("skopeo-1.18/signature.b64")).unwrap().trim())
            .unwrap();
        let payload = read("skopeo-1.18/simplesigning-payload.json");
        key.verify(&payload, &sig).unwrap();
        let mut changed = payload;
        changed[10] ^= 1;
        assert!(key.verify(&changed, &sig).is_err());
    }

    #[test]
    fn pem_round_trips() {
        let pem = String::from_utf8(read("cosign-2.5/signer.pub")).unwrap();
        let key = PublicKey::from_pem(&pem).unwrap();
        assert_eq!(key.algorithm, Algorithm::EcdsaP256Sha256);
        assert_eq!(key.to_pem(), pem);
    }
}
