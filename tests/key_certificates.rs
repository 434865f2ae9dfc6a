//! Certificates for notarium's own signing keys: `[ca]` issues each ECDSA image-signing key a code-signing
//! leaf from a CA key held in a file or on a SoftHSM2 token, `GET /v1/keys` serves the chains, `openssl
//! verify` accepts them under the CA certificate (and, for a CA key an openssl root certified, through that
//! intermediate to the root) and refuses them under another, a restart keeps them; a
//! `[[keys]] certificate_chain` for another key, or expired, stops the start with the file named. The CA's
//! private key is in no answer, log line or database row. notation 1.3.2 signs with an issued chain and
//! verifies it (strict, a trusted identity) under the CA's certificate only.
//!
//! Debian 12's OpenSSL 3.0 has no `codesign` purpose for `openssl verify -purpose` (OpenSSL 3.2 added it): the
//! chains are checked with Debian 13's OpenSSL 3.5 (`.tools/bin/openssl-codesign`,
//! scripts/install-openssl-codesign.sh) as `openssl verify -x509_strict -purpose codesign`, and an openssl-made
//! chain whose leaf lacks the code-signing EKU shows that purpose check refuses what a plain verify accepts.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use notarium::keys::Algorithm;
use notarium::pki::issue::{Window, assemble, leaf_tbs, self_signed_ca_tbs};
use p256::ecdsa::signature::Signer as _;
use p256::pkcs8::{DecodePrivateKey as _, EncodePublicKey as _};
use support::{EXAMPLE_KEYS, Notarium, Notation, OPEN_WITH_BACKEND_KEYS, OpenBao, Registry, SoftHsm, push_image};

fn ca_config(key: &str) -> String {
    format!(
        "\n[ca]\nkey = \"{key}\"\nvalidity = \"90d\"\nsubject = \"CN={{key_id}}, O=notarium tests, ST=Washington, C=US\"\n"
    )
}

/// The `certificate_chain_pem` of key `id` in `GET /v1/keys`.
fn served_chain(notarium: &Notarium, id: &str) -> Option<String> {
    let (status, body) = notarium.get_text("/v1/keys");
    assert_eq!(status, 200, "{body}");
    let list: serde_json::Value = serde_json::from_str(&body).unwrap();
    let entry = list["keys"].as_array().unwrap().iter().find(|k| k["id"] == id).unwrap().clone();
    entry["certificate_chain_pem"].as_str().map(str::to_owned)
}

/// Splits a PEM chain into its blocks.
fn blocks(pem: &str) -> Vec<String> {
    pem.split_inclusive("-----END CERTIFICATE-----\n").map(str::to_owned).collect()
}

fn openssl(args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl").args(args).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// Debian 13's OpenSSL `verify -x509_strict [-purpose P]` of `chain`'s leaf with `ca_file` as the only trust
/// anchor and the chain's middle certificates as untrusted intermediates.
fn openssl_verify(dir: &Path, chain: &str, ca_file: &Path, purpose: Option<&str>) -> (bool, String) {
    let certs = blocks(chain);
    let leaf = dir.join("leaf.pem");
    std::fs::write(&leaf, &certs[0]).unwrap();
    let untrusted = dir.join("untrusted.pem");
    std::fs::write(&untrusted, certs[1..certs.len() - 1].concat()).unwrap();
    let mut args = vec!["verify", "-x509_strict", "-CAfile", ca_file.to_str().unwrap()];
    if let Some(purpose) = purpose {
        args.extend(["-purpose", purpose]);
    }
    if certs.len() > 2 {
        args.extend(["-untrusted", untrusted.to_str().unwrap()]);
    }
    args.push(leaf.to_str().unwrap());
    let out = Command::new(support::tool("openssl-codesign")).args(&args).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// `openssl verify -purpose codesign` of `chain` under `ca_file` (see `openssl_verify`); then the leaf's
/// code-signing usages, explicitly.
fn openssl_accepts_for_code_signing(dir: &Path, chain: &str, ca_file: &Path) -> (bool, String) {
    let (ok, out) = openssl_verify(dir, chain, ca_file, Some("codesign"));
    let leaf = dir.join("leaf.pem");
    if !ok {
        return (false, out);
    }
    let (_, usages) = openssl(&[
        "x509",
        "-in",
        leaf.to_str().unwrap(),
        "-noout",
        "-ext",
        "basicConstraints,keyUsage,extendedKeyUsage,subjectKeyIdentifier,authorityKeyIdentifier",
    ]);
    for expected in [
        "X509v3 Basic Constraints: critical\n    CA:FALSE",
        "X509v3 Key Usage: critical\n    Digital Signature",
        "X509v3 Extended Key Usage: \n    Code Signing",
        "X509v3 Subject Key Identifier",
        "X509v3 Authority Key Identifier",
    ] {
        assert!(usages.contains(expected), "{expected:?} not in {usages}");
    }
    (true, out)
}

/// The base64 body of a PEM file, one string.
fn pem_body(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap().lines().filter(|l| !l.starts_with("-----")).collect()
}

/// Checks the CA key's material appears in no answer, log line or database file.
fn assert_no_ca_key_material(notarium: &Notarium, ca_key: Option<&Path>) {
    let Some(ca_key) = ca_key else { return };
    let body = pem_body(ca_key);
    let secret = p256::SecretKey::from_pkcs8_pem(&std::fs::read_to_string(ca_key).unwrap()).unwrap().to_bytes();
    let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    let answers = notarium.get_text("/v1/keys").1;
    for haystack in [answers.as_str(), notarium.log().as_str()] {
        assert!(!haystack.contains(&body[..40]) && !haystack.contains(&hex), "CA key material leaked");
    }
    if let Some(file) = notarium.database_url().strip_prefix("sqlite://") {
        let bytes = std::fs::read(file).unwrap();
        assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_slice()), "CA private key in the database");
        assert!(!bytes.windows(40).any(|w| w == &body.as_bytes()[..40]), "CA key PEM in the database");
    }
}

