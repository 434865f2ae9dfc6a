//! `--id-token SOURCE` of `notarium sign` and `notarium attest`: the CI job's OIDC ID token, obtained once
//! before the request and sent as its bearer token instead of `NOTARIUM_TOKEN`. Sources: `github` (asked
//! from the Actions token endpoint for `--audience`), `gitlab` (the `NOTARIUM_ID_TOKEN` variable a job's
//! `id_tokens:` block defines), `env:VAR` and `file:PATH`.
//!
//! Owns: finding and fetching the token. Must not touch: what the server does with it. Never prints a token,
//! nor the Actions request token: errors name the variable or file, not what it holds.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use reqwest::Url;
use reqwest::header::{ACCEPT, AUTHORIZATION};
use serde_json::Value;

use super::CliError;
use crate::error_chain::root_cause;
use crate::http_body::{BodyError, read_capped};
use crate::local_file::LocalFileError;

/// The variables a GitHub Actions job with `permissions: id-token: write` gets.
const GITHUB_REQUEST_URL: &str = "ACTIONS_ID_TOKEN_REQUEST_URL";
const GITHUB_REQUEST_TOKEN: &str = "ACTIONS_ID_TOKEN_REQUEST_TOKEN";
/// The variable notarium's GitLab template and examples name in the job's `id_tokens:` block.
pub(super) const GITLAB_VARIABLE: &str = "NOTARIUM_ID_TOKEN";
/// The audience `[[auth.oidc]] audience` is set to by convention.
pub(super) const DEFAULT_AUDIENCE: &str = "notarium";
/// An ID token is a few KiB; anything much larger is not one.
const MAX_TOKEN_BYTES: usize = 64 * 1024;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Where the ID token comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum IdTokenSource {
    Github,
    Gitlab,
    Env(String),
    File(PathBuf),
}

impl std::str::FromStr for IdTokenSource {
    type Err = String;

    fn from_str(source: &str) -> Result<Self, Self::Err> {
        match source {
            "github" => return Ok(Self::Github),
            "gitlab" => return Ok(Self::Gitlab),
            _ => {}
        }
        if let Some(name) = source.strip_prefix("env:").filter(|n| !n.is_empty()) {
            return Ok(Self::Env(name.to_owned()));
        }
        if let Some(path) = source.strip_prefix("file:").filter(|p| !p.is_empty()) {
            return Ok(Self::File(PathBuf::from(path)));
        }
        Err("expected github, gitlab, env:VARIABLE or file:PATH".to_owned())
    }
}

impl std::fmt::Display for IdTokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Github => f.write_str("github"),
            Self::Gitlab => f.write_str("gitlab"),
            Self::Env(name) => write!(f, "env:{name}"),
            Self::File(path) => write!(f, "file:{}", path.display()),
        }
    }
}

/// The flags `sign` and `attest` share.
#[derive(clap::Args, Debug, Clone)]
pub(super) struct IdTokenArgs {
    /// Authenticate with the CI job's OIDC ID token instead of NOTARIUM_TOKEN: `github` (requested from the
    /// Actions token endpoint; the job needs `permissions: id-token: write`), `gitlab` (the NOTARIUM_ID_TOKEN
    /// variable of the job's `id_tokens:` block), `env:VARIABLE` or `file:PATH`.
    #[arg(long, value_name = "SOURCE")]
    id_token: Option<IdTokenSource>,
    /// The audience asked for with `--id-token github`: the server's [[auth.oidc]] audience.
    #[arg(long, default_value = DEFAULT_AUDIENCE, requires = "id_token")]
    audience: String,
}

/// The ID token obtained for this run, and where it came from (for the 401 hint).
struct Bearer {
    token: String,
    source: IdTokenSource,
}

static BEARER: OnceLock<Bearer> = OnceLock::new();

impl IdTokenArgs {
    /// Obtains the ID token when `--id-token` was given; every request to the server then carries it.
    pub(super) async fn install(&self) -> Result<(), CliError> {
        let Some(source) = &self.id_token else {
            return Ok(());
        };
        let token = obtain(source, &self.audience).await?;
        let _ = BEARER.set(Bearer { token, source: source.clone() });
        Ok(())
    }
}

/// The ID token obtained with `--id-token`, if any.
pub(super) fn bearer() -> Option<&'static str> {
    BEARER.get().map(|b| b.token.as_str())
}

