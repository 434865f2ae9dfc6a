//! Registry credentials for `notarium verify` and `notarium serve` against a real CNCF distribution
//! registry with htpasswd auth and with token auth (bearer tokens from a token server the test plays):
//! `--registry-username` with the password on stdin, `[registries.auth]`, Docker's config.json and its
//! helpers; a missing or wrong password is a clear failure that never shows the password or a token.

use crate::support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use support::{Registry, push_image};
use tempfile::TempDir;

const USER: &str = "ci";
const PASSWORD: &str = "s3cret-Pa55word-never-shown";

/// A registry holding one image signed by notarium's `dev-ecdsa` key, then restarted to demand htpasswd basic
/// or token auth; the public key file and the image by digest.
struct Setup {
    registry: Registry,
    dir: TempDir,
    image: String,
    public_key: PathBuf,
}

fn setup(repo: &str) -> Setup {
    setup_behind(repo, |dir| {
        let htpasswd = dir.join("htpasswd");
        let made = Command::new("htpasswd").arg("-Bbc").arg(&htpasswd).args([USER, PASSWORD]).output().unwrap();
        assert!(made.status.success(), "htpasswd (apache2-utils): {}", String::from_utf8_lossy(&made.stderr));
        format!("auth:\n  htpasswd:\n    realm: notarium-test\n    path: {}\n", htpasswd.display())
    })
}

/// A registry holding one image signed by `dev-ecdsa`, restarted with the `auth:` section `auth` makes in
/// the test's directory.
fn setup_behind(repo: &str, auth: impl FnOnce(&Path) -> String) -> Setup {
    let mut registry = Registry::start();
    let notarium = support::Notarium::start(&[&registry.host]);
    let digest = push_image(&registry, repo, "v1", repo);
    let image = format!("{}/{repo}@{digest}", registry.host);
    assert_eq!(notarium.sign(&image, "dev-ecdsa").0, 201);
    let dir = tempfile::tempdir().unwrap();
    let public_key = notarium.public_key_file("dev-ecdsa", dir.path());
    registry.restart(&auth(dir.path()));
    Setup { registry, dir, image, public_key }
}

/// `notarium verify IMAGE` plus `args`, with `stdin` written to its standard input and no Docker config.
fn verify(s: &Setup, args: &[&str], stdin: &str) -> Output {
    verify_with(s, args, stdin, &s.dir.path().join("no-docker-config"))
}

/// [`verify`] with `DOCKER_CONFIG` set to `docker_config`; asserts the password is not printed.
fn verify_with(s: &Setup, args: &[&str], stdin: &str, docker_config: &Path) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_notarium"))
        .args(["verify", &s.image, "--insecure-registry", &s.registry.host])
        .args(args)
        .env_remove("NOTARIUM_CONFIG")
        .env("DOCKER_CONFIG", docker_config)
        .env_remove("REGISTRY_AUTH_FILE")
        .env_remove("XDG_RUNTIME_DIR")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A command refused by its arguments exits before reading stdin.
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    let out = child.wait_with_output().unwrap();
    let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!all.contains(PASSWORD), "the password was printed: {all}");
    out
}

fn key_args(s: &Setup) -> Vec<String> {
    vec!["--key".into(), s.public_key.to_str().unwrap().into()]
}

fn policy_args(s: &Setup) -> Vec<String> {
    let pem = std::fs::read_to_string(&s.public_key).unwrap();
    let indented: String = pem.lines().map(|l| format!("          {l}\n")).collect();
    let image = s.image.split('@').next().unwrap();
    let policy = format!(
        "default: deny\npolicies:\n  - name: signed\n    images: [\"{image}\"]\n    authorities:\n      - public_key: |\n{indented}"
    );
    let path = s.dir.path().join("policy.yaml");
    std::fs::write(&path, policy).unwrap();
    vec!["--policy".into(), path.to_str().unwrap().into()]
}

