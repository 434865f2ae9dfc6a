//! `notarium witness serve` and `notarium witness key`: a C2SP tlog-witness an auditor runs on their own
//! machine. It keeps the latest checkpoint it cosigned per log origin in a state directory (one file per
//! origin, replaced atomically), checks each `add-checkpoint` request (`formats::witness`: the log's
//! signature, the old size, the consistency proof), and answers with a tlog-cosignature/v1 line; it serves
//! `GET /<sha256 hex of the origin>/checkpoint` for monitors.
//!
//! Owns: the witness's key file, its state files, its HTTP answers. Must not touch: notarium's database,
//! configuration or keyring (a witness is a separate party).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path as UrlPath, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use clap::Subcommand;
use ed25519_dalek::Signer as _;
use ed25519_dalek::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _};
use sha2::{Digest as _, Sha256};
use tokio::sync::Mutex;

use super::{CliError, Output};
use crate::formats::checkpoint::{Checkpoint, parse_note};
use crate::formats::cosignature::{WitnessKey, cosignature_line, is_key_name, message, signature_line};
use crate::formats::digest::hex_lower;
use crate::formats::witness::{
    AddCheckpoint, Refusal, SIZE_CONTENT_TYPE, TrustedLog, check_consistency, verify_signed,
};

/// An add-checkpoint body: 63 proof lines and a checkpoint with a few signatures fit many times over.
const MAX_REQUEST_BYTES: usize = 64 * 1024;
/// A state file or key file larger than this is not one this command wrote.
const MAX_FILE_BYTES: u64 = 64 * 1024;

#[derive(Subcommand)]
pub(super) enum WitnessCommand {
    /// Serve the witness: POST /add-checkpoint (C2SP tlog-witness) and GET /<origin hash>/checkpoint.
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:7380")]
        listen: String,
        /// The witness's Ed25519 private key (PKCS#8 PEM, from `notarium witness key generate`).
        #[arg(long)]
        key: PathBuf,
        /// The witness's key name (a schema-less URL, e.g. witness.example.com/w1), as in its vkey.
        #[arg(long)]
        name: String,
        /// Where the latest cosigned checkpoint of each log is kept.
        #[arg(long)]
        state: PathBuf,
        /// A log to witness: ORIGIN=VKEY, the vkey of its checkpoint key (name+id+base64(0x01||key));
        /// repeatable.
        #[arg(long = "log", required = true)]
        logs: Vec<String>,
    },
    /// Make or show witness keys.
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
}

#[derive(Subcommand)]
pub(super) enum KeyCommand {
    /// Write a new Ed25519 witness key to FILE (mode 0600, refused if FILE exists) and print its vkey.
    Generate {
        /// The witness's key name (a schema-less URL, e.g. witness.example.com/w1).
        #[arg(long)]
        name: String,
        #[arg(long)]
        key: PathBuf,
    },
    /// Print the vkey of the witness key in FILE under NAME.
    Vkey {
        #[arg(long)]
        name: String,
        #[arg(long)]
        key: PathBuf,
    },
}

pub(super) async fn run(command: WitnessCommand, output: Output) -> Result<(), CliError> {
    match command {
        WitnessCommand::Serve { listen, key, name, state, logs } => {
            super::serve::init_tracing();
            let witness = Witness::open(&name, &key, state, &logs)?;
            serve(&listen, witness).await
        }
        WitnessCommand::Key { command: KeyCommand::Generate { name, key } } => {
            check_name(&name)?;
            let signing = generate(&key)?;
            print_vkey(&name, &signing, output);
            Ok(())
        }
        WitnessCommand::Key { command: KeyCommand::Vkey { name, key } } => {
            check_name(&name)?;
            print_vkey(&name, &read_key(&key)?, output);
            Ok(())
        }
    }
}

fn check_name(name: &str) -> Result<(), CliError> {
    if is_key_name(name) {
        Ok(())
    } else {
        Err(CliError::Usage(format!("witness name {name:?} is empty or holds a space or '+'")))
    }
}

fn print_vkey(name: &str, signing: &ed25519_dalek::SigningKey, output: Output) {
    let vkey = WitnessKey { name: name.to_owned(), public_key: signing.verifying_key().to_bytes() }.vkey();
    output.print(&serde_json::json!({ "name": name, "vkey": vkey }), || vkey.clone());
}

