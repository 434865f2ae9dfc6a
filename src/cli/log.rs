//! `notarium log export` and `notarium log search` (through a server) and `notarium log verify` (offline: no
//! server, no database).

use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};

use clap::ValueEnum;
use futures_util::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};

use super::{CliError, Output};
use crate::api::EXPORT_COUNT_HEADER;
use crate::formats::checkpoint::Checkpoint;
use crate::keys::PublicKey;
use crate::register::export::ExportFormat;
use crate::register::verify::{TrustedCheckpoint, Verified, verify_export};

/// `--from` and `--to` of `log export` and `evidence export`.
#[derive(clap::Args, Debug, Clone)]
pub(super) struct Period {
    /// Start of the period (inclusive), RFC 3339 or YYYY-MM-DD (midnight UTC); the log's beginning when omitted.
    #[arg(long, value_parser = parse_instant)]
    from: Option<String>,
    /// End of the period (exclusive), RFC 3339 or YYYY-MM-DD (midnight UTC); now when omitted.
    #[arg(long, value_parser = parse_instant)]
    to: Option<String>,
}

impl Period {
    /// The server's `from` and `to` query parameters, those given.
    pub(super) fn query(&self) -> Vec<(&'static str, String)> {
        [("from", &self.from), ("to", &self.to)].into_iter().filter_map(|(n, v)| Some((n, v.clone()?))).collect()
    }
}

/// What to export.
pub(super) struct PeriodArgs {
    pub period: Period,
    pub format: ExportFormat,
    pub since: Option<PathBuf>,
}

fn read(path: &Path) -> Result<String, CliError> {
    crate::local_file::read_text_capped(path, crate::local_file::SMALL_FILE_BYTES)
        .map_err(|e| CliError::Usage(e.to_string()))
}

/// The tree size an earlier checkpoint file states (its signature is checked at verification).
pub(super) fn checkpoint_size(path: &Path) -> Result<u64, CliError> {
    let note = read(path)?;
    let body = crate::formats::checkpoint::parse_note(&note).map(|(body, _)| body);
    body.and_then(|b| Checkpoint::parse_body(&b))
        .map(|c| c.size)
        .map_err(|e| CliError::Usage(format!("{} is not a checkpoint: {e}", path.display())))
}

pub(super) async fn export(server: &str, period: &PeriodArgs, file: &Path, output: Output) -> Result<(), CliError> {
    let mut query = vec![("format", period.format.name().to_owned())];
    query.extend(period.period.query());
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
    if let Some(promised) = count.filter(|&c| c != entries) {
        return Err(CliError::Unavailable(format!("the server promised {promised} entries and sent {entries}")));
    }
    let summary = serde_json::json!({"entries": entries, "file": path, "format": period.format.name()});
    output.print(&summary, || format!("exported {entries} entries to {}", path.display()));
    Ok(())
}

/// The filters of `notarium log search`, as `GET /v1/log/search` names them.
pub(super) struct SearchArgs {
    pub filters: Vec<(&'static str, String)>,
    pub cursor: Option<String>,
    pub limit: Option<u32>,
    /// Follow `next_cursor` to the last page.
    pub all: bool,
}

pub(super) async fn search(server: &str, args: &SearchArgs, output: Output) -> Result<(), CliError> {
    let url = format!("{}/v1/log/search", server.trim_end_matches('/'));
    let mut cursor = args.cursor.clone();
    let mut entries = Vec::new();
    loop {
        let mut query: Vec<(&str, String)> = args.filters.clone();
        query.extend(args.limit.map(|l| ("limit", l.to_string())));
        query.extend(cursor.clone().map(|c| ("cursor", c)));
        let request = reqwest::Client::new().get(&url).query(&query);
        let (_, page) = super::client::call(request, server).await?;
        entries.extend(page["entries"].as_array().cloned().unwrap_or_default());
        cursor = page["next_cursor"].as_str().map(str::to_owned);
        if !args.all || cursor.is_none() {
            break;
        }
    }
    let answer = serde_json::json!({"entries": entries, "next_cursor": cursor});
    output.print(&answer, || search_table(&entries, cursor.as_deref()));
    Ok(())
}

/// One line per entry: index, time, kind, actor and what it is about; then the cursor of the next page.
fn search_table(entries: &[serde_json::Value], next: Option<&str>) -> String {
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "-".to_owned(),
        other => other.to_string(),
    };
    let mut lines = vec!["INDEX\tTIME\tKIND\tACTOR\tSUBJECT".to_owned()];
    for e in entries {
        let (entry, subject) = (&e["entry"], &e["entry"]["subject"]);
        let about = if subject["digest"].is_string() {
            format!("{}/{}@{}", text(&subject["registry"]), text(&subject["repository"]), text(&subject["digest"]))
        } else if subject["key"].is_string() {
            format!("{}@{}", text(&subject["key"]), text(&subject["version"]))
        } else {
            text(subject)
        };
        let (time, kind, actor) = (text(&entry["time"]), text(&entry["kind"]), text(&entry["actor"]["name"]));
        lines.push(format!("{}\t{time}\t{kind}\t{actor}\t{about}", e["index"]));
    }
    if let Some(next) = next {
        lines.push(format!("more: --cursor {next} (or --all)"));
    }
    lines.join("\n")
}

/// A bar on stderr when it is a terminal (hidden otherwise), counting entries.
fn progress_bar(count: Option<u64>) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(count, indicatif::ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template("{bar:40} {pos}/{len} entries, {per_sec}, eta {eta}")
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar
}

