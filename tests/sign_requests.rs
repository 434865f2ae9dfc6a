//! The requests one sign makes to CNCF distribution 2.8 (no referrers API, no single-POST upload), read from
//! the registry's log (issue 19): no HEAD before a new blob, no chunked upload, no read-back of a manifest
//! written by digest, the empty config `{}` uploaded once per repository, the `.sig` tag read once before its
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

/// The requests logged from `before` on, each as `METHOD what` where `what` names the kind of target.
fn kinds(registry: &Registry, before: usize, image: &str) -> Vec<String> {
    let (hex, image) = (image.trim_start_matches("sha256:"), image.to_owned());
    let mut kinds: Vec<String> = registry.requests()[before..]
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
        .collect();
    kinds.sort();
    kinds
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
    let expected = [
        "GET .sig tag",
        "GET .sig tag",
        "GET fallback tag",
        "GET fallback tag",
        "GET the image",
        "POST upload",
        "POST upload",
        "POST upload",
        "PUT .sig tag",
        "PUT fallback tag",
        "PUT manifest by digest",
        "PUT upload",
        "PUT upload",
        "PUT upload",
    ];
    assert_eq!(kinds(&registry, before, &images[1]), expected, "{:?}", &registry.requests()[before..]);

    let before = registry.requests().len();
    let again = sign(&notarium, &image(1), 200);
    assert_eq!(again["signature"]["created"], false, "{again}");
    let writes = kinds(&registry, before, &images[1]);
    assert!(!writes.iter().any(|r| r.starts_with("PUT .sig") || r.contains("manifest by digest")), "{writes:?}");
    assert!(!writes.iter().any(|r| r.contains("fallback")), "{writes:?}");
}
