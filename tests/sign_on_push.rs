//! Sign-on-push against a real CNCF distribution registry that notifies notarium: a push a
//! `[[sign_on_push]]` rule matches is signed by the queue's workers with no CI call (cosign verifies it), other
//! pushes are not; `GET /v1/status` answers pending then signed; a rule's required attestation holds the sign
//! back until it is attached; `kill -9` mid-queue and a restart sign every queued image exactly once; hostile
//! deliveries queue nothing.

use crate::support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{Cosign, EXAMPLE_KEYS, Notarium, Registry, client, push_image, push_many};

const SECRET: &str = "sign-on-push-secret-81c2";
const PREDICATE: &str = "https://slsa.dev/provenance/v1";

/// A registry notifying a notarium on `port` (chosen first: each names the other).
fn registry_notifying(port: u16) -> Registry {
    Registry::start_notifying(port, SECRET)
}

fn config(host: &str, workers: usize) -> String {
    format!(
        "{}\n[events]\nregistry_secret_env = \"NOTARIUM_TEST_EVENTS_SECRET\"\n\n\
         [sign_queue]\nworkers = {workers}\nbackoff_secs = 1\nmax_backoff_secs = 2\nlease_secs = 10\n\n\
         [[sign_on_push]]\nname = \"team\"\nrepositories = [\"{host}/team/*\"]\nkey = \"dev-ecdsa\"\n\n\
         [[sign_on_push]]\nname = \"gated\"\nrepositories = [\"{host}/gated/*\"]\ntags = [\"v*\"]\n\
         key = \"dev-ecdsa\"\nrequire = [\"{PREDICATE}\"]\n",
        EXAMPLE_KEYS.trim_start()
    )
}

fn start(registry: &Registry, port: u16, workers: usize) -> Notarium {
    let listen = format!("127.0.0.1:{port}");
    Notarium::start_with_config(
        &config(&registry.host, workers),
        &[&registry.host],
        &[("NOTARIUM_TEST_EVENTS_SECRET", SECRET), ("NOTARIUM_LISTEN", &listen)],
    )
}

fn status(notarium: &Notarium, image: &str) -> (u16, Value) {
    let response = client().get(format!("{}/v1/status", notarium.url)).query(&[("image", image)]).send().unwrap();
    let code = response.status().as_u16();
    (code, response.json().unwrap())
}

