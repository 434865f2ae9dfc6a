//! CI workload identity end to end: `notarium sign|attest --id-token github|gitlab|env:VAR|file:PATH` against a
//! server trusting a test issuer, the GitHub side played by a local Actions token endpoint; and the GitHub
//! Action's script steps (`scripts/ci/`) run with the variables GitHub sets.

use crate::support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use serde_json::{Value, json};
use support::*;

/// A registry with one pushed image (`acme/app`), and a server trusting the test issuer: tokens of
/// `acme/app-*` on main may sign in `acme/*` with `dev-ecdsa`.
struct Ci {
    registry: Registry,
    server: Notarium,
    issuer: Arc<TestIssuer>,
    image: String,
    auditor: String,
}

fn ci() -> Ci {
    let registry = Registry::start();
    let issuer = Arc::new(TestIssuer::new());
    let rules = format!(
        "[[auth.oidc.rules]]\nrole = \"signer\"\nrepos = [\"{}/acme/*\"]\nkeys = [\"dev-ecdsa\"]\n\
         claims = {{ repository = \"acme/app-*\", ref = \"refs/heads/main\" }}\n",
        registry.host
    );
    let server = Notarium::start_with_config(&issuer.config("notarium", &rules), &[&registry.host], &[]);
    let digest = push_image(&registry, "acme/app", "v1", "ci tokens");
    let image = format!("{}/acme/app@{digest}", registry.host);
    let (auditor, _) = server.create_token(&["--role", "auditor"]);
    Ci { registry, server, issuer, image, auditor }
}

/// The claims of a `release` workflow run on `repository`'s main branch.
fn workflow_claims(repository: &str) -> Value {
    json!({"sub": format!("repo:{repository}:ref:refs/heads/main"), "repository": repository,
           "ref": "refs/heads/main", "workflow": "release", "repository_owner": "acme"})
}

