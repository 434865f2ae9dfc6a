//! A private test Sigstore: a Fulcio-like CA (a root and an intermediate made with the `openssl` CLI) that
//! issues short-lived leaf certificates naming an identity (a URI SAN), an OIDC issuer (Fulcio extension
//! 1.3.6.1.4.1.57264.1.8) and any other Fulcio extension, with the codeSigning EKU; a Rekor v1 log key that
//! writes signed entry timestamps over hashedrekord and dsse entries; and the `trusted_root.json` naming
//! both (no CT log, so no SCT is needed). Owns: the test PKI and the cosign-shaped evidence made with it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use p256::ecdsa::signature::Signer as _;
use p256::pkcs8::{DecodePrivateKey as _, EncodePublicKey as _};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use tempfile::TempDir;

use notarium::formats::canonical::canonical_json;
use notarium::formats::cosign_layer::{BUNDLE_ANNOTATION, CERTIFICATE_ANNOTATION, CHAIN_ANNOTATION};
use notarium::formats::signature_manifest::SIGNATURE_ANNOTATION;

/// The OID of Fulcio's OIDC issuer extension (a DER UTF8String).
const ISSUER_OID: &str = "1.3.6.1.4.1.57264.1.8";

pub(crate) struct TestSigstore {
    dir: TempDir,
    rekor: p256::ecdsa::SigningKey,
    pub(crate) trusted_root: PathBuf,
}

/// A leaf certificate and its key.
pub(crate) struct Leaf {
    pub(crate) certificate_pem: String,
    pub(crate) chain_pem: String,
    key: p256::ecdsa::SigningKey,
}

/// When a leaf is valid, in seconds relative to now.
#[derive(Clone, Copy)]
pub(crate) struct Window {
    pub(crate) from: i64,
    pub(crate) to: i64,
}

pub(crate) const FRESH: Window = Window { from: -60, to: 600 };
pub(crate) const EXPIRED: Window = Window { from: -7200, to: -3600 };

impl TestSigstore {
    /// A root and an intermediate CA, and a Rekor key from `seed` (two instances with different seeds are
    /// two unrelated Sigstores).
    pub(crate) fn new(seed: u8) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir(d.join("certs")).unwrap();
        std::fs::write(d.join("index.txt"), "").unwrap();
        std::fs::write(d.join("serial"), format!("{:02X}01\n", seed)).unwrap();
        std::fs::write(d.join("ca.cnf"), CA_CONFIG.replace("{dir}", d.to_str().unwrap())).unwrap();
        for key in ["root", "intermediate"] {
            openssl(
                d,
                &["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", &format!("{key}.key")],
            );
        }
        let root_subject = format!("/O=test-sigstore-{seed}/CN=test-fulcio-root");
        openssl(
            d,
            &[
                "req",
                "-x509",
                "-new",
                "-key",
                "root.key",
                "-subj",
                &root_subject,
                "-days",
                "3650",
                "-sha256",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
                "-out",
                "root.pem",
            ],
        );
        let intermediate_subject = format!("/O=test-sigstore-{seed}/CN=test-fulcio-intermediate");
        openssl(
            d,
            &["req", "-new", "-key", "intermediate.key", "-subj", &intermediate_subject, "-out", "intermediate.csr"],
        );
        openssl(
            d,
            &[
                "x509",
                "-req",
                "-in",
                "intermediate.csr",
                "-CA",
                "root.pem",
                "-CAkey",
                "root.key",
                "-CAcreateserial",
                "-days",
                "3650",
                "-sha256",
                "-extfile",
                "ca.cnf",
                "-extensions",
                "intermediate_ext",
                "-out",
                "intermediate.pem",
            ],
        );
        let rekor = p256::ecdsa::SigningKey::from_slice(&[seed.wrapping_add(100); 32]).unwrap();
        let sigstore = Self { trusted_root: d.join("trusted_root.json"), dir, rekor };
        std::fs::write(&sigstore.trusted_root, sigstore.trusted_root_json().to_string()).unwrap();
        sigstore
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn rekor_spki(&self) -> Vec<u8> {
        self.rekor.verifying_key().to_public_key_der().unwrap().as_bytes().to_vec()
    }

