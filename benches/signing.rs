//! Micro-benchmarks of the pure signing path: payload encoding, file-key signatures, verification and
//! signature-manifest encoding. `cargo bench --bench signing`.
// A measuring harness, not the service: any failure should stop the run at once.
#![allow(clippy::unwrap_used)]

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use notarium::formats::Digest;
use notarium::formats::signature_manifest::{SignatureLayer, SignatureManifest};
use notarium::formats::simple_signing::SimpleSigning;
use notarium::keys::{FileSigner, Signer};

fn payload() -> Vec<u8> {
    let digest = Digest::of(b"image");
    SimpleSigning::new("registry.example/team/app:1.0", &digest, None).to_bytes()
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let digest = Digest::of(b"image");
    c.bench_function("simple_signing_payload", |b| {
        b.iter(|| SimpleSigning::new(black_box("registry.example/team/app:1.0"), &digest, None).to_bytes())
    });
    let payload = payload();
    for (id, file) in [("ecdsa-p256", "dev-ecdsa.pem"), ("ed25519", "dev-ed25519.pem")] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("keys.example").join(file);
        let signer = FileSigner::load(id, &path).unwrap();
        let public = runtime.block_on(signer.versions()).unwrap().remove(0).public_key;
        let signature = runtime.block_on(signer.sign(None, &payload)).unwrap().bytes;
        c.bench_function(&format!("file_sign_{id}"), |b| {
            b.iter(|| runtime.block_on(signer.sign(None, black_box(&payload))).unwrap())
        });
        c.bench_function(&format!("verify_{id}"), |b| {
            b.iter(|| public.verify(black_box(&payload), &signature).unwrap())
        });
    }
    let layers: Vec<_> = (0..8).map(|i| SignatureLayer::new(&payload, &[i; 72]).descriptor).collect();
    c.bench_function("signature_manifest_encode_8_layers", |b| {
        b.iter(|| SignatureManifest::encode(black_box(layers.clone())))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
