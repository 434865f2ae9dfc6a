//! Verifying images that real notation 1.3.2 signed, in a real registry, through `POST /v1/verify` and the
//! admission webhook: a policy's `notation:` authority (trust stores read from PEM files next to the policy,
//! `x509.subject` trusted identities) allows an image signed with a `notation cert generate-test` key and one
//! signed with an openssl-made root → intermediate → leaf chain (P-256, and an all-P-521 one: ES512), and
//! denies, with reasons, a signature under another trust store (wrong chain), another identity, an expired
//! certificate and a tampered envelope (envelope bytes changed in the registry). The register's `verify` entry names the signer DN and chain.
//! Also: `notarium policy check` on notation authorities (missing store, unreadable PEM, malformed DN, unknown
//! level).

use crate::support;

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use serde_json::{Value, json};
use support::{Notarium, Notation, Registry, reasons};

const NOTARY_SIGNATURE: &str = "application/vnd.cncf.notary.signature";
const TEST_SIGNER: &str = "C=US, ST=WA, L=Seattle, O=Notary, CN=test.example";

/// Runs openssl in `dir`, panicking with its output unless it succeeds.
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl").args(args).current_dir(dir).output().unwrap();
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// An openssl CA in `dir`: a root and intermediate, and leaves issued by the intermediate with the
/// code-signing EKU and digitalSignature key usage the Notary Project requires; every key on one curve, every
/// certificate signed with that curve's hash (P-256: SHA-256, P-521: SHA-512).
struct OpensslChain {
    dir: PathBuf,
    curve: &'static str,
    digest: &'static str,
}

impl OpensslChain {
    fn new(dir: &Path, name: &str) -> Self {
        Self::on_curve(dir, name, "P-256")
    }

    fn on_curve(dir: &Path, name: &str, curve: &'static str) -> Self {
        let digest = if curve == "P-521" { "sha512" } else { "sha256" };
        let dir = dir.join(name);
        std::fs::create_dir_all(dir.join("issued")).unwrap();
        std::fs::write(dir.join("index.txt"), "").unwrap();
        std::fs::write(dir.join("serial"), "1000\n").unwrap();
        std::fs::write(dir.join("ca.cnf"), CA_CONFIG).unwrap();
        let chain = Self { dir, curve, digest };
        let subject = format!("/C=US/ST=WA/O={name}/CN={name} Root");
        let (curve_option, digest_option) = (format!("ec_paramgen_curve:{curve}"), format!("-{digest}"));
        chain.run(
            &["req", "-x509", "-newkey", "ec", "-pkeyopt", &curve_option, &digest_option, "-nodes"]
                .into_iter()
                .chain(["-keyout", "root.key", "-out", "root.crt", "-days", "30", "-subj", &subject])
                .chain([
                    "-addext",
                    "basicConstraints=critical,CA:TRUE",
                    "-addext",
                    "keyUsage=critical,keyCertSign,cRLSign",
                ])
                .collect::<Vec<_>>(),
        );
        let subject = format!("/C=US/ST=WA/O={name}/CN={name} Intermediate");
        chain.request("intermediate", &subject);
        chain.run(&[
            "ca",
            "-batch",
            "-config",
            "ca.cnf",
            "-cert",
            "root.crt",
            "-keyfile",
            "root.key",
            "-extensions",
            "intermediate",
            "-md",
            digest,
            "-days",
            "30",
            "-in",
            "intermediate.csr",
            "-out",
            "intermediate.crt",
            "-notext",
        ]);
        chain
    }

    fn run(&self, args: &[&str]) {
        openssl(&self.dir, args);
    }

    fn request(&self, name: &str, subject: &str) {
        let key = format!("{name}.key");
        let csr = format!("{name}.csr");
        let curve_option = format!("ec_paramgen_curve:{}", self.curve);
        self.run(&[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            &curve_option,
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            subject,
        ]);
    }

