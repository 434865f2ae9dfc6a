//! notarium is not a way into the network behind it. An attacker's server listens on 127.0.0.2, an address on
//! no allow-list, and counts the connections it gets; a "listed" registry on 127.0.0.1 (on the plain-HTTP
//! list) answers what an attacker controlling it would: redirects, token realms, upload `Location`s and
//! `Link`s pointing at the unlisted address, error bodies full of secrets, endless bodies. Every answer is a
//! problem in notarium's words; the unlisted address never sees a connection.

use crate::support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use support::{Notarium, Registry, free_port, sha256_digest};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// What the attacker's server answers, and what the listed registry's error bodies hide: never in an answer.
const SECRET: &str = "SECRET-db-password-hunter2-at-10.0.0.7";

/// A canned answer of the hostile servers.
enum Body {
    Bytes(Vec<u8>),
    /// `Content-Length` announces this many bytes; a few are sent, then the connection closes.
    Announced(u64),
    /// Chunks of `x` until the client goes away.
    Endless,
}

struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Body,
}

impl Answer {
    fn new(status: u16, body: Body) -> Self {
        Self { status, headers: Vec::new(), body }
    }

    fn text(status: u16, text: &str) -> Self {
        Self::new(status, Body::Bytes(text.as_bytes().to_vec()))
    }

    fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }
}

type Route = dyn Fn(&str, &str) -> Answer + Send + Sync;

/// A plain-HTTP server on `ip` answering each request (`METHOD`, path with query) as `route` says, one
/// request per connection. Counts the connections it accepted.
struct Canned {
    host: String,
    connections: Arc<AtomicUsize>,
    requests: Arc<Mutex<Vec<String>>>,
}

impl Canned {
    fn start(ip: &str, route: impl Fn(&str, &str) -> Answer + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind((ip, 0)).unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let (connections, requests) = (Arc::new(AtomicUsize::new(0)), Arc::new(Mutex::new(Vec::new())));
        let route: Arc<Route> = Arc::new(route);
        let (counted, logged) = (connections.clone(), requests.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                counted.fetch_add(1, Ordering::SeqCst);
                let (route, logged) = (route.clone(), logged.clone());
                std::thread::spawn(move || serve_one(stream, route.as_ref(), &logged));
            }
        });
        Self { host, connections, requests }
    }

    /// The attacker: anything it is asked, it answers with the secret.
    fn attacker() -> Self {
        Self::start("127.0.0.2", |_, _| Answer::text(200, SECRET))
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

fn serve_one(mut stream: TcpStream, route: &Route, logged: &Mutex<Vec<String>>) {
    let Some((method, path, body_length, authorized)) = read_head(&mut stream) else { return };
    let mut body = vec![0; body_length];
    if stream.read_exact(&mut body).is_err() {
        return;
    }
    let credentials = if authorized { " with credentials" } else { "" };
    logged.lock().unwrap().push(format!("{method} {path}{credentials}"));
    let answer = route(&method, &path);
    let mut head = format!("HTTP/1.1 {} Canned\r\nConnection: close\r\n", answer.status);
    for (name, value) in &answer.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    let _ = match answer.body {
        Body::Bytes(bytes) => {
            head.push_str(&format!("Content-Length: {}\r\n\r\n", bytes.len()));
            stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(&bytes))
        }
        Body::Announced(length) => {
            head.push_str(&format!("Content-Length: {length}\r\n\r\n"));
            stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(&[b'x'; 4096]))
        }
        Body::Endless => {
            head.push_str("Transfer-Encoding: chunked\r\n\r\n");
            let chunk = format!("1000\r\n{}\r\n", "x".repeat(0x1000));
            stream.write_all(head.as_bytes()).and_then(|()| {
                loop {
                    stream.write_all(chunk.as_bytes())?;
                }
            })
        }
    };
}

/// The request line, `Content-Length` and whether an `Authorization` header came, of the request on `stream`.
fn read_head(stream: &mut TcpStream) -> Option<(String, String, usize, bool)> {
    let mut head = Vec::new();
    let mut byte = [0; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 64 * 1024 {
        stream.read_exact(&mut byte).ok()?;
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let mut words = head.split_whitespace();
    let (method, path) = (words.next()?.to_owned(), words.next()?.to_owned());
    let length = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().ok()))
        .flatten()
        .unwrap_or(0);
    let authorized = head.lines().any(|l| l.to_ascii_lowercase().starts_with("authorization:"));
    Some((method, path, length, authorized))
}

