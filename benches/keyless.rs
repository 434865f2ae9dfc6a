//! Micro-benchmarks of Sigstore bundle verification (`pki::verify_bundle`), offline: one keyless
//! verification of the conformance suite's `happy-path-v0.3` bundle against the public-good production root
//! (Fulcio chain, embedded SCT, Rekor SET and inclusion proof with its signed checkpoint, signature over the
//! artifact), next to key-based bundles: the suite's `managed-key-and-trusted-root` (a key, with a Rekor entry:
//! SET and inclusion proof, under the case's own root) and cosign 2.5's referrer bundle (a key, DSSE, no log
//! entry), and the parse of the production root.
//! `cargo bench --bench keyless`.
// A measuring harness, not the service: any failure should stop the run at once.
#![allow(clippy::unwrap_used)]

use std::hint::black_box;
use std::path::{Path, PathBuf};

use criterion::{Criterion, criterion_group, criterion_main};
use notarium::formats::Digest;
use notarium::formats::bundle::Bundle;
use notarium::keys::PublicKey;
use notarium::pki::{Artifact, Expected, TrustedRoot, verify_bundle};
use time::OffsetDateTime;

fn fixture(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/third-party").join(path)
}

fn read(path: &str) -> Vec<u8> {
    std::fs::read(fixture(path)).unwrap()
}

fn bench(c: &mut Criterion) {
    let conformance = "sigstore-conformance/bundle-verify";
    let root_json = read("sigstore-conformance/production-trusted_root.json");
    let root = TrustedRoot::parse(&root_json).unwrap();
    let now = OffsetDateTime::now_utc();
    c.bench_function("trusted_root_parse_production", |b| {
        b.iter(|| TrustedRoot::parse(black_box(&root_json)).unwrap())
    });

    let artifact = read(&format!("{conformance}/a.txt"));
    let keyless = Bundle::parse(&read(&format!("{conformance}/happy-path-v0.3/bundle.sigstore.json"))).unwrap();
    let verified = verify_bundle(&keyless, &root, Expected::AnyCertificate, Artifact::Bytes(&artifact), now).unwrap();
    assert!(verified.certificate.is_some() && !verified.entries.is_empty());
    c.bench_function("verify_bundle_keyless_v0_3", |b| {
        b.iter(|| {
            verify_bundle(black_box(&keyless), &root, Expected::AnyCertificate, Artifact::Bytes(&artifact), now)
                .unwrap()
        })
    });

    let case = format!("{conformance}/managed-key-and-trusted-root");
    let managed = Bundle::parse(&read(&format!("{case}/bundle.sigstore.json"))).unwrap();
    let managed_root = TrustedRoot::parse(&read(&format!("{case}/trusted_root.json"))).unwrap();
    let managed_key = PublicKey::from_pem(&String::from_utf8(read(&format!("{case}/key.pub"))).unwrap()).unwrap();
    let verified = verify_bundle(&managed, &managed_root, Expected::Key(&managed_key), Artifact::Bytes(&artifact), now);
    assert!(verified.unwrap().certificate.is_none());
    c.bench_function("verify_bundle_key_with_rekor_entry", |b| {
        b.iter(|| {
            let key = Expected::Key(&managed_key);
            verify_bundle(black_box(&managed), &managed_root, key, Artifact::Bytes(&artifact), now).unwrap()
        })
    });

    // cosign 2.5's bundle holds a DSSE envelope, bound by the caller to the image digest its Statement names.
    let cosign = Bundle::parse(&read("cosign-2.5/referrer-bundle.sigstore.json")).unwrap();
    let cosign_key = PublicKey::from_pem(&String::from_utf8(read("cosign-2.5/signer.pub")).unwrap()).unwrap();
    let image = Digest::parse(std::fs::read_to_string(fixture("cosign-2.5/image-digest.txt")).unwrap().trim()).unwrap();
    let no_logs = TrustedRoot::default();
    verify_bundle(&cosign, &no_logs, Expected::Key(&cosign_key), Artifact::Digest(&image), now).unwrap();
    c.bench_function("verify_bundle_key_dsse_no_log", |b| {
        b.iter(|| {
            verify_bundle(black_box(&cosign), &no_logs, Expected::Key(&cosign_key), Artifact::Digest(&image), now)
                .unwrap()
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
