//! Batch signing: `POST /v1/sign` with `"images": [...]` signs several images in one request, with one
//! register transaction and one checkpoint; every image is checked against the caller's scope and the
//! egress rules before anything is written; a failure after that is reported per image. `notarium sign`
//! with several images (and `--recursive` over a multi-arch index) sends one batch.

use crate::support;

use std::time::{Duration, Instant};

use notarium::formats::canonical::canonical_json;
use notarium::formats::checkpoint::{Checkpoint, verify_ed25519_note};
use notarium::formats::digest::hex_decode;
use notarium::keys::PublicKey;
use notarium::merkle::{Hash, leaf_hash, verify_inclusion};
use serde_json::{Value, json};
use support::{Cosign, Notarium, Registry, call, push_image, push_index, signature_rows};

fn batch(notarium: &Notarium, images: &[String], more: Value) -> (u16, Value) {
    let mut body = json!({"images": images, "key": "dev-ecdsa"});
    body.as_object_mut().unwrap().extend(more.as_object().unwrap().clone());
    let (status, _, answer) = notarium.post("/v1/sign", body.to_string());
    (status, answer)
}

fn get_json(notarium: &Notarium, path: &str) -> Value {
    let (status, text) = notarium.get_text(path);
    assert_eq!(status, 200, "{text}");
    serde_json::from_str(&text).unwrap()
}

fn sign_entries(notarium: &Notarium) -> Vec<(u64, Value)> {
    let page = get_json(notarium, "/v1/log/entries?start=0&end=1000");
    let entries = page["entries"].as_array().unwrap();
    entries.iter().filter(|e| e["entry"]["kind"] == "sign").map(|e| (e["index"].as_u64().unwrap(), e.clone())).collect()
}

fn images(registry: &Registry, repo: &str, count: usize) -> Vec<String> {
    (0..count)
        .map(|i| {
            let digest = push_image(registry, repo, &format!("v{i}"), &format!("{repo} image {i}"));
            format!("{}/{repo}@{digest}", registry.host)
        })
        .collect()
}

