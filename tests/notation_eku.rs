//! The extended key usage of a Notary Project signing certificate, judged as the specification and notation
//! 1.3.2 judge it: optional, and when present it must not name serverAuth (nor clientAuth, emailProtection,
//! timeStamping, OCSPSigning, anyExtendedKeyUsage). An openssl-made leaf without the extension, signed with
//! real notation, is accepted by `notation verify` and allowed by `POST /v1/verify` under a matching
//! `notation:` authority; a serverAuth-only leaf is refused by `notation sign` and `notation verify` and denied
//! by notarium, each naming the EKU.

use crate::support;

use std::path::Path;

use notarium::formats::Digest;
use notarium::formats::notary::{Algorithm, EnvelopeFormat, JwsClaims, JwsToSign};
use notarium::formats::referrer::{ReferrersIndex, referrers_tag};
use notarium::formats::signature_manifest::{Descriptor, OCI_INDEX, OCI_MANIFEST, SignatureManifest};
use support::{Notarium, Notation, Registry, der_certificates, push_image, reasons};
use time::OffsetDateTime;

/// In `dir`: `root.pem` (an openssl root CA) and, under it, one P-256 leaf per `(name, extendedKeyUsage
/// line)`: `NAME.key` (PKCS#8) and `NAME-chain.pem` (leaf then root), each with a critical
/// digitalSignature key usage.
fn openssl_leaves(dir: &Path, leaves: &[(&str, &str)]) {
    let mut script = String::from(
        r#"set -e
openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout root.key -out root.pem \
  -days 30 -subj "/C=US/ST=WA/O=Eku Tests/CN=Eku Root" \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
"#,
    );
    for (serial, (name, eku)) in leaves.iter().enumerate() {
        script.push_str(&format!(
            r#"openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout {name}.key -out {name}.csr \
  -subj "/C=US/ST=WA/O=Eku Tests/CN={name}" 2>/dev/null
printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n{eku}' > {name}.ext
openssl x509 -req -in {name}.csr -CA root.pem -CAkey root.key -set_serial {} -days 7 -extfile {name}.ext \
  -out {name}.pem 2>/dev/null
cat {name}.pem root.pem > {name}-chain.pem
"#,
            serial + 10
        ));
    }
    let out = std::process::Command::new("bash").args(["-c", &script]).current_dir(dir).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// Pushes an image to `repo` and stores a JWS signed by `NAME.key` with `NAME-chain.pem` as notation stores
/// it (notation will not sign with such a certificate itself); the image by digest.
fn jws_signed_image(registry: &Registry, repo: &str, dir: &Path, name: &str) -> String {
    use p256::ecdsa::signature::Signer as _;
    use p256::pkcs8::DecodePrivateKey as _;
    let digest = push_image(registry, repo, "v1", &format!("eku {name}"));
    let subject = Descriptor::for_blob(OCI_MANIFEST, &registry.manifest(repo, &digest).unwrap());
    let key = p256::ecdsa::SigningKey::read_pkcs8_pem_file(dir.join(format!("{name}.key"))).unwrap();
    let chain = der_certificates(&dir.join(format!("{name}-chain.pem")));
    let now = OffsetDateTime::now_utc();
    let claims = JwsClaims { target: &subject, algorithm: Algorithm::Es256, signing_time: now, expiry: None };
    let to_sign = JwsToSign::new(&claims).unwrap();
    let signature: p256::ecdsa::Signature = key.sign(&to_sign.signing_input());
    let envelope = to_sign.finish(&signature.to_bytes(), &chain, "notarium/test", None);
    let manifest = SignatureManifest::for_notary_signature(subject, EnvelopeFormat::Jws, &envelope, &chain, None);
    registry.put_blob(repo, envelope);
    registry.put_blob(repo, b"{}".to_vec());
    let manifest_bytes = manifest.to_json();
    let manifest_digest = support::sha256_digest(&manifest_bytes);
    registry.put_manifest(repo, &manifest_digest, OCI_MANIFEST, manifest_bytes.clone());
    let mut index = ReferrersIndex::empty();
    index.merge(&manifest_bytes).unwrap();
    let tag = referrers_tag(&Digest::parse(&digest).unwrap());
    registry.put_manifest(repo, &tag, OCI_INDEX, index.to_json());
    format!("{}/{repo}@{digest}", registry.host)
}

#[test]
fn a_leaf_without_eku_is_accepted_and_a_server_auth_leaf_refused_by_notation_and_notarium_alike() {
    let registry = Registry::start();
    let policies = tempfile::tempdir().unwrap();
    let dir = policies.path();
    openssl_leaves(dir, &[("noeku", ""), ("serverauth", "extendedKeyUsage=serverAuth\\n")]);
    let notation = Notation::new();
    notation.add_key("noeku", &dir.join("noeku.key"), &dir.join("noeku-chain.pem"));
    notation.add_key("serverauth", &dir.join("serverauth.key"), &dir.join("serverauth-chain.pem"));
    notation.add_trusted_cert("ca", "eku", &dir.join("root.pem"));
    notation.write_trust_policy("strict", &["ca:eku"], &["x509.subject: C=US, ST=WA, O=Eku Tests"]);
    let host = &registry.host;
    let policy = format!(
        "default: deny\npolicies:\n  - name: eku\n    images: [\"{host}/eku/*\"]\n    authorities:\n      - notation:\n          trust_stores: {{ca: [root.pem]}}\n          trusted_identities: [\"x509.subject: C=US, ST=WA, O=Eku Tests\"]\n          signature_verification: {{level: strict}}\n"
    );
    std::fs::write(dir.join("eku.yaml"), policy).unwrap();
    let notarium = Notarium::start_with(&[host], &[("NOTARIUM_POLICIES_DIR", dir.to_str().unwrap())]);

    // No extended key usage at all: notation signs and verifies it, notarium allows it.
    let image = notation.signed_image(&registry, "eku/none", "eku none", "noeku", &[]);
    let (accepted, out) = notation.verify(&image);
    assert!(accepted, "{out}");
    let answer = notarium.verify_image(&image);
    assert_eq!(answer["allowed"], true, "{answer}");
    assert!(answer["signatures"][0]["signer_dn"].as_str().unwrap_or_default().contains("CN=noeku"), "{answer}");

    // serverAuth only: notation will not sign with it, refuses the signature, and notarium denies it.
    let unsigned = format!("{host}/eku/server@{}", push_image(&registry, "eku/server", "v1", "eku server"));
    let (signed, out) = notation.sign(&unsigned, "serverauth", &[]);
    assert!(!signed && out.contains("ServerAuth"), "{out}");
    let image = jws_signed_image(&registry, "eku/server", dir, "serverauth");
    let out = notation.run(&["verify", "--insecure-registry", "--debug", &image]);
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success() && text.contains("ServerAuth"), "{text}");
    let answer = notarium.verify_image(&image);
    assert_eq!(answer["allowed"], false, "{answer}");
    assert!(reasons(&answer).contains("must not include serverAuth"), "{answer}");
}