    /// Issues a code-signing leaf valid from `start` to `end` (`YYYYMMDDHHMMSSZ`); returns its key and the
    /// chain file (leaf, intermediate, root).
    fn leaf(&self, name: &str, subject: &str, start: &str, end: &str) -> (PathBuf, PathBuf) {
        self.request(name, subject);
        let (csr, crt) = (format!("{name}.csr"), format!("{name}.crt"));
        self.run(&[
            "ca",
            "-batch",
            "-config",
            "ca.cnf",
            "-cert",
            "intermediate.crt",
            "-keyfile",
            "intermediate.key",
            "-extensions",
            "leaf",
            "-md",
            self.digest,
            "-startdate",
            start,
            "-enddate",
            end,
            "-in",
            &csr,
            "-out",
            &crt,
            "-notext",
        ]);
        let chain: String = [&crt, "intermediate.crt", "root.crt"]
            .iter()
            .map(|f| std::fs::read_to_string(self.dir.join(f)).unwrap())
            .collect();
        let chain_path = self.dir.join(format!("{name}-chain.pem"));
        std::fs::write(&chain_path, chain).unwrap();
        (self.dir.join(format!("{name}.key")), chain_path)
    }

    fn root(&self) -> PathBuf {
        self.dir.join("root.crt")
    }
}

const CA_CONFIG: &str = "[ca]\ndefault_ca = test\n[test]\ndir = .\ndatabase = index.txt\nnew_certs_dir = issued\n\
serial = serial\ndefault_md = sha256\npolicy = anything\nunique_subject = no\ncopy_extensions = none\n\
[anything]\ncountryName = optional\nstateOrProvinceName = optional\nlocalityName = optional\n\
organizationName = optional\ncommonName = supplied\n\
[intermediate]\nbasicConstraints = critical,CA:TRUE,pathlen:0\nkeyUsage = critical,keyCertSign,cRLSign\n\
subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n\
[leaf]\nbasicConstraints = critical,CA:FALSE\nkeyUsage = critical,digitalSignature\nextendedKeyUsage = codeSigning\n\
subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n";

/// `YYYYMMDDHHMMSSZ`, `seconds` from now.
fn openssl_time(seconds: i64) -> String {
    let at = time::OffsetDateTime::now_utc() + time::Duration::seconds(seconds);
    let format = time::macros::format_description!("[year][month][day][hour][minute][second]Z");
    at.format(&format).unwrap()
}

struct Setup {
    registry: Registry,
    notarium: Notarium,
    notation: Notation,
    chain: OpensslChain,
    _policies: tempfile::TempDir,
}