fn generate(path: &Path) -> Result<ed25519_dalek::SigningKey, CliError> {
    let mut seed = zeroize::Zeroizing::new([0u8; 32]);
    getrandom::fill(seed.as_mut_slice()).map_err(|e| CliError::Unavailable(format!("no randomness: {e}")))?;
    let signing = ed25519_dalek::SigningKey::from_bytes(&seed);
    let pem = signing
        .to_pkcs8_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
        .map_err(|e| CliError::Unavailable(format!("cannot encode the key: {e}")))?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(|e| CliError::Usage(format!("cannot create {}: {e}", path.display())))?;
    std::io::Write::write_all(&mut file, pem.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| CliError::Unavailable(format!("cannot write {}: {e}", path.display())))?;
    Ok(signing)
}

fn read_key(path: &Path) -> Result<ed25519_dalek::SigningKey, CliError> {
    let pem = crate::local_file::read_text_capped(path, MAX_FILE_BYTES).map_err(|e| CliError::Usage(e.to_string()))?;
    let pem = zeroize::Zeroizing::new(pem);
    ed25519_dalek::SigningKey::from_pkcs8_pem(&pem)
        .map_err(|_| CliError::Usage(format!("{} is not an Ed25519 PKCS#8 PEM private key", path.display())))
}

/// The witness: its key, the logs it trusts, and its state directory (one writer at a time).
struct Witness {
    key: WitnessKey,
    signing: ed25519_dalek::SigningKey,
    logs: Vec<TrustedLog>,
    state: PathBuf,
    /// Held from reading an origin's latest checkpoint to persisting the new one, so two requests cannot
    /// both pass the old-size check and roll the state back.
    turn: Mutex<()>,
}

impl Witness {
    fn open(name: &str, key: &Path, state: PathBuf, logs: &[String]) -> Result<Self, CliError> {
        check_name(name)?;
        let signing = read_key(key)?;
        let logs = logs
            .iter()
            .map(|spec| TrustedLog::parse(spec).map_err(|e| CliError::Usage(format!("--log: {e}"))))
            .collect::<Result<Vec<_>, _>>()?;
        std::fs::create_dir_all(&state)
            .map_err(|e| CliError::Usage(format!("cannot create {}: {e}", state.display())))?;
        let key = WitnessKey { name: name.to_owned(), public_key: signing.verifying_key().to_bytes() };
        Ok(Self { key, signing, logs, state, turn: Mutex::new(()) })
    }

    fn state_file(&self, origin_hash: &str) -> PathBuf {
        self.state.join(format!("{origin_hash}.checkpoint"))
    }