/// notarium with the example keys and `[ca]` on a fresh file key `ca` in `keys_dir`; that key's path.
fn start_with_file_ca(keys_dir: &Path) -> (Notarium, PathBuf) {
    let ca_key = support::p256_key_file(keys_dir, "ca");
    let config = format!(
        "{EXAMPLE_KEYS}\n[[keys]]\nid = \"ca\"\nbackend = \"file\"\npath = \"{}\"\n{}",
        ca_key.display(),
        ca_config("ca")
    );
    (Notarium::start_with_config(&config, &[], &[]), ca_key)
}

#[test]
fn a_file_ca_key_issues_leaves_openssl_verifies_for_code_signing_and_a_restart_keeps_them() {
    let keys_dir = tempfile::tempdir().unwrap();
    let (mut notarium, ca_key) = start_with_file_ca(keys_dir.path());
    let chain = served_chain(&notarium, "dev-ecdsa").expect("dev-ecdsa has a chain");
    let ca_chain = served_chain(&notarium, "ca").expect("the CA key shows its own certificate");
    assert_eq!(blocks(&chain).len(), 2, "leaf then the self-signed CA certificate");
    assert_eq!(blocks(&chain)[1], ca_chain);
    assert!(served_chain(&notarium, "dev-ed25519").is_none(), "Ed25519 cannot serve Notary Project signatures");
    assert!(served_chain(&notarium, "dev-log").is_none(), "the checkpoint key gets no certificate");
    assert!(notarium.log().contains("dev-ed25519"), "the skipped Ed25519 key is named in the log");

    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &ca_chain).unwrap();
    let (ok, out) = openssl_accepts_for_code_signing(dir.path(), &chain, &ca_file);
    assert!(ok, "openssl refused notarium's leaf: {out}");
    let leaf = dir.path().join("leaf.pem");
    let (_, subject) = openssl(&["x509", "-in", leaf.to_str().unwrap(), "-noout", "-subject", "-nameopt", "RFC2253"]);
    assert!(subject.contains("CN=dev-ecdsa") && subject.contains("O=notarium tests"), "{subject}");
    let other_ca = Path::new(support::ROOT).join("tests/fixtures/certificates/root.pem");
    assert!(!openssl_accepts_for_code_signing(dir.path(), &chain, &other_ca).0, "another CA must not verify it");

    let image = format!("127.0.0.1:1/any/app@sha256:{}", "0".repeat(64));
    let (status, body) = notarium.sign(&image, "ca");
    assert_eq!(status, 403, "the CA key signs no image: {body}");
    assert_no_ca_key_material(&notarium, Some(&ca_key));

    // A restart on the same database serves the same leaf: nothing is issued again.
    let data_dir = std::mem::replace(&mut notarium.data_dir, tempfile::tempdir().unwrap());
    let (config_path, database) = (data_dir.path().join("notarium.toml"), notarium.database_url());
    drop(notarium);
    let config_path = config_path.to_str().unwrap().to_owned();
    let env = [("NOTARIUM_CONFIG", config_path.as_str()), ("NOTARIUM_DATABASE_URL", database.as_str())];
    let restarted = Notarium::start_in(data_dir, &[], &env);
    assert_eq!(served_chain(&restarted, "dev-ecdsa").as_deref(), Some(chain.as_str()));
    assert!(!restarted.log().contains("[ca] issued code-signing certificates"), "{}", restarted.log());

    // An administrator may ask for a pass now: nothing is due, so the leaf is kept.
    assert_eq!(support::call(&restarted, "POST", "/v1/keys/certificates", "", None).0, 403, "admins only");
    let (admin, _) = restarted.create_token(&["--role", "admin"]);
    let (status, pass) = support::call(&restarted, "POST", "/v1/keys/certificates", &admin, None);
    assert_eq!(status, 200, "{pass}");
    assert_eq!(pass["kept"], serde_json::json!(["dev-ecdsa@1"]), "{pass}");
    assert_eq!(pass["issued"], serde_json::json!([]), "{pass}");
    assert_eq!(pass["skipped"][0]["key"], "dev-ed25519@1", "{pass}");
    assert_no_ca_key_material(&restarted, Some(&ca_key));
}

