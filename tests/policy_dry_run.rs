//! Policy dry-run against a real registry that notifies a real notarium: a scripted "week" of pulls (real
//! pulls through the registry, so the register holds `registry-pull` entries) of images signed by key A
//! (`dev-ecdsa`), by key B (`dev-ed25519`) or unsigned, and one decided by `POST /v1/verify` only; a stricter
//! candidate (key A only) lists exactly the images it would deny, by repository, and exits 1; the policies in
//! force change nothing and exit 0; the dry-run writes nothing; hostile requests are refused.

use crate::support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{Notarium, Registry, client, push_image, skopeo_pull};

const SECRET: &str = "dry-run-events-secret-51c0";

fn policy(host: &str, keys: &[&str]) -> String {
    let authorities = keys.iter().map(|k| format!("{{key: {k}}}")).collect::<Vec<_>>().join(", ");
    format!(
        "default: deny\npolicies:\n  - name: shop\n    images: [\"{host}/shop/*\"]\n    authorities: [{authorities}]\n  \
         - name: tools\n    images: [\"{host}/tools/*\"]\n    authorities: [{authorities}]\n"
    )
}

fn entries(notarium: &Notarium) -> Vec<Value> {
    let (status, text) = notarium.get_text("/v1/log/entries?start=0&end=1000");
    assert_eq!(status, 200, "{text}");
    entries_of(&text)
}

fn entries_as(notarium: &Notarium, token: &str) -> Vec<Value> {
    let url = format!("{}/v1/log/entries?start=0&end=1000", notarium.url);
    entries_of(&client().get(url).bearer_auth(token).send().unwrap().text().unwrap())
}

fn entries_of(text: &str) -> Vec<Value> {
    let page: Value = serde_json::from_str(text).unwrap();
    page["entries"].as_array().unwrap().iter().map(|e| e["entry"].clone()).collect()
}

fn wait_for_pull(notarium: &Notarium, digest: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !entries(notarium).iter().any(|e| e["kind"] == "registry-pull" && e["subject"]["digest"] == digest) {
        assert!(Instant::now() < deadline, "no pull entry for {digest}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The decision cache's lookup and decision counters from `/metrics`.
fn cache_lines(notarium: &Notarium) -> Vec<String> {
    let (status, text) = notarium.get_text("/metrics");
    assert_eq!(status, 200);
    let counted =
        |l: &&str| l.starts_with("notarium_verify_cache_lookups") || l.starts_with("notarium_verify_decisions");
    text.lines().filter(counted).map(str::to_owned).collect()
}

fn tags(registry: &Registry, repo: &str) -> Value {
    let url = format!("http://{}/v2/{repo}/tags/list", registry.host);
    let answer: Value = client().get(url).send().unwrap().json().unwrap();
    answer["tags"].clone()
}

/// `notarium policy dry-run DIR --since 1h ARGS` as the admin holding `token`.
fn cli(notarium: &Notarium, token: &str, dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_notarium"))
        .args(["policy", "dry-run", dir.to_str().unwrap(), "--since", "1h", "--server", &notarium.url])
        .args(args)
        .env("NOTARIUM_TOKEN", token)
        .output()
        .unwrap()
}

fn dry_run_cli(notarium: &Notarium, token: &str, dir: &std::path::Path) -> (i32, Value) {
    let out = cli(notarium, token, dir, &["--output", "json"]);
    let answer = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&out.stderr).into_owned()));
    (out.status.code().unwrap(), answer)
}

fn repository<'a>(answer: &'a Value, name: &str) -> &'a Value {
    let all = answer["repositories"].as_array().unwrap();
    all.iter().find(|r| r["repository"] == name).unwrap_or_else(|| panic!("{name} not in {answer}"))
}

fn images(list: &Value) -> Vec<String> {
    list.as_array().unwrap().iter().map(|i| i["image"].as_str().unwrap().to_owned()).collect()
}