/// A registry, notation with a `generate-test` key (`test.example`) and an openssl chain key (`acme`), and
/// notarium with policies whose trust stores are PEM files in the policy folder:
/// - `nv/app`: the test certificate's store and DN; `nv/wrong-store`: another `generate-test` certificate;
///   `nv/wrong-identity`: the right store, another organization;
/// - `nv/acme`: the openssl root, the leaf's DN; `nv/acme-other-root`: another openssl root;
/// - `nv/acme521`, `nv/acme521-tampered`: an all-P-521 openssl chain (key `acme521`), its root.
fn start() -> Setup {
    let registry = Registry::start();
    let policies = tempfile::tempdir().unwrap();
    let stores = policies.path().join("stores");
    std::fs::create_dir_all(&stores).unwrap();
    let notation = Notation::new();
    let (_, test_cert) = notation.generate_test("test.example");
    std::fs::copy(&test_cert, stores.join("test.pem")).unwrap();
    let other = Notation::new();
    let (_, other_cert) = other.generate_test("other.example");
    std::fs::copy(&other_cert, stores.join("other.pem")).unwrap();
    let chain = OpensslChain::new(policies.path(), "Acme");
    let other_chain = OpensslChain::new(policies.path(), "Elsewhere");
    std::fs::copy(chain.root(), stores.join("acme-root.pem")).unwrap();
    std::fs::copy(other_chain.root(), stores.join("elsewhere-root.pem")).unwrap();
    let (key, chain_file) = chain.leaf(
        "release",
        "/C=US/ST=WA/L=Seattle/O=Acme/CN=acme-release",
        &openssl_time(-3600),
        &openssl_time(86400),
    );
    notation.add_key("acme", &key, &chain_file);
    let p521 = OpensslChain::on_curve(policies.path(), "Acme521", "P-521");
    std::fs::copy(p521.root(), stores.join("acme521-root.pem")).unwrap();
    let (key, chain_file) =
        p521.leaf("p521", "/C=US/ST=WA/O=Acme/CN=acme-p521", &openssl_time(-3600), &openssl_time(86400));
    notation.add_key("acme521", &key, &chain_file);

    let host = &registry.host;
    let authority = |store: &str, identity: &str| {
        format!(
            "      - notation:\n          trust_stores: {{ca: [stores/{store}]}}\n          trusted_identities: [\"{identity}\"]\n          signature_verification: {{level: strict}}\n"
        )
    };
    let policy = |name: &str, repo: &str, authority: String| {
        format!("  - name: {name}\n    images: [\"{host}/nv/{repo}\"]\n    authorities:\n{authority}")
    };
    let text = [
        "default: deny\npolicies:\n".to_owned(),
        policy("notation", "app", authority("test.pem", "x509.subject: C=US, ST=WA, O=Notary, CN=test.example")),
        policy("wrong-store", "wrong-store", authority("other.pem", "*")),
        policy("wrong-identity", "wrong-identity", authority("test.pem", "x509.subject: C=US, ST=WA, O=Elsewhere")),
        policy("acme", "acme", authority("acme-root.pem", "x509.subject: C=US, ST=WA, O=Acme, CN=acme-release")),
        policy("acme-other-root", "acme-other-root", authority("elsewhere-root.pem", "*")),
        policy("expiring", "expiring", authority("acme-root.pem", "*")),
        policy("acme521", "acme521", authority("acme521-root.pem", "x509.subject: C=US, ST=WA, O=Acme, CN=acme-p521")),
        policy("acme521-tampered", "acme521-tampered", authority("acme521-root.pem", "*")),
        policy("tampered", "tampered", authority("test.pem", "*")),
    ]
    .concat();
    std::fs::write(policies.path().join("notation.yaml"), text).unwrap();
    let dir = policies.path().to_str().unwrap();
    let notarium = Notarium::start_with(&[host], &[("NOTARIUM_POLICIES_DIR", dir)]);
    Setup { registry, notarium, notation, chain, _policies: policies }
}

impl Setup {
    /// Pushes an image to `nv/REPO` and signs it with notation's key `key`; the image by digest.
    fn signed(&self, repo: &str, key: &str) -> String {
        self.signed_with(repo, key, &[])
    }

    /// [`Self::signed`] with extra `notation sign` flags (`--signature-format cose`).
    fn signed_with(&self, repo: &str, key: &str, extra: &[&str]) -> String {
        let content = format!("notation {repo} {key} {extra:?}");
        self.notation.signed_image(&self.registry, &format!("nv/{repo}"), &content, key, extra)
    }

    fn verify(&self, image: &str) -> Value {
        self.notarium.verify_image(image)
    }

    /// The validating webhook's answer for a Pod running `image`.
    fn admit(&self, image: &str) -> Value {
        let review = json!({
            "kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1",
            "request": {
                "uid": "7f0c2a4e-notation", "operation": "CREATE", "namespace": "shop", "name": "web",
                "kind": {"group": "", "version": "v1", "kind": "Pod"},
                "resource": {"group": "", "version": "v1", "resource": "pods"},
                "userInfo": {"username": "kubernetes-admin"},
                "object": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"},
                           "spec": {"containers": [{"name": "app", "image": image}]}},
            },
        });
        let (status, _, answer) = self.notarium.post("/v1/admission", review.to_string());
        assert_eq!(status, 200, "{answer}");
        answer["response"].clone()
    }
}

