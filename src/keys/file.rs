//! The `file` backend: a PKCS#8 PEM private key on disk, for development and `keys.example/`.
//! It holds the key in process memory, which is exactly why production uses `pkcs11` or `vault`.

use std::path::Path;

use async_trait::async_trait;
use p256::pkcs8::DecodePrivateKey;

use super::{KeyError, KeyVersion, PublicKey, Signature, Signer};

enum FileKey {
    P256(p256::ecdsa::SigningKey),
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
        let key = if let Ok(k) = p256::ecdsa::SigningKey::from_pkcs8_pem(&pem) {
            FileKey::P256(k)
        } else if let Ok(k) = ed25519_dalek::SigningKey::from_pkcs8_pem(&pem) {
            FileKey::Ed25519(k)
        } else {
            return Err(load_error("not a PKCS#8 PEM ECDSA P-256 or Ed25519 private key".into()));
        };
        let public_key = match &key {
            FileKey::P256(k) => PublicKey::from_p256(k.verifying_key()),
            FileKey::Ed25519(k) => PublicKey::from_ed25519(&k.verifying_key()),
        };
        Ok(Self { id: id.to_owned(), key, public_key })
    }
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
        use p256::ecdsa::signature::Signer as _;
        if let Some(v) = version.filter(|v| *v != 1) {
            return Err(KeyError::UnknownVersion { key: self.id.clone(), version: v });
        }
        let bytes = match &self.key {
            FileKey::P256(k) => {
                let sig: p256::ecdsa::Signature = k.sign(message);
                sig.to_der().as_bytes().to_vec()
            }
            FileKey::Ed25519(k) => k.sign(message).to_bytes().to_vec(),
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
