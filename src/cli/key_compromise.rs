//! `notarium keys inventory ID@N`: every image signature and attestation a key version made, read page by
//! page from `GET /v1/keys/{id}/versions/{n}/signed`.
//!
//! Owns: the command's arguments and its table. Must not touch: the register (the server answers).

use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{CliError, Output};
use crate::keys::KeyRef;

/// `ID@N` as (id, version); the version is required.
pub(super) fn key_version(text: &str) -> Result<(String, u32), CliError> {
    let reference = KeyRef::parse(text).map_err(|e| CliError::Usage(e.to_string()))?;
    let Some(version) = reference.version else {
        return Err(CliError::Usage(format!("{text}: name the key version, ID@N")));
    };
    Ok((reference.id, version))
}

/// `--since`: RFC 3339 as given, or a duration back from now (`7d`, `12h`).
pub(super) fn since(text: &str) -> Result<String, CliError> {
    if OffsetDateTime::parse(text, &Rfc3339).is_ok() {
        return Ok(text.to_owned());
    }
    let back = crate::auth::token::parse_lifetime(text)
        .map_err(|_| CliError::Usage(format!("--since {text:?}: expected RFC 3339 or a duration like 7d or 12h")))?;
    (OffsetDateTime::now_utc() - back).format(&Rfc3339).map_err(|e| CliError::Usage(format!("--since: {e}")))
}

/// Every item the version signed (since `since`), following `next_cursor` to the end.
pub(super) async fn fetch_inventory(
    server: &str,
    id: &str,
    version: u32,
    since: Option<&str>,
) -> Result<Vec<Value>, CliError> {
    let url = format!("{}/v1/keys/{id}/versions/{version}/signed", server.trim_end_matches('/'));
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut query = vec![("limit", "1000".to_owned())];
        query.extend(since.map(|s| ("since", s.to_owned())));
        query.extend(cursor.clone().map(|c| ("cursor", c)));
        let (_, page) = read_as_auditor(reqwest::Client::new().get(&url).query(&query), server).await?;
        items.extend(page["items"].as_array().cloned().unwrap_or_default());
        cursor = page["next_cursor"].as_str().map(str::to_owned);
        if cursor.is_none() {
            return Ok(items);
        }
    }
}

/// `request` with `NOTARIUM_AUDITOR_TOKEN` when set (resign reads the register as an auditor and signs as
/// a signer, two roles no one token has), else as every client command sends it.
async fn read_as_auditor(request: reqwest::RequestBuilder, server: &str) -> Result<(u16, Value), CliError> {
    let Some(token) = std::env::var("NOTARIUM_AUDITOR_TOKEN").ok().filter(|t| !t.trim().is_empty()) else {
        return super::client::call(request, server).await;
    };
    let unavailable = |e: reqwest::Error| CliError::Unavailable(format!("cannot reach notarium at {server}: {e}"));
    let response = request.bearer_auth(token.trim()).send().await.map_err(unavailable)?;
    let status = response.status().as_u16();
    let text = response.text().await.map_err(unavailable)?;
    if status >= 400 {
        return Err(CliError::from_problem(status, &text));
    }
    Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
}

pub(super) async fn inventory(
    server: &str,
    key: &str,
    since_arg: Option<&str>,
    output: Output,
) -> Result<(), CliError> {
    let (id, version) = key_version(key)?;
    let since = since_arg.map(since).transpose()?;
    let items = fetch_inventory(server, &id, version, since.as_deref()).await?;
    let answer = serde_json::json!({"key": id, "version": version, "items": items});
    output.print(&answer, || table(&items));
    Ok(())
}

fn table(items: &[Value]) -> String {
    let text = |v: &Value| v.as_str().unwrap_or("-").to_owned();
    let mut lines = vec!["INDEX\tTIME\tKIND\tIMAGE\tACTOR\tPREDICATE".to_owned()];
    for i in items {
        let image = format!("{}/{}@{}", text(&i["registry"]), text(&i["repository"]), text(&i["digest"]));
        let (time, kind, actor) = (text(&i["time"]), text(&i["kind"]), text(&i["actor"]));
        lines.push(format!("{}\t{time}\t{kind}\t{image}\t{actor}\t{}", i["index"], text(&i["predicate_type"])));
    }
    lines.join("\n")
}

/// What `notarium resign` was asked.
pub(super) struct ResignArgs<'a> {
    pub from: &'a str,
    pub to: &'a str,
    pub repository: Option<&'a str>,
    /// How many images one `POST /v1/sign` names (`--batch`, 32 by default).
    pub batch: u16,
    pub server: &'a str,
}

/// Re-signs with `to` every image `from` signed (in `repository`, a `host/path` glob), in batches through
/// `POST /v1/sign` (each sign logged by the server). Resumable by construction: the images the target key
/// version already signed, per the register, are skipped, so a run cut short is simply run again. Prints a
/// bar on a terminal (plain progress lines otherwise) and ends with what could not be re-signed (exit 1).
pub(super) async fn resign(args: &ResignArgs<'_>, output: Output) -> Result<(), CliError> {
    let (from_id, from_version) = key_version(args.from)?;
    let (to_id, to_version) = target_version(args.server, args.to).await?;
    if (from_id.as_str(), from_version) == (to_id.as_str(), to_version) {
        return Err(CliError::Usage("--to names the key version being replaced".into()));
    }
    let affected = signed_images(args.server, &from_id, from_version, args.repository).await?;
    let done = signed_images(args.server, &to_id, to_version, args.repository).await?;
    let pending: Vec<&String> = affected.iter().filter(|image| !done.contains(image)).collect();
    let key = format!("{to_id}@{to_version}");
    let progress = Progress::new(pending.len() as u64);
    let mut tally = Tally::default();
    for batch in pending.chunks(usize::from(args.batch.max(1))) {
        tally.resign_batch(args.server, &key, batch).await?;
        progress.advance(batch.len() as u64, tally.signed, tally.failed.len());
    }
    progress.finish();
    let Tally { signed, failed } = tally;
    let answer = serde_json::json!({
        "from": format!("{from_id}@{from_version}"), "to": key, "affected": affected.len(),
        "already_signed": affected.len() - pending.len(), "signed": signed, "failed": failed,
    });
    output.print(&answer, || {
        let mut lines = vec![format!(
            "{signed} re-signed with {key}, {} already signed, {} failed (of {} images {from_id}@{from_version} signed)",
            affected.len() - pending.len(),
            failed.len(),
            affected.len()
        )];
        lines.extend(failed.iter().map(|f| format!("could not re-sign {}: {}", f["image"].as_str().unwrap_or("?"), f["error"].as_str().unwrap_or("?"))));
        lines.join("\n")
    });
    match failed.is_empty() {
        true => Ok(()),
        false => Err(CliError::Refused(format!("{} of {} images could not be re-signed", failed.len(), pending.len()))),
    }
}

