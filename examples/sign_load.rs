//! Load tool: pushes N distinct small images straight to a registry, then signs (or, with `--attest`,
//! attests with a SLSA provenance v1 predicate) each through a running notarium with C concurrent clients
//! and reports throughput and latency percentiles. With `--verify` it signs every image first (untimed),
//! then verifies each twice through `POST /v1/verify`: a cold pass (the first decision about each digest,
//! read from the registry) and a warm one (the same digests again, from the decision cache when it is on);
//! `--signed-images FILE` runs only those two passes over images signed beforehand.
//!
//! cargo run --release --example sign_load -- --server http://127.0.0.1:8080 --registry 127.0.0.1:5000 \
//!     --images 400 --concurrency 8 --key dev-ecdsa [--attest | --verify] [--formats cosign,bundle,notation] \
//!     [--batch N]
//!
//! With `--batch N` each sign request names N images (`"images": [...]`); latencies are then per request.
// A measuring harness, not the service: any failure should stop the run at once.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use sha2::{Digest as _, Sha256};

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    server: String,
    /// Plain-HTTP registry host:port the server may reach.
    #[arg(long)]
    registry: String,
    #[arg(long, default_value_t = 200)]
    images: usize,
    #[arg(long, default_value_t = 1)]
    concurrency: usize,
    #[arg(long, default_value = "dev-ecdsa")]
    key: String,
    #[arg(long, default_value = "load/app")]
    repository: String,
    /// Only push the images and print their references, one a line (for timing other tools on them).
    #[arg(long)]
    push_only: bool,
    /// `POST /v1/attest` a SLSA provenance v1 statement instead of signing.
    #[arg(long, conflicts_with = "verify")]
    attest: bool,
    /// Sign every image (untimed), then time `POST /v1/verify` twice per image: cold, then warm. The server's
    /// policies must allow the repository's images signed by `--key`.
    #[arg(long)]
    verify: bool,
    /// Comma-separated signature formats for each sign (`cosign,bundle,notation`); default: the server's.
    #[arg(long, value_delimiter = ',')]
    formats: Option<Vec<String>>,
    /// Images per sign request: above 1, each request is a batch (`"images": [...]`).
    #[arg(long, default_value_t = 1, conflicts_with_all = ["attest", "verify"])]
    batch: usize,
    /// With `--verify`: a file of image references already signed (one a line, e.g. `--push-only`'s output
    /// signed by another run): nothing is pushed or signed, only the two verify passes run over them.
    #[arg(long, requires = "verify")]
    signed_images: Option<std::path::PathBuf>,
    /// The registry's process id: its CPU time (`/proc/PID/stat` utime + stime) is read before and after
    /// the push and the timed pass, and reported per image pushed and per request.
    #[arg(long)]
    registry_pid: Option<u32>,
}

/// CPU time (user + system) of process `pid` so far, from `/proc/PID/stat` (in clock ticks of 10 ms).
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which may hold spaces) start at the closing parenthesis.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 10)
}

/// Runs `phase` and prints the registry's CPU time per item over it, when `--registry-pid` names it.
async fn registry_cpu<T>(args: &Args, label: &str, items: usize, phase: impl Future<Output = T>) -> T {
    let before = args.registry_pid.map(cpu_time);
    let out = phase.await;
    if let (Some(pid), Some(before)) = (args.registry_pid, before) {
        let spent = cpu_time(pid) - before;
        println!(
            "registry_cpu {label}: {:.1} ms total, {:.2} ms per item over {items}",
            spent.as_secs_f64() * 1e3,
            spent.as_secs_f64() * 1e3 / items as f64
        );
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Sign,
    Attest,
    Verify,
}

impl Action {
    /// The request for one image: a sign, an attestation with a small SLSA provenance v1 predicate, or a verify.
    fn request(self, image: &str, key: &str) -> (&'static str, serde_json::Value) {
        match self {
            Self::Sign => ("/v1/sign", serde_json::json!({"image": image, "key": key})),
            Self::Verify => ("/v1/verify", serde_json::json!({"image": image})),
            Self::Attest => {
                let predicate = serde_json::json!({
                    "buildDefinition": {"buildType": "https://example.com/load/v1", "externalParameters": {"image": image}},
                    "runDetails": {"builder": {"id": "https://example.com/load-builder"}},
                });
                let body = serde_json::json!({"image": image, "key": key,
                    "predicate_type": "https://slsa.dev/provenance/v1", "predicate": predicate});
                ("/v1/attest", body)
            }
        }
    }

    fn expected_status(self) -> u16 {
        if self == Self::Verify { 200 } else { 201 }
    }

    fn counted(self) -> &'static str {
        match self {
            Self::Sign => "signs",
            Self::Attest => "attestations",
            Self::Verify => "verifications",
        }
    }
}