/// The state of the one rule's job for `image` (`None` while no job is there).
fn state(notarium: &Notarium, image: &str) -> Option<String> {
    let (code, answer) = status(notarium, image);
    assert_eq!(code, 200, "{answer}");
    answer["rules"].as_array().unwrap().first().map(|r| r["state"].as_str().unwrap().to_owned())
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn entries(notarium: &Notarium) -> Vec<Value> {
    let (_, text) = notarium.get_text("/v1/log/entries?start=0&end=1000");
    let v: Value = serde_json::from_str(&text).unwrap();
    v["entries"].as_array().unwrap().iter().map(|e| e["entry"].clone()).collect()
}

fn logged(notarium: &Notarium, kind: &str, digest: &str) -> usize {
    entries(notarium).iter().filter(|e| e["kind"] == kind && e["subject"]["digest"] == digest).count()
}

/// The layers of `digest`'s `.sig` manifest in `repo` (0 when there is none).
fn signature_layers(registry: &Registry, repo: &str, digest: &str) -> usize {
    let tag = format!("{}.sig", digest.replace(':', "-"));
    registry
        .manifest(repo, &tag)
        .map_or(0, |m| serde_json::from_slice::<Value>(&m).unwrap()["layers"].as_array().unwrap().len())
}

/// A registry notifying a notarium with `workers` queue workers.
fn notifying_pair(workers: usize) -> (Registry, Notarium) {
    let port = support::free_port();
    let registry = registry_notifying(port);
    let notarium = start(&registry, port, workers);
    (registry, notarium)
}

/// A registry and notarium (with `workers`), and an image pushed as `gated/app:TAG`, whose job is queued.
fn gated_push(workers: usize, tag: &str) -> (Registry, Notarium, String) {
    let (registry, notarium) = notifying_pair(workers);
    let digest = push_image(&registry, "gated/app", tag, &format!("gated app {tag}"));
    let image = format!("{}/gated/app@{digest}", registry.host);
    wait_for("the gated job", || state(&notarium, &image).is_some());
    (registry, notarium, digest)
}

/// Attaches the provenance the gated rule requires, through notarium.
fn attest_provenance(notarium: &Notarium, image: &str) {
    let attest = json!({"image": image, "key": "dev-ecdsa", "predicate_type": PREDICATE,
                        "predicate": support::slsa_predicate("https://github.com/acme/app")});
    let (code, _, answer) = notarium.post("/v1/attest", attest.to_string());
    assert_eq!(code, 201, "{answer}");
}

#[test]
fn a_matching_push_is_signed_without_a_ci_call_and_status_goes_from_pending_to_signed() {
    // Held back by its rule's required attestation: pending, with the reason, until it is attached.
    let (registry, notarium, gated) = gated_push(2, "v1");
    let host = registry.host.clone();
    let gated_image = format!("{host}/gated/app@{gated}");
    let (_, answer) = status(&notarium, &gated_image);
    let rule = &answer["rules"][0];
    assert_eq!((rule["rule"].as_str(), rule["state"].as_str()), (Some("gated"), Some("pending")), "{answer}");
    assert_eq!(rule["tag"], "v1");
    wait_for("the wait's reason", || {
        status(&notarium, &gated_image).1["rules"][0]["reason"].as_str().is_some_and(|r| r.contains(PREDICATE))
    });
    assert_eq!(signature_layers(&registry, "gated/app", &gated), 0, "signed before its attestation");

    attest_provenance(&notarium, &gated_image);
    wait_for("the gated sign", || state(&notarium, &gated_image).as_deref() == Some("signed"));

    // A plain matching push: signed within seconds; cosign verifies it with notarium's public key.
    let pushed = Instant::now();
    let app = push_image(&registry, "team/app", "latest", "team app");
    let app_image = format!("{host}/team/app@{app}");
    wait_for("the team sign", || state(&notarium, &app_image).as_deref() == Some("signed"));
    eprintln!("push to signed: {:?}", pushed.elapsed());
    let (_, answer) = status(&notarium, &app_image);
    assert!(answer["rules"][0]["log_index"].is_u64(), "{answer}");
    assert_eq!(answer["rules"][0]["attempts"], 1, "{answer}");
    let key_dir = tempfile::tempdir().unwrap();
    let public_key = notarium.public_key_file("dev-ecdsa", key_dir.path());
    let (ok, stderr) = Cosign::new().verify(&format!("{host}/team/app:latest"), &public_key);
    assert!(ok, "cosign verify: {stderr}");
    let sign = entries(&notarium).into_iter().find(|e| e["kind"] == "sign" && e["subject"]["digest"] == app.as_str());
    assert_eq!(sign.unwrap()["actor"]["name"], "sign-on-push:team");

    // Outside every rule (another repository; a tag the gated rule leaves out): nothing is queued or signed.
    let other = push_image(&registry, "other/app", "v1", "other app");
    let untagged = push_image(&registry, "gated/app", "latest", "gated, not a v tag");
    wait_for("the other pushes' entries", || {
        logged(&notarium, "registry-push", &other) > 0 && logged(&notarium, "registry-push", &untagged) > 0
    });
    for (repo, digest) in [("other/app", &other), ("gated/app", &untagged)] {
        assert_eq!(state(&notarium, &format!("{host}/{repo}@{digest}")), None);
        assert_eq!(signature_layers(&registry, repo, digest), 0);
    }
    // notarium's own .sig and .att pushes were notified too, and queued nothing.
    let signed_total = entries(&notarium).iter().filter(|e| e["kind"] == "sign").count();
    assert_eq!(signed_total, 2);

    let (_, metrics) = notarium.get_text("/metrics");
    assert!(metrics.contains("notarium_sign_queue_jobs{state=\"signed\"}"), "{metrics}");
    assert!(metrics.contains("notarium_sign_queue_oldest_pending_seconds"), "{metrics}");
}

#[test]
fn bad_references_are_400_and_hostile_deliveries_queue_nothing() {
    let (registry, notarium) = notifying_pair(1);
    let host = registry.host.clone();
    for bad in ["not a reference", "team/app:latest", &format!("{host}/team/app:latest")] {
        let (code, answer) = status(&notarium, bad);
        assert_eq!(code, 400, "{bad}: {answer}");
    }
    let digest = format!("sha256:{}", "c".repeat(64));
    let event = |id: &str, repository: &str, tag: &str| {
        json!({"id": id, "action": "push",
               "target": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "repository": repository,
                          "tag": tag, "digest": digest},
               "request": {"host": host}})
    };
    let post = |body: String| {
        client()
            .post(format!("{}/v1/events/registry", notarium.url))
            .header("Authorization", format!("Bearer {SECRET}"))
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    // Outside the rules, signature tags, a wrong shape, a body over the cap.
    let envelope = json!({"events": [
        event("h1", "elsewhere/app", "v1"),
        event("h2", "team/app", &format!("{}.sig", digest.replace(':', "-"))),
        event("h3", "team/app", &digest.replace(':', "-")),
        event("h4", "team/../app", "v1"),
    ]});
    assert_eq!(post(envelope.to_string()), 200);
    assert_eq!(post(json!({"events": [{"id": "h5", "action": "push", "target": [1]}]}).to_string()), 400);
    let huge = json!({"events": [event("h6", "team/app", &"v".repeat(2 * 1024 * 1024))]});
    assert_eq!(post(huge.to_string()), 413);
    assert_eq!(state(&notarium, &format!("{host}/team/app@{digest}")), None);
    assert_eq!(state(&notarium, &format!("{host}/elsewhere/app@{digest}")), None);
    let (_, metrics) = notarium.get_text("/metrics");
    assert!(!metrics.contains("notarium_sign_queue_jobs{state=\"pending\"} 1"), "{metrics}");
}

#[test]
fn kill_9_mid_queue_then_a_restart_signs_every_queued_image_exactly_once() {
    const IMAGES: usize = 8;
    let port = support::free_port();
    let registry = registry_notifying(port);
    let mut notarium = start(&registry, port, 1);
    let host = registry.host.clone();
    let digests = push_many(&registry, "team/many", IMAGES);
    let images: Vec<String> = digests.iter().map(|d| format!("{host}/team/many@{d}")).collect();
    let signed =
        |notarium: &Notarium| images.iter().filter(|image| state(notarium, image).as_deref() == Some("signed")).count();
    wait_for("the first queued sign", || signed(&notarium) > 0);
    notarium.kill();
    let before = images.len() - images.iter().filter(|i| state_after_kill(&registry, i)).count();
    assert!(before > 0, "the kill must land while jobs are still queued");

    let data_dir = std::mem::replace(&mut notarium.data_dir, tempfile::tempdir().unwrap());
    let path = data_dir.path().join("notarium.toml");
    let listen = format!("127.0.0.1:{port}");
    let notarium = Notarium::start_in(
        data_dir,
        &[&host],
        &[
            ("NOTARIUM_TEST_EVENTS_SECRET", SECRET),
            ("NOTARIUM_LISTEN", &listen),
            ("NOTARIUM_CONFIG", path.to_str().unwrap()),
            // What the kill left pending is settled soon after the restart, not after the default 3 minutes.
            ("NOTARIUM_PENDING_GRACE_SECS", "2"),
        ],
    );
    wait_for("every queued sign after the restart", || signed(&notarium) == IMAGES);
    for digest in &digests {
        assert_eq!(signature_layers(&registry, "team/many", digest), 1, "{digest}");
        wait_for("the sign entry", || logged(&notarium, "sign", digest) > 0);
        assert_eq!(logged(&notarium, "sign", digest), 1, "{digest}");
    }
}

/// Whether `image`'s signature is in the registry (read there, the server being down).
fn state_after_kill(registry: &Registry, image: &str) -> bool {
    let (_, digest) = image.split_once('@').unwrap();
    signature_layers(registry, "team/many", digest) > 0
}

/// Two replicas on one PostgreSQL database, each notified of every push (the registry has an endpoint for
/// each), each enqueuing and claiming from the one queue: every image is signed once, by one of them.
#[test]
fn two_postgres_replicas_claiming_from_one_queue_sign_each_image_once() {
    const IMAGES: usize = 12;
    let database_url = support::Postgres::shared().database();
    let ports = [support::free_port(), support::free_port()];
    let endpoint = |name: &str, port: u16| {
        format!(
            "    - name: {name}\n      url: http://127.0.0.1:{port}/v1/events/registry\n      headers:\n        Authorization: [\"Bearer {SECRET}\"]\n      timeout: 2s\n      threshold: 3\n      backoff: 1s\n"
        )
    };
    let registry = Registry::start_with(&format!(
        "notifications:\n  endpoints:\n{}{}",
        endpoint("replica-a", ports[0]),
        endpoint("replica-b", ports[1])
    ));
    let host = registry.host.clone();
    let replicas = ports.map(|port| {
        let listen = format!("127.0.0.1:{port}");
        Notarium::start_with_config(
            &config(&host, 2),
            &[&host],
            &[
                ("NOTARIUM_TEST_EVENTS_SECRET", SECRET),
                ("NOTARIUM_LISTEN", &listen),
                ("NOTARIUM_DATABASE_URL", &database_url),
            ],
        )
    });
    let digests = push_many(&registry, "team/replicated", IMAGES);
    for digest in &digests {
        let image = format!("{host}/team/replicated@{digest}");
        wait_for("every sign", || state(&replicas[0], &image).as_deref() == Some("signed"));
        let (_, answer) = status(&replicas[1], &image);
        assert_eq!(answer["rules"].as_array().unwrap().len(), 1, "one job per image and rule: {answer}");
        assert_eq!(signature_layers(&registry, "team/replicated", digest), 1, "{digest}");
        assert_eq!(logged(&replicas[0], "sign", digest), 1, "{digest}");
    }
    let signed_by = replicas.each_ref().map(|r| r.log().matches("sign-on-push: signed").count());
    assert_eq!(signed_by.iter().sum::<usize>(), IMAGES, "{signed_by:?}");
    eprintln!("jobs signed by each replica: {signed_by:?}");
}

/// A job whose signature is already in the registry (as after a crash between the registry write and its
/// confirmation, or a CI sign first) writes nothing more: the sign path finds it and the job is signed.
#[test]
fn a_job_whose_signature_is_already_there_writes_no_second_one() {
    let (registry, notarium, digest) = gated_push(1, "v2");
    let host = registry.host.clone();
    let image = format!("{host}/gated/app@{digest}");
    let (code, answer) = notarium.sign(&format!("{host}/gated/app:v2@{digest}"), "dev-ecdsa");
    assert_eq!(code, 201, "{answer}");
    attest_provenance(&notarium, &image);
    wait_for("the job", || state(&notarium, &image).as_deref() == Some("signed"));
    let (_, answer) = status(&notarium, &image);
    assert!(answer["rules"][0].get("log_index").is_none(), "a second sign was logged: {answer}");
    assert_eq!(signature_layers(&registry, "gated/app", &digest), 1);
    assert_eq!(logged(&notarium, "sign", &digest), 1);
}

/// A job whose rule was removed from the configuration (and the server restarted) fails, naming the rule,
/// instead of signing under a rule no longer in force.
#[test]
fn a_job_whose_rule_was_removed_fails_naming_it() {
    let (registry, mut notarium, digest) = gated_push(1, "v3");
    let image = format!("{}/gated/app@{digest}", registry.host);
    notarium.kill();
    let data_dir = std::mem::replace(&mut notarium.data_dir, tempfile::tempdir().unwrap());
    let path = data_dir.path().join("notarium.toml");
    let without_gated =
        config(&registry.host, 1).split("[[sign_on_push]]\nname = \"gated\"").next().unwrap().to_owned();
    std::fs::write(&path, without_gated).unwrap();
    let notarium = Notarium::start_in(
        data_dir,
        &[&registry.host],
        &[("NOTARIUM_TEST_EVENTS_SECRET", SECRET), ("NOTARIUM_CONFIG", path.to_str().unwrap())],
    );
    wait_for("the job to fail", || state(&notarium, &image).as_deref() == Some("failed"));
    let (_, answer) = status(&notarium, &image);
    assert_eq!(answer["rules"][0]["reason"], "rule \"gated\" is no longer configured", "{answer}");
    assert_eq!(signature_layers(&registry, "gated/app", &digest), 0);
}

/// `notarium serve` with a broken rule does not start, and says which rule and which field.
#[test]
fn a_rule_with_an_unknown_key_stops_the_start_naming_the_rule_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notarium.toml");
    let broken = config("registry.example", 1).replace("key = \"dev-ecdsa\"\nrequire", "key = \"nope\"\nrequire");
    std::fs::write(&path, broken).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_notarium"))
        .arg("serve")
        .env("NOTARIUM_CONFIG", &path)
        .env("NOTARIUM_LISTEN", "127.0.0.1:0")
        .env("NOTARIUM_DATA_DIR", dir.path())
        .env_remove("NOTARIUM_DATABASE_URL")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("[[sign_on_push]] #2 (\"gated\") key: \"nope\" is not one of the [[keys]]"), "{stderr}");
}

