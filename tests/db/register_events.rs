//! Registry notifications become register entries: a real CNCF distribution registry notifies notarium,
//! a pull with skopeo shows up as a pull entry with the right digest, retried events are logged once, and
//! deliveries without the shared secret are refused.

use crate::support;

use std::time::{Duration, Instant};

use support::{Notarium, Registry, client, push_image, skopeo_pull};

const SECRET: &str = "registry-events-secret-5e1f";

fn entries(notarium: &Notarium) -> Vec<serde_json::Value> {
    let (_, text) = notarium.get_text("/v1/log/entries?start=0&end=1000");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["entries"].as_array().unwrap().iter().map(|e| e["entry"].clone()).collect()
}

fn post_events(notarium: &Notarium, secret: &str, body: &str) -> (u16, serde_json::Value) {
    let response = client()
        .post(format!("{}/v1/events/registry", notarium.url))
        .header("Content-Type", "application/vnd.docker.distribution.events.v1+json")
        .header("Authorization", format!("Bearer {secret}"))
        .body(body.to_owned())
        .send()
        .unwrap();
    let status = response.status().as_u16();
    (status, serde_json::from_str(&response.text().unwrap()).unwrap())
}

#[test]
fn registry_pushes_and_pulls_are_logged_once_each_with_digest_actor_and_source() {
    let config = concat!("[[keys]]\nid = \"dev-ed25519\"\nbackend = \"file\"\npath = \"", env!("CARGO_MANIFEST_DIR"));
    let config = format!(
        "{config}/keys.example/dev-ed25519.pem\"\n\n\
                  [events]\nregistry_secret_env = \"NOTARIUM_TEST_EVENTS_SECRET\"\n"
    );
    let notarium = Notarium::start_with_config(&config, &[], &[("NOTARIUM_TEST_EVENTS_SECRET", SECRET)]);
    let registry = Registry::start_with(&format!(
        "notifications:\n  endpoints:\n    - name: notarium\n      url: {}/v1/events/registry\n      headers:\n        Authorization: [\"Bearer {SECRET}\"]\n      timeout: 2s\n      threshold: 3\n      backoff: 1s\n",
        notarium.url
    ));
    let digest = push_image(&registry, "events/app", "v1", "events");
    skopeo_pull(&format!("{}/events/app:v1", registry.host));

    let deadline = Instant::now() + Duration::from_secs(30);
    let pull = loop {
        let found = entries(&notarium)
            .into_iter()
            .find(|e| e["kind"] == "registry-pull" && e["subject"]["digest"] == digest.as_str());
        if let Some(pull) = found {
            break pull;
        }
        assert!(Instant::now() < deadline, "no pull entry for {digest}: {:?}", entries(&notarium));
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(pull["subject"]["repository"], "events/app");
    assert_eq!(pull["subject"]["registry"], registry.host.as_str());
    assert!(pull["actor"]["addr"].as_str().is_some_and(|a| a.starts_with("127.0.0.1")), "{pull}");
    // distribution 2.8 reports skopeo's pulls with an empty user agent; the field is kept as sent.
    assert!(pull["actor"]["user_agent"].is_string(), "{pull}");
    assert!(pull["details"]["event_id"].as_str().is_some_and(|id| !id.is_empty()));
    assert!(
        entries(&notarium).iter().any(|e| e["kind"] == "registry-push" && e["subject"]["digest"] == digest.as_str())
    );

    // A retried delivery (same event id) is logged once; a wrong secret changes nothing.
    let envelope = serde_json::json!({"events": [{
        "id": "retried-event-1", "timestamp": "2026-11-23T12:00:00Z", "action": "pull",
        "target": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest, "repository": "events/app"},
        "request": {"addr": "10.0.0.7:4242", "host": registry.host, "method": "GET", "useragent": "kubelet/1.31"},
        "actor": {"name": "deployer"}, "source": {"addr": "registry-0:5000"},
    }]})
    .to_string();
    let before = entries(&notarium).len();
    assert_eq!(post_events(&notarium, SECRET, &envelope).1["recorded"], 1);
    let (status, again) = post_events(&notarium, SECRET, &envelope);
    assert_eq!((status, again["duplicates"].as_u64()), (200, Some(1)), "{again}");
    let (status, problem) = post_events(&notarium, "wrong-secret", &envelope.replace("retried-event-1", "other"));
    assert_eq!(
        (status, problem["type"].as_str()),
        (401, Some("https://notarium.dev/problems/registry-events-unauthorized"))
    );
    let (status, _) = post_events(&notarium, SECRET, "{not json");
    assert_eq!(status, 400);
    let after = entries(&notarium);
    let retried: Vec<_> = after.iter().filter(|e| e["details"]["event_id"] == "retried-event-1").collect();
    assert_eq!(retried.len(), 1);
    assert_eq!(retried[0]["actor"]["user_agent"], "kubelet/1.31");
    assert!(after.len() > before && after.iter().all(|e| e["details"]["event_id"] != "other"));
    assert!(!notarium.log().contains(SECRET), "the registry secret reached the log");
}