fn image_manifest() -> Vec<u8> {
    let config = json!({"mediaType": "application/vnd.oci.image.config.v1+json", "size": 2,
                        "digest": sha256_digest(b"{}")});
    json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": []}).to_string().into_bytes()
}

fn manifest_answer(bytes: &[u8]) -> Answer {
    Answer::new(200, Body::Bytes(bytes.to_vec()))
        .header("Content-Type", OCI_MANIFEST)
        .header("Docker-Content-Digest", &sha256_digest(bytes))
}

/// `/v2/<scenario>/app/…` of the listed registry: what each scenario answers.
fn listed_registry(attacker: &str) -> Canned {
    let attacker = attacker.to_owned();
    let manifest = image_manifest();
    let digest = sha256_digest(&manifest);
    let sig_tag = format!("{}.sig", digest.replace(':', "-"));
    // The .sig of the `blob-*` scenarios: one layer whose blob the registry serves as the scenario says.
    let layer_digest = sha256_digest(b"a payload the registry will not serve whole");
    let sig = json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": 2, "digest": sha256_digest(b"{}")},
        "layers": [{"mediaType": SIMPLE_SIGNING, "size": 100, "digest": layer_digest,
                    "annotations": {"dev.cosignproject.cosign/signature": "MEUCIQ=="}}]})
    .to_string()
    .into_bytes();
    let secret_error = json!({"errors": [{"code": "UNKNOWN", "message": SECRET, "detail": SECRET}]}).to_string();
    let name_invalid = json!({"errors": [{"code": "NAME_INVALID", "message": SECRET}]}).to_string();
    let listed_port = Arc::new(Mutex::new(String::new()));
    let own_host = listed_port.clone();
    let canned = Canned::start("127.0.0.1", move |method, path| {
        let own = own_host.lock().unwrap().clone();
        let scenario = path.trim_start_matches("/v2/").split('/').next().unwrap_or_default();
        let is_manifest = path.contains("/manifests/");
        let is_image = is_manifest && (path.ends_with("/v1") || path.ends_with(&digest));
        match (scenario, method) {
            ("redirect", _) if is_image => {
                Answer::text(302, "").header("Location", &format!("http://{attacker}/latest/meta-data/"))
            }
            ("realm-http", _) => Answer::text(401, "")
                .header("WWW-Authenticate", &format!(r#"Bearer realm="http://{attacker}/token",service="x""#)),
            ("realm-https", _) => Answer::text(401, "")
                .header("WWW-Authenticate", &format!(r#"Bearer realm="https://{attacker}/token",service="x""#)),
            ("realm-elsewhere", _) => {
                let port = own.rsplit_once(':').unwrap().1;
                Answer::text(401, "").header(
                    "WWW-Authenticate",
                    &format!(r#"Bearer realm="http://localhost:{port}/token-ok",service="x""#),
                )
            }
            ("redirect-store", _) if is_image => {
                let port = own.rsplit_once(':').unwrap().1;
                Answer::text(307, "").header("Location", &format!("http://localhost:{port}/store/{digest}"))
            }
            (_, _) if path.starts_with("/store/") => manifest_answer(&manifest),
            (_, _) if path.starts_with("/token-ok") => Answer::text(200, r#"{"token": "t"}"#),
            ("endless-token", _) => Answer::text(401, "")
                .header("WWW-Authenticate", &format!(r#"Bearer realm="http://{own}/token-endless",service="x""#)),
            ("broken", _) => Answer::text(500, &secret_error).header("Content-Type", "application/json"),
            ("invalid", _) => Answer::text(400, &name_invalid).header("Content-Type", "application/json"),
            ("endless-error", _) => Answer::new(500, Body::Endless),
            ("huge", _) if is_image => Answer::new(200, Body::Announced(1 << 30)).header("Content-Type", OCI_MANIFEST),
            ("endless", _) if is_image => Answer::new(200, Body::Endless).header("Content-Type", OCI_MANIFEST),
            ("upload", "POST") => Answer::text(202, "")
                .header("Location", &format!("http://{attacker}/v2/upload/app/blobs/uploads/1?_state=x")),
            ("link", _) if path.contains("/referrers/") => {
                let index = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                                   "manifests": []});
                let next = format!("<http://{attacker}/v2/link/app/referrers/{digest}?last=x>; rel=\"next\"");
                Answer::text(200, &index.to_string())
                    .header("Content-Type", "application/vnd.oci.image.index.v1+json")
                    .header("Link", &next)
            }
            ("blob-huge" | "blob-endless", _) if path.ends_with(&sig_tag) => manifest_answer(&sig),
            ("blob-huge", _) if path.ends_with(&layer_digest) => Answer::new(200, Body::Announced(1 << 30)),
            ("blob-endless", _) if path.ends_with(&layer_digest) => Answer::new(200, Body::Endless),
            (_, _) if is_image => manifest_answer(&manifest),
            (_, _) if path.starts_with("/token-endless") => Answer::new(200, Body::Endless),
            _ => Answer::text(404, r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"unknown"}]}"#),
        }
    });
    *listed_port.lock().unwrap() = canned.host.clone();
    canned
}

/// The attacker, the listed registry and notarium with that registry on its plain-HTTP list.
fn attacker_and_listed_registry() -> (Canned, Canned, Notarium) {
    let attacker = Canned::attacker();
    let listed = listed_registry(&attacker.host);
    let notarium = Notarium::start(&[&listed.host]);
    (attacker, listed, notarium)
}

/// The answer's status and JSON, after checking it holds nothing an attacker's server said.
fn post(notarium: &Notarium, path: &str, body: Value) -> (u16, Value) {
    let (status, _, answer) = notarium.post(path, body.to_string());
    assert!(!answer.to_string().contains("SECRET"), "{path} {body}: {answer}");
    (status, answer)
}

fn get(notarium: &Notarium, path: &str) -> (u16, Value) {
    let (status, text) = notarium.get_text(path);
    assert!(!text.contains("SECRET"), "{path}: {text}");
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// Asserts `answer` is the problem `slug` with `status` whose detail contains `detail`.
fn assert_problem(answer: &(u16, Value), status: u16, slug: &str, detail: &str) {
    let (got, problem) = answer;
    assert_eq!(*got, status, "{problem}");
    assert_eq!(problem["type"], format!("https://notarium.dev/problems/{slug}"), "{problem}");
    let text = problem["detail"].as_str().unwrap();
    assert!(text.contains(detail), "detail {text:?} does not say {detail:?}");
}

fn verify(notarium: &Notarium, image: &str) -> (u16, Value) {
    post(notarium, "/v1/verify", json!({"image": image}))
}

fn sign(notarium: &Notarium, image: &str) -> (u16, Value) {
    post(notarium, "/v1/sign", json!({"image": image, "key": "dev-ecdsa"}))
}

const HEX: &str = "c4ea3eb55a9e77e1edfcec7acc64cab6650ef710811264fdd18cedeba6de5c83";

#[test]
fn an_unlisted_internal_registry_is_refused_before_any_connection() {
    let attacker = Canned::attacker();
    let notarium = Notarium::start(&[]);
    let image = format!("{}/x/y:z", attacker.host);
    let rule = "internal addresses (loopback, private, link-local, unique-local, cloud metadata) are reached only";
    assert_problem(&verify(&notarium, &image), 403, "registry-not-allowed", rule);
    assert_problem(&sign(&notarium, &image), 403, "registry-not-allowed", rule);
    let referrers = get(&notarium, &format!("/v1/referrers?image={}/x/y@sha256:{HEX}", attacker.host));
    assert_problem(&referrers, 403, "registry-not-allowed", rule);
    assert_eq!(attacker.connections(), 0, "the unlisted address was contacted");

    // A name that resolves to an internal address is refused by the resolver, before connecting.
    let on_loopback = Canned::start("127.0.0.1", |_, _| Answer::text(200, SECRET));
    let port = on_loopback.host.rsplit_once(':').unwrap().1;
    let by_name = verify(&notarium, &format!("localhost:{port}/x/y:z"));
    assert_problem(&by_name, 403, "registry-not-allowed", rule);
    assert_eq!(on_loopback.connections(), 0, "an unlisted name that resolves to loopback was contacted");
}

#[test]
fn deny_wins_over_the_plain_http_list_and_allow_keeps_everything_else_out() {
    let attacker = Canned::attacker();
    let listed = listed_registry(&attacker.host);
    let config = format!("[registries]\nallow = [\"reg.example\"]\ndeny = [\"{}\"]\n", listed.host);
    let notarium = Notarium::start_with_config(&config, &[&listed.host], &[]);
    let denied = verify(&notarium, &format!("{}/plain/app:v1", listed.host));
    assert_problem(&denied, 403, "registry-not-allowed", &format!("deny \"{}\"", listed.host));
    let elsewhere = verify(&notarium, &format!("{}/plain/app:v1", attacker.host));
    assert_problem(&elsewhere, 403, "registry-not-allowed", "not listed in [registries] allow");
    assert_eq!((listed.connections(), attacker.connections()), (0, 0));
}

#[test]
fn a_listed_registry_cannot_send_notarium_to_an_unlisted_address() {
    let (attacker, listed, notarium) = attacker_and_listed_registry();
    let host = &listed.host;
    let redirected = verify(&notarium, &format!("{host}/redirect/app:v1"));
    assert_problem(&redirected, 403, "registry-not-allowed", "a redirect stays on the registry's origin");
    let realm = verify(&notarium, &format!("{host}/realm-http/app:v1"));
    assert_problem(&realm, 403, "registry-not-allowed", "its token realm: it must be HTTPS");
    let realm = verify(&notarium, &format!("{host}/realm-https/app:v1"));
    assert_problem(&realm, 403, "registry-not-allowed", "its token realm: internal addresses");
    let upload = sign(&notarium, &format!("{host}/upload/app:v1"));
    assert_problem(&upload, 403, "registry-not-allowed", "an upload Location must stay on the registry's origin");
    let digest = sha256_digest(&image_manifest());
    let link = get(&notarium, &format!("/v1/referrers?image={host}/link/app@{digest}"));
    assert_problem(&link, 403, "registry-not-allowed", "a Link rel=\"next\" must stay on the registry's origin");
    assert_eq!(attacker.connections(), 0, "the unlisted address was contacted");
    assert!(listed.requests().iter().any(|r| r.starts_with("POST /v2/upload/app/blobs/uploads/")));
}

#[test]
fn credentials_go_only_to_the_registry_and_the_realms_listed_for_it_never_across_a_redirect() {
    let attacker = Canned::attacker();
    let listed = listed_registry(&attacker.host);
    let (host, port) = (&listed.host, listed.host.rsplit_once(':').unwrap().1);
    let other_name = format!("localhost:{port}");
    let auth = format!("[registries.auth.\"{host}\"]\nusername = \"ci\"\npassword_env = \"EGRESS_TEST_PASSWORD\"\n");
    let env = [("EGRESS_TEST_PASSWORD", "hunter2")];
    let notarium = Notarium::start_with_config(&auth, &[host, &other_name], &env);
    let realm = verify(&notarium, &format!("{host}/realm-elsewhere/app:v1"));
    assert_problem(&realm, 403, "registry-not-allowed", "its credentials go only to its own host or a realm listed");
    assert!(!listed.requests().iter().any(|r| r.contains("/token-ok")), "{:?}", listed.requests());
    drop(notarium);

    let listing =
        format!("{auth}realms = [\"{other_name}\"]\n[registries.blob_stores]\n\"{host}\" = [\"localhost\"]\n");
    let notarium = Notarium::start_with_config(&listing, &[host, &other_name], &env);
    let realm = verify(&notarium, &format!("{host}/realm-elsewhere/app:v1"));
    assert_problem(&realm, 502, "registry-denied", "denied access");
    assert!(listed.requests().iter().any(|r| r.starts_with("GET /token-ok") && r.ends_with("with credentials")));
    let (status, answer) = verify(&notarium, &format!("{host}/redirect-store/app:v1"));
    assert_eq!(status, 200, "a redirect to a listed blob store is followed: {answer}");
    let requests = listed.requests();
    assert!(requests.iter().any(|r| r == "GET /v2/redirect-store/app/manifests/v1 with credentials"), "{requests:?}");
    assert!(requests.iter().any(|r| r.starts_with("GET /store/") && !r.ends_with("with credentials")), "{requests:?}");
    assert_eq!(attacker.connections(), 0);
}

#[test]
fn what_a_registry_answered_stays_in_the_log() {
    let attacker = Canned::attacker();
    let listed = listed_registry(&attacker.host);
    let dead = format!("127.0.0.1:{}", free_port());
    let notarium = Notarium::start(&[&listed.host, &dead]);
    let host = &listed.host;

    let broken = verify(&notarium, &format!("{host}/broken/app:v1"));
    assert_problem(&broken, 502, "registry-error", &format!("registry {host} answered status 500"));
    assert_eq!(broken.1["registry_status"], 500, "{}", broken.1);
    let invalid = verify(&notarium, &format!("{host}/invalid/app:v1"));
    assert_problem(&invalid, 400, "registry-refused-input", "NAME_INVALID");
    assert_eq!(
        (invalid.1["registry_status"].as_u64(), invalid.1["registry_code"].as_str()),
        (Some(400), Some("NAME_INVALID"))
    );
    let unreachable = verify(&notarium, &format!("{dead}/x/y:z"));
    assert_problem(&unreachable, 502, "registry-unreachable", &format!("registry {dead} could not be reached"));
    let detail = unreachable.1["detail"].as_str().unwrap();
    assert!(!detail.contains("os error") && !detail.contains("onnection refused"), "{detail}");
    assert!(notarium.log().contains(SECRET), "the registry's body is logged for the operator");

    // The admission webhook denies in the same words.
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "a", "image": format!("{host}/broken/app:v1")},
                                {"name": "b", "image": format!("{dead}/x/y:z")}]}});
    let gvk = json!({"group": "", "version": "v1", "kind": "Pod"});
    let review = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "u", "kind": gvk, "resource": {"group": "", "version": "v1", "resource": "pods"},
        "operation": "CREATE", "object": pod, "dryRun": true, "userInfo": {"username": "u"}}});
    let (status, review) = post(&notarium, "/v1/admission", review);
    assert_eq!(status, 200, "{review}");
    let message = review["response"]["status"]["message"].as_str().unwrap_or_default().to_owned();
    assert!(message.contains(&format!("registry {host} answered status 500")), "{review}");
    assert!(message.contains(&format!("registry {dead} could not be reached")), "{review}");
    assert!(!message.contains("os error") && !message.contains("onnection refused"), "{review}");
}

