//! Public routes that cost nothing to flood, and an open API that is really loopback only: the checkpoint
//! signed once per tree size, `/readyz` bare without an admin token, per-address limits on public routes
//! and on refused authentications, ID tokens no rule maps limited before anything is recorded, the `Host`
//! check of the open API, and no open API next to a Vault or HSM key unless the configuration says so.

use crate::support;

use std::collections::BTreeSet;
use std::io::BufRead;
use std::net::IpAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, Header};
use serde_json::{Value, json};
use support::*;

/// A client whose connections come from `source` (any 127.x address reaches the loopback listener).
fn client_from(source: &str) -> reqwest::blocking::Client {
    let _ = client(); // installs the TLS crypto provider
    reqwest::blocking::Client::builder().local_address(source.parse::<IpAddr>().unwrap()).build().unwrap()
}

/// `GET path` from `source` with `token` as bearer (none when empty): status, `Retry-After`, body.
fn get(server: &Notarium, source: &str, path: &str, token: &str) -> (u16, Option<u64>, String) {
    let mut request = client_from(source).get(format!("{}{path}", server.url));
    if !token.is_empty() {
        request = request.bearer_auth(token);
    }
    let response = request.send().unwrap();
    let retry = response.headers().get("retry-after").map(|v| v.to_str().unwrap().parse().unwrap());
    (response.status().as_u16(), retry, response.text().unwrap())
}

fn problem_type(body: &str) -> String {
    let problem: Value = serde_json::from_str(body).unwrap_or_default();
    problem["type"].as_str().unwrap_or_default().trim_start_matches("https://notarium.dev/problems/").to_owned()
}

/// Key-backend signatures made with `key`, as `/metrics` counts them.
fn signatures_by(server: &Notarium, key: &str) -> u64 {
    let (status, metrics) = server.get_text("/metrics");
    assert_eq!(status, 200);
    let label = format!("key=\"{key}\"");
    metrics
        .lines()
        .find(|l| l.starts_with("notarium_key_sign_duration_seconds_count{") && l.contains(&label))
        .map_or(0, |l| l.rsplit(' ').next().unwrap().parse().unwrap())
}

/// The tree size a signed note is for (its second line).
fn note_size(note: &str) -> u64 {
    note.lines().nth(1).and_then(|l| l.parse().ok()).unwrap_or_else(|| panic!("not a checkpoint: {note}"))
}

/// `requests` checkpoint requests from `threads` threads at once; the tree sizes they were answered for.
fn checkpoint_flood(server: &Notarium, threads: usize, requests: usize) -> BTreeSet<u64> {
    let url = format!("{}/v1/log/checkpoint", server.url);
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || {
                let http = client();
                let mut sizes = BTreeSet::new();
                for _ in 0..requests / threads {
                    let response = http.get(&url).send().unwrap();
                    assert_eq!(response.status().as_u16(), 200);
                    sizes.insert(note_size(&response.text().unwrap()));
                }
                sizes
            })
        })
        .collect();
    workers.into_iter().flat_map(|w| w.join().unwrap()).collect()
}

const CHECKPOINT_CONFIG: &str = r#"
[log]
key = "dev-ed25519"

[auth]
public_rate_per_minute = 0
"#;

#[test]
fn ten_thousand_checkpoint_requests_cost_one_signature_per_tree_size() {
    let registry = Registry::start();
    let config = format!("{CHECKPOINT_CONFIG}{EXAMPLE_KEYS}");
    let server = Notarium::start_with_config(&config, &[&registry.host], &[]);
    let digest = push_many(&registry, "flood/app", 1).remove(0);
    let mut sizes = checkpoint_flood(&server, 5, 2500);
    // A sign answers with the checkpoint of its own tree size, which the next requests get too.
    let (status, signed) = server.sign(&format!("{}/flood/app@{digest}", registry.host), "dev-ecdsa");
    assert_eq!(status, 201, "{signed}");
    sizes.insert(note_size(signed["log"]["checkpoint"].as_str().unwrap()));
    sizes.extend(checkpoint_flood(&server, 5, 2500));
    // New tree sizes no answer has signed yet: the threads asking for them at once share one signing.
    for _ in 0..2 {
        server.create_token(&["--role", "auditor"]);
        sizes.extend(checkpoint_flood(&server, 5, 2500));
    }
    let signatures = signatures_by(&server, "dev-ed25519");
    assert!(sizes.len() >= 3, "the register did not grow: {sizes:?}");
    assert!(signatures >= 1, "checkpoint signatures are not counted");
    assert!(signatures <= sizes.len() as u64, "{signatures} signatures for the tree sizes {sizes:?}");
}