#[test]
fn a_stricter_candidate_lists_exactly_the_images_it_would_deny_by_repository_and_writes_nothing() {
    let notarium_port = support::free_port();
    let registry = Registry::start_notifying(notarium_port, SECRET);
    let host = registry.host.clone();
    let (live, candidate, broken) =
        (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    std::fs::write(live.path().join("trust.yaml"), policy(&host, &["dev-ecdsa", "dev-ed25519"])).unwrap();
    std::fs::write(candidate.path().join("trust.yaml"), policy(&host, &["dev-ecdsa"])).unwrap();
    std::fs::write(broken.path().join("trust.yaml"), "policies:\n  - name: a\n    images: [\n").unwrap();
    let config =
        format!("{}\n[events]\nregistry_secret_env = \"NOTARIUM_TEST_EVENTS_SECRET\"\n", support::EXAMPLE_KEYS);
    let listen = format!("127.0.0.1:{notarium_port}");
    let notarium = Notarium::start_with_config(
        &config,
        &[&host],
        &[
            ("NOTARIUM_TEST_EVENTS_SECRET", SECRET),
            ("NOTARIUM_POLICIES_DIR", live.path().to_str().unwrap()),
            ("NOTARIUM_LISTEN", &listen),
        ],
    );

    // The week: five images, signed by A, by B or not at all; each pulled, some more than once.
    let image = |repo: &str, content: &str| (repo.to_owned(), push_image(&registry, repo, "v1", content));
    let app = image("shop/app", "app, key A");
    let web = image("shop/web", "web, key B");
    let cart = image("shop/cart", "cart, unsigned");
    let lint = image("tools/lint", "lint, key B");
    let fmt = image("tools/fmt", "fmt, key A, verified only");
    let old = image("shop/old", "old, pulled then deleted");
    for ((repo, digest), key) in
        [(&app, "dev-ecdsa"), (&web, "dev-ed25519"), (&lint, "dev-ed25519"), (&fmt, "dev-ecdsa")]
    {
        let (status, answer) = notarium.sign(&format!("{host}/{repo}@{digest}"), key);
        assert!(status == 201 || status == 200, "{answer}");
    }
    for (repo, digest) in [&app, &web, &cart, &lint, &app, &web, &old] {
        skopeo_pull(&format!("{host}/{repo}:v1"));
        wait_for_pull(&notarium, digest);
    }
    assert_eq!(notarium.verify_image(&format!("{host}/{}@{}", fmt.0, fmt.1))["allowed"], true);
    registry.delete_manifest(&old.0, &old.1);
    let name = |(repo, digest): &(String, String)| format!("{host}/{repo}@{digest}");

    // Let every notification of the scenario land before measuring.
    std::thread::sleep(Duration::from_secs(3));
    // The first token closes the open API: from here on, calls carry it.
    let (admin, _) = notarium.create_token(&["--role", "admin"]);
    let before = entries_as(&notarium, &admin);
    let cache_before = cache_lines(&notarium);
    assert!(!cache_before.is_empty(), "the verify above counted a decision");
    let repos = ["shop/app", "shop/web", "shop/cart", "tools/lint", "tools/fmt"];
    let tags_before: Vec<Value> = repos.iter().map(|r| tags(&registry, r)).collect();

    let started = Instant::now();
    let (code, answer) = dry_run_cli(&notarium, &admin, candidate.path());
    println!("dry-run of {} images (each decided twice) took {:?}", answer["images"], started.elapsed());
    assert_eq!(code, 1, "{answer}");
    assert_eq!(answer["newly_denied"], 2, "{answer}");
    assert_eq!(answer["images"], 6, "six distinct images, deleted one included: {answer}");
    assert_eq!(answer["truncated"], false);
    let shop = repository(&answer, &format!("{host}/shop/web"));
    assert_eq!(images(&shop["newly_denied"]), vec![name(&web)]);
    assert!(shop["newly_denied"][0]["reasons"].as_array().unwrap().iter().any(|r| !r.as_str().unwrap().is_empty()));
    assert_eq!(images(&repository(&answer, &format!("{host}/tools/lint"))["newly_denied"]), vec![name(&lint)]);
    for (repo, allowed, denied) in [("shop/app", 1, 0), ("tools/fmt", 1, 0), ("shop/cart", 0, 1)] {
        let r = repository(&answer, &format!("{host}/{repo}"));
        assert_eq!(
            (r["unchanged_allowed"].as_u64().unwrap(), r["unchanged_denied"].as_u64().unwrap()),
            (allowed, denied),
            "{repo}"
        );
        assert!(r["newly_denied"].as_array().unwrap().is_empty(), "{repo}");
    }
    let gone = repository(&answer, &format!("{host}/shop/old"));
    assert_eq!(images(&gone["unevaluated"]), vec![name(&old)], "{answer}");
    assert_eq!(answer["unevaluated"], 1);

    let out = cli(&notarium, &admin, candidate.path(), &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&format!("{host}/shop/web\n  would be DENIED: {}", name(&web))), "{text}");
    assert!(text.contains(&format!("not evaluated: {}", name(&old))), "{text}");
    assert_eq!(out.status.code(), Some(1));

    let out = cli(&notarium, &admin, candidate.path(), &["--max-images", "2", "--output", "json"]);
    let bounded: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((bounded["images"].as_u64(), bounded["truncated"].as_bool()), (Some(2), Some(true)), "{bounded}");
    let text =
        String::from_utf8_lossy(&cli(&notarium, &admin, candidate.path(), &["--max-images", "2"]).stdout).into_owned();
    assert!(text.contains("truncated: only the first 2 images were decided"), "{text}");

    let (code, answer) = dry_run_cli(&notarium, &admin, live.path());
    assert_eq!(code, 0, "{answer}");
    assert_eq!((answer["newly_denied"].as_u64(), answer["newly_allowed"].as_u64()), (Some(0), Some(0)), "{answer}");
    assert_eq!(answer["unchanged"], 5);

    let (code, _) = dry_run_cli(&notarium, &admin, broken.path());
    assert_eq!(code, 2, "a broken candidate folder is a usage error");
    // Loads locally, but the server's reload checks refuse it: still a usage error, naming the file.
    let unknown_root = tempfile::tempdir().unwrap();
    std::fs::write(
        unknown_root.path().join("keyless.yaml"),
        "policies:\n  - name: k\n    images: [\"*/**\"]\n    authorities:\n      - keyless:\n          issuer: https://issuer.example\n          subject: ci@example.com\n          trusted_root: nowhere\n",
    )
    .unwrap();
    let out = cli(&notarium, &admin, unknown_root.path(), &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("keyless.yaml line") && stderr.contains("nowhere"), "{stderr}");

    // Nothing written: the registry holds the same tags, and the register grew only by the registry's
    // reports of notarium's own reads (pulls by notarium's user agent), never by a decision.
    std::thread::sleep(Duration::from_secs(3));
    let after = entries_as(&notarium, &admin);
    for added in &after[before.len()..] {
        assert_eq!(added["kind"], "registry-pull", "the dry-run wrote {added}");
        assert!(added["actor"]["user_agent"].as_str().unwrap().starts_with("notarium/"), "{added}");
    }
    assert_eq!(repos.iter().map(|r| tags(&registry, r)).collect::<Vec<_>>(), tags_before);
    // Nor did it go through the decision cache that `POST /v1/verify` keeps and reuses: not one lookup.
    assert_eq!(cache_lines(&notarium), cache_before);

    hostile_requests_are_refused(&notarium, &admin, &host);
}