fn digest(bytes: &[u8]) -> String {
    let hex: String = Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

async fn put_blob(http: &reqwest::Client, base: &str, bytes: &[u8]) -> String {
    let d = digest(bytes);
    let start = http.post(format!("{base}/blobs/uploads/")).send().await.unwrap();
    assert_eq!(start.status(), 202, "blob upload refused");
    let location = start.headers()["location"].to_str().unwrap().to_owned();
    let location = if location.starts_with("http") {
        location
    } else {
        format!("{}{location}", &base[..base.find("/v2/").unwrap()])
    };
    let sep = if location.contains('?') { '&' } else { '?' };
    let done = http.put(format!("{location}{sep}digest={d}")).body(bytes.to_vec()).send().await.unwrap();
    assert!(done.status().is_success(), "blob upload failed: {}", done.status());
    d
}

/// Pushes `count` images sharing one layer and config, each manifest made unique by an annotation.
async fn push_images(http: &reqwest::Client, args: &Args) -> Vec<String> {
    let base = format!("http://{}/v2/{}", args.registry, args.repository);
    let layer = b"notarium load test layer".to_vec();
    let layer_digest = put_blob(http, &base, &layer).await;
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
    }))
    .unwrap();
    let config_digest = put_blob(http, &base, &config).await;
    let run_id = std::process::id();
    let mut images = Vec::with_capacity(args.images);
    for i in 0..args.images {
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": layer.len()}],
            "annotations": {"load.run": format!("{run_id}-{i}")},
        }))
        .unwrap();
        let response = http
            .put(format!("{base}/manifests/load-{run_id}-{i}"))
            .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
            .body(manifest.clone())
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "manifest push failed: {}", response.status());
        images.push(format!("{}/{}@{}", args.registry, args.repository, digest(&manifest)));
    }
    images
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// The latencies of one pass over every image and how long it took; for verifies, how many were cache hits.
struct Pass {
    /// Images covered (a batch request covers several).
    items: usize,
    latencies: Vec<Duration>,
    elapsed: Duration,
    cached: usize,
}

/// Sends `action` once per image from `args.concurrency` concurrent clients.
async fn run_pass(http: &reqwest::Client, args: &Args, images: &Arc<Vec<String>>, action: Action) -> Pass {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..args.concurrency {
        let (http, images, next) = (http.clone(), images.clone(), next.clone());
        let (server, key, formats) = (args.server.clone(), args.key.clone(), args.formats.clone());
        let batch = args.batch.max(1);
        workers.push(tokio::spawn(async move {
            let (mut latencies, mut cached) = (Vec::new(), 0);
            loop {
                let i = next.fetch_add(batch, Ordering::Relaxed);
                let Some(image) = images.get(i) else { break };
                let t = Instant::now();
                let (path, mut body) = action.request(image, &key);
                if batch > 1 {
                    let chunk = &images[i..(i + batch).min(images.len())];
                    body = serde_json::json!({"images": chunk, "key": key});
                }
                if let (Action::Sign, Some(formats)) = (action, &formats) {
                    body["formats"] = serde_json::json!(formats);
                }
                let response = http.post(format!("{server}{path}")).json(&body).send().await.unwrap();
                let status = response.status();
                let text = response.text().await.unwrap();
                let body = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
                assert_eq!(status, action.expected_status(), "{path} failed: {body}");
                latencies.push(t.elapsed());
                if action == Action::Verify {
                    assert_eq!(body["allowed"], true, "the policies must allow {image}: {body}");
                    cached += usize::from(body["cached"] == true);
                }
            }
            (latencies, cached)
        }));
    }
    let mut pass = Pass { items: images.len(), latencies: Vec::new(), elapsed: Duration::ZERO, cached: 0 };
    for w in workers {
        let (latencies, cached) = w.await.unwrap();
        pass.latencies.extend(latencies);
        pass.cached += cached;
    }
    pass.elapsed = started.elapsed();
    pass.latencies.sort();
    pass
}

fn report(args: &Args, action: Action, label: &str, pass: &Pass) {
    let latencies = &pass.latencies;
    let cached = if action == Action::Verify { format!(" cached={}", pass.cached) } else { String::new() };
    println!(
        "{}={}{label} requests={} concurrency={} key={} elapsed={:.2}s throughput={:.1}/s p50={:.1}ms p95={:.1}ms \
         p99={:.1}ms{cached}",
        action.counted(),
        pass.items,
        latencies.len(),
        args.concurrency,
        args.key,
        pass.elapsed.as_secs_f64(),
        pass.items as f64 / pass.elapsed.as_secs_f64(),
        percentile(latencies, 0.50).as_secs_f64() * 1e3,
        percentile(latencies, 0.95).as_secs_f64() * 1e3,
        percentile(latencies, 0.99).as_secs_f64() * 1e3,
    );
}

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args = Args::parse();
    let http = reqwest::Client::new();
    if let Some(file) = &args.signed_images {
        let text = std::fs::read_to_string(file).unwrap();
        let images = Arc::new(text.lines().filter(|l| !l.is_empty()).map(str::to_owned).collect::<Vec<_>>());
        report(&args, Action::Verify, " (cold)", &run_pass(&http, &args, &images, Action::Verify).await);
        report(&args, Action::Verify, " (warm)", &run_pass(&http, &args, &images, Action::Verify).await);
        return;
    }
    let images = Arc::new(registry_cpu(&args, "push", args.images, push_images(&http, &args)).await);
    if args.push_only {
        images.iter().for_each(|i| println!("{i}"));
        return;
    }
    if !args.verify {
        let action = if args.attest { Action::Attest } else { Action::Sign };
        let pass = registry_cpu(&args, action.counted(), images.len(), run_pass(&http, &args, &images, action)).await;
        report(&args, action, "", &pass);
        return;
    }
    run_pass(&http, &args, &images, Action::Sign).await;
    report(&args, Action::Verify, " (cold)", &run_pass(&http, &args, &images, Action::Verify).await);
    report(&args, Action::Verify, " (warm)", &run_pass(&http, &args, &images, Action::Verify).await);
}
