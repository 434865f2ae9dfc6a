//! The policy dry-run on both databases (its images come from `log_index`, which each database reads its
//! own way): real pulls through a registry that notifies notarium, and a verify, inside the period; a pull
//! before it; a stricter candidate over `POST /v1/policies/dry-run` lists exactly the image it would newly
//! deny, and leaves out the one pulled before the period.

use crate::support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{Notarium, Registry, client, push_image, skopeo_pull};

const SECRET: &str = "db-dry-run-events-secret-7f3e";

fn policy(host: &str, keys: &str) -> String {
    format!("default: deny\npolicies:\n  - name: shop\n    images: [\"{host}/shop/*\"]\n    authorities: [{keys}]\n")
}

/// Waits until the register holds a pull of `digest` (the registry reports pulls asynchronously).
fn wait_for_pull(notarium: &Notarium, digest: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, text) = notarium.get_text("/v1/log/entries?start=0&end=1000");
        let page: Value = serde_json::from_str(&text).unwrap();
        let pulled = |e: &Value| e["entry"]["kind"] == "registry-pull" && e["entry"]["subject"]["digest"] == digest;
        if page["entries"].as_array().unwrap().iter().any(pulled) {
            return;
        }
        assert!(Instant::now() < deadline, "no pull entry for {digest}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_stricter_candidate_newly_denies_exactly_the_images_pulled_or_verified_in_the_period() {
    let port = support::free_port();
    let registry = Registry::start_notifying(port, SECRET);
    let host = registry.host.clone();
    let live = tempfile::tempdir().unwrap();
    std::fs::write(live.path().join("trust.yaml"), policy(&host, "{key: dev-ecdsa}, {key: dev-ed25519}")).unwrap();
    let config =
        format!("{}\n[events]\nregistry_secret_env = \"NOTARIUM_TEST_EVENTS_SECRET\"\n", support::EXAMPLE_KEYS);
    let listen = format!("127.0.0.1:{port}");
    let env = [
        ("NOTARIUM_TEST_EVENTS_SECRET", SECRET),
        ("NOTARIUM_POLICIES_DIR", live.path().to_str().unwrap()),
        ("NOTARIUM_LISTEN", listen.as_str()),
    ];
    let notarium = Notarium::start_with_config(&config, &[&host], &env);
    let image = |repo: &str, key: Option<&str>| {
        let digest = push_image(&registry, repo, "v1", repo);
        if let Some(key) = key {
            let (status, answer) = notarium.sign(&format!("{host}/{repo}@{digest}"), key);
            assert_eq!(status, 201, "{answer}");
        }
        (repo.to_owned(), digest)
    };
    let name = |(repo, digest): &(String, String)| format!("{host}/{repo}@{digest}");

    // Before the period: an image signed by key B, pulled. It would be denied too, but is out of the period.
    let before = image("shop/before", Some("dev-ed25519"));
    skopeo_pull(&format!("{host}/{}:v1", before.0));
    wait_for_pull(&notarium, &before.1);
    std::thread::sleep(Duration::from_millis(1100));
    let since = time::OffsetDateTime::now_utc();
    std::thread::sleep(Duration::from_millis(1100));

    // The period: key A (verified, not pulled), key B (pulled), unsigned (pulled).
    let (app, web, cart) =
        (image("shop/app", Some("dev-ecdsa")), image("shop/web", Some("dev-ed25519")), image("shop/cart", None));
    assert_eq!(notarium.verify_image(&name(&app))["allowed"], true);
    for pulled in [&web, &cart] {
        skopeo_pull(&format!("{host}/{}:v1", pulled.0));
        wait_for_pull(&notarium, &pulled.1);
    }

    let (admin, _) = notarium.create_token(&["--role", "admin"]);
    let since = since.replace_nanosecond(0).unwrap().format(&time::format_description::well_known::Rfc3339).unwrap();
    let body = json!({"files": {"trust.yaml": policy(&host, "{key: dev-ecdsa}")}, "since": since});
    let response =
        client().post(format!("{}/v1/policies/dry-run", notarium.url)).bearer_auth(&admin).json(&body).send().unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let answer: Value = response.json().unwrap();
    assert_eq!(answer["images"], 3, "app, web and cart; not the image pulled before the period: {answer}");
    assert_eq!(answer["newly_denied"], 1, "{answer}");
    let repositories = answer["repositories"].as_array().unwrap();
    let denied: Vec<&str> = (repositories.iter())
        .flat_map(|r| r["newly_denied"].as_array().unwrap())
        .map(|i| i["image"].as_str().unwrap())
        .collect();
    assert_eq!(denied, [name(&web)], "{answer}");
    let listed = |repo: &str| repositories.iter().any(|r| r["repository"] == format!("{host}/{repo}"));
    assert!(listed("shop/app") && listed("shop/cart") && !listed(&before.0), "{answer}");
}