fn hostile_requests_are_refused(notarium: &Notarium, admin: &str, host: &str) {
    let (auditor, _) = notarium.create_token(&["--role", "auditor"]);
    let post = |token: &str, body: String| {
        let response = client()
            .post(format!("{}/v1/policies/dry-run", notarium.url))
            .bearer_auth(token)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json::<Value>().unwrap_or(Value::Null))
    };
    let good = json!({"files": {"trust.yaml": policy(host, &["dev-ecdsa"])}, "since": "1h"}).to_string();
    assert_eq!(post(&auditor, good.clone()).0, 403, "an auditor may not dry-run");
    assert_eq!(post(admin, good).0, 200);

    let bad_yaml = json!({"files": {"a.yaml": "default: deny\n", "b.yaml": "policies:\n  - name: x\n    images: [\n"}});
    let (status, problem) = post(admin, bad_yaml.to_string());
    assert_eq!(status, 400, "{problem}");
    assert!(problem["type"].as_str().unwrap().ends_with("/invalid-policy"), "{problem}");
    assert!(problem["detail"].as_str().unwrap().starts_with("b.yaml line "), "{problem}");

    let many: serde_json::Map<String, Value> = (0..65).map(|i| (format!("{i}.yaml"), json!(""))).collect();
    let (status, problem) = post(admin, json!({"files": many}).to_string());
    assert_eq!((status, problem["detail"].as_str().unwrap().contains("at most 64")), (400, true), "{problem}");

    let large = json!({"files": {"a.yaml": "#".repeat(300 * 1024)}});
    let (status, problem) = post(admin, large.to_string());
    assert_eq!(status, 400, "{problem}");
    let huge = json!({"files": {"a.yaml": "#".repeat(2 * 1024 * 1024)}});
    assert_eq!(post(admin, huge.to_string()).0, 413);

    let (status, problem) = post(admin, json!({"files": {"../x.yaml": ""}}).to_string());
    assert_eq!(status, 400, "{problem}");
    let (status, problem) = post(admin, json!({"files": {}, "since": "forever"}).to_string());
    assert_eq!(status, 400, "{problem}");
}
