//! Hygiene of a running notarium: the data folder and database are owner-only whatever the umask, secret
//! files open to others are named at start-up, token lifetimes are bounded, registry event numbers are
//! exact integers, the checkpoint key signs nothing else, a slow client cannot hold a connection, and
//! neither a client that hangs up nor the request timeout cuts a sign or attest short.

use crate::support;

use std::io::{BufRead, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use support::*;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o777
}

/// A `notarium serve` started here, killed on drop.
struct Served(Child);

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `notarium serve` on embedded defaults under `umask 000`, its data in `data_dir` (not created yet);
/// returns once it listens.
fn serve_with_open_umask(data_dir: &Path) -> Served {
    let mut served = Served(
        Command::new("sh")
            .args(["-c", "umask 000 && exec \"$0\" serve", env!("CARGO_BIN_EXE_notarium")])
            .current_dir(ROOT)
            .env("NOTARIUM_LISTEN", "127.0.0.1:0")
            .env("NOTARIUM_DATA_DIR", data_dir)
            .env("NOTARIUM_POLICIES_DIR", data_dir.with_file_name("no-policies"))
            .env_remove("NOTARIUM_DATABASE_URL")
            .env_remove("NOTARIUM_CONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut log = String::new();
    for line in BufReader::new(served.0.stderr.take().unwrap()).lines().map_while(Result::ok) {
        if line.starts_with("notarium listening on ") {
            return served;
        }
        log.push_str(&line);
        log.push('\n');
    }
    panic!("notarium did not start: {log}");
}

#[test]
fn a_fresh_data_folder_and_its_database_are_owner_only_whatever_the_umask() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("fresh").join("data");
    let server = serve_with_open_umask(&data);
    let modes = (mode(&data), mode(&data.join("notarium.db")));
    let companions: Vec<_> = ["notarium.db-wal", "notarium.db-shm"]
        .iter()
        .map(|name| data.join(name))
        .filter(|path| path.exists())
        .map(|path| (path.file_name().unwrap().to_owned(), mode(&path)))
        .collect();
    drop(server);
    assert_eq!(modes, (0o700, 0o600));
    assert!(!companions.is_empty(), "WAL mode keeps -wal and -shm files while the server runs");
    assert!(companions.iter().all(|(_, mode)| *mode == 0o600), "{companions:?}");
}

#[test]
fn secret_files_open_to_group_or_others_are_named_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let (open, closed) = (dir.path().join("open.pem"), dir.path().join("closed.pem"));
    for (path, mode) in [(&open, 0o644), (&closed, 0o600)] {
        std::fs::copy(Path::new(ROOT).join("keys.example/dev-ecdsa.pem"), path).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let pin = dir.path().join("pin");
    std::fs::write(&pin, "1234").unwrap();
    std::fs::set_permissions(&pin, std::fs::Permissions::from_mode(0o640)).unwrap();
    let config = format!(
        "{OPEN_WITH_BACKEND_KEYS}[[keys]]\nid = \"open\"\nbackend = \"file\"\npath = \"{}\"\n\n[[keys]]\nid = \"closed\"\nbackend = \"file\"\n\
         path = \"{}\"\n\n[[keys]]\nid = \"hsm\"\nbackend = \"pkcs11\"\nmodule = \"/nonexistent.so\"\n\
         token_label = \"t\"\nkey_label = \"k\"\npin_file = \"{}\"\n",
        open.display(),
        closed.display(),
        pin.display()
    );
    let notarium = Notarium::start_with_config(&config, &[], &[]);
    let log = notarium.log();
    assert!(log.contains(&format!("[[keys]] \"open\" path {} is open to group or others (mode 644)", open.display())));
    assert!(
        log.contains(&format!("[[keys]] \"hsm\" pin_file {} is open to group or others (mode 640)", pin.display()))
    );
    assert!(!log.contains(&closed.display().to_string()), "{log}");
    assert!(!log.contains("1234"), "{log}");
}

/// `notarium token create ARGS --output json` against the server's database: exit code, stdout, stderr.
fn token_create(server: &Notarium, args: &[&str]) -> (i32, Value, String) {
    let out = token_command(server, &[&["create"], args].concat());
    let made = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status.code().unwrap(), made, String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn a_token_lifetime_past_ten_years_is_a_400_over_the_api_and_a_usage_error_in_the_cli() {
    let server = Notarium::start_with_config("[auth]\nrequired = true\n", &[], &[]);
    let (exit, admin, _) = token_create(&server, &["--role", "admin"]);
    assert_eq!(exit, 0);
    let admin = admin["token"].as_str().unwrap();

    for expires in ["3000000d", "99999999999999999999d", "3651d"] {
        let body = json!({"role": "auditor", "expires": expires});
        let (status, problem) = call(&server, "POST", "/v1/tokens", admin, Some(body));
        assert_eq!(status, 400, "{expires}: {problem}");
        assert_eq!(problem["type"], "https://notarium.dev/problems/invalid-token-lifetime");
        assert!(problem["detail"].as_str().unwrap().contains("10 years (3650d)"), "{problem}");
    }
    let (status, made) =
        call(&server, "POST", "/v1/tokens", admin, Some(json!({"role": "auditor", "expires": "3650d"})));
    assert_eq!(status, 201, "{made}");
    assert_eq!(call(&server, "GET", "/healthz", "", None).0, 200, "the server is still there");

    let (exit, _, stderr) = token_create(&server, &["--role", "auditor", "--expires", "3000000d"]);
    assert_eq!(exit, 2, "{stderr}");
    assert!(stderr.contains("10 years (3650d)"), "{stderr}");
}

#[test]
fn registry_events_with_numbers_other_than_exact_integers_are_refused_naming_the_field() {
    let config = "[events]\nregistry_secret_env = \"NOTARIUM_TEST_EVENTS_SECRET\"\n";
    let notarium = Notarium::start_with_config(config, &[], &[("NOTARIUM_TEST_EVENTS_SECRET", "s3")]);
    let post = |size: &str| {
        let body = format!(
            r#"{{"events": [{{"id": "e-{size}", "action": "push", "target": {{"repository": "a/b", "size": {size}}}}}]}}"#
        );
        let response = client()
            .post(format!("{}/v1/events/registry", notarium.url))
            .header("Content-Type", "application/json")
            .bearer_auth("s3")
            .body(body)
            .send()
            .unwrap();
        (response.status().as_u16(), response.json::<Value>().unwrap())
    };
    let (_, before) = call(&notarium, "GET", "/v1/log/entries?start=0&end=1000", "", None);
    for size in ["1.5", "2.0", "9007199254740993", "1e3"] {
        let (status, problem) = post(size);
        assert_eq!(status, 400, "{size}: {problem}");
        assert!(problem["detail"].as_str().unwrap().contains("events[0].target.size"), "{problem}");
    }
    let (_, after) = call(&notarium, "GET", "/v1/log/entries?start=0&end=1000", "", None);
    assert_eq!(before["entries"].as_array().unwrap().len(), after["entries"].as_array().unwrap().len());
    let (status, recorded) = post("1234");
    assert_eq!((status, recorded["recorded"].as_u64()), (200, Some(1)), "{recorded}");
}

/// `POST /v1/sign` (or `/v1/attest`) of `image` with `key` as the caller holding `token` (none when empty).
fn sign_with(server: &Notarium, token: &str, route: &str, image: &str, key: &str) -> (u16, Value) {
    let body = json!({"image": image, "key": key, "predicate_type": "https://cyclonedx.org/bom", "predicate": {}});
    call(server, "POST", route, token, Some(body))
}

#[test]
fn the_checkpoint_key_signs_no_image_for_anyone_and_a_dev_one_is_a_loud_warning() {
    let registry = Registry::start();
    let digest = push_image(&registry, "hygiene/app", "v1", "hygiene");
    let image = format!("{}/hygiene/app@{digest}", registry.host);
    let server = Notarium::start_with_config("[auth]\nrequired = true\n", &[&registry.host], &[]);
    assert!(
        server.log().contains("THE REGISTER'S CHECKPOINTS ARE SIGNED WITH A PUBLIC EXAMPLE KEY"),
        "{}",
        server.log()
    );
    let repos = format!("{}/**", registry.host);
    let (_, signer, _) = token_create(&server, &["--role", "signer", "--repos", &repos, "--keys", "*"]);
    let (_, named, _) = token_create(&server, &["--role", "signer", "--repos", &repos, "--keys", "dev-log,dev-ecdsa"]);
    let (signer, named) = (signer["token"].as_str().unwrap(), named["token"].as_str().unwrap());

    for route in ["/v1/sign", "/v1/attest"] {
        let (status, problem) = sign_with(&server, signer, route, &image, "dev-log");
        assert_eq!(status, 403, "{route}: {problem}");
        assert!(problem["detail"].as_str().unwrap().contains("may not sign with key dev-log"), "{problem}");
        let (status, problem) = sign_with(&server, named, route, &image, "dev-log");
        assert_eq!(status, 403, "{route}: {problem}");
        assert_eq!(problem["type"], "https://notarium.dev/problems/reserved-key");
        assert!(problem["detail"].as_str().unwrap().contains("register's checkpoint key ([log] key)"), "{problem}");
    }
    assert_eq!(sign_with(&server, signer, "/v1/sign", &image, "dev-ecdsa").0, 201);
    assert_eq!(call(&server, "GET", "/v1/log/checkpoint", "", None).0, 200, "checkpoints are still signed");
}

/// `notarium serve` with `policy` as the only policy file: its exit code and what it printed.
fn serve_with_policy(policy: &str) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("policies")).unwrap();
    std::fs::write(dir.path().join("policies/trust.yaml"), policy).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_notarium"))
        .arg("serve")
        .current_dir(ROOT)
        .env("NOTARIUM_LISTEN", "127.0.0.1:0")
        .env("NOTARIUM_DATA_DIR", dir.path())
        .env("NOTARIUM_POLICIES_DIR", dir.path().join("policies"))
        .env_remove("NOTARIUM_DATABASE_URL")
        .env_remove("NOTARIUM_CONFIG")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn a_policy_that_trusts_the_checkpoint_key_is_refused_at_start_naming_file_and_line() {
    let policy = "policies:\n  - name: p\n    images: [\"r.example/**\"]\n    authorities:\n      - key: dev-ecdsa\n      - key: dev-log\n";
    let (exit, stderr) = serve_with_policy(policy);
    assert_eq!(exit, 2, "{stderr}");
    assert!(
        stderr.contains("trust.yaml line 6: policy \"p\", authorities: dev-log is the register's checkpoint key"),
        "{stderr}"
    );

    // Its public key, inline, is refused the same way.
    let server = Notarium::start(&[]);
    let (_, pem) = server.get_text("/v1/keys/dev-log/public.pem");
    let block: String = pem.lines().map(|l| format!("          {l}\n")).collect();
    let inline = format!(
        "policies:\n  - name: p\n    images: [\"r.example/**\"]\n    authorities:\n      - public_key: |\n{block}"
    );
    let (exit, stderr) = serve_with_policy(&inline);
    assert_eq!(exit, 2, "{stderr}");
    assert!(stderr.contains("public_key #1 is the register's checkpoint key ([log] key dev-log)"), "{stderr}");
}

/// A raw connection to `server` that has sent `bytes`.
fn connect_and_send(server: &Notarium, bytes: &str) -> TcpStream {
    let mut stream = TcpStream::connect(server.url.trim_start_matches("http://")).unwrap();
    stream.write_all(bytes.as_bytes()).unwrap();
    stream
}

/// Everything `stream` receives until the server closes it; panics if it is still open after `wait`.
fn read_until_closed(stream: &mut TcpStream, wait: Duration) -> String {
    stream.set_read_timeout(Some(wait)).unwrap();
    let mut received = Vec::new();
    match stream.read_to_end(&mut received) {
        Ok(_) => String::from_utf8_lossy(&received).into_owned(),
        Err(e) => panic!("the connection was still open after {wait:?} ({e}); received {received:?}"),
    }
}

#[test]
fn a_connection_that_sends_half_a_request_line_is_cut_after_the_header_timeout() {
    let server = Notarium::start_with_config("[server]\nheader_timeout_secs = 1\n", &[], &[]);
    let mut slow = connect_and_send(&server, "GET /heal");
    read_until_closed(&mut slow, Duration::from_secs(20));
    let mut idle = connect_and_send(&server, "");
    read_until_closed(&mut idle, Duration::from_secs(20));
    assert_eq!(call(&server, "GET", "/healthz", "", None).0, 200, "whole requests are still served");
}

#[test]
fn connections_past_max_connections_wait_until_one_closes() {
    let config = "[server]\nmax_connections = 2\nheader_timeout_secs = 60\n";
    let server = Notarium::start_with_config(config, &[], &[]);
    let host = server.url.trim_start_matches("http://").to_owned();
    let held: Vec<_> = (0..2).map(|_| connect_and_send(&server, "GET /healthz HTTP/1.1\r\n")).collect();
    let request = format!("GET /healthz HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    let mut third = connect_and_send(&server, &request);
    third.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    let unanswered = third.read(&mut [0; 64]).unwrap_err().kind();
    assert!(matches!(unanswered, std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut), "{unanswered:?}");
    drop(held);
    let answer = read_until_closed(&mut third, Duration::from_secs(20));
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

/// Entries of `kind` in the first 100 of `server`'s register.
fn entries_of_kind(server: &Notarium, kind: &str) -> usize {
    let (_, page) = server.get_text("/v1/log/entries?start=0&end=100");
    let page: Value = serde_json::from_str(&page).unwrap();
    page["entries"].as_array().unwrap().iter().filter(|e| e["entry"]["kind"] == kind).count()
}

#[test]
fn signs_and_attests_whose_client_hangs_up_run_to_their_end_and_are_logged_at_once() {
    let registry = Registry::start();
    let server = Notarium::start(&[&registry.host]);
    let host = server.url.trim_start_matches("http://").to_owned();
    let post = |path: &str, body: Value| {
        let body = body.to_string();
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        // Hung up as soon as the request is sent: the server sees the connection close mid-request.
        connect_and_send(&server, &request).shutdown(std::net::Shutdown::Both).unwrap();
    };
    const IMAGES: usize = 6;
    for n in 0..IMAGES {
        let digest = push_image(&registry, "hangup/app", &format!("v{n}"), &format!("hung up {n}"));
        let image = format!("{}/hangup/app@{digest}", registry.host);
        post("/v1/sign", json!({"image": image, "key": "dev-ecdsa"}));
        post(
            "/v1/attest",
            json!({"image": image, "key": "dev-ecdsa", "predicate_type": "https://example.com/p/v1",
            "predicate": {"n": n}}),
        );
    }
    // Far below the 180 s after which reconciliation would log a sign its request left pending.
    let logged = (0..150).find(|_| {
        std::thread::sleep(Duration::from_millis(200));
        entries_of_kind(&server, "sign") == IMAGES && entries_of_kind(&server, "attest") == IMAGES
    });
    assert!(
        logged.is_some(),
        "{} sign and {} attest entries of {IMAGES} each; server log:\n{}",
        entries_of_kind(&server, "sign"),
        entries_of_kind(&server, "attest"),
        server.log()
    );
}

/// A TCP proxy to `upstream` that holds each chunk the upstream answers for `delay` before passing it on: a
/// slow registry. Returns its `host:port`.
fn slow_proxy(upstream: &str, delay: Duration) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let upstream = upstream.to_owned();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let Ok(server) = TcpStream::connect(&upstream) else { continue };
            let pipe = |mut from: TcpStream, mut to: TcpStream, wait: Duration| {
                std::thread::spawn(move || {
                    let mut buffer = [0; 16384];
                    while let Ok(n @ 1..) = from.read(&mut buffer) {
                        std::thread::sleep(wait);
                        if to.write_all(&buffer[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = to.shutdown(std::net::Shutdown::Write);
                })
            };
            pipe(client.try_clone().unwrap(), server.try_clone().unwrap(), Duration::ZERO);
            pipe(server, client, delay);
        }
    });
    address
}

#[test]
fn a_sign_past_the_request_timeout_is_answered_408_and_still_runs_to_its_end() {
    let registry = Registry::start();
    let slow = slow_proxy(&registry.host, Duration::from_millis(400));
    let config = format!("[server]\nrequest_timeout_secs = 1\n{EXAMPLE_KEYS}");
    let server = Notarium::start_with_config(&config, &[&slow], &[]);
    let digest = push_image(&registry, "slow/app", "v1", "slowly signed");
    let image = format!("{slow}/slow/app@{digest}");

    let (status, _, _) = server.post("/v1/sign", json!({"image": image, "key": "dev-ecdsa"}).to_string());
    assert_eq!(status, 408, "the sign took longer than the request timeout");
    // Far below the 180 s after which reconciliation would log a sign its request left pending.
    let logged = (0..100).find(|_| {
        std::thread::sleep(Duration::from_millis(200));
        entries_of_kind(&server, "sign") == 1
    });
    assert!(logged.is_some(), "the sign was cut off by the timeout; server log:\n{}", server.log());
}
