//! The TLS listener of `notarium serve`: handshakes run beside the accept loop (a slow client never
//! holds up others), and the certificate and key are re-read when either file changes.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use super::CliError;

/// A client gets this long to finish its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the certificate files are checked for changes.
const RELOAD_CHECK: Duration = Duration::from_secs(5);

/// Accepted, handshaken connections, for the listener (`listener.rs`).
pub(super) struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

/// The PEM certificate chain and private key files.
#[derive(Clone)]
pub(super) struct CertificateFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TlsListener {
    pub(super) fn start(tcp: TcpListener, files: CertificateFiles) -> Result<Self, CliError> {
        let local = tcp.local_addr().map_err(|e| CliError::Unavailable(e.to_string()))?;
        let config = Arc::new(RwLock::new(load(&files).map_err(CliError::Usage)?));
        let (sender, ready) = mpsc::channel(64);
        tokio::spawn(accept_loop(tcp, config.clone(), sender));
        tokio::spawn(reload_on_change(files, config));
        Ok(Self { ready, local })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(connection) => connection,
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

async fn accept_loop(
    tcp: TcpListener,
    config: Arc<RwLock<Arc<ServerConfig>>>,
    ready: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    loop {
        let (stream, peer) = match tcp.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let acceptor = TlsAcceptor::from(config.read().expect("not poisoned").clone());
        let ready = ready.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => {
                    let _ = ready.send((tls, peer)).await;
                }
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        });
    }
}

/// Swaps in the new certificate when a file changes; a broken pair keeps the one in force.
async fn reload_on_change(files: CertificateFiles, config: Arc<RwLock<Arc<ServerConfig>>>) {
    let mut seen = modified(&files);
    loop {
        tokio::time::sleep(RELOAD_CHECK).await;
        let now = modified(&files);
        if now == seen {
            continue;
        }
        seen = now;
        match load(&files) {
            Ok(new) => {
                *config.write().expect("not poisoned") = new;
                tracing::info!(cert = %files.cert.display(), "TLS certificate reloaded");
            }
            Err(e) => tracing::warn!(error = %e, "TLS certificate change rejected; the one in force stays"),
        }
    }
}

fn modified(files: &CertificateFiles) -> [Option<SystemTime>; 2] {
    let at = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    [at(&files.cert), at(&files.key)]
}

/// A larger TLS certificate or key file is refused unread (a chain is a few PEM certificates).
const MAX_TLS_FILE_BYTES: u64 = crate::local_file::MIB;

fn load(files: &CertificateFiles) -> Result<Arc<ServerConfig>, String> {
    let cert_error = |reason: String| format!("[server] tls_cert {}: {reason}", files.cert.display());
    let pem = crate::local_file::read_capped(&files.cert, MAX_TLS_FILE_BYTES).map_err(|e| cert_error(e.reason()))?;
    let chain =
        CertificateDer::pem_slice_iter(&pem).collect::<Result<Vec<_>, _>>().map_err(|e| cert_error(e.to_string()))?;
    if chain.is_empty() {
        return Err(cert_error("no certificate in the file".into()));
    }
    // The key file's contents never reach an error message, only its path; its buffer is zeroed on drop.
    let key_error = |reason: String| format!("[server] tls_key {}: {reason}", files.key.display());
    let mut key_pem = zeroize::Zeroizing::new(Vec::new());
    crate::local_file::read_capped_into(&files.key, MAX_TLS_FILE_BYTES, &mut key_pem)
        .map_err(|e| key_error(e.reason()))?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| key_error("no readable PEM private key".into()))?;
    let mut config = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| format!("[server] tls_cert/tls_key do not form a usable pair: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_oversized_certificate_or_key_file_is_refused_unread_naming_it() {
        let (_dir, big) = crate::local_file::sparse_file("big.pem", MAX_TLS_FILE_BYTES + 1);
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/certificates");
        let small = fixtures.join("root.pem");
        for (cert, key, named) in [(&big, &small, "tls_cert"), (&small, &big, "tls_key")] {
            let Err(message) = load(&CertificateFiles { cert: cert.clone(), key: key.clone() }) else {
                panic!("an oversized {named} was read")
            };
            assert!(message.contains(named) && message.contains(&big.display().to_string()), "{message}");
            assert!(message.contains("larger than the limit"), "{message}");
        }
    }
}