#[test]
fn readyz_is_a_bare_status_without_an_admin_token() {
    let config = r#"
[auth]
required = true

[[keys]]
id = "vault-unreachable"
backend = "vault"
address = "http://127.0.0.1:1"
mount = "transit-internal-mount"
key = "internal-key-name"
token_env = "NOTARIUM_TEST_VAULT_TOKEN"
timeout_secs = 1
"#;
    let server = Notarium::start_with_config(config, &[], &[("NOTARIUM_TEST_VAULT_TOKEN", "unused")]);
    let backend_words = ["vault", "127.0.0.1:1", "transit-internal-mount", "internal-key-name", "refused"];
    let (status, _, bare) = get(&server, "127.0.0.1", "/readyz", "");
    assert_eq!((status, problem_type(&bare).as_str()), (503, "not-ready"), "{bare}");
    assert!(backend_words.iter().all(|w| !bare.contains(w)), "backend text reached an anonymous caller: {bare}");

    let (verifier, _) = server.create_token(&["--role", "verifier"]);
    let (status, _, refused) = get(&server, "127.0.0.1", "/readyz", &verifier);
    assert_eq!(status, 403, "{refused}");
    assert!(backend_words.iter().all(|w| !refused.contains(w)), "{refused}");
    let (admin, _) = server.create_token(&["--role", "admin"]);
    let (status, _, detailed) = get(&server, "127.0.0.1", "/readyz", &admin);
    assert_eq!(status, 503);
    assert!(detailed.contains("key vault-unreachable"), "an admin is told what is not ready: {detailed}");
}

#[test]
fn public_routes_are_rate_limited_per_source_address() {
    let server = Notarium::start_with_config("[auth]\npublic_rate_per_minute = 3\n", &[], &[]);
    let (status, _, document) = get(&server, "127.0.0.2", "/v1/openapi.json", "");
    assert_eq!(status, 200);
    for _ in 0..3 {
        assert_eq!(get(&server, "127.0.0.1", "/healthz", "").0, 200);
    }
    let (status, retry, body) = get(&server, "127.0.0.1", "/healthz", "");
    assert_eq!((status, problem_type(&body).as_str()), (429, "rate-limited"), "{body}");
    assert!(retry.is_some_and(|s| (1..=20).contains(&s)), "Retry-After: {retry:?}");

    // Every operation the document calls public counts against the same allowance.
    let document: Value = serde_json::from_str(&document).unwrap();
    let mut public = 0;
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            if operation.get("security").is_some() {
                continue;
            }
            assert_eq!(method, "get", "{path}");
            public += 1;
            let path = path.replace("{id}", "dev-ecdsa").replace("{file}", "app.js");
            let (status, retry, body) = get(&server, "127.0.0.1", &path, "");
            assert_eq!(status, 429, "GET {path} is public but not limited: {body}");
            assert!(retry.is_some(), "GET {path}");
        }
    }
    // The seven API operations and the web view's two (its page and files hold no data).
    assert_eq!(public, 9, "public operations");
    // Other addresses have their own allowance; routes that need a caller are not public ones.
    assert_eq!(get(&server, "127.0.0.3", "/healthz", "").0, 200);
    assert_eq!(get(&server, "127.0.0.1", "/v1/log/entries?start=0&end=1", "").0, 200);
}

#[test]
fn refused_authentications_are_rate_limited_per_source_address() {
    let server = Notarium::start_with_config("[auth]\nrequired = true\nfailed_auth_per_minute = 3\n", &[], &[]);
    let (admin, _) = server.create_token(&["--role", "admin"]);
    let (auditor, _) = server.create_token(&["--role", "auditor"]);
    let forged = "ntk_0000000000000000_forged";
    for _ in 0..3 {
        assert_eq!(get(&server, "127.0.0.1", "/v1/tokens", forged).0, 401);
    }
    let (status, retry, body) = get(&server, "127.0.0.1", "/v1/tokens", forged);
    assert_eq!((status, problem_type(&body).as_str()), (429, "rate-limited"), "{body}");
    assert!(retry.is_some_and(|s| (1..=20).contains(&s)), "Retry-After: {retry:?}");
    // The address may not try again for now, not even with a good token; others may.
    assert_eq!(get(&server, "127.0.0.1", "/v1/tokens", &admin).0, 429);
    assert_eq!(get(&server, "127.0.0.1", "/v1/tokens", "").0, 429);
    assert_eq!(get(&server, "127.0.0.2", "/v1/tokens", &admin).0, 200);
    assert_eq!(get(&server, "127.0.0.1", "/healthz", "").0, 200, "public routes are counted apart");

    // Refusals of a known caller (403) count as well.
    for _ in 0..3 {
        assert_eq!(get(&server, "127.0.0.3", "/v1/tokens", &auditor).0, 403);
    }
    assert_eq!(get(&server, "127.0.0.3", "/v1/tokens", &auditor).0, 429);
}