/// `notarium ARGS` with none of the CI variables of this machine, and `env` on top.
fn notarium(args: &[&str], env: &[(&str, String)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_notarium"))
        .args(args)
        .env_remove("NOTARIUM_TOKEN")
        .env_remove("NOTARIUM_ID_TOKEN")
        .env_remove("ACTIONS_ID_TOKEN_REQUEST_URL")
        .env_remove("ACTIONS_ID_TOKEN_REQUEST_TOKEN")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn text(output: &Output) -> (String, String) {
    (String::from_utf8_lossy(&output.stdout).into_owned(), String::from_utf8_lossy(&output.stderr).into_owned())
}

/// The register entry at `index`.
fn entry(ci: &Ci, index: u64) -> Value {
    let path = format!("/v1/log/entries?start={index}&end={}", index + 1);
    let (status, body) = call(&ci.server, "GET", &path, &ci.auditor, None);
    assert_eq!(status, 200, "{body}");
    body["entries"][0]["entry"].clone()
}

/// No secret appears in any of `outputs` nor in the server's log.
fn assert_no_secret(ci: &Ci, outputs: &[&str], secrets: &[String]) {
    let log = ci.server.log();
    for secret in secrets {
        assert!(secret.len() > 16, "not a secret worth looking for: {secret}");
        for output in outputs.iter().chain([&log.as_str()]) {
            assert!(!output.contains(secret.as_str()), "a token appears in an output: {output}");
        }
    }
}

fn secrets_of(endpoint: &ActionsTokenEndpoint) -> Vec<String> {
    let mut secrets = endpoint.issued.lock().unwrap().clone();
    secrets.push(endpoint.request_token.clone());
    secrets
}

#[test]
fn sign_with_id_token_github_asks_the_actions_endpoint_and_the_register_names_the_identity() {
    let ci = ci();
    let endpoint = ActionsTokenEndpoint::start(ci.issuer.clone(), workflow_claims("acme/app-api"));
    let args = ["sign", &ci.image, "--key", "dev-ecdsa", "--server", &ci.server.url, "--id-token", "github"];
    let output = notarium(&[&args[..], &["--output", "json"]].concat(), &endpoint.variables());
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(*endpoint.audiences.lock().unwrap(), ["notarium"]);

    let answer: Value = serde_json::from_str(&stdout).unwrap();
    let signed = entry(&ci, answer["log"]["index"].as_u64().unwrap());
    assert_eq!(signed["kind"], "sign");
    assert_eq!(
        signed["actor"]["name"],
        format!(
            "oidc:{CI_ISSUER} sub=repo:acme/app-api:ref:refs/heads/main ref=refs/heads/main repository=acme/app-api"
        )
    );
    // The identity is in the signature payload too.
    let digest = answer["digest"].as_str().unwrap();
    let sig = ci.registry.manifest("acme/app", &format!("{}.sig", digest.replace(':', "-"))).unwrap();
    let sig: Value = serde_json::from_slice(&sig).unwrap();
    let payload: Value =
        serde_json::from_slice(&ci.registry.blob("acme/app", sig["layers"][0]["digest"].as_str().unwrap())).unwrap();
    assert_eq!(payload["optional"]["notarium.dev/oidc.claim.repository"], "acme/app-api");
    assert_no_secret(&ci, &[&stdout, &stderr], &secrets_of(&endpoint));

    // Another audience is asked for as given.
    let output = notarium(&[&args[..], &["--audience", "https://notarium.example/ci"]].concat(), &endpoint.variables());
    assert_eq!(output.status.code(), Some(1), "a token for another audience is refused: {}", text(&output).1);
    assert_eq!(endpoint.audiences.lock().unwrap()[1], "https://notarium.example/ci");
    let (stdout, stderr) = text(&output);
    assert!(stderr.contains("--id-token github was refused"), "{stderr}");
    assert_no_secret(&ci, &[&stdout, &stderr], &secrets_of(&endpoint));
}

#[test]
fn an_id_token_for_a_repository_outside_the_claim_rules_is_refused_with_exit_1() {
    let ci = ci();
    let endpoint = ActionsTokenEndpoint::start(ci.issuer.clone(), workflow_claims("evil/fork"));
    let output = notarium(
        &["sign", &ci.image, "--key", "dev-ecdsa", "--server", &ci.server.url, "--id-token", "github"],
        &endpoint.variables(),
    );
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.starts_with("notarium: ") && stderr.contains("no claim rule of this issuer matches"), "{stderr}");
    assert_eq!(
        call(&ci.server, "GET", "/v1/log/entries?start=0&end=100", &ci.auditor, None).1["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["entry"]["kind"] == "sign")
            .count(),
        0
    );
    assert_no_secret(&ci, &[&stdout, &stderr], &secrets_of(&endpoint));
}

#[test]
fn a_refused_request_token_or_a_job_without_id_token_permission_is_a_clear_error_without_secrets() {
    let ci = ci();
    let endpoint = ActionsTokenEndpoint::start(ci.issuer.clone(), workflow_claims("acme/app-api"));
    let sign = ["sign", &ci.image, "--key", "dev-ecdsa", "--server", &ci.server.url, "--id-token", "github"];

    let wrong = [
        ("ACTIONS_ID_TOKEN_REQUEST_URL", endpoint.url.clone()),
        ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "ghs_wrong_request_token_0123".into()),
    ];
    let output = notarium(&sign, &wrong);
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("answered 401") && stderr.contains("ACTIONS_ID_TOKEN_REQUEST_TOKEN"), "{stderr}");
    assert_no_secret(&ci, &[&stdout, &stderr], &["ghs_wrong_request_token_0123".into()]);

    for (missing, present) in [(0, 1), (1, 0)] {
        let variables = endpoint.variables();
        let output = notarium(&sign, &[variables[present].clone()]);
        let (_, stderr) = text(&output);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(variables[missing].0) && stderr.contains("permissions: id-token: write"), "{stderr}");
        assert!(!stderr.contains(&variables[present].1), "{stderr}");
    }

    // The request token goes only to https or loopback endpoints.
    let plain = [
        ("ACTIONS_ID_TOKEN_REQUEST_URL", "http://pipelines.example.test/idtoken".into()),
        endpoint.variables()[1].clone(),
    ];
    let (_, stderr) = text(&notarium(&sign, &plain));
    assert!(stderr.contains("not an https URL"), "{stderr}");
    assert!(endpoint.issued.lock().unwrap().is_empty());
}

