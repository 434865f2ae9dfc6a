//! Inputs for timing `notarium log verify` and `notarium evidence verify` at scale, without a server: a
//! register of N entries built in memory (entry 0 a `key-added` of `keys.example/dev-ed25519.pem`, then one
//! `sign` entry signed with it for every nine `registry-pull` entries, all sign-sized), its checkpoint signed
//! with `keys.example/dev-log.pem`, written as an export and as an evidence pack directory.
//!
//! `verify_load --entries 1000000 --out DIR` writes `DIR/export.jsonl`, `DIR/pack/` and `DIR/log.pub`.
//! docs/PERFORMANCE.md has the figures and the hyperfine commands.
// A measuring harness, not the service: any failure should stop the run at once.
#![allow(clippy::unwrap_used)]

use std::io::{BufWriter, Write};
use std::path::PathBuf;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use clap::Parser;
use ed25519_dalek::Signer as _;
use ed25519_dalek::pkcs8::DecodePrivateKey;
use notarium::formats::canonical::canonical_json;
use notarium::formats::checkpoint::{Checkpoint, NoteSignature, ed25519_key_id, format_note};
use notarium::formats::digest::hex_lower;
use notarium::keys::PublicKey;
use notarium::merkle::{Hash, empty_root, fold_pieces, inclusion_ranges, leaf_hash, node_hash, perfect_pieces};
use notarium::register::evidence::{Manifest, PACK_TYPE, payload_line};
use notarium::register::export::{entry_line, header_line};
use serde_json::json;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 1_000_000)]
    entries: u64,
    #[arg(long)]
    out: PathBuf,
}

const ORIGIN: &str = "notarium.local/log";

/// Every level of the tree: `levels[l][i]` is the hash of the perfect subtree of 2^l leaves numbered `i`.
fn levels(leaves: Vec<Hash>) -> Vec<Vec<Hash>> {
    let mut levels = vec![leaves];
    while levels.last().unwrap().len() > 1 {
        let below = levels.last().unwrap();
        levels.push(below.chunks_exact(2).map(|pair| node_hash(&pair[0], &pair[1])).collect());
    }
    levels
}

/// The hash of leaves `[start, end)`.
fn range_hash(levels: &[Vec<Hash>], start: u64, end: u64) -> Hash {
    let pieces: Vec<Hash> = perfect_pieces(start, end)
        .into_iter()
        .map(|(s, e)| {
            let level = (e - s).trailing_zeros() as usize;
            levels[level][(s >> level) as usize]
        })
        .collect();
    fold_pieces(&pieces)
}

