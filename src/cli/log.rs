//! `notarium log export` (through a server) and `notarium log verify` (offline: no server, no database).

use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};

use futures_util::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};

use super::{CliError, Output};
use crate::api::EXPORT_COUNT_HEADER;
use crate::formats::checkpoint::Checkpoint;
use crate::keys::PublicKey;
use crate::register::export::ExportFormat;
use crate::register::verify::{TrustedCheckpoint, verify_export};

/// What to export.
pub struct PeriodArgs {
    pub from: Option<String>,
    pub to: Option<String>,
    pub format: ExportFormat,
    pub since: Option<PathBuf>,
}

fn read(path: &Path) -> Result<String, CliError> {
    std::fs::read_to_string(path).map_err(|e| CliError::Usage(format!("cannot read {}: {e}", path.display())))
}

/// The tree size an earlier checkpoint file states (its signature is checked at verification).
fn checkpoint_size(path: &Path) -> Result<u64, CliError> {
    let note = read(path)?;
    let body = crate::formats::checkpoint::parse_note(&note).map(|(body, _)| body);
    body.and_then(|b| Checkpoint::parse_body(&b))
        .map(|c| c.size)
        .map_err(|e| CliError::Usage(format!("{} is not a checkpoint: {e}", path.display())))
}

pub async fn export(server: &str, period: &PeriodArgs, file: &Path, output: Output) -> Result<(), CliError> {
    let mut query = vec![("format", period.format.name().to_owned())];
    query.extend(period.from.clone().map(|v| ("from", v)));
    query.extend(period.to.clone().map(|v| ("to", v)));
    if let Some(since) = &period.since {
        query.push(("since", checkpoint_size(since)?.to_string()));
    }
    let unreachable = |e: reqwest::Error| CliError::Unavailable(format!("cannot reach notarium at {server}: {e}"));
    let url = format!("{}/v1/log/export", server.trim_end_matches('/'));
    let request = super::client::with_token(reqwest::Client::new().get(url).query(&query));
    let response = request.send().await.map_err(unreachable)?;
    let status = response.status().as_u16();
    if status >= 400 {
        return Err(CliError::from_problem(status, &response.text().await.map_err(unreachable)?));
    }
    let count = response.headers().get(EXPORT_COUNT_HEADER).and_then(|v| v.to_str().ok()?.parse().ok());
    let progress = progress_bar(count);
    let cannot_write = |e: std::io::Error| CliError::Usage(format!("cannot write {}: {e}", file.display()));
    let path = file;
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).map_err(cannot_write)?);
    let mut body = response.bytes_stream();
    let mut lines = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| CliError::Unavailable(format!("the export broke off: {e}")))?;
        file.write_all(&chunk).map_err(cannot_write)?;
        let new_lines = chunk.iter().filter(|&&b| b == b'\n').count() as u64;
        progress.inc(new_lines.min(count.unwrap_or(u64::MAX).saturating_sub(progress.position())));
        lines += new_lines;
    }
    file.flush().map_err(cannot_write)?;
    progress.finish_and_clear();
    let entries = lines.saturating_sub(1);
    if count.is_some_and(|c| c != entries) {
        return Err(CliError::Unavailable(format!(
            "the server promised {} entries and sent {entries}",
            count.unwrap()
        )));
    }
    let summary = serde_json::json!({"entries": entries, "file": path, "format": period.format.name()});
    output.print(&summary, || format!("exported {entries} entries to {}", path.display()));
    Ok(())
}

/// A bar on stderr when it is a terminal (hidden otherwise), counting entries.
fn progress_bar(count: Option<u64>) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(count, indicatif::ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template("{bar:40} {pos}/{len} entries, {per_sec}, eta {eta}")
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar
}

pub fn verify(file: &Path, log_key: &Path, since: Option<&Path>, output: Output) -> Result<(), CliError> {
    let key = PublicKey::from_pem(&read(log_key)?)
        .ok()
        .and_then(|k| k.ed25519_bytes())
        .ok_or_else(|| CliError::Usage(format!("{} is not an Ed25519 public key", log_key.display())))?;
    let earlier = since.map(read).transpose()?;
    let trusted = earlier.as_deref().map(|note| TrustedCheckpoint { note });
    let reader = BufReader::new(
        std::fs::File::open(file).map_err(|e| CliError::Usage(format!("cannot read {}: {e}", file.display())))?,
    );
    match verify_export(reader, &key, trusted) {
        Ok(v) => {
            let summary = serde_json::json!({"verified": true, "origin": v.origin, "tree_size": v.tree_size, "entries": v.entries});
            output.print(&summary, || {
                format!("verified {} entries against the checkpoint of {} at size {}", v.entries, v.origin, v.tree_size)
            });
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