    pub(crate) fn log_id(&self) -> Vec<u8> {
        Sha256::digest(self.rekor_spki()).to_vec()
    }

    /// The trusted root: this CA (intermediate, then root) and this Rekor key, valid since 2020.
    fn trusted_root_json(&self) -> Value {
        let der = |name: &str| BASE64.encode(pem_to_der(&std::fs::read_to_string(self.path(name)).unwrap()));
        json!({
            "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
            "tlogs": [{
                "baseUrl": "https://rekor.test.invalid",
                "hashAlgorithm": "SHA2_256",
                "publicKey": {"rawBytes": BASE64.encode(self.rekor_spki()), "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                              "validFor": {"start": "2020-01-01T00:00:00Z"}},
                "logId": {"keyId": BASE64.encode(self.log_id())},
            }],
            "certificateAuthorities": [{
                "subject": {"organization": "test-sigstore", "commonName": "test-fulcio"},
                "uri": "https://fulcio.test.invalid",
                "certChain": {"certificates": [{"rawBytes": der("intermediate.pem")}, {"rawBytes": der("root.pem")}]},
                "validFor": {"start": "2020-01-01T00:00:00Z"},
            }],
            "ctlogs": [],
            "timestampAuthorities": [],
        })
    }

    /// A leaf for `subject` (a URI) from `issuer`, with `extensions` (OID, UTF-8 value), valid in `window`.
    pub(crate) fn leaf(&self, subject: &str, issuer: &str, extensions: &[(&str, &str)], window: Window) -> Leaf {
        let d = self.dir.path();
        let name = format!(
            "leaf-{}",
            Sha256::digest(format!("{subject}{issuer}{}", window.from))
                .iter()
                .take(6)
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        );
        openssl(
            d,
            &["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", &format!("{name}.key")],
        );
        openssl(
            d,
            &[
                "req",
                "-new",
                "-key",
                &format!("{name}.key"),
                "-subj",
                "/O=sigstore.dev",
                "-out",
                &format!("{name}.csr"),
            ],
        );
        let mut ext = format!(
            "[leaf_ext]\nkeyUsage = critical, digitalSignature\nextendedKeyUsage = codeSigning\n\
             subjectAltName = critical, URI:{subject}\nsubjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n\
             {ISSUER_OID} = ASN1:UTF8String:{issuer}\n"
        );
        for (oid, value) in extensions {
            ext.push_str(&format!("{oid} = ASN1:UTF8String:{value}\n"));
        }
        std::fs::write(d.join(format!("{name}.ext")), ext).unwrap();
        let (start, end) = (utc_time(window.from), utc_time(window.to));
        openssl(
            d,
            &[
                "ca",
                "-batch",
                "-config",
                "ca.cnf",
                "-notext",
                "-cert",
                "intermediate.pem",
                "-keyfile",
                "intermediate.key",
                "-in",
                &format!("{name}.csr"),
                "-startdate",
                &start,
                "-enddate",
                &end,
                "-extfile",
                &format!("{name}.ext"),
                "-extensions",
                "leaf_ext",
                "-out",
                &format!("{name}.pem"),
            ],
        );
        let key_pem = std::fs::read_to_string(d.join(format!("{name}.key"))).unwrap();
        let certificate_pem = std::fs::read_to_string(d.join(format!("{name}.pem"))).unwrap();
        let chain_pem =
            ["intermediate.pem", "root.pem"].map(|f| std::fs::read_to_string(self.path(f)).unwrap()).concat();
        Leaf { certificate_pem, chain_pem, key: p256::ecdsa::SigningKey::from_pkcs8_pem(&key_pem).unwrap() }
    }

    /// cosign's `dev.sigstore.cosign/bundle` annotation: a signed entry timestamp over `body` at `integrated`.
    pub(crate) fn rekor_bundle(&self, body: &[u8], integrated: i64, log_index: u64) -> Value {
        let body = BASE64.encode(body);
        let log_id: String = self.log_id().iter().map(|b| format!("{b:02x}")).collect();
        let payload = json!({"body": body, "integratedTime": integrated, "logIndex": log_index, "logID": log_id});
        let set: p256::ecdsa::Signature = self.rekor.sign(&canonical_json(&payload));
        json!({"SignedEntryTimestamp": BASE64.encode(set.to_der().as_bytes()), "Payload": payload})
    }
}

impl Leaf {
    pub(crate) fn sign(&self, message: &[u8]) -> Vec<u8> {
        let signature: p256::ecdsa::Signature = self.key.sign(message);
        signature.to_der().as_bytes().to_vec()
    }