#[test]
fn notation_signed_images_are_allowed_under_their_authority_and_denied_under_a_wrong_one() {
    let setup = start();

    // A generate-test key, its own certificate as the trust store, its DN trusted.
    let image = setup.signed("app", "test.example");
    let answer = setup.verify(&image);
    assert_eq!(answer["allowed"], true, "{answer}");
    let used = &answer["signatures"][0];
    assert_eq!(used["signer_dn"].as_str().map(|dn| dn.contains("CN=test.example")), Some(true), "{answer}");
    assert_eq!(used["certificate_chain_sha256"].as_array().map(Vec::len), Some(1), "{answer}");
    let admitted = setup.admit(&image);
    assert_eq!(admitted["allowed"], true, "{admitted}");

    // The same kind of signature under a store holding another certificate: the wrong chain.
    let wrong_store = setup.signed("wrong-store", "test.example");
    let answer = setup.verify(&wrong_store);
    assert_eq!(answer["allowed"], false, "{answer}");
    assert!(reasons(&answer).contains("authenticity"), "{answer}");
    let denied = setup.admit(&wrong_store);
    assert_eq!(denied["allowed"], false, "{denied}");
    assert!(denied["status"]["message"].as_str().unwrap_or_default().contains("authenticity"), "{denied}");

    // The right store, a trusted identity the signer does not have.
    let wrong_identity = setup.signed("wrong-identity", "test.example");
    let answer = setup.verify(&wrong_identity);
    assert_eq!(answer["allowed"], false, "{answer}");
    assert!(reasons(&answer).contains("the notation signatures found are by"), "{answer}");
    assert!(reasons(&answer).contains("CN=test.example"), "{answer}");
    let denied = setup.admit(&wrong_identity);
    assert_eq!(denied["allowed"], false, "{denied}");
    let message = denied["status"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("the notation signatures found are by"), "{denied}");
}

#[test]
fn an_openssl_chain_is_allowed_under_its_root_and_denied_under_another() {
    let setup = start();
    let image = setup.signed("acme", "acme");
    let answer = setup.verify(&image);
    assert_eq!(answer["allowed"], true, "{answer}");
    let used = &answer["signatures"][0];
    assert!(used["signer_dn"].as_str().unwrap_or_default().contains("CN=acme-release"), "{answer}");
    assert_eq!(used["certificate_chain_sha256"].as_array().map(Vec::len), Some(3), "{answer}");
    assert_eq!(setup.admit(&image)["allowed"], true);

    // The same chain in a COSE envelope.
    let cose = setup.signed_with("acme", "acme", &["--signature-format", "cose"]);
    let answer = setup.verify(&cose);
    assert_eq!(answer["allowed"], true, "{answer}");
    assert!(answer["signatures"][0]["signer_dn"].as_str().unwrap_or_default().contains("CN=acme-release"));

    let other_root = setup.signed("acme-other-root", "acme");
    let answer = setup.verify(&other_root);
    assert_eq!(answer["allowed"], false, "{answer}");
    assert!(reasons(&answer).contains("authenticity"), "{answer}");
    assert_eq!(setup.admit(&other_root)["allowed"], false);
}

/// Copies the manifest `digest` of `from` and the blobs it names into `to`.
fn copy_manifest(registry: &Registry, from: &str, to: &str, digest: &str) -> Value {
    let bytes = registry.manifest(from, digest).unwrap();
    let manifest: Value = serde_json::from_slice(&bytes).unwrap();
    let blobs = std::iter::once(&manifest["config"]).chain(manifest["layers"].as_array().unwrap());
    for blob in blobs {
        registry.put_blob(to, registry.blob(from, blob["digest"].as_str().unwrap()));
    }
    registry.put_manifest(to, digest, manifest["mediaType"].as_str().unwrap(), bytes);
    manifest
}

/// The notation signature of `repo`'s image `digest` (listed under the fallback tag: the test registry has no
/// referrers API): its manifest and envelope.
fn notation_signature(registry: &Registry, repo: &str, digest: &str) -> (Value, Vec<u8>) {
    let index: Value = serde_json::from_slice(&registry.manifest(repo, &digest.replace(':', "-")).unwrap()).unwrap();
    let listed = index["manifests"].as_array().unwrap();
    let signature = listed.iter().find(|m| m["artifactType"] == NOTARY_SIGNATURE).unwrap();
    let bytes = registry.manifest(repo, signature["digest"].as_str().unwrap()).unwrap();
    let manifest: Value = serde_json::from_slice(&bytes).unwrap();
    let envelope = registry.blob(repo, manifest["layers"][0]["digest"].as_str().unwrap());
    (manifest, envelope)
}