pub(super) fn verify(file: &Path, log_key: &Path, since: Option<&Path>, output: Output) -> Result<(), CliError> {
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
            output.print(&proof_summary(&v), || proof_text(&v));
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

/// What a successful `log verify` proved, as JSON: each claim named, consistency included when unchecked.
fn proof_summary(v: &Verified) -> serde_json::Value {
    let consistency = match v.extends_size {
        Some(from) => serde_json::json!({"checked": true, "from_size": from, "to_size": v.tree_size}),
        None => serde_json::json!({"checked": false}),
    };
    serde_json::json!({
        "verified": true,
        "origin": v.origin,
        "tree_size": v.tree_size,
        "first_index": v.first_index,
        "entries": v.entries,
        "checkpoint_signature": "valid",
        "consistency": consistency,
    })
}

/// The same claims for people, one per line; an unchecked consistency is said, never left out.
fn proof_text(v: &Verified) -> String {
    let range = match v.entries {
        0 => "no entries".to_owned(),
        n => format!("entries {} to {}", v.first_index, v.first_index + n - 1),
    };
    let consistency = match v.extends_size {
        Some(from) => format!(
            "consistency: checked: the log at size {} extends the saved checkpoint at size {from} (no history rewritten)",
            v.tree_size
        ),
        None => "consistency: NOT checked: pass --since SAVED-CHECKPOINT to prove no history was rewritten".to_owned(),
    };
    format!(
        "verified {} entries ({range}): each is in the tree of the checkpoint\n\
         checkpoint: {} at size {}, signature valid for the given log key\n{consistency}",
        v.entries, v.origin, v.tree_size
    )
}

const DATE_FORMS: &str = "RFC 3339 (2026-11-01T00:00:00Z) or a date YYYY-MM-DD (midnight UTC)";

/// Parses `--from` / `--to`: RFC 3339, or a plain date meaning midnight UTC; returns RFC 3339 for the server.
pub(super) fn parse_instant(value: &str) -> Result<String, String> {
    use time::format_description::well_known::Rfc3339;
    let date_only = time::format_description::parse_borrowed::<2>("[year]-[month]-[day]").map_err(|e| e.to_string())?;
    let instant = time::OffsetDateTime::parse(value, &Rfc3339)
        .or_else(|_| time::Date::parse(value, &date_only).map(|d| d.midnight().assume_utc()))
        .map_err(|_| format!("expected {DATE_FORMS}"))?;
    instant.format(&Rfc3339).map_err(|e| e.to_string())
}

/// `log export -o FILE` meant the file before `-o` became `--output` everywhere. For one release, an `-o`
/// of `log export` whose value is not an output format is read as `--file`, with a deprecation line on
/// stderr. Rewriting the arguments keeps clap's definitions clean: no hidden flag, no custom value parser.
pub(super) fn legacy_export_file_flag(args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let position = |from: usize, word: &str| args.iter().skip(from).position(|a| a == word).map(|p| p + from);
    let Some(export) = position(0, "log").and_then(|log| position(log + 1, "export")) else { return args };
    let is_format = |v: &str| super::Output::from_str(v, false).is_ok();
    let mut rewritten: Vec<std::ffi::OsString> = args[..=export].to_vec();
    let mut rest = args[export + 1..].iter();
    while let Some(arg) = rest.next() {
        let text = arg.to_string_lossy();
        let value = match text.as_ref() {
            "-o" => rest.next().map(|v| v.to_string_lossy().into_owned()),
            t if t.starts_with("-o") && t.len() > 2 => Some(t[2..].trim_start_matches('=').to_owned()),
            _ => None,
        };
        match value {
            Some(v) if !is_format(&v) => {
                eprintln!(
                    "notarium: `log export -o FILE` is deprecated and goes in the next release: use --file/-f FILE (-o/--output is text|json)"
                );
                rewritten.extend(["--file".into(), v.into()]);
            }
            Some(v) => rewritten.extend(["--output".into(), v.into()]),
            None => rewritten.push(arg.clone()),
        }
    }
    rewritten
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<std::ffi::OsString> {
        line.split(' ').map(Into::into).collect()
    }

    #[test]
    fn dates_are_rfc3339_or_a_plain_day_at_midnight_utc() {
        assert_eq!(parse_instant("2026-11-01").unwrap(), "2026-11-01T00:00:00Z");
        assert_eq!(parse_instant("2026-11-01T10:00:00+01:00").unwrap(), "2026-11-01T10:00:00+01:00");
        assert!(parse_instant("2026-13-01").unwrap_err().contains("YYYY-MM-DD"));
        assert!(parse_instant("yesterday").is_err());
    }

    #[test]
    fn an_old_export_dash_o_file_becomes_file_and_formats_stay_output() {
        assert_eq!(legacy_export_file_flag(args("n log export -o a.jsonl")), args("n log export --file a.jsonl"));
        assert_eq!(legacy_export_file_flag(args("n log export -oa.jsonl")), args("n log export --file a.jsonl"));
        assert_eq!(legacy_export_file_flag(args("n log export -o json -f a")), args("n log export --output json -f a"));
        assert_eq!(legacy_export_file_flag(args("n log verify x -o a.jsonl")), args("n log verify x -o a.jsonl"));
    }

    #[test]
    fn an_oversized_key_or_checkpoint_file_is_refused_unread_naming_it() {
        let (_dir, path) = crate::local_file::sparse_file("log.pub", crate::local_file::SMALL_FILE_BYTES + 1);
        let Err(CliError::Usage(message)) = read(&path) else { panic!("an oversized file was read") };
        assert!(
            message.contains(&path.display().to_string()) && message.contains("larger than the limit"),
            "{message}"
        );
    }
}