/// What a resign run has done so far.
#[derive(Default)]
struct Tally {
    signed: usize,
    failed: Vec<Value>,
}

impl Tally {
    /// Signs `batch` in one request. A batch the server refuses whole (one image it cannot read, one out of
    /// the token's scope) is sent again one image at a time, so that only the images at fault are reported
    /// and the others signed. Only a notarium that cannot be reached stops the run.
    async fn resign_batch(&mut self, server: &str, key: &str, batch: &[&String]) -> Result<(), CliError> {
        let (status, answer) = sign_request(server, key, batch).await?;
        if answer["results"].is_array() || batch.len() == 1 {
            self.count(status, &answer, batch);
            return Ok(());
        }
        for image in batch {
            let (status, answer) = sign_request(server, key, std::slice::from_ref(image)).await?;
            self.count(status, &answer, std::slice::from_ref(image));
        }
        Ok(())
    }

    /// Counts a batch answer's results, or `batch` failed as a whole with the problem `answer` is.
    fn count(&mut self, status: u16, answer: &Value, batch: &[&String]) {
        let Some(results) = answer["results"].as_array() else {
            let body = answer.as_str().map_or_else(|| answer.to_string(), str::to_owned);
            let why = CliError::from_problem(status, &body).to_string();
            self.failed.extend(batch.iter().map(|image| failure(&Value::from(image.as_str()), &why)));
            return;
        };
        for result in results {
            match result["problem"]["detail"].as_str() {
                Some(detail) => self.failed.push(failure(&result["image"], detail)),
                None => self.signed += 1,
            }
        }
    }
}

/// `POST /v1/sign {"images": batch, "key": key}`: the status and the JSON answer (a problem or the batch's
/// results); `Err` only when notarium cannot be reached.
async fn sign_request(server: &str, key: &str, batch: &[&String]) -> Result<(u16, Value), CliError> {
    let body = serde_json::json!({"images": batch, "key": key});
    let request = reqwest::Client::new().post(super::client::url(server, "/v1/sign")).json(&body);
    let (status, text) = super::client::send(request, server).await?;
    Ok((status, serde_json::from_str(&text).unwrap_or(Value::String(text))))
}

fn failure(image: &Value, error: &str) -> Value {
    serde_json::json!({"image": image, "error": error})
}

/// `ID@M`, or `ID` as its latest version (from `GET /v1/keys`).
async fn target_version(server: &str, to: &str) -> Result<(String, u32), CliError> {
    let reference = KeyRef::parse(to).map_err(|e| CliError::Usage(e.to_string()))?;
    if let Some(version) = reference.version {
        return Ok((reference.id, version));
    }
    let request = reqwest::Client::new().get(super::client::url(server, "/v1/keys"));
    let (_, keys) = super::client::call(request, server).await?;
    let latest = (keys["keys"].as_array().into_iter().flatten())
        .filter(|k| k["id"].as_str() == Some(reference.id.as_str()))
        .filter_map(|k| k["version"].as_u64().and_then(|v| u32::try_from(v).ok()))
        .max();
    let Some(version) = latest else {
        return Err(CliError::Usage(format!("--to {to}: the server has no key {}", reference.id)));
    };
    Ok((reference.id, version))
}

/// `host/path@digest` of every image key version `id@version` signed (in `repository`), oldest first, once.
async fn signed_images(
    server: &str,
    id: &str,
    version: u32,
    repository: Option<&str>,
) -> Result<Vec<String>, CliError> {
    let mut images: Vec<String> = Vec::new();
    for item in fetch_inventory(server, id, version, None).await?.iter().rev().filter(|i| i["kind"] == "sign") {
        let text = |name: &str| item[name].as_str().unwrap_or_default().to_owned();
        let repo = format!("{}/{}", text("registry"), text("repository"));
        if repository.is_some_and(|glob| !crate::glob::glob_matches(glob, &repo)) {
            continue;
        }
        let image = format!("{repo}@{}", text("digest"));
        if !images.contains(&image) {
            images.push(image);
        }
    }
    Ok(images)
}

/// A bar on stderr when it is a terminal; a plain line per batch otherwise.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    total: u64,
}

impl Progress {
    fn new(total: u64) -> Self {
        use std::io::IsTerminal as _;
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(total);
            let style = indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} images re-signed, eta {eta}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
            bar.set_style(style);
            bar
        });
        Self { bar, total }
    }

    fn advance(&self, by: u64, signed: usize, failed: usize) {
        match &self.bar {
            Some(bar) => bar.inc(by),
            None => eprintln!("resign: {}/{} done ({signed} signed, {failed} failed)", signed + failed, self.total),
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