#[test]
fn a_registry_that_does_not_speak_tls_is_unreachable_without_the_tls_alert() {
    let plain = TcpListener::bind("127.0.0.1:0").unwrap();
    let host = plain.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for mut stream in plain.incoming().map_while(Result::ok) {
            let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
        }
    });
    let notarium = Notarium::start_with_config(&format!("[registries]\nallow = [\"{host}\"]\n"), &[], &[]);
    let answer = verify(&notarium, &format!("{host}/x/y:z"));
    assert_problem(&answer, 502, "registry-unreachable", "plain HTTP is spoken only to registries listed");
    let detail = answer.1["detail"].as_str().unwrap();
    assert!(!detail.contains("corrupt") && !detail.contains("InvalidContentType"), "{detail}");
}

#[test]
fn endless_and_oversized_answers_are_cut_at_their_caps() {
    let (_attacker, listed, notarium) = attacker_and_listed_registry();
    let host = &listed.host;
    let limit = "larger than the limit of 4194304 bytes";
    assert_problem(&verify(&notarium, &format!("{host}/huge/app:v1")), 502, "registry-error", limit);
    assert_problem(&verify(&notarium, &format!("{host}/endless/app:v1")), 502, "registry-error", limit);
    let token = verify(&notarium, &format!("{host}/endless-token/app:v1"));
    assert_problem(&token, 502, "registry-error", "a token answer larger than the limit of 65536 bytes");
    let error = verify(&notarium, &format!("{host}/endless-error/app:v1"));
    assert_problem(&error, 502, "registry-error", "answered status 500");
}