    /// The note last cosigned for the origin whose SHA-256 hex is `origin_hash`, if any.
    fn stored_note(&self, origin_hash: &str) -> Result<Option<String>, String> {
        match crate::local_file::read_text_capped(&self.state_file(origin_hash), MAX_FILE_BYTES) {
            Ok(note) => Ok(Some(note)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }

    fn latest(&self, origin_hash: &str) -> Result<Option<Checkpoint>, String> {
        let Some(note) = self.stored_note(origin_hash)? else { return Ok(None) };
        let (body, _) = parse_note(&note).map_err(|e| format!("state file of {origin_hash}: {e}"))?;
        Checkpoint::parse_body(&body).map(Some).map_err(|e| format!("state file of {origin_hash}: {e}"))
    }

    /// Writes the new state file beside the old one, flushes it, then renames it over the old one.
    fn persist(&self, origin_hash: &str, note: &str) -> std::io::Result<()> {
        let path = self.state_file(origin_hash);
        let temporary = self.state.join(format!(".{origin_hash}.tmp"));
        let mut file = std::fs::File::create(&temporary)?;
        std::io::Write::write_all(&mut file, note.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&temporary, &path)?;
        std::fs::File::open(&self.state)?.sync_all()
    }

    /// Checks and cosigns `request`; the answer's cosignature line.
    async fn add_checkpoint(&self, request: &AddCheckpoint) -> Result<String, Failure> {
        let (checkpoint, body) = verify_signed(request, &self.logs)?;
        let origin_hash = hex_lower(&Sha256::digest(checkpoint.origin.as_bytes()));
        let _turn = self.turn.lock().await;
        let latest = self.latest(&origin_hash).map_err(Failure::State)?;
        if let Err(refusal) = check_consistency(request, &checkpoint, latest.as_ref()) {
            if matches!(refusal, Refusal::Inconsistent(_)) {
                tracing::warn!(origin = %checkpoint.origin, size = checkpoint.size, %refusal, "refused a checkpoint");
            }
            return Err(refusal.into());
        }
        let timestamp = time::OffsetDateTime::now_utc().unix_timestamp().max(1).unsigned_abs();
        let signature = self.signing.sign(message(&body, timestamp).as_bytes()).to_bytes();
        let line = signature_line(&cosignature_line(&self.key, timestamp, &signature));
        self.persist(&origin_hash, &format!("{}{line}", request.note)).map_err(|e| Failure::State(e.to_string()))?;
        tracing::info!(origin = %checkpoint.origin, size = checkpoint.size, "cosigned");
        Ok(line)
    }
}

/// Why a request got no cosignature.
enum Failure {
    Refused(Refusal),
    State(String),
}

impl From<Refusal> for Failure {
    fn from(refusal: Refusal) -> Self {
        Self::Refused(refusal)
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let text = |status: StatusCode, text: String| (status, [(header::CONTENT_TYPE, "text/plain")], text);
        match self {
            Self::Refused(Refusal::OldSizeMismatch(size)) => {
                (StatusCode::CONFLICT, [(header::CONTENT_TYPE, SIZE_CONTENT_TYPE)], format!("{size}\n")).into_response()
            }
            Self::Refused(refusal) => {
                let status = match refusal {
                    Refusal::Malformed(_) => StatusCode::BAD_REQUEST,
                    Refusal::UnknownOrigin => StatusCode::NOT_FOUND,
                    Refusal::Unsigned => StatusCode::FORBIDDEN,
                    Refusal::Inconsistent(_) | Refusal::OldSizeMismatch(_) => StatusCode::UNPROCESSABLE_ENTITY,
                };
                text(status, format!("{refusal}\n")).into_response()
            }
            Self::State(reason) => {
                tracing::error!(%reason, "witness state");
                text(StatusCode::INTERNAL_SERVER_ERROR, "the witness state could not be read or written\n".into())
                    .into_response()
            }
        }
    }
}

async fn add_checkpoint(State(witness): State<Arc<Witness>>, body: Bytes) -> Result<String, Failure> {
    let body = std::str::from_utf8(&body).map_err(|_| Refusal::Malformed("the body is not UTF-8".into()))?;
    let request = AddCheckpoint::parse(body).map_err(|e| Refusal::Malformed(e.to_string()))?;
    witness.add_checkpoint(&request).await
}

async fn checkpoint(State(witness): State<Arc<Witness>>, UrlPath(origin_hash): UrlPath<String>) -> Response {
    let well_formed = origin_hash.len() == 64 && origin_hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if !well_formed {
        return StatusCode::NOT_FOUND.into_response();
    }
    match witness.stored_note(&origin_hash) {
        Ok(Some(note)) => ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], note).into_response(),
        Ok(None) => StatusCode::NOT_FOUND.into_response(),
        Err(reason) => Failure::State(reason).into_response(),
    }
}

fn router(witness: Witness) -> Router {
    Router::new()
        .route("/add-checkpoint", post(add_checkpoint))
        .route("/{origin_hash}/checkpoint", get(checkpoint))
        .layer(DefaultBodyLimit::max(MAX_REQUEST_BYTES))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(30),
        ))
        .with_state(Arc::new(witness))
}

async fn serve(listen: &str, witness: Witness) -> Result<(), CliError> {
    let vkey = witness.key.vkey();
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| CliError::Unavailable(format!("cannot listen on {listen}: {e}")))?;
    let address: SocketAddr = listener.local_addr().map_err(|e| CliError::Unavailable(e.to_string()))?;
    eprintln!("notarium witness {vkey} listening on http://{address}");
    let limits = super::listener::ConnectionLimits {
        header_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(60),
        max_connections: 256,
    };
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    super::listener::serve(listener, router(witness), limits, shutdown).await;
    Ok(())
}