/// An openssl root in `dir` (`root.pem`) that certifies `ca_key` as an intermediate CA; the `[ca] certificate`
/// file (intermediate, then root).
fn openssl_intermediate_for(dir: &Path, ca_key: &Path) -> PathBuf {
    let run = |args: &[&str]| {
        let out = Command::new("openssl").args(args).current_dir(dir).output().unwrap();
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    run(&["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "root.key"]);
    let root_subject = "/C=US/O=notarium tests/CN=openssl root";
    run(&["req", "-x509", "-new", "-key", "root.key", "-subj", root_subject, "-days", "30", "-out", "root.pem"]
        .into_iter()
        .chain(["-addext", "basicConstraints=critical,CA:true", "-addext", "keyUsage=critical,keyCertSign"])
        .collect::<Vec<_>>());
    let subject = "/C=US/O=notarium tests/CN=notarium intermediate";
    run(&["req", "-new", "-key", ca_key.to_str().unwrap(), "-subj", subject, "-out", "ca.csr"]);
    std::fs::write(
        dir.join("ca.ext"),
        "basicConstraints=critical,CA:true,pathlen:0\nkeyUsage=critical,keyCertSign\n\
         subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "ca.csr",
        "-CA",
        "root.pem",
        "-CAkey",
        "root.key",
        "-set_serial",
        "2",
        "-days",
        "20",
        "-extfile",
        "ca.ext",
        "-out",
        "ca.pem",
    ]);
    let chain = dir.join("ca-chain.pem");
    let pems = [dir.join("ca.pem"), dir.join("root.pem")].map(|p| std::fs::read_to_string(p).unwrap());
    std::fs::write(&chain, pems.concat()).unwrap();
    chain
}

#[test]
fn a_ca_key_certified_by_an_openssl_root_issues_leaves_openssl_verifies_through_the_intermediate() {
    let keys_dir = tempfile::tempdir().unwrap();
    let ca_key = support::p256_key_file(keys_dir.path(), "ca");
    let pki = tempfile::tempdir().unwrap();
    let ca_chain = openssl_intermediate_for(pki.path(), &ca_key);
    let config = format!(
        "{EXAMPLE_KEYS}\n[[keys]]\nid = \"ca\"\nbackend = \"file\"\npath = \"{}\"\n{}certificate = \"{}\"\n",
        ca_key.display(),
        ca_config("ca"),
        ca_chain.display()
    );
    let notarium = Notarium::start_with_config(&config, &[], &[]);
    let chain = served_chain(&notarium, "dev-ecdsa").expect("dev-ecdsa has a chain");
    assert_eq!(blocks(&chain).len(), 3, "leaf, the intermediate, the openssl root");
    let dir = tempfile::tempdir().unwrap();
    let root = pki.path().join("root.pem");
    let (ok, out) = openssl_accepts_for_code_signing(dir.path(), &chain, &root);
    assert!(ok, "openssl refused the leaf through the intermediate: {out}");
    // The intermediate is needed: the root alone does not vouch for the leaf.
    let leaf_only = blocks(&chain)[0].clone() + &blocks(&chain)[2];
    assert!(!openssl_verify(dir.path(), &leaf_only, &root, Some("codesign")).0, "verified without the intermediate");
}

#[test]
fn openssl_codesign_purpose_refuses_a_chain_whose_leaf_lacks_the_code_signing_eku() {
    let fixtures = Path::new(support::ROOT).join("tests/fixtures/certificates");
    let (root, dir) = (fixtures.join("root.pem"), tempfile::tempdir().unwrap());
    let chain = |name: &str| std::fs::read_to_string(fixtures.join(name)).unwrap();
    let code_signing = chain("dev-ecdsa.chain.pem");
    let server_auth = chain("dev-ecdsa-server-auth.chain.pem");
    let (ok, out) = openssl_verify(dir.path(), &code_signing, &root, Some("codesign"));
    assert!(ok, "the openssl-made code-signing chain: {out}");
    // The serverAuth-only chain is otherwise sound: only the purpose refuses it.
    let (ok, out) = openssl_verify(dir.path(), &server_auth, &root, None);
    assert!(ok, "the serverAuth chain without a purpose: {out}");
    let (ok, out) = openssl_verify(dir.path(), &server_auth, &root, Some("codesign"));
    assert!(!ok && out.contains("unsuitable certificate purpose"), "-purpose codesign accepted serverAuth: {out}");
}

#[test]
fn notation_signs_with_a_chain_the_ca_issued_and_verifies_it_under_that_ca_only() {
    let keys_dir = tempfile::tempdir().unwrap();
    let (notarium, _) = start_with_file_ca(keys_dir.path());
    let chain = served_chain(&notarium, "dev-ecdsa").unwrap();
    let ca_chain = served_chain(&notarium, "ca").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (chain_file, ca_file) = (dir.path().join("chain.pem"), dir.path().join("ca.pem"));
    std::fs::write(&chain_file, &chain).unwrap();
    std::fs::write(&ca_file, &ca_chain).unwrap();

    let registry = Registry::start();
    let image = format!("{}/ca/app@{}", registry.host, push_image(&registry, "ca/app", "v1", "ca-issued"));
    let notation = Notation::new();
    let dev_key = Path::new(support::ROOT).join("keys.example/dev-ecdsa.pem");
    notation.add_key("dev-ecdsa", &dev_key, &chain_file);
    let (signed, out) = notation.sign(&image, "dev-ecdsa", &[]);
    assert!(signed, "notation refused to sign with the chain [ca] issued: {out}");
    // notation requires C, ST and O in a trusted identity: the [ca] subject template names them.
    let identity = "x509.subject: C=US, ST=Washington, O=notarium tests, CN=dev-ecdsa";
    notation.add_trusted_cert("ca", "notarium", &ca_file);
    notation.write_trust_policy("strict", &["ca:notarium"], &[identity]);
    let (accepted, out) = notation.verify(&image);
    assert!(accepted, "notation verify refused the chain [ca] issued: {out}");

    let elsewhere = Notation::new();
    elsewhere.add_trusted_cert("ca", "other", &Path::new(support::ROOT).join("tests/fixtures/certificates/root.pem"));
    elsewhere.write_trust_policy("strict", &["ca:other"], &[identity]);
    let (accepted, out) = elsewhere.verify(&image);
    assert!(!accepted, "notation verify accepted it under another CA: {out}");
}

#[test]
fn a_ca_key_on_a_softhsm_token_issues_leaves_openssl_verifies() {
    let hsm = SoftHsm::new("notarium-ca");
    hsm.generate("EC:prime256v1", "ca", "01");
    let config = format!(
        "{OPEN_WITH_BACKEND_KEYS}{EXAMPLE_KEYS}\n{}{}",
        hsm.key_config("hsm-ca", "ca", "NOTARIUM_TEST_HSM_PIN"),
        ca_config("hsm-ca")
    );
    let env = [("SOFTHSM2_CONF", hsm.conf.to_str().unwrap()), ("NOTARIUM_TEST_HSM_PIN", hsm.pin.as_str())];
    let notarium = Notarium::start_with_config(&config, &[], &env);
    let chain = served_chain(&notarium, "dev-ecdsa").expect("dev-ecdsa has a chain");
    let ca_chain = served_chain(&notarium, "hsm-ca").expect("the CA key shows its own certificate");
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &ca_chain).unwrap();
    let (ok, out) = openssl_accepts_for_code_signing(dir.path(), &chain, &ca_file);
    assert!(ok, "openssl refused the leaf the token's CA key issued: {out}");
    // The CA certificate holds the token's public key: the token signed it.
    let (_, ca_key) = openssl(&["x509", "-in", ca_file.to_str().unwrap(), "-noout", "-pubkey"]);
    assert_eq!(ca_key, hsm.public_key_pem("ca", "01"));
    let listed = hsm.private_keys();
    assert!(listed.contains("never extractable"), "{listed}");
}

#[test]
fn a_ca_key_in_openbao_transit_issues_leaves_openssl_verifies() {
    let bao = OpenBao::start();
    bao.ok(&["write", "-f", "transit/keys/notarium-ca", "type=ecdsa-p256"]);
    let config = format!(
        "{OPEN_WITH_BACKEND_KEYS}{EXAMPLE_KEYS}\n{}{}",
        bao.key_config("bao-ca", "notarium-ca", "NOTARIUM_TEST_BAO_TOKEN"),
        ca_config("bao-ca")
    );
    let notarium = Notarium::start_with_config(&config, &[], &[("NOTARIUM_TEST_BAO_TOKEN", &bao.root_token)]);
    let chain = served_chain(&notarium, "dev-ecdsa").expect("dev-ecdsa has a chain");
    let ca_chain = served_chain(&notarium, "bao-ca").expect("the CA key shows its own certificate");
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &ca_chain).unwrap();
    let (ok, out) = openssl_accepts_for_code_signing(dir.path(), &chain, &ca_file);
    assert!(ok, "openssl refused the leaf the Transit CA key issued: {out}");
    assert!(!notarium.log().contains(&bao.root_token), "the Vault token is in the log");
}