#[test]
fn a_batch_of_five_signs_each_image_logged_under_one_checkpoint_and_cosign_verifies_each() {
    let registry = Registry::start();
    let notarium = Notarium::start(&[&registry.host]);
    let images = images(&registry, "batch/five", 5);

    let (status, answer) = batch(&notarium, &images, json!({}));
    assert_eq!(status, 201, "{answer}");
    assert_eq!((answer["succeeded"].as_u64(), answer["failed"].as_u64()), (Some(5), Some(0)), "{answer}");
    let tree_size = answer["tree_size"].as_u64().unwrap();
    let results = answer["results"].as_array().unwrap();
    assert_eq!(results.len(), 5);

    let log_key =
        PublicKey::from_pem(&notarium.get_text("/v1/keys/dev-log/public.pem").1).unwrap().ed25519_bytes().unwrap();
    let body = verify_ed25519_note(answer["checkpoint"].as_str().unwrap(), "notarium.local/log", &log_key).unwrap();
    let checkpoint = Checkpoint::parse_body(&body).unwrap();
    assert_eq!(checkpoint.size, tree_size);

    let logged = sign_entries(&notarium);
    assert_eq!(logged.len(), 5, "one sign entry per image");
    let dir = tempfile::tempdir().unwrap();
    let key = notarium.public_key_file("dev-ecdsa", dir.path());
    let cosign = Cosign::new();
    for (i, (result, image)) in results.iter().zip(&images).enumerate() {
        assert_eq!((result["index"].as_u64(), result["status"].as_u64()), (Some(i as u64), Some(201)), "{result}");
        assert_eq!(result["image"], image.as_str());
        let outcome = &result["outcome"];
        assert_eq!(outcome["log"]["tree_size"].as_u64(), Some(tree_size), "one tree size for the whole batch");
        let index = outcome["log"]["index"].as_u64().unwrap();
        let (_, entry) = logged.iter().find(|(at, _)| *at == index).unwrap();
        assert_eq!(entry["entry"]["subject"]["digest"], outcome["digest"]);
        let leaf = leaf_hash(&canonical_json(&entry["entry"]));
        let proof = get_json(&notarium, &format!("/v1/log/proof/inclusion?index={index}&tree_size={tree_size}"));
        let hashes: Vec<Hash> = proof["hashes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| hex_decode(h.as_str().unwrap()).unwrap().try_into().unwrap())
            .collect();
        verify_inclusion(&leaf, index, tree_size, &hashes, &checkpoint.root_hash).unwrap();
        let (ok, log) = cosign.verify(image, &key);
        assert!(ok, "cosign refused {image}: {log}");
    }

    // The same batch again writes nothing new: 200, every result 200, no entry.
    let (status, again) = batch(&notarium, &images, json!({}));
    assert_eq!(status, 200, "{again}");
    assert!(again["results"].as_array().unwrap().iter().all(|r| r["status"] == 200), "{again}");
    assert_eq!(sign_entries(&notarium).len(), 5);
}

#[test]
fn a_missing_image_fails_alone_and_the_others_are_signed_and_logged() {
    let registry = Registry::start();
    let notarium = Notarium::start(&[&registry.host]);
    let mut images = images(&registry, "batch/partial", 3);
    let missing = format!("{}/batch/partial@sha256:{}", registry.host, "ab".repeat(32));
    images.insert(1, missing.clone());

    let (status, answer) = batch(&notarium, &images, json!({}));
    assert_eq!(status, 207, "{answer}");
    assert_eq!((answer["succeeded"].as_u64(), answer["failed"].as_u64()), (Some(3), Some(1)), "{answer}");
    let failed = &answer["results"][1];
    assert_eq!((failed["image"].as_str(), failed["status"].as_u64()), (Some(missing.as_str()), Some(404)), "{failed}");
    assert!(failed["problem"]["detail"].as_str().unwrap().contains("not found"), "{failed}");
    assert_eq!(sign_entries(&notarium).len(), 3);
    for i in [0, 2, 3] {
        assert_eq!(answer["results"][i]["status"], 201, "{answer}");
    }

    // Every image failing is a 502, with a problem for each.
    let nothing = vec![missing, format!("{}/batch/partial@sha256:{}", registry.host, "cd".repeat(32))];
    let (status, answer) = batch(&notarium, &nothing, json!({}));
    assert_eq!((status, answer["failed"].as_u64()), (502, Some(2)), "{answer}");
    assert!(answer["tree_size"].is_null(), "{answer}");
}

#[test]
fn bad_batches_are_refused_whole_naming_the_image_and_write_nothing() {
    let registry = Registry::start();
    let notarium = Notarium::start_with_config("[sign]\nmax_batch = 3\n", &[&registry.host], &[]);
    let images = images(&registry, "batch/bad", 3);
    let refused = |list: Vec<String>, status: u16, kind: &str, names: &str| {
        let (got, problem) = batch(&notarium, &list, json!({}));
        assert_eq!(got, status, "{problem}");
        assert_eq!(problem["type"], format!("https://notarium.dev/problems/{kind}"), "{problem}");
        assert!(problem["detail"].as_str().unwrap().contains(names), "{problem}");
    };
    let with = |extra: &str| [images.clone(), vec![extra.to_owned()]].concat();

    refused(with(&images[0]), 413, "batch-too-large", "4 images");
    refused(vec![images[0].clone(), images[1].clone(), images[0].clone()], 400, "duplicate-image", "images[2]");
    refused(vec![images[0].clone(), "not a reference!".into()], 400, "missing-registry-host", "images[1]");
    // An internal address the egress rules refuse: 403 before anything is written, naming it.
    let internal = format!("10.255.255.1:5000/batch/bad@sha256:{}", "ab".repeat(32));
    refused(vec![images[0].clone(), internal], 403, "registry-not-allowed", "images[1] (10.255.255.1:5000");
    let index = push_index(&registry, "batch/multi", "v1", &["amd64", "arm64"]).0;
    let index = format!("{}/batch/multi@{index}", registry.host);
    refused(vec![images[0].clone(), index], 422, "index-needs-recursive", "images[1]");
    let (status, problem) = batch(&notarium, &images, json!({"key": "no-such-key"}));
    assert_eq!(status, 404, "an unknown key refuses the batch once: {problem}");
    let (status, problem) = batch(&notarium, &images, json!({"annotations": {"n": 1}}));
    assert_eq!(status, 400, "{problem}");
    let both = json!({"image": images[0], "images": images, "key": "dev-ecdsa"});
    let (status, _, problem) = notarium.post("/v1/sign", both.to_string());
    assert_eq!((status, problem["type"].as_str()), (400, Some("https://notarium.dev/problems/image-or-images")));
    let (status, problem) = batch(&notarium, &[], json!({}));
    assert_eq!((status, problem["type"].as_str()), (400, Some("https://notarium.dev/problems/image-or-images")));

    assert_eq!(signature_rows(&notarium.database_url()), 0);
    assert!(sign_entries(&notarium).is_empty());
    assert!(images.iter().all(|image| registry.manifest("batch/bad", &sig_tag(image)).is_none()));
}

/// The `.sig` tag of `image` (`…@sha256:HEX` → `sha256-HEX.sig`).
fn sig_tag(image: &str) -> String {
    let (_, digest) = image.split_once('@').unwrap();
    format!("{}.sig", digest.replace(':', "-"))
}

#[test]
fn a_batch_with_one_image_outside_the_signers_scope_is_a_403_naming_it_and_writes_nothing() {
    let registry = Registry::start();
    let server = Notarium::start(&[&registry.host]);
    let ours = images(&registry, "team-a/app", 2);
    let theirs = images(&registry, "team-b/app", 1);
    let repos = format!("{}/team-a/*", registry.host);
    let (signer, _) = server.create_token(&["--role", "signer", "--repos", &repos, "--keys", "dev-ecdsa"]);
    let started = Instant::now();
    while call(&server, "POST", "/v1/verify", "", Some(json!({"image": "x"}))).0 != 401 {
        assert!(started.elapsed() < Duration::from_secs(10), "the API stayed open after a token was made");
        std::thread::sleep(Duration::from_millis(200));
    }

    let list = vec![ours[0].clone(), theirs[0].clone(), ours[1].clone()];
    let (status, problem) =
        call(&server, "POST", "/v1/sign", &signer, Some(json!({"images": list, "key": "dev-ecdsa"})));
    assert_eq!(status, 403, "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains(&format!("images[1] ({})", theirs[0])), "{problem}");
    assert_eq!(signature_rows(&server.database_url()), 0);
    assert!(ours.iter().all(|image| registry.manifest("team-a/app", &sig_tag(image)).is_none()));

    let (status, answer) =
        call(&server, "POST", "/v1/sign", &signer, Some(json!({"images": ours, "key": "dev-ecdsa"})));
    assert_eq!((status, answer["succeeded"].as_u64()), (201, Some(2)), "{answer}");
}

#[test]
fn the_cli_signs_several_images_and_a_multi_arch_index_recursively_in_one_batch() {
    let registry = Registry::start();
    let notarium = Notarium::start(&[&registry.host]);
    let services = images(&registry, "release/svc", 2);
    let (index, platforms) = push_index(&registry, "release/multi", "v1", &["amd64", "arm64"]);
    let by_tag = format!("{}/release/multi:v1", registry.host);

    let out = notarium.cli(&["sign", &services[0], &services[1], &by_tag, "--key", "dev-ecdsa", "--recursive"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(stdout.lines().count(), 5, "two images, the index and its two platforms: {stdout}");
    for digest in platforms.iter().chain([&index]) {
        assert!(stdout.contains(digest.as_str()), "{stdout}");
    }
    let logged = sign_entries(&notarium);
    assert_eq!(logged.len(), 5);
    let dir = tempfile::tempdir().unwrap();
    let key = notarium.public_key_file("dev-ecdsa", dir.path());
    let cosign = Cosign::new();
    let manifests = platforms.iter().chain([&index]).map(|d| format!("{}/release/multi@{d}", registry.host));
    for image in services.iter().cloned().chain(manifests) {
        let (ok, log) = cosign.verify(&image, &key);
        assert!(ok, "cosign refused {image}: {log}");
    }

    // One missing image: the others are reported signed, the missing one named, and the exit status is 1.
    let missing = format!("{}/release/svc@sha256:{}", registry.host, "ef".repeat(32));
    let out = notarium.cli(&["--output", "json", "sign", &services[0], &missing, "--key", "dev-ecdsa"]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((answer["succeeded"].as_u64(), answer["failed"].as_u64()), (Some(1), Some(1)), "{answer}");
    assert!(String::from_utf8_lossy(&out.stderr).contains(&missing));
}
