//! `notarium log export` (through a server) and `notarium log verify` (offline: no server, no database).

use std::path::Path;

use super::{CliError, Output};
use crate::keys::PublicKey;
use crate::register::verify::verify_export;

pub async fn export(server: &str, from: Option<&str>, to: Option<&str>, output: &Path) -> Result<(), CliError> {
    let mut query = Vec::new();
    if let Some(from) = from {
        query.push(("from", from));
    }
    if let Some(to) = to {
        query.push(("to", to));
    }
    let url = format!("{}/v1/log/export", server.trim_end_matches('/'));
    let response = reqwest::Client::new()
        .get(url)
        .query(&query)
        .send()
        .await
        .map_err(|e| CliError::Unavailable(format!("cannot reach notarium at {server}: {e}")))?;
    let status = response.status();
    let body = response.text().await.map_err(|e| CliError::Unavailable(e.to_string()))?;
    if !status.is_success() {
        let detail = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["detail"].as_str().map(str::to_owned))
            .unwrap_or(body);
        return Err(CliError::Refused(detail));
    }
    std::fs::write(output, &body).map_err(|e| CliError::Usage(format!("cannot write {}: {e}", output.display())))?;
    eprintln!("exported {} entries to {}", body.lines().count().saturating_sub(1), output.display());
    Ok(())
}

pub fn verify(file: &Path, log_key: &Path, output: Output) -> Result<(), CliError> {
    let text =
        std::fs::read_to_string(file).map_err(|e| CliError::Usage(format!("cannot read {}: {e}", file.display())))?;
    let pem = std::fs::read_to_string(log_key)
        .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", log_key.display())))?;
    let key = PublicKey::from_pem(&pem)
        .ok()
        .and_then(|k| k.ed25519_bytes())
        .ok_or_else(|| CliError::Usage(format!("{} is not an Ed25519 public key", log_key.display())))?;
    match verify_export(&text, &key) {
        Ok(v) => {
            match output {
                Output::Json => println!(
                    "{}",
                    serde_json::json!({"verified": true, "origin": v.origin, "tree_size": v.tree_size, "entries": v.entries})
                ),
                Output::Text => {
                    println!(
                        "verified {} entries against the checkpoint of {} at size {}",
                        v.entries, v.origin, v.tree_size
                    )
                }
            }
            Ok(())
        }
        Err(failure) => {
            if output == Output::Json {
                println!("{}", serde_json::json!({"verified": false, "line": failure.line, "reason": failure.reason}));
            }
            Err(CliError::Refused(format!("{}: {failure}", file.display())))
        }
    }
}
