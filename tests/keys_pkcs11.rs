//! The pkcs11 backend against a real SoftHSM2 token: keys generated on the token (sensitive, not
//! extractable) sign through the API, skopeo and cosign accept the result with the public key read from
//! the token, new versions are picked up live, and broken keys fail alone with a named cause.

use crate::support;

use std::path::Path;

use support::{
    Cosign, Notarium, OPEN_WITH_BACKEND_KEYS, Registry, SoftHsm, push_image, signature_rows, skopeo_accepts,
};

const PIN_ENV: &str = "NOTARIUM_TEST_HSM_PIN";

fn hsm_with_keys() -> SoftHsm {
    let hsm = SoftHsm::new("notarium");
    hsm.generate("EC:prime256v1", "p256", "01");
    hsm.generate("EC:edwards25519", "ed25519", "01");
    hsm
}

fn start(hsm: &SoftHsm, registry: &Registry, extra_keys: &str) -> Notarium {
    let config = format!(
        "{OPEN_WITH_BACKEND_KEYS}{}{}{extra_keys}",
        hsm.key_config("hsm-p256", "p256", PIN_ENV),
        hsm.key_config("hsm-ed25519", "ed25519", PIN_ENV)
    );
    Notarium::start_with_config(
        &config,
        &[&registry.host],
        &[("SOFTHSM2_CONF", hsm.conf.to_str().unwrap()), (PIN_ENV, &hsm.pin)],
    )
}

#[test]
fn token_keys_sign_images_that_skopeo_and_cosign_accept_with_the_token_public_key() {
    let hsm = hsm_with_keys();
    let registry = Registry::start();
    let notarium = start(&hsm, &registry, "");
    let listed = hsm.private_keys();
    assert_eq!(listed.matches("Access:     sensitive, always sensitive, never extractable").count(), 2, "{listed}");
    let dir = tempfile::tempdir().unwrap();
    let cosign = Cosign::new();
    for (key, label, other) in [
        ("hsm-p256", "p256", "tests/fixtures/other-p256.pub"),
        ("hsm-ed25519", "ed25519", "tests/fixtures/other-ed25519.pub"),
    ] {
        let served = notarium.get_text(&format!("/v1/keys/{key}/public.pem")).1;
        let token_key = dir.path().join(format!("{label}.pub"));
        std::fs::write(&token_key, hsm.public_key_pem(label, "01")).unwrap();
        assert_eq!(served, std::fs::read_to_string(&token_key).unwrap(), "served key is not the token's");

        let digest = push_image(&registry, "hsm/app", label, label);
        let image = format!("{}/hsm/app@{digest}", registry.host);
        let (status, body) = notarium.sign(&image, key);
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["key_version"], 1);
        let (ok, log) = skopeo_accepts(&registry, &image, &token_key, "matchRepository");
        assert!(ok, "skopeo refused {key}: {log}");
        let (ok, log) = cosign.verify(&image, &token_key);
        assert!(ok, "cosign refused {key}: {log}");
        let wrong = Path::new(support::ROOT).join(other);
        assert!(!skopeo_accepts(&registry, &image, &wrong, "matchRepository").0);
        assert!(!cosign.verify(&image, &wrong).0);
    }
    assert_eq!(signature_rows(&notarium.database_url()), 2);
}