#[test]
fn env_file_and_gitlab_sources_sign_and_attest_with_the_identity_they_hold() {
    let ci = ci();
    let gitlab_claims = json!({"sub": "project_path:acme/app-web:ref_type:branch:ref:main", "repository": "acme/app-web",
        "ref": "refs/heads/main", "project_path": "acme/app-web"});
    let token = ci.issuer.token("notarium", &gitlab_claims);
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("id-token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    let predicate = dir.path().join("predicate.json");
    std::fs::write(&predicate, r#"{"builder": "ci"}"#).unwrap();

    let server = ci.server.url.as_str();
    let sign = ["sign", &ci.image, "--key", "dev-ecdsa", "--server", server, "--output", "json"];
    let attest = [
        "attest",
        &ci.image,
        "--key",
        "dev-ecdsa",
        "--server",
        server,
        "--output",
        "json",
        "--type",
        "https://example.test/ci/v1",
        "--predicate",
        predicate.to_str().unwrap(),
    ];
    let file_source = format!("file:{}", token_file.display());
    let runs = [
        ("gitlab", &sign[..], vec![("NOTARIUM_ID_TOKEN", token.clone())]),
        ("env:MY_CI_JWT", &attest[..], vec![("MY_CI_JWT", token.clone())]),
        (file_source.as_str(), &attest[..], vec![]),
    ];
    for (source, command, env) in runs {
        let output = notarium(&[command, &["--id-token", source]].concat(), &env);
        let (stdout, stderr) = text(&output);
        assert!(output.status.success(), "{source}: {stderr}");
        let answer: Value = serde_json::from_str(&stdout).unwrap();
        if let Some(index) = answer["log"]["index"].as_u64() {
            let actor = entry(&ci, index)["actor"]["name"].as_str().unwrap().to_owned();
            assert!(actor.starts_with(&format!("oidc:{CI_ISSUER} sub=project_path:acme/app-web")), "{source}: {actor}");
        }
        assert_no_secret(&ci, &[&stdout, &stderr], std::slice::from_ref(&token));
    }

    // Each source names itself, never what it holds, when it has nothing or not a token.
    let not_a_token = "ntk_not_a_jwt_but_a_secret";
    let failures = [
        ("gitlab", vec![], "NOTARIUM_ID_TOKEN is not set"),
        ("env:MY_CI_JWT", vec![], "the variable MY_CI_JWT is not set"),
        ("env:MY_CI_JWT", vec![("MY_CI_JWT", not_a_token.to_owned())], "not a JWT"),
        ("file:/nonexistent/token", vec![], "file:/nonexistent/token: cannot read it"),
    ];
    for (source, env, expected) in failures {
        let output = notarium(&[&sign[..], &["--id-token", source]].concat(), &env);
        let (_, stderr) = text(&output);
        assert_eq!(output.status.code(), Some(2), "{source}: {stderr}");
        assert!(stderr.contains(expected) && !stderr.contains(not_a_token), "{source}: {stderr}");
    }
}

/// Runs the Action's step `script` (under scripts/ci/) as the runner does.
fn action_step(script: &str, workspace: &Path, env: &[(&str, String)]) -> Output {
    let script = Path::new(ROOT).join("scripts/ci").join(script);
    runner_bash(&[script.to_str().unwrap()], workspace, env)
}

/// `bash ARGS` as GitHub's runner starts it: in the workspace, with only PATH, HOME and `env`.
fn runner_bash(args: &[&str], workspace: &Path, env: &[(&str, String)]) -> Output {
    Command::new("bash")
        .args(args)
        .current_dir(workspace)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap())
        .env("HOME", workspace)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// What running action.yml gave: its outputs and everything its steps printed.
struct ActionRun {
    outputs: BTreeMap<String, String>,
    printed: String,
}

/// Runs action.yml's composite steps as GitHub's runner does: `with` over the inputs' defaults, each step's
/// `if:` and `env:` expressions evaluated, `run:` in bash from the workspace with GITHUB_ACTION_PATH at the
/// repository and a GITHUB_OUTPUT file of its own, then the action's `outputs:` from the steps'. The
/// step named `replaced` is skipped (the install: NOTARIUM_BIN in `runner_env` points at the binary).
fn run_action(with: &[(&str, &str)], runner_env: &[(&str, String)], replaced: &str, workspace: &Path) -> ActionRun {
    let action: Value =
        yaml_serde::from_str(&std::fs::read_to_string(Path::new(ROOT).join("action.yml")).unwrap()).unwrap();
    let mut inputs: BTreeMap<String, String> = action["inputs"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, input)| (name.clone(), input["default"].as_str().unwrap_or_default().to_owned()))
        .collect();
    inputs.extend(with.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    let mut step_outputs: BTreeMap<String, String> = BTreeMap::new();
    let mut printed = String::new();
    for (n, step) in action["runs"]["steps"].as_array().unwrap().iter().enumerate() {
        if step["name"] == replaced || !condition(step["if"].as_str(), &inputs) {
            continue;
        }
        let output_file = workspace.join(format!("github_output_{n}"));
        let mut env = runner_env.to_vec();
        env.push(("GITHUB_OUTPUT", output_file.display().to_string()));
        env.push(("GITHUB_ACTION_PATH", ROOT.to_owned()));
        for (name, value) in step["env"].as_object().into_iter().flatten() {
            env.push((name.as_str(), expression(value.as_str().unwrap(), &inputs, &step_outputs)));
        }
        let script = step["run"].as_str().unwrap();
        let output = runner_bash(&["--noprofile", "--norc", "-e", "-o", "pipefail", "-c", script], workspace, &env);
        let (stdout, stderr) = text(&output);
        printed.push_str(&format!("{stdout}{stderr}"));
        assert!(output.status.success(), "step {}: {stdout}{stderr}", step["name"]);
        if let Some(id) = step["id"].as_str() {
            for line in std::fs::read_to_string(&output_file).unwrap_or_default().lines() {
                let (name, value) = line.split_once('=').unwrap();
                step_outputs.insert(format!("steps.{id}.outputs.{name}"), value.to_owned());
            }
        }
    }
    let outputs = action["outputs"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, output)| (name.clone(), expression(output["value"].as_str().unwrap(), &inputs, &step_outputs)))
        .collect();
    ActionRun { outputs, printed }
}

/// A step's `if:`: absent, or `inputs.NAME == 'LITERAL'` / `!=` (the only forms action.yml may use).
fn condition(condition: Option<&str>, inputs: &BTreeMap<String, String>) -> bool {
    let Some(condition) = condition else { return true };
    let (name, equal, literal) = if let Some((name, literal)) = condition.split_once(" == ") {
        (name, true, literal)
    } else {
        let (name, literal) = condition.split_once(" != ").unwrap_or_else(|| panic!("unsupported if: {condition}"));
        (name, false, literal)
    };
    let name = name.trim().strip_prefix("inputs.").unwrap_or_else(|| panic!("unsupported if: {condition}"));
    let literal = literal.trim().strip_prefix('\'').and_then(|l| l.strip_suffix('\'')).unwrap();
    (inputs[name] == literal) == equal
}

/// A value that is one `${{ inputs.NAME }}`, `${{ steps.ID.outputs.NAME }}` or `${{ github.action_repository }}`.
fn expression(value: &str, inputs: &BTreeMap<String, String>, steps: &BTreeMap<String, String>) -> String {
    let Some(inner) = value.strip_prefix("${{").and_then(|v| v.strip_suffix("}}")).map(str::trim) else {
        return value.to_owned();
    };
    if let Some(name) = inner.strip_prefix("inputs.") {
        return inputs.get(name).unwrap_or_else(|| panic!("no input {name}")).clone();
    }
    if inner.starts_with("steps.") {
        return steps.get(inner).cloned().unwrap_or_default();
    }
    assert_eq!(inner, "github.action_repository", "unsupported expression {value}");
    "acme/notarium".to_owned()
}

#[test]
fn the_github_action_signs_attests_its_provenance_verifies_and_outputs_the_register_indexes() {
    let ci = ci();
    let endpoint = ActionsTokenEndpoint::start(ci.issuer.clone(), workflow_claims("acme/app-api"));
    let runner = tempfile::tempdir().unwrap();
    let (workspace, temp) = (runner.path().join("workspace"), runner.path().join("temp"));
    std::fs::create_dir_all(&workspace).unwrap();
    std::fs::create_dir_all(&temp).unwrap();
    let pem = std::fs::read_to_string(ci.server.public_key_file("dev-ecdsa", runner.path())).unwrap();
    let policy = format!(
        "default: deny\npolicies:\n  - name: app\n    images: [\"{}/acme/*\"]\n    authorities:\n      - public_key: |\n{}\
         \n    attestations:\n      - predicate_type: https://slsa.dev/provenance/v1\n        conditions:\n          - \
         predicate.buildDefinition.externalParameters.workflow.repository == \"https://github.com/acme/app-api\"\n",
        ci.registry.host,
        pem.lines().map(|l| format!("          {l}")).collect::<Vec<_>>().join("\n")
    );
    std::fs::write(workspace.join("policy.yaml"), policy).unwrap();

    let [url, request_token] = endpoint.variables();
    let github = [
        ("GITHUB_ACTIONS", "true".to_owned()),
        ("GITHUB_SERVER_URL", "https://github.com".to_owned()),
        ("GITHUB_REPOSITORY", "acme/app-api".to_owned()),
        ("GITHUB_REF", "refs/heads/main".to_owned()),
        ("GITHUB_SHA", "0123456789abcdef0123456789abcdef01234567".to_owned()),
        ("GITHUB_WORKFLOW_REF", "acme/app-api/.github/workflows/release.yml@refs/heads/main".to_owned()),
        ("GITHUB_RUN_ID", "4242".to_owned()),
        ("GITHUB_RUN_ATTEMPT", "1".to_owned()),
        ("GITHUB_EVENT_NAME", "push".to_owned()),
        ("GITHUB_WORKSPACE", workspace.display().to_string()),
        ("RUNNER_TEMP", temp.display().to_string()),
        url,
        request_token,
        ("NOTARIUM_BIN", env!("CARGO_BIN_EXE_notarium").to_owned()),
        ("NOTARIUM_INSECURE_REGISTRIES", ci.registry.host.clone()),
    ];
    let with = [
        ("version", "0.1.0"),
        ("server", ci.server.url.as_str()),
        ("image", ci.image.as_str()),
        ("key", "dev-ecdsa"),
        ("predicate", "slsa"),
        ("policy", "policy.yaml"),
    ];
    let run = run_action(&with, &github, "Install notarium", &workspace);

    let sign = entry(&ci, run.outputs["log-index"].parse().unwrap());
    assert_eq!(sign["kind"], "sign");
    assert!(run.outputs["signature-tag"].ends_with(".sig"));
    let attest = entry(&ci, run.outputs["attest-log-index"].parse().unwrap());
    assert_eq!(attest["kind"], "attest");
    assert!(attest["actor"]["name"].as_str().unwrap().contains("repository=acme/app-api"), "{attest}");
    let provenance: Value =
        serde_json::from_str(&std::fs::read_to_string(temp.join("notarium-provenance.json")).unwrap()).unwrap();
    let definition = &provenance["buildDefinition"];
    assert_eq!(definition["externalParameters"]["workflow"]["path"], ".github/workflows/release.yml");
    assert_eq!(
        definition["resolvedDependencies"][0]["digest"]["gitCommit"],
        "0123456789abcdef0123456789abcdef01234567"
    );
    assert!(run.printed.contains("verified=true"), "{}", run.printed);
    assert_no_secret(&ci, &[&run.printed], &secrets_of(&endpoint));

    // Verifying only (a deploy job) needs no server and no token; a tag instead of the pushed digest is
    // refused before anything is asked.
    let deploy = [("version", "0.1.0"), ("image", ci.image.as_str()), ("sign", "false"), ("policy", "policy.yaml")];
    let deploy_env = [
        ("NOTARIUM_BIN", env!("CARGO_BIN_EXE_notarium").to_owned()),
        ("NOTARIUM_INSECURE_REGISTRIES", ci.registry.host.clone()),
        ("NOTARIUM_POLICY", "policy.yaml".to_owned()),
    ];
    let run = run_action(&deploy, &deploy_env, "Install notarium", &workspace);
    assert!(run.printed.contains("verified=true") && run.outputs["log-index"].is_empty(), "{}", run.printed);
    let tag = [("NOTARIUM_IMAGE", format!("{}/acme/app:v1", ci.registry.host))];
    let tagged = action_step("verify.sh", &workspace, &[&deploy_env[..], &tag[..]].concat());
    assert_eq!(tagged.status.code(), Some(2));
    assert!(text(&tagged).1.contains("must be a digest reference"), "{}", text(&tagged).1);
}

/// A release of the binary under test as `install.sh` expects it in `dir`: `notarium-1.2.3-TARGET.tar.gz` and
/// its `.sha256`. Returns the download URL pattern (file://) and the checksum file.
fn local_release(dir: &Path) -> (String, std::path::PathBuf) {
    let target = format!("{}-unknown-linux-gnu", std::env::consts::ARCH);
    let asset = dir.join(format!("notarium-1.2.3-{target}.tar.gz"));
    std::fs::copy(env!("CARGO_BIN_EXE_notarium"), dir.join("notarium")).unwrap();
    let packed = Command::new("tar").arg("-czf").arg(&asset).arg("-C").arg(dir).arg("notarium").output().unwrap();
    assert!(packed.status.success());
    let checksum = sha256_digest(&std::fs::read(&asset).unwrap());
    let checksum_file = dir.join(format!("notarium-1.2.3-{target}.tar.gz.sha256"));
    std::fs::write(&checksum_file, format!("{}  notarium.tar.gz\n", checksum.trim_start_matches("sha256:"))).unwrap();
    (format!("file://{}/notarium-{{version}}-{{target}}.tar.gz", dir.display()), checksum_file)
}

#[test]
fn the_install_step_puts_the_release_binary_on_the_path_only_when_its_checksum_matches() {
    let release = tempfile::tempdir().unwrap();
    let (pattern, checksum_file) = local_release(release.path());
    let runner = tempfile::tempdir().unwrap();
    let path_file = runner.path().join("github_path");
    let env = [
        ("NOTARIUM_VERSION", "v1.2.3".to_owned()),
        ("NOTARIUM_DOWNLOAD_URL", pattern),
        ("RUNNER_TEMP", runner.path().display().to_string()),
        ("GITHUB_PATH", path_file.display().to_string()),
    ];
    let installed = action_step("install.sh", runner.path(), &env);
    assert!(installed.status.success(), "{:?}", text(&installed));
    let dir = std::fs::read_to_string(&path_file).unwrap().trim().to_owned();
    let version = Command::new(Path::new(&dir).join("notarium")).arg("--version").output().unwrap();
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("notarium "));

    std::fs::write(&checksum_file, format!("{}  notarium.tar.gz\n", "0".repeat(64))).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let tampered = action_step("install.sh", runner.path(), &env);
    assert_eq!(tampered.status.code(), Some(2));
    assert!(text(&tampered).1.contains("does not match its published SHA-256"), "{:?}", text(&tampered));
    assert!(!Path::new(&dir).join("notarium").exists());
}