/// The `--id-token` source used, if any.
pub(super) fn source() -> Option<&'static IdTokenSource> {
    BEARER.get().map(|b| &b.source)
}

async fn obtain(source: &IdTokenSource, audience: &str) -> Result<String, CliError> {
    let token = match source {
        IdTokenSource::Github => from_github(audience).await?,
        IdTokenSource::Gitlab => variable(GITLAB_VARIABLE).ok_or_else(|| {
            CliError::Usage(format!(
                "--id-token gitlab: {GITLAB_VARIABLE} is not set: give the job `id_tokens: {GITLAB_VARIABLE}: aud: \
                 {audience}` (the audience of the server's [[auth.oidc]] issuer)"
            ))
        })?,
        IdTokenSource::Env(name) => variable(name).ok_or_else(|| {
            CliError::Usage(format!("--id-token env:{name}: the variable {name} is not set or empty"))
        })?,
        IdTokenSource::File(path) => from_file(path)?,
    };
    if !looks_like_jwt(&token) {
        return Err(CliError::Usage(format!(
            "--id-token {source}: what it holds is not a JWT (header.payload.signature)"
        )));
    }
    Ok(token)
}

/// The trimmed value of `name`, unless unset or blank.
fn variable(name: &str) -> Option<String> {
    std::env::var(name).ok().map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

fn from_file(path: &std::path::Path) -> Result<String, CliError> {
    let text = crate::local_file::read_text_capped(path, MAX_TOKEN_BYTES as u64).map_err(|e| {
        let reason = match e {
            LocalFileError::Unreadable { source, .. } => format!("cannot read it: {source}"),
            other => other.reason(),
        };
        CliError::Usage(format!("--id-token file:{}: {reason}", path.display()))
    })?;
    Ok(text.trim().to_owned())
}

/// Three non-empty base64url parts: what every ID token is. Anything else is a wrong variable or file.
fn looks_like_jwt(token: &str) -> bool {
    let parts: Vec<&str> = token.split('.').collect();
    parts.len() == 3
        && parts.iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
}

fn missing_github_variable(name: &str) -> CliError {
    CliError::Usage(format!(
        "--id-token github: {name} is not set: run in a GitHub Actions job whose workflow grants \
         `permissions: id-token: write`"
    ))
}

async fn from_github(audience: &str) -> Result<String, CliError> {
    let base = variable(GITHUB_REQUEST_URL).ok_or_else(|| missing_github_variable(GITHUB_REQUEST_URL))?;
    let request_token = variable(GITHUB_REQUEST_TOKEN).ok_or_else(|| missing_github_variable(GITHUB_REQUEST_TOKEN))?;
    let url = github_request_url(&base, audience)?;
    let client = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| CliError::Unavailable(format!("cannot make an HTTP client: {}", root_cause(&e))))?;
    let response = client
        .get(url)
        .header(AUTHORIZATION, format!("bearer {request_token}"))
        .header(ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| {
            CliError::Unavailable(format!(
                "cannot reach the Actions token endpoint ({GITHUB_REQUEST_URL}): {}",
                root_cause(&e.without_url())
            ))
        })?;
    let status = response.status();
    if !status.is_success() {
        let message = format!(
            "the Actions token endpoint ({GITHUB_REQUEST_URL}) answered {status}: check \
             {GITHUB_REQUEST_TOKEN} and the workflow's `permissions: id-token: write`"
        );
        return Err(if status.is_server_error() { CliError::Unavailable(message) } else { CliError::Refused(message) });
    }
    let body = read_capped(response, MAX_TOKEN_BYTES).await.map_err(|e| {
        let cause = match e {
            BodyError::TooLarge(_) => e.to_string(),
            BodyError::Transport(e) => root_cause(&e.without_url()),
        };
        CliError::Unavailable(format!("the Actions token endpoint ({GITHUB_REQUEST_URL}): {cause}"))
    })?;
    github_answer_token(&body)
}

/// `ACTIONS_ID_TOKEN_REQUEST_URL` with `audience=AUDIENCE` added to its query (after `?` or `&`, encoded).
/// Only https, or http to a loopback host: the request carries the job's request token.
fn github_request_url(base: &str, audience: &str) -> Result<Url, CliError> {
    let mut url = Url::parse(base).map_err(|_| CliError::Usage(format!("{GITHUB_REQUEST_URL} is not a URL")))?;
    let host = url.host_str().unwrap_or_default();
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if !(url.scheme() == "https" || url.scheme() == "http" && loopback) {
        return Err(CliError::Usage(format!("{GITHUB_REQUEST_URL} is not an https URL (plain http only to loopback)")));
    }
    url.query_pairs_mut().append_pair("audience", audience);
    Ok(url)
}