fn main() {
    let args = Args::parse();
    let root_dir = env!("CARGO_MANIFEST_DIR");
    let read = |name: &str| std::fs::read_to_string(format!("{root_dir}/keys.example/{name}")).unwrap();
    let log_key = ed25519_dalek::SigningKey::from_pkcs8_pem(&read("dev-log.pem")).unwrap();
    let signer = ed25519_dalek::SigningKey::from_pkcs8_pem(&read("dev-ed25519.pem")).unwrap();
    let signer_pem = PublicKey::from_ed25519(&signer.verifying_key()).to_pem();

    let mut entries: Vec<Vec<u8>> = Vec::with_capacity(args.entries as usize);
    let mut payloads: Vec<(String, Vec<u8>)> = Vec::new();
    entries.push(canonical_json(&json!({
        "kind": "key-added", "time": "2026-11-01T00:00:00Z", "actor": {"name": "notarium"},
        "subject": {"key": "dev-ed25519", "version": 1},
        "details": {"backend": "file", "algorithm": "ed25519", "public_key": signer_pem, "public_key_sha256": "x"},
    })));
    for i in 1..args.entries {
        let digest = format!("sha256:{:064x}", i);
        let subject =
            json!({"registry": "registry.example:5000", "repository": format!("load/app{}", i % 97), "digest": digest});
        let entry = if i % 10 == 1 {
            let payload = format!(
                r#"{{"critical":{{"identity":{{"docker-reference":"registry.example:5000/load/app"}},"image":{{"docker-manifest-digest":"{digest}"}},"type":"cosign container image signature"}},"optional":null}}"#
            );
            let payload_digest = notarium::formats::Digest::of(payload.as_bytes()).to_string();
            let signature = BASE64.encode(signer.sign(payload.as_bytes()).to_bytes());
            payloads.push((payload_digest.clone(), payload.into_bytes()));
            json!({"kind": "sign", "time": "2026-11-02T10:00:00Z", "actor": {"name": "token:ci", "addr": "10.0.0.7"}, "subject": subject,
                "details": {"identity": "registry.example:5000/load/app", "key": "dev-ed25519", "key_version": 1, "algorithm": "ed25519",
                    "signature_tag": "sha256-x.sig", "manifest_digest": digest, "payload_digest": payload_digest, "signature": signature}})
        } else {
            json!({"kind": "registry-pull", "time": "2026-11-02T10:00:00Z", "actor": {"name": "ci", "addr": "10.0.0.8:41234", "user_agent": "containerd/2.0.0"},
                "subject": subject,
                "details": {"event_id": format!("event-{i}"), "media_type": "application/vnd.oci.image.manifest.v1+json", "tag": "v1", "size": 1234, "method": "GET", "source": "registry:5000"}})
        };
        entries.push(canonical_json(&entry));
    }
    let size = entries.len() as u64;
    let levels = levels(entries.iter().map(|e| leaf_hash(e)).collect());
    let root = range_hash(&levels, 0, size);
    let note = |size: u64, root_hash: Hash| {
        let body = Checkpoint { origin: ORIGIN.into(), size, root_hash }.body();
        let public = log_key.verifying_key().to_bytes();
        let signature = log_key.sign(body.as_bytes()).to_bytes().to_vec();
        format_note(&body, &[NoteSignature { name: ORIGIN.into(), key_id: ed25519_key_id(ORIGIN, &public), signature }])
    };
    let checkpoint = note(size, root);
    let proof = |index: u64| -> Vec<Hash> {
        inclusion_ranges(index, size).into_iter().map(|(s, e)| range_hash(&levels, s, e)).collect()
    };

    let pack = args.out.join("pack");
    std::fs::create_dir_all(&pack).unwrap();
    let create = |path: PathBuf| BufWriter::with_capacity(1 << 20, std::fs::File::create(path).unwrap());
    let mut export = create(args.out.join("export.jsonl"));
    export.write_all(header_line(&checkpoint, size, 0, size, None).as_bytes()).unwrap();
    for (index, entry) in entries.iter().enumerate() {
        export.write_all(entry_line(index as u64, entry, &proof(index as u64)).as_bytes()).unwrap();
    }
    export.flush().unwrap();
    drop(export);
    std::fs::copy(args.out.join("export.jsonl"), pack.join("entries.jsonl")).unwrap();
    let mut context = create(pack.join("context.jsonl"));
    context.write_all(entry_line(0, &entries[0], &proof(0)).as_bytes()).unwrap();
    context.flush().unwrap();
    let mut signed = create(pack.join("signed-payloads.jsonl"));
    for (digest, bytes) in &payloads {
        signed.write_all(payload_line(digest, bytes).as_bytes()).unwrap();
    }
    signed.flush().unwrap();
    std::fs::write(pack.join("checkpoint.txt"), &checkpoint).unwrap();
    std::fs::write(pack.join("checkpoint-start.txt"), note(0, empty_root())).unwrap();
    let manifest = Manifest {
        kind: PACK_TYPE.into(),
        version: 1,
        origin: ORIGIN.into(),
        from: None,
        to: None,
        tree_size: size,
        first_index: 0,
        count: size,
        start_size: 0,
        start_consistency: Vec::new(),
        members: Vec::new(),
        signatures_without_payload: 0,
    };
    std::fs::write(pack.join("manifest.json"), serde_json::to_vec_pretty(&manifest).unwrap()).unwrap();
    std::fs::write(args.out.join("log.pub"), PublicKey::from_ed25519(&log_key.verifying_key()).to_pem()).unwrap();
    println!("{size} entries ({} signs), root {}", payloads.len(), hex_lower(&root));
}
