//! Register throughput and proof cost, measured on a real database (SQLite file or PostgreSQL).
//!
//! `appends --database URL --writers N --seconds S`: durable appends/s through group commit, N writers.
//! `fill --database URL --entries N [--small]`: grows the log to N entries (sign-sized canonical JSON, or
//! ~30-byte ones with `--small`, to build 10 million entries in ~2 GB instead of ~9 GB) in big batches.
//! `proofs --database URL --samples K`: inclusion proofs of K random entries at the current size; the
//! first proof (which loads the cached upper levels) is timed on its own.
//! `scripts/bench-register.sh` runs them and the export/verify timings for docs/PERFORMANCE.md.
// A measuring harness, not the service: any failure should stop the run at once.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use notarium::formats::canonical::canonical_json;
use notarium::register::Register;
use notarium::store::{Append, RegisterStore};

#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Appends {
        #[arg(long)]
        database: String,
        #[arg(long, default_value_t = 1)]
        writers: usize,
        #[arg(long, default_value_t = 5)]
        seconds: u64,
    },
    Fill {
        #[arg(long)]
        database: String,
        #[arg(long)]
        entries: u64,
        #[arg(long)]
        small: bool,
    },
    Proofs {
        #[arg(long)]
        database: String,
        #[arg(long, default_value_t = 2000)]
        samples: u64,
    },
}

/// An entry the size and shape of a sign entry.
fn entry(n: u64) -> Vec<u8> {
    canonical_json(&serde_json::json!({
        "kind": "sign",
        "time": "2026-11-23T12:00:00Z",
        "actor": {"name": "load", "addr": "127.0.0.1:1"},
        "subject": {"registry": "127.0.0.1:5000", "repository": "load/app", "digest": format!("sha256:{n:064x}")},
        "details": {
            "identity": "127.0.0.1:5000/load/app",
            "key": "dev-ecdsa",
            "key_version": 1,
            "algorithm": "ecdsa-p256-sha256",
            "signature_tag": format!("sha256-{n:064x}.sig"),
            "manifest_digest": format!("sha256:{:064x}", n + 1),
            "payload_digest": format!("sha256:{:064x}", n + 2),
            "signature": "MEUCIQDm6J0Zr1y2l0yqJm8S5ZL9L5E3hX3a6jYb8d0o2iYl3gIgYk2h0m3cQ3fK0vJ9pQ4wz8X5b1uE7n2sA6d4tR9yL0c=",
        },
    }))
}

async fn appends(store: Arc<dyn RegisterStore>, writers: usize, seconds: u64) {
    let log = Arc::new(Register::new(store));
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + Duration::from_secs(seconds);
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let (log, done) = (log.clone(), done.clone());
            tokio::spawn(async move {
                let mut n = (w as u64) << 40;
                while Instant::now() < deadline {
                    log.append(Append::plain(entry(n))).await.expect("append");
                    done.fetch_add(1, Ordering::Relaxed);
                    n += 1;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let n = done.load(Ordering::Relaxed);
    let secs = start.elapsed().as_secs_f64();
    println!("appends: {writers} writers, {n} durable appends in {secs:.1} s = {:.0}/s", n as f64 / secs);
}

/// A short entry, for filling big logs within the disk there is.
fn small_entry(n: u64) -> Vec<u8> {
    canonical_json(&serde_json::json!({"kind": "load", "n": n}))
}

async fn fill(store: Arc<dyn RegisterStore>, target: u64, small: bool) {
    let make = if small { small_entry } else { entry };
    let start = Instant::now();
    let mut size = store.tree_size().await.unwrap();
    let from = size;
    while size < target {
        let batch: Vec<Append> = (size..(size + 10_000).min(target)).map(|n| Append::plain(make(n))).collect();
        size = store.append_batch(&batch).await.unwrap().1;
        if size % 500_000 < 10_000 {
            eprintln!("fill: {size} entries, {:.0} entries/s", (size - from) as f64 / start.elapsed().as_secs_f64());
        }
    }
    println!("fill: {} entries appended in {:.1} s", size - from, start.elapsed().as_secs_f64());
}

async fn proofs(store: Arc<dyn RegisterStore>, samples: u64) {
    let log = Register::new(store);
    let size = log.size().await.unwrap();
    let start = Instant::now();
    log.inclusion_proof(size / 2, size).await.unwrap();
    println!("proofs: first proof (loads any cache) {:.1} ms", start.elapsed().as_secs_f64() * 1e3);
    let mut times = Vec::new();
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..samples {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let start = Instant::now();
        let proof = log.inclusion_proof(x % size, size).await.unwrap();
        times.push(start.elapsed());
        assert!(!proof.is_empty() || size == 1);
    }
    times.sort();
    let pct = |p: usize| times[(times.len() * p / 100).min(times.len() - 1)].as_secs_f64() * 1e6;
    println!("proofs: tree size {size}, {samples} inclusion proofs: p50 {:.0} µs, p99 {:.0} µs", pct(50), pct(99));
}

async fn open(url: &str) -> Arc<dyn RegisterStore> {
    notarium::store::open(url).await.expect("database opens") as Arc<dyn RegisterStore>
}

#[tokio::main]
async fn main() {
    match Args::parse().command {
        Command::Appends { database, writers, seconds } => appends(open(&database).await, writers, seconds).await,
        Command::Fill { database, entries, small } => fill(open(&database).await, entries, small).await,
        Command::Proofs { database, samples } => proofs(open(&database).await, samples).await,
    }
}
