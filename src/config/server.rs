//! `[server]`: the listener (address, TLS files), request and connection limits, and shutdown.

use std::path::PathBuf;

use serde::Deserialize;

use super::ConfigError;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Where the default SQLite database lives.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// Largest request body accepted, in bytes.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// On SIGTERM/SIGINT: seconds `/readyz` answers 503 while requests are still served, so load balancers
    /// stop sending new ones first.
    #[serde(default = "default_drain")]
    pub shutdown_drain_secs: u64,
    /// Then: seconds in-flight requests get to finish before the process exits anyway.
    #[serde(default = "default_shutdown_timeout")]
    pub shutdown_timeout_secs: u64,
    /// PEM certificate chain and private key: with both, the listener speaks TLS only. Both files are
    /// re-read when they change (certificate rotation without a restart).
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// A request that has not produced its response after this long is answered 408.
    #[serde(default = "default_request_timeout")]
    pub request_timeout_secs: u64,
    /// A request's head (request line and headers) must arrive complete within this long of the server
    /// waiting for it; this also bounds how long a kept-alive connection waits for its next request.
    #[serde(default = "default_header_timeout")]
    pub header_timeout_secs: u64,
    /// A connection on which no byte moves either way for this long is closed (a stalled body, an answer
    /// the client does not read). Must exceed `request_timeout_secs`: a request being handled moves no bytes.
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout_secs: u64,
    /// Connections served at once; more wait in the listen backlog until one closes.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
}

impl ServerConfig {
    pub(super) fn check_connection_limits(&self) -> Result<(), ConfigError> {
        for (name, value) in
            [("header_timeout_secs", self.header_timeout_secs), ("idle_timeout_secs", self.idle_timeout_secs)]
        {
            if value == 0 {
                return Err(ConfigError::Invalid(format!("[server] {name} must be at least 1")));
            }
        }
        if self.max_connections == 0 {
            return Err(ConfigError::Invalid("[server] max_connections must be at least 1".into()));
        }
        if self.idle_timeout_secs <= self.request_timeout_secs {
            return Err(ConfigError::Invalid(format!(
                "[server] idle_timeout_secs ({}) must exceed request_timeout_secs ({}): a request being handled moves \
                 no bytes, and would be cut",
                self.idle_timeout_secs, self.request_timeout_secs
            )));
        }
        Ok(())
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        toml::from_str("").expect("empty server section uses defaults")
    }
}

fn default_header_timeout() -> u64 {
    10
}

fn default_idle_timeout() -> u64 {
    120
}

fn default_max_connections() -> usize {
    1024
}

fn default_request_timeout() -> u64 {
    60
}

fn default_drain() -> u64 {
    2
}

fn default_shutdown_timeout() -> u64 {
    30
}

fn default_listen() -> String {
    "127.0.0.1:8080".into()
}
fn default_data_dir() -> PathBuf {
    "data".into()
}
fn default_max_body() -> usize {
    1024 * 1024
}