fn config_file(dir: &Path, host: &str, password_file: &Path) -> PathBuf {
    let path = dir.join("notarium.toml");
    let toml = format!(
        "[registries.auth.\"{host}\"]\nusername = \"{USER}\"\npassword_file = \"{}\"\n",
        password_file.display()
    );
    std::fs::write(&path, toml).unwrap();
    path
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn with(mut base: Vec<String>, extra: &[&str]) -> Vec<String> {
    base.extend(extra.iter().map(|a| (*a).to_owned()));
    base
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

#[test]
fn without_credentials_a_401_names_what_to_set() {
    let s = setup("auth/none");
    for form in [key_args(&s), policy_args(&s)] {
        let out = verify(&s, &strs(&form), "");
        assert_eq!(out.status.code(), Some(3), "{}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        for hint in ["--registry-username", "--registry-password-stdin", "[registries.auth", "config.json"] {
            assert!(stderr.contains(hint), "{hint} missing from {stderr}");
        }
    }
}

#[test]
fn the_flags_with_the_password_on_stdin_verify_in_both_forms() {
    let s = setup("auth/flags");
    for form in [key_args(&s), policy_args(&s)] {
        let args = with(form.clone(), &["--registry-username", USER, "--registry-password-stdin"]);
        let out = verify(&s, &strs(&args), &format!("{PASSWORD}\n"));
        assert!(out.status.success(), "{}", text(&out));
        let wrong = verify(&s, &strs(&args), "not-the-password\n");
        assert_eq!(wrong.status.code(), Some(3), "{}", text(&wrong));
        assert!(String::from_utf8_lossy(&wrong.stderr).contains("denied access"), "{}", text(&wrong));
    }
    let alone = verify(&s, &strs(&with(key_args(&s), &["--registry-username", USER])), PASSWORD);
    assert_eq!(alone.status.code(), Some(2), "a user name needs the password flag: {}", text(&alone));
}

#[test]
fn registries_auth_of_the_config_verifies_in_both_forms_and_the_flags_win() {
    let s = setup("auth/config");
    let password_file = s.dir.path().join("registry-password");
    std::fs::write(&password_file, format!("{PASSWORD}\n")).unwrap();
    let config = config_file(s.dir.path(), &s.registry.host, &password_file);
    for form in [key_args(&s), policy_args(&s)] {
        let args = with(form.clone(), &["--config", config.to_str().unwrap()]);
        let out = verify(&s, &strs(&args), "");
        assert!(out.status.success(), "{}", text(&out));
        let flags = with(args, &["--registry-username", USER, "--registry-password-stdin"]);
        let out = verify(&s, &strs(&flags), "wrong\n");
        assert_eq!(out.status.code(), Some(3), "the flags win over the config: {}", text(&out));
    }
}

/// A Docker config directory whose config.json holds `user:password` for `host` under a `https://…/v1/`
/// style key, as old `docker login` wrote it.
fn docker_config(dir: &Path, host: &str, password: &str) -> PathBuf {
    use base64::Engine;
    let config_dir = dir.join("docker");
    std::fs::create_dir_all(&config_dir).unwrap();
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{password}"));
    let json = serde_json::json!({"auths": {format!("http://{}/v1/", host.to_uppercase()): {"auth": auth}}});
    std::fs::write(config_dir.join("config.json"), json.to_string()).unwrap();
    config_dir
}

#[test]
fn docker_config_json_serves_the_cli_under_config_and_flags() {
    let s = setup("auth/docker");
    let config_dir = docker_config(s.dir.path(), &s.registry.host, PASSWORD);
    let run = |args: &[&str], stdin: &str| verify_with(&s, &strs(&with(key_args(&s), args)), stdin, &config_dir);
    let out = run(&[], "");
    assert!(out.status.success(), "{}", text(&out));
    let flags = run(&["--registry-username", USER, "--registry-password-stdin"], "wrong\n");
    assert_eq!(flags.status.code(), Some(3), "the flags win over config.json: {}", text(&flags));

    let password_file = s.dir.path().join("wrong-password");
    std::fs::write(&password_file, "wrong\n").unwrap();
    let config = config_file(s.dir.path(), &s.registry.host, &password_file);
    let configured = run(&["--config", config.to_str().unwrap()], "");
    assert_eq!(configured.status.code(), Some(3), "[registries.auth] wins over config.json: {}", text(&configured));
}

#[test]
fn the_server_signs_with_config_json_credentials_and_never_logs_the_password() {
    let s = setup("auth/server");
    let config_dir = docker_config(s.dir.path(), &s.registry.host, PASSWORD);
    let notarium = support::Notarium::start_with(
        &[&s.registry.host],
        &[("DOCKER_CONFIG", config_dir.to_str().unwrap()), ("NOTARIUM_LOG", "trace")],
    );
    let (status, answer) = notarium.sign(&s.image, "dev-ed25519");
    assert_eq!(status, 201, "{answer}");
    assert!(!notarium.log().contains(PASSWORD), "the password is in the server log");

    let wrong_dir = tempfile::tempdir().unwrap();
    let wrong = docker_config(wrong_dir.path(), &s.registry.host, "wrong");
    let refused = support::Notarium::start_with(&[&s.registry.host], &[("DOCKER_CONFIG", wrong.to_str().unwrap())]);
    let (status, answer) = refused.sign(&s.image, "dev-ed25519");
    assert!(status >= 400 && answer.to_string().contains("denied access"), "{status} {answer}");
}

/// A directory for `PATH` holding `docker-credential-notariumtest`, a fake helper that knows `PASSWORD` for
/// `server_url` only (a real helper needs a keychain or pass store this machine lacks).
fn fake_helper(dir: &Path, server_url: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let bin = dir.join("helper-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let script = format!(
        "#!/bin/sh\nread url\nif [ \"$1\" = get ] && [ \"$url\" = '{server_url}' ]; then\n  \
         printf '{{\"ServerURL\":\"%s\",\"Username\":\"{USER}\",\"Secret\":\"{PASSWORD}\"}}' \"$url\"\n  exit 0\nfi\n\
         echo 'credentials not found in native keychain'\nexit 1\n"
    );
    let helper = bin.join("docker-credential-notariumtest");
    std::fs::write(&helper, script).unwrap();
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

#[test]
fn a_credential_helper_serves_the_cli_through_cred_helpers_and_creds_store() {
    let s = setup("auth/helper");
    let bin = fake_helper(s.dir.path(), &s.registry.host);
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let host = s.registry.host.clone();
    for (name, json) in [
        ("cred-helpers", serde_json::json!({"credHelpers": {host.clone(): "notariumtest"}})),
        ("creds-store", serde_json::json!({"credsStore": "notariumtest"})),
    ] {
        let config_dir = s.dir.path().join(name);
        std::fs::create_dir_all(&config_dir).unwrap();
        std::fs::write(config_dir.join("config.json"), json.to_string()).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_notarium"))
            .args(["verify", &s.image, "--insecure-registry", &host, "--key"])
            .arg(&s.public_key)
            .env_remove("NOTARIUM_CONFIG")
            .env_remove("REGISTRY_AUTH_FILE")
            .env_remove("XDG_RUNTIME_DIR")
            .env("DOCKER_CONFIG", &config_dir)
            .env("PATH", &path)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(out.status.success(), "{name}: {}", text(&out));
        assert!(!text(&out).contains(PASSWORD));
    }
}

#[test]
fn the_server_signs_with_a_cred_helper_named_in_config_json() {
    let s = setup("auth/helper-server");
    let bin = fake_helper(s.dir.path(), &s.registry.host);
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let config_dir = s.dir.path().join("docker");
    std::fs::create_dir_all(&config_dir).unwrap();
    let json = serde_json::json!({"credHelpers": {s.registry.host.clone(): "notariumtest"}});
    std::fs::write(config_dir.join("config.json"), json.to_string()).unwrap();
    let env = [("DOCKER_CONFIG", config_dir.to_str().unwrap()), ("PATH", path.as_str()), ("NOTARIUM_LOG", "trace")];
    let notarium = support::Notarium::start_with(&[&s.registry.host], &env);
    let (status, answer) = notarium.sign(&s.image, "dev-ed25519");
    assert_eq!(status, 201, "{answer}");
    assert!(!notarium.log().contains(PASSWORD), "the password is in the server log");
}

// Token auth: distribution's `auth: token`, its bearer tokens issued by a token server the test plays.

const ISSUER: &str = "notarium-test-issuer";
const SERVICE: &str = "notarium-test-registry";

/// The token server: answers `GET /token?service=..&scope=..` given `USER`/`PASSWORD` in basic auth with an
/// ES256 JWT whose certificate is the registry's `rootcertbundle`, granting what the scope asks; 401 otherwise.
struct TokenServer {
    host: String,
    /// Every token it issued, to look for in output and logs.
    issued: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl TokenServer {
    /// Makes the key and self-signed certificate in `dir` (`cert.pem` there) and starts serving.
    fn start(dir: &Path) -> Self {
        let (key, cert) = (dir.join("token-key.pem"), dir.join("cert.pem"));
        let made = Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2"])
            .args(["-subj", "/CN=notarium-test-token"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .unwrap();
        assert!(made.status.success(), "openssl: {}", String::from_utf8_lossy(&made.stderr));
        let signing = jsonwebtoken::EncodingKey::from_ec_pem(&std::fs::read(&key).unwrap()).unwrap();
        let cert_der: String =
            std::fs::read_to_string(&cert).unwrap().lines().filter(|l| !l.starts_with("-----")).collect();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let issued = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = issued.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let token = serve_token_request(stream, &signing, &cert_der);
                log.lock().unwrap().extend(token);
            }
        });
        Self { host, issued }
    }

    fn tokens(&self) -> Vec<String> {
        self.issued.lock().unwrap().clone()
    }

    /// The registry's `auth:` section pointing at this server.
    fn registry_auth(&self, dir: &Path) -> String {
        format!(
            "auth:\n  token:\n    realm: http://{}/token\n    service: {SERVICE}\n    issuer: {ISSUER}\n    rootcertbundle: {}\n",
            self.host,
            dir.join("cert.pem").display()
        )
    }
}

/// Answers one request; the token it issued, if any.
fn serve_token_request(
    mut stream: std::net::TcpStream,
    key: &jsonwebtoken::EncodingKey,
    cert_der: &str,
) -> Option<String> {
    use std::io::{BufRead, BufReader};
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    reader.read_line(&mut request_line).ok()?;
    let mut authorization = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("authorization")
        {
            authorization = Some(value.trim().to_owned());
        }
    }
    let path = request_line.split_whitespace().nth(1)?;
    let url = reqwest::Url::parse(&format!("http://token{path}")).ok()?;
    use base64::Engine;
    let expected = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}")));
    let service_ok = url.query_pairs().any(|(k, v)| k == "service" && v == SERVICE);
    if url.path() != "/token" || !service_ok || authorization.as_deref() != Some(expected.as_str()) {
        let _ = stream.write_all(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        return None;
    }
    let access: Vec<serde_json::Value> = url
        .query_pairs()
        .filter(|(k, _)| k == "scope")
        .filter_map(|(_, scope)| {
            let (kind, rest) = scope.split_once(':')?;
            let (name, actions) = rest.rsplit_once(':')?;
            Some(serde_json::json!({"type": kind, "name": name, "actions": actions.split(',').collect::<Vec<_>>()}))
        })
        .collect();
    let now = support::unix_now();
    let claims = serde_json::json!({"iss": ISSUER, "sub": USER, "aud": SERVICE, "exp": now + 300, "nbf": now - 10,
        "iat": now, "jti": format!("jti-{now}-{}", access.len()), "access": access});
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.x5c = Some(vec![cert_der.to_owned()]);
    let token = jsonwebtoken::encode(&header, &claims, key).unwrap();
    let body = serde_json::json!({"token": token, "access_token": token, "expires_in": 300}).to_string();
    let answer = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(answer.as_bytes());
    Some(token)
}

/// A registry holding one image signed by `dev-ecdsa`, restarted behind token auth served by a [`TokenServer`].
fn token_setup(repo: &str) -> (Setup, TokenServer) {
    let mut server = None;
    let setup = setup_behind(repo, |dir| {
        let tokens = TokenServer::start(dir);
        let auth = tokens.registry_auth(dir);
        server = Some(tokens);
        auth
    });
    (setup, server.unwrap())
}

/// A notarium config: `[registries.auth]` for the registry with the password in `password_file` and the
/// token server listed among its realms (it is on another port, so another host).
fn token_config(s: &Setup, tokens: &TokenServer, password: &str) -> PathBuf {
    let password_file = s.dir.path().join(format!("password-{}", password.len()));
    std::fs::write(&password_file, format!("{password}\n")).unwrap();
    let path = s.dir.path().join(format!("token-{}.toml", password.len()));
    let toml = format!(
        "[registries]\ninsecure = [\"{}\", \"{}\"]\n\n[registries.auth.\"{}\"]\nusername = \"{USER}\"\npassword_file = \"{}\"\nrealms = [\"{}\"]\n",
        s.registry.host,
        tokens.host,
        s.registry.host,
        password_file.display(),
        tokens.host
    );
    std::fs::write(&path, toml).unwrap();
    path
}

fn assert_no_token(tokens: &TokenServer, text: &str) {
    let issued = tokens.tokens();
    assert!(!issued.is_empty(), "the token server issued no token");
    assert!(issued.iter().all(|t| !text.contains(t.as_str())), "a bearer token was printed: {text}");
}

#[test]
fn token_auth_verifies_with_the_flags_when_the_realm_is_listed() {
    let (s, tokens) = token_setup("token/cli");
    let insecure = ["--insecure-registry", &tokens.host];
    let unlisted = verify(&s, &strs(&with(key_args(&s), &insecure)), "");
    assert_eq!(unlisted.status.code(), Some(3), "no credentials, no token: {}", text(&unlisted));

    // The realm is another host: the flags' credentials go there only when [registries.auth] lists it.
    let flags = ["--registry-username", USER, "--registry-password-stdin"];
    let refused =
        verify(&s, &strs(&with(key_args(&s), &[&insecure[..], &flags[..]].concat())), &format!("{PASSWORD}\n"));
    assert_ne!(refused.status.code(), Some(0), "{}", text(&refused));
    assert!(text(&refused).contains("realms"), "the refusal names the realms setting: {}", text(&refused));

    let config = token_config(&s, &tokens, "wrong-configured");
    for form in [key_args(&s), policy_args(&s)] {
        let args = with(form, &[&insecure[..], &["--config", config.to_str().unwrap()], &flags[..]].concat());
        let out = verify(&s, &strs(&args), &format!("{PASSWORD}\n"));
        assert!(out.status.success(), "{}", text(&out));
        assert_no_token(&tokens, &text(&out));
        let wrong = verify(&s, &strs(&args), "not-the-password\n");
        assert_eq!(wrong.status.code(), Some(3), "{}", text(&wrong));
        assert!(text(&wrong).contains("denied access"), "{}", text(&wrong));
    }
}

#[test]
fn token_auth_serves_sign_and_attest_through_the_server_and_never_logs_secrets() {
    let (s, tokens) = token_setup("token/server");
    let config = std::fs::read_to_string(token_config(&s, &tokens, PASSWORD)).unwrap();
    let insecure = [s.registry.host.as_str(), tokens.host.as_str()];
    let notarium = support::Notarium::start_with_config(&config, &insecure, &[("NOTARIUM_LOG", "trace")]);
    let (status, answer) = notarium.sign(&s.image, "dev-ed25519");
    assert_eq!(status, 201, "{answer}");
    let body = serde_json::json!({"image": s.image, "key": "dev-ecdsa", "predicate_type": "https://example.com/scan/v1",
        "predicate": {"scanner": "token-test"}});
    let (status, _, answer) = notarium.post("/v1/attest", body.to_string());
    assert_eq!(status, 201, "{answer}");

    let digest = s.image.split('@').nth(1).unwrap().replace(':', "-");
    for suffix in ["sig", "att"] {
        let tag = format!("docker://{}/token/server:{digest}.{suffix}", s.registry.host);
        let out = Command::new(support::tool("skopeo"))
            .args(["inspect", "--raw", "--tls-verify=false", "--creds", &format!("{USER}:{PASSWORD}"), &tag])
            .output()
            .unwrap();
        assert!(out.status.success(), "the registry holds no .{suffix}: {}", text(&out));
    }
    let log = notarium.log();
    assert!(!log.contains(PASSWORD), "the password is in the server log");
    assert_no_token(&tokens, &log);

    let wrong = std::fs::read_to_string(token_config(&s, &tokens, "wrong")).unwrap();
    let refused = support::Notarium::start_with_config(&wrong, &insecure, &[]);
    let (status, answer) = refused.sign(&s.image, "dev-ed25519");
    assert!(status >= 400 && answer.to_string().contains("denied access"), "{status} {answer}");
}

#[test]
fn config_json_credentials_reach_a_realm_listed_by_an_entry_without_credentials() {
    let (s, tokens) = token_setup("token/docker");
    let docker = docker_config(s.dir.path(), &s.registry.host, PASSWORD);
    let config = s.dir.path().join("realms-only.toml");
    let realms_only = format!("[registries.auth.\"{}\"]\nrealms = [\"{}\"]\n", s.registry.host, tokens.host);
    std::fs::write(&config, &realms_only).unwrap();

    let insecure = ["--insecure-registry", &tokens.host];
    let args = with(key_args(&s), &[&insecure[..], &["--config", config.to_str().unwrap()]].concat());
    let out = verify_with(&s, &strs(&args), "", &docker);
    assert!(out.status.success(), "{}", text(&out));
    assert_no_token(&tokens, &text(&out));

    let env = [("DOCKER_CONFIG", docker.to_str().unwrap()), ("NOTARIUM_LOG", "trace")];
    let notarium = support::Notarium::start_with_config(&realms_only, &[&s.registry.host, &tokens.host], &env);
    let (status, answer) = notarium.sign(&s.image, "dev-ed25519");
    assert_eq!(status, 201, "{answer}");
    assert!(!notarium.log().contains(PASSWORD), "the password is in the server log");
    assert_no_token(&tokens, &notarium.log());
}
