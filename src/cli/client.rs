//! The commands that talk to a running server over its HTTP API.

use std::path::Path;

use crate::error_chain::root_cause;
use serde_json::{Map, Value, json};

use super::{CliError, Output};

/// `request` with the ID token of `--id-token`, else the caller's API token or CI ID token from
/// `NOTARIUM_TOKEN`, when set.
pub(super) fn with_token(request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    if let Some(token) = super::id_token::bearer() {
        return request.bearer_auth(token);
    }
    match std::env::var("NOTARIUM_TOKEN") {
        Ok(token) if !token.trim().is_empty() => request.bearer_auth(token.trim()),
        _ => request,
    }
}

pub(super) async fn call(request: reqwest::RequestBuilder, server: &str) -> Result<(u16, Value), CliError> {
    let (status, text) = send(request, server).await?;
    if status >= 400 {
        return Err(CliError::from_problem(status, &text));
    }
    Ok((status, serde_json::from_str(&text).unwrap_or(Value::String(text))))
}

/// The status and body of the server's answer to `request`.
pub(super) async fn send(request: reqwest::RequestBuilder, server: &str) -> Result<(u16, String), CliError> {
    let response = with_token(request)
        .send()
        .await
        .map_err(|e| CliError::Unavailable(format!("cannot reach notarium at {server}: {}", root_cause(&e))))?;
    let status = response.status().as_u16();
    let text = response
        .text()
        .await
        .map_err(|e| CliError::Unavailable(format!("notarium at {server} broke off its answer: {e}")))?;
    Ok((status, text))
}

pub(super) fn url(server: &str, path: &str) -> String {
    format!("{}{path}", server.trim_end_matches('/'))
}

fn parse_annotations(pairs: &[String]) -> Result<Option<Value>, CliError> {
    if pairs.is_empty() {
        return Ok(None);
    }
    let mut map = Map::new();
    for pair in pairs {
        let (k, v) =
            pair.split_once('=').ok_or_else(|| CliError::Usage(format!("annotation {pair:?} is not KEY=VALUE")))?;
        map.insert(k.to_owned(), Value::String(v.to_owned()));
    }
    Ok(Some(Value::Object(map)))
}

/// The string at `path` in `answer` ("" when absent), numbers as written.
fn field(answer: &Value, path: &[&str]) -> String {
    path.iter()
        .try_fold(answer, |v, k| v.get(k))
        .map(|v| v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string()))
        .unwrap_or_default()
}

/// What `notarium sign` sends besides the images.
pub(super) struct SignArgs<'a> {
    pub key: &'a str,
    pub annotations: &'a [String],
    pub recursive: bool,
}

impl SignArgs<'_> {
    /// The request body, with `image` or `images` still to add.
    fn body(&self) -> Result<Value, CliError> {
        let mut body = json!({"key": self.key, "recursive": self.recursive});
        if let Some(a) = parse_annotations(self.annotations)? {
            body["annotations"] = a;
        }
        Ok(body)
    }
}

/// The line a sign answer prints about `image`.
fn sign_line(answer: &Value, image: &str) -> String {
    let verb = if answer["signature"]["created"] == Value::Bool(true) { "signed" } else { "already signed" };
    let (key, version) = (field(answer, &["key"]), field(answer, &["key_version"]));
    format!("{verb} {image} with {key}@{version} -> {}", field(answer, &["signature", "tag"]))
}

pub(super) async fn sign(server: &str, image: &str, args: &SignArgs<'_>, output: Output) -> Result<(), CliError> {
    let mut body = args.body()?;
    body["image"] = json!(image);
    let request = reqwest::Client::new().post(url(server, "/v1/sign")).json(&body);
    let (_, answer) = call(request, server).await?;
    output.print(&answer, || with_platforms(&answer, sign_line));
    Ok(())
}

/// Signs `images` as one batch: one line per image signed (and its platforms), and an error naming each
/// image that failed.
pub(super) async fn sign_batch(
    server: &str,
    images: &[String],
    args: &SignArgs<'_>,
    output: Output,
) -> Result<(), CliError> {
    let mut body = args.body()?;
    body["images"] = json!(images);
    let request = reqwest::Client::new().post(url(server, "/v1/sign")).json(&body);
    let (_, answer) = call_batch(request, server).await?;
    let results = answer["results"].as_array().cloned().unwrap_or_default();
    output.print(&answer, || {
        let signed = results.iter().filter(|r| r["outcome"].is_object());
        signed.map(|r| with_platforms(&r["outcome"], sign_line)).collect::<Vec<_>>().join("\n")
    });
    let failed: Vec<String> = results
        .iter()
        .filter(|r| r["problem"].is_object())
        .map(|r| format!("{}: {}", field(r, &["image"]), field(r, &["problem", "detail"])))
        .collect();
    match failed.is_empty() {
        true => Ok(()),
        false => Err(CliError::Refused(format!(
            "{} of {} images failed: {}",
            failed.len(),
            results.len(),
            failed.join("; ")
        ))),
    }
}

