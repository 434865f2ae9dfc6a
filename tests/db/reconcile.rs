//! Invariant 2 across a crash: a sign interrupted between the registry write and the database
//! confirmation is settled at start-up against what the registry really holds.

use crate::support;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use notarium::keys::{CertificateChain, FileSigner, KeyRing};
use notarium::oci::DistributionRegistry;
use notarium::register::event::{sign_entry, stored_entry};
use notarium::service::{AttestRequest, Reconciled, RegisterSettings, Service, SignRequest};
use notarium::store::{Artifact, NewSignature, RecordKind, Store};
use support::{Registry, push_image, test_database_url};

/// A service on the test database for `dir`.
fn service(runtime: &tokio::runtime::Runtime, registry: &Registry, dir: &Path) -> (Service, Arc<dyn Store>) {
    let mut keys = KeyRing::default();
    let path = Path::new(support::ROOT).join("keys.example/dev-ecdsa.pem");
    keys.insert("dev-ecdsa", Arc::new(FileSigner::load("dev-ecdsa", &path).unwrap()));
    // With its certificate chain, dev-ecdsa signs in all three formats.
    keys.set_certificate_chain("dev-ecdsa", 1, CertificateChain::new(dev_ecdsa_chain(), "test"));
    let store = runtime.block_on(notarium::store::open(&test_database_url(dir))).unwrap();
    let client = Arc::new(DistributionRegistry::with_insecure([registry.host.clone()]));
    let register = RegisterSettings { origin: "test/log".into(), key: None };
    let _inside = runtime.enter();
    (Service::new(keys, client, store.clone(), register), store)
}

/// Signs `image` with `dev-ecdsa` through `service`: the answer and the row it stored.
fn sign_for_real(
    runtime: &tokio::runtime::Runtime,
    (service, store): (&Service, &Arc<dyn Store>),
    image: &str,
) -> (notarium::service::SignOutcome, NewSignature) {
    let request = SignRequest {
        image: image.into(),
        key: "dev-ecdsa".into(),
        annotations: None,
        actor: "test".into(),
        source_addr: None,
        recursive: false,
        formats: None,
    };
    let signed = runtime.block_on(service.sign(request)).unwrap();
    let written = runtime.block_on(store.signatures_of(&signed.digest.to_string())).unwrap().remove(0).signature;
    (signed, written)
}

/// The committed chain of `keys.example/dev-ecdsa.pem` (leaf, root), DER.
fn dev_ecdsa_chain() -> Vec<Vec<u8>> {
    use base64::Engine as _;
    let pem = std::fs::read_to_string(Path::new(support::ROOT).join("tests/fixtures/certificates/dev-ecdsa.chain.pem"));
    let pem = pem.unwrap();
    let blocks =
        pem.split("-----END CERTIFICATE-----").filter_map(|block| block.split_once("-----BEGIN CERTIFICATE-----"));
    let base64_of = |(_, body): (&str, &str)| body.split_whitespace().collect::<String>();
    blocks.map(|b| base64::engine::general_purpose::STANDARD.decode(base64_of(b)).unwrap()).collect()
}

#[test]
fn pending_signs_are_confirmed_and_logged_if_the_registry_holds_them_and_removed_if_not() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let registry = Registry::start();
    let digest = push_image(&registry, "demo/app", "v1", "crash");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    // A first database signs for real: the registry now holds the signature.
    let first_dir = tempfile::tempdir().unwrap();
    let (signer, first_store) = service(&runtime, &registry, first_dir.path());
    let (signed, written) =
        sign_for_real(&runtime, (&signer, &first_store), &format!("{}/demo/app@{digest}", registry.host));

    // A crash after the registry write and before the confirmation leaves a pending row and no log entry;
    // a crash before the registry write leaves a pending row for a signature nobody stored.
    let dir = tempfile::tempdir().unwrap();
    let (service, store) = service(&runtime, &registry, dir.path());
    let crashed_row = runtime.block_on(store.begin_signature(&written)).unwrap();
    let lost = NewSignature { signature_b64: "bm90IHN0b3JlZA==".into(), ..never_written(&written) };
    let lost_row = runtime.block_on(store.begin_signature(&lost)).unwrap();

    // The lost write might still land while it is young: it waits out the grace period.
    let outcome = runtime.block_on(service.reconcile_pending(Duration::from_secs(3600))).unwrap();
    assert_eq!(outcome, Reconciled { confirmed: 1, removed: 0, deferred: 0, waiting: 1 });
    let outcome = runtime.block_on(service.reconcile_pending(Duration::ZERO)).unwrap();
    assert_eq!(outcome, Reconciled { confirmed: 0, removed: 1, deferred: 0, waiting: 0 });
    let rows = runtime.block_on(store.signatures_of(&digest)).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].id, crashed_row);
    assert!(!rows[0].pending);
    assert_eq!(rows[0].manifest_digest.as_deref(), Some(signed.manifest_digest.as_str()));
    assert!(rows.iter().all(|r| r.id != lost_row));
    // The reconciled sign is in the register, with the very entry the interrupted sign would have written.
    let entries = runtime.block_on(service.store().entries(0, 10)).unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].1, sign_entry(&written, signed.manifest_digest.as_str()));
    // The signing service logged its key version first; its sign entry is the very same bytes.
    assert_eq!(runtime.block_on(signer.store().entries(0, 10)).unwrap().last().map(|e| &e.1), Some(&entries[0].1));
}

