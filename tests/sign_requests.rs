//! The requests one sign makes to CNCF distribution 2.8 (no referrers API, no single-POST upload), read from
//! the registry's log (issue 19): no HEAD before a new blob, no chunked upload, no read-back of a manifest
//! written by digest, the empty config `{}` (the `.sig` manifest's too) uploaded once per repository, the `.sig` tag read once before its
//! write and once after (the re-read is what catches a writer outside notarium), the fallback index likewise;
//! and a second sign with the same key writes no manifest in any format.

use crate::support;

use serde_json::json;
use support::{Notarium, Registry, push_many};

const EMPTY_CONFIG: &str = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";

/// Signs `image` in both layouts, which must answer `status`; the answer.
fn sign(notarium: &Notarium, image: &str, status: u16) -> serde_json::Value {
    let body = json!({"image": image, "key": "dev-ecdsa", "formats": ["cosign", "bundle"]});
    let (answered, _, answer) = notarium.post("/v1/sign", body.to_string());
    assert_eq!(answered, status, "{answer}");
    answer
}

/// The requests logged from `before` on, in the log's order (each logged once answered), each as
/// `METHOD what` where `what` names the kind of target.
fn logged(registry: &Registry, before: usize, image: &str) -> Vec<String> {
    let (hex, image) = (image.trim_start_matches("sha256:"), image.to_owned());
    registry.requests()[before..]
        .iter()
        .map(|request| {
            let (method, uri) = request.split_once(' ').unwrap();
            let what = match uri.split_once("/v2/req/app/").unwrap().1 {
                u if u == format!("manifests/{image}") => "the image".to_owned(),
                u if u == format!("manifests/sha256-{hex}.sig") => ".sig tag".to_owned(),
                u if u == format!("manifests/sha256-{hex}") => "fallback tag".to_owned(),
                u if u.starts_with("manifests/sha256:") => "manifest by digest".to_owned(),
                u if u.starts_with("blobs/uploads/") && u.contains(EMPTY_CONFIG) => "upload of {}".to_owned(),
                u if u.starts_with("blobs/uploads/") => "upload".to_owned(),
                u => u.to_owned(),
            };
            format!("{method} {what}")
        })
        .collect()
}

fn sorted(mut kinds: Vec<String>) -> Vec<String> {
    kinds.sort();
    kinds
}

/// Where the `nth` (0-based) request of kind `kind` is in `log`.
fn position(log: &[String], kind: &str, nth: usize) -> usize {
    log.iter().enumerate().filter(|(_, k)| *k == kind).nth(nth).unwrap_or_else(|| panic!("{kind}: {log:?}")).0
}

#[test]
fn a_sign_makes_only_the_requests_it_needs_and_a_second_one_writes_nothing() {
    let registry = Registry::start_logging();
    let notarium = Notarium::start(&[&registry.host]);
    let images = push_many(&registry, "req/app", 2);
    let image = |i: usize| format!("{}/req/app@{}", registry.host, images[i]);
    sign(&notarium, &image(0), 201);

    let before = registry.requests().len();
    let answer = sign(&notarium, &image(1), 201);
    assert_eq!(answer["signature"]["created"], true, "{answer}");
    let log = logged(&registry, before, &images[1]);
    // Five sequential round trips: the image read alongside the upload sessions and the reads of both tags;
    // the blobs; the manifests; the fallback index after its referrer, the `.sig` re-read; the index re-read.
    // Two blobs: the payload and the bundle (both manifests' config is the empty `{}`, already there).
    let first_wave = ["GET .sig tag", "GET fallback tag", "GET the image", "POST upload", "POST upload"];
    assert_eq!(sorted(log[..5].to_vec()), first_wave, "{log:?}");
    assert_eq!(log[5..7], ["PUT upload", "PUT upload"], "{log:?}");
    let rest = ["GET .sig tag", "GET fallback tag", "PUT .sig tag", "PUT fallback tag", "PUT manifest by digest"];
    assert_eq!(sorted(log[7..].to_vec()), rest, "{log:?}");
    assert!(position(&log, "GET .sig tag", 0) < position(&log, "PUT .sig tag", 0), "{log:?}");
    assert!(position(&log, "PUT .sig tag", 0) < position(&log, "GET .sig tag", 1), "{log:?}");
    assert!(position(&log, "PUT manifest by digest", 0) < position(&log, "PUT fallback tag", 0), "{log:?}");
    assert!(position(&log, "PUT fallback tag", 0) < position(&log, "GET fallback tag", 1), "{log:?}");

    let before = registry.requests().len();
    let again = sign(&notarium, &image(1), 200);
    assert_eq!(again["signature"]["created"], false, "{again}");
    let writes = logged(&registry, before, &images[1]);
    assert!(!writes.iter().any(|r| r.starts_with("PUT")), "{writes:?}");
    let count = |kind: &str| writes.iter().filter(|r| r.starts_with(kind)).count();
    assert_eq!(count("POST"), count("DELETE upload"), "the sessions its blobs did not need are cancelled: {writes:?}");
}

#[test]
fn a_sign_of_a_missing_image_writes_nothing_logs_nothing_and_cancels_its_upload_sessions() {
    let registry = Registry::start_logging();
    let notarium = Notarium::start(&[&registry.host]);
    let images = push_many(&registry, "req/app", 1);
    sign(&notarium, &format!("{}/req/app@{}", registry.host, images[0]), 201);
    let tree_size = || notarium.get_text("/v1/log/checkpoint").1.lines().nth(1).unwrap().to_owned();
    let size = tree_size();

    let missing = format!("sha256:{}", "4".repeat(64));
    let before = registry.requests().len();
    sign(&notarium, &format!("{}/req/app@{missing}", registry.host), 404);
    let log = logged(&registry, before, &missing);
    assert!(log.contains(&"GET the image".to_owned()), "{log:?}");
    assert!(!log.iter().any(|r| r.starts_with("PUT")), "nothing written: {log:?}");
    let count = |kind: &str| log.iter().filter(|r| r.starts_with(kind)).count();
    assert!(count("POST") > 0, "sessions were opened ahead: {log:?}");
    assert_eq!(count("POST"), count("DELETE upload"), "every session opened is cancelled: {log:?}");
    assert_eq!(tree_size(), size, "nothing reached the register");
}
