//! Register throughput and proof cost, measured on a real database (SQLite file or PostgreSQL).
//!
//! `appends --database URL --writers N --seconds S`: durable appends/s through group commit, N writers.
//! `fill --database URL --entries N [--small]`: grows the log to N entries (sign-sized canonical JSON, or
//! ~30-byte ones with `--small`, to build 10 million entries in ~2 GB instead of ~9 GB) in big batches.
//! `fill ... --varied`: ~230-byte entries shaped like the register's own (kinds, 4 registries, 2,000
//! repositories, a digest per 8 entries, 16 keys of 4 versions, 300 actors, a time every 3 s), for search.
//! `proofs --database URL --samples K`: inclusion proofs of K random entries at the current size; the
//! first proof (which loads the cached upper levels) is timed on its own.
//! `search --database URL --samples K`: K searches of each kind (one filter, two combined, a time window,
//! a second page) for values that occur in a `--varied` fill; p50 and p99 per kind and over all.
//! `scripts/bench-register.sh` runs them and the export/verify timings for docs/PERFORMANCE.md.
// A measuring harness, not the service: any failure should stop the run at once.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use notarium::formats::canonical::canonical_json;
use notarium::register::Register;
use notarium::store::{Append, RegisterStore, SearchFilter};

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
        #[arg(long, conflicts_with = "small")]
        varied: bool,
    },
    Search {
        #[arg(long)]
        database: String,
        #[arg(long, default_value_t = 200)]
        samples: u64,
        /// Entries per page.
        #[arg(long, default_value_t = 100)]
        limit: u32,
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
    let (done, groups) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let before = Usage::now();
    let start = Instant::now();
    let deadline = start + Duration::from_secs(seconds);
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let (log, done, groups) = (log.clone(), done.clone(), groups.clone());
            tokio::spawn(async move {
                let mut n = (w as u64) << 40;
                while Instant::now() < deadline {
                    let placed = log.append(Append::plain(entry(n))).await.expect("append");
                    done.fetch_add(1, Ordering::Relaxed);
                    // Groups commit one after another, so the last entry of each ends at its tree size.
                    if placed.index + 1 == placed.tree_size {
                        groups.fetch_add(1, Ordering::Relaxed);
                    }
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
    let per_group = n as f64 / groups.load(Ordering::Relaxed).max(1) as f64;
    let used = Usage::now().since(&before);
    println!(
        "appends: {writers} writers, {n} durable appends in {secs:.1} s = {:.0}/s ({per_group:.1} per group commit)",
        n as f64 / secs
    );
    let per = |x: f64| x / n.max(1) as f64;
    println!(
        "appends: per append {:.1} µs of CPU (this process, all threads), {:.0} bytes written, {:.2} write calls",
        per(used.cpu_seconds * 1e6),
        per(used.written_bytes),
        per(used.write_calls),
    );
}

/// This process's CPU time and writes so far (`/proc/self/stat`, `/proc/self/io`): per append they do not
/// depend on what else the machine runs, as a rate does.
struct Usage {
    cpu_seconds: f64,
    written_bytes: f64,
    write_calls: f64,
}

impl Usage {
    fn now() -> Self {
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
        // Fields after the command's closing parenthesis: utime and stime are the 12th and 13th.
        let fields: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
        let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
        let io = std::fs::read_to_string("/proc/self/io").unwrap();
        let field =
            |name: &str| -> f64 { io.lines().find_map(|l| l.strip_prefix(name)).unwrap().trim().parse().unwrap() };
        // USER_HZ is 100 on Linux.
        Self { cpu_seconds: ticks / 100.0, written_bytes: field("wchar:"), write_calls: field("syscw:") }
    }

    fn since(&self, before: &Self) -> Self {
        Self {
            cpu_seconds: self.cpu_seconds - before.cpu_seconds,
            written_bytes: self.written_bytes - before.written_bytes,
            write_calls: self.write_calls - before.write_calls,
        }
    }
}

/// A short entry, for filling big logs within the disk there is.
fn small_entry(n: u64) -> Vec<u8> {
    canonical_json(&serde_json::json!({"kind": "load", "n": n}))
}

/// A pseudo-random number for `n` and a stream `salt` (splitmix64): the same fill every run.
fn mix(n: u64, salt: u64) -> u64 {
    let mut z = n.wrapping_mul(0x9e37_79b9_7f4a_7c15).wrapping_add(salt.wrapping_mul(0xbf58_476d_1ce4_e5b9));
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

const VARIED_START: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z
const REGISTRIES: [&str; 4] = ["ghcr.io", "registry.example.com", "docker.io", "localhost:5000"];

/// The kind of varied entry `n`: pulls and verifies dominate, as they do in a running cluster.
fn varied_kind(n: u64) -> &'static str {
    match mix(n, 1) % 100 {
        0..30 => "registry-pull",
        30..50 => "verify",
        50..65 => "sign",
        65..75 => "attest",
        75..90 => "registry-push",
        90..93 => "key-rotated",
        93..95 => "policy-loaded",
        95..98 => "token-created",
        _ => "request-denied",
    }
}

fn varied_repository(n: u64) -> (usize, String) {
    let r = mix(n / 8, 2) % 2000;
    ((r % 4) as usize, format!("team-{}/app-{r}", r % 50))
}

fn varied_digest(n: u64) -> String {
    format!("sha256:{:016x}{:016x}{:016x}{:016x}", mix(n / 8, 3), mix(n / 8, 4), mix(n / 8, 5), mix(n / 8, 6))
}

fn varied_key(n: u64) -> (String, u64) {
    (format!("key-{}", mix(n, 7) % 16), 1 + mix(n, 8) % 4)
}

fn varied_actor(n: u64) -> String {
    format!("token:ci-{}", mix(n, 9) % 300)
}

fn varied_time(n: u64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(VARIED_START + 3 * n as i64).unwrap();
    t.format(&time::format_description::well_known::Rfc3339).unwrap()
}

/// Entry `n` of a varied register: the fields search reads, the bulky details (signatures, proofs) left out.
fn varied_entry(n: u64) -> Vec<u8> {
    let kind = varied_kind(n);
    let (registry, repository) = varied_repository(n);
    let image =
        serde_json::json!({"registry": REGISTRIES[registry], "repository": repository, "digest": varied_digest(n)});
    let (key, version) = varied_key(n);
    let (subject, details) = match kind {
        "sign" | "attest" => (image, serde_json::json!({"key": key, "key_version": version})),
        "key-rotated" => (serde_json::json!({"key": key, "version": version}), serde_json::json!({"backend": "file"})),
        "policy-loaded" => (serde_json::json!({"policy": "prod", "version": varied_digest(n)}), serde_json::json!({})),
        "token-created" => (serde_json::json!({"token": format!("t{n}")}), serde_json::json!({"role": "signer"})),
        "request-denied" => (serde_json::json!({"route": "POST /v1/sign"}), serde_json::json!({"count": 1})),
        _ => (image, serde_json::json!({"allowed": mix(n, 10) % 10 != 0})),
    };
    canonical_json(&serde_json::json!({
        "kind": kind, "time": varied_time(n), "actor": {"name": varied_actor(n)}, "subject": subject, "details": details,
    }))
}

async fn fill(store: Arc<dyn RegisterStore>, target: u64, small: bool, varied: bool) {
    let make = match (small, varied) {
        (true, _) => small_entry,
        (_, true) => varied_entry,
        _ => entry,
    };
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

/// One search of each kind for entry `n`'s values, as an auditor would ask them.
fn search_kinds(n: u64) -> Vec<(&'static str, SearchFilter)> {
    let f = SearchFilter::default;
    let (registry, repository) = varied_repository(n);
    let (key, version) = varied_key(n);
    let at = (VARIED_START + 3 * n as i64) * 1000;
    vec![
        ("digest", SearchFilter { digest: Some(varied_digest(n)), ..f() }),
        (
            "repository",
            SearchFilter { registry: Some(REGISTRIES[registry].into()), repository: Some(repository.clone()), ..f() },
        ),
        ("key", SearchFilter { key: Some(key.clone()), ..f() }),
        ("key+version", SearchFilter { key: Some(key.clone()), key_version: Some(version as i64), ..f() }),
        ("kind", SearchFilter { kind: Some(varied_kind(n).into()), ..f() }),
        ("actor", SearchFilter { actor: Some(varied_actor(n)), ..f() }),
        ("hour", SearchFilter { from_ms: Some(at), to_ms: Some(at + 3_600_000), ..f() }),
        ("kind+repository", SearchFilter { kind: Some("sign".into()), repository: Some(repository), ..f() }),
        ("key+day", SearchFilter { key: Some(key), from_ms: Some(at), to_ms: Some(at + 86_400_000), ..f() }),
    ]
}

async fn search(store: Arc<dyn RegisterStore>, samples: u64, limit: u32) {
    let size = store.tree_size().await.unwrap();
    let mut by_kind: std::collections::BTreeMap<&str, Vec<Duration>> = Default::default();
    let mut all = Vec::new();
    let (mut found, mut pages) = (0usize, 0u64);
    for sample in 0..samples {
        let n = mix(sample, 11) % size;
        for (name, filter) in search_kinds(n) {
            let start = Instant::now();
            let page = store.search(&filter, None, limit).await.unwrap();
            let took = start.elapsed();
            found += page.len();
            by_kind.entry(name).or_default().push(took);
            all.push(took);
            // The page after, from the first page's cursor, as a client following next_cursor does.
            if let Some(last) = page.last().filter(|_| page.len() == limit as usize) {
                let start = Instant::now();
                store.search(&filter, Some(last.index), limit).await.unwrap();
                by_kind.entry("next page").or_default().push(start.elapsed());
                all.push(start.elapsed());
                pages += 1;
            }
        }
    }
    let pct = |times: &mut Vec<Duration>, p: usize| {
        times.sort();
        times[(times.len() * p / 100).min(times.len() - 1)].as_secs_f64() * 1e3
    };
    println!(
        "search: tree size {size}, {} searches of {limit} entries a page ({found} entries found, {pages} second pages)",
        all.len()
    );
    for (name, times) in &mut by_kind {
        println!(
            "search: {name:>16}: n {:>5}, p50 {:>7.2} ms, p99 {:>7.2} ms",
            times.len(),
            pct(times, 50),
            pct(times, 99)
        );
    }
    println!(
        "search: {:>16}: n {:>5}, p50 {:>7.2} ms, p99 {:>7.2} ms",
        "all",
        all.len(),
        pct(&mut all, 50),
        pct(&mut all, 99)
    );
}

async fn open(url: &str) -> Arc<dyn RegisterStore> {
    notarium::store::open(url).await.expect("database opens") as Arc<dyn RegisterStore>
}

#[tokio::main]
async fn main() {
    match Args::parse().command {
        Command::Appends { database, writers, seconds } => appends(open(&database).await, writers, seconds).await,
        Command::Fill { database, entries, small, varied } => fill(open(&database).await, entries, small, varied).await,
        Command::Search { database, samples, limit } => search(open(&database).await, samples, limit).await,
        Command::Proofs { database, samples } => proofs(open(&database).await, samples).await,
    }
}