/// `row` with its bundle referrer renamed to one no registry holds (a sign whose writes never landed).
fn never_written(row: &NewSignature) -> NewSignature {
    let artifacts = row
        .artifacts
        .iter()
        .map(|a| Artifact {
            manifest_digest: a.manifest_digest.as_ref().map(|_| format!("sha256:{}", "9".repeat(64))),
            ..a.clone()
        })
        .collect();
    NewSignature { artifacts, ..row.clone() }
}

#[test]
fn pending_signs_wait_while_the_registry_is_down() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let registry = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (service, store) = service(&runtime, &registry, dir.path());
    let row = NewSignature {
        kind: RecordKind::Signature,
        actor: "test".into(),
        source_addr: None,
        registry: registry.host.clone(),
        repository: "demo/app".into(),
        digest: format!("sha256:{}", "1".repeat(64)),
        identity: format!("{}/demo/app", registry.host),
        key_id: "dev-ecdsa".into(),
        key_version: 1,
        algorithm: "ecdsa-p256-sha256".into(),
        payload_digest: format!("sha256:{}", "2".repeat(64)),
        signature_b64: "c2ln".into(),
        signature_tag: format!("sha256-{}.sig", "1".repeat(64)),
        created_at: "2026-11-23T10:00:00Z".into(),
        artifacts: Vec::new(),
    };
    runtime.block_on(store.begin_signature(&row)).unwrap();
    drop(registry);
    let outcome = runtime.block_on(service.reconcile_pending(Duration::ZERO)).unwrap();
    assert_eq!(outcome, Reconciled { confirmed: 0, removed: 0, deferred: 1, waiting: 0 });
    assert_eq!(runtime.block_on(store.pending_signatures()).unwrap().len(), 1);
}

#[test]
fn pending_attestations_are_confirmed_and_logged_like_signatures() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let registry = Registry::start();
    let digest = push_image(&registry, "demo/att", "v1", "crash attest");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let first_dir = tempfile::tempdir().unwrap();
    let (attester, first_store) = service(&runtime, &registry, first_dir.path());
    let attested = runtime
        .block_on(attester.attest(AttestRequest {
            image: format!("{}/demo/att@{digest}", registry.host),
            key: "dev-ecdsa".into(),
            predicate_type: "https://cyclonedx.org/bom".into(),
            predicate: serde_json::json!({"bomFormat": "CycloneDX"}),
            actor: "test".into(),
            source_addr: None,
            recursive: false,
        }))
        .unwrap();
    let written = runtime.block_on(first_store.signatures_of(&digest)).unwrap().remove(0).signature;
    assert_eq!(written.kind, RecordKind::Attestation);
    assert_eq!(written.payload_digest, attested.envelope_digest.as_str());

    let dir = tempfile::tempdir().unwrap();
    let (service, store) = service(&runtime, &registry, dir.path());
    runtime.block_on(store.begin_signature(&written)).unwrap();
    let lost = NewSignature { payload_digest: format!("sha256:{}", "0".repeat(64)), ..written.clone() };
    runtime.block_on(store.begin_signature(&lost)).unwrap();
    let outcome = runtime.block_on(service.reconcile_pending(Duration::ZERO)).unwrap();
    assert_eq!(outcome, Reconciled { confirmed: 1, removed: 1, deferred: 0, waiting: 0 });
    let entries = runtime.block_on(service.store().entries(0, 10)).unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].1, stored_entry(&written, attested.manifest_digest.as_str()));
    let (_, logged) = runtime.block_on(attester.store().entries(0, 10)).unwrap().pop().unwrap();
    assert_eq!(logged, entries[0].1, "the attest itself logged the very same entry");
}

