//! Verifying keys of trust anchors and signers: ECDSA P-256/P-384/P-521 (SHA-256/384/512), Ed25519, RSA PKCS#1 v1.5 and
//! RSASSA-PSS (Notary Project signatures),
//! read from DER SubjectPublicKeyInfo, as Sigstore trusted roots and X.509 certificates carry them.
//!
//! Owns: reading a key and checking one signature with it, over a message or over a digest already taken.
//! ECDSA signatures are ASN.1 DER (what Fulcio, Rekor, CT logs, TSAs and cosign write). Must not touch:
//! which key is trusted for what (trusted roots, certificates, policies decide).

use p256::pkcs8::DecodePublicKey as _;
use p256::pkcs8::der::Decode as _;
use rsa::pkcs1::DecodeRsaPublicKey as _;
use sha2::Digest as _;

use super::PkiError;
use crate::keys::PublicKey;

/// A digest algorithm a signature scheme hashes the message with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashAlgorithm {
    Sha256,
    Sha384,
    Sha512,
}

impl HashAlgorithm {
    pub fn digest(self, message: &[u8]) -> Vec<u8> {
        match self {
            Self::Sha256 => sha2::Sha256::digest(message).to_vec(),
            Self::Sha384 => sha2::Sha384::digest(message).to_vec(),
            Self::Sha512 => sha2::Sha512::digest(message).to_vec(),
        }
    }

    pub fn output_len(self) -> usize {
        match self {
            Self::Sha256 => 32,
            Self::Sha384 => 48,
            Self::Sha512 => 64,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sha256 => "SHA-256",
            Self::Sha384 => "SHA-384",
            Self::Sha512 => "SHA-512",
        }
    }

    /// The DER DigestInfo prefix PKCS#1 v1.5 puts before the digest (RFC 8017 §9.2, note 1).
    fn pkcs1_prefix(self) -> &'static [u8] {
        match self {
            Self::Sha256 => &[
                0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00,
                0x04, 0x20,
            ],
            Self::Sha384 => &[
                0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00,
                0x04, 0x30,
            ],
            Self::Sha512 => &[
                0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00,
                0x04, 0x40,
            ],
        }
    }
}

/// The family of a key; with a hash it makes the signature scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFamily {
    Ecdsa,
    Ed25519,
    Rsa,
}

#[derive(Debug, Clone)]
enum Inner {
    P256(p256::ecdsa::VerifyingKey),
    P384(p384::ecdsa::VerifyingKey),
    P521(p521::ecdsa::VerifyingKey),
    Ed25519(ed25519_dalek::VerifyingKey),
    Rsa(rsa::RsaPublicKey),
}

/// A public key and the signature scheme it is used with.
#[derive(Debug, Clone)]
pub struct VerifyingKey {
    spki_der: Vec<u8>,
    inner: Inner,
}

impl PartialEq for VerifyingKey {
    fn eq(&self, other: &Self) -> bool {
        self.spki_der == other.spki_der
    }
}

impl Eq for VerifyingKey {}

const OID_EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
const OID_P256: &str = "1.2.840.10045.3.1.7";
const OID_P384: &str = "1.3.132.0.34";
const OID_P521: &str = "1.3.132.0.35";
const OID_ED25519: &str = "1.3.101.112";
const OID_RSA: &str = "1.2.840.113549.1.1.1";

/// Larger keys are refused (verifying with them costs too much for an attacker-chosen input).
const MAX_RSA_BITS: usize = 4096;
const MIN_RSA_BITS: usize = 2048;

