//! Running notarium in production: Prometheus metrics that promtool accepts after real traffic, a request
//! id on every log line (JSON logs parse), and SIGTERM in the middle of a burst of signs: unready first,
//! every request either completed and recorded or refused before any write, exit code 0.

use crate::support;

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use support::{Notarium, Registry};

fn promtool_check(text: &str) -> (bool, String) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (apt prometheus) is installed by scripts/install-test-deps.sh");
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn metrics_after_real_traffic_pass_promtool_and_count_what_happened() {
    let (registry, notarium, digest) = support::registry_notarium_and_image("ops/app", "v1", "metrics");
    let image = format!("{}/ops/app@{digest}", registry.host);
    assert_eq!(notarium.sign(&image, "dev-ecdsa").0, 201);
    assert_eq!(notarium.sign(&image, "dev-ecdsa").0, 200);
    assert_eq!(notarium.sign(&image, "nope").0, 404);
    let body =
        json!({"image": image, "key": "dev-ed25519", "predicate_type": "https://cyclonedx.org/bom", "predicate": {}});
    assert_eq!(notarium.post("/v1/attest", body.to_string()).0, 201);

    let (status, text) = notarium.get_text("/metrics");
    assert_eq!(status, 200);
    let (ok, report) = promtool_check(&text);
    assert!(ok, "promtool refused /metrics: {report}\n{text}");
    for expected in [
        r#"notarium_http_requests_total{method="POST",route="/v1/sign",status="201"} 1"#,
        r#"notarium_http_requests_total{method="POST",route="/v1/sign",status="200"} 1"#,
        r#"notarium_http_requests_total{method="POST",route="/v1/sign",status="404"} 1"#,
        r#"notarium_written_total{key="dev-ecdsa",kind="signature"} 1"#,
        r#"notarium_written_total{key="dev-ed25519",kind="attestation"} 1"#,
        r#"notarium_key_sign_duration_seconds_count{key="dev-ecdsa",backend="file"}"#,
        r#"notarium_registry_writes_total{outcome="already-there"} 1"#,
        "notarium_register_entries 5",
    ] {
        assert!(text.contains(expected), "missing {expected}:\n{text}");
    }
}

#[test]
fn every_log_line_of_a_request_carries_its_id_and_json_logs_parse() {
    let registry = Registry::start();
    let env = [("NOTARIUM_LOG_FORMAT", "json"), ("NOTARIUM_LOG", "info,tower_http=debug")];
    let notarium = Notarium::start_with(&[&registry.host], &env);
    let response = support::client()
        .get(format!("{}/v1/keys", notarium.url))
        .header("X-Request-Id", "req-test-4711")
        .send()
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "req-test-4711");
    let made = support::client().get(format!("{}/healthz", notarium.url)).send().unwrap();
    let made = made.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(made.len(), 36, "a UUID is made when the client sends none: {made}");
    std::thread::sleep(Duration::from_millis(200));

    let log = notarium.log();
    let lines: Vec<Value> = log
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let of = |id: &str| lines.iter().filter(|l| l.to_string().contains(id)).count();
    assert!(of("req-test-4711") >= 2, "request and response lines carry the id:\n{log}");
    assert!(of(&made) >= 2, "{log}");
    assert!(!log.contains("BEGIN PRIVATE KEY"), "{log}");

    let long = "x".repeat(5000);
    support::client().get(format!("{}/healthz", notarium.url)).header("X-Request-Id", &long).send().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let log = notarium.log();
    assert!(log.contains(&long[..128]) && !log.contains(&long[..129]), "a client's request id is bounded in the log");
}

#[test]
fn sigterm_during_a_burst_of_signs_finishes_or_refuses_each_and_exits_zero() {
    let registry = Registry::start();
    let mut notarium = Notarium::start_with(&[&registry.host], &[("NOTARIUM_SHUTDOWN_DRAIN_SECS", "1")]);
    let digests = support::push_many(&registry, "ops/burst", 200);
    let answers = Arc::new(Mutex::new(Vec::new()));
    let workers: Vec<_> = digests
        .chunks(25)
        .map(|chunk| {
            let (chunk, answers, url, host) =
                (chunk.to_vec(), answers.clone(), notarium.url.clone(), registry.host.clone());
            std::thread::spawn(move || {
                let http = reqwest::blocking::Client::builder().pool_max_idle_per_host(0).build().unwrap();
                for digest in chunk {
                    let body = json!({"image": format!("{host}/ops/burst@{digest}"), "key": "dev-ecdsa"});
                    let status = http.post(format!("{url}/v1/sign")).json(&body).send().map(|r| r.status().as_u16());
                    answers.lock().unwrap().push((digest, status.ok()));
                }
            })
        })
        .collect();
    while answers.lock().unwrap().len() < 20 {
        std::thread::sleep(Duration::from_millis(5));
    }
    notarium.terminate();
    std::thread::sleep(Duration::from_millis(300));
    let ready = support::client().get(format!("{}/readyz", notarium.url)).send().unwrap();
    assert_eq!(ready.status(), 503, "unready first, while requests are still served");
    let status = notarium.wait(Duration::from_secs(60));
    workers.into_iter().for_each(|w| w.join().unwrap());
    assert!(status.success(), "exit status {status}: {}", notarium.log());

    let answers = answers.lock().unwrap().clone();
    assert_eq!(answers.len(), 200);
    let completed: Vec<&String> = answers.iter().filter(|(_, s)| *s == Some(201)).map(|(d, _)| d).collect();
    assert!(completed.len() >= 20 && completed.len() < 200, "{} completed", completed.len());
    assert!(answers.iter().all(|(_, s)| s.is_none() || *s == Some(201)), "only 201s or refusals: {answers:?}");
    let rows = support::signature_rows(&notarium.database_url());
    assert_eq!(rows, completed.len() as i64, "one stored row per completed sign, none for refused ones");
    for (digest, status) in &answers {
        let signed = registry.manifest("ops/burst", &format!("{}.sig", digest.replace(':', "-"))).is_some();
        assert_eq!(signed, *status == Some(201), "{digest}: answered {status:?}, signature in registry: {signed}");
    }
}