const ISSUER: &str = "https://ci.example.test";

/// An issuer whose only rule maps `acme/deployer` to verifiers; each caller may make 10 requests a
/// minute, each address may have 30 refusals.
fn unmapped_issuer_config(jwks: &std::path::Path) -> String {
    format!(
        r#"
[auth]
rate_per_minute = 10
failed_auth_per_minute = 30

[[auth.oidc]]
issuer = "{ISSUER}"
audience = "notarium"
jwks_file = "{}"

[[auth.oidc.rules]]
role = "verifier"
claims = {{ repository = "acme/deployer" }}
"#,
        jwks.display()
    )
}

/// The `request-denied` entries naming `actor`, read with an auditor's token.
fn denials_of(server: &Notarium, auditor: &str, actor: &str) -> Vec<Value> {
    let (status, _, body) = get(server, "127.0.0.9", "/v1/log/entries?start=0&end=1000", auditor);
    assert_eq!(status, 200, "{body}");
    let entries: Value = serde_json::from_str(&body).unwrap();
    let entries = entries["entries"].as_array().unwrap().iter().map(|e| e["entry"].clone());
    entries.filter(|e| e["kind"] == "request-denied" && e["actor"]["name"] == actor).collect()
}

#[test]
fn id_tokens_no_rule_maps_are_limited_before_they_are_recorded_and_recorded_in_aggregate() {
    let dir = tempfile::tempdir().unwrap();
    let (key, jwk) = ec_key(5, "ec-1");
    let jwks = dir.path().join("jwks.json");
    std::fs::write(&jwks, json!({"keys": [jwk]}).to_string()).unwrap();
    let mut server = Notarium::start_with_config(&unmapped_issuer_config(&jwks), &[], &[]);
    let (auditor, _) = server.create_token(&["--role", "auditor"]);
    let id_token = |subject: &str| {
        let now = unix_now();
        let claims = json!({"iss": ISSUER, "aud": "notarium", "sub": subject, "repository": "someone/else",
            "iat": now, "exp": now + 600});
        let header = Header { kid: Some("ec-1".into()), ..Header::new(Algorithm::ES256) };
        jsonwebtoken::encode(&header, &claims, &key).unwrap()
    };

    // Anyone can mint a valid token for their own repository: 1,000 of them.
    let unmapped = id_token("repo:someone/else:ref:refs/heads/main");
    let http = client_from("127.0.0.1");
    let mut statuses = Vec::new();
    for _ in 0..1000 {
        let response = http.get(format!("{}/v1/log/entries?start=0&end=1", server.url)).bearer_auth(&unmapped).send();
        statuses.push(response.unwrap().status().as_u16());
    }
    let refused = statuses.iter().filter(|s| **s == 403).count();
    assert!((1..=10).contains(&refused), "{refused} refusals passed the caller's limit");
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 1000 - refused, "the rest are rate-limited");
    let actor = format!("oidc:{ISSUER} sub=repo:someone/else:ref:refs/heads/main");
    let recorded = denials_of(&server, &auditor, &actor);
    assert_eq!(recorded.len(), 1, "the first refusal of the minute is recorded at once: {recorded:#?}");
    assert_eq!(recorded[0]["details"]["count"], 1);

    // A new identity per request: the address's allowance of refusals bounds them.
    let http = client_from("127.0.0.2");
    let mut statuses = Vec::new();
    for n in 0..100 {
        let token = id_token(&format!("repo:someone/else-{n}"));
        let response = http.get(format!("{}/v1/log/entries?start=0&end=1", server.url)).bearer_auth(&token).send();
        statuses.push(response.unwrap().status().as_u16());
    }
    assert_eq!(statuses.iter().filter(|s| **s == 403).count(), 30, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 70, "{statuses:?}");

    // The rest of the minute's refusals are one more entry with their count, written at the latest when
    // the server stops.
    server.terminate();
    assert!(server.wait(Duration::from_secs(30)).success(), "{}", server.log());
    let config = server.data_dir.path().join("notarium.toml").to_str().unwrap().to_owned();
    let data_dir = std::mem::replace(&mut server.data_dir, tempfile::tempdir().unwrap());
    let server = Notarium::start_in(data_dir, &[], &[("NOTARIUM_CONFIG", &config)]);
    let recorded = denials_of(&server, &auditor, &actor);
    assert!(recorded.len() <= 2, "{recorded:#?}");
    let counted: u64 = recorded.iter().map(|e| e["details"]["count"].as_u64().unwrap()).sum();
    assert_eq!(counted, refused as u64, "{recorded:#?}");
}

