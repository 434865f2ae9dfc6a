//! The Notary Project tools of the test setup, driven as the other areas drive them: notation 1.3.2 signs an
//! image in a real registry with a `notation cert generate-test` key (JWS and COSE), verifies it under a trust
//! policy naming the key's store and refuses it under another store; oras 1.3.3 lists both signatures as
//! referrers with the chain thumbprint annotation. Both ways with notarium's own code: `pki::verify_notary`
//! accepts what notation signs live (JWS and COSE, an openssl-made chain) and refuses it under another CA;
//! `notation verify` accepts a JWS built by `formats::notary` and stored as notarium stores referrers, and
//! refuses it under another CA.

use crate::support;

use std::path::Path;

use notarium::formats::Digest;
use notarium::formats::notary::{Algorithm, EnvelopeFormat, JwsClaims, JwsToSign, NotaryEnvelope};
use notarium::formats::referrer::{ReferrersIndex, referrers_tag};
use notarium::formats::signature_manifest::{Descriptor, OCI_INDEX, OCI_MANIFEST, SignatureManifest};
use notarium::pki::notary::{NotaryTrust, TrustStore, TrustStoreKind, verify_notary};
use support::{Notation, Registry, der_certificates, oras_discover, push_image};
use time::OffsetDateTime;

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

/// A root CA and a P-256 code-signing leaf under it, made with the `openssl` CLI in `dir`:
/// `root.pem`, `leaf.key` (PKCS#8), `leaf.pem`, `chain.pem` (leaf then root).
fn openssl_chain(dir: &Path, organization: &str) {
    let script = format!(
        r#"set -e
openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout root.key -out root.pem \
  -days 30 -subj "/C=US/ST=WA/O={organization}/CN=Test Root" \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout leaf.key -out leaf.csr \
  -subj "/C=US/ST=WA/L=Seattle/O={organization}/CN=signer" 2>/dev/null
printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=codeSigning\n' > leaf.ext
openssl x509 -req -in leaf.csr -CA root.pem -CAkey root.key -set_serial 7 -days 7 -extfile leaf.ext \
  -out leaf.pem 2>/dev/null
cat leaf.pem root.pem > chain.pem"#
    );
    let out = std::process::Command::new("bash").args(["-c", &script]).current_dir(dir).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

fn store(name: &str, root_pem: &Path) -> TrustStore {
    TrustStore { name: name.into(), kind: TrustStoreKind::Ca, certificates: der_certificates(root_pem) }
}

#[test]
fn notarium_verifies_what_notation_signs_live_in_both_envelopes() {
    let registry = Registry::start();
    let digest = push_image(&registry, "tools/live", "v1", "notation live");
    let image = format!("{}/tools/live@{digest}", registry.host);
    let pki = tempfile::tempdir().unwrap();
    openssl_chain(pki.path(), "Notarium Tests");
    let notation = Notation::new();
    notation.add_key("openssl", &pki.path().join("leaf.key"), &pki.path().join("chain.pem"));
    for format in ["jws", "cose"] {
        let (signed, out) = notation.sign(&image, "openssl", &["--signature-format", format, "-e", "2h"]);
        assert!(signed, "{out}");
    }
    let other = tempfile::tempdir().unwrap();
    openssl_chain(other.path(), "Someone Else");
    let (ours, theirs) = (store("tests", &pki.path().join("root.pem")), store("other", &other.path().join("root.pem")));
    let mut formats = Vec::new();
    for referrer in oras_discover(&image).iter().filter(|r| r.artifact_type == NOTARY_SIGNATURE) {
        let manifest = SignatureManifest::parse(&registry.manifest("tools/live", &referrer.digest).unwrap()).unwrap();
        let (format, layer) = manifest.notary_envelope_layer().unwrap();
        let envelope = NotaryEnvelope::parse(format.media_type(), &registry.blob("tools/live", &layer.digest)).unwrap();
        let now = OffsetDateTime::now_utc();
        let verified = verify_notary(&envelope, NotaryTrust { stores: std::slice::from_ref(&ours), crls: &[] }, now)
            .unwrap_or_else(|e| panic!("{format:?}: {e}"));
        assert_eq!(verified.target.digest, digest);
        assert_eq!(verified.subject, "C=US, ST=WA, L=Seattle, O=Notarium Tests, CN=signer");
        let refused = verify_notary(&envelope, NotaryTrust { stores: std::slice::from_ref(&theirs), crls: &[] }, now);
        assert!(refused.is_err(), "{format:?} verified under another CA");
        formats.push(format);
    }
    formats.sort_by_key(|f| f.media_type());
    assert_eq!(formats, [EnvelopeFormat::Cose, EnvelopeFormat::Jws]);
}

#[test]
fn notation_verifies_a_jws_built_by_notarium_and_refuses_it_under_another_ca() {
    use p256::ecdsa::signature::Signer as _;
    use p256::pkcs8::DecodePrivateKey as _;
    let registry = Registry::start();
    let digest = push_image(&registry, "tools/built", "v1", "notarium jws");
    let image = format!("{}/tools/built@{digest}", registry.host);
    let subject = Descriptor::for_blob(OCI_MANIFEST, &registry.manifest("tools/built", &digest).unwrap());
    let pki = tempfile::tempdir().unwrap();
    openssl_chain(pki.path(), "Notarium Tests");
    let key = p256::ecdsa::SigningKey::read_pkcs8_pem_file(pki.path().join("leaf.key")).unwrap();
    let chain = der_certificates(&pki.path().join("chain.pem"));

    let now = OffsetDateTime::now_utc();
    let claims = JwsClaims {
        target: &subject,
        algorithm: Algorithm::Es256,
        signing_time: now,
        expiry: Some(now + time::Duration::hours(1)),
    };
    let to_sign = JwsToSign::new(&claims).unwrap();
    let signature: p256::ecdsa::Signature = key.sign(&to_sign.signing_input());
    let envelope = to_sign.finish(&signature.to_bytes(), &chain, "notarium/test", None);
    let manifest = SignatureManifest::for_notary_signature(subject, EnvelopeFormat::Jws, &envelope, &chain, None);
    registry.put_blob("tools/built", envelope);
    registry.put_blob("tools/built", b"{}".to_vec());
    let manifest_bytes = manifest.to_json();
    let manifest_digest = support::sha256_digest(&manifest_bytes);
    registry.put_manifest("tools/built", &manifest_digest, OCI_MANIFEST, manifest_bytes.clone());
    // The registry has no referrers API: the fallback tag's index, as notation itself keeps it.
    let mut index = ReferrersIndex::empty();
    index.merge(&manifest_bytes).unwrap();
    let tag = referrers_tag(&Digest::parse(&digest).unwrap());
    registry.put_manifest("tools/built", &tag, OCI_INDEX, index.to_json());

    let notation = Notation::new();
    notation.add_trusted_cert("ca", "notarium", &pki.path().join("root.pem"));
    notation.write_trust_policy("strict", &["ca:notarium"], &["x509.subject: C=US, ST=WA, O=Notarium Tests"]);
    let (accepted, out) = notation.verify(&image);
    assert!(accepted, "{out}");

    let other = tempfile::tempdir().unwrap();
    openssl_chain(other.path(), "Someone Else");
    notation.add_trusted_cert("ca", "other", &other.path().join("root.pem"));
    notation.write_trust_policy("strict", &["ca:other"], &["*"]);
    let (accepted, out) = notation.verify(&image);
    assert!(!accepted, "verified under another CA: {out}");
}