/// An expired chain for dev-ecdsa, made with notarium's own certificate builder and a throwaway root.
fn expired_chain(dir: &Path) -> PathBuf {
    let root_key = p256::ecdsa::SigningKey::from_slice(&[7u8; 32]).unwrap();
    let root_spki = root_key.verifying_key().to_public_key_der().unwrap();
    let dev = std::fs::read_to_string(Path::new(support::ROOT).join("keys.example/dev-ecdsa.pem")).unwrap();
    let dev_spki = p256::SecretKey::from_pkcs8_pem(&dev).unwrap().public_key().to_public_key_der().unwrap();
    let at = |year| time::Date::from_calendar_date(year, time::Month::January, 1).unwrap().midnight().assume_utc();
    let window = Window { not_before: at(2020), not_after: at(2021) };
    let sign = |tbs: &[u8]| {
        let signature: p256::ecdsa::Signature = root_key.sign(tbs);
        assemble(tbs, Algorithm::EcdsaP256Sha256, signature.to_der().as_bytes()).unwrap()
    };
    let root_tbs =
        self_signed_ca_tbs("CN=expired root", root_spki.as_bytes(), Algorithm::EcdsaP256Sha256, window, &[1]);
    let root = sign(&root_tbs.unwrap());
    let leaf_tbs = leaf_tbs("CN=dev-ecdsa", dev_spki.as_bytes(), &root, Algorithm::EcdsaP256Sha256, window, &[2]);
    let leaf = sign(&leaf_tbs.unwrap());
    let path = dir.join("expired.chain.pem");
    std::fs::write(&path, [leaf, root].iter().map(|der| notarium::keys::pem_certificate(der)).collect::<String>())
        .unwrap();
    path
}