/// templates/notarium.yml with `with` over its inputs' defaults: the job's name and its definition.
fn gitlab_job(with: &[(&str, &str)]) -> (String, Value) {
    let template = std::fs::read_to_string(Path::new(ROOT).join("templates/notarium.yml")).unwrap();
    let (spec, job) = template.split_once("\n---\n").expect("a spec and a job document");
    let spec: Value = yaml_serde::from_str(spec).unwrap();
    let mut inputs: BTreeMap<String, String> = spec["spec"]["inputs"]
        .as_object()
        .unwrap()
        .iter()
        .filter_map(|(name, input)| {
            let default = &input["default"];
            let text =
                default.as_str().map(str::to_owned).or_else(|| (!default.is_null()).then(|| default.to_string()));
            text.map(|t| (name.clone(), t))
        })
        .collect();
    inputs.extend(with.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    let mut rendered = job.to_owned();
    for (name, value) in &inputs {
        rendered = rendered.replace(&format!("$[[ inputs.{name} ]]"), value);
    }
    assert!(!rendered.contains("$[["), "an input without a value: {rendered}");
    let jobs: Value = yaml_serde::from_str(&rendered).unwrap();
    let (name, job) = jobs.as_object().unwrap().iter().next().unwrap();
    (name.clone(), job.clone())
}

#[test]
fn the_gitlab_component_job_installs_signs_and_attests_with_its_id_token_and_leaves_the_indexes_in_dotenv() {
    let ci = ci();
    let release = tempfile::tempdir().unwrap();
    let (pattern, _) = local_release(release.path());
    let with = [
        ("version", "1.2.3"),
        ("download-url", pattern.as_str()),
        ("server", ci.server.url.as_str()),
        ("image", ci.image.as_str()),
        ("key", "dev-ecdsa"),
        ("predicate", "slsa"),
        ("job-name", "sign"),
    ];
    let (name, job) = gitlab_job(&with);
    assert_eq!(name, "sign");
    assert_eq!(job["id_tokens"]["NOTARIUM_ID_TOKEN"]["aud"], "notarium");
    assert_eq!(job["artifacts"]["reports"]["dotenv"], "notarium.env");

    // What GitLab gives the job: its variables, the ID token its id_tokens: block asked for, CI_*.
    let claims = json!({"sub": "project_path:acme/app-ops:ref_type:branch:ref:main", "repository": "acme/app-ops",
        "ref": "refs/heads/main", "project_path": "acme/app-ops"});
    let id_token = ci.issuer.token("notarium", &claims);
    let project = tempfile::tempdir().unwrap();
    let mut env: Vec<(&str, String)> = job["variables"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            (k.as_str(), v.as_str().unwrap_or_else(|| panic!("variable {k} is {v}, not a string")).to_owned())
        })
        .collect();
    env.extend([
        ("GITLAB_CI", "true".to_owned()),
        ("CI_PROJECT_DIR", project.path().display().to_string()),
        ("TMPDIR", project.path().display().to_string()),
        ("CI_PROJECT_URL", "https://gitlab.example.test/acme/app-ops".to_owned()),
        ("CI_SERVER_URL", "https://gitlab.example.test".to_owned()),
        ("CI_COMMIT_SHA", "89abcdef0123456789abcdef0123456789abcdef".to_owned()),
        ("CI_COMMIT_REF_NAME", "main".to_owned()),
        ("CI_JOB_NAME", "sign".to_owned()),
        ("CI_JOB_URL", "https://gitlab.example.test/acme/app-ops/-/jobs/7".to_owned()),
        ("CI_RUNNER_ID", "3".to_owned()),
        ("CI_JOB_TOKEN", "glcbt-job-token-not-to-be-printed".to_owned()),
        ("NOTARIUM_ID_TOKEN", id_token.clone()),
    ]);
    // GitLab runs the script's lines as one shell script (`set -eo pipefail`); the fetch of scripts/ci/ from
    // the component's project is replaced by a copy of the checkout's own.
    let fetch = format!("mkdir -p .notarium/ci && cp {ROOT}/scripts/ci/*.sh .notarium/ci/");
    let lines: Vec<&str> = job["script"]
        .as_array()
        .unwrap()
        .iter()
        .map(|line| line.as_str().unwrap())
        .map(|line| if line.contains("/repository/files/") { fetch.as_str() } else { line })
        .collect();
    assert_eq!(lines.iter().filter(|l| **l == fetch).count(), 1, "the template fetches its scripts once");
    let output = runner_bash(&["-e", "-o", "pipefail", "-c", &lines.join("\n")], project.path(), &env);
    let (stdout, stderr) = text(&output);
    let printed = format!("{stdout}{stderr}");
    assert!(output.status.success(), "{:?} {printed}", output.status);

    let dotenv = std::fs::read_to_string(project.path().join("notarium.env")).unwrap();
    let value = |name: &str| {
        let prefix = format!("{name}=");
        dotenv
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("no {name} in {dotenv}"))
            .to_owned()
    };
    let sign = entry(&ci, value("NOTARIUM_LOG_INDEX").parse().unwrap());
    assert_eq!(sign["kind"], "sign");
    assert!(sign["actor"]["name"].as_str().unwrap().contains("sub=project_path:acme/app-ops"), "{sign}");
    assert_eq!(entry(&ci, value("NOTARIUM_ATTEST_LOG_INDEX").parse().unwrap())["kind"], "attest");
    assert!(
        printed.contains(&format!("notarium {}", env!("CARGO_PKG_VERSION"))),
        "the release was installed: {printed}"
    );
    assert_no_secret(&ci, &[&printed, &dotenv], &[id_token, "glcbt-job-token-not-to-be-printed".to_owned()]);
}