impl VerifyingKey {
    /// Reads a DER SubjectPublicKeyInfo; refuses an algorithm or curve this module cannot verify with.
    pub fn from_spki_der(spki_der: &[u8]) -> Result<Self, PkiError> {
        let spki = p256::pkcs8::spki::SubjectPublicKeyInfoRef::from_der(spki_der)
            .map_err(|e| PkiError::Key(format!("not a DER SubjectPublicKeyInfo: {e}")))?;
        let algorithm = spki.algorithm.oid.to_string();
        let inner = match algorithm.as_str() {
            OID_EC_PUBLIC_KEY => {
                let curve = spki
                    .algorithm
                    .parameters_oid()
                    .map_err(|_| PkiError::Key("EC key without a named curve".into()))?
                    .to_string();
                match curve.as_str() {
                    OID_P256 => Inner::P256(p256::ecdsa::VerifyingKey::from_public_key_der(spki_der).map_err(bad_key)?),
                    OID_P384 => Inner::P384(p384::ecdsa::VerifyingKey::from_public_key_der(spki_der).map_err(bad_key)?),
                    OID_P521 => Inner::P521(p521::ecdsa::VerifyingKey::from_public_key_der(spki_der).map_err(bad_key)?),
                    other => return Err(PkiError::Key(format!("unsupported EC curve {other}"))),
                }
            }
            OID_ED25519 => Inner::Ed25519(ed25519_dalek::VerifyingKey::from_public_key_der(spki_der).map_err(bad_key)?),
            OID_RSA => Inner::Rsa(rsa_key(spki.subject_public_key.raw_bytes())?),
            other => return Err(PkiError::Key(format!("unsupported key algorithm {other}"))),
        };
        Ok(Self { spki_der: spki_der.to_vec(), inner })
    }

    /// Reads a bare PKCS#1 RSAPublicKey (how trusted roots give `PKCS1_RSA_PKCS1V5` keys).
    pub fn from_pkcs1_rsa_der(pkcs1_der: &[u8]) -> Result<Self, PkiError> {
        use rsa::pkcs8::EncodePublicKey as _;
        let key = rsa_key(pkcs1_der)?;
        let spki_der = key.to_public_key_der().map_err(bad_key)?.into_vec();
        Ok(Self { spki_der, inner: Inner::Rsa(key) })
    }

    /// The key of a `--key` PEM or a policy's key authority.
    pub fn from_public_key(key: &PublicKey) -> Result<Self, PkiError> {
        Self::from_spki_der(key.spki_der())
    }

    /// Reads a `PUBLIC KEY` PEM of any supported algorithm (`keys::PublicKey` reads P-256 and Ed25519 only).
    pub fn from_pem(pem: &str) -> Result<Self, PkiError> {
        let (label, der) =
            p256::pkcs8::Document::from_pem(pem).map_err(|e| PkiError::Key(format!("not a PEM: {e}")))?;
        if label != "PUBLIC KEY" {
            return Err(PkiError::Key(format!("PEM label {label:?} is not PUBLIC KEY")));
        }
        Self::from_spki_der(der.as_bytes())
    }

    pub fn spki_der(&self) -> &[u8] {
        &self.spki_der
    }

    /// SHA-256 of the DER SubjectPublicKeyInfo: the log id of Rekor v1 and CT logs.
    pub fn key_id(&self) -> [u8; 32] {
        sha2::Sha256::digest(&self.spki_der).into()
    }

    pub fn family(&self) -> KeyFamily {
        match self.inner {
            Inner::P256(_) | Inner::P384(_) | Inner::P521(_) => KeyFamily::Ecdsa,
            Inner::Ed25519(_) => KeyFamily::Ed25519,
            Inner::Rsa(_) => KeyFamily::Rsa,
        }
    }

