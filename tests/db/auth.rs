//! Who may do what: API tokens with roles and signer scopes, OIDC ID tokens from CI, refusals recorded
//! in the register, rate limits, the open loopback default, and the TLS listener.

use crate::support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::pkcs8::EncodePrivateKey;
use serde_json::{Value, json};
use support::*;

fn sign(server: &Notarium, token: &str, image: &str, key: &str) -> (u16, Value) {
    call(server, "POST", "/v1/sign", token, Some(json!({"image": image, "key": key})))
}

/// Waits until the server has noticed that tokens exist (it checks every few seconds while open).
fn wait_until_closed(server: &Notarium) {
    let start = Instant::now();
    while call(server, "POST", "/v1/verify", "", Some(json!({"image": "x"}))).0 != 401 {
        assert!(start.elapsed() < Duration::from_secs(10), "the API stayed open after a token was made");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn entries(server: &Notarium, token: &str) -> Vec<Value> {
    let (status, body) = call(server, "GET", "/v1/log/entries?start=0&end=1000", token, None);
    assert_eq!(status, 200, "{body}");
    body["entries"].as_array().unwrap().iter().map(|e| e["entry"].clone()).collect()
}

fn assert_nowhere(haystacks: &[(&str, &str)], secrets: &[&str]) {
    for (name, haystack) in haystacks {
        for secret in secrets {
            assert!(!haystack.contains(secret), "a secret appears in {name}");
        }
    }
}

fn sha256_hex(text: &str) -> String {
    sha256_digest(text.as_bytes()).trim_start_matches("sha256:").to_owned()
}

/// A registry with one image for team A and one for team B, and a server that was open on loopback until
/// its first tokens were made: a signer scoped to team A's repositories and `dev-ecdsa`, a verifier and an
/// auditor.
struct TwoTeams {
    /// Kept running while the server reaches it.
    _registry: Registry,
    server: Notarium,
    image_a: String,
    image_b: String,
    repos: String,
    signer: String,
    signer_id: String,
    verifier: String,
    auditor: String,
}

fn two_teams() -> TwoTeams {
    let registry = Registry::start();
    let server = Notarium::start(&[&registry.host]);
    let team_a = push_many(&registry, "team-a/app", 1).remove(0);
    let team_b = push_many(&registry, "team-b/app", 1).remove(0);
    let image_a = format!("{}/team-a/app@{team_a}", registry.host);
    let image_b = format!("{}/team-b/app@{team_b}", registry.host);

    // Open on loopback until the first token exists, and it says so.
    assert!(server.log().contains("THE API IS OPEN"), "{}", server.log());
    assert_eq!(call(&server, "GET", "/v1/log/entries?start=0&end=1", "", None).0, 200);
    // ... except token administration, which needs an admin token even then.
    let (status, body) = call(&server, "POST", "/v1/tokens", "", Some(json!({"role": "admin"})));
    assert_eq!(status, 403, "{body}");

    let repos = format!("{}/team-a/*", registry.host);
    let (signer, signer_id) = server.create_token(&["--role", "signer", "--repos", &repos, "--keys", "dev-ecdsa"]);
    let (verifier, _) = server.create_token(&["--role", "verifier"]);
    let (auditor, _) = server.create_token(&["--role", "auditor", "--expires", "90d"]);
    wait_until_closed(&server);
    TwoTeams { _registry: registry, server, image_a, image_b, repos, signer, signer_id, verifier, auditor }
}

impl TwoTeams {
    fn sign(&self, token: &str, image: &str, key: &str) -> (u16, Value) {
        sign(&self.server, token, image, key)
    }

    /// Neither a token (these three and `more`) nor its hash reaches the log, a listing, or the database
    /// file.
    fn assert_no_token_is_kept(&self, more: &[&str]) {
        let listed = self.server.token_cli(&["list"]);
        let database: Vec<u8> = std::fs::read_dir(self.server.data_dir.path())
            .unwrap()
            .filter_map(Result::ok)
            .filter(|f| f.file_name().to_string_lossy().starts_with("notarium.db"))
            .flat_map(|f| std::fs::read(f.path()).unwrap())
            .collect();
        let database = String::from_utf8_lossy(&database);
        let tokens: Vec<&str> = [self.signer.as_str(), self.verifier.as_str(), self.auditor.as_str()]
            .into_iter()
            .chain(more.iter().copied())
            .collect();
        let hashes: Vec<String> = tokens.iter().map(|t| sha256_hex(t)).collect();
        let secrets: Vec<&str> = tokens.iter().copied().chain(hashes.iter().map(String::as_str)).collect();
        assert_nowhere(&[("the server log", &self.server.log()), ("the token list", &listed.to_string())], &secrets);
        assert_nowhere(&[("the database", &database)], &tokens);
    }
}

#[test]
fn tokens_scope_signers_and_roles_and_every_refusal_is_recorded() {
    let t = two_teams();
    let (server, image_a, signer) = (&t.server, &t.image_a, &t.signer);

    let (status, body) = t.sign(signer, image_a, "dev-ecdsa");
    assert_eq!(status, 201, "{body}");
    let (status, body) = t.sign(signer, &t.image_b, "dev-ecdsa");
    assert_eq!((status, body["type"].as_str().unwrap()), (403, "https://notarium.dev/problems/forbidden"), "{body}");
    assert!(body["detail"].as_str().unwrap().contains("team-b/app"), "{body}");
    let (status, body) = t.sign(signer, image_a, "dev-ed25519");
    assert_eq!(status, 403, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("dev-ed25519"), "{body}");
    assert_eq!(t.sign(&t.verifier, image_a, "dev-ecdsa").0, 403);
    assert_eq!(t.sign(&t.auditor, image_a, "dev-ecdsa").0, 403);
    assert_eq!(t.sign("", image_a, "dev-ecdsa").0, 401);
    assert_eq!(t.sign("ntk_0000000000000000_forged", image_a, "dev-ecdsa").0, 401);
    let forged = format!("{}x", &signer[..signer.len() - 1]);
    assert_eq!(t.sign(&forged, image_a, "dev-ecdsa").0, 401);

    // A verifier verifies; an auditor reads and exports but does not verify.
    let verify = Some(json!({"image": image_a}));
    assert_eq!(call(server, "POST", "/v1/verify", &t.verifier, verify.clone()).0, 200);
    assert_eq!(call(server, "POST", "/v1/verify", &t.auditor, verify).0, 403);
    assert_eq!(call(server, "GET", "/v1/log/export", &t.auditor, None).0, 200);
    assert_eq!(call(server, "GET", "/v1/log/export", &t.verifier, None).0, 403);
    // Public routes stay public.
    for path in ["/v1/keys", "/v1/keys/dev-ecdsa/public.pem", "/v1/log/checkpoint", "/healthz", "/metrics"] {
        assert_eq!(call(server, "GET", path, "", None).0, 200, "{path}");
    }

    // The register names who signed and who was refused what.
    let log = entries(server, &t.auditor);
    let signed: Vec<_> = log.iter().filter(|e| e["kind"] == "sign").collect();
    assert_eq!(signed.len(), 1);
    assert_eq!(signed[0]["actor"]["name"], format!("token:{}", t.signer_id));
    let denied: Vec<_> = log.iter().filter(|e| e["kind"] == "request-denied").collect();
    // Seven refusals of four callers: each caller's first of the minute is recorded at once, the others
    // of that minute later in one entry with their count.
    assert_eq!(denied.len(), 4, "{denied:#?}");
    assert!(denied.iter().all(|e| e["details"]["count"] == 1), "{denied:#?}");
    assert!(denied.iter().any(|e| e["actor"]["name"] == "anonymous" && e["subject"]["route"] == "POST /v1/tokens"));
    assert!(denied.iter().all(|e| e["actor"]["addr"].as_str().is_some_and(|a| a.starts_with("127.0.0.1:"))));
    assert!(denied.iter().any(|e| e["actor"]["name"] == format!("token:{}", t.signer_id)
        && e["subject"]["route"] == "POST /v1/sign"
        && e["details"]["reason"].as_str().unwrap().contains("team-b/app")));

    let made: Vec<_> = log.iter().filter(|e| e["kind"] == "token-created").collect();
    assert_eq!(made.len(), 3);
    assert!(
        made.iter().any(|e| e["details"]["id"] == t.signer_id.as_str() && e["details"]["repos"][0] == t.repos.as_str())
    );
    t.assert_no_token_is_kept(&[]);
}

#[test]
fn the_cli_client_sends_notarium_token() {
    let t = two_teams();
    let cli_sign = |token: &str| {
        Command::new(env!("CARGO_BIN_EXE_notarium"))
            .args(["sign", &t.image_a, "--key", "dev-ecdsa", "--server", &t.server.url])
            .env("NOTARIUM_TOKEN", token)
            .output()
            .unwrap()
    };
    let out = cli_sign(&t.signer);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = cli_sign("");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bearer token"));
    t.assert_no_token_is_kept(&[]);
}

#[test]
fn revoked_and_expired_tokens_are_refused() {
    let t = two_teams();
    let (short, _) =
        t.server.create_token(&["--role", "signer", "--repos", &t.repos, "--keys", "*", "--expires", "1s"]);
    std::thread::sleep(Duration::from_millis(2100));
    let (status, body) = t.sign(&short, &t.image_a, "dev-ecdsa");
    assert_eq!(status, 401, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("expired"), "{body}");
    t.server.token_cli(&["revoke", &t.signer_id]);
    let (status, body) = t.sign(&t.signer, &t.image_a, "dev-ecdsa");
    assert_eq!(status, 401, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("revoked"), "{body}");
    let listed = t.server.token_cli(&["list"]);
    let row = listed["tokens"].as_array().unwrap().iter().find(|e| e["id"] == t.signer_id.as_str()).unwrap().clone();
    assert!(row["revoked_at"].is_string() && row.get("secret_sha256").is_none(), "{row}");
    t.assert_no_token_is_kept(&[&short]);
}

#[test]
fn every_documented_operation_says_whether_it_needs_a_caller_and_the_server_agrees() {
    let server = Notarium::start_with_config("[auth]\nrequired = true\n", &[], &[]);
    let (status, document) = call(&server, "GET", "/v1/openapi.json", "", None);
    assert_eq!(status, 200);
    let (mut protected, mut public) = (0, 0);
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let schemes: Vec<&str> = operation["security"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|s| s.as_object().unwrap().keys().map(String::as_str))
                .collect();
            let concrete = path.replace("{id}", "dev-ecdsa");
            let body = (method == "post").then(|| json!({}));
            let (status, answer) = call(&server, &method.to_uppercase(), &concrete, "", body);
            if schemes.iter().any(|s| ["signer", "verifier", "auditor", "admin"].contains(s)) {
                protected += 1;
                assert_eq!(status, 401, "{method} {path} answered without a caller: {answer}");
            } else if !schemes.contains(&"registry_secret") {
                public += 1;
                assert_ne!(status, 401, "{method} {path} is documented as public: {answer}");
            }
        }
    }
    // Public: the seven API operations, the hash tiles and the web view's page and files.
    assert_eq!((protected, public), (21, 10), "operations needing a caller, public ones");
}