/// [`call`] for a batch: a 502 whose body lists per-image results is an answer, not a problem.
pub(super) async fn call_batch(request: reqwest::RequestBuilder, server: &str) -> Result<(u16, Value), CliError> {
    let (status, text) = send(request, server).await?;
    let answer: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    if status >= 400 && !answer["results"].is_array() {
        return Err(CliError::from_problem(status, &text));
    }
    Ok((status, answer))
}

/// What `notarium attest` sends besides the image and key.
pub(super) struct Predicate<'a> {
    pub predicate_type: &'a str,
    pub file: &'a Path,
}

/// A larger predicate file is refused unread (the server takes 1 MiB bodies by default, `[server]
/// max_body_bytes`).
const MAX_PREDICATE_BYTES: u64 = 16 * crate::local_file::MIB;

/// The predicate JSON file of `attest`.
fn read_predicate(file: &Path) -> Result<Value, CliError> {
    let text =
        crate::local_file::read_text_capped(file, MAX_PREDICATE_BYTES).map_err(|e| CliError::Usage(e.to_string()))?;
    serde_json::from_str(&text).map_err(|e| CliError::Usage(format!("{} is not JSON: {e}", file.display())))
}

pub(super) async fn attest(
    server: &str,
    image: &str,
    key: &str,
    predicate: &Predicate<'_>,
    recursive: bool,
    output: Output,
) -> Result<(), CliError> {
    let value = read_predicate(predicate.file)?;
    let body = json!({"image": image, "key": key, "predicate_type": predicate.predicate_type, "predicate": value,
        "recursive": recursive});
    let (_, answer) = call(reqwest::Client::new().post(url(server, "/v1/attest")).json(&body), server).await?;
    output.print(&answer, || {
        let line = |answer: &Value, image: &str| {
            let created = answer["attestation"]["created"] == Value::Bool(true);
            let verb = if created { "attested" } else { "already attested" };
            let kind = field(answer, &["predicate_type"]);
            format!("{verb} {image} ({kind}) -> {}", field(answer, &["attestation", "tag"]))
        };
        with_platforms(&answer, line)
    });
    Ok(())
}

/// The `line` of a sign or attest answer about its image, then (recursive, on an index) one indented line per
/// platform manifest, named by its digest.
fn with_platforms(answer: &Value, line: impl Fn(&Value, &str) -> String) -> String {
    let platforms = answer["platforms"].as_array().into_iter().flatten();
    let platform_lines = platforms.map(|p| format!("  {}", line(p, &field(p, &["digest"]))));
    std::iter::once(line(answer, &field(answer, &["image"]))).chain(platform_lines).collect::<Vec<_>>().join("\n")
}

pub(super) async fn list_keys(server: &str, output: Output) -> Result<(), CliError> {
    let (_, answer) = call(reqwest::Client::new().get(url(server, "/v1/keys")), server).await?;
    output.print(&answer, || {
        let keys = answer["keys"].as_array().into_iter().flatten();
        let line = |key: &Value| {
            let text = |name: &str| key[name].as_str().unwrap_or_default().to_owned();
            format!("{}@{}\t{}\t{}", text("id"), key["version"], text("algorithm"), text("backend"))
        };
        keys.map(line).collect::<Vec<_>>().join("\n")
    });
    Ok(())
}

pub(super) async fn public_key(server: &str, id: &str, output: Output) -> Result<(), CliError> {
    let path = format!("/v1/keys/{id}/public.pem");
    let (_, answer) = call(reqwest::Client::new().get(url(server, &path)), server).await?;
    let pem = answer.as_str().unwrap_or_default();
    output.print(&json!({"id": id, "public_key_pem": pem}), || pem.trim_end().to_owned());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_oversized_predicate_file_is_refused_unread_naming_it() {
        let (_dir, path) = crate::local_file::sparse_file("predicate.json", MAX_PREDICATE_BYTES + 1);
        let Err(CliError::Usage(message)) = read_predicate(&path) else { panic!("an oversized predicate was read") };
        assert!(
            message.contains(&path.display().to_string()) && message.contains("larger than the limit"),
            "{message}"
        );
    }
}
