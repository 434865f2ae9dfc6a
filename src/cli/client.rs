//! The commands that talk to a running server over its HTTP API.

use crate::error_chain::root_cause;
use serde_json::{Map, Value, json};

use super::{CliError, Output};

/// `request` with the caller's API token or CI ID token from `NOTARIUM_TOKEN`, when set.
pub(super) fn with_token(request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    match std::env::var("NOTARIUM_TOKEN") {
        Ok(token) if !token.trim().is_empty() => request.bearer_auth(token.trim()),
        _ => request,
    }
}

async fn call(request: reqwest::RequestBuilder, server: &str) -> Result<(u16, Value), CliError> {
    let response = with_token(request)
        .send()
        .await
        .map_err(|e| CliError::Unavailable(format!("cannot reach notarium at {server}: {}", root_cause(&e))))?;
    let status = response.status().as_u16();
    let text = response
        .text()
        .await
        .map_err(|e| CliError::Unavailable(format!("notarium at {server} broke off its answer: {e}")))?;
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    if status >= 400 {
        let detail = body.get("detail").and_then(Value::as_str).map(str::to_owned);
        let message = detail.unwrap_or_else(|| body.to_string());
        return Err(if status >= 500 { CliError::Unavailable(message) } else { CliError::Refused(message) });
    }
    Ok((status, body))
}

fn url(server: &str, path: &str) -> String {
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

pub async fn sign(
    server: &str,
    image: &str,
    key: &str,
    annotations: &[String],
    output: Output,
) -> Result<(), CliError> {
    let mut body = json!({"image": image, "key": key});
    if let Some(a) = parse_annotations(annotations)? {
        body["annotations"] = a;
    }
    let request = reqwest::Client::new().post(url(server, "/v1/sign")).json(&body);
    let (_, answer) = call(request, server).await?;
    match output {
        Output::Json => println!("{answer}"),
        Output::Text => {
            let field = |path: &[&str]| {
                path.iter()
                    .try_fold(&answer, |v, k| v.get(k))
                    .map(|v| v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string()))
                    .unwrap_or_default()
            };
            let verb = if answer["signature"]["created"] == Value::Bool(true) { "signed" } else { "already signed" };
            println!(
                "{verb} {} with {}@{} -> {}",
                field(&["image"]),
                field(&["key"]),
                field(&["key_version"]),
                field(&["signature", "tag"])
            );
        }
    }
    Ok(())
}

pub async fn list_keys(server: &str, output: Output) -> Result<(), CliError> {
    let (_, answer) = call(reqwest::Client::new().get(url(server, "/v1/keys")), server).await?;
    if output == Output::Json {
        println!("{answer}");
        return Ok(());
    }
    for key in answer["keys"].as_array().into_iter().flatten() {
        println!(
            "{}@{}\t{}\t{}",
            key["id"].as_str().unwrap_or_default(),
            key["version"],
            key["algorithm"].as_str().unwrap_or_default(),
            key["backend"].as_str().unwrap_or_default()
        );
    }
    Ok(())
}

pub async fn public_key(server: &str, id: &str) -> Result<(), CliError> {
    let path = format!("/v1/keys/{id}/public.pem");
    let (_, answer) = call(reqwest::Client::new().get(url(server, &path)), server).await?;
    print!("{}", answer.as_str().unwrap_or_default());
    Ok(())
}