#[test]
fn administrators_manage_tokens_over_the_api_and_callers_are_rate_limited() {
    let config = "[auth]\nrequired = true\nrate_per_minute = 5\n";
    let server = Notarium::start_with_config(config, &[], &[]);
    assert_eq!(call(&server, "GET", "/v1/tokens", "", None).0, 401);
    let (admin, _) = server.create_token(&["--role", "admin"]);

    let (status, made) = call(&server, "POST", "/v1/tokens", &admin, Some(json!({"role": "auditor", "expires": "1h"})));
    assert_eq!(status, 201, "{made}");
    let auditor = made["token"].as_str().unwrap();
    let (status, body) = call(&server, "POST", "/v1/tokens", &admin, Some(json!({"role": "signer"})));
    assert_eq!(status, 422, "{body}");
    assert_eq!(call(&server, "GET", "/v1/tokens", auditor, None).0, 403);
    let (status, listed) = call(&server, "GET", "/v1/tokens", &admin, None);
    assert_eq!(status, 200);
    assert!(!listed.to_string().contains(auditor) && !listed.to_string().contains(&sha256_hex(auditor)));

    // 5 per minute: the admin has used 3 requests; 2 more, and the next is refused with a time to retry.
    for _ in 0..2 {
        assert_eq!(call(&server, "GET", "/v1/tokens", &admin, None).0, 200);
    }
    let response = client().get(format!("{}/v1/tokens", server.url)).bearer_auth(&admin).send().unwrap();
    assert_eq!(response.status().as_u16(), 429);
    let retry: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=12).contains(&retry), "{retry}");
    // Another caller has its own allowance.
    let id = made["record"]["id"].as_str().unwrap();
    assert_eq!(call(&server, "GET", "/v1/log/checkpoint", auditor, None).0, 200);
    let (status, _) = call(&server, "DELETE", &format!("/v1/tokens/{id}"), auditor, None);
    assert_eq!(status, 403);
    let (status, log) = call(&server, "GET", "/v1/log/entries?start=0&end=100", auditor, None);
    assert_eq!(status, 200, "{log}");
    let kinds: Vec<&str> =
        log["entries"].as_array().unwrap().iter().map(|e| e["entry"]["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds.iter().filter(|k| **k == "token-created").count(), 2, "{kinds:?}");
    assert!(!log.to_string().contains(auditor));
}

/// An OIDC issuer the test controls: an ES256 and an RS256 key in a JWKS file.
struct Issuer {
    name: String,
    dir: tempfile::TempDir,
    es256: EncodingKey,
    rs256: EncodingKey,
    es256_public_pem: String,
}

const ISSUER: &str = "https://ci.example.test";

impl Issuer {
    fn new(name: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let secret = p256::SecretKey::from_slice(&[7u8; 32]).unwrap();
        let (es256, ec_jwk) = ec_key(7, "ec-1");
        let es256_public_pem = {
            use p256::pkcs8::EncodePublicKey;
            secret.public_key().to_public_key_pem(Default::default()).unwrap()
        };
        let rsa_pem = dir.path().join("rsa.pem");
        let out = Command::new("openssl")
            .args(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out"])
            .arg(&rsa_pem)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let modulus =
            Command::new("openssl").args(["rsa", "-noout", "-modulus", "-in"]).arg(&rsa_pem).output().unwrap();
        let modulus = String::from_utf8(modulus.stdout).unwrap();
        let modulus = hex_bytes(modulus.trim().trim_start_matches("Modulus="));
        let rs256 = EncodingKey::from_rsa_pem(&std::fs::read(&rsa_pem).unwrap()).unwrap();
        let jwks = json!({"keys": [
            ec_jwk,
            {"kty": "RSA", "kid": "rsa-1", "use": "sig", "alg": "RS256", "n": URL_SAFE_NO_PAD.encode(&modulus), "e": "AQAB"},
        ]});
        std::fs::write(dir.path().join("jwks.json"), jwks.to_string()).unwrap();
        Self { name: name.to_owned(), dir, es256, rs256, es256_public_pem }
    }

    fn config(&self, registry: &str) -> String {
        format!(
            r#"
[[auth.oidc]]
issuer = "{ISSUER}"
audience = "notarium"
jwks_file = "{jwks}"

[[auth.oidc.rules]]
role = "signer"
repos = ["{registry}/team-a/*"]
keys = ["dev-ecdsa"]
claims = {{ repository = "acme/team-a-*", ref = "refs/heads/main" }}

[[auth.oidc.rules]]
role = "verifier"
claims = {{ repository = "acme/deployer" }}
"#,
            jwks = self.dir.path().join("jwks.json").display()
        )
    }

    fn claims(&self, changes: Value) -> Value {
        let now = unix_now();
        let mut claims = json!({
            "iss": self.name, "aud": "notarium", "sub": "repo:acme/team-a-api:ref:refs/heads/main",
            "repository": "acme/team-a-api", "ref": "refs/heads/main", "workflow": "release",
            "iat": now, "nbf": now - 5, "exp": now + 600,
        });
        for (k, v) in changes.as_object().unwrap() {
            claims[k] = v.clone();
        }
        claims
    }

    fn es256_token(&self, changes: Value) -> String {
        let header = Header { kid: Some("ec-1".into()), ..Header::new(Algorithm::ES256) };
        jsonwebtoken::encode(&header, &self.claims(changes), &self.es256).unwrap()
    }
}

fn hex_bytes(hex: &str) -> Vec<u8> {
    (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect()
}

fn unsigned_jwt(header: Value, claims: &Value) -> String {
    let part = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    format!("{}.{}.", part(&header), part(claims))
}

/// A server trusting a CI issuer the test controls, and an image of team A signed through it with a valid
/// ES256 ID token (`good`) of the `release` workflow on team A's main branch.
struct CiSigned {
    registry: Registry,
    issuer: Issuer,
    server: Notarium,
    digest: String,
    image: String,
    good: String,
}

fn ci_signed() -> CiSigned {
    let registry = Registry::start();
    let issuer = Issuer::new(ISSUER);
    let server = Notarium::start_with_config(&issuer.config(&registry.host), &[&registry.host], &[]);
    let digest = push_many(&registry, "team-a/api", 1).remove(0);
    let image = format!("{}/team-a/api@{digest}", registry.host);

    let good = issuer.es256_token(json!({}));
    let (status, body) = sign(&server, &good, &image, "dev-ecdsa");
    assert_eq!(status, 201, "{body}");
    CiSigned { registry, issuer, server, digest, image, good }
}

#[test]
fn ci_id_tokens_are_verified_against_the_issuer_keys_and_mapped_to_scopes() {
    let ci = ci_signed();
    let rsa = jsonwebtoken::encode(
        &Header { kid: Some("rsa-1".into()), ..Header::new(Algorithm::RS256) },
        &ci.issuer.claims(json!({})),
        &ci.issuer.rs256,
    )
    .unwrap();
    assert_eq!(call(&ci.server, "POST", "/v1/verify", &rsa, Some(json!({"image": ci.image}))).0, 403);
    let deployer = ci.issuer.es256_token(json!({"repository": "acme/deployer", "sub": "repo:acme/deployer"}));
    assert_eq!(call(&ci.server, "POST", "/v1/verify", &deployer, Some(json!({"image": ci.image}))).0, 200);
    assert_nowhere(&[("the server log", &ci.server.log())], &[ci.good.as_str(), rsa.as_str()]);
}

#[test]
fn the_ci_identity_is_in_the_signature_payload_where_clients_cannot_write_it() {
    let ci = ci_signed();
    // The identity is in the signature payload's optional section, where verifiers see it.
    let sig_tag = format!("{}.sig", ci.digest.replace(':', "-"));
    let manifest: Value = serde_json::from_slice(&ci.registry.manifest("team-a/api", &sig_tag).unwrap()).unwrap();
    let payload: Value =
        serde_json::from_slice(&ci.registry.blob("team-a/api", manifest["layers"][0]["digest"].as_str().unwrap()))
            .unwrap();
    let optional = &payload["optional"];
    assert_eq!(optional["notarium.dev/oidc.issuer"], ISSUER);
    assert_eq!(optional["notarium.dev/oidc.subject"], "repo:acme/team-a-api:ref:refs/heads/main");
    assert_eq!(optional["notarium.dev/oidc.claim.repository"], "acme/team-a-api");
    assert_eq!(optional["notarium.dev/oidc.claim.ref"], "refs/heads/main");
    // Clients cannot write those annotations themselves.
    let spoof = json!({"image": ci.image, "key": "dev-ecdsa", "annotations": {"notarium.dev/oidc.issuer": "me"}});
    assert_eq!(call(&ci.server, "POST", "/v1/sign", &ci.good, Some(spoof)).0, 400);
}

#[test]
fn ci_id_tokens_out_of_scope_or_matching_no_rule_are_a_403() {
    let ci = ci_signed();
    let other = format!("{}/team-b/api@{}", ci.registry.host, ci.digest);
    assert_eq!(sign(&ci.server, &ci.good, &other, "dev-ecdsa").0, 403);
    let branch = ci.issuer.es256_token(json!({"ref": "refs/heads/feature"}));
    assert_eq!(sign(&ci.server, &branch, &ci.image, "dev-ecdsa").0, 403);
}

#[test]
fn every_malformed_misdirected_or_forged_id_token_is_a_401_that_reaches_no_log() {
    let ci = ci_signed();
    let issuer = &ci.issuer;
    let now = unix_now();
    let other_key = EncodingKey::from_ec_pem(
        p256::SecretKey::from_slice(&[9u8; 32]).unwrap().to_pkcs8_pem(Default::default()).unwrap().as_bytes(),
    )
    .unwrap();
    let es = |key: &EncodingKey, kid: &str, claims: Value| {
        let header = Header { kid: Some(kid.into()), ..Header::new(Algorithm::ES256) };
        jsonwebtoken::encode(&header, &claims, key).unwrap()
    };
    let hmac_with_public_key = jsonwebtoken::encode(
        &Header { kid: Some("ec-1".into()), ..Header::new(Algorithm::HS256) },
        &issuer.claims(json!({})),
        &EncodingKey::from_secret(issuer.es256_public_pem.as_bytes()),
    )
    .unwrap();
    let refused = [
        ("wrong audience", issuer.es256_token(json!({"aud": "someone-else"}))),
        ("expired", issuer.es256_token(json!({"exp": now - 3600, "iat": now - 7200, "nbf": now - 7200}))),
        ("not yet valid", issuer.es256_token(json!({"nbf": now + 3600}))),
        ("bad signature", es(&other_key, "ec-1", issuer.claims(json!({})))),
        ("unknown kid", es(&issuer.es256, "ec-9", issuer.claims(json!({})))),
        ("alg none", unsigned_jwt(json!({"alg": "none", "typ": "JWT"}), &issuer.claims(json!({})))),
        ("HMAC signed with the public key", hmac_with_public_key),
        ("unknown issuer", issuer.es256_token(json!({"iss": "https://evil.example"}))),
        ("not a token", "garbage".to_owned()),
    ];
    for (what, token) in &refused {
        let (status, body) = sign(&ci.server, token, &ci.image, "dev-ecdsa");
        assert_eq!(status, 401, "{what}: {body}");
        assert!(!body.to_string().contains(token.as_str()), "{what}: the answer quotes the token");
    }
    let secrets: Vec<&str> = refused.iter().map(|(_, t)| t.as_str()).chain([ci.good.as_str()]).collect();
    let secrets: Vec<&str> = secrets.into_iter().filter(|t| t.len() > 20).collect();
    assert_nowhere(&[("the server log", &ci.server.log())], &secrets);
}

#[test]
fn the_register_names_the_ci_identity() {
    let ci = ci_signed();
    let (auditor_token, _) = ci.server.create_token(&["--role", "auditor"]);
    let log = entries(&ci.server, &auditor_token);
    let signed = log.iter().find(|e| e["kind"] == "sign").unwrap();
    assert_eq!(
        signed["actor"]["name"],
        format!(
            "oidc:{ISSUER} sub=repo:acme/team-a-api:ref:refs/heads/main ref=refs/heads/main repository=acme/team-a-api"
        )
    );
}

#[test]
fn issuer_keys_are_discovered_over_http_and_rotated_and_an_unreachable_issuer_is_a_503() {
    let port = free_port();
    let name = format!("http://127.0.0.1:{port}");
    let issuer = Issuer::new(&name);
    let well_known = issuer.dir.path().join(".well-known");
    std::fs::create_dir(&well_known).unwrap();
    let discovery = json!({"issuer": name, "jwks_uri": format!("{name}/jwks.json")});
    std::fs::write(well_known.join("openid-configuration"), discovery.to_string()).unwrap();
    let mut http = Command::new("python3")
        .args(["-m", "http.server", "--bind", "127.0.0.1", &port.to_string(), "--directory"])
        .arg(issuer.dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(start.elapsed() < Duration::from_secs(10), "the issuer's HTTP server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let dead = free_port();
    let config = format!(
        r#"
[[auth.oidc]]
issuer = "{name}"
audience = "notarium"
jwks_refetch_secs = 0
[[auth.oidc.rules]]
role = "verifier"
claims = {{ repository = "acme/deployer" }}

[[auth.oidc]]
issuer = "http://127.0.0.1:{dead}"
audience = "notarium"

[[auth.oidc]]
issuer = "http://localhost:{port}"
audience = "notarium"
max_document_bytes = 16
"#
    );
    let server = Notarium::start_with_config(&config, &[], &[]);
    let token = issuer.es256_token(json!({"repository": "acme/deployer"}));
    let (status, body) = call(&server, "GET", "/v1/referrers?image=127.0.0.1:1/x@sha256:00", &token, None);
    // Authenticated and authorized: the answer is about the (malformed) digest, not the caller.
    assert_eq!(
        (status, body["type"].as_str()),
        (400, Some("https://notarium.dev/problems/malformed-digest")),
        "{body}"
    );

    // The issuer rotates: its JWKS now holds only a new key. A token under the new kid makes the keys be
    // fetched again and is accepted; the old kid is refused from then on.
    let (new_key, new_jwk) = ec_key(11, "ec-2");
    std::fs::write(issuer.dir.path().join("jwks.json"), json!({"keys": [new_jwk]}).to_string()).unwrap();
    let header = Header { kid: Some("ec-2".into()), ..Header::new(Algorithm::ES256) };
    let rotated =
        jsonwebtoken::encode(&header, &issuer.claims(json!({"repository": "acme/deployer"})), &new_key).unwrap();
    let path = "/v1/referrers?image=127.0.0.1:1/x@sha256:00";
    assert_eq!(call(&server, "GET", path, &rotated, None).0, 400);
    let (status, body) = call(&server, "GET", path, &token, None);
    assert_eq!(status, 401, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("ec-1"), "{body}");
    // The same server under another name, read within 16 bytes: its discovery document is refused.
    let capped = issuer.es256_token(json!({"iss": format!("http://localhost:{port}")}));
    let (status, body) = call(&server, "GET", path, &capped, None);
    assert_eq!(status, 503, "{body}");
    let _ = http.kill();
    let _ = http.wait();

    let unreachable = Issuer { name: format!("http://127.0.0.1:{dead}"), ..issuer };
    let (status, body) = call(&server, "GET", "/v1/referrers?image=x", &unreachable.es256_token(json!({})), None);
    assert_eq!(status, 503, "{body}");
    assert!(!body.to_string().contains("eyJ"), "{body}");
}

/// A test CA and a server certificate for 127.0.0.1 signed by it, as PEM files in `dir`.
fn make_ca_and_server_cert(dir: &Path, name: &str) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let ca_key = dir.join(format!("{name}-ca.key"));
    let ca = dir.join(format!("{name}-ca.pem"));
    let key = dir.join(format!("{name}-server.key"));
    let csr = dir.join(format!("{name}-server.csr"));
    let cert = dir.join(format!("{name}-server.pem"));
    let ext = dir.join(format!("{name}-ext.cnf"));
    std::fs::write(
        &ext,
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl").args(args).current_dir(dir).output().unwrap();
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    let p = |p: &Path| p.to_str().unwrap().to_owned();
    openssl(&["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", &p(&ca_key)]);
    openssl(&[
        "req",
        "-x509",
        "-new",
        "-key",
        &p(&ca_key),
        "-sha256",
        "-days",
        "2",
        "-subj",
        &format!("/CN={name} test CA"),
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign",
        "-out",
        &p(&ca),
    ]);
    openssl(&["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", &p(&key)]);
    openssl(&["req", "-new", "-key", &p(&key), "-subj", "/CN=127.0.0.1", "-out", &p(&csr)]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        &p(&csr),
        "-CA",
        &p(&ca),
        "-CAkey",
        &p(&ca_key),
        "-CAcreateserial",
        "-days",
        "2",
        "-sha256",
        "-extfile",
        &p(&ext),
        "-out",
        &p(&cert),
    ]);
    (ca, cert, key)
}

fn tls_client(ca: &Path) -> reqwest::blocking::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let ca = reqwest::Certificate::from_pem(&std::fs::read(ca).unwrap()).unwrap();
    reqwest::blocking::Client::builder().tls_certs_only([ca]).build().unwrap()
}

#[test]
fn the_tls_listener_serves_trusting_clients_refuses_plain_http_and_reloads_its_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = make_ca_and_server_cert(dir.path(), "first");
    let (cert_path, key_path) = (dir.path().join("server.pem"), dir.path().join("server.key"));
    std::fs::copy(&cert, &cert_path).unwrap();
    std::fs::copy(&key, &key_path).unwrap();
    let config = format!("[server]\ntls_cert = \"{}\"\ntls_key = \"{}\"\n", cert_path.display(), key_path.display());
    let server = Notarium::start_with_config(&config, &[], &[]);
    assert!(server.url.starts_with("https://127.0.0.1:"), "{}", server.url);

    let response = tls_client(&ca).get(format!("{}/healthz", server.url)).send().unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let plain = server.url.replace("https://", "http://");
    let answer = client().get(format!("{plain}/healthz")).send();
    assert!(answer.is_err() || !answer.unwrap().status().is_success(), "plain HTTP was served on the TLS port");
    let untrusting = client().get(format!("{}/healthz", server.url)).send();
    assert!(untrusting.is_err(), "a client that does not trust the test CA connected");

    // A new certificate from another CA replaces the files: new connections get it without a restart.
    let (second_ca, second_cert, second_key) = make_ca_and_server_cert(dir.path(), "second");
    std::fs::copy(&second_key, &key_path).unwrap();
    std::fs::copy(&second_cert, &cert_path).unwrap();
    let start = Instant::now();
    while tls_client(&second_ca).get(format!("{}/healthz", server.url)).send().is_err() {
        assert!(start.elapsed() < Duration::from_secs(20), "the new certificate was not picked up: {}", server.log());
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(tls_client(&ca).get(format!("{}/healthz", server.url)).send().is_err());
}

#[test]
fn a_non_loopback_listener_needs_tls_and_authentication_or_insecure() {
    let data = tempfile::tempdir().unwrap();
    let serve = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_notarium"))
            .arg("serve")
            .args(extra)
            .current_dir(ROOT)
            .env("NOTARIUM_LISTEN", "0.0.0.0:0")
            .env("NOTARIUM_DATA_DIR", data.path())
            .env("NOTARIUM_DATABASE_URL", test_database_url(data.path()))
            .env("NOTARIUM_POLICIES_DIR", data.path().join("none"))
            .env_remove("NOTARIUM_CONFIG")
            .env_remove("NOTARIUM_INSECURE")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let refused = serve(&[]).wait_with_output().unwrap();
    assert_eq!(refused.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("refusing to listen on 0.0.0.0") && stderr.contains("--insecure"), "{stderr}");

    let mut insecure = serve(&["--insecure"]);
    let stderr = insecure.stderr.take().unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stderr));
    let listening = lines.by_ref().map_while(Result::ok).find(|l| l.starts_with("notarium listening on"));
    let _ = insecure.kill();
    let _ = insecure.wait();
    assert!(listening.is_some_and(|l| l.contains("0.0.0.0:")));
}