/// Runs `notarium serve` on `config`; it must exit with a failure within 30 s. Its stderr.
fn serve_must_fail(config: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notarium.toml");
    std::fs::write(&path, config).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_notarium"))
        .arg("serve")
        .env("NOTARIUM_CONFIG", &path)
        .env("NOTARIUM_LISTEN", "127.0.0.1:0")
        .env("NOTARIUM_DATA_DIR", dir.path())
        .env("NOTARIUM_POLICIES_DIR", dir.path().join("no-policies"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(30) {
            child.kill().unwrap();
            panic!("notarium started with an unusable certificate chain");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_certificate_chain_for_another_key_or_expired_stops_the_start_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let fixtures = Path::new(support::ROOT).join("tests/fixtures/certificates");
    let good = fixtures.join("dev-ecdsa.chain.pem");
    let dev_key = Path::new(support::ROOT).join("keys.example/dev-ecdsa.pem");
    let with_chain = |chain: &Path| {
        format!(
            "[[keys]]\nid = \"dev-ecdsa\"\nbackend = \"file\"\npath = \"{}\"\ncertificate_chain = \"{}\"\n",
            dev_key.display(),
            chain.display()
        )
    };
    for (chain, reason) in [
        (fixtures.join("other-key.chain.pem"), "another public key"),
        (expired_chain(dir.path()), "not valid at"),
        (fixtures.join("dev-ecdsa-server-auth.chain.pem"), "code signing"),
    ] {
        let stderr = serve_must_fail(&with_chain(&chain));
        assert!(stderr.contains(&chain.display().to_string()) && stderr.contains(reason), "{stderr}");
        assert!(stderr.contains("\"dev-ecdsa\""), "{stderr}");
    }
    // The good chain is served as configured.
    let notarium = Notarium::start_with_config(&with_chain(&good), &[], &[]);
    assert_eq!(served_chain(&notarium, "dev-ecdsa").unwrap(), std::fs::read_to_string(&good).unwrap());
}
