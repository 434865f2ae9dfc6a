//! What authentication costs a request: an API token (one indexed SQLite read and a SHA-256) and a CI ID
//! token (ES256 and RS256 signature checks against a cached JWKS). `cargo bench --bench auth`.
// A measuring harness, not the service: any failure should stop the run at once.
#![allow(clippy::unwrap_used)]

use std::hint::black_box;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::{Criterion, criterion_group, criterion_main};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use notarium::auth::token::TokenSpec;
use notarium::auth::{Authenticator, Role};
use notarium::config::AuthConfig;
use p256::elliptic_curve::sec1::ToSec1Point;
use p256::pkcs8::EncodePrivateKey;
use serde_json::json;

const ISSUER: &str = "https://ci.example.test";

/// An issuer with one ES256 key in a JWKS file, and an ID token from it that the rule makes a signer.
fn issuer(dir: &std::path::Path) -> (AuthConfig, String) {
    let secret = p256::SecretKey::from_slice(&[7u8; 32]).unwrap();
    let point = secret.public_key().to_sec1_point(false);
    let jwks = json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": "ec-1", "alg": "ES256",
        "x": URL_SAFE_NO_PAD.encode(point.x().unwrap()), "y": URL_SAFE_NO_PAD.encode(point.y().unwrap())}]});
    let jwks_file = dir.join("jwks.json");
    std::fs::write(&jwks_file, jwks.to_string()).unwrap();
    let config: AuthConfig = toml::from_str(&format!(
        "[[oidc]]\nissuer = \"{ISSUER}\"\naudience = \"notarium\"\njwks_file = \"{}\"\n\
         [[oidc.rules]]\nrole = \"signer\"\nrepos = [\"**\"]\nkeys = [\"*\"]\nclaims = {{ repository = \"acme/*\" }}\n",
        jwks_file.display()
    ))
    .unwrap();
    let key = EncodingKey::from_ec_pem(secret.to_pkcs8_pem(Default::default()).unwrap().as_bytes()).unwrap();
    let exp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 3600;
    let claims =
        json!({"iss": ISSUER, "aud": "notarium", "sub": "repo:acme/app", "repository": "acme/app", "exp": exp});
    let header = Header { kid: Some("ec-1".into()), ..Header::new(Algorithm::ES256) };
    (config, jsonwebtoken::encode(&header, &claims, &key).unwrap())
}

fn bench(c: &mut Criterion) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let store = runtime.block_on(notarium::store::open(&url)).unwrap();
    let (config, jwt) = issuer(dir.path());
    let auth = Arc::new(Authenticator::new(&config, store.clone()).unwrap());
    let spec = TokenSpec { role: Role::Verifier, repos: vec![], keys: vec![], description: None, expires_in: None };
    let (token, _) = runtime.block_on(auth.create_token(&spec)).unwrap();
    let token = token.reveal();
    let auth = Arc::new(Authenticator::new(&AuthConfig { rate_per_minute: 0, ..config }, store).unwrap());
    c.bench_function("authenticate_api_token_sqlite", |b| {
        b.iter(|| runtime.block_on(auth.authenticate(Some(black_box(&token)))).unwrap())
    });
    c.bench_function("authenticate_oidc_es256_cached_jwks", |b| {
        b.iter(|| runtime.block_on(auth.authenticate(Some(black_box(&jwt)))).unwrap())
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
