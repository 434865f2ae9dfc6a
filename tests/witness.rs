//! Witnesses: `notarium witness serve` as a second process cosigning the checkpoints of a real notarium
//! server (`[[log.witnesses]]`), the cosigned checkpoint served and checked by `check_witnesses` and by the
//! independent `signed_note` crate, the witness's state kept across a restart, a fork refused; and the
//! exploit cases: unsigned or unknown checkpoints, a hostile witness whose lines are not its key's, an
//! oversized witness answer.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ed25519_dalek::Signer as _;
use notarium::formats::checkpoint::{Checkpoint, ed25519_verifier_key, parse_note, verify_ed25519_note};
use notarium::formats::cosignature::{WitnessKey, check_witnesses, cosignature_line, message, signature_line};
use notarium::formats::witness::AddCheckpoint;
use sha2::{Digest as _, Sha256};
use tempfile::TempDir;

use crate::support::{EXAMPLE_KEYS, Notarium, client, free_port, listening_url};

const ORIGIN: &str = "notarium.local/log";
const WITNESS_NAME: &str = "witness.test/w1";

/// A `notarium witness serve` process on a fixed port with its own key and state directory.
struct WitnessProcess {
    url: String,
    port: u16,
    child: Child,
    log: Arc<Mutex<String>>,
}

