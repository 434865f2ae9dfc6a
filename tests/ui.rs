//! The auditor web view at `/ui/`, end to end: the report's scripted scenario on a real registry and notarium
//! (an attestation whose predicate type is `javascript:alert(1)`, registry events whose repository, actor and
//! tag are `<script>` markup), then Debian's headless chromium driven by playwright-core
//! (tests/tools/ui_browser.mjs): sign-in with an auditor token, the timeline and its filters, an entry whose
//! inclusion proof and checkpoint signature verify in the browser and a tampered proof that does not, the
//! image and keys pages, the evidence pack; markup stays text, no dialog fires, nothing leaves for another
//! host. Screenshots land in `<target dir>/ui-screens/`.

use crate::report::{SCRIPT_PREDICATE, SCRIPT_TEXT, Scenario, fresh_target_dir};
use crate::support;

use std::path::Path;
use std::process::Command;

use serde_json::json;
use support::client;

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; \
                   form-action 'none'; frame-ancestors 'none'; base-uri 'none'";

#[test]
fn the_files_carry_the_strict_policy_and_nothing_else_is_served_under_ui() {
    let notarium = support::Notarium::start(&[]);
    for (path, content_type) in [
        ("/ui/", "text/html"),
        ("/ui/index.html", "text/html"),
        ("/ui/app.js", "text/javascript"),
        ("/ui/app.css", "text/css"),
    ] {
        let response = client().get(format!("{}{path}", notarium.url)).send().unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let header = |name: &str| response.headers()[name].to_str().unwrap().to_owned();
        assert!(header("content-type").starts_with(content_type), "{path}");
        assert_eq!(header("content-security-policy"), CSP, "{path}");
        assert_eq!((header("x-content-type-options"), header("x-frame-options")), ("nosniff".into(), "DENY".into()));
    }
    for path in ["/ui/app.js.map", "/ui/..%2Fnotarium.toml", "/ui/x/app.js"] {
        let response = client().get(format!("{}{path}", notarium.url)).send().unwrap();
        assert_eq!(response.status(), 404, "{path}");
    }
}

#[test]
fn the_web_view_verifies_in_chromium_and_shows_every_register_value_as_text() {
    let playwright = Path::new(support::ROOT).join(".tools/playwright/node_modules/playwright-core");
    assert!(playwright.is_dir(), "playwright-core is missing: run scripts/install-test-deps.sh");
    let scenario = Scenario::run();
    let notarium = &scenario.notarium;
    // Read while the API is still open: once a token exists, every read needs one.
    let entries = scenario.entries();
    let hostile = entries.iter().find(|(_, e)| e["subject"]["repository"] == scenario.hostile_repository.as_str());
    let (sign_index, attest_index) =
        (scenario.index_of("sign", &scenario.app), scenario.index_of("attest", &scenario.app));
    let (token, _) = notarium.create_token(&["--role", "auditor"]);
    let (status, log_key) = notarium.get_text("/v1/keys/dev-log/public.pem");
    assert_eq!(status, 200, "{log_key}");
    let (_, other_key) = notarium.get_text("/v1/keys/dev-ed25519/public.pem");
    let evidence = client().get(format!("{}/v1/evidence", notarium.url)).bearer_auth(&token).send().unwrap();
    let expect = json!({
        "sign_index": sign_index,
        "attest_index": attest_index,
        "hostile_index": hostile.unwrap().0,
        "app": scenario.app, "tool": scenario.tool, "cache": scenario.cache,
        "script_text": SCRIPT_TEXT, "script_predicate": SCRIPT_PREDICATE,
        // The pack is downloaded through the view when the server has the route.
        "evidence": evidence.status() != 404,
    });
    let shots = fresh_target_dir("ui-screens");
    let out = Command::new("node")
        .arg(Path::new(support::ROOT).join("tests/tools/ui_browser.mjs"))
        .env("PLAYWRIGHT_CORE", &playwright)
        .env("UI_URL", &notarium.url)
        .env("UI_TOKEN", &token)
        .env("UI_LOG_KEY", &log_key)
        .env("UI_OTHER_KEY", &other_key)
        .env("UI_EXPECT", expect.to_string())
        .env("UI_SHOTS", &shots)
        .env("UI_CSP", CSP)
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "the browser test failed: {stderr}\n{stdout}\nnotarium: {}", notarium.log());
    let seen: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert!(seen["dialogs"].as_array().unwrap().is_empty() && seen["checks"].as_array().unwrap().len() > 20, "{seen}");
    eprintln!("screenshots: {}", shots.display());
}