/// Attests `repo@digest` with `predicate_type` through notarium, then deletes the cosign `.att` manifest it
/// wrote: the attestation is left only as a Sigstore bundle referrer, listed in the fallback `sha256-<hex>`
/// index (this registry has no referrers API), as cosign 3 and oras leave one.
fn attest_as_a_referrer_only(registry: &Registry, notarium: &Notarium, repo: &str, digest: &str, predicate_type: &str) {
    let predicate = match predicate_type {
        PREDICATE => support::slsa_predicate("https://github.com/acme/app"),
        _ => json!({"passed": true}),
    };
    let image = format!("{}/{repo}@{digest}", registry.host);
    let attest = json!({"image": image, "key": "dev-ecdsa", "predicate_type": predicate_type, "predicate": predicate});
    let (code, _, answer) = notarium.post("/v1/attest", attest.to_string());
    assert_eq!(code, 201, "{answer}");
    let tag = format!("{}.att", digest.replace(':', "-"));
    let manifest = registry.manifest(repo, &tag).unwrap();
    registry.delete_manifest(repo, &support::sha256_digest(&manifest));
    assert!(registry.manifest(repo, &tag).is_none(), "no .att tag is left");
    assert!(registry.has_fallback_tag(repo, digest), "the bundle referrer is listed");
}