#[test]
fn oversized_and_endless_blobs_are_skipped_at_the_cap() {
    let attacker = Canned::attacker();
    let listed = listed_registry(&attacker.host);
    let policies = tempfile::tempdir().unwrap();
    let policy = format!(
        "policies:\n  - name: signed\n    images: [\"{}/**\"]\n    authorities:\n      - key: dev-ecdsa\n",
        listed.host
    );
    std::fs::write(policies.path().join("signed.yaml"), policy).unwrap();
    let dir = policies.path().to_str().unwrap();
    let notarium = Notarium::start_with(&[&listed.host], &[("NOTARIUM_POLICIES_DIR", dir)]);
    for scenario in ["blob-huge", "blob-endless"] {
        let (status, answer) = verify(&notarium, &format!("{}/{scenario}/app:v1", listed.host));
        assert_eq!((status, answer["allowed"].as_bool()), (200, Some(false)), "{answer}");
        let skipped = answer["skipped"].to_string();
        assert!(skipped.contains("larger than the limit of 262144 bytes"), "{scenario}: {answer}");
    }
}

#[test]
fn a_name_of_sixty_components_is_a_client_error() {
    let registry = Registry::start();
    let notarium = Notarium::start(&[&registry.host]);
    let long = format!("{}/{}:v1", registry.host, vec!["abcd"; 60].join("/"));
    assert_problem(&verify(&notarium, &long), 400, "malformed-reference", "longer than 255 characters");
    assert_problem(&sign(&notarium, &long), 400, "malformed-reference", "longer than 255 characters");
}
