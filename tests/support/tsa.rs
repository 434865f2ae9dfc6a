//! A real RFC 3161 timestamp authority for the tests: Debian's `openssl ts -reply`, run once per request
//! behind a small HTTP server (axum on a tokio runtime of its own, on a free loopback port), with a test TSA
//! CA made by openssl at start (P-256 root, P-256 signer with `keyUsage` digitalSignature and the critical
//! `timeStamping` EKU, as RFC 3161 §2.3 and the Notary Project require). A [`TsaMode`] makes it misbehave
//! the ways the exploit tests need. Owns: its temp directory and port; must not touch anything else.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use axum::body::Bytes;
use axum::http::header;
use axum::response::IntoResponse;
use tempfile::TempDir;

use super::run;

/// How the TSA answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TsaMode {
    /// A granted response to the query, signed by the TSA certificate under [`TestTsa::root`].
    Honest,
    /// A token over another message imprint.
    OtherImprint,
    /// A token for the query with its nonce changed.
    OtherNonce,
    /// A token from another TSA, whose root is not [`TestTsa::root`].
    Untrusted,
    /// 100 KiB of bytes.
    Oversized,
}

/// A running test TSA.
pub(crate) struct TestTsa {
    pub(crate) url: String,
    /// `127.0.0.1:PORT`, as `[registries] allow` lists it.
    pub(crate) host: String,
    dir: Arc<TempDir>,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

impl TestTsa {
    pub(crate) fn start(mode: TsaMode) -> Self {
        let dir = Arc::new(tempfile::tempdir().unwrap());
        make_authority(dir.path(), "tsa", "Test TSA");
        make_authority(dir.path(), "other", "Other TSA");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
        let work = dir.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let app = axum::Router::new().route(
                    "/tsa",
                    axum::routing::post(move |query: Bytes| {
                        let work = work.clone();
                        async move { answer(&work, mode, &query).await }
                    }),
                );
                let serve = axum::serve(listener, app).with_graceful_shutdown(async {
                    let _ = stopped.await;
                });
                let _ = serve.await;
            });
        });
        Self { url: format!("http://{host}/tsa"), host, dir, _shutdown: shutdown }
    }

    /// The PEM root certificate the honest answers chain to.
    pub(crate) fn root(&self) -> PathBuf {
        self.dir.path().join("tsa-root.pem")
    }

    /// The root of the other TSA (what [`TsaMode::Untrusted`] signs under).
    pub(crate) fn other_root(&self) -> PathBuf {
        self.dir.path().join("other-root.pem")
    }
}

/// One answer: `openssl ts -reply` in a directory of its own (the serial file is shared, and openssl
/// updates it; a lock keeps one reply at a time).
async fn answer(dir: &TempDir, mode: TsaMode, query: &[u8]) -> impl IntoResponse + use<> {
    static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let reply = if mode == TsaMode::Oversized {
        vec![0x30; 100 * 1024]
    } else {
        let _turn = ONE_AT_A_TIME.lock().await;
        let (dir, query) = (dir.path().to_owned(), query.to_vec());
        tokio::task::spawn_blocking(move || reply(&dir, mode, &query)).await.unwrap()
    };
    ([(header::CONTENT_TYPE, "application/timestamp-reply")], reply)
}

fn reply(dir: &Path, mode: TsaMode, query: &[u8]) -> Vec<u8> {
    let query_file = dir.join("query.tsq");
    match mode {
        TsaMode::OtherImprint => {
            std::fs::write(dir.join("other.bin"), b"another signature").unwrap();
            openssl(dir, &["ts", "-query", "-data", "other.bin", "-sha256", "-cert", "-out", "query.tsq"]);
        }
        TsaMode::OtherNonce => {
            // notarium's request ends with the nonce INTEGER, then certReq (01 01 FF): change the nonce's
            // last byte.
            let mut changed = query.to_vec();
            let last_nonce_byte = changed.len() - 4;
            changed[last_nonce_byte] ^= 1;
            std::fs::write(&query_file, changed).unwrap();
        }
        _ => std::fs::write(&query_file, query).unwrap(),
    }
    let signer = if mode == TsaMode::Untrusted { "other" } else { "tsa" };
    let (cert, key) = (format!("{signer}.pem"), format!("{signer}.key"));
    let args = ["ts", "-reply", "-config", "ts.cnf", "-queryfile", "query.tsq", "-signer", &cert, "-inkey", &key];
    openssl(dir, &[&args[..], &["-out", "reply.tsr"]].concat());
    std::fs::read(dir.join("reply.tsr")).unwrap()
}

/// A root `NAME-root.pem` and a timestamping certificate `NAME.pem` (key `NAME.key`) under it, and the
/// `ts.cnf` the replies use.
fn make_authority(dir: &Path, name: &str, cn: &str) {
    let leaf_ext = "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n\
                    extendedKeyUsage=critical,timeStamping\nsubjectKeyIdentifier=hash\n\
                    authorityKeyIdentifier=keyid\n";
    std::fs::write(dir.join(format!("{name}.ext")), leaf_ext).unwrap();
    let (root_key, root_pem) = (format!("{name}-root.key"), format!("{name}-root.pem"));
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
    let root_subject = format!("/O=Notarium Tests/CN={cn} Root");
    openssl(
        dir,
        &[
            &["req", "-x509", "-new"][..],
            &ec,
            &["-keyout", &root_key, "-out", &root_pem, "-days", "3650", "-subj", &root_subject],
            &["-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
        ]
        .concat(),
    );
    let (key, csr, pem, ext) =
        (format!("{name}.key"), format!("{name}.csr"), format!("{name}.pem"), format!("{name}.ext"));
    let subject = format!("/O=Notarium Tests/CN={cn}");
    openssl(dir, &[&["req", "-new"][..], &ec, &["-keyout", &key, "-out", &csr, "-subj", &subject]].concat());
    openssl(
        dir,
        &["x509", "-req", "-in", &csr, "-CA", &root_pem, "-CAkey", &root_key, "-set_serial", "7", "-days", "3650"]
            .iter()
            .copied()
            .chain(["-extfile", &ext, "-out", &pem])
            .collect::<Vec<_>>(),
    );
    let ts_cnf = format!(
        "[tsa]\ndefault_tsa=test\n[test]\nserial={}\nsigner_digest=sha256\ndefault_policy=1.2.3.4.1\n\
         digests=sha256\ness_cert_id_alg=sha256\n",
        dir.join("serial").display()
    );
    std::fs::write(dir.join("ts.cnf"), ts_cnf).unwrap();
    std::fs::write(dir.join("serial"), "01\n").unwrap();
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = run(Command::new("openssl").args(args).current_dir(dir));
    assert!(out.status.success(), "openssl {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
}
