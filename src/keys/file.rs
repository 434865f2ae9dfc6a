//! The `file` backend: a PKCS#8 PEM private key on disk, for development and `keys.example/`.
//! It holds the key in process memory, which is exactly why production uses `pkcs11` or `vault`.
//! ECDSA P-256 signs through `ring` (about 5× faster than the pure-Rust `p256`, which still parses the
//! file and derives the public key): a sign makes two such signatures on the request's path.

use std::path::Path;

use async_trait::async_trait;
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair};

use super::{KeyError, KeyVersion, PublicKey, Signature, Signer};

enum FileKey {
    /// Parsed once at load; signs with a fresh random nonce (ring mixes the key and message into it).
    P256(EcdsaKeyPair, SystemRandom),
    Ed25519(ed25519_dalek::SigningKey),
}

/// A single-version key read from a PEM file.
pub struct FileSigner {
    id: String,
    key: FileKey,
    public_key: PublicKey,
}

impl FileSigner {
    pub fn load(id: &str, path: &Path) -> Result<Self, KeyError> {
        let load_error =
            |reason: String| KeyError::Load { key: id.to_owned(), path: path.display().to_string(), reason };
        let pem = crate::local_file::read_text_capped(path, crate::local_file::SMALL_FILE_BYTES)
            .map(zeroize::Zeroizing::new)
            .map_err(|e| load_error(e.reason()))?;
        let (key, public_key) = if let Ok(k) = p256::ecdsa::SigningKey::from_pkcs8_pem(&pem) {
            (p256_for_ring(&k).map_err(load_error)?, PublicKey::from_p256(k.verifying_key()))
        } else if let Ok(k) = ed25519_dalek::SigningKey::from_pkcs8_pem(&pem) {
            let public_key = PublicKey::from_ed25519(&k.verifying_key());
            (FileKey::Ed25519(k), public_key)
        } else {
            return Err(load_error("not a PKCS#8 PEM ECDSA P-256 or Ed25519 private key".into()));
        };
        Ok(Self { id: id.to_owned(), key, public_key })
    }
}

/// `key` as ring's key pair: re-encoded as PKCS#8 by `p256` (with its public key, which ring checks against
/// the private scalar), so whatever `p256` reads, ring reads.
fn p256_for_ring(key: &p256::ecdsa::SigningKey) -> Result<FileKey, String> {
    let unreadable = || "an ECDSA P-256 key ring cannot use".to_owned();
    let der = key.to_pkcs8_der().map_err(|_| unreadable())?;
    let rng = SystemRandom::new();
    let pair =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, der.as_bytes(), &rng).map_err(|_| unreadable())?;
    Ok(FileKey::P256(pair, rng))
}

#[async_trait]
impl Signer for FileSigner {
    fn backend(&self) -> &'static str {
        "file"
    }

    async fn versions(&self) -> Result<Vec<KeyVersion>, KeyError> {
        Ok(vec![KeyVersion { version: 1, public_key: self.public_key.clone() }])
    }

    async fn sign(&self, version: Option<u32>, message: &[u8]) -> Result<Signature, KeyError> {
        if let Some(v) = version.filter(|v| *v != 1) {
            return Err(KeyError::UnknownVersion { key: self.id.clone(), version: v });
        }
        let bytes = match &self.key {
            FileKey::P256(pair, rng) => pair
                .sign(rng, message)
                .map_err(|_| KeyError::Backend {
                    backend: "file",
                    key: self.id.clone(),
                    reason: "signing failed".into(),
                })?
                .as_ref()
                .to_vec(),
            FileKey::Ed25519(k) => ed25519_dalek::Signer::sign(k, message).to_bytes().to_vec(),
        };
        Ok(Signature { bytes, version: 1 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::Algorithm;

    fn example(name: &str) -> FileSigner {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("keys.example").join(name);
        FileSigner::load("k", &path).unwrap()
    }

    #[tokio::test]
    async fn example_keys_sign_what_their_public_keys_verify() {
        for (file, algorithm) in
            [("dev-ecdsa.pem", Algorithm::EcdsaP256Sha256), ("dev-ed25519.pem", Algorithm::Ed25519)]
        {
            let signer = example(file);
            let public = signer.versions().await.unwrap().remove(0).public_key;
            assert_eq!(public.algorithm, algorithm);
            let sig = signer.sign(None, b"payload").await.unwrap();
            public.verify(b"payload", &sig.bytes).unwrap();
            assert!(public.verify(b"payloaD", &sig.bytes).is_err());
            assert!(signer.sign(Some(2), b"payload").await.is_err());
        }
    }

    #[tokio::test]
    async fn ecdsa_signatures_are_der_and_each_one_fresh() {
        let signer = example("dev-ecdsa.pem");
        let (a, b) = (signer.sign(None, b"payload").await.unwrap(), signer.sign(None, b"payload").await.unwrap());
        p256::ecdsa::Signature::from_der(&a.bytes).expect("ASN.1 DER, as cosign writes");
        assert_ne!(a.bytes, b.bytes, "a fresh nonce each time");
    }

    #[test]
    fn a_file_that_is_not_a_key_is_a_load_error_without_its_contents() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.pem");
        std::fs::write(&path, "secret-looking-bytes").unwrap();
        let err = FileSigner::load("k", &path).err().unwrap().to_string();
        assert!(!err.contains("secret-looking-bytes"), "{err}");
    }

    #[test]
    fn an_oversized_key_file_is_refused_unread_naming_it() {
        let (_dir, path) = crate::local_file::sparse_file("k.pem", crate::local_file::SMALL_FILE_BYTES + 1);
        let err = FileSigner::load("k", &path).err().unwrap().to_string();
        assert!(err.contains(&path.display().to_string()) && err.contains("larger than the limit"), "{err}");
    }
}