#[test]
fn the_open_api_answers_loopback_host_names_only() {
    let server = Notarium::start(&[]);
    let port = server.url.rsplit(':').next().unwrap().to_owned();
    let call = |method: &str, path: &str, host: &str| {
        let url = format!("{}{path}", server.url);
        let request = if method == "GET" { client().get(url) } else { client().post(url).json(&json!({})) };
        let response = request.header("Host", host).send().unwrap();
        let status = response.status().as_u16();
        (status, response.text().unwrap())
    };
    // A page on rebind.example whose name now resolves to 127.0.0.1 makes the browser send these.
    for (method, path) in [("GET", "/healthz"), ("GET", "/v1/log/entries?start=0&end=1"), ("POST", "/v1/sign")] {
        let (status, body) = call(method, path, "rebind.example:8080");
        assert_eq!((status, problem_type(&body).as_str()), (421, "host-not-loopback"), "{method} {path}: {body}");
    }
    for host in [format!("localhost:{port}"), format!("127.0.0.1:{port}"), "[::1]:8080".into(), "localhost".into()] {
        assert_eq!(call("GET", "/v1/log/entries?start=0&end=1", &host).0, 200, "{host}");
    }

    // Once the API needs tokens, any name may be served (behind a proxy, say).
    let (admin, _) = server.create_token(&["--role", "admin"]);
    let start = Instant::now();
    while call("GET", "/healthz", "rebind.example:8080").0 != 200 {
        assert!(start.elapsed() < Duration::from_secs(10), "the API stayed open after a token was made");
        std::thread::sleep(Duration::from_millis(200));
    }
    let response =
        client().get(format!("{}/v1/tokens", server.url)).header("Host", "notarium.example").bearer_auth(admin);
    assert_eq!(response.send().unwrap().status().as_u16(), 200);
}

/// Runs `notarium serve` with `config` until it listens (then stops it) or exits: its exit code (`None`
/// when it listened) and its standard error.
fn serve_once(config: &str) -> (Option<i32>, String) {
    let data = tempfile::tempdir().unwrap();
    let path = data.path().join("notarium.toml");
    std::fs::write(&path, config).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_notarium"))
        .arg("serve")
        .current_dir(ROOT)
        .env("NOTARIUM_CONFIG", &path)
        .env("NOTARIUM_LISTEN", "127.0.0.1:0")
        .env("NOTARIUM_DATA_DIR", data.path())
        .env("NOTARIUM_DATABASE_URL", test_database_url(data.path()))
        .env("NOTARIUM_POLICIES_DIR", data.path().join("none"))
        .env("NOTARIUM_TEST_VAULT_TOKEN", "unused")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = String::new();
    for line in std::io::BufReader::new(child.stderr.take().unwrap()).lines().map_while(Result::ok) {
        stderr.push_str(&line);
        stderr.push('\n');
        if line.starts_with("notarium listening on") {
            let _ = child.kill();
            let _ = child.wait();
            return (None, stderr);
        }
    }
    (child.wait().unwrap().code(), stderr)
}

#[test]
fn an_open_api_next_to_a_vault_key_is_refused_at_start_up_unless_the_configuration_says_so() {
    let vault = "[[keys]]\nid = \"vault-prod\"\nbackend = \"vault\"\naddress = \"http://127.0.0.1:1\"\nkey = \"k\"\n\
                 token_env = \"NOTARIUM_TEST_VAULT_TOKEN\"\ntimeout_secs = 1\n";
    let (code, stderr) = serve_once(vault);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("vault key \"vault-prod\"") && stderr.contains("[auth] open = true"), "{stderr}");

    let (code, stderr) = serve_once(&format!("[auth]\nopen = true\n\n{vault}"));
    assert_eq!(code, None, "an explicitly open API starts: {stderr}");
    let (code, stderr) = serve_once(&format!("[auth]\nrequired = true\n\n{vault}"));
    assert_eq!(code, None, "an API that needs tokens starts: {stderr}");
    let (code, stderr) = serve_once(&format!("[auth]\nopen = true\nrequired = true\n\n{vault}"));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("contradicts"), "{stderr}");
}
