//! The human report against a real register: a scripted scenario on a real registry that notifies a real
//! notarium (an image signed and verified, one denied and pulled anyway, one pulled and never verified, a
//! registry event carrying markup), rendered to HTML and checked, printed to PDF by Debian's chromium and
//! turned into page images (poppler's `pdftoppm`) under the target directory, for a person to look at.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use notarium::report::{ReportInput, render_html, render_pdf};
use serde_json::{Value, json};
use support::{Notarium, Registry, client, push_image, skopeo_pull};

const SECRET: &str = "report-events-secret-9a1c";
const HOSTILE: &str = "<script>alert(1)</script>";

fn entries(notarium: &Notarium) -> Vec<(u64, Value)> {
    let (_, text) = notarium.get_text("/v1/log/entries?start=0&end=1000");
    let page: Value = serde_json::from_str(&text).unwrap();
    page["entries"].as_array().unwrap().iter().map(|e| (e["index"].as_u64().unwrap(), e["entry"].clone())).collect()
}

fn wait_for_pull(notarium: &Notarium, digest: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !entries(notarium).iter().any(|(_, e)| e["kind"] == "registry-pull" && e["subject"]["digest"] == digest) {
        assert!(Instant::now() < deadline, "no pull entry for {digest}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A registry event posted as a registry would, its actor, user agent and tag carrying markup.
fn post_hostile_pull(notarium: &Notarium, registry: &Registry, id: &str, repository: &str, digest: &str) {
    let envelope = json!({"events": [{
        "id": id, "timestamp": "2026-11-30T12:00:00Z", "action": "pull",
        "target": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest,
                   "repository": repository, "tag": HOSTILE},
        "request": {"addr": "10.0.0.7:4242", "host": registry.host, "method": "GET", "useragent": HOSTILE},
        "actor": {"name": HOSTILE}, "source": {"addr": "registry-0:5000"},
    }]});
    let response = client()
        .post(format!("{}/v1/events/registry", notarium.url))
        .header("Content-Type", "application/vnd.docker.distribution.events.v1+json")
        .header("Authorization", format!("Bearer {SECRET}"))
        .body(envelope.to_string())
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
}

/// The scripted scenario an auditor's tools are tried on, run on a real registry notifying a real notarium
/// whose policy `shop` wants `dev-ecdsa` on `<registry>/shop/*`.
pub(crate) struct Scenario {
    _registry: Registry,
    pub(crate) notarium: Notarium,
    _policies: tempfile::TempDir,
    /// Signed, attested (predicate type `javascript:alert(1)`), allowed, pulled.
    pub(crate) app: String,
    /// Unsigned: denied, then pulled anyway.
    pub(crate) tool: String,
    /// Pulled, never verified; pulled again by a registry event whose actor, user agent and tag are markup.
    pub(crate) cache: String,
    /// A repository named with markup, as a registry event reported it.
    pub(crate) hostile_repository: String,
}

/// The predicate type of the scenario's attestation: a URI a page must never make a link of.
pub(crate) const SCRIPT_PREDICATE: &str = "javascript:alert(1)";
pub(crate) const SCRIPT_TEXT: &str = HOSTILE;

impl Scenario {
    pub(crate) fn run() -> Self {
        let (registry, notarium, policies) = start_servers();
        let host = registry.host.clone();
        let app = push_image(&registry, "shop/app", "v1", "the signed app");
        let tool = push_image(&registry, "shop/tool", "v1", "an unsigned tool");
        let cache = push_image(&registry, "shop/cache", "v1", "a cache nobody checked");

        let (status, answer) = notarium.sign(&format!("{host}/shop/app@{app}"), "dev-ecdsa");
        assert!(status == 201 || status == 200, "{answer}");
        let attest = json!({"image": format!("{host}/shop/app@{app}"), "key": "dev-ecdsa",
                            "predicate_type": SCRIPT_PREDICATE, "predicate": {"note": HOSTILE}});
        let (status, _, answer) = notarium.post("/v1/attest", attest.to_string());
        assert_eq!(status, 201, "{answer}");
        assert_eq!(notarium.verify_image(&format!("{host}/shop/app@{app}"))["allowed"], true);
        assert_eq!(notarium.verify_image(&format!("{host}/shop/tool@{tool}"))["allowed"], false);
        skopeo_pull(&format!("{host}/shop/tool:v1"));
        skopeo_pull(&format!("{host}/shop/cache:v1"));
        skopeo_pull(&format!("{host}/shop/app:v1"));
        wait_for_pull(&notarium, &tool);
        wait_for_pull(&notarium, &cache);
        wait_for_pull(&notarium, &app);
        post_hostile_pull(&notarium, &registry, "hostile-1", "shop/cache", &cache);
        let hostile_repository = format!("shop/{HOSTILE}");
        post_hostile_pull(&notarium, &registry, "hostile-2", &hostile_repository, &cache);
        Self { _registry: registry, notarium, _policies: policies, app, tool, cache, hostile_repository }
    }

    /// Every entry of the register, `(index, entry)`.
    pub(crate) fn entries(&self) -> Vec<(u64, Value)> {
        entries(&self.notarium)
    }

    /// The index of the first entry of `kind` about `digest`.
    pub(crate) fn index_of(&self, kind: &str, digest: &str) -> u64 {
        let entries = self.entries();
        entries.iter().find(|(_, e)| e["kind"] == kind && e["subject"]["digest"] == digest).unwrap().0
    }
}

fn start_servers() -> (Registry, Notarium, tempfile::TempDir) {
    let policies = tempfile::tempdir().unwrap();
    let config = format!(
        "{}\n[events]\nregistry_secret_env = \"NOTARIUM_TEST_EVENTS_SECRET\"\n",
        support::EXAMPLE_KEYS.trim_start()
    );
    // The registry notifies notarium and the policy names the registry: notarium's port is chosen first.
    let notarium_port = support::free_port();
    let registry = Registry::start_with(&format!(
        "notifications:\n  endpoints:\n    - name: notarium\n      url: http://127.0.0.1:{notarium_port}/v1/events/registry\n      headers:\n        Authorization: [\"Bearer {SECRET}\"]\n      timeout: 2s\n      threshold: 3\n      backoff: 1s\n"
    ));
    let policy = format!(
        "default: deny\npolicies:\n  - name: shop\n    images: [\"{}/shop/*\"]\n    authorities: [{{key: dev-ecdsa}}]\n",
        registry.host
    );
    std::fs::write(policies.path().join("shop.yaml"), policy).unwrap();
    let listen = format!("127.0.0.1:{notarium_port}");
    let notarium = Notarium::start_with_config(
        &config,
        &[&registry.host],
        &[
            ("NOTARIUM_TEST_EVENTS_SECRET", SECRET),
            ("NOTARIUM_POLICIES_DIR", policies.path().to_str().unwrap()),
            ("NOTARIUM_LISTEN", &listen),
        ],
    );
    (registry, notarium, policies)
}

/// An emptied directory `<target dir>/<name>/` for images a person looks at.
pub(crate) fn fresh_target_dir(name: &str) -> PathBuf {
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| Path::new(support::ROOT).join("target"), PathBuf::from);
    let dir = target.join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn the_report_shows_a_denied_image_pulled_anyway_and_one_never_verified_in_html_and_pdf_pages() {
    let scenario = Scenario::run();
    let (app, tool, cache) = (&scenario.app, &scenario.tool, &scenario.cache);
    let entries = scenario.entries();
    let input = ReportInput {
        origin: "notarium.test/report".into(),
        from: "2026-01-01T00:00:00Z".into(),
        to: "2027-01-01T00:00:00Z".into(),
        tree_size: entries.len() as u64,
        entries,
    };
    let html = render_html(&input);
    let index_of = |kind: &str, digest: &str| scenario.index_of(kind, digest);

    // The findings section names the never-verified cache and the denied tool pulled after its denial.
    let findings = html.split("<section class=\"findings\">").nth(1).unwrap().split("</section>").next().unwrap();
    let never = findings.split("Digests pulled but never verified").nth(1).unwrap().split("<h3>").next().unwrap();
    assert!(never.contains(cache.as_str()) && never.contains("shop/cache"), "{never}");
    assert!(!never.contains(tool.as_str()) && !never.contains(app.as_str()), "{never}");
    let denied = findings.split("Pulls of digests that were denied").nth(1).unwrap().split("<h3>").next().unwrap();
    let (pull, denial) = (index_of("registry-pull", tool), index_of("verify", tool));
    assert!(denied.contains(&format!("<a href=\"#e{pull}\">#{pull}</a>")), "{denied}");
    assert!(denied.contains(&format!("<a href=\"#e{denial}\">#{denial}</a>")), "{denied}");
    assert!(denied.contains("pulled after a denial") && !denied.contains(cache.as_str()), "{denied}");

    // The repository sections: the signature with key and version, the decisions with the denial's reason.
    let signed = index_of("sign", app);
    assert!(html.contains(&format!("<a href=\"#e{signed}\">#{signed}</a>")));
    assert!(html.contains("dev-ecdsa (v1)"), "the key and version of the signature");
    assert!(html.contains("DENIED"));
    assert!(html.contains(&format!("<dt id=\"e{signed}\">#{signed}</dt>")));
    // Markup a registry sent is text.
    assert!(!html.contains("<script"), "markup from the register reached the page");
    assert!(html.contains("Repository 127.0.0.1") && html.contains("/shop/&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(html.contains("Predicate type <code>javascript:alert(1)</code> (1)"), "attestations by predicate type");

    let dir = fresh_target_dir("report-pages");
    std::fs::write(dir.join("report.html"), &html).unwrap();
    let pdf = render_pdf(&html, Path::new("/usr/bin/chromium")).unwrap();
    std::fs::write(dir.join("report.pdf"), &pdf).unwrap();
    let out = Command::new("pdftoppm")
        .args(["-png", "-r", "70"])
        .arg(dir.join("report.pdf"))
        .arg(dir.join("page"))
        .output()
        .unwrap();
    assert!(out.status.success(), "pdftoppm: {}", String::from_utf8_lossy(&out.stderr));
    let text = Command::new("pdftotext").arg(dir.join("report.pdf")).arg("-").output().unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("Digests pulled but never verified") && text.contains("<script>alert(1)</script>"), "{text}");
    let pages =
        std::fs::read_dir(&dir).unwrap().filter(|f| f.as_ref().unwrap().path().extension().is_some_and(|e| e == "png"));
    assert!(pages.count() >= 2, "pages in {}", dir.display());
    eprintln!("report pages: {}", dir.display());
}
