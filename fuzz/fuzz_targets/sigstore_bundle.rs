//! Sigstore bundles through `pki::verify_bundle`, against the public-good production root at a fixed time:
//! never a panic, allocation bounded by the input's size, and whatever verifies keyless names a certificate
//! and a verified time source (a log entry or a timestamp); with a key, no certificate identity.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use notarium::formats::bundle::Bundle;
use notarium::keys::PublicKey;
use notarium::pki::{Artifact, Expected, TrustedRoot, verify_bundle};
use time::OffsetDateTime;

static ROOT: LazyLock<TrustedRoot> = LazyLock::new(|| {
    TrustedRoot::parse(include_bytes!(
        "../../tests/fixtures/third-party/sigstore-conformance/production-trusted_root.json"
    ))
    .expect("the production root parses")
});
static KEY: LazyLock<PublicKey> = LazyLock::new(|| {
    PublicKey::from_pem(include_str!(
        "../../tests/fixtures/third-party/sigstore-conformance/bundle-verify/managed-key-happy-path/key.pub"
    ))
    .expect("the fixture key parses")
});
/// The conformance suite's artifact (`a.txt`), which its happy-path bundles sign.
const ARTIFACT: &[u8] = include_bytes!("../../tests/fixtures/third-party/sigstore-conformance/bundle-verify/a.txt");

fuzz_target!(|input: &[u8]| {
    // 2025-01-01T00:00:00Z: inside the production root's windows and after the fixtures were signed.
    let now = OffsetDateTime::from_unix_timestamp(1_735_689_600).expect("a valid time");
    let (root, key) = (&*ROOT, &*KEY);
    notarium_fuzz::bounded("Bundle::parse + verify_bundle", input.len(), 64, 4 << 20, || {
        let Ok(bundle) = Bundle::parse(input) else { return };
        if let Ok(verified) = verify_bundle(&bundle, root, Expected::AnyCertificate, Artifact::Bytes(ARTIFACT), now) {
            assert!(verified.certificate.is_some(), "a keyless bundle verified without a certificate");
            assert!(
                !verified.entries.is_empty() || !verified.timestamps.is_empty(),
                "a keyless bundle verified without a verified time"
            );
        }
        if let Ok(verified) = verify_bundle(&bundle, root, Expected::Key(key), Artifact::Bytes(ARTIFACT), now) {
            assert!(verified.certificate.is_none(), "a key-signed bundle named a certificate identity");
        }
    });
});