/// The `value` of the endpoint's `{"value": "<jwt>"}`.
fn github_answer_token(body: &[u8]) -> Result<String, CliError> {
    let unexpected = || {
        CliError::Unavailable(format!(
            "the Actions token endpoint ({GITHUB_REQUEST_URL}) did not answer {{\"value\": \"<ID token>\"}}"
        ))
    };
    let answer: Value = serde_json::from_slice(body).map_err(|_| unexpected())?;
    let token = answer.get("value").and_then(Value::as_str).map(str::trim).ok_or_else(unexpected)?;
    Ok(token.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn built(base: &str, audience: &str) -> String {
        github_request_url(base, audience).expect("a valid URL").to_string()
    }

    #[test]
    fn the_audience_is_appended_after_the_right_separator_and_encoded() {
        assert_eq!(
            built("https://pipelines.example/_apis/idtoken?api-version=2.0", "notarium"),
            "https://pipelines.example/_apis/idtoken?api-version=2.0&audience=notarium"
        );
        assert_eq!(
            built("https://pipelines.example/token", "notarium"),
            "https://pipelines.example/token?audience=notarium"
        );
        assert_eq!(
            built("https://pipelines.example/token?a=1", "https://notarium.example/ a&b=c"),
            "https://pipelines.example/token?a=1&audience=https%3A%2F%2Fnotarium.example%2F+a%26b%3Dc"
        );
    }

    #[test]
    fn the_request_url_is_https_or_loopback_http_and_errors_name_the_variable_only() {
        assert!(github_request_url("http://127.0.0.1:8000/t", "a").is_ok());
        assert!(github_request_url("http://localhost/t", "a").is_ok());
        assert!(github_request_url("http://[::1]:9/t", "a").is_ok());
        for refused in ["http://pipelines.example/secret-path", "ftp://x/", "file:///etc/passwd", "not a url secret"] {
            let error = github_request_url(refused, "a").expect_err(refused).to_string();
            assert!(error.contains(GITHUB_REQUEST_URL), "{error}");
            assert!(!error.contains("secret") && !error.contains("pipelines.example"), "{error}");
        }
    }

    #[test]
    fn the_answer_is_the_value_field_and_nothing_else_is_echoed() {
        assert_eq!(github_answer_token(br#"{"count": 1, "value": "a.b.c"}"#).expect("a value"), "a.b.c");
        for bad in [&br#"{"token": "x.y.z"}"#[..], b"<html>secret</html>", br#"{"value": 7}"#] {
            let error = github_answer_token(bad).expect_err("refused").to_string();
            assert!(!error.contains("secret") && !error.contains("x.y.z"), "{error}");
        }
    }

    #[test]
    fn sources_parse_and_only_jwt_shaped_tokens_pass() {
        assert_eq!("github".parse(), Ok(IdTokenSource::Github));
        assert_eq!("gitlab".parse(), Ok(IdTokenSource::Gitlab));
        assert_eq!("env:CI_JOB_JWT".parse(), Ok(IdTokenSource::Env("CI_JOB_JWT".into())));
        assert_eq!("file:/run/token".parse(), Ok(IdTokenSource::File("/run/token".into())));
        for bad in ["", "env:", "file:", "GitHub", "vault"] {
            assert!(bad.parse::<IdTokenSource>().is_err(), "{bad}");
        }
        assert!(looks_like_jwt("eyJh.eyJz.c2ln-_"));
        assert!(!looks_like_jwt("ntk_abc_def") && !looks_like_jwt("a..c") && !looks_like_jwt("a.b.c d"));
    }

    #[test]
    fn an_oversized_token_file_is_refused_unread_naming_it() {
        let (_dir, path) = crate::local_file::sparse_file("token", MAX_TOKEN_BYTES as u64 + 1);
        let Err(CliError::Usage(message)) = from_file(&path) else { panic!("an oversized token file was read") };
        assert!(
            message.contains(&path.display().to_string()) && message.contains("larger than the limit"),
            "{message}"
        );
    }
}