#[test]
fn a_new_key_version_on_the_token_is_used_without_restart_and_old_signatures_keep_verifying() {
    let hsm = hsm_with_keys();
    let registry = Registry::start();
    let notarium = start(&hsm, &registry, "");
    let first = format!("{}/hsm/rotate@{}", registry.host, push_image(&registry, "hsm/rotate", "one", "one"));
    assert_eq!(notarium.sign(&first, "hsm-p256").1["key_version"], 1);

    hsm.generate("EC:prime256v1", "p256", "02");
    let second = format!("{}/hsm/rotate@{}", registry.host, push_image(&registry, "hsm/rotate", "two", "two"));
    let (status, body) = notarium.sign(&second, "hsm-p256");
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["key_version"], 2);
    let (status, body) = notarium.sign(&second, "hsm-p256@1");
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["key_version"], 1);

    let keys: serde_json::Value = serde_json::from_str(&notarium.get_text("/v1/keys").1).unwrap();
    let versions: Vec<u64> = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["id"] == "hsm-p256")
        .map(|k| k["version"].as_u64().unwrap())
        .collect();
    assert_eq!(versions, [1, 2]);
    let dir = tempfile::tempdir().unwrap();
    let cosign = Cosign::new();
    let v1 = notarium.public_key_file("hsm-p256@1", dir.path());
    let v2 = notarium.public_key_file("hsm-p256@2", dir.path());
    assert!(cosign.verify(&first, &v1).0, "version 1 signature no longer verifies");
    assert!(cosign.verify(&second, &v2).0);
    assert!(!cosign.verify(&first, &v2).0, "version 2 must not verify version 1's signature");
}

#[test]
fn broken_token_keys_fail_alone_with_a_named_cause_and_no_secret() {
    let hsm = hsm_with_keys();
    let second = hsm.add_token("second");
    second.generate("EC:prime256v1", "p256", "01");
    let registry = Registry::start();
    let wrong_pin_env = "NOTARIUM_TEST_WRONG_PIN";
    let extra = format!(
        "{}{}{}",
        second.key_config("wrong-pin", "p256", wrong_pin_env),
        hsm.key_config("no-such-label", "absent", PIN_ENV),
        hsm.key_config("no-token", "p256", PIN_ENV)
            .replace("token_label = \"notarium\"", "token_label = \"absent-token\""),
    );
    let config = format!("{OPEN_WITH_BACKEND_KEYS}{}{extra}", hsm.key_config("hsm-p256", "p256", PIN_ENV));
    let wrong_pin = "9999-wrong-pin";
    let notarium = Notarium::start_with_config(
        &config,
        &[&registry.host],
        &[("SOFTHSM2_CONF", hsm.conf.to_str().unwrap()), (PIN_ENV, &hsm.pin), (wrong_pin_env, wrong_pin)],
    );
    let digest = push_image(&registry, "hsm/faults", "v1", "faults");
    let image = format!("{}/hsm/faults@{digest}", registry.host);
    for (key, cause) in [
        ("wrong-pin", "PinIncorrect"),
        ("no-such-label", "no private key with label \"absent\""),
        ("no-token", "no token labelled \"absent-token\""),
    ] {
        let (status, body) = notarium.sign(&image, key);
        assert_eq!(status, 503, "{key}: {body}");
        assert_eq!(body["type"], "https://notarium.dev/problems/key-backend-unavailable");
        let detail = body["detail"].as_str().unwrap();
        assert!(detail.contains("pkcs11") && detail.contains(cause), "{key}: {detail}");
        assert!(!detail.contains(&hsm.pin) && !detail.contains(wrong_pin), "{detail}");
    }
    let (_, again) = notarium.sign(&image, "wrong-pin");
    assert!(again["detail"].as_str().unwrap().contains("not retrying"), "a refused PIN was tried again: {again}");
    assert_eq!(signature_rows(&notarium.database_url()), 0);
    let (status, body) = notarium.sign(&image, "hsm-p256");
    assert_eq!(status, 201, "a healthy key must keep signing: {body}");
    // Unready, named only to an admin.
    let (status, ready) = notarium.get_text("/readyz");
    assert_eq!(status, 503);
    assert!(!ready.contains("wrong-pin") && !ready.contains("pkcs11"), "{ready}");
    let (admin, _) = notarium.create_token(&["--role", "admin"]);
    let response = support::client().get(format!("{}/readyz", notarium.url)).bearer_auth(admin).send().unwrap();
    assert_eq!(response.status().as_u16(), 503);
    let ready = response.text().unwrap();
    assert!(ready.contains("wrong-pin") && ready.contains("no-token") && !ready.contains("hsm-p256:"), "{ready}");
    let log = notarium.log();
    assert!(!log.contains(&hsm.pin) && !log.contains(wrong_pin), "a PIN reached the log");
}
