//! The `notarium` command: `serve` runs the service; `sign`, `attest`, `keys` and `log export` are thin
//! clients of its HTTP API (the CI step is one command); `verify` reads a registry directly and needs no server; `policy check` lints;
//! `verify-blob` checks a Sigstore bundle offline.
//!
//! Owns: arguments, exit codes and what gets printed. Must not touch: signing or registry logic beyond
//! calling `service` or the HTTP API.

mod client;
mod dry_run;
mod evidence;
mod id_token;
mod key_compromise;
mod keyring;
mod listener;
mod log;
mod secret_files;
mod serve;
mod tls;
mod token;
mod verify;
mod verify_blob;
mod witness;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::register::export::ExportFormat;

const CONVENTIONS: &str = "\
Output: results go to stdout, as text for people or, with --output json, as one JSON document (a denial or a
failed verification is a result too); errors go to stderr as one line starting with \"notarium: \".

Exit codes:
  0  success
  1  refused: the server answered with a 4xx problem, the policy denied the image, no valid signature was
     found, an export did not verify, or a policy file is invalid
  2  usage: bad arguments, or a file or configuration that cannot be read
  3  unavailable: the server, a registry or a key backend could not be reached or answered with a 5xx,
     or the service could not start";

/// `notarium --version`: the crate version and the commit built (see build.rs), e.g. `0.1.0 (3efbab5c1d2e)`.
const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("NOTARIUM_COMMIT"), ")");

/// The help of every command that calls a running server.
const CLIENT_HELP: &str = "\
The server is --server URL (or NOTARIUM_SERVER). A server that requires authentication takes an API token
(`notarium token create`) or a CI ID token from NOTARIUM_TOKEN, sent as `Authorization: Bearer`.";

/// The help of `sign` and `attest`, which also take the CI job's ID token.
const CI_CLIENT_HELP: &str = "\
The server is --server URL (or NOTARIUM_SERVER). A server that requires authentication takes an API token
(`notarium token create`) or a CI ID token from NOTARIUM_TOKEN, sent as `Authorization: Bearer`; with
--id-token SOURCE the CI job's ID token is sent instead: `github` asks the Actions token endpoint for one
(ACTIONS_ID_TOKEN_REQUEST_URL and _TOKEN, set when the workflow grants `permissions: id-token: write`) for
--audience; `gitlab` reads NOTARIUM_ID_TOKEN (the job's `id_tokens: NOTARIUM_ID_TOKEN: aud: notarium`);
`env:VARIABLE` and `file:PATH` read it from there.";

#[derive(Parser)]
#[command(name = "notarium", version = VERSION, about = "Container-image signing whose keys never leave their backend", after_help = CONVENTIONS)]
struct Cli {
    /// How results are printed on stdout (every command).
    #[arg(long, short = 'o', value_enum, global = true, default_value_t)]
    output: Output,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum, Default, PartialEq, Eq)]
pub enum Output {
    #[default]
    Text,
    Json,
}

