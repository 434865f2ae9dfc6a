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
        let (_, page) = super::client::call(reqwest::Client::new().get(&url).query(&query), server).await?;
        items.extend(page["items"].as_array().cloned().unwrap_or_default());
        cursor = page["next_cursor"].as_str().map(str::to_owned);
        if cursor.is_none() {
            return Ok(items);
        }
    }
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
