//! Real components for the integration tests: a CNCF distribution registry, skopeo 1.18, cosign 2.5 and 3.1,
//! notation 1.3.2 and oras 1.3.3 (installed under `.tools/` by `scripts/install-test-deps.sh`), SoftHSM2, OpenBao,
//! PostgreSQL, an `openssl ts` timestamp authority (`tsa`) and the `notarium` binary itself, one module each. Every process is started on a free loopback port in a
//! temporary directory and killed on drop. The areas import from here, not from the modules.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};

mod cosign;
mod image;
mod notarium;
mod notation;
mod oidc;
mod openbao;
mod oras;
mod postgres;
mod registry;
pub(crate) mod sigstore;
mod skopeo;
mod softhsm;
mod tsa;
mod verdict;

pub(crate) use cosign::{Cosign, CosignVersion};
pub(crate) use image::{push_image, push_index, push_many};
pub(crate) use notarium::{
    EXAMPLE_KEYS, Notarium, OPEN_WITH_BACKEND_KEYS, call, listening_url, registry_notarium_and_image, signature_rows,
    token_command,
};
pub(crate) use notation::{Notation, der_certificates};
pub(crate) use oidc::{ActionsTokenEndpoint, CI_ISSUER, TestIssuer};
pub(crate) use openbao::OpenBao;
pub(crate) use oras::oras_discover;
pub(crate) use postgres::{Postgres, TestDatabase, test_database_url, testing_postgres};
pub(crate) use registry::{Registry, RegistryKind};
pub(crate) use skopeo::{skopeo_accepts, skopeo_pull, skopeo_sign};
pub(crate) use softhsm::{SOFTHSM_MODULE, SoftHsm};
pub(crate) use tsa::{TestTsa, TsaMode};
pub(crate) use verdict::{reasons, slsa_predicate, tag_of};

pub(crate) const ROOT: &str = env!("CARGO_MANIFEST_DIR");

pub(crate) fn tool(name: &str) -> PathBuf {
    let path = Path::new(ROOT).join(".tools/bin").join(name);
    assert!(path.exists(), "{} is missing: run scripts/install-test-deps.sh", path.display());
    path
}

/// A blocking HTTP client (installs the TLS crypto provider the crate is built with).
pub(crate) fn client() -> reqwest::blocking::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::blocking::Client::new()
}

pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn wait_until(what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(start.elapsed() < timeout, "{what} did not come up within {timeout:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn run(command: &mut Command) -> Output {
    command.stdin(Stdio::null()).output().unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"))
}

pub(crate) fn sha256_digest(bytes: &[u8]) -> String {
    let hex: String = Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// An ES256 signing key from a fixed seed (for ID tokens of a test issuer), and its public JWK under `kid`.
pub(crate) fn ec_key(seed: u8, kid: &str) -> (jsonwebtoken::EncodingKey, serde_json::Value) {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use p256::elliptic_curve::sec1::ToSec1Point;
    use p256::pkcs8::EncodePrivateKey;
    let secret = p256::SecretKey::from_slice(&[seed; 32]).unwrap();
    let pem = secret.to_pkcs8_pem(Default::default()).unwrap();
    let key = jsonwebtoken::EncodingKey::from_ec_pem(pem.as_bytes()).unwrap();
    let point = secret.public_key().to_sec1_point(false);
    let jwk = serde_json::json!({"kty": "EC", "crv": "P-256", "kid": kid, "use": "sig", "alg": "ES256",
        "x": URL_SAFE_NO_PAD.encode(point.x().unwrap()), "y": URL_SAFE_NO_PAD.encode(point.y().unwrap())});
    (key, jwk)
}

/// Seconds since the Unix epoch.
/// A fresh P-256 PKCS#8 key file `dir/name.pem`, made by openssl (what the file backend reads).
pub(crate) fn p256_key_file(dir: &std::path::Path, name: &str) -> PathBuf {
    let path = dir.join(format!("{name}.pem"));
    let out = std::process::Command::new("openssl")
        .args(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    path
}

pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}
