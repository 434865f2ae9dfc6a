//! Docker credential helpers (`credHelpers`, `credsStore` in config.json): `docker-credential-NAME get` run
//! from `PATH` without a shell, the server URL on stdin, `{"Username", "Secret"}` on stdout.
//!
//! Owns: running one helper within a time and output bound. Must not touch: which helper a host uses
//! (`credentials.rs`) or logs of what a helper printed: its output holds the secret.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Deserialize;
use zeroize::Zeroizing;

use super::RegistryCredentials;
use super::credentials::Secret;

/// The most of a helper's stdout read: one small JSON object.
const MAX_OUTPUT_BYTES: u64 = 64 * 1024;
/// How long a helper may take (a keychain prompt is not waited for).
const TIMEOUT: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(20);
/// The user name helpers give for an identity token, which notarium does not exchange.
const IDENTITY_TOKEN_USER: &str = "<token>";

/// The credentials helper `name` holds for `server_url`: `None` when it has none (it exits non-zero, as
/// helpers do for "credentials not found"); an error names the helper, never what it printed.
pub(super) fn get(name: &str, server_url: &str) -> Result<Option<RegistryCredentials>, String> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)) {
        return Err(format!("credential helper name {name:?} is not a plain name"));
    }
    let program = format!("docker-credential-{name}");
    let mut child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("{program} cannot be run: {}", e.kind()))?;
    let mut stdin = child.stdin.take().expect("stdin is piped");
    // A helper that exits before reading its input answers through its exit code.
    let _ = stdin.write_all(server_url.as_bytes()).and_then(|()| stdin.write_all(b"\n"));
    drop(stdin);
    let stdout = child.stdout.take().expect("stdout is piped");
    let reader = std::thread::spawn(move || {
        let mut output = Zeroizing::new(Vec::new());
        let _ = stdout.take(MAX_OUTPUT_BYTES + 1).read_to_end(&mut output);
        output
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| format!("{program}: {}", e.kind()))? {
            break status;
        }
        if started.elapsed() > TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("{program} did not answer within {} seconds", TIMEOUT.as_secs()));
        }
        std::thread::sleep(POLL);
    };
    let output = reader.join().map_err(|_| format!("{program}: its output could not be read"))?;
    if !status.success() {
        return Ok(None);
    }
    parse(&output).map_err(|reason| format!("{program}: {reason}"))
}

#[derive(Deserialize)]
struct HelperAnswer {
    #[serde(rename = "Username")]
    username: String,
    #[serde(rename = "Secret")]
    secret: Secret,
}

fn parse(output: &[u8]) -> Result<Option<RegistryCredentials>, String> {
    if output.len() as u64 > MAX_OUTPUT_BYTES {
        return Err(format!("printed more than {MAX_OUTPUT_BYTES} bytes"));
    }
    let answer: HelperAnswer =
        serde_json::from_slice(output).map_err(|_| "printed no {\"Username\", \"Secret\"} object".to_owned())?;
    if answer.username == IDENTITY_TOKEN_USER || answer.secret.0.is_empty() {
        return Ok(None);
    }
    Ok(Some(RegistryCredentials { username: answer.username, password: answer.secret.0 }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_is_username_and_secret_and_identity_tokens_are_skipped() {
        let found = parse(br#"{"ServerURL":"r.example","Username":"u","Secret":"s"}"#).unwrap().unwrap();
        assert_eq!((found.username.as_str(), found.password.as_str()), ("u", "s"));
        assert!(parse(br#"{"Username":"<token>","Secret":"t"}"#).unwrap().is_none());
        let error = parse(b"SECRET-ish garbage").unwrap_err();
        assert!(!error.contains("SECRET"), "{error}");
    }

    #[test]
    fn a_name_with_a_path_is_refused_before_anything_runs() {
        assert!(get("../../bin/sh", "r.example").unwrap_err().contains("not a plain name"));
    }
}