/// Signs an image in `nv/SOURCE` (a repository no policy governs) with notation's key `key`, then copies the
/// image and its JWS signature, with the payload's target size changed, to `nv/TARGET`; the copy by digest.
fn tampered_copy(setup: &Setup, source: &str, target: &str, key: &str) -> String {
    let (source, target) = (format!("nv/{source}"), format!("nv/{target}"));
    let signed = setup.signed(&source["nv/".len()..], key);
    let digest = signed.rsplit('@').next().unwrap();
    copy_manifest(&setup.registry, &source, &target, digest);
    let (mut manifest, envelope) = notation_signature(&setup.registry, &source, digest);
    let mut jws: Value = serde_json::from_slice(&envelope).unwrap();
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut payload: Value = serde_json::from_slice(&engine.decode(jws["payload"].as_str().unwrap()).unwrap()).unwrap();
    payload["targetArtifact"]["size"] = json!(payload["targetArtifact"]["size"].as_u64().unwrap() + 1);
    jws["payload"] = json!(engine.encode(serde_json::to_vec(&payload).unwrap()));
    let tampered = serde_json::to_vec(&jws).unwrap();
    manifest["layers"][0]["digest"] = json!(setup.registry.put_blob(&target, tampered.clone()));
    manifest["layers"][0]["size"] = json!(tampered.len());
    setup.registry.put_blob(&target, setup.registry.blob(&source, manifest["config"]["digest"].as_str().unwrap()));
    let bytes = serde_json::to_vec(&manifest).unwrap();
    let media_type = manifest["mediaType"].as_str().unwrap().to_owned();
    let tampered_digest = support::sha256_digest(&bytes);
    let entry = json!({"mediaType": media_type, "digest": tampered_digest, "size": bytes.len(), "artifactType": NOTARY_SIGNATURE});
    setup.registry.put_manifest(&target, &tampered_digest, &media_type, bytes);
    let index =
        json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [entry]});
    let index_type = "application/vnd.oci.image.index.v1+json";
    let fallback_tag = digest.replace(':', "-");
    setup.registry.put_manifest(&target, &fallback_tag, index_type, serde_json::to_vec(&index).unwrap());
    format!("{}/{target}@{digest}", setup.registry.host)
}

#[test]
fn a_tampered_envelope_is_denied_with_why() {
    let setup = start();
    let image = tampered_copy(&setup, "tamper-source", "tampered", "test.example");
    let answer = setup.verify(&image);
    assert_eq!(answer["allowed"], false, "{answer}");
    assert!(reasons(&answer).contains("did not verify: notation signature sha256:"), "{answer}");
    assert!(reasons(&answer).contains("signature"), "{answer}");
    assert_eq!(setup.admit(&image)["allowed"], false);
}

#[test]
fn a_p521_chain_verifies_es512_in_jws_and_cose_and_a_tampered_one_does_not() {
    let setup = start();
    let image = setup.signed("acme521", "acme521");
    let digest = image.rsplit('@').next().unwrap();
    let (_, envelope) = notation_signature(&setup.registry, "nv/acme521", digest);
    let jws: Value = serde_json::from_slice(&envelope).unwrap();
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let protected: Value = serde_json::from_slice(&engine.decode(jws["protected"].as_str().unwrap()).unwrap()).unwrap();
    assert_eq!(protected["alg"], "ES512", "{protected}");
    let answer = setup.verify(&image);
    assert_eq!(answer["allowed"], true, "{answer}");
    assert!(answer["signatures"][0]["signer_dn"].as_str().unwrap_or_default().contains("CN=acme-p521"), "{answer}");
    assert_eq!(setup.admit(&image)["allowed"], true);

    // COSE (algorithm -36).
    let cose = setup.signed_with("acme521", "acme521", &["--signature-format", "cose"]);
    let answer = setup.verify(&cose);
    assert_eq!(answer["allowed"], true, "{answer}");

    let tampered = tampered_copy(&setup, "tamper521-source", "acme521-tampered", "acme521");
    let answer = setup.verify(&tampered);
    assert_eq!(answer["allowed"], false, "{answer}");
    assert!(reasons(&answer).contains("ECDSA P-521 signature does not verify"), "{answer}");
}

