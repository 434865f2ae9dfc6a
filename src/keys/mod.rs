//! Signing keys behind one small trait, [`Signer`], with one backend per file.
//!
//! Owns: turning a key reference (`id` or `id@version`) into a signature and public keys. Must not
//! touch: HTTP, the registry or the database. Private key material never crosses the trait: a backend
//! returns signatures and public keys only, and its errors never carry a secret.

mod certificates;
mod file;
mod pkcs11;
mod public_key;
mod secret;
mod vault;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;

pub use certificates::{CertificateChain, pem_certificate};
pub use file::FileSigner;
pub use pkcs11::{Pkcs11Settings, Pkcs11Signer};
pub use public_key::PublicKey;
pub use secret::SecretRef;
pub use vault::{VaultAuth, VaultSettings, VaultSigner};

/// Signature algorithms notarium signs and verifies with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Algorithm {
    /// ECDSA over P-256 with SHA-256; signatures are ASN.1 DER (what cosign writes).
    #[serde(rename = "ecdsa-p256-sha256")]
    EcdsaP256Sha256,
    /// Pure Ed25519 over the whole message.
    #[serde(rename = "ed25519")]
    Ed25519,
}

impl Algorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EcdsaP256Sha256 => "ecdsa-p256-sha256",
            Self::Ed25519 => "ed25519",
        }
    }
}

/// One version of a key: what verifiers need to check signatures made with it.
#[derive(Debug, Clone)]
pub struct KeyVersion {
    pub version: u32,
    pub public_key: PublicKey,
}

/// A signature and the key version that made it.
#[derive(Debug, Clone)]
pub struct Signature {
    pub bytes: Vec<u8>,
    pub version: u32,
}

/// A key held by some backend. Implementations must be cheap to call concurrently.
#[async_trait]
pub trait Signer: Send + Sync {
    /// The backend's name as configuration spells it (`file`, `pkcs11`, `vault`).
    fn backend(&self) -> &'static str;

    /// Every version of the key, oldest first, so signatures made before a rotation keep verifying.
    async fn versions(&self) -> Result<Vec<KeyVersion>, KeyError>;

    /// Signs `message` with `version`, or with the latest version when `None`.
    async fn sign(&self, version: Option<u32>, message: &[u8]) -> Result<Signature, KeyError>;
}

/// What went wrong with a key. Messages name the key and cause, never secret material.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("unknown key {0:?}")]
    UnknownKey(String),
    #[error("key reference {0:?} is malformed: write it as ID or ID@VERSION")]
    MalformedReference(String),
    #[error("key {key:?} has no version {version}")]
    UnknownVersion { key: String, version: u32 },
    #[error("key {key:?} could not be loaded from {path}: {reason}")]
    Load { key: String, path: String, reason: String },
    #[error("public key is not a supported ECDSA P-256 or Ed25519 SubjectPublicKeyInfo: {0}")]
    UnsupportedPublicKey(String),
    #[error("signature does not verify")]
    BadSignature,
    #[error("{backend} backend, key {key:?}: {reason}")]
    Backend { backend: &'static str, key: String, reason: String },
    #[error(
        "key {0:?} is the register's checkpoint key ([log] key): it signs checkpoints only, never images or \
         attestations"
    )]
    Reserved(String),
    #[error("key {0:?} is the certificate authority's key ([ca] key): it signs certificates only, never images")]
    ReservedForCa(String),
}

/// A key reference as clients write it: `id` (latest version) or `id@N`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRef {
    pub id: String,
    pub version: Option<u32>,
}

impl KeyRef {
    pub fn parse(s: &str) -> Result<Self, KeyError> {
        let malformed = || KeyError::MalformedReference(s.to_owned());
        let (id, version) = match s.split_once('@') {
            Some((id, v)) => (id, Some(v.parse::<u32>().map_err(|_| malformed())?)),
            None => (s, None),
        };
        let id_ok = !id.is_empty()
            && id.len() <= 128
            && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !id_ok {
            return Err(malformed());
        }
        Ok(Self { id: id.to_owned(), version })
    }
}

/// The configured keys by id, and the one reserved for the register's checkpoints.
#[derive(Clone, Default)]
pub struct KeyRing {
    keys: BTreeMap<String, Arc<dyn Signer>>,
    checkpoint_key: Option<String>,
    ca_key: Option<String>,
    certificates: certificates::Certificates,
}

impl KeyRing {
    pub fn insert(&mut self, id: impl Into<String>, signer: Arc<dyn Signer>) {
        self.keys.insert(id.into(), signer);
    }

