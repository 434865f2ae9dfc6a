//! The vault backend against a real OpenBao (Vault API) dev server: Transit keys created by the test sign
//! through the API, skopeo and cosign accept the result, a rotation in OpenBao is picked up live with old
//! signatures still verifying, AppRole logins renew, and every fault is a named 503 with no token in sight.

use crate::support;

use std::path::Path;

use support::{
    Cosign, Notarium, OPEN_WITH_BACKEND_KEYS, OpenBao, Registry, push_image, signature_rows, skopeo_accepts,
};

const TOKEN_ENV: &str = "NOTARIUM_TEST_VAULT_TOKEN";

fn bao_with_keys() -> OpenBao {
    let bao = OpenBao::start();
    bao.ok(&["write", "-f", "transit/keys/cosign-p256", "type=ecdsa-p256"]);
    bao.ok(&["write", "-f", "transit/keys/cosign-ed25519", "type=ed25519"]);
    bao
}

fn start(bao: &OpenBao, registry: &Registry, extra: &str, env: &[(&str, &str)]) -> Notarium {
    let config = format!(
        "{OPEN_WITH_BACKEND_KEYS}{}{}{extra}",
        bao.key_config("vault-p256", "cosign-p256", TOKEN_ENV),
        bao.key_config("vault-ed25519", "cosign-ed25519", TOKEN_ENV)
    );
    let mut env = env.to_vec();
    env.push((TOKEN_ENV, &bao.root_token));
    Notarium::start_with_config(&config, &[&registry.host], &env)
}

fn key_versions(notarium: &Notarium, id: &str) -> Vec<u64> {
    let keys: serde_json::Value = serde_json::from_str(&notarium.get_text("/v1/keys").1).unwrap();
    keys["keys"].as_array().unwrap().iter().filter(|k| k["id"] == id).map(|k| k["version"].as_u64().unwrap()).collect()
}

#[test]
fn transit_keys_sign_images_that_skopeo_and_cosign_accept_and_rotation_keeps_old_signatures_valid() {
    let bao = bao_with_keys();
    let registry = Registry::start();
    let notarium = start(&bao, &registry, "", &[]);
    let dir = tempfile::tempdir().unwrap();
    let cosign = Cosign::new();
    let mut first_p256 = String::new();
    for (key, other) in
        [("vault-p256", "tests/fixtures/other-p256.pub"), ("vault-ed25519", "tests/fixtures/other-ed25519.pub")]
    {
        let digest = push_image(&registry, "vault/app", key, key);
        let image = format!("{}/vault/app@{digest}", registry.host);
        let (status, body) = notarium.sign(&image, key);
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["key_version"], 1);
        let public_key = notarium.public_key_file(key, dir.path());
        let (ok, log) = skopeo_accepts(&registry, &image, &public_key, "matchRepository");
        assert!(ok, "skopeo refused {key}: {log}");
        let (ok, log) = cosign.verify(&image, &public_key);
        assert!(ok, "cosign refused {key}: {log}");
        let wrong = Path::new(support::ROOT).join(other);
        assert!(!skopeo_accepts(&registry, &image, &wrong, "matchRepository").0);
        assert!(!cosign.verify(&image, &wrong).0);
        if key == "vault-p256" {
            first_p256 = image;
        }
    }

    bao.ok(&["write", "-f", "transit/keys/cosign-p256/rotate"]);
    let digest = push_image(&registry, "vault/app", "rotated", "rotated");
    let second = format!("{}/vault/app@{digest}", registry.host);
    let (status, body) = notarium.sign(&second, "vault-p256");
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["key_version"], 2, "the rotation in OpenBao was not picked up");
    assert_eq!(key_versions(&notarium, "vault-p256"), [1, 2]);
    let v1 = notarium.public_key_file("vault-p256@1", dir.path());
    let v2 = notarium.public_key_file("vault-p256@2", dir.path());
    // The register saw the rotation: version 2 logged as a rotation, with its public key, before its signature.
    let (_, page) = notarium.get_text("/v1/log/entries?start=0&end=100");
    let page: serde_json::Value = serde_json::from_str(&page).unwrap();
    let entries: Vec<&serde_json::Value> = page["entries"].as_array().unwrap().iter().map(|e| &e["entry"]).collect();
    let position = |kind: &str, version: u64| {
        entries.iter().position(|e| {
            e["kind"] == kind
                && e["subject"]["key"] == "vault-p256"
                && (e["subject"]["version"] == version || e["details"]["key_version"] == version)
        })
    };
    let rotated = position("key-rotated", 2).expect("a key-rotated entry for vault-p256 version 2");
    assert_eq!(entries[rotated]["details"]["public_key"], std::fs::read_to_string(&v2).unwrap().as_str());
    assert!(position("key-added", 1).unwrap() < rotated);
    assert!(rotated < entries.iter().position(|e| e["kind"] == "sign" && e["details"]["key_version"] == 2).unwrap());
    assert!(cosign.verify(&first_p256, &v1).0, "the pre-rotation signature no longer verifies");
    assert!(skopeo_accepts(&registry, &first_p256, &v1, "matchRepository").0);
    assert!(cosign.verify(&second, &v2).0);
    assert!(!cosign.verify(&first_p256, &v2).0, "version 2 must not verify version 1's signature");
    let (status, body) = notarium.sign(&second, "vault-p256@1");
    assert_eq!((status, body["key_version"].as_u64()), (201, Some(1)), "{body}");
    assert_eq!(signature_rows(&notarium.database_url()), 4);
}