    /// A short name of the key type, for reasons.
    pub fn describe(&self) -> &'static str {
        match self.inner {
            Inner::P256(_) => "ECDSA P-256",
            Inner::P384(_) => "ECDSA P-384",
            Inner::P521(_) => "ECDSA P-521",
            Inner::Ed25519(_) => "Ed25519",
            Inner::Rsa(_) => "RSA",
        }
    }

    /// The hash the key's usual scheme takes: SHA-256 for P-256 and RSA, SHA-384 for P-384, SHA-512 for
    /// P-521; `None` for
    /// Ed25519, which signs the whole message.
    pub fn default_hash(&self) -> Option<HashAlgorithm> {
        match self.inner {
            Inner::P256(_) | Inner::Rsa(_) => Some(HashAlgorithm::Sha256),
            Inner::P384(_) => Some(HashAlgorithm::Sha384),
            Inner::P521(_) => Some(HashAlgorithm::Sha512),
            Inner::Ed25519(_) => None,
        }
    }

    /// Checks `signature` over `message` (hashed by the scheme: SHA-256 for P-256, SHA-384 for P-384, …).
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), PkiError> {
        match (&self.inner, self.default_hash()) {
            (Inner::Ed25519(key), _) => verify_ed25519(key, message, signature),
            (_, Some(hash)) => self.verify_digest(hash, &hash.digest(message), signature),
            (_, None) => Err(PkiError::Signature("no hash for this key".into())),
        }
    }

    /// Checks `signature` over `message` hashed with `hash` (what an X.509 or CMS signature algorithm names:
    /// a P-256 CA may sign with ECDSA-SHA-384). Ed25519 ignores `hash`.
    pub fn verify_with_hash(&self, hash: HashAlgorithm, message: &[u8], signature: &[u8]) -> Result<(), PkiError> {
        match &self.inner {
            Inner::Ed25519(key) => verify_ed25519(key, message, signature),
            _ => self.verify_digest(hash, &hash.digest(message), signature),
        }
    }

    /// The RSA modulus size in bits; `None` for other keys.
    pub fn rsa_bits(&self) -> Option<usize> {
        use rsa::traits::PublicKeyParts as _;
        match &self.inner {
            Inner::Rsa(key) => Some(key.size() * 8),
            _ => None,
        }
    }

    /// Checks an RSASSA-PSS `signature` over `message` hashed with `hash` (MGF1 with the same hash, salt as
    /// long as the hash: what the Notary Project's PS256/PS384/PS512 mean). Only RSA keys.
    pub fn verify_pss(&self, hash: HashAlgorithm, message: &[u8], signature: &[u8]) -> Result<(), PkiError> {
        use rsa::sha2::{Sha256, Sha384, Sha512};
        let Inner::Rsa(key) = &self.inner else {
            return Err(PkiError::Signature(format!("a {} key cannot check an RSASSA-PSS signature", self.describe())));
        };
        let digest = hash.digest(message);
        let scheme = match hash {
            HashAlgorithm::Sha256 => rsa::Pss::new::<Sha256>(),
            HashAlgorithm::Sha384 => rsa::Pss::new::<Sha384>(),
            HashAlgorithm::Sha512 => rsa::Pss::new::<Sha512>(),
        };
        key.verify(scheme, &digest, signature)
            .map_err(|_| PkiError::Signature("RSASSA-PSS signature does not verify".into()))
    }

    /// Checks `signature` over a message known only by its `digest` (a hashedrekord artifact given as
    /// `sha256:<hex>`). Ed25519 signs whole messages, so it cannot be verified this way.
    pub fn verify_digest(&self, hash: HashAlgorithm, digest: &[u8], signature: &[u8]) -> Result<(), PkiError> {
        use p256::ecdsa::signature::hazmat::PrehashVerifier as _;
        if digest.len() != hash.output_len() {
            return Err(PkiError::Signature(format!("a {} digest has {} bytes", hash.as_str(), hash.output_len())));
        }
        let verified = match &self.inner {
            Inner::P256(key) => {
                let sig = p256::ecdsa::Signature::from_der(signature).map_err(|_| bad_encoding())?;
                key.verify_prehash(digest, &sig).is_ok()
            }
            Inner::P384(key) => {
                let sig = p384::ecdsa::Signature::from_der(signature).map_err(|_| bad_encoding())?;
                key.verify_prehash(digest, &sig).is_ok()
            }
            Inner::P521(key) => {
                let sig = p521::ecdsa::Signature::from_der(signature).map_err(|_| bad_encoding())?;
                key.verify_prehash(digest, &sig).is_ok()
            }
            Inner::Rsa(key) => {
                let scheme =
                    rsa::Pkcs1v15Sign { hash_len: Some(hash.output_len()), prefix: hash.pkcs1_prefix().into() };
                key.verify(scheme, digest, signature).is_ok()
            }
            Inner::Ed25519(_) => {
                return Err(PkiError::Signature(
                    "an Ed25519 signature cannot be checked against a digest alone".into(),
                ));
            }
        };
        if verified {
            Ok(())
        } else {
            Err(PkiError::Signature(format!("{} signature does not verify", self.describe())))
        }
    }
}