    /// The hashedrekord 0.0.1 entry Rekor writes for `signature` over `artifact` by this certificate.
    pub(crate) fn hashedrekord(&self, artifact: &[u8], signature: &[u8]) -> Vec<u8> {
        hashedrekord(artifact, signature, &self.certificate_pem)
    }

    /// The dsse 0.0.1 entry Rekor writes for an envelope with `payload` and one `signature` by this certificate.
    pub(crate) fn dsse_entry(&self, envelope_json: &[u8], payload: &[u8], signature: &[u8]) -> Vec<u8> {
        canonical_json(&json!({
            "apiVersion": "0.0.1", "kind": "dsse",
            "spec": {
                "envelopeHash": {"algorithm": "sha256", "value": hex(&Sha256::digest(envelope_json))},
                "payloadHash": {"algorithm": "sha256", "value": hex(&Sha256::digest(payload))},
                "signatures": [{"signature": BASE64.encode(signature), "verifier": BASE64.encode(&self.certificate_pem)}],
            },
        }))
    }

    /// The annotations of a cosign v2 keyless `.sig` layer: signature, certificate, chain, Rekor bundle.
    pub(crate) fn sig_annotations(&self, signature: &[u8], rekor_bundle: &Value) -> BTreeMap<String, String> {
        BTreeMap::from([
            (SIGNATURE_ANNOTATION.to_owned(), BASE64.encode(signature)),
            (CERTIFICATE_ANNOTATION.to_owned(), self.certificate_pem.clone()),
            (CHAIN_ANNOTATION.to_owned(), self.chain_pem.clone()),
            (BUNDLE_ANNOTATION.to_owned(), rekor_bundle.to_string()),
        ])
    }
}

/// The hashedrekord 0.0.1 entry Rekor writes for `signature` over `artifact` by `signer_pem` (a
/// certificate, or a public key for a key signature uploaded to the log).
pub(crate) fn hashedrekord(artifact: &[u8], signature: &[u8], signer_pem: &str) -> Vec<u8> {
    canonical_json(&json!({
        "apiVersion": "0.0.1", "kind": "hashedrekord",
        "spec": {
            "data": {"hash": {"algorithm": "sha256", "value": hex(&Sha256::digest(artifact))}},
            "signature": {"content": BASE64.encode(signature), "publicKey": {"content": BASE64.encode(signer_pem)}},
        },
    }))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn pem_to_der(pem: &str) -> Vec<u8> {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    BASE64.decode(body).unwrap()
}

/// `openssl ca`'s UTCTime, `offset` seconds from now.
fn utc_time(offset: i64) -> String {
    let at = time::OffsetDateTime::now_utc() + time::Duration::seconds(offset);
    let (month, year) = (u8::from(at.month()), at.year() % 100);
    format!("{year:02}{month:02}{:02}{:02}{:02}{:02}Z", at.day(), at.hour(), at.minute(), at.second())
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl").args(args).current_dir(dir).output().unwrap();
    assert!(out.status.success(), "openssl {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
}

const CA_CONFIG: &str = "\
[ca]
default_ca = test_ca
[test_ca]
dir = {dir}
database = {dir}/index.txt
new_certs_dir = {dir}/certs
serial = {dir}/serial
default_md = sha256
policy = any_subject
unique_subject = no
copy_extensions = none
[any_subject]
organizationName = optional
commonName = optional
[req]
distinguished_name = req_dn
[req_dn]
[intermediate_ext]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
extendedKeyUsage = codeSigning
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
";
