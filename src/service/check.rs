//! Reading the signatures on a digest back and checking each against a public key: the reader that must
//! accept what cosign and skopeo write, and refuse what they would refuse.

use crate::formats::Digest;
use crate::formats::simple_signing::SimpleSigning;
use crate::keys::PublicKey;
use crate::oci::FoundSignature;

/// One signature layer and what checking it found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedSignature {
    /// The payload's `docker-reference`, when the payload parses.
    pub identity: Option<String>,
    /// Ok when the signature verifies with the key and the payload names the digest.
    pub result: Result<(), String>,
}

/// Checks every stored signature against `key` and `digest` (no replay of another image's signature).
pub fn check_signatures(signatures: &[FoundSignature], digest: &Digest, key: &PublicKey) -> Vec<CheckedSignature> {
    signatures
        .iter()
        .map(|s| {
            let payload = SimpleSigning::parse(&s.payload);
            let identity = payload.as_ref().ok().map(|p| p.identity().to_owned());
            let result = match payload {
                Err(e) => Err(e.to_string()),
                Ok(p) if p.digest() != digest.as_str() => {
                    Err(format!("payload names {} instead of {digest}", p.digest()))
                }
                Ok(_) => key.verify(&s.payload, &s.signature).map_err(|e| e.to_string()),
            };
            CheckedSignature { identity, result }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/third-party");

    fn fixture_signature(tool: &str) -> (FoundSignature, Digest, PublicKey) {
        use crate::formats::signature_manifest::SignatureManifest;
        let read = |f: &str| std::fs::read(format!("{FIXTURES}/{tool}/{f}")).unwrap();
        let manifest = SignatureManifest::parse(&read("sig-manifest.json")).unwrap();
        let layer = manifest.signature_layers().next().unwrap();
        let stored = FoundSignature {
            payload: read("simplesigning-payload.json"),
            signature: layer.signature().unwrap(),
            sigstore: Default::default(),
        };
        let digest = Digest::parse(String::from_utf8(read("image-digest.txt")).unwrap().trim()).unwrap();
        let key = PublicKey::from_pem(&String::from_utf8(read("signer.pub")).unwrap()).unwrap();
        (stored, digest, key)
    }

    #[test]
    fn accepts_signatures_cosign_and_skopeo_wrote() {
        for tool in ["cosign-2.5", "skopeo-1.18"] {
            let (stored, digest, key) = fixture_signature(tool);
            let checked = check_signatures(&[stored], &digest, &key);
            assert_eq!(checked[0].result, Ok(()), "{tool}");
        }
    }

    #[test]
    fn refuses_a_signature_replayed_onto_another_digest_or_checked_with_another_key() {
        let (stored, _, key) = fixture_signature("cosign-2.5");
        let (_, other_digest, _) = fixture_signature("skopeo-1.18");
        let replayed = check_signatures(std::slice::from_ref(&stored), &other_digest, &key);
        assert!(replayed[0].result.as_ref().unwrap_err().contains("instead of"));
        let (_, digest, _) = fixture_signature("cosign-2.5");
        let other_key = PublicKey::from_pem(
            &String::from_utf8(
                std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/other-ed25519.pub")).unwrap(),
            )
            .unwrap(),
        )
        .unwrap();
        assert!(check_signatures(&[stored], &digest, &other_key)[0].result.is_err());
    }
}