impl Output {
    /// Prints a command's result: `json` as one line, or the `text` for people.
    pub fn print(self, json: &serde_json::Value, text: impl FnOnce() -> String) {
        match self {
            Self::Json => println!("{json}"),
            Self::Text => {
                let text = text();
                if !text.is_empty() {
                    println!("{text}");
                }
            }
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Run the service (embedded defaults when no config file is given).
    Serve {
        #[arg(long, env = "NOTARIUM_CONFIG")]
        config: Option<PathBuf>,
        /// Serve a non-loopback address even without TLS and authentication (e.g. behind a proxy that does both).
        #[arg(long, env = "NOTARIUM_INSECURE")]
        insecure: bool,
    },
    /// Make, list and revoke API tokens, in the database the configuration names (no server needed).
    Token {
        #[command(subcommand)]
        command: token::TokenCommand,
        #[arg(long, env = "NOTARIUM_CONFIG", global = true)]
        config: Option<PathBuf>,
    },
    /// Sign IMAGE (host/repo:tag or host/repo@sha256:…) through a running server; several images are signed
    /// as one batch (one request, one register transaction), each reported, exit status 1 if any failed.
    #[command(after_help = CI_CLIENT_HELP)]
    Sign {
        #[arg(value_name = "IMAGE", required = true, num_args = 1..)]
        images: Vec<String>,
        /// Key id, or id@version.
        #[arg(long)]
        key: String,
        /// Annotation KEY=VALUE for the payload's optional section (repeatable).
        #[arg(long = "annotation", short = 'a')]
        annotations: Vec<String>,
        /// For an image index (multi-platform): sign the index and every platform manifest it lists.
        #[arg(long, short = 'r')]
        recursive: bool,
        /// The notarium server's URL.
        #[arg(long, env = "NOTARIUM_SERVER", default_value = "http://127.0.0.1:8080")]
        server: String,
        #[command(flatten)]
        id_token: id_token::IdTokenArgs,
    },
    /// Attest IMAGE with an in-toto predicate (a JSON file) through a running server.
    #[command(after_help = CI_CLIENT_HELP)]
    Attest {
        image: String,
        /// Key id, or id@version.
        #[arg(long)]
        key: String,
        /// The predicate type, e.g. https://slsa.dev/provenance/v1.
        #[arg(long = "type")]
        predicate_type: String,
        /// A JSON file holding the predicate.
        #[arg(long)]
        predicate: PathBuf,
        /// For an image index (multi-platform): attest the index and every platform manifest it lists.
        #[arg(long, short = 'r')]
        recursive: bool,
        /// The notarium server's URL.
        #[arg(long, env = "NOTARIUM_SERVER", default_value = "http://127.0.0.1:8080")]
        server: String,
        #[command(flatten)]
        id_token: id_token::IdTokenArgs,
    },
    /// Re-sign every image a (revoked) key version signed with another key version, in batches; run again
    /// to resume (images the new version already signed are skipped). Exit 1 when any image failed. Signs
    /// with NOTARIUM_TOKEN (a signer); reads the register with NOTARIUM_AUDITOR_TOKEN when set.
    #[command(after_help = CLIENT_HELP)]
    Resign {
        /// The key version being replaced, ID@N.
        #[arg(long)]
        from: String,
        /// The key to sign with, ID@M (or ID: its latest version).
        #[arg(long)]
        to: String,
        /// Only images in repositories matching this host/path glob.
        #[arg(long)]
        repository: Option<String>,
        /// How many images one `POST /v1/sign` names (at most the server's `[sign] max_batch`).
        #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..=1024))]
        batch: u16,
        /// The notarium server's URL.
        #[arg(long, env = "NOTARIUM_SERVER", default_value = "http://127.0.0.1:8080")]
        server: String,
    },
    /// List keys or print a public key, from a running server.
    #[command(after_help = CLIENT_HELP)]
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Export the register or verify an export offline.
    Log {
        #[command(subcommand)]
        command: LogCommand,
    },
    /// Take an evidence pack of a period away from the server, or verify one offline.
    Evidence {
        #[command(subcommand)]
        command: EvidenceCommand,
    },
    /// Lint trust policy files, or try a candidate folder over the register's recent images.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Check IMAGE against a policy file, or its cosign tag-scheme signatures against a public key, reading
    /// the registry directly.
    #[command(group(clap::ArgGroup::new("trust").required(true).args(["key", "policy"])))]
    Verify {
        image: String,
        /// PEM public key (SubjectPublicKeyInfo) the signature must verify with (cosign's flag).
        #[arg(long, visible_alias = "public-key")]
        key: Option<PathBuf>,
        /// A policy file (policies/*.yaml format): the same engine as POST /v1/verify.
        #[arg(long)]
        policy: Option<PathBuf>,
        /// notarium.toml whose [[keys]] the policy's `key:` authorities name (only `public_key:` without it).
        #[arg(long, env = "NOTARIUM_CONFIG")]
        config: Option<PathBuf>,
        /// host:port registries to reach over plain HTTP (repeatable); NOTARIUM_INSECURE_REGISTRIES (a comma
        /// list) adds more.
        #[arg(long = "insecure-registry")]
        insecure_registries: Vec<String>,
        /// User name for the image's registry, with the password (or token) read from stdin
        /// (--registry-password-stdin); wins over [registries.auth] and Docker's config.json.
        #[arg(long, requires = "registry_password_stdin")]
        registry_username: Option<String>,
        /// Read the registry password for --registry-username from stdin (its first line).
        #[arg(long, requires = "registry_username")]
        registry_password_stdin: bool,
    },
    /// Run a C2SP tlog-witness that cosigns a log's checkpoints after checking they extend the last one it
    /// saw (no server of notarium's needed), or make its key.
    Witness {
        #[command(subcommand)]
        command: witness::WitnessCommand,
    },
    /// Verify a Sigstore bundle (v0.1-v0.3: keyless or key, Rekor v1/v2 entries, RFC 3161 timestamps) over
    /// FILE_OR_DIGEST (a path, or sha256:<hex>; for an in-toto DSSE bundle, a subject of its Statement),
    /// offline, against --trusted-root (the Sigstore public-good root by default).
    #[command(
        visible_alias = "verify-bundle",
        group(clap::ArgGroup::new("signer").required(true).args(["certificate_identity", "key"]))
    )]
    VerifyBlob {
        /// The bundle (`.sigstore.json`).
        #[arg(long)]
        bundle: PathBuf,
        /// The certificate's subject (SAN) exactly: a workflow URI or an e-mail address.
        #[arg(long, requires = "certificate_oidc_issuer")]
        certificate_identity: Option<String>,
        /// The certificate's OIDC issuer exactly.
        #[arg(long, requires = "certificate_identity")]
        certificate_oidc_issuer: Option<String>,
        /// A PEM public key that signed instead of a certificate.
        #[arg(long)]
        key: Option<PathBuf>,
        /// A Sigstore trusted_root.json.
        #[arg(long)]
        trusted_root: Option<PathBuf>,
        #[arg(value_name = "FILE_OR_DIGEST")]
        artifact: String,
    },
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Load and compile every policy file in DIR as `notarium serve` would; exit 1 naming the first fault.
    Check {
        dir: PathBuf,
        /// notarium.toml whose `[sigstore] trusted_roots` keyless authorities may name (without it: the
        /// shipped `public-good` root only).
        #[arg(long, env = "NOTARIUM_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Decide every image pulled or admitted in a period (from the register) under the candidate policies in
    /// DIR, through a running server, writing nothing; print by repository the images whose decision would
    /// change; exit 1 when any image allowed now would be denied.
    #[command(name = "dry-run", after_help = CLIENT_HELP)]
    DryRun {
        dir: PathBuf,
        /// The period's start: RFC 3339, or a span back from now (90m, 24h, 7d).
        #[arg(long, default_value = "7d")]
        since: String,
        /// The most distinct images to decide (pulled, then decided, newest first), 1 to 2000; default 200.
        #[arg(long)]
        max_images: Option<usize>,
        /// The notarium server's URL.
        #[arg(long, env = "NOTARIUM_SERVER", default_value = "http://127.0.0.1:8080")]
        server: String,
    },
}

#[derive(Subcommand)]
enum LogCommand {
    /// Write the entries of a period, with a signed checkpoint and proofs, as JSON Lines (or a CSV view).
    #[command(after_help = CLIENT_HELP)]
    Export {
        #[command(flatten)]
        period: log::Period,
        /// The file to write (`-o FILE` still works for one release, with a deprecation line).
        #[arg(long, short = 'f')]
        file: PathBuf,
        #[arg(long, value_enum, default_value_t)]
        format: ExportFormat,
        /// A checkpoint saved earlier (GET /v1/log/checkpoint): the export then proves it extends that tree.
        #[arg(long)]
        since: Option<PathBuf>,
        /// The notarium server's URL.
        #[arg(long, env = "NOTARIUM_SERVER", default_value = "http://127.0.0.1:8080")]
        server: String,
    },
    /// Find entries by digest, repository, key, kind, actor and time, newest first (GET /v1/log/search);
    /// every filter is optional and they combine with AND.
    #[command(after_help = CLIENT_HELP)]
    Search {
        /// An image digest (sha256:…).
        #[arg(long)]
        digest: Option<String>,
        /// host/path (that registry's repository) or a path alone (at any registry).
        #[arg(long)]
        repository: Option<String>,
        /// A key id: what signs and attests used, or what key-added/key-rotated entries are about.
        #[arg(long)]
        key: Option<String>,
        #[arg(long)]
        key_version: Option<u32>,
        /// An entry kind: sign, attest, verify, key-added, key-rotated, policy-loaded, registry-push, …
        #[arg(long)]
        kind: Option<String>,
        /// The actor's name as entries record it (token:<id>, oidc:<issuer> sub=…, notarium).
        #[arg(long)]
        actor: Option<String>,
        /// Entries at or after this time: RFC 3339 or YYYY-MM-DD (midnight UTC).
        #[arg(long, value_parser = log::parse_instant)]
        from: Option<String>,
        /// Entries before this time (exclusive): RFC 3339 or YYYY-MM-DD (midnight UTC).
        #[arg(long, value_parser = log::parse_instant)]
        to: Option<String>,
        /// Entries per page, 1 to 1000 (the server's default: 100).
        #[arg(long)]
        limit: Option<u32>,
        /// Start after this page (the `next_cursor` of an earlier search with the same filters).
        #[arg(long)]
        cursor: Option<String>,
        /// Follow the cursor to the last page.
        #[arg(long)]
        all: bool,
        /// The notarium server's URL.
        #[arg(long, env = "NOTARIUM_SERVER", default_value = "http://127.0.0.1:8080")]
        server: String,
    },
    /// Check an export offline against the log's Ed25519 public key; names the first bad line, or says what
    /// it proved: the entries, the checkpoint's signature, and consistency with --since (or that it was not checked).
    Verify {
        file: PathBuf,
        /// The log key's public PEM (GET /v1/keys/<log key>/public.pem; `dev-log` by default), pinned out of band.
        #[arg(long)]
        log_key: PathBuf,
        /// A checkpoint saved earlier: the export must prove the log still extends it (no history rewritten).
        #[arg(long)]
        since: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum EvidenceCommand {
    /// Write the evidence pack of a period (docs/FORMATS.md §23): a zip archive, or a directory.
    #[command(after_help = CLIENT_HELP)]
    Export {
        #[command(flatten)]
        period: log::Period,
        /// Where to write: FILE.zip, or a directory the pack is unpacked into (-o is the output format).
        #[arg(long, short = 'f')]
        file: PathBuf,
        /// A checkpoint saved earlier (GET /v1/log/checkpoint): the pack then proves it extends that tree.
        #[arg(long)]
        since: Option<PathBuf>,
        /// Also print the report to report.pdf in the pack, with this chromium binary (Debian's `chromium`).
        #[arg(long, value_name = "CHROMIUM")]
        pdf: Option<PathBuf>,
        /// The notarium server's URL.
        #[arg(long, env = "NOTARIUM_SERVER", default_value = "http://127.0.0.1:8080")]
        server: String,
    },
    /// Check a pack (directory or zip) offline against the log's public key: checkpoints, proofs,
    /// consistency, key and policy versions, and every recorded signature; names the first bad file and line.
    Verify {
        pack: PathBuf,
        /// The log key's public PEM, pinned out of band.
        #[arg(long)]
        log_key: PathBuf,
        /// A checkpoint saved earlier: the pack must prove the log still extends it (no history rewritten).
        #[arg(long)]
        since: Option<PathBuf>,
        /// A witness's verifier key (C2SP vkey); repeat for each witness.
        #[arg(long = "witness")]
        witnesses: Vec<String>,
        /// How many of the --witness keys must have cosigned the pack's checkpoint.
        #[arg(long, default_value_t = 0)]
        witnesses_required: usize,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Every key and version.
    #[command(after_help = CLIENT_HELP)]
    List {
        /// The notarium server's URL.
        #[arg(long, env = "NOTARIUM_SERVER", default_value = "http://127.0.0.1:8080")]
        server: String,
    },
    /// The PEM public key of ID or ID@VERSION.
    #[command(after_help = CLIENT_HELP)]
    Public {
        id: String,
        /// The notarium server's URL.
        #[arg(long, env = "NOTARIUM_SERVER", default_value = "http://127.0.0.1:8080")]
        server: String,
    },
    /// Every image signature and attestation key version ID@N made, from the register (auditor or admin).
    #[command(after_help = CLIENT_HELP)]
    Inventory {
        /// ID@N.
        key: String,
        /// Only what was signed since: RFC 3339, or a duration back from now (7d, 12h).
        #[arg(long)]
        since: Option<String>,
        /// The notarium server's URL.
        #[arg(long, env = "NOTARIUM_SERVER", default_value = "http://127.0.0.1:8080")]
        server: String,
    },
}

/// Why a command failed, and its exit code.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Unavailable(String),
}

impl CliError {
    /// An error answer of the server: a 5xx is trouble on its side or behind it, a 4xx a refusal.
    pub(crate) fn from_problem(status: u16, body: &str) -> Self {
        let problem: Option<serde_json::Value> = serde_json::from_str(body).ok();
        let mut detail =
            problem.as_ref().and_then(|p| p["detail"].as_str()).map_or_else(|| body.to_owned(), str::to_owned);
        if problem.as_ref().and_then(|p| p["type"].as_str()).is_some_and(|t| t.ends_with("/index-needs-recursive")) {
            detail.push_str(" (on the command line: --recursive)");
        }
        match status {
            500.. => Self::Unavailable(detail),
            401 => Self::Refused(format!("{detail} ({})", token_hint())),
            _ => Self::Refused(detail),
        }
    }

    fn exit_code(&self) -> ExitCode {
        match self {
            Self::Refused(_) => ExitCode::from(1),
            Self::Usage(_) => ExitCode::from(2),
            Self::Unavailable(_) => ExitCode::from(3),
        }
    }
}

/// What to do about a 401: send a token, or a valid one.
fn token_hint() -> String {
    if let Some(source) = id_token::source() {
        return format!(
            "the ID token from --id-token {source} was refused: check that the server's [[auth.oidc]] issuer \
             and audience (--audience, default {}) match it and that it has not expired",
            id_token::DEFAULT_AUDIENCE
        );
    }
    let hint = match std::env::var("NOTARIUM_TOKEN") {
        Ok(token) if !token.trim().is_empty() => {
            "the token in NOTARIUM_TOKEN was refused: check it is current and not revoked (`notarium token list`)"
        }
        _ => "the server requires a token: pass an API token or CI ID token in NOTARIUM_TOKEN, or --id-token",
    };
    hint.to_owned()
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse_from(log::legacy_export_file_flag(std::env::args_os().collect()));
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime starts");
    let result = runtime.block_on(run(cli.command, cli.output));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("notarium: {e}");
            e.exit_code()
        }
    }
}

async fn run(command: Command, output: Output) -> Result<(), CliError> {
    match command {
        Command::Serve { config, insecure } => serve::serve(config, insecure).await,
        Command::Token { command, config } => token::run(command, config, output).await,
        Command::Sign { images, key, annotations, recursive, server, id_token } => {
            id_token.install().await?;
            let request = client::SignArgs { key: &key, annotations: &annotations, recursive };
            match images.as_slice() {
                [image] => client::sign(&server, image, &request, output).await,
                _ => client::sign_batch(&server, &images, &request, output).await,
            }
        }
        Command::Attest { image, key, predicate_type, predicate, recursive, server, id_token } => {
            id_token.install().await?;
            let predicate = client::Predicate { predicate_type: &predicate_type, file: &predicate };
            client::attest(&server, &image, &key, &predicate, recursive, output).await
        }
        Command::Keys { command: KeysCommand::List { server } } => client::list_keys(&server, output).await,
        Command::Keys { command: KeysCommand::Public { id, server } } => client::public_key(&server, &id, output).await,
        Command::Resign { from, to, repository, batch, server } => {
            let repository = repository.as_deref();
            let args = key_compromise::ResignArgs { from: &from, to: &to, repository, batch, server: &server };
            key_compromise::resign(&args, output).await
        }
        Command::Keys { command: KeysCommand::Inventory { key, since, server } } => {
            key_compromise::inventory(&server, &key, since.as_deref(), output).await
        }
        Command::Log { command: LogCommand::Export { period, file, format, since, server } } => {
            let period = log::PeriodArgs { period, format, since };
            log::export(&server, &period, &file, output).await
        }
        Command::Log {
            command:
                LogCommand::Search {
                    digest,
                    repository,
                    key,
                    key_version,
                    kind,
                    actor,
                    from,
                    to,
                    limit,
                    cursor,
                    all,
                    server,
                },
        } => {
            let named = [
                ("digest", digest),
                ("repository", repository),
                ("key", key),
                ("key_version", key_version.map(|v| v.to_string())),
                ("kind", kind),
                ("actor", actor),
                ("from", from),
                ("to", to),
            ];
            let filters = named.into_iter().filter_map(|(name, value)| Some((name, value?))).collect();
            log::search(&server, &log::SearchArgs { filters, cursor, limit, all }, output).await
        }
        Command::Log { command: LogCommand::Verify { file, log_key, since } } => {
            log::verify(&file, &log_key, since.as_deref(), output)
        }
        Command::Evidence { command: EvidenceCommand::Export { period, file, since, pdf, server } } => {
            let (since, pdf_with) = (since.as_deref(), pdf.as_deref());
            let args = evidence::ExportArgs { server: &server, period, since, target: &file, pdf_with };
            evidence::export(&args, output).await
        }
        Command::Evidence {
            command: EvidenceCommand::Verify { pack, log_key, since, witnesses, witnesses_required },
        } => {
            let witnesses = crate::register::evidence::WitnessPolicy { keys: witnesses, required: witnesses_required };
            let args = evidence::VerifyArgs { pack: &pack, log_key: &log_key, since: since.as_deref(), witnesses };
            evidence::verify(&args, output)
        }
        Command::Witness { command } => witness::run(command, output).await,
        Command::Policy { command: PolicyCommand::Check { dir, config } } => {
            verify::check_policies(&dir, config.as_deref(), output)
        }
        Command::Policy { command: PolicyCommand::DryRun { dir, since, max_images, server } } => {
            let args = dry_run::DryRunArgs { server: &server, dir: &dir, since: &since, max_images };
            dry_run::dry_run(&args, output).await
        }
        Command::VerifyBlob { bundle, certificate_identity, certificate_oidc_issuer, key, trusted_root, artifact } => {
            let signer = match (key, certificate_identity, certificate_oidc_issuer) {
                (Some(key), _, _) => verify_blob::Signer::Key(key),
                (None, Some(subject), Some(issuer)) => verify_blob::Signer::Identity { subject, issuer },
                _ => unreachable!("clap requires --key or --certificate-identity with --certificate-oidc-issuer"),
            };
            verify_blob::verify_blob(&verify_blob::Request { bundle, signer, trusted_root, artifact }, output)
        }
        Command::Verify { image, key, policy, config, insecure_registries, registry_username, .. } => {
            let access = verify::RegistryAccess {
                insecure: verify::insecure_registries(&insecure_registries)?,
                config,
                username: registry_username,
            };
            match (key, policy) {
                (Some(key), _) => verify::verify(&image, &key, &access, output).await,
                (None, Some(policy)) => verify::verify_policy(&image, &policy, &access, output).await,
                (None, None) => unreachable!("clap requires --key or --policy"),
            }
        }
    }
}