#[test]
fn approle_logins_are_renewed_or_redone_as_tokens_expire() {
    let bao = bao_with_keys();
    let registry = Registry::start();
    bao.ok(&["auth", "enable", "approle"]);
    let policy = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        policy.path(),
        r#"path "transit/sign/cosign-p256" { capabilities = ["update"] }
path "transit/sign/cosign-p256/*" { capabilities = ["update"] }
path "transit/keys/cosign-p256" { capabilities = ["read"] }
"#,
    )
    .unwrap();
    bao.ok(&["policy", "write", "signer", policy.path().to_str().unwrap()]);
    bao.ok(&["write", "auth/approle/role/notarium", "token_policies=signer", "token_ttl=8s", "token_max_ttl=12s"]);
    let role_id = bao.ok(&["read", "-field=role_id", "auth/approle/role/notarium/role-id"]);
    let secret_id = bao.ok(&["write", "-f", "-field=secret_id", "auth/approle/role/notarium/secret-id"]);
    let config = format!(
        "{OPEN_WITH_BACKEND_KEYS}[[keys]]\nid = \"approle\"\nbackend = \"vault\"\naddress = \"{}\"\nkey = \"cosign-p256\"\nauth = \"approle\"\nrole_id = \"{role_id}\"\nsecret_id_env = \"NOTARIUM_TEST_SECRET_ID\"\nrefresh_secs = 0\n",
        bao.address
    );
    let notarium = Notarium::start_with_config(&config, &[&registry.host], &[("NOTARIUM_TEST_SECRET_ID", &secret_id)]);
    // Renewal is due at two thirds of the 8 s TTL, and the token dies at 12 s whatever happens.
    for (round, pause) in [(1, 0), (2, 5500), (3, 6500)] {
        std::thread::sleep(std::time::Duration::from_millis(pause));
        let digest = push_image(&registry, "vault/approle", &format!("r{round}"), &format!("approle {round}"));
        let (status, body) = notarium.sign(&format!("{}/vault/approle@{digest}", registry.host), "approle");
        assert_eq!(status, 201, "round {round}: {body}");
    }
    let log = notarium.log();
    assert!(log.contains("renewed the Vault token"), "the AppRole token was not renewed before it expired");
    assert!(log.contains("logging in again"), "the expired AppRole token was not replaced by a new login");
    assert!(!log.contains(&secret_id), "the AppRole secret id reached the log");
}

#[test]
fn vault_faults_are_named_503s_without_tokens_and_other_keys_keep_signing() {
    let mut bao = bao_with_keys();
    let registry = Registry::start();
    let weak_token = bao.ok(&["token", "create", "-policy=default", "-field=token"]);
    // A server that accepts connections and never answers: the request must time out, not hang.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_config = bao
        .key_config("silent", "cosign-p256", TOKEN_ENV)
        .replace(&bao.address, &format!("http://{}", silent.local_addr().unwrap()))
        .replace("timeout_secs = 3", "timeout_secs = 1");
    let extra = format!(
        "{silent_config}{}{}[[keys]]\nid = \"dev-ecdsa\"\nbackend = \"file\"\npath = \"{}/keys.example/dev-ecdsa.pem\"\n",
        bao.key_config("denied", "cosign-p256", "NOTARIUM_TEST_WEAK_TOKEN"),
        bao.key_config("missing", "absent-key", TOKEN_ENV),
        support::ROOT,
    );
    let notarium = start(&bao, &registry, &extra, &[("NOTARIUM_TEST_WEAK_TOKEN", &weak_token)]);
    let digest = push_image(&registry, "vault/faults", "v1", "faults");
    let image = format!("{}/vault/faults@{digest}", registry.host);
    let root_token = bao.root_token.clone();
    let expect_503 = |key: &str, cause: &str| {
        let (status, body) = notarium.sign(&image, key);
        assert_eq!(status, 503, "{key}: {body}");
        assert_eq!(body["type"], "https://notarium.dev/problems/key-backend-unavailable");
        let detail = body["detail"].as_str().unwrap();
        assert!(detail.contains("vault") && detail.contains(cause), "{key}: {detail}");
        assert!(!detail.contains(&root_token) && !detail.contains(&weak_token), "{detail}");
    };
    expect_503("denied", "permission denied");
    expect_503("silent", "cannot reach Vault");
    expect_503("missing", "transit key transit/absent-key does not exist");
    assert_eq!(signature_rows(&notarium.database_url()), 0);

    bao.ok(&["operator", "seal"]);
    expect_503("vault-p256", "sealed");
    bao.stop();
    expect_503("vault-ed25519", "cannot reach Vault");
    assert_eq!(signature_rows(&notarium.database_url()), 0);

    let (status, body) = notarium.sign(&image, "dev-ecdsa");
    assert_eq!(status, 201, "a key on another backend must keep signing: {body}");
    let log = notarium.log();
    assert!(!log.contains(&bao.root_token) && !log.contains(&weak_token), "a Vault token reached the log");
}

