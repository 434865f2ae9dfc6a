//! The Notary Project tools of the test setup, driven as the other areas drive them: notation 1.3.2 signs an
//! image in a real registry with a `notation cert generate-test` key (JWS and COSE), verifies it under a trust
//! policy naming the key's store and refuses it under another store; oras 1.3.3 lists both signatures as
//! referrers with the chain thumbprint annotation.

use crate::support;

use support::{Notation, Registry, oras_discover, push_image};

const NOTARY_SIGNATURE: &str = "application/vnd.cncf.notary.signature";
const THUMBPRINTS: &str = "io.cncf.notary.x509chain.thumbprint#S256";

#[test]
fn notation_signs_and_verifies_and_oras_lists_the_signatures() {
    let registry = Registry::start();
    let digest = push_image(&registry, "tools/app", "v1", "notation tools");
    let image = format!("{}/tools/app@{digest}", registry.host);
    let notation = Notation::new();
    let (key, cert) = notation.generate_test("test.example");
    // The same key under a second name, through the key list file.
    notation.add_key("again", &key, &cert);
    assert!(notation.config_dir().join("signingkeys.json").exists());

    let (signed, out) = notation.sign(&image, "test.example", &[]);
    assert!(signed, "{out}");
    let (signed, out) = notation.sign(&image, "again", &["--signature-format", "cose", "-e", "1h"]);
    assert!(signed, "{out}");

    notation.write_trust_policy("strict", &["ca:test.example"], &["*"]);
    let (accepted, out) = notation.verify(&image);
    assert!(accepted, "{out}");

    // Another store holding another certificate: refused.
    let other = Notation::new();
    let (_, other_cert) = other.generate_test("other.example");
    notation.add_trusted_cert("ca", "other", &other_cert);
    notation.write_trust_policy("strict", &["ca:other"], &["*"]);
    let (accepted, out) = notation.verify(&image);
    assert!(!accepted, "verified under a store without its certificate: {out}");

    let referrers = oras_discover(&image);
    let signatures: Vec<_> = referrers.iter().filter(|r| r.artifact_type == NOTARY_SIGNATURE).collect();
    assert_eq!(signatures.len(), 2, "{referrers:?}");
    for signature in signatures {
        assert_eq!(signature.media_type, "application/vnd.oci.image.manifest.v1+json");
        assert!(signature.digest.starts_with("sha256:"));
        let thumbprints: Vec<String> =
            serde_json::from_str(signature.annotations[THUMBPRINTS].as_str().unwrap()).unwrap();
        assert_eq!(thumbprints.len(), 1);
    }
}