impl WitnessProcess {
    /// `log` is `["--log", "ORIGIN=VKEY"]` or `["--log-pem", "ORIGIN=FILE"]`.
    fn start(port: u16, key: &Path, state: &Path, log: [&str; 2]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_notarium"))
            .args(["witness", "serve", "--listen", &format!("127.0.0.1:{port}"), "--name", WITNESS_NAME])
            .arg("--key")
            .arg(key)
            .arg("--state")
            .arg(state)
            .args(log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (url, log) = listening_url(&mut child, |line| line.split_once(" listening on ").map(|(_, url)| url));
        Self { url, port, child, log }
    }

    fn post(&self, body: impl Into<reqwest::blocking::Body>) -> (u16, String, String) {
        let response = client().post(format!("{}/add-checkpoint", self.url)).body(body).send().unwrap();
        let status = response.status().as_u16();
        let content_type =
            response.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
        (status, content_type, response.text().unwrap())
    }

    /// The monitoring endpoint: the latest checkpoint it cosigned for `origin`.
    fn latest(&self, origin: &str) -> (u16, String) {
        let hash: String = Sha256::digest(origin.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
        let response = client().get(format!("{}/{hash}/checkpoint", self.url)).send().unwrap();
        (response.status().as_u16(), response.text().unwrap())
    }
}

impl Drop for WitnessProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `notarium witness key generate`: the key file and its vkey.
fn witness_key(dir: &Path) -> (PathBuf, WitnessKey) {
    let path = dir.join("witness.pem");
    let out = Command::new(env!("CARGO_BIN_EXE_notarium"))
        .args(["witness", "key", "generate", "--name", WITNESS_NAME, "--output", "json", "--key"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    (path, WitnessKey::parse_vkey(printed["vkey"].as_str().unwrap()).unwrap())
}

/// The example log key's raw Ed25519 public key and `ORIGIN=VKEY` for `--log`.
fn log_key() -> ([u8; 32], String) {
    let pem = std::fs::read_to_string(format!("{}/keys.example/dev-log.pem", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let signing = <ed25519_dalek::SigningKey as ed25519_dalek::pkcs8::DecodePrivateKey>::from_pkcs8_pem(&pem).unwrap();
    let public = signing.verifying_key().to_bytes();
    (public, format!("{ORIGIN}={}", ed25519_verifier_key(ORIGIN, &public)))
}

fn server_config(witnesses: &[(&str, &str)]) -> String {
    let mut config = String::from("[log]\nwitness_interval_secs = 1\nwitness_timeout_secs = 5\n");
    for (url, vkey) in witnesses {
        config.push_str(&format!("\n[[log.witnesses]]\nurl = \"{url}\"\nvkey = \"{vkey}\"\n"));
    }
    config.push_str(EXAMPLE_KEYS);
    config
}

fn wait_for<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(found) = probe() {
            return found;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "{what} did not happen within 30 s");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The served checkpoint once it carries a valid cosignature of `witness` for a tree of at least
/// `min_size`; the log's signature is checked too.
fn cosigned_checkpoint(server: &Notarium, witness: &WitnessKey, min_size: u64) -> (String, Checkpoint) {
    let (log_public, _) = log_key();
    wait_for("a cosigned checkpoint", || {
        let (status, note) = server.get_text("/v1/log/checkpoint");
        assert_eq!(status, 200, "{note}");
        verify_ed25519_note(&note, ORIGIN, &log_public).unwrap();
        let report = check_witnesses(&note, std::slice::from_ref(witness), 1).unwrap();
        (report.satisfied && report.checkpoint.size >= min_size).then_some((note, report.checkpoint))
    })
}

fn grow(server: &Notarium, entries: usize) {
    for _ in 0..entries {
        server.create_token(&["--role", "auditor"]);
    }
}

#[test]
fn a_witness_in_a_second_process_cosigns_a_growing_log_keeps_its_state_across_a_restart_and_refuses_a_fork() {
    let dir = TempDir::new().unwrap();
    let (key_file, witness) = witness_key(dir.path());
    let (_, log_spec) = log_key();
    let state = dir.path().join("state");
    let port = free_port();
    let mut process = WitnessProcess::start(port, &key_file, &state, ["--log", &log_spec]);
    let host = format!("127.0.0.1:{port}");
    let server = Notarium::start_with_config(&server_config(&[(&process.url, &witness.vkey())]), &[&host], &[]);

    let (note, first) = cosigned_checkpoint(&server, &witness, 1);
    // Still one signed note, read by an independent implementation: the log's line and the witness's.
    let parsed = signed_note::Note::from_bytes(note.as_bytes()).unwrap();
    assert_eq!(parsed.text(), first.body().as_bytes());
    assert_eq!(parse_note(&note).unwrap().1.len(), 2, "{note}");

    // The note is kept per size in the server: asked again, the same bytes.
    assert_eq!(server.get_text("/v1/log/checkpoint").1, note);

    // A note of the new size served (and kept) before the witness cosigns it is dropped when the
    // cosignature is stored, so the polling below sees the line.
    grow(&server, 2);
    let (_, second) = cosigned_checkpoint(&server, &witness, first.size + 2);
    assert!(second.size > first.size);

    // Restart the witness on the same port and state: it still knows the last size it cosigned, and
    // answers a request from size 0 with a 409 naming it.
    let before = process.latest(ORIGIN);
    assert_eq!(before.0, 200);
    let latest_size = Checkpoint::parse_body(&parse_note(&before.1).unwrap().0).unwrap().size;
    drop(process);
    process = WitnessProcess::start(port, &key_file, &state, ["--log", &log_spec]);
    assert_eq!(process.latest(ORIGIN), before);
    let (_, current) = server.get_text("/v1/log/checkpoint");
    let log_only = log_signed_part(&current);
    let (status, content_type, answer) =
        process.post(AddCheckpoint { old_size: 0, proof: vec![], note: log_only }.to_body());
    assert_eq!((status, content_type.as_str(), answer), (409, "text/x.tlog.size", format!("{latest_size}\n")));

    grow(&server, 1);
    let (_, third) = cosigned_checkpoint(&server, &witness, latest_size + 1);

    // A fork: a second notarium with a fresh database and the same log key and origin has another tree.
    // Sent from the witness's size with that tree's own consistency proof, it is refused with 422, and
    // the witness keeps what it had.
    let fork = Notarium::start_with_config(&server_config(&[]), &[], &[]);
    let (auditor, _) = fork.create_token(&["--role", "auditor"]);
    // First at the witness's own size: the same size with another root is a fork.
    let fork_size = |fork: &Notarium| {
        Checkpoint::parse_body(&parse_note(&fork.get_text("/v1/log/checkpoint").1).unwrap().0).unwrap()
    };
    while fork_size(&fork).size < third.size {
        grow(&fork, 1);
    }
    let same_size = fork.get_text("/v1/log/checkpoint").1;
    let same = Checkpoint::parse_body(&parse_note(&same_size).unwrap().0).unwrap();
    assert_eq!(same.size, third.size);
    assert_ne!(same.root_hash, third.root_hash);
    let held = process.latest(ORIGIN);
    let (status, _, _) = process.post(AddCheckpoint { old_size: third.size, proof: vec![], note: same_size }.to_body());
    assert_eq!(status, 422);
    assert_eq!(process.latest(ORIGIN), held);
    grow(&fork, 3);
    let (_, fork_note) = fork.get_text("/v1/log/checkpoint");
    let fork_checkpoint = Checkpoint::parse_body(&parse_note(&fork_note).unwrap().0).unwrap();
    assert!(fork_checkpoint.size > third.size);
    let proof: serde_json::Value = client()
        .get(format!("{}/v1/log/proof/consistency?first={}&second={}", fork.url, third.size, fork_checkpoint.size))
        .bearer_auth(&auditor)
        .send()
        .unwrap()
        .json()
        .unwrap();
    let proof = proof["hashes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| notarium::formats::digest::hex_decode(h.as_str().unwrap()).unwrap().try_into().unwrap())
        .collect();
    let fork_request = AddCheckpoint { old_size: third.size, proof, note: fork_note };
    let (status, _, _) = process.post(fork_request.to_body());
    assert_eq!(status, 422, "{}", process.log.lock().unwrap());
    assert_eq!(process.latest(ORIGIN), held);

    // The fork's own server, pointed at the witness, gets no cosignature and stores none.
    drop(fork);
    let fork_dir = TempDir::new().unwrap();
    let fork =
        Notarium::start_in(fork_dir, &[&host], &[("NOTARIUM_CONFIG", &write_config(dir.path(), &process, &witness))]);
    grow(&fork, third.size as usize + 2);
    // Until the fork outgrows the witness's size it cannot even offer a proof; then the witness says 422.
    wait_for("the fork's witness refusal in its log", || {
        fork.log().lines().any(|l| l.contains("witness did not cosign") && l.contains("HTTP 422")).then_some(())
    });
    let (_, fork_note) = fork.get_text("/v1/log/checkpoint");
    assert_eq!(parse_note(&fork_note).unwrap().1.len(), 1, "{fork_note}");
    assert!(!fork.log().contains("witness cosigned"), "{}", fork.log());
    assert_eq!(process.latest(ORIGIN), held);
    assert_eq!(process.port, port);

    // A witness that lost its state answers the log's request with 409 and size 0; the log sends the
    // checkpoint again from 0 and gets it cosigned.
    drop(process);
    let process = WitnessProcess::start(port, &key_file, &dir.path().join("fresh-state"), ["--log", &log_spec]);
    grow(&server, 1);
    let (_, fourth) = cosigned_checkpoint(&server, &witness, third.size + 1);
    let (status, latest) = process.latest(ORIGIN);
    assert_eq!(status, 200);
    assert_eq!(Checkpoint::parse_body(&parse_note(&latest).unwrap().0).unwrap(), fourth);
}

fn write_config(dir: &Path, process: &WitnessProcess, witness: &WitnessKey) -> String {
    let path = dir.join("fork.toml");
    std::fs::write(&path, server_config(&[(&process.url, &witness.vkey())])).unwrap();
    path.to_str().unwrap().to_owned()
}

/// The checkpoint note with only its first signature line (the log's).
fn log_signed_part(note: &str) -> String {
    let (text, signatures) = parse_note(note).unwrap();
    notarium::formats::checkpoint::format_note(&text, &signatures[..1])
}

#[test]
fn the_witness_refuses_unsigned_unknown_and_malformed_checkpoints_with_the_specifications_statuses() {
    let dir = TempDir::new().unwrap();
    let (key_file, _) = witness_key(dir.path());
    // The log's key given as the PEM public key an auditor pins (`notarium keys public dev-log`).
    let (public, _) = log_key();
    let pem = ed25519_dalek::pkcs8::EncodePublicKey::to_public_key_pem(
        &ed25519_dalek::VerifyingKey::from_bytes(&public).unwrap(),
        ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF,
    )
    .unwrap();
    let pem_file = dir.path().join("log.pub");
    std::fs::write(&pem_file, pem).unwrap();
    let spec = format!("{ORIGIN}={}", pem_file.display());
    let process = WitnessProcess::start(free_port(), &key_file, &dir.path().join("state"), ["--log-pem", &spec]);
    let checkpoint = Checkpoint { origin: ORIGIN.into(), size: 1, root_hash: [7; 32] };
    let body = checkpoint.body();
    let request = |note: String| AddCheckpoint { old_size: 0, proof: vec![], note }.to_body();

    // Signed by a key the witness does not trust for this origin, under the origin's name: 403.
    let stranger = ed25519_dalek::SigningKey::from_bytes(&[5; 32]);
    let forged = notarium::formats::checkpoint::format_note(
        &body,
        &[notarium::formats::checkpoint::NoteSignature {
            name: ORIGIN.into(),
            key_id: notarium::formats::checkpoint::ed25519_key_id(ORIGIN, &stranger.verifying_key().to_bytes()),
            signature: stranger.sign(body.as_bytes()).to_bytes().to_vec(),
        }],
    );
    assert_eq!(process.post(request(forged)).0, 403);
    // Unknown origin: 404.
    let other = Checkpoint { origin: "elsewhere.example/log".into(), ..checkpoint }.body();
    let unknown = notarium::formats::checkpoint::format_note(
        &other,
        &[notarium::formats::checkpoint::NoteSignature {
            name: "elsewhere.example/log".into(),
            key_id: [0; 4],
            signature: vec![0; 64],
        }],
    );
    assert_eq!(process.post(request(unknown)).0, 404);
    // No signature block at all, a malformed old line, an old size above the checkpoint's: 400.
    assert_eq!(process.post(request(body.clone())).0, 400);
    assert_eq!(process.post(format!("old 01\n\n{body}")).0, 400);
    // A body beyond the witness's limit is refused before it is read whole.
    assert_eq!(process.post(vec![b'a'; 256 * 1024]).0, 413);
    // Nothing was cosigned.
    assert_eq!(process.latest(ORIGIN).0, 404);
    // A checkpoint the log's key signed is accepted from size 0.
    let log = <ed25519_dalek::SigningKey as ed25519_dalek::pkcs8::DecodePrivateKey>::from_pkcs8_pem(
        &std::fs::read_to_string(format!("{}/keys.example/dev-log.pem", env!("CARGO_MANIFEST_DIR"))).unwrap(),
    )
    .unwrap();
    let empty = Checkpoint { origin: ORIGIN.into(), size: 1, root_hash: notarium::merkle::leaf_hash(b"{}") }.body();
    let signed = notarium::formats::checkpoint::format_note(
        &empty,
        &[notarium::formats::checkpoint::NoteSignature {
            name: ORIGIN.into(),
            key_id: notarium::formats::checkpoint::ed25519_key_id(ORIGIN, &public),
            signature: log.sign(empty.as_bytes()).to_bytes().to_vec(),
        }],
    );
    let (status, _, line) = process.post(request(signed));
    assert_eq!(status, 200, "{line}");
    assert_eq!(process.latest(ORIGIN).0, 200);
}

/// A fake witness: answers each add-checkpoint with what `answer` makes of the request; counts connections.
fn fake_witness(answer: impl Fn(&AddCheckpoint) -> String + Send + 'static) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let counted = connections.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            counted.fetch_add(1, Ordering::SeqCst);
            let Some(request) = read_request(&mut stream) else { continue };
            let body = answer(&request);
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(body.as_bytes()));
        }
    });
    (format!("http://{address}"), connections)
}

fn read_request(stream: &mut std::net::TcpStream) -> Option<AddCheckpoint> {
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut length = 0;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        if line == "\r\n" || line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().ok()?;
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    AddCheckpoint::parse(std::str::from_utf8(&body).ok()?).ok()
}

#[test]
fn a_hostile_witnesss_lines_and_an_oversized_answer_are_not_stored_or_served() {
    // Witness A is configured with key A but its answers are signed by key B under A's name and key id.
    let configured = ed25519_dalek::SigningKey::from_bytes(&[21; 32]);
    let impostor = ed25519_dalek::SigningKey::from_bytes(&[22; 32]);
    let hostile = WitnessKey { name: "hostile.test/a".into(), public_key: configured.verifying_key().to_bytes() };
    let named = hostile.clone();
    let (hostile_url, _) = fake_witness(move |request| {
        let (body, _) = parse_note(&request.note).unwrap();
        let signature = impostor.sign(message(&body, 1_800_000_000).as_bytes()).to_bytes();
        signature_line(&cosignature_line(&named, 1_800_000_000, &signature))
    });
    // Witness B cosigns correctly but pads its answer past the 16 KiB limit.
    let big_key = ed25519_dalek::SigningKey::from_bytes(&[23; 32]);
    let big = WitnessKey { name: "big.test/b".into(), public_key: big_key.verifying_key().to_bytes() };
    let named = big.clone();
    let (big_url, _) = fake_witness(move |request| {
        let (body, _) = parse_note(&request.note).unwrap();
        let signature = big_key.sign(message(&body, 1_800_000_000).as_bytes()).to_bytes();
        let line = signature_line(&cosignature_line(&named, 1_800_000_000, &signature));
        line.repeat(200)
    });
    // Witness C is on a loopback address the egress rules do not list: never contacted.
    let unlisted = WitnessKey { name: "unlisted.test/c".into(), public_key: big.public_key };
    let (unlisted_url, unlisted_connections) = fake_witness(|_| String::new());
    let hosts: Vec<String> =
        [&hostile_url, &big_url].iter().map(|u| u.trim_start_matches("http://").to_owned()).collect();
    let config =
        server_config(&[(&hostile_url, &hostile.vkey()), (&big_url, &big.vkey()), (&unlisted_url, &unlisted.vkey())]);
    let server = Notarium::start_with_config(&config, &[&hosts[0], &hosts[1]], &[]);
    wait_for("the three refusals in the log", || {
        let log = server.log();
        (log.contains("hostile.test/a")
            && log.contains("big.test/b")
            && log.contains("larger than the limit")
            && log.contains("unlisted.test/c"))
        .then_some(())
    });
    assert_eq!(unlisted_connections.load(Ordering::SeqCst), 0);
    assert!(server.log().contains("is not contacted"), "{}", server.log());
    let log = server.log();
    assert!(log.contains("HTTP 200 without a valid cosignature of the witness's key"), "{log}");
    assert!(!log.contains("witness cosigned"), "{log}");
    let (_, note) = server.get_text("/v1/log/checkpoint");
    assert_eq!(parse_note(&note).unwrap().1.len(), 1, "only the log's own line: {note}");
    let report = check_witnesses(&note, &[hostile, big], 1).unwrap();
    assert!(!report.satisfied && report.cosigned.is_empty());
}
