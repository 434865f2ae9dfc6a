//! The `notarium` command: `serve` runs the service; `sign` and `keys` are thin clients of its HTTP API
//! (the CI step is one command); `verify` reads a registry directly and needs no server; `policy check` lints.
//!
//! Owns: arguments, exit codes and what gets printed. Must not touch: signing or registry logic beyond
//! calling `service` or the HTTP API.

mod client;
mod keyring;
mod log;
mod serve;
mod tls;
mod token;
mod verify;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::register::export::ExportFormat;

const EXIT_CODES: &str = "Exit codes: 0 success; 1 refused (the server answered with a problem, no valid \
signature was found, the policy denied the image, or a policy file is invalid); 2 usage error; 3 the server or registry could not be reached or the service could not start.";

#[derive(Parser)]
#[command(name = "notarium", version, about = "Container-image signing whose keys never leave their backend", after_help = EXIT_CODES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum, Default, PartialEq, Eq)]
pub enum Output {
    #[default]
    Text,
    Json,
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
        #[arg(long, value_enum, default_value_t, global = true)]
        output: Output,
    },
    /// Sign IMAGE (host/repo:tag or host/repo@sha256:…) through a running server.
    Sign {
        image: String,
        /// Key id, or id@version.
        #[arg(long)]
        key: String,
        /// Annotation KEY=VALUE for the payload's optional section (repeatable).
        #[arg(long = "annotation", short = 'a')]
        annotations: Vec<String>,
        #[arg(long, env = "NOTARIUM_SERVER", default_value = "http://127.0.0.1:8080")]
        server: String,
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// List keys or print a public key, from a running server.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Export the register or verify an export offline.
    Log {
        #[command(subcommand)]
        command: LogCommand,
    },
    /// Lint trust policy files.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Check IMAGE against a policy file, or its cosign tag-scheme signatures against a public key, reading
    /// the registry directly.
    #[command(group(clap::ArgGroup::new("trust").required(true).args(["public_key", "policy"])))]
    Verify {
        image: String,
        /// PEM public key (SubjectPublicKeyInfo) the signature must verify with.
        #[arg(long)]
        public_key: Option<PathBuf>,
        /// A policy file (policies/*.yaml format): the same engine as POST /v1/verify.
        #[arg(long)]
        policy: Option<PathBuf>,
        /// notarium.toml whose [[keys]] the policy's `key:` authorities name (only `public_key:` without it).
        #[arg(long, env = "NOTARIUM_CONFIG")]
        config: Option<PathBuf>,
        /// host:port registries to reach over plain HTTP (repeatable).
        #[arg(long = "insecure-registry")]
        insecure_registries: Vec<String>,
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Load and compile every policy file in DIR as `notarium serve` would; exit 1 naming the first fault.
    Check { dir: PathBuf },
}

#[derive(Subcommand)]
enum LogCommand {
    /// Write the entries of a period, with a signed checkpoint and proofs, as JSON Lines (or a CSV view).
    Export {
        /// RFC 3339 start of the period (inclusive); the log's beginning when omitted.
        #[arg(long)]
        from: Option<String>,
        /// RFC 3339 end of the period (exclusive); now when omitted.
        #[arg(long)]
        to: Option<String>,
        #[arg(long, short = 'o')]
        output: PathBuf,
        #[arg(long, value_enum, default_value_t)]
        format: ExportFormat,
        /// A checkpoint saved earlier (GET /v1/log/checkpoint): the export then proves it extends that tree.
        #[arg(long)]
        since: Option<PathBuf>,
        #[arg(long, env = "NOTARIUM_SERVER", default_value = "http://127.0.0.1:8080")]
        server: String,
    },
    /// Check an export offline against the log's Ed25519 public key; names the first bad line.
    Verify {
        file: PathBuf,
        #[arg(long)]
        log_key: PathBuf,
        /// A checkpoint saved earlier: the export must prove the log still extends it (no history rewritten).
        #[arg(long)]
        since: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Every key and version.
    List {
        #[arg(long, env = "NOTARIUM_SERVER", default_value = "http://127.0.0.1:8080")]
        server: String,
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// The PEM public key of ID or ID@VERSION.
    Public {
        id: String,
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
    fn exit_code(&self) -> ExitCode {
        match self {
            Self::Refused(_) => ExitCode::from(1),
            Self::Usage(_) => ExitCode::from(2),
            Self::Unavailable(_) => ExitCode::from(3),
        }
    }
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime starts");
    let result = runtime.block_on(run(cli.command));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("notarium: {e}");
            e.exit_code()
        }
    }
}

async fn run(command: Command) -> Result<(), CliError> {
    match command {
        Command::Serve { config, insecure } => serve::serve(config, insecure).await,
        Command::Token { command, config, output } => token::run(command, config, output).await,
        Command::Sign { image, key, annotations, server, output } => {
            client::sign(&server, &image, &key, &annotations, output).await
        }
        Command::Keys { command: KeysCommand::List { server, output } } => client::list_keys(&server, output).await,
        Command::Keys { command: KeysCommand::Public { id, server } } => client::public_key(&server, &id).await,
        Command::Log { command: LogCommand::Export { from, to, output, format, since, server } } => {
            let period = log::PeriodArgs { from, to, format, since };
            log::export(&server, &period, &output).await
        }
        Command::Log { command: LogCommand::Verify { file, log_key, since, output } } => {
            log::verify(&file, &log_key, since.as_deref(), output)
        }
        Command::Policy { command: PolicyCommand::Check { dir } } => verify::check_policies(&dir),
        Command::Verify { image, public_key: Some(key), insecure_registries, output, .. } => {
            verify::verify(&image, &key, insecure_registries, output).await
        }
        Command::Verify { image, policy, config, insecure_registries, output, .. } => {
            let policy = policy.expect("clap requires --public-key or --policy");
            verify::verify_policy(&image, &policy, config.as_deref(), insecure_registries, output).await
        }
    }
}