#[test]
fn a_sign_interrupted_between_its_three_concurrent_writes_waits_then_is_logged_with_the_artifacts_that_landed() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let registry = Registry::start();
    let digest = push_image(&registry, "demo/three", "v1", "crash between writes");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let first_dir = tempfile::tempdir().unwrap();
    let (signer, first_store) = service(&runtime, &registry, first_dir.path());
    let (signed, written) =
        sign_for_real(&runtime, (&signer, &first_store), &format!("{}/demo/three@{digest}", registry.host));
    let formats: Vec<&str> = written.artifacts.iter().map(|a| a.format.as_str()).collect();
    assert_eq!(formats, ["cosign", "bundle", "notation"]);
    assert_eq!(signed.artifacts.len(), 3);

    // The crash came after the `.sig` and bundle writes and before the third (the Notary signature referrer)
    // landed: the row planned a notation referrer the registry does not hold.
    let mut planned = written.clone();
    planned.artifacts[2].manifest_digest = Some(format!("sha256:{}", "7".repeat(64)));
    // And another one came after the bundle write only: its `.sig` layer never landed, nor its notation one.
    let mut bundle_only = NewSignature { signature_b64: "bm90IHN0b3JlZA==".into(), ..planned.clone() };
    bundle_only.artifacts.remove(0);

    let dir = tempfile::tempdir().unwrap();
    let (service, store) = service(&runtime, &registry, dir.path());
    let three = runtime.block_on(store.begin_signature(&planned)).unwrap();
    let one = runtime.block_on(store.begin_signature(&bundle_only)).unwrap();
    // While young, a write sent before the crash may still land: both wait.
    let outcome = runtime.block_on(service.reconcile_pending(Duration::from_secs(3600))).unwrap();
    assert_eq!(outcome, Reconciled { confirmed: 0, removed: 0, deferred: 0, waiting: 2 });
    let outcome = runtime.block_on(service.reconcile_pending(Duration::ZERO)).unwrap();
    assert_eq!(outcome, Reconciled { confirmed: 2, removed: 0, deferred: 0, waiting: 0 });

    let rows = runtime.block_on(store.signatures_of(&digest)).unwrap();
    let row = |id| rows.iter().find(|r| r.id == id).unwrap();
    assert!(!row(three).pending && !row(one).pending);
    assert_eq!(row(three).signature.artifacts, written.artifacts[..2], "the missing notation artifact is not listed");
    let bundle = written.artifacts[1].clone();
    assert_eq!(row(one).signature.artifacts, vec![bundle.clone()]);
    assert_eq!(row(one).manifest_digest, bundle.manifest_digest, "without a .sig layer, the bundle's manifest");

    // The register lists exactly what landed: the same entry the first sign wrote, and a bundle-only one.
    let entries = runtime.block_on(service.store().entries(0, 10)).unwrap();
    assert_eq!(entries.len(), 2);
    let logged = |bytes: &[u8]| serde_json::from_slice::<serde_json::Value>(bytes).unwrap();
    let by_signature =
        |sig: &str| entries.iter().map(|(_, e)| logged(e)).find(|e| e["details"]["signature"] == sig).unwrap();
    let first_entry = logged(&runtime.block_on(signer.store().entries(0, 10)).unwrap().pop().unwrap().1);
    let mut without_notation = first_entry.clone();
    without_notation["details"]["artifacts"].as_array_mut().unwrap().pop();
    assert_eq!(by_signature(&written.signature_b64), without_notation);
    assert_eq!(
        by_signature("bm90IHN0b3JlZA==")["details"]["artifacts"],
        serde_json::json!([{"format": "bundle", "manifest_digest": bundle.manifest_digest}])
    );
    let listed = &first_entry["details"]["artifacts"];
    assert_eq!(listed[0], serde_json::json!({"format": "cosign", "manifest_digest": signed.manifest_digest.as_str()}));
    assert_eq!(listed[2]["format"], "notation", "the uninterrupted sign listed all three: {listed}");
}