    /// Reserves key `id` for checkpoints: [`Self::image_signer`] refuses it. A key that signs both
    /// checkpoints and images would let whoever may sign images also vouch for the register, and the
    /// reverse.
    pub fn reserve_for_checkpoints(&mut self, id: impl Into<String>) {
        self.checkpoint_key = Some(id.into());
    }

    /// Reserves key `id` for issuing certificates (`[ca] key`): [`Self::image_signer`] refuses it, so a
    /// certificate authority's key never signs an image with its CA certificate as if it were a leaf.
    pub fn reserve_for_ca(&mut self, id: impl Into<String>) {
        self.ca_key = Some(id.into());
    }

    /// The id of the key reserved for the certificate authority, if any.
    pub fn ca_key(&self) -> Option<&str> {
        self.ca_key.as_deref()
    }

    /// The id of the key reserved for checkpoints, if any.
    pub fn checkpoint_key(&self) -> Option<&str> {
        self.checkpoint_key.as_deref()
    }

    /// Any key by id, the checkpoint key too (checkpoints, public keys, policy authorities).
    pub fn get(&self, id: &str) -> Result<&Arc<dyn Signer>, KeyError> {
        self.keys.get(id).ok_or_else(|| KeyError::UnknownKey(id.to_owned()))
    }

    /// The key that signs an image or an attestation: any but the checkpoint key.
    pub fn image_signer(&self, id: &str) -> Result<&Arc<dyn Signer>, KeyError> {
        if self.checkpoint_key() == Some(id) {
            return Err(KeyError::Reserved(id.to_owned()));
        }
        if self.ca_key() == Some(id) {
            return Err(KeyError::ReservedForCa(id.to_owned()));
        }
        self.get(id)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &Arc<dyn Signer>)> {
        self.keys.iter()
    }

    /// The public key of `reference`'s version (latest when unnamed).
    pub async fn public_key(&self, reference: &KeyRef) -> Result<KeyVersion, KeyError> {
        let versions = self.get(&reference.id)?.versions().await?;
        let found = match reference.version {
            Some(v) => versions.into_iter().find(|k| k.version == v),
            None => versions.into_iter().max_by_key(|k| k.version),
        };
        found.ok_or_else(|| KeyError::UnknownVersion {
            key: reference.id.clone(),
            version: reference.version.unwrap_or(0),
        })
    }

    /// The X.509 chain of key `id`'s `version` (leaf first, ending with the root), if it has one: from
    /// `[[keys]] certificate_chain` or issued by `[ca]`. Every clone of the ring sees the same chains.
    pub fn certificate_chain(&self, id: &str, version: u32) -> Option<Arc<CertificateChain>> {
        self.certificates.get(id, version)
    }

    /// The version `reference` names (latest when unnamed) and its chain, if any: what a Notary Project
    /// signature needs before signing (the chain goes into the signed header; sign with that version).
    pub async fn signing_chain(&self, reference: &KeyRef) -> Result<(u32, Option<Arc<CertificateChain>>), KeyError> {
        let version = self.public_key(reference).await?.version;
        Ok((version, self.certificate_chain(&reference.id, version)))
    }

    /// Records `chain` as the certificate chain of key `id`'s `version`, replacing any earlier one (a
    /// renewal). The caller has validated it against the version's public key.
    pub fn set_certificate_chain(&self, id: &str, version: u32, chain: CertificateChain) {
        self.certificates.set(id, version, chain);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_references_name_an_id_and_optionally_a_version() {
        assert_eq!(KeyRef::parse("prod").unwrap(), KeyRef { id: "prod".into(), version: None });
        assert_eq!(KeyRef::parse("prod@2").unwrap().version, Some(2));
        for bad in ["", "prod@", "prod@x", "a b", "@1"] {
            assert!(KeyRef::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_checkpoint_key_signs_no_image() {
        let mut ring = KeyRing::default();
        for id in ["dev-ed25519", "dev-log"] {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("keys.example/{id}.pem"));
            ring.insert(id, Arc::new(FileSigner::load(id, &path).unwrap()));
        }
        ring.reserve_for_checkpoints("dev-log");
        assert_eq!(ring.checkpoint_key(), Some("dev-log"));
        assert!(ring.image_signer("dev-ed25519").is_ok());
        let refused = ring.image_signer("dev-log").err().unwrap().to_string();
        assert!(refused.contains("\"dev-log\" is the register's checkpoint key"), "{refused}");
        assert!(ring.get("dev-log").is_ok(), "checkpoints still reach it");
    }
}
