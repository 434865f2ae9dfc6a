//! Sign rate of a key backend, raw and through notarium's `Signer`, measured side by side in one run.
//!
//! PKCS#11: `cargo run --release --example backend_rate -- pkcs11 --module M --token T --label L --pin-env E`
//! Vault:   `cargo run --release --example backend_rate -- vault --address A --key K --token-env E`
//! Both sign a 32-byte SHA-256 digest of a simple-signing-sized payload with ECDSA P-256, with
//! `--concurrency` workers for `--seconds`.
// A measuring harness, not the service: any failure should stop the run at once.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use clap::{Parser, Subcommand};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, ObjectClass};
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;
use notarium::keys::{Pkcs11Settings, Pkcs11Signer, SecretRef, Signer, VaultAuth, VaultSettings, VaultSigner};
use sha2::{Digest as _, Sha256};

#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    backend: Backend,
    #[arg(long, global = true, default_value_t = 2)]
    concurrency: usize,
    #[arg(long, global = true, default_value_t = 5)]
    seconds: u64,
}

#[derive(Subcommand)]
enum Backend {
    Pkcs11 {
        #[arg(long)]
        module: PathBuf,
        #[arg(long)]
        token: String,
        #[arg(long)]
        label: String,
        #[arg(long)]
        pin_env: String,
    },
    Vault {
        #[arg(long)]
        address: String,
        #[arg(long)]
        key: String,
        #[arg(long)]
        token_env: String,
    },
}

const PAYLOAD: &[u8] = br#"{"critical":{"identity":{"docker-reference":"registry.example/team/app"},"image":{"docker-manifest-digest":"sha256:c4ea3eb55a9e77e1edfcec7acc64cab6650ef710811264fdd18cedeba6de5c83"},"type":"cosign container image signature"},"optional":null}"#;

fn report(what: &str, count: usize, elapsed: Duration) -> f64 {
    let rate = count as f64 / elapsed.as_secs_f64();
    println!("{what}: {count} signatures in {:.2}s = {rate:.0}/s", elapsed.as_secs_f64());
    rate
}

/// Raw cryptoki: one logged-in session per thread, CKM_ECDSA over a host-side SHA-256, as fast as it goes.
fn raw_pkcs11(module: &PathBuf, token: &str, label: &str, pin: &str, threads: usize, seconds: u64) -> f64 {
    let ctx = Pkcs11::new(module).unwrap();
    let _ = ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK));
    let slot = ctx
        .get_slots_with_token()
        .unwrap()
        .into_iter()
        .find(|s| ctx.get_token_info(*s).unwrap().label().trim_end() == token)
        .expect("token present");
    let anchor = ctx.open_ro_session(slot).unwrap();
    let _ = anchor.login(UserType::User, Some(&AuthPin::new(pin.into())));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let digest = Sha256::digest(PAYLOAD).to_vec();
    let started = Instant::now();
    let counts: Vec<usize> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let (ctx, digest) = (ctx.clone(), digest.clone());
                scope.spawn(move || {
                    let session = ctx.open_ro_session(slot).unwrap();
                    let template =
                        [Attribute::Class(ObjectClass::PRIVATE_KEY), Attribute::Label(label.as_bytes().to_vec())];
                    let key = *session.find_objects(&template).unwrap().last().unwrap();
                    let mut n = 0;
                    while Instant::now() < deadline {
                        session.sign(&Mechanism::Ecdsa, key, &digest).unwrap();
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    report("raw cryptoki CKM_ECDSA", counts.iter().sum(), started.elapsed())
}

/// Runs `sign` from `workers` tasks until the deadline and reports the rate.
async fn through_signer(what: &str, signer: Arc<dyn Signer>, workers: usize, seconds: u64) -> f64 {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let tasks: Vec<_> = (0..workers)
        .map(|_| {
            let signer = signer.clone();
            tokio::spawn(async move {
                let mut n = 0;
                while Instant::now() < deadline {
                    signer.sign(None, PAYLOAD).await.unwrap();
                    n += 1;
                }
                n
            })
        })
        .collect();
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    report(what, total, started.elapsed())
}

/// Raw Transit: `POST /v1/transit/sign/<key>` with a prehashed digest, as fast as it goes.
async fn raw_vault(address: &str, key: &str, token: &str, workers: usize, seconds: u64) -> f64 {
    let http = reqwest::Client::new();
    let url = format!("{address}/v1/transit/sign/{key}");
    let input = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(PAYLOAD));
    let body = serde_json::json!({"input": input, "prehashed": true, "hash_algorithm": "sha2-256", "marshaling_algorithm": "asn1"});
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let tasks: Vec<_> = (0..workers)
        .map(|_| {
            let (http, url, body, token) = (http.clone(), url.clone(), body.clone(), token.to_owned());
            tokio::spawn(async move {
                let mut n = 0;
                while Instant::now() < deadline {
                    let r = http.post(&url).header("X-Vault-Token", &token).json(&body).send().await.unwrap();
                    assert!(r.status().is_success());
                    r.bytes().await.unwrap();
                    n += 1;
                }
                n
            })
        })
        .collect();
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    report("raw Transit HTTP", total, started.elapsed())
}

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args = Args::parse();
    let (raw, ours) = match args.backend {
        Backend::Pkcs11 { module, token, label, pin_env } => {
            let pin = std::env::var(&pin_env).expect("PIN variable set");
            let raw = raw_pkcs11(&module, &token, &label, &pin, args.concurrency, args.seconds);
            let signer = Pkcs11Signer::new(
                "bench",
                Pkcs11Settings {
                    module,
                    token_label: token,
                    key_label: Some(label),
                    key_id: None,
                    pin: SecretRef::Env(pin_env),
                    max_sessions: args.concurrency,
                    refresh: Duration::from_secs(30),
                },
            );
            (raw, through_signer("notarium pkcs11 Signer", Arc::new(signer), args.concurrency, args.seconds).await)
        }
        Backend::Vault { address, key, token_env } => {
            let token = std::env::var(&token_env).expect("token variable set");
            let raw = raw_vault(&address, &key, &token, args.concurrency, args.seconds).await;
            let signer = VaultSigner::new(
                "bench",
                VaultSettings {
                    address,
                    mount: "transit".into(),
                    key,
                    auth: VaultAuth::Token(SecretRef::Env(token_env)),
                    timeout: Duration::from_secs(10),
                    refresh: Duration::from_secs(30),
                },
            );
            (raw, through_signer("notarium vault Signer", Arc::new(signer), args.concurrency, args.seconds).await)
        }
    };
    println!("notarium / raw = {:.0}%", ours / raw * 100.0);
}