/// A rule's required attestation is looked for where verification finds attestations, the bundle referrers
/// too: one of another predicate type keeps the job pending, naming the one it waits for; the required one,
/// found only as a referrer, lets the sign go ahead.
#[test]
fn a_required_attestation_found_only_as_a_bundle_referrer_lets_the_sign_go_ahead() {
    let (registry, notarium) = notifying_pair(1);
    let host = registry.host.clone();
    // Each image is attested under a tag the gated rule leaves out, then tagged `v*`: its job is queued
    // with the referrer already there.
    let mut gated = Vec::new();
    for (n, predicate_type) in [(1, "https://example.com/test-report/v1"), (2, PREDICATE)] {
        let digest = push_image(&registry, "gated/app", &format!("build-{n}"), &format!("gated app {n}"));
        attest_as_a_referrer_only(&registry, &notarium, "gated/app", &digest, predicate_type);
        assert_eq!(push_image(&registry, "gated/app", &format!("v{n}"), &format!("gated app {n}")), digest);
        gated.push((format!("{host}/gated/app@{digest}"), digest));
    }
    let [(other_image, other), (provenance_image, provenance)] = &gated[..] else { unreachable!() };

    wait_for("the provenance's sign", || state(&notarium, provenance_image).as_deref() == Some("signed"));
    assert_eq!(signature_layers(&registry, "gated/app", provenance), 1);
    wait_for("the other's reason", || {
        status(&notarium, other_image).1["rules"][0]["reason"].as_str().is_some_and(|r| r.contains(PREDICATE))
    });
    assert_eq!(state(&notarium, other_image).as_deref(), Some("pending"));
    assert_eq!(signature_layers(&registry, "gated/app", other), 0, "signed without its attestation");
}
