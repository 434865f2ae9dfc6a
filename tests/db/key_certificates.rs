//! `[ca]` over the store, on both databases: a leaf is issued once, kept while more than a third of its
//! validity is left, renewed after (a new row, the later one in force), and a second server on the same
//! database serves the same CA certificate and leaf; a replaced CA key gets a CA certificate of its own and
//! the leaves are issued again; an Ed25519 CA key is refused.

use crate::support;

use std::path::Path;
use std::sync::Arc;

use notarium::config::{CaConfig, KeyConfig};
use notarium::keys::{FileSigner, KeyRing};
use notarium::oci::DistributionRegistry;
use notarium::service::{RegisterSettings, Service};
use support::test_database_url;
use time::{Duration, OffsetDateTime};

fn key_configs() -> Vec<KeyConfig> {
    ["dev-ecdsa", "dev-log"]
        .into_iter()
        .map(|id| KeyConfig::File {
            id: id.into(),
            path: Path::new(support::ROOT).join(format!("keys.example/{id}.pem")),
            certificate_chain: None,
        })
        .collect()
}

/// A service whose CA key is `ca-key.pem` in `keys`, on the test database of `data`.
fn service(runtime: &tokio::runtime::Runtime, keys: &Path, data: &Path) -> Service {
    let mut ring = KeyRing::default();
    for config in key_configs() {
        let KeyConfig::File { id, path, .. } = config else { unreachable!() };
        ring.insert(id.clone(), Arc::new(FileSigner::load(&id, &path).unwrap()));
    }
    ring.insert("ca", Arc::new(FileSigner::load("ca", &keys.join("ca-key.pem")).unwrap()));
    ring.reserve_for_ca("ca");
    let store = runtime.block_on(notarium::store::open(&test_database_url(data))).unwrap();
    let client = Arc::new(DistributionRegistry::with_insecure(Vec::<String>::new()));
    let _inside = runtime.enter();
    Service::new(ring, client, store, RegisterSettings { origin: "test/log".into(), key: None })
}

fn ca() -> CaConfig {
    toml::from_str("key = \"ca\"\nvalidity = \"90d\"").unwrap()
}

fn leaf_pem(service: &Service) -> String {
    service.keys().certificate_chain("dev-ecdsa", 1).unwrap().to_pem()
}

#[test]
fn a_leaf_is_kept_until_a_third_of_its_validity_is_left_then_renewed_and_replicas_agree() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let keys = tempfile::tempdir().unwrap();
    new_p256_key(&keys.path().join("ca-key.pem"));
    let data = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let first = service(&runtime, keys.path(), data.path());
    let now = OffsetDateTime::now_utc();
    let issue = |service: &Service, at| runtime.block_on(service.issue_key_certificates(&ca(), &key_configs(), at));

    let outcome = issue(&first, now).unwrap();
    assert_eq!(outcome.issued, ["dev-ecdsa@1"]);
    assert!(outcome.skipped.iter().any(|(key, _)| key == "dev-log@1"), "{outcome:?}");
    let issued = leaf_pem(&first);
    let ca_pem = first.keys().certificate_chain("ca", 1).unwrap().to_pem();

    // Fifty-nine days on, more than a third of ninety is left: kept, by this server and by a second one.
    let second = service(&runtime, keys.path(), data.path());
    for server in [&first, &second] {
        let outcome = issue(server, now + Duration::days(59)).unwrap();
        assert_eq!(outcome.kept, ["dev-ecdsa@1"], "{outcome:?}");
        assert_eq!(leaf_pem(server), issued);
        assert_eq!(server.keys().certificate_chain("ca", 1).unwrap().to_pem(), ca_pem);
    }

    // Sixty-one days on, less than a third is left: renewed, and the other server takes the new one.
    let outcome = issue(&first, now + Duration::days(61)).unwrap();
    assert_eq!(outcome.issued, ["dev-ecdsa@1"], "{outcome:?}");
    let renewed = leaf_pem(&first);
    assert_ne!(renewed, issued);
    assert!(renewed.ends_with(&ca_pem), "the renewed leaf hangs under the same CA certificate");
    assert_eq!(issue(&second, now + Duration::days(62)).unwrap().kept, ["dev-ecdsa@1"]);
    assert_eq!(leaf_pem(&second), renewed);

    // The CA key file replaced under the same id: a CA certificate of its own, and the leaf issued again.
    new_p256_key(&keys.path().join("ca-key.pem"));
    let third = service(&runtime, keys.path(), data.path());
    assert_eq!(issue(&third, now + Duration::days(62)).unwrap().issued, ["dev-ecdsa@1"]);
    let new_ca = third.keys().certificate_chain("ca", 1).unwrap().to_pem();
    assert_ne!(new_ca, ca_pem);
    assert!(leaf_pem(&third).ends_with(&new_ca));
}

#[test]
fn an_ed25519_ca_key_is_refused_by_name() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let keys = tempfile::tempdir().unwrap();
    std::fs::copy(Path::new(support::ROOT).join("keys.example/dev-ed25519.pem"), keys.path().join("ca-key.pem"))
        .unwrap();
    let data = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let service = service(&runtime, keys.path(), data.path());
    let now = OffsetDateTime::now_utc();
    let err = runtime.block_on(service.issue_key_certificates(&ca(), &key_configs(), now)).unwrap_err();
    assert!(err.to_string().contains("[ca] key \"ca\" is an Ed25519 key"), "{err}");
    assert!(service.keys().certificate_chain("dev-ecdsa", 1).is_none());
}

fn new_p256_key(path: &Path) {
    let out = std::process::Command::new("openssl")
        .args(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out"])
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success());
}