/// A stand-in for the Kubernetes API's TokenReview endpoint (no Kubernetes API server can be installed
/// here): it answers that the service-account token it is shown belongs to `ci/notarium` when the token
/// is `expected_jwt`, and records every token it reviewed.
fn fake_token_review(expected_jwt: String) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let reviewed = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = reviewed.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let review: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            let token = review["spec"]["token"].as_str().unwrap_or_default().to_owned();
            let authenticated = token == expected_jwt;
            seen.lock().unwrap().push(token);
            let answer = serde_json::json!({
                "kind": "TokenReview",
                "apiVersion": "authentication.k8s.io/v1",
                "status": {
                    "authenticated": authenticated,
                    "user": {"username": "system:serviceaccount:ci:notarium", "uid": "d7d5c1c2-0000-4000-8000-000000000001"},
                },
            })
            .to_string();
            let _ = write!(
                stream,
                "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                answer.len()
            );
        }
    });
    (address, reviewed)
}

/// An unsigned JWT with a service account's claims; the (fake) TokenReview is what vouches for it.
fn service_account_jwt() -> String {
    use base64::Engine as _;
    let b64 = |v: serde_json::Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let header = b64(serde_json::json!({"alg": "RS256", "kid": "test"}));
    let claims = b64(serde_json::json!({
        "iss": "kubernetes/serviceaccount",
        "sub": "system:serviceaccount:ci:notarium",
        "kubernetes.io/serviceaccount/namespace": "ci",
        "kubernetes.io/serviceaccount/service-account.name": "notarium",
        "kubernetes.io/serviceaccount/service-account.uid": "d7d5c1c2-0000-4000-8000-000000000001",
    }));
    format!("{header}.{claims}.c2lnbmF0dXJl")
}

#[test]
fn kubernetes_service_account_login_signs() {
    let bao = bao_with_keys();
    let registry = Registry::start();
    let jwt = service_account_jwt();
    let (kubernetes_api, reviewed) = fake_token_review(jwt.clone());
    bao.ok(&["auth", "enable", "kubernetes"]);
    // OpenBao insists on a CA certificate even for a plain-HTTP API address; any certificate will do.
    let ca = tempfile::tempdir().unwrap();
    let made = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1"])
        .args(["-subj", "/CN=kubernetes", "-keyout"])
        .arg(ca.path().join("ca.key"))
        .arg("-out")
        .arg(ca.path().join("ca.crt"))
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    bao.ok(&[
        "write",
        "auth/kubernetes/config",
        &format!("kubernetes_host={kubernetes_api}"),
        &format!("kubernetes_ca_cert=@{}", ca.path().join("ca.crt").display()),
        "disable_local_ca_jwt=true",
    ]);
    let policy = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        policy.path(),
        "path \"transit/sign/cosign-ed25519\" { capabilities = [\"update\"] }\npath \"transit/keys/cosign-ed25519\" { capabilities = [\"read\"] }\n",
    )
    .unwrap();
    bao.ok(&["policy", "write", "k8s-signer", policy.path().to_str().unwrap()]);
    bao.ok(&[
        "write",
        "auth/kubernetes/role/notarium",
        "bound_service_account_names=notarium",
        "bound_service_account_namespaces=ci",
        "token_policies=k8s-signer",
    ]);
    let jwt_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(jwt_file.path(), &jwt).unwrap();
    let config = format!(
        "{OPEN_WITH_BACKEND_KEYS}[[keys]]\nid = \"k8s\"\nbackend = \"vault\"\naddress = \"{}\"\nkey = \"cosign-ed25519\"\nauth = \"kubernetes\"\nkubernetes_role = \"notarium\"\njwt_file = \"{}\"\n",
        bao.address,
        jwt_file.path().display()
    );
    let notarium = Notarium::start_with_config(&config, &[&registry.host], &[]);
    let digest = push_image(&registry, "vault/k8s", "v1", "k8s");
    let image = format!("{}/vault/k8s@{digest}", registry.host);
    let (status, body) = notarium.sign(&image, "k8s");
    assert_eq!(status, 201, "{body}");
    assert!(reviewed.lock().unwrap().contains(&jwt), "OpenBao never asked the Kubernetes API about our token");
    let dir = tempfile::tempdir().unwrap();
    let (ok, log) = Cosign::new().verify(&image, &notarium.public_key_file("k8s", dir.path()));
    assert!(ok, "{log}");
    assert!(!notarium.log().contains(&jwt), "the service-account token reached the log");
}