#[test]
fn an_expired_certificate_is_denied_with_why() {
    let setup = start();
    // A leaf that expires a few seconds after it signs (notation refuses to sign with an expired one).
    let (key, chain) =
        setup.chain.leaf("short", "/C=US/ST=WA/O=Acme/CN=short-lived", &openssl_time(-3600), &openssl_time(4));
    setup.notation.add_key("short", &key, &chain);
    let image = setup.signed("expiring", "short");
    std::thread::sleep(std::time::Duration::from_secs(6));
    let answer = setup.verify(&image);
    assert_eq!(answer["allowed"], false, "{answer}");
    assert!(
        reasons(&answer).contains("authentic timestamp: certificate: leaf certificate is not valid at"),
        "{answer}"
    );
    assert_eq!(setup.admit(&image)["allowed"], false);
}

#[test]
fn the_register_names_the_signer_dn_and_chain_of_a_notation_signature() {
    let setup = start();
    let image = setup.signed("app", "test.example");
    let answer = setup.verify(&image);
    assert_eq!(answer["allowed"], true, "{answer}");
    let index = answer["log"]["index"].as_u64().unwrap();
    let (status, text) = setup.notarium.get_text(&format!("/v1/log/entries?start={index}&end={}", index + 1));
    assert_eq!(status, 200, "{text}");
    let entry: Value = serde_json::from_str(&text).unwrap();
    let recorded = &entry["entries"][0]["entry"]["details"]["signatures"][0];
    assert_eq!(recorded["signer_dn"], json!(TEST_SIGNER), "{entry}");
    assert_eq!(recorded["certificate_chain_sha256"].as_array().map(Vec::len), Some(1), "{entry}");
}

#[test]
fn policy_check_reports_a_missing_store_an_unreadable_pem_a_malformed_dn_and_an_unknown_level() {
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("policies");
    std::fs::create_dir_all(&policies).unwrap();
    std::fs::write(policies.join("junk.pem"), "no certificate here").unwrap();
    let notation = Notation::new();
    let (_, cert) = notation.generate_test("check.example");
    std::fs::copy(cert, policies.join("good.pem")).unwrap();
    let cases = [
        ("{ca: [missing.pem]}", "\"*\"", "strict", "notation.trust_stores.ca: cannot read"),
        ("{ca: [junk.pem]}", "\"*\"", "strict", "junk.pem holds no readable PEM certificate"),
        ("{ca: [good.pem]}", "\"x509.subject: CN=only\"", "strict", "notation.trusted_identities"),
        ("{ca: [good.pem]}", "\"*\"", "lenient", "unknown variant `lenient`"),
    ];
    for (stores, identity, level, expected) in cases {
        let file = policies.join("p.yaml");
        let authority = format!(
            "      - notation:\n          trust_stores: {stores}\n          trusted_identities: [{identity}]\n          signature_verification: {{level: {level}}}\n"
        );
        std::fs::write(&file, format!("policies:\n  - name: p\n    images: [a]\n    authorities:\n{authority}"))
            .unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_notarium"))
            .args(["policy", "check", policies.to_str().unwrap()])
            .env_remove("NOTARIUM_CONFIG")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{expected}: {stderr}");
        assert!(stderr.contains(&file.display().to_string()) && stderr.contains(expected), "{expected}: {stderr}");
    }
    std::fs::write(
        policies.join("p.yaml"),
        "policies:\n  - name: p\n    images: [a]\n    authorities:\n      - notation:\n          trust_stores: {ca: [good.pem]}\n          trusted_identities: [\"*\"]\n          signature_verification: {level: strict}\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_notarium"))
        .args(["policy", "check", policies.to_str().unwrap()])
        .env_remove("NOTARIUM_CONFIG")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}