fn verify_ed25519(key: &ed25519_dalek::VerifyingKey, message: &[u8], signature: &[u8]) -> Result<(), PkiError> {
    let sig = ed25519_dalek::Signature::from_slice(signature).map_err(|_| bad_encoding())?;
    key.verify_strict(message, &sig).map_err(|_| PkiError::Signature("Ed25519 signature does not verify".into()))
}

fn rsa_key(pkcs1_der: &[u8]) -> Result<rsa::RsaPublicKey, PkiError> {
    use rsa::traits::PublicKeyParts as _;
    let key = rsa::RsaPublicKey::from_pkcs1_der(pkcs1_der).map_err(bad_key)?;
    let bits = key.size() * 8;
    if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
        return Err(PkiError::Key(format!("RSA key of {bits} bits (accepted: {MIN_RSA_BITS} to {MAX_RSA_BITS})")));
    }
    Ok(key)
}

fn bad_key(e: impl std::fmt::Display) -> PkiError {
    PkiError::Key(format!("malformed public key: {e}"))
}

fn bad_encoding() -> PkiError {
    PkiError::Signature("signature is not correctly encoded".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use p256::ecdsa::signature::Signer as _;
    use p256::pkcs8::EncodePublicKey as _;

    fn b64(s: &str) -> Vec<u8> {
        base64::engine::general_purpose::STANDARD.decode(s).unwrap()
    }

    #[test]
    fn p256_verifies_der_signatures_over_messages_and_digests_and_refuses_others() {
        let signer = p256::ecdsa::SigningKey::from_slice(&[7; 32]).unwrap();
        let spki = signer.verifying_key().to_public_key_der().unwrap();
        let key = VerifyingKey::from_spki_der(spki.as_bytes()).unwrap();
        let sig: p256::ecdsa::Signature = signer.sign(b"hello");
        let der = sig.to_der();
        key.verify(b"hello", der.as_bytes()).unwrap();
        key.verify_digest(HashAlgorithm::Sha256, &HashAlgorithm::Sha256.digest(b"hello"), der.as_bytes()).unwrap();
        assert!(key.verify(b"hellO", der.as_bytes()).is_err());
        // raw r‖s is refused, as cosign refuses it
        assert!(key.verify(b"hello", &sig.to_bytes()).is_err());
        // a digest of the wrong length is refused before any arithmetic
        assert!(key.verify_digest(HashAlgorithm::Sha256, &[0; 48], der.as_bytes()).is_err());
        assert_eq!(key.key_id().to_vec(), HashAlgorithm::Sha256.digest(spki.as_bytes()));
    }

    #[test]
    fn p384_uses_sha384_and_ed25519_cannot_check_a_digest() {
        let signer = p384::ecdsa::SigningKey::from_slice(&[9; 48]).unwrap();
        let key = VerifyingKey::from_spki_der(signer.verifying_key().to_public_key_der().unwrap().as_bytes()).unwrap();
        let sig: p384::ecdsa::Signature = signer.sign(b"m");
        key.verify(b"m", sig.to_der().as_bytes()).unwrap();
        assert!(key.verify_with_hash(HashAlgorithm::Sha256, b"m", sig.to_der().as_bytes()).is_err());

        let ed = ed25519_dalek::SigningKey::from_bytes(&[3; 32]);
        let key = VerifyingKey::from_spki_der(ed.verifying_key().to_public_key_der().unwrap().as_bytes()).unwrap();
        let sig = ed25519_dalek::Signer::sign(&ed, b"m").to_bytes();
        key.verify(b"m", &sig).unwrap();
        assert!(key.verify(b"n", &sig).is_err());
        assert!(key.verify_digest(HashAlgorithm::Sha256, &[0; 32], &sig).is_err());
    }

    #[test]
    fn p521_verifies_sha512_signatures_and_refuses_a_changed_message() {
        // A P-521 scalar has 521 bits: the first of its 66 bytes is at most 1.
        let mut scalar = [5; 66];
        scalar[0] = 0;
        let signer = p521::ecdsa::SigningKey::from_slice(&scalar).unwrap();
        let key = VerifyingKey::from_spki_der(signer.verifying_key().to_public_key_der().unwrap().as_bytes()).unwrap();
        assert_eq!((key.describe(), key.default_hash()), ("ECDSA P-521", Some(HashAlgorithm::Sha512)));
        let digest = HashAlgorithm::Sha512.digest(b"m");
        let sig: p521::ecdsa::Signature =
            p256::ecdsa::signature::hazmat::PrehashSigner::sign_prehash(&signer, &digest).unwrap();
        let der = sig.to_der();
        key.verify(b"m", der.as_bytes()).unwrap();
        key.verify_digest(HashAlgorithm::Sha512, &digest, der.as_bytes()).unwrap();
        assert!(key.verify(b"n", der.as_bytes()).is_err());
        assert!(key.verify_with_hash(HashAlgorithm::Sha384, b"m", der.as_bytes()).is_err());
    }

    #[test]
    fn reads_every_key_of_the_public_good_trusted_roots_including_rsa_ct_logs() {
        let mut families = Vec::new();
        for file in ["production-trusted_root.json", "staging-trusted_root.json"] {
            let path = format!("{}/tests/fixtures/third-party/sigstore-conformance/{file}", env!("CARGO_MANIFEST_DIR"));
            let root: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
            for list in ["tlogs", "ctlogs"] {
                for log in root[list].as_array().unwrap() {
                    let raw = b64(log["publicKey"]["rawBytes"].as_str().unwrap());
                    let key = if log["publicKey"]["keyDetails"].as_str().unwrap().starts_with("PKCS1_RSA") {
                        VerifyingKey::from_pkcs1_rsa_der(&raw).unwrap()
                    } else {
                        VerifyingKey::from_spki_der(&raw).unwrap()
                    };
                    families.push(key.family());
                }
            }
        }
        for family in [KeyFamily::Ecdsa, KeyFamily::Ed25519, KeyFamily::Rsa] {
            assert!(families.contains(&family), "{family:?}");
        }
    }

    #[test]
    fn the_conformance_managed_key_reads_from_pem_and_from_a_keys_public_key() {
        let pem = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/third-party/sigstore-conformance/bundle-verify/managed-key-happy-path/key.pub"
        ))
        .unwrap();
        let key = VerifyingKey::from_pem(&pem).unwrap();
        let public = PublicKey::from_pem(&pem).unwrap();
        assert_eq!(VerifyingKey::from_public_key(&public).unwrap(), key);
        assert_eq!(key.describe(), "ECDSA P-256");
    }

    #[test]
    fn refuses_garbage_and_unsupported_curves() {
        assert!(VerifyingKey::from_spki_der(b"not der").is_err());
        // secp256k1 SPKI: id-ecPublicKey with curve 1.3.132.0.10
        let k1 = b64(
            "MFYwEAYHKoZIzj0CAQYFK4EEAAoDQgAEoBUyo8CQAFPeYPvv78ylh5MwFZjTCLQeb042TjiMJxG+9DLFmRSMlBQ9T/RsLLc+PmpB1+7yPAR+oR5gZn3kJQ==",
        );
        let err = VerifyingKey::from_spki_der(&k1).unwrap_err();
        assert!(err.to_string().contains("unsupported EC curve"), "{err}");
    }
}
