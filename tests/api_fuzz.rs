//! schemathesis (PyPI, installed by scripts/install-test-deps.sh) fuzzes every operation of the served
//! OpenAPI document on a live `notarium serve` with a real registry holding a real image: no answer may be
//! a 5xx (see tests/schemathesis/hooks.py for the one upstream 502 that is allowed), every answer must
//! match its documented status, media type and schema, and input the document rules out must get a 4xx. Bounded: examples per operation and a time budget.

use crate::support;

use std::process::{Command, Stdio};

use support::{EXAMPLE_KEYS, Notarium, ROOT, Registry};

/// No 5xx; every answer inside its documented status, media type and schema; input the document rules out
/// is refused with a 4xx.
const CHECKS: &str = "not_a_server_error,response_schema_conformance,status_code_conformance,\
                      content_type_conformance,negative_data_rejection";
const EXAMPLES_PER_OPERATION: &str = "30";
const SECONDS_AT_MOST: &str = "120";
const EVENTS_SECRET: &str = "fuzz-events-secret";

/// Registry events on and authentication required (the keys are `EXAMPLE_KEYS`).
const CONFIG: &str = r#"
[events]
registry_secret_env = "NOTARIUM_TEST_EVENTS_SECRET"

# Every operation is fuzzed as a caller with its role (tokens per role in schemathesis' config), as often as
# the fuzzer likes.
[auth]
required = true
rate_per_minute = 0
public_rate_per_minute = 0
failed_auth_per_minute = 0
"#;

/// Requests the fuzzer must have got through to the end, or it fuzzed only the input checks.
const REACHED: [&str; 4] = [
    r#"method="POST",route="/v1/sign",status="201""#,
    r#"method="POST",route="/v1/attest",status="201""#,
    r#"method="POST",route="/v1/verify",status="200""#,
    r#"method="POST",route="/v1/events/registry",status="200""#,
];

#[test]
fn schemathesis_finds_no_server_error_and_no_answer_outside_the_document() {
    let registry = Registry::start();
    let notarium = Notarium::start_with_config(
        &format!("{CONFIG}{EXAMPLE_KEYS}"),
        &[&registry.host],
        &[("NOTARIUM_TEST_EVENTS_SECRET", EVENTS_SECRET)],
    );
    let digest = support::push_image(&registry, "fuzz/app", "v1", "fuzzed");
    let image = format!("{}/fuzz/app@{digest}", registry.host);
    let reports = tempfile::tempdir().unwrap();
    let config = reports.path().join("schemathesis.toml");
    std::fs::write(&config, credentials(&notarium)).unwrap();
    let out = Command::new(support::tool("schemathesis"))
        .arg("--config-file")
        .arg(&config)
        .args(["run", &format!("{}/v1/openapi.json", notarium.url)])
        .args(["--checks", CHECKS, "--phases", "examples,coverage,fuzzing"])
        .args(["--max-examples", EXAMPLES_PER_OPERATION, "--max-time", SECONDS_AT_MOST])
        // One worker: hypothesis on CPython 3.11 fails with "AST constructor recursion depth mismatch" when two
        // threads describe strategies at once.
        .args(["--seed", "1", "--workers", "1", "--request-timeout", "30"])
        .args(["--report", "junit", "--report-dir"])
        .arg(reports.path())
        // Its caches (.schemathesis, .hypothesis) land there too, not in the work tree.
        .current_dir(reports.path())
        .env("SCHEMATHESIS_HOOKS", "hooks")
        .env("PYTHONPATH", format!("{ROOT}/tests/schemathesis"))
        .env("NOTARIUM_FUZZ_IMAGE", &image)
        .stdin(Stdio::null())
        .output()
        .expect("schemathesis runs");
    let report = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "schemathesis failed:\n{report}\nserver log:\n{}", server_log_tail(&notarium));
    println!("{report}");
    let metrics = notarium.get_text("/metrics").1;
    for reached in REACHED {
        assert!(metrics.contains(reached), "no fuzzed request answered {reached}:\n{metrics}\n{report}");
    }
}

/// schemathesis' credentials for each security scheme of the document: a token per role, made with
/// `notarium token create` (authentication is required on this server), and the registry-events secret.
fn credentials(notarium: &Notarium) -> String {
    let mut config = format!("[auth.openapi.registry_secret]\nbearer = \"{EVENTS_SECRET}\"\n");
    for (role, scope) in
        [("signer", &["--repos", "**", "--keys", "*"][..]), ("verifier", &[]), ("auditor", &[]), ("admin", &[])]
    {
        let out = Command::new(env!("CARGO_BIN_EXE_notarium"))
            .args(["token", "create", "--role", role])
            .args(scope)
            .current_dir(ROOT)
            .env("NOTARIUM_DATABASE_URL", notarium.database_url())
            .env_remove("NOTARIUM_CONFIG")
            .output()
            .unwrap();
        assert!(out.status.success(), "token create {role}: {}", String::from_utf8_lossy(&out.stderr));
        let token = String::from_utf8(out.stdout).unwrap();
        config.push_str(&format!("[auth.openapi.{role}]\nbearer = \"{}\"\n", token.trim()));
    }
    config
}

fn server_log_tail(notarium: &Notarium) -> String {
    let log = notarium.log();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(80)..].join("\n")
}
